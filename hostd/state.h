/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The record of one protection on this host: STATE_DIR/domains/DOMAIN.json
 * (mode 0600), so that a restarted remusd serve resumes what it did.
 *
 *     {"format":"remus-domain-state","version":1,"domain":"web1",
 *      "uuid":"...","role":"primary","peer":"hostB","peer_port":7790,
 *      "repl_port":7800,"interval_ms":200,"pause_budget_ms":300,
 *      "netbuffer":"qemu","reprotect":"auto","since_ms":1764613800123,
 *      "owner":"PSK identity remus","takeover":1,
 *      "disks":[{"target":"vda","format":"qcow2","size":1073741824,
 *                "source":"/var/lib/libvirt/images/web1.qcow2"}]}
 *
 * owner is the peer identity the record belongs to (hostd/authz.h): for
 * a standby, the identity of the primary's host that created it (PSK
 * identity or certificate DN, as TLS proved it); for a primary, that of
 * the standby host it protects onto, as its TLS proved it.  "" (or absent,
 * in records written before it existed): no identity, any peer.
 *
 * takeover counts the takeovers this protection went through: a
 * create-standby copies the primary's count into the standby's record,
 * and a standby that takes over records one more as it becomes the
 * primary.  Which of two hosts holds the newer count is how a stale
 * primary copy is told from the live one (hostd/fence.h).  Absent (older
 * records): 0.
 *
 * Written atomically: DOMAIN.json.tmp is written, fsync'd, renamed over
 * DOMAIN.json and the directory fsync'd, so after a crash at any point
 * the file is the old record or the new one, whole; a write that fails
 * leaves the old one and removes the tmp.  Read back strictly: one JSON
 * object and nothing after it, the format and version, every key with
 * its type and range, the domain matching the file's name; anything else
 * (a torn file from another tool, a disk that lost blocks) is refused
 * with a message naming the file and what is wrong, and the file is
 * left for the operator.  The file system calls block (a few ms for the
 * fsyncs); the host daemon makes them only when a protection changes.
 */
#ifndef REMUS_HOSTD_STATE_H
#define REMUS_HOSTD_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostd/config.h"

#define REMUS_HOSTD_DOMAIN_MAX 64     /* a domain's name, with its NUL */
#define REMUS_HOSTD_UUID_LEN 36
#define REMUS_HOSTD_MAX_DISKS 16
#define REMUS_HOSTD_STATE_MAX_BYTES (64u << 10)
/* A peer's identity: "PSK identity NAME" or a certificate's DN. */
#define REMUS_HOSTD_IDENTITY_MAX 512

enum remus_hostd_role {
	REMUS_HOSTD_ROLE_PRIMARY,
	REMUS_HOSTD_ROLE_STANDBY,
};

struct remus_hostd_disk {
	char target[32];        /* vda */
	char format[16];        /* raw | qcow2 */
	uint64_t size;          /* bytes */
	char source[1024];      /* the image on this host */
};

/* One protection; strings stored inline. */
struct remus_hostd_dstate {
	char domain[REMUS_HOSTD_DOMAIN_MAX];
	char uuid[REMUS_HOSTD_UUID_LEN + 1];
	enum remus_hostd_role role;
	char peer[REMUS_HOSTD_HOST_MAX];   /* the other host's remusd serve */
	uint16_t peer_port;
	uint16_t repl_port;                /* the replication link's port (standby's) */
	unsigned interval_ms, pause_budget_ms;
	enum remus_hostd_netbuffer netbuffer;
	enum remus_hostd_reprotect reprotect;
	uint64_t since_ms;                 /* wall clock, when the role began */
	char owner[REMUS_HOSTD_IDENTITY_MAX]; /* the peer identity it belongs to; "" none */
	uint64_t takeover;                 /* takeovers so far (hostd/fence.h) */
	unsigned ndisks;
	struct remus_hostd_disk disks[REMUS_HOSTD_MAX_DISKS];
};

/* A name usable as a file name and in socket paths: 1..63 bytes of
 * [A-Za-z0-9_.+-], not starting with '.' or '-'.  (libvirt allows more;
 * such a domain is refused with this rule named.) */
bool remus_hostd_domain_name_ok(const char *name);
/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower or upper hex. */
bool remus_hostd_uuid_ok(const char *uuid);

const char *remus_hostd_role_name(enum remus_hostd_role r);
const char *remus_hostd_netbuffer_name(enum remus_hostd_netbuffer nb);
const char *remus_hostd_reprotect_name(enum remus_hostd_reprotect r);

/*
 * Where unprotect moves disk @k of @domain back to (into @path, @plen
 * bytes, and its format into @format, @flen bytes): the file it was on
 * before protect (@k->source, an absolute path outside @state_dir, in
 * @k->format), written over in place; else (a domain that came here by
 * a failover has no file of its own on this host) a new raw file next to
 * remusd's image of it, STATE_DIR/DOMAIN/TARGET.released.raw.  Pure.
 * Returns 1 (the original file), 0 (a new one) or -ENAMETOOLONG.
 */
int remus_hostd_release_target(const char *state_dir, const char *domain,
			       const struct remus_hostd_disk *k, char *path, size_t plen,
			       char *format, size_t flen);

/* The record as one JSON text (owned: free()), or NULL on ENOMEM. */
char *remus_hostd_state_format(const struct remus_hostd_dstate *s);

/*
 * Parses @len bytes of @text (borrowed) into *@s.  Returns 0, or -EINVAL
 * with @err saying what is wrong (no file name: the caller adds it); *@s
 * is then unspecified.
 */
int remus_hostd_state_parse(const char *text, size_t len, struct remus_hostd_dstate *s,
			    char *err, size_t errlen);

/*
 * Writes @s atomically to STATE_DIR/domains/DOMAIN.json (@state_dir
 * borrowed; domains/ is created, mode 0700).  Returns 0, or -errno with
 * @err naming the file and the failed step; the previous record is then
 * intact.
 */
int remus_hostd_state_save(const char *state_dir, const struct remus_hostd_dstate *s,
			   char *err, size_t errlen);

/* Reads STATE_DIR/domains/@domain.json.  Returns 0, -ENOENT (no record),
 * or -errno/-EINVAL with @err naming the file. */
int remus_hostd_state_load(const char *state_dir, const char *domain,
			   struct remus_hostd_dstate *s, char *err, size_t errlen);

/* Removes the record (and a tmp left by a crash); the directory is
 * fsync'd.  0 also when there was none, or -errno with @err. */
int remus_hostd_state_remove(const char *state_dir, const char *domain, char *err,
			     size_t errlen);

/*
 * Every record: @cb(@opaque, s, NULL) for each good one, @cb(@opaque,
 * NULL, err) for each bad one (named in @err; the file is left as it
 * is).  Tmp files a crash left are removed.  Returns the number of good
 * records, or -errno with @err (the directory cannot be read; a missing
 * one is 0 records).
 */
typedef void remus_hostd_state_each_cb(void *opaque, const struct remus_hostd_dstate *s,
				       const char *err);
int remus_hostd_state_load_all(const char *state_dir, remus_hostd_state_each_cb *cb,
			       void *opaque, char *err, size_t errlen);

#endif
