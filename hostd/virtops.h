/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the host daemon needs from libvirt, as a table of asynchronous
 * operations: the seam between hostd's orchestration and virt/.  The
 * real table is built on virt/virt.h (calls on worker threads that
 * complete on the loop), virt/domain.h and virt/qmp_proxy.h; the unit
 * tests give a fake one.  Every callback runs on the loop, never from
 * inside the operation's call, and not after the table's free.
 *
 * Errors carry the control protocol's code name ("no-domain",
 * "not-running", "bad-disk", ...; hostd/request.h) and a message that
 * names the object and the fix; hostd passes both to the user.
 */
#ifndef REMUS_HOSTD_VIRTOPS_H
#define REMUS_HOSTD_VIRTOPS_H

#include "hostd/state.h"

/* A running domain as the primary's side sees it. */
struct remus_hostd_domain_info {
	char uuid[REMUS_HOSTD_UUID_LEN + 1];
	char *xml;                     /* owned: the live XML */
	unsigned ndisks;               /* protected file disks */
	struct remus_hostd_disk disks[REMUS_HOSTD_MAX_DISKS];
};

/* @rc 0, or -errno with @code and @msg (borrowed) set. */
typedef void remus_hostd_virt_done_cb(void *opaque, int rc, const char *code, const char *msg);
/* As done, with *@info (borrowed for the call; take info->xml by setting
 * it NULL) when @rc is 0. */
typedef void remus_hostd_virt_info_cb(void *opaque, int rc, const char *code, const char *msg,
				      struct remus_hostd_domain_info *info);

/* Progress of one disk's block copy, on the loop: libvirt's cur/end
 * (@total may grow while the guest writes). */
typedef void remus_hostd_virt_progress_cb(void *opaque, const char *target, uint64_t bytes,
					  uint64_t total);

/* One NBD export a disk of the standby domain (or the primary's block
 * copy) uses: the child's diskrepl serves it. */
struct remus_hostd_nbd {
	char target[32];
	char socket[REMUS_HOSTD_PATH_MAX];
};

/* Where unprotect moves one disk back to: from remusd's export on
 * @socket to the plain file @path (an existing file is written over in
 * place: the domain's original image; a missing one is created). */
struct remus_hostd_release {
	char target[32];
	char socket[REMUS_HOSTD_PATH_MAX];
	char path[1024];
	char format[16];               /* raw | qcow2 */
};

struct remus_hostd_virt_ops {
	/* The running domain @name: UUID, live XML, its file disks; also
	 * checks the libvirt and QEMU versions and that every disk can be
	 * protected. */
	int (*inspect)(void *impl, const char *name, remus_hostd_virt_info_cb *cb, void *opaque);
	/* The same for a domain remusd protected before (re-protection after
	 * a takeover): its disks are on remusd's NBD exports already, which
	 * inspect refuses; they count as its disks here. */
	int (*inspect_protected)(void *impl, const char *name, remus_hostd_virt_info_cb *cb,
				 void *opaque);
	/* Standby host, before anything is made for a create-standby: no
	 * domain here has @name or @uuid, or the one there may be replaced
	 * (virt/domain.h remus_virt_standby_over: same name and UUID, shut
	 * off, and @recorded -- this host's record of @name has that UUID --
	 * or a standby remusd made, `-incoming unix:@incoming`); else
	 * "exists" naming it and the fix. */
	int (*check_standby)(void *impl, const char *name, const char *uuid, const char *incoming,
			     bool recorded, remus_hostd_virt_done_cb *cb, void *opaque);
	/* Standby host: the check above again (@recorded as there), the NICs'
	 * bridges/networks exist; the standby XML from @xml with
	 * `-incoming unix:@incoming` and the disks on @nbd; created paused. */
	int (*create_standby)(void *impl, const char *name, const char *uuid, const char *xml,
			      const char *incoming, bool recorded,
			      const struct remus_hostd_nbd *nbd, unsigned nnbd,
			      remus_hostd_virt_done_cb *cb, void *opaque);
	/* Destroys domain @name if it exists (0 when there is none). */
	int (*destroy)(void *impl, const char *name, remus_hostd_virt_done_cb *cb, void *opaque);
	/* After a takeover: resume once QEMU's incoming migration completed,
	 * so that libvirt shows the domain running. */
	int (*resume_after_takeover)(void *impl, const char *name, remus_hostd_virt_done_cb *cb,
				     void *opaque);
	/* After a remusd serve restart: resume a domain left paused by a
	 * checkpoint (libvirt paused/unknown; a paused/user one is left). */
	int (*recover)(void *impl, const char *name, remus_hostd_virt_done_cb *cb, void *opaque);
	/* Whether libvirt has domain @name here, in any state (a shut-off
	 * definition too): 0, or -ENOENT "no-domain"; changes nothing. */
	int (*exists)(void *impl, const char *name, remus_hostd_virt_done_cb *cb, void *opaque);
	/* Moves the disks of running @name live onto @nbd (block copy,
	 * pivot); @progress (may be NULL) with @opaque while they copy.  A
	 * copy may take as long as it moves: it fails only when it stalls.
	 * When one disk fails, the disks moved before it are copied back to
	 * the files they were on, so the domain is left as it was (live and
	 * persistent), and @cb gets the copy's error; -EBUSY when one of them
	 * could not go back: it stays on its export, whose child must go on
	 * serving it. */
	int (*move_disks)(void *impl, const char *name, const struct remus_hostd_nbd *nbd,
			  unsigned nnbd, remus_hostd_virt_progress_cb *progress,
			  remus_hostd_virt_done_cb *cb, void *opaque);
	/* unprotect: moves the disks of running @name that are on remusd's
	 * exports back to plain files (@rel; block copy, pivot; libvirt then
	 * also points the persistent definition at the file); a disk that
	 * is a file already is left.  Guest writes during the copy are
	 * mirrored, so the file has them all at the pivot.  @progress as
	 * for move_disks. */
	int (*release_disks)(void *impl, const char *name, const struct remus_hostd_release *rel,
			     unsigned nrel, remus_hostd_virt_progress_cb *progress,
			     remus_hostd_virt_done_cb *cb, void *opaque);
	/* The QMP proxy of @name at @path (0600); *@handle for proxy_stop. */
	int (*proxy_start)(void *impl, const char *name, const char *path, void **handle);
	void (*proxy_stop)(void *impl, void *handle);
	/* Cancels every callback and frees @impl. */
	void (*free)(void *impl);
};

#endif
