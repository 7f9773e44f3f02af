/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * remusd ramfs: a long-lived FUSE filesystem for the guest RAM files of
 * many libvirt domains, and the control socket through which a dirty
 * tracker (dirty.h, kind RAMFS) attaches to one file.
 *
 * Why: under libvirt the domain is started long before it is protected,
 * and libvirt chooses the RAM file's path (memory_backing_dir/ID-NAME/
 * pc.ram, made by QEMU).  So the server cannot live in `remusd primary
 * --ram-dir` (which must start before QEMU and serves one file) nor in a
 * per-domain child (its death would take the guest's memory with it): it
 * is its own process, started before libvirtd, serving a tree of
 * directories and regular files on one mount.
 *
 * The filesystem (struct remus_ramfs, remus_ramfs_handle()): a pure
 * function from one /dev/fuse request to one reply, like fuse_ram.h's,
 * for unit tests and the fuzz target.  Each regular file keeps its content
 * in its own memfd (sparse, resized by SETATTR size) and a dirty bitmap, 1
 * bit per 4 KiB page, in a second memfd.  A WRITE copies its data into the
 * content memfd, THEN sets its pages' bits (__atomic_fetch_or, release),
 * THEN is answered: a tracker that sees a bit (acquire) sees the data
 * (fuse_ram.c's timeline, with the lock replaced by the atomics because
 * the tracker runs in another process).  Inode numbers are the FUSE node
 * ids, never reused, so a client finds a file by stat().st_ino.  The
 * kernel checks permissions (mount option default_permissions) against
 * the modes and owners we report.
 *
 * The control socket (SOCK_SEQPACKET, root only by SO_PEERCRED): fixed-size
 * messages in host byte order (the socket is local), parsed by
 * remus_ramfs_parse_req() / remus_ramfs_parse_rep() (fuzzed).
 *   ATTACH(ino, dev) -> status 0 or -errno (-ENOENT: no such file here,
 *     -EXDEV: @dev is not this mount, -EISDIR, -EBUSY: attached by another
 *     connection), the file's size, and two fds by SCM_RIGHTS: the content
 *     memfd (for reading) and the bitmap memfd (for reading and clearing).
 *     The attachment lasts as long as the connection; while it lasts the
 *     file's size cannot change (SETATTR size -> EBUSY).
 *   STAT -> the server's pid, mount device and number of regular files.
 */
#ifndef REMUS_DIRTY_RAMFS_H
#define REMUS_DIRTY_RAMFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dirty/fuse_ram.h"

#define REMUS_RAMFS_FSTYPE "fuse.remus-ramfs"
#define REMUS_RAMFS_MAGIC 0x52414d46u /* "RAMF" */
#define REMUS_RAMFS_VERSION 1
/* Bounds of what one server holds (ENOSPC / EFBIG beyond). */
#define REMUS_RAMFS_MAX_NODES 65536u
#define REMUS_RAMFS_MAX_FILE (UINT64_C(1) << 40)
#define REMUS_RAMFS_MAX_CONNS 64
/* READDIR answers at most this much at a time. */
#define REMUS_RAMFS_DIRBUF 65536u

enum remus_ramfs_op {
	REMUS_RAMFS_OP_ATTACH = 1,
	REMUS_RAMFS_OP_STAT = 2,
};

struct remus_ramfs_req {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint64_t ino; /* ATTACH: st_ino of the file */
	uint64_t dev; /* ATTACH: st_dev of the file (this mount's?) */
};
_Static_assert(sizeof(struct remus_ramfs_req) == 24, "wire size");

struct remus_ramfs_rep {
	uint32_t magic;
	uint16_t version;
	uint16_t op;	/* the request's */
	int32_t status; /* 0 or -errno */
	uint32_t files; /* STAT: regular files */
	uint64_t size;	/* ATTACH: the file's bytes */
	uint64_t dev;	/* STAT: the mount's st_dev */
	uint64_t pid;	/* STAT: the server's */
};
_Static_assert(sizeof(struct remus_ramfs_rep) == 40, "wire size");

/* @buf, @len bytes as received (borrowed) -> *out.  Returns 0, or
 * -EBADMSG (not exactly one message of our size, bad magic or version,
 * unknown op).  Never reads beyond @len. */
int remus_ramfs_parse_req(const void *buf, size_t len,
			  struct remus_ramfs_req *out);
/* The same for a reply to a request of @op; also -EBADMSG for a status
 * that is not 0 or a negative errno (> -4096), and for a reply to
 * another op. */
int remus_ramfs_parse_rep(const void *buf, size_t len, uint16_t op,
			  struct remus_ramfs_rep *out);

/* The filesystem (no mount: see remus_ramfs_serve()). */
struct remus_ramfs_node;
struct remus_ramfs {
	struct remus_ramfs_node **nodes; /* owned, by ino; NULL: free */
	uint64_t cap;			 /* slots in @nodes */
	uint64_t next_ino;		 /* never reused */
	uint64_t nnodes;		 /* live nodes, root included */
	uint32_t proto_minor;		 /* negotiated at INIT; 0 before */
	uint64_t total_pages;		 /* STATFS: the machine's memory */
	uint8_t *dirbuf;		 /* owned: READDIR's reply */
};

/* An empty root directory (ino 1, root's, 0755).  Returns 0 or -ENOMEM;
 * released on error. */
int remus_ramfs_init(struct remus_ramfs *fs);
/* Frees every node and memfd of the server (a tracker keeps its own fds).
 * Idempotent after init. */
void remus_ramfs_release(struct remus_ramfs *fs);
/* Handles one request of @len bytes (@req borrowed) as the kernel sent
 * it; never trusts a length in it.  Fills @out; its @data borrows the
 * file's content mapping or fs->dirbuf until the next call. */
void remus_ramfs_handle(struct remus_ramfs *fs, const uint8_t *req,
			size_t len, struct remus_fuse_reply *out);

/* Regular files that exist (linked, or open: a guest may still map an
 * unlinked one). */
unsigned remus_ramfs_nfiles(const struct remus_ramfs *fs);
/* Writes the path below the mount of each such file to @f-like callback
 * @each(ctx, "/1-web1/pc.ram" or "(unlinked)"). */
void remus_ramfs_each_file(const struct remus_ramfs *fs,
			   void (*each)(void *ctx, const char *path), void *ctx);
/* The file @ino for ATTACH: its memfds (borrowed, the server's) and size,
 * and marks it attached.  Returns 0, -ENOENT, -EISDIR or -EBUSY. */
int remus_ramfs_attach(struct remus_ramfs *fs, uint64_t ino, int *content_fd,
		       int *bits_fd, uint64_t *size);
/* Ends the attachment of @ino (no-op if the file is gone). */
void remus_ramfs_detach(struct remus_ramfs *fs, uint64_t ino);
/* For tests: the server's mapping of @ino's bitmap, or NULL. */
uint64_t *remus_ramfs_bits(const struct remus_ramfs *fs, uint64_t ino);

/* The server process: `remusd ramfs`. */
struct remus_ramfs_opts {
	const char *mount_dir;	 /* an existing empty directory */
	const char *socket_path; /* NULL: REMUS_RAMFS_DEFAULT_SOCKET */
	bool allow_other;	 /* let other users (libvirt's qemu) in */
};
/* Mounts, serves the filesystem and the control socket in one thread until
 * SIGTERM/SIGINT arrives while no regular file exists (with files it logs
 * them and goes on: their guests would fault), then unmounts.  SIGUSR1
 * logs a status line.  Blocks those signals in the calling thread.
 * Returns 0 after a clean stop, or -errno (nothing is left mounted by
 * us, unless guests still map files when the mount was lost). */
int remus_ramfs_serve(const struct remus_ramfs_opts *o);

/* The tracker's side (dirty.c, kind RAMFS). */
struct remus_ramfs_client {
	int sock;	  /* the connection that holds the attachment */
	int fd;		  /* the RAM file, O_RDONLY, for fsync */
	uint64_t size;	  /* bytes */
	const uint8_t *content; /* read-only mapping of @size */
	uint64_t *bits;	  /* read-write mapping of the bitmap */
	size_t bits_len;  /* bytes mapped at @bits */
	char *path;	  /* owned copy */
};
/* Attaches to @path (a file on a ramfs mount) through @socket_path.
 * @size 0: the file's; else it must equal it.  Returns 0, -ENOENT (no
 * file, or no socket), -ECONNREFUSED, -ETIMEDOUT (the server did not
 * take or answer the request within REMUS_RAMFS_CALL_TIMEOUT_MS), -EXDEV
 * (not on FUSE, or not on this server's mount), -EBUSY, -EINVAL (size),
 * -EISDIR, or -errno; released on error. */
int remus_ramfs_client_open(struct remus_ramfs_client *c, const char *path,
			    const char *socket_path, uint64_t size);
/* fsync of the file, then the bitmap harvested word by word into @bits
 * (@nwords words; bits beyond @npages dropped); returns the number of
 * pages or -errno (-EIO: the server is gone). */
int64_t remus_ramfs_client_collect(struct remus_ramfs_client *c,
				   uint64_t *bits, uint64_t npages);
/* Unmaps, closes the file and the connection; returns once the server
 * has dropped the attachment (at most 1 s).  Idempotent after open (also
 * after a failed one). */
void remus_ramfs_client_close(struct remus_ramfs_client *c);

#endif
