/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to dirty/: the FUSE server of one guest RAM file, written against
 * the kernel's /dev/fuse protocol (<linux/fuse.h>) without libfuse.
 *
 * The filesystem has two inodes: the root directory (1) and "guest.ram"
 * (2), a regular file of a fixed size whose content lives in @copy.  The
 * request handler is a plain function from one request to one reply so
 * that the unit tests and the fuzz target drive it without a mount; the
 * mount, the server thread and the flush are in fuse_ram.c below it.
 *
 * Why no libfuse: the server sits in the guest's memory path, so it should
 * be small enough to read whole (a dozen opcodes of one file), own its one
 * thread, install no signal handlers and add no dependency; as root the
 * mount is one mount(2) call, which is all libfuse would do for us here.
 */
#ifndef REMUS_DIRTY_FUSE_RAM_H
#define REMUS_DIRTY_FUSE_RAM_H

#include <linux/fuse.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define REMUS_FUSE_RAM_NAME "guest.ram"
#define REMUS_FUSE_RAM_INO 2
/* Largest WRITE we accept (FUSE_MAX_PAGES: 256 pages), and the buffer one
 * request is read into: the kernel refuses a read(2) smaller than that
 * plus the headers. */
#define REMUS_FUSE_MAX_WRITE (1u << 20)
#define REMUS_FUSE_BUF_SIZE (REMUS_FUSE_MAX_WRITE + 4096u)

struct remus_fuse_ram {
	uint64_t size;	/* bytes, a multiple of 4096 */
	uint64_t npages;
	uint8_t *copy;	/* owned: mmap of @size, sparse */
	uint32_t uid, gid;
	uint32_t proto_minor; /* negotiated at INIT; 0 before */
	bool file_mode_other; /* rw for everyone (allow_other) */

	pthread_mutex_t lock; /* guards what follows */
	uint64_t *bits;	      /* owned: pages written back this epoch */
	uint64_t ndirty;
	uint64_t write_requests, write_bytes, read_requests, read_bytes;
};

/* One reply: header, a small body, and optionally @data (borrowed from
 * the copy, READ).  @none: the request gets no reply (FORGET...). */
struct remus_fuse_reply {
	struct fuse_out_header hdr;
	union {
		struct fuse_init_out init;
		struct fuse_entry_out entry;
		struct fuse_attr_out attr;
		struct fuse_open_out open;
		struct fuse_write_out write;
		struct fuse_statfs_out statfs;
		struct { /* CREATE: both, back to back */
			struct fuse_entry_out entry;
			struct fuse_open_out open;
		} create;
	} body;
	size_t body_len;
	const void *data;
	size_t data_len;
	bool none;
};

/* What both servers (this one and ramfs.h's) share. */

/* Answers the kernel's INIT (@body, @n bytes after the header) into @o:
 * the writeback cache is required, big writes and up to
 * REMUS_FUSE_MAX_WRITE bytes per WRITE.  Returns 0, -EINVAL (short),
 * -EPROTO (another major version, no writeback cache). */
int remus_fuse_negotiate(const uint8_t *body, size_t n, struct fuse_init_out *o);
/* Opens one request of @len bytes (@req borrowed) for a handler: clears
 * @out, copies the header into @h and sets out->hdr.unique, points @body /
 * @n at what follows it.  Returns 1 when there is nothing to answer (too
 * short for a header: out->none set), 0 to handle it, or -EIO (the
 * header's length is not @len, or a request before INIT when
 * @proto_minor is 0): answer that with remus_fuse_reply_finish(). */
int remus_fuse_request_open(const uint8_t *req, size_t len, uint32_t proto_minor,
			    struct fuse_in_header *h, const uint8_t **body, size_t *n,
			    struct remus_fuse_reply *out);
/* Fills out->hdr for @rc (0 or -errno) and the lengths; on error drops
 * body and data.  Every reply of a handler goes through it. */
void remus_fuse_reply_finish(struct remus_fuse_reply *out, int rc);
/* Lifts the writeback limits of the FUSE bdi of device @dev (the mount's
 * st_dev): strict_limit=0, max_ratio=100.  Best effort, warns. */
void remus_fuse_raise_bdi(dev_t dev);
/* One request of @fuse_fd (non-blocking) read into @buf (at least
 * REMUS_FUSE_BUF_SIZE bytes) and answered by @handle(@ctx, ...).
 * Returns 1 (one handled), 0 (none waiting: EAGAIN, or one interrupted
 * before we read it) or -errno (-ENODEV: unmounted or aborted). */
typedef void remus_fuse_handler_fn(void *ctx, const uint8_t *req, size_t len,
				   struct remus_fuse_reply *out);
int remus_fuse_serve_one(int fuse_fd, uint8_t *buf,
			 remus_fuse_handler_fn *handle, void *ctx);

/* Allocates the copy (zero, sparse) and an empty bitmap.  Returns 0,
 * -EINVAL (size 0 or not page aligned) or -ENOMEM; released on error. */
int remus_fuse_ram_init(struct remus_fuse_ram *r, uint64_t size);
/* Idempotent after init. */
void remus_fuse_ram_release(struct remus_fuse_ram *r);
/* Handles one request of @len bytes (@req borrowed) as the kernel sent
 * it; never trusts a length in it.  Fills @out (its @data borrows
 * r->copy).  A WRITE is copied into r->copy and then its pages are marked
 * in r->bits under r->lock, in that order (see fuse_ram.c). */
void remus_fuse_ram_handle(struct remus_fuse_ram *r, const uint8_t *req,
			   size_t len, struct remus_fuse_reply *out);

/* The mounted filesystem and its server thread. */
struct remus_fuse_server {
	struct remus_fuse_ram ram;
	int fuse_fd; /* /dev/fuse, owned */
	int stop_fd; /* eventfd that ends the thread, owned */
	/* The flush is fsync() of the RAM file, which waits until the
	 * server has answered every WRITE (syncfs() returned earlier here:
	 * measured, stale copies).  It runs in a small forked flusher
	 * process, never here: a process holding both /dev/fuse and an open
	 * file of its own mount waits in its own exit forever if it dies
	 * (exit flushes the file and waits for a server that is gone, while
	 * /dev/fuse is only released after that; seen here).  The flusher
	 * holds the file; if we die, the connection is aborted and its fsync
	 * fails; if it dies, we see EOF and fail the collect. */
	int flusher_fd; /* socket to the flusher, owned */
	pid_t flusher_pid;
	char *mnt;   /* owned */
	char *path;  /* owned: MNT/guest.ram */
	pthread_t thread;
	bool thread_started, mounted;
	bool stopping; /* close has begun (under ram.lock) */
	int error; /* first error of the thread, under ram.lock */
};

/* Mounts an empty @mount_dir, starts the server and opens the file.
 * Returns 0 or -errno; on error nothing is left mounted or running. */
int remus_fuse_server_open(struct remus_fuse_server *s, const char *mount_dir,
			   uint64_t size, bool allow_other, bool raise_bdi);
/* fsync of the file (by the flusher): returns once the kernel has written back (and the
 * server has received) every page dirty when it was called.  0 or -errno;
 * -EIO if the server thread failed. */
int remus_fuse_server_flush(struct remus_fuse_server *s);
/* Ends the flusher, unmounts (lazily if still in use), stops the thread,
 * frees.  Idempotent. */
void remus_fuse_server_close(struct remus_fuse_server *s);

#endif
