/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libvirt domains as the host daemon needs them: what a domain is made of
 * (inspection of its live XML), whether it can be protected (validation,
 * version checks), the standby domain a peer creates from it (derivation),
 * and the libvirt calls that create, resume, destroy a domain and move its
 * disks live (block copy onto NBD, pivot, and back).
 *
 * Two halves.  The XML half is pure (libxml2, the library libvirt itself
 * uses; json-c for QEMU's replies): no libvirt connection, no I/O, so the
 * unit tests and the fuzzer drive it with fixtures.  The libvirt half is
 * BLOCKING: every function taking a virConnectPtr or virDomainPtr may wait
 * on libvirt (a block copy for minutes) and is meant for the worker thread
 * of virt/virt.h, never for the event loop.  None of them keeps a
 * reference to what it is given.
 *
 * Errors that reach a user carry a code from the control protocol
 * (docs: DESIGN-10, "Answers"): no-domain, not-running, exists,
 * no-bridge, bad-disk, libvirt-too-old, qemu-too-old, bad-request,
 * internal; and a message that names the object and the fix:
 *
 *     bad-disk: disk vdb of domain web1 is a block device (/dev/sdb):
 *     only file disks (raw or qcow2) can be protected; move it to a file
 *
 * The standby: same name and UUID as the primary, started paused with
 * `-incoming unix:PATH` (or `defer` and then migrate-incoming) through
 * <qemu:commandline>, each disk on the standby remusd's NBD export.
 * Verified here (libvirt 11.3, QEMU 10.0): with `-incoming unix:PATH` the
 * domain created paused is paused/user, QEMU `inmigrate`, listening on
 * PATH, and migrate-set-capabilities still works before anything
 * connects, so `remusd standby --incoming PATH` runs against it
 * unchanged; libvirt reconnecting to it (a new embedded-driver process)
 * leaves it alone.  Once the stream is loaded, resume only when QEMU's
 * query-migrate says completed (LIBVIRT.md: a resume before that returns
 * 0 and does nothing visible).
 */
#ifndef REMUS_VIRT_DOMAIN_H
#define REMUS_VIRT_DOMAIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libvirt/libvirt.h>

/* The first error of a call, for the user.  code is "" when none. */
struct remus_virt_error {
	char code[24];     /* "bad-disk", "not-running", ... */
	char message[512]; /* names the object and the fix */
};

/* Sets @err (may be NULL) unless it already holds an error: the first
 * error wins.  Returns @rc, so `return remus_virt_error_set(...)` works. */
int remus_virt_error_set(struct remus_virt_error *err, int rc, const char *code,
			 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* --- inspection ------------------------------------------------------------ */

/* One <disk>.  Strings are owned by the domain; NULL when absent. */
struct remus_virt_disk {
	char *target;   /* <target dev>: "vda" */
	char *bus;      /* <target bus>: "virtio", "sata", ... */
	char *device;   /* "disk" (the default), "cdrom", "floppy", "lun" */
	char *type;     /* "file", "block", "network", "volume", "dir", "nvme" */
	char *format;   /* <driver type>: "raw", "qcow2", ... */
	char *source;   /* file or dev path, network name, pool/volume */
	char *protocol; /* type network: "nbd", "rbd", ... */
	bool readonly;
	bool shareable;
	bool transient;
};

/* One <interface>.  Strings are owned by the domain; NULL when absent. */
struct remus_virt_nic {
	char *type;       /* "bridge", "network", "ethernet", "user", "direct" ...;
			   * "network" for every NIC on a libvirt network, also
			   * when its live XML says bridge or direct */
	char *source;     /* <source network|bridge|dev> */
	char *mac;        /* <mac address> */
	char *model;      /* <model type> */
	char *target_dev; /* <target dev> (the tap on this host) */
};

struct remus_virt_domain {
	char *name;             /* owned */
	char uuid[37];          /* canonical text form, "" if absent */
	int id;                 /* <domain id=>: -1 when not running */
	uint64_t memory_kib;    /* <memory>, in KiB whatever its unit */
	unsigned vcpus;         /* <vcpu> */
	char *emulator;         /* owned; NULL if absent */
	struct remus_virt_disk *disks; /* owned array of ndisks */
	size_t ndisks;
	struct remus_virt_nic *nics;   /* owned array of nnics */
	size_t nnics;
	char **qemu_args;       /* owned: the <qemu:commandline> args, in order */
	size_t nqemu_args;
	size_t nhostdevs;       /* <hostdev> elements (cannot be migrated) */
};

/* Makes remus_virt_domain_release() of @d a no-op. */
void remus_virt_domain_init(struct remus_virt_domain *d);
/* Frees what @d owns; idempotent. */
void remus_virt_domain_release(struct remus_virt_domain *d);

/* Parses the domain XML @xml (@len bytes, borrowed, need not end in NUL)
 * into @d (initialised here).  Returns 0, or -EINVAL with @err "bad-request"
 * when it is not a well-formed <domain> with a name (nothing to release),
 * -ENOMEM. */
int remus_virt_domain_parse(const char *xml, size_t len, struct remus_virt_domain *d,
			    struct remus_virt_error *err);

/* Whether @d can be protected: every disk a writable, unshared file disk
 * (raw or qcow2) or an empty cdrom, no <hostdev>, a name and a UUID.
 * Returns 0, or -EINVAL with @err (code "bad-disk", or "bad-request" for
 * the rest) naming the first offender and the fix. */
int remus_virt_domain_check(const struct remus_virt_domain *d, struct remus_virt_error *err);

/* libvirt >= 8.2.0 (virDomainQemuMonitorCommandWithFiles).  @version as
 * virConnectGetLibVersion gives it (major * 1000000 + minor * 1000 +
 * micro).  Returns 0, or -ENOTSUP with @err "libvirt-too-old". */
int remus_virt_check_libvirt_version(unsigned long version, struct remus_virt_error *err);

/* QEMU >= 8.1 (switchover-ack), from a query-version reply: the whole
 * `{"return":{"qemu":{...}}}` or just its return value (@json borrowed,
 * @len bytes).  Fills *@major, *@minor, *@micro when not NULL.  Returns 0,
 * -ENOTSUP with @err "qemu-too-old", or -EINVAL ("internal") when @json is
 * not a query-version reply. */
int remus_virt_check_qemu_version(const char *json, size_t len, int *major, int *minor,
				  int *micro, struct remus_virt_error *err);

/* The status of a query-migrate reply (whole reply or its return value)
 * copied into @status (@size bytes): "none" when there is no status field
 * (QEMU answers {} before any migration), "setup", "active", "completed",
 * "failed", ...  Returns 0 or -EINVAL (not a query-migrate reply). */
int remus_virt_migrate_status(const char *json, size_t len, char *status, size_t size);

/* --- derivation ------------------------------------------------------------ */

/* Where one disk of the standby (or the block copy) reads and writes. */
struct remus_virt_nbd {
	const char *target; /* borrowed: the disk's <target dev> */
	const char *socket; /* borrowed: the NBD server's unix socket */
	const char *export; /* borrowed: the export name */
};

struct remus_virt_standby_spec {
	/* borrowed: QEMU's -incoming value, "unix:PATH" (the standby remusd
	 * connects to PATH, as `remusd standby --incoming PATH`) or "defer"
	 * (then remus_virt_migrate_incoming) */
	const char *incoming;
	const struct remus_virt_nbd *disks; /* borrowed, one per file disk */
	size_t ndisks;
};

/* The standby domain XML from the primary's live XML @xml (@len bytes,
 * borrowed): same name, UUID, devices and addresses; every disk that is
 * not an empty cdrom on its NBD export from @spec (raw, as the export
 * serves what the guest sees); NICs with their MAC, model and
 * bridge/network (a NIC on a libvirt network as type 'network' on it and
 * its portgroup, without this host's portid, bridge or device); xmlns:qemu and one `-incoming` in <qemu:commandline>
 * (an existing commandline is kept, an -incoming in it replaced); what
 * only the running primary has dropped: the domain id, device aliases
 * (user aliases "ua-" stay), generated tap names (vnet*, macvtap*),
 * dynamic seclabels' generated labels, pty paths, libvirt's generated
 * channel socket paths, <backingStore> and <mirror>.
 * Returns 0 and *@out (owned, free()), or -EINVAL with @err ("bad-disk":
 * a disk the spec does not cover, or "bad-request": not a domain XML),
 * -ENOMEM. */
int remus_virt_standby_xml(const char *xml, size_t len,
			   const struct remus_virt_standby_spec *spec, char **out,
			   struct remus_virt_error *err);

/* The <disk> XML of a block copy destination on an NBD export (raw) at
 * unix socket @socket, export @export (both borrowed).  Returns 0 and
 * *@out (owned, free()) or -ENOMEM. */
int remus_virt_nbd_disk_xml(const char *socket, const char *export, char **out);

/* The <disk> XML of a plain file destination @path in @format ("raw" or
 * "qcow2"; both borrowed): where `unprotect --release-disks` copies a disk
 * back.  Returns 0 and *@out (owned, free()), -EINVAL (other format) or
 * -ENOMEM. */
int remus_virt_file_disk_xml(const char *path, const char *format, char **out);

/* The disk of @d whose target is @target (borrowed), or NULL.  Pure. */
const struct remus_virt_disk *remus_virt_disk_of(const struct remus_virt_domain *d,
						 const char *target);

/* After unprotect's copies back (hostd's release_disks): every disk of
 * @d (the live XML, parsed) named in @targets[0..@n) is a file disk.  The
 * child that serves remusd's exports stops next, so a disk left on one
 * would lose its storage under the running guest.  0, or -EBUSY with
 * @err ("bad-disk") naming domain @name (borrowed), the first disk that
 * is not on a file, where it is, and the retry; -ENOENT ("bad-disk") for
 * a target @d does not have.  Pure. */
int remus_virt_disks_on_files(const struct remus_virt_domain *d, const char *name,
			      const char *const *targets, unsigned n,
			      struct remus_virt_error *err);

/* --- a domain already defined where a standby is to be made ----------------- */

/* What this host already has under a standby's name or UUID (any field
 * may be NULL when unknown). */
struct remus_virt_existing {
	const char *name;    /* borrowed: its name */
	const char *uuid;    /* borrowed: its UUID */
	const char *state;   /* borrowed: "shut off", "running", ... (messages) */
	bool active;         /* it runs, paused or not: a live QEMU */
	bool remus_standby;  /* its XML is a standby remusd made: -incoming @incoming */
};

/*
 * Whether the standby of @name/@uuid may be created over @e, which holds
 * the name or the UUID already.  Yes (0) only when @e has the same name
 * AND the same UUID (case aside), is not active, and is remusd's own:
 * @recorded (this host's remusd recorded that domain, same name and UUID,
 * as one it protected: the old primary's host after a failover keeps the
 * domain defined, shut off) or @e->remus_standby.  libvirt then starts
 * the standby as the live instance of that definition; the definition
 * itself stays as it was (virsh dumpxml --inactive).  Anything else is
 * -EEXIST with @err ("exists") naming the domain, why it is refused and
 * the fix: another UUID, another name with that UUID, a running domain, a
 * definition remusd never managed.  Pure.
 */
int remus_virt_standby_over(const struct remus_virt_existing *e, const char *name,
			    const char *uuid, bool recorded, struct remus_virt_error *err);

/* --- blocking libvirt calls (the worker thread only) ------------------------- */

/* The running domain @name on @conn: *@dom (owned, virDomainFree).
 * Returns 0, -ENOENT ("no-domain": no such domain, with the fix), -EAGAIN
 * ("not-running": defined but shut off or crashed), -EIO ("internal"). */
int remus_virt_lookup_running(virConnectPtr conn, const char *name, virDomainPtr *dom,
			      struct remus_virt_error *err);

/* Whether a domain of that name or UUID exists on @conn: returns 0 (no),
 * -EEXIST ("exists", naming it and its state), -EIO. */
int remus_virt_check_absent(virConnectPtr conn, const char *name, const char *uuid,
			    struct remus_virt_error *err);

/* The live XML of @dom: *@xml (owned, free()).  Returns 0 or -EIO. */
int remus_virt_live_xml(virDomainPtr dom, char **xml, struct remus_virt_error *err);

/* libvirt's version on @conn (checked) and QEMU's (query-version through
 * the monitor of @dom, checked).  Returns 0, -ENOTSUP with
 * "libvirt-too-old" or "qemu-too-old", -EIO. */
int remus_virt_check_versions(virConnectPtr conn, virDomainPtr dom,
			      struct remus_virt_error *err);

/* Every NIC of @d can be plugged on this host: a bridge NIC's bridge is a
 * bridge here (/sys/class/net/BR/bridge under @sysfs, "/sys" when NULL),
 * a network NIC's libvirt network exists and is active on @conn (NULL:
 * not checked).  Returns 0 or -ENOENT ("no-bridge" naming the NIC, its MAC
 * and the bridge or network). */
int remus_virt_check_host_nics(virConnectPtr conn, const char *sysfs,
			       const struct remus_virt_domain *d, struct remus_virt_error *err);

/*
 * Whether the standby of @name/@uuid (borrowed) can be made on @conn:
 * 0 with *@over false when no domain has that name or UUID, 0 with *@over
 * true when the one there may be replaced (remus_virt_standby_over with
 * @recorded; a standby remusd made is told by `-incoming @incoming` in
 * its XML, @incoming "unix:PATH" or NULL), else -EEXIST ("exists") or
 * -EIO ("internal").
 */
int remus_virt_check_standby_slot(virConnectPtr conn, const char *name, const char *uuid,
				  const char *incoming, bool recorded, bool *over,
				  struct remus_virt_error *err);

/* Creates the transient domain of @xml (borrowed) paused:
 * virDomainCreateXML(VIR_DOMAIN_START_PAUSED).  @over: a shut-off
 * definition with the same name and UUID may be there (the caller's
 * remus_virt_check_standby_slot said so); the domain then starts as its
 * live instance.  Returns 0 and *@dom (owned), -EEXIST ("exists") or
 * -EIO ("internal", libvirt's message). */
int remus_virt_create_paused(virConnectPtr conn, const char *xml, bool over, virDomainPtr *dom,
			     struct remus_virt_error *err);

/* One QMP command through libvirt's monitor passthrough: @cmd (borrowed)
 * is the whole command JSON; *@reply (owned, free(); may be NULL to
 * ignore) is QEMU's reply.  Returns 0, -EIO (libvirt refused it, or QEMU
 * answered an error: the message says which). */
int remus_virt_qmp(virDomainPtr dom, const char *cmd, char **reply,
		   struct remus_virt_error *err);

/* migrate-incoming @uri (borrowed) on a standby started with
 * `-incoming defer`.  Returns 0 or -EIO. */
int remus_virt_migrate_incoming(virDomainPtr dom, const char *uri,
				struct remus_virt_error *err);

/* After a takeover: polls query-migrate every 20 ms until `completed`,
 * then virDomainResume, so libvirt reports the domain running.  Returns 0,
 * -ETIMEDOUT after @timeout_ms, -EPROTO (the incoming migration failed or
 * was cancelled), -EIO. */
int remus_virt_resume_when_migrated(virDomainPtr dom, int timeout_ms,
				    struct remus_virt_error *err);

/* virDomainDestroy; a domain already gone counts as destroyed.
 * Returns 0 or -EIO. */
int remus_virt_destroy(virDomainPtr dom, struct remus_virt_error *err);

/* Progress of a block copy: @bytes of @total copied (libvirt's cur/end). */
typedef void (*remus_virt_copy_progress_cb)(const char *target, uint64_t bytes,
					    uint64_t total, void *opaque);

struct remus_virt_copy {
	const char *target;   /* borrowed: the disk's <target dev> */
	const char *dest_xml; /* borrowed: remus_virt_nbd_disk_xml / _file_disk_xml */
	bool reuse_external;  /* the destination exists (NBD: always) */
	uint64_t bandwidth;   /* bytes/s of the bulk copy; 0: as fast as it goes */
	int timeout_ms;       /* to reach ready; <= 0: no limit */
	/* Fails the copy when libvirt's cur has not moved for this long
	 * before ready (a dead destination, a hung source); <= 0: never.
	 * A copy that moves may take as long as it needs. */
	int stall_ms;
	remus_virt_copy_progress_cb progress; /* may be NULL; worker thread */
	void *opaque;
	const atomic_bool *cancel; /* borrowed, may be NULL: abort when set */
};

/* Moves disk @c->target of running @dom live onto @c->dest_xml:
 * virDomainBlockCopy, polls the job every 100 ms (progress after each
 * poll) until it is ready (cur == end), then pivots.  On failure,
 * timeout, stall or cancel the job is aborted and the domain stays on its
 * old disk.  Returns 0, -ECANCELED, -ETIMEDOUT (timeout or stall), -EIO
 * (libvirt's message; the job vanished). */
int remus_virt_block_copy(virDomainPtr dom, const struct remus_virt_copy *c,
			  struct remus_virt_error *err);

#endif
