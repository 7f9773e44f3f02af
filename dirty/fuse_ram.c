// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The FUSE backend of the dirty tracker: one RAM file served over
 * /dev/fuse in writeback-cache mode (fuse_ram.h says why without libfuse).
 *
 * With FUSE_WRITEBACK_CACHE the kernel owns the file's pages: QEMU's
 * shared mapping writes into the page cache, the first write to a clean
 * page faults and marks it dirty, and writeback sends the dirty pages to us
 * as WRITE requests and write-protects them again.  fsync() of the file
 * is that writeback on demand, so the pages we receive between two
 * flushes are the pages written in between (docs/ARCHITECTURE.md, "Engine
 * v2").  READ requests only come for pages not in the page cache (first
 * touch, or evicted clean pages) and are served from the copy, which
 * therefore has to hold every page ever written back.
 *
 * The order that makes a racing collect safe, for one WRITE of page P:
 *
 *   server thread                      collecting thread
 *   memcpy(copy + P, data)
 *                                      (fsync returned) lock, swap bitmaps
 *   lock, set bit P in the *current*
 *   bitmap, unlock
 *
 * P is then reported by the next collect, its data already in the copy.
 * Marking first and copying second could let a collect report P and its
 * reader see the copy before the data: a stale page that is never sent
 * again.  A guest write to P while P is under writeback waits for it (or
 * goes to a copy of the page) and re-dirties P, so it is written back by
 * a later flush: in this epoch's set if that WRITE arrives before the
 * swap, else in the next.
 */
#include "dirty/fuse_ram.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"

#define PAGE 4096u
/* The kernel revalidates nothing it was told is valid for a day; with the
 * writeback cache it is the authority on size and times anyway. */
#define ATTR_VALID_S 86400

int remus_fuse_ram_init(struct remus_fuse_ram *r, uint64_t size)
{
	memset(r, 0, sizeof(*r));
	r->copy = MAP_FAILED;
	if (size == 0 || size % PAGE != 0)
		return -EINVAL;
	r->size = size;
	r->npages = size / PAGE;
	r->uid = getuid();
	r->gid = getgid();
	pthread_mutex_init(&r->lock, NULL);
	r->copy = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	r->bits = calloc((r->npages + 63) / 64, sizeof(uint64_t));
	if (r->copy == MAP_FAILED || !r->bits) {
		remus_fuse_ram_release(r);
		return -ENOMEM;
	}
	return 0;
}

void remus_fuse_ram_release(struct remus_fuse_ram *r)
{
	if (r->copy != MAP_FAILED && r->copy)
		munmap(r->copy, r->size);
	r->copy = MAP_FAILED;
	free(r->bits);
	r->bits = NULL;
	if (r->npages) /* initialised */
		pthread_mutex_destroy(&r->lock);
	r->npages = 0;
	r->size = 0;
}

static void fill_attr(const struct remus_fuse_ram *r, uint64_t ino,
		      struct fuse_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = ino;
	a->uid = r->uid;
	a->gid = r->gid;
	a->blksize = PAGE;
	if (ino == FUSE_ROOT_ID) {
		a->mode = S_IFDIR | 0755;
		a->nlink = 2;
	} else {
		a->mode = S_IFREG | (r->file_mode_other ? 0666 : 0600);
		a->nlink = 1;
		a->size = r->size;
		a->blocks = r->size / 512;
	}
}

static void reply_attr(const struct remus_fuse_ram *r, uint64_t ino,
		       struct remus_fuse_reply *out)
{
	memset(&out->body.attr, 0, sizeof(out->body.attr));
	out->body.attr.attr_valid = ATTR_VALID_S;
	fill_attr(r, ino, &out->body.attr.attr);
	out->body_len = sizeof(out->body.attr);
}

int remus_fuse_negotiate(const uint8_t *body, size_t n, struct fuse_init_out *o)
{
	struct fuse_init_in in = { 0 };
	uint32_t want;

	/* Kernels before 7.36 send only the first four fields. */
	if (n < offsetof(struct fuse_init_in, flags2))
		return -EINVAL;
	memcpy(&in, body, n < sizeof(in) ? n : sizeof(in));
	if (in.major != FUSE_KERNEL_VERSION)
		return -EPROTO;
	/* The writeback cache is the whole point: without it every write
	 * would reach us at once and nothing would be tracked by flushes. */
	if (!(in.flags & FUSE_WRITEBACK_CACHE))
		return -EPROTO;
	want = FUSE_WRITEBACK_CACHE | FUSE_BIG_WRITES | FUSE_MAX_PAGES;
	memset(o, 0, sizeof(*o));
	o->major = FUSE_KERNEL_VERSION;
	o->minor = in.minor < FUSE_KERNEL_MINOR_VERSION ? in.minor
							: FUSE_KERNEL_MINOR_VERSION;
	o->max_readahead = in.max_readahead;
	o->flags = in.flags & want;
	o->max_background = 64;
	o->congestion_threshold = 48;
	o->max_write = REMUS_FUSE_MAX_WRITE;
	o->time_gran = 1;
	o->max_pages = REMUS_FUSE_MAX_WRITE / PAGE;
	return 0;
}

static int do_init(struct remus_fuse_ram *r, const uint8_t *body, size_t n,
		   struct remus_fuse_reply *out)
{
	int rc = remus_fuse_negotiate(body, n, &out->body.init);

	if (rc < 0)
		return rc;
	r->proto_minor = out->body.init.minor;
	out->body_len = sizeof(out->body.init);
	return 0;
}

static int do_lookup(struct remus_fuse_ram *r, uint64_t parent,
		     const uint8_t *body, size_t n,
		     struct remus_fuse_reply *out)
{
	struct fuse_entry_out *e = &out->body.entry;

	if (parent != FUSE_ROOT_ID)
		return -ENOENT;
	/* The name is NUL-terminated inside the body. */
	if (!memchr(body, '\0', n))
		return -EINVAL;
	if (strcmp((const char *)body, REMUS_FUSE_RAM_NAME) != 0)
		return -ENOENT;
	memset(e, 0, sizeof(*e));
	e->nodeid = REMUS_FUSE_RAM_INO;
	e->generation = 1;
	e->entry_valid = ATTR_VALID_S;
	e->attr_valid = ATTR_VALID_S;
	fill_attr(r, REMUS_FUSE_RAM_INO, &e->attr);
	out->body_len = sizeof(*e);
	return 0;
}

static int do_setattr(struct remus_fuse_ram *r, uint64_t ino,
		      const uint8_t *body, size_t n,
		      struct remus_fuse_reply *out)
{
	struct fuse_setattr_in in;

	if (n < sizeof(in))
		return -EINVAL;
	memcpy(&in, body, sizeof(in));
	if (in.valid & (FATTR_MODE | FATTR_UID | FATTR_GID))
		return -EPERM;
	/* The size is the guest's RAM: QEMU ftruncates only a smaller file. */
	if ((in.valid & FATTR_SIZE) &&
	    (ino != REMUS_FUSE_RAM_INO || in.size != r->size))
		return -EPERM;
	/* Times: accepted and forgotten, nothing reads them. */
	reply_attr(r, ino, out);
	return 0;
}

static int do_open(uint64_t ino, const uint8_t *body, size_t n,
		   struct remus_fuse_reply *out)
{
	struct fuse_open_in in;

	if (n < sizeof(in))
		return -EINVAL;
	memcpy(&in, body, sizeof(in));
	if (ino != REMUS_FUSE_RAM_INO)
		return -EISDIR;
	if (in.flags & O_TRUNC)
		return -EPERM;
	memset(&out->body.open, 0, sizeof(out->body.open));
	/* Keep the page cache across opens: it holds the guest's RAM. */
	out->body.open.open_flags = FOPEN_KEEP_CACHE;
	out->body_len = sizeof(out->body.open);
	return 0;
}

static int do_read(struct remus_fuse_ram *r, uint64_t ino,
		   const uint8_t *body, size_t n, struct remus_fuse_reply *out)
{
	struct fuse_read_in in;
	uint64_t len;

	if (n < sizeof(in))
		return -EINVAL;
	memcpy(&in, body, sizeof(in));
	if (ino != REMUS_FUSE_RAM_INO)
		return -EISDIR;
	if (in.offset >= r->size)
		len = 0;
	else
		len = r->size - in.offset;
	if (len > in.size)
		len = in.size;
	if (len > REMUS_FUSE_MAX_WRITE)
		len = REMUS_FUSE_MAX_WRITE;
	out->data = len ? r->copy + in.offset : NULL;
	out->data_len = len;
	pthread_mutex_lock(&r->lock);
	r->read_requests++;
	r->read_bytes += len;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static int do_write(struct remus_fuse_ram *r, uint64_t ino,
		    const uint8_t *body, size_t n,
		    struct remus_fuse_reply *out)
{
	struct fuse_write_in in;
	uint64_t first, last, p;

	if (n < sizeof(in))
		return -EINVAL;
	memcpy(&in, body, sizeof(in));
	if (ino != REMUS_FUSE_RAM_INO)
		return -EISDIR;
	if (in.size > n - sizeof(in))
		return -EINVAL;
	if (in.size == 0) {
		memset(&out->body.write, 0, sizeof(out->body.write));
		out->body_len = sizeof(out->body.write);
		return 0;
	}
	/* The file never grows: QEMU maps exactly its size. */
	if (in.offset >= r->size || in.size > r->size - in.offset)
		return -EFBIG;
	/* Copy first, mark second: the file comment's timeline. */
	memcpy(r->copy + in.offset, body + sizeof(in), in.size);
	first = in.offset / PAGE;
	last = (in.offset + in.size - 1) / PAGE;
	pthread_mutex_lock(&r->lock);
	for (p = first; p <= last; p++) {
		uint64_t bit = UINT64_C(1) << (p % 64);

		if (!(r->bits[p / 64] & bit)) {
			r->bits[p / 64] |= bit;
			r->ndirty++;
		}
	}
	r->write_requests++;
	r->write_bytes += in.size;
	pthread_mutex_unlock(&r->lock);
	memset(&out->body.write, 0, sizeof(out->body.write));
	out->body.write.size = in.size;
	out->body_len = sizeof(out->body.write);
	return 0;
}

static void do_statfs(const struct remus_fuse_ram *r,
		      struct remus_fuse_reply *out)
{
	struct fuse_kstatfs *st = &out->body.statfs.st;

	memset(&out->body.statfs, 0, sizeof(out->body.statfs));
	st->blocks = r->size / PAGE;
	st->files = 2;
	st->bsize = PAGE;
	st->frsize = PAGE;
	st->namelen = 255;
	out->body_len = sizeof(out->body.statfs);
}

void remus_fuse_ram_handle(struct remus_fuse_ram *r, const uint8_t *req,
			   size_t len, struct remus_fuse_reply *out)
{
	struct fuse_in_header h;
	const uint8_t *body;
	size_t n;
	int rc = remus_fuse_request_open(req, len, r->proto_minor, &h, &body, &n, out);

	if (rc > 0)
		return;
	if (rc < 0)
		goto out;
	switch (h.opcode) {
	case FUSE_INIT:
		rc = do_init(r, body, n, out);
		break;
	case FUSE_LOOKUP:
		rc = do_lookup(r, h.nodeid, body, n, out);
		break;
	case FUSE_GETATTR:
		if (h.nodeid != FUSE_ROOT_ID && h.nodeid != REMUS_FUSE_RAM_INO)
			rc = -ENOENT;
		else
			reply_attr(r, h.nodeid, out);
		break;
	case FUSE_SETATTR:
		rc = do_setattr(r, h.nodeid, body, n, out);
		break;
	case FUSE_OPEN:
		rc = do_open(h.nodeid, body, n, out);
		break;
	case FUSE_READ:
		rc = do_read(r, h.nodeid, body, n, out);
		break;
	case FUSE_WRITE:
		rc = do_write(r, h.nodeid, body, n, out);
		break;
	case FUSE_STATFS:
		do_statfs(r, out);
		break;
	case FUSE_FLUSH:
	case FUSE_RELEASE:
	case FUSE_FSYNC:
	case FUSE_DESTROY:
		break; /* empty success: the data is written when it arrives */
	case FUSE_FORGET:
	case FUSE_BATCH_FORGET:
	case FUSE_INTERRUPT:
		/* No reply by protocol; nothing of ours ever blocks. */
		out->none = true;
		return;
	default:
		/* The kernel remembers ENOSYS for xattrs, access, lseek,
		 * fallocate...: each is asked once. */
		rc = -ENOSYS;
		break;
	}
out:
	remus_fuse_reply_finish(out, rc);
}

int remus_fuse_request_open(const uint8_t *req, size_t len, uint32_t proto_minor,
			    struct fuse_in_header *h, const uint8_t **body, size_t *n,
			    struct remus_fuse_reply *out)
{
	memset(out, 0, sizeof(*out));
	if (len < sizeof(*h)) {
		out->none = true; /* nothing to answer to */
		return 1;
	}
	memcpy(h, req, sizeof(*h));
	out->hdr.unique = h->unique;
	*body = req + sizeof(*h);
	*n = len - sizeof(*h);
	if (h->len != len || (proto_minor == 0 && h->opcode != FUSE_INIT))
		return -EIO;
	return 0;
}

void remus_fuse_reply_finish(struct remus_fuse_reply *out, int rc)
{
	if (rc < 0) {
		out->body_len = 0;
		out->data = NULL;
		out->data_len = 0;
	}
	out->hdr.error = rc;
	out->hdr.len = (uint32_t)(sizeof(out->hdr) + out->body_len +
				  out->data_len);
}

static void handle_ram(void *ctx, const uint8_t *req, size_t len,
		       struct remus_fuse_reply *out)
{
	remus_fuse_ram_handle(ctx, req, len, out);
}

int remus_fuse_serve_one(int fuse_fd, uint8_t *buf,
			 remus_fuse_handler_fn *handle, void *ctx)
{
	struct remus_fuse_reply rep;
	struct iovec iov[3];
	ssize_t got;
	int k = 0;

	got = read(fuse_fd, buf, REMUS_FUSE_BUF_SIZE);
	if (got < 0) {
		/* ENOENT: a request interrupted before we read it. */
		if (errno == EAGAIN || errno == EINTR || errno == ENOENT)
			return 0;
		return -errno;
	}
	handle(ctx, buf, (size_t)got, &rep);
	if (rep.none)
		return 1;
	iov[k++] = (struct iovec){ &rep.hdr, sizeof(rep.hdr) };
	if (rep.body_len)
		iov[k++] = (struct iovec){ &rep.body, rep.body_len };
	if (rep.data_len)
		iov[k++] = (struct iovec){ (void *)rep.data, rep.data_len };
	/* ENOENT: the request was interrupted meanwhile. */
	if (writev(fuse_fd, iov, k) < 0 && errno != ENOENT)
		return -errno;
	return 1;
}

/* The server thread: one request at a time until told to stop or the
 * connection is gone. */
static void *serve(void *arg)
{
	struct remus_fuse_server *s = arg;
	uint8_t *buf = malloc(REMUS_FUSE_BUF_SIZE);
	int err = 0;

	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		struct pollfd p[2] = { { s->fuse_fd, POLLIN, 0 },
				       { s->stop_fd, POLLIN, 0 } };
		int r;

		/* Read first, poll only when there is nothing: a flush sends
		 * one request per run of dirty pages, back to back.  ENODEV:
		 * unmounted or aborted; an error only if nobody asked us to
		 * stop. */
		r = remus_fuse_serve_one(s->fuse_fd, buf, handle_ram, &s->ram);
		if (r < 0) {
			err = r;
			break;
		}
		if (r > 0)
			continue;
		if (poll(p, 2, -1) < 0 && errno != EINTR) {
			err = -errno;
			break;
		}
		if (p[1].revents)
			break;
	}
out:
	free(buf);
	pthread_mutex_lock(&s->ram.lock);
	if (err == -ENODEV && s->stopping)
		err = 0; /* our own unmount ended the connection */
	if (err && !s->error)
		s->error = err;
	pthread_mutex_unlock(&s->ram.lock);
	if (err)
		remus_err("dirty", "FUSE server of %s stopped: %s; guest RAM "
			  "there is no longer served", s->path ? s->path : "?",
			  strerror(-err));
	return NULL;
}

/* Lifts the per-mount writeback limits the kernel gives a FUSE bdi
 * (strict_limit=1, max_ratio=1: ~1% of memory): beyond them it writes
 * back between collects and throttles the writer.  Best effort. */
void remus_fuse_raise_bdi(dev_t dev)
{
	static const char *const knobs[][2] = { { "strict_limit", "0" },
						{ "max_ratio", "100" } };
	char path[128];
	size_t i;

	for (i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
		int fd;

		snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/%s",
			 major(dev), minor(dev), knobs[i][0]);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, knobs[i][1], strlen(knobs[i][1])) < 0)
			remus_warn("dirty", "cannot set %s=%s: %s", path,
				   knobs[i][1], strerror(errno));
		if (fd >= 0)
			close(fd);
	}
}

static void raise_bdi(const char *mnt)
{
	struct stat st;

	if (stat(mnt, &st) == 0)
		remus_fuse_raise_bdi(st.st_dev);
}

/* The flusher (see fuse_ram.h): forked, so it runs only async-signal-safe
 * calls.  It answers each byte it reads with fsync's 0 or -errno, after
 * the result of opening the file. */
static int flusher_start(struct remus_fuse_server *s)
{
	int sv[2], fd;
	int32_t res;
	char go;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	s->flusher_pid = fork();
	if (s->flusher_pid < 0) {
		res = -errno;
		close(sv[0]);
		close(sv[1]);
		return res;
	}
	if (s->flusher_pid == 0) {
		/* Keep nothing of ours, above all not /dev/fuse. */
		if (dup2(sv[1], 3) < 0)
			_exit(1);
		close_range(4, ~0u, 0);
		fd = open(s->path, O_RDWR | O_CLOEXEC);
		res = fd < 0 ? -errno : 0;
		if (write(3, &res, sizeof(res)) != sizeof(res) || fd < 0)
			_exit(1);
		while (read(3, &go, 1) == 1) {
			res = fsync(fd) < 0 ? -errno : 0;
			if (write(3, &res, sizeof(res)) != sizeof(res))
				break;
		}
		_exit(0);
	}
	close(sv[1]);
	s->flusher_fd = sv[0];
	if (read(s->flusher_fd, &res, sizeof(res)) != sizeof(res))
		return -EIO;
	return res;
}

int remus_fuse_server_open(struct remus_fuse_server *s, const char *mount_dir,
			   uint64_t size, bool allow_other, bool raise_bdi_limits)
{
	struct stat st;
	char opts[160];
	int rc;

	memset(s, 0, sizeof(*s));
	s->fuse_fd = s->stop_fd = s->flusher_fd = -1;
	s->flusher_pid = -1;
	rc = remus_fuse_ram_init(&s->ram, size);
	if (rc < 0)
		return rc;
	s->ram.file_mode_other = allow_other;
	s->mnt = strdup(mount_dir);
	if (!s->mnt || asprintf(&s->path, "%s/%s", mount_dir,
				REMUS_FUSE_RAM_NAME) < 0) {
		s->path = NULL;
		rc = -ENOMEM;
		goto out;
	}
	s->fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (s->fuse_fd < 0) {
		rc = -errno;
		remus_err("dirty", "cannot open /dev/fuse: %s", strerror(-rc));
		goto out;
	}
	s->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (s->stop_fd < 0) {
		rc = -errno;
		goto out;
	}
	snprintf(opts, sizeof(opts),
		 "fd=%d,rootmode=40000,user_id=%u,group_id=%u%s", s->fuse_fd,
		 s->ram.uid, s->ram.gid, allow_other ? ",allow_other" : "");
	if (mount("remus-ram", mount_dir, "fuse.remus-ram",
		  MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0) {
		rc = -errno;
		remus_err("dirty", "cannot mount the guest RAM filesystem on "
			  "%s: %s (needs root and an empty directory)",
			  mount_dir, strerror(-rc));
		goto out;
	}
	s->mounted = true;
	rc = -pthread_create(&s->thread, NULL, serve, s);
	if (rc < 0)
		goto out;
	s->thread_started = true;
	if (raise_bdi_limits)
		raise_bdi(mount_dir);
	if (stat(s->path, &st) < 0) {
		rc = -errno;
		remus_err("dirty", "cannot reach %s on the new mount: %s",
			  s->path, strerror(-rc));
		goto out;
	}
	rc = flusher_start(s);
	if (rc < 0) {
		remus_err("dirty", "cannot start the flusher of %s: %s",
			  s->path, strerror(-rc));
		goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		remus_fuse_server_close(s);
	return rc;
}

int remus_fuse_server_flush(struct remus_fuse_server *s)
{
	int err;

	char go = 'f';
	int32_t res;
	ssize_t n;

	if (send(s->flusher_fd, &go, 1, MSG_NOSIGNAL) != 1)
		return -EIO;
	do
		n = read(s->flusher_fd, &res, sizeof(res));
	while (n < 0 && errno == EINTR);
	if (n != sizeof(res)) {
		remus_err("dirty", "the flusher of %s is gone: dirty pages "
			  "can no longer be collected", s->path);
		return -EIO;
	}
	if (res < 0)
		return res;
	pthread_mutex_lock(&s->ram.lock);
	err = s->error;
	pthread_mutex_unlock(&s->ram.lock);
	return err ? -EIO : 0;
}

void remus_fuse_server_close(struct remus_fuse_server *s)
{
	if (s->thread_started) {
		pthread_mutex_lock(&s->ram.lock);
		s->stopping = true;
		pthread_mutex_unlock(&s->ram.lock);
	}
	if (s->flusher_fd >= 0)
		close(s->flusher_fd); /* EOF: it closes the file and exits */
	s->flusher_fd = -1;
	if (s->flusher_pid > 0)
		while (waitpid(s->flusher_pid, NULL, 0) < 0 && errno == EINTR)
			;
	s->flusher_pid = -1;
	if (s->mounted && umount2(s->mnt, 0) < 0) {
		/* Still mapped (QEMU alive) or open: detach it; it goes
		 * when its last user does, and faults after we stop. */
		remus_warn("dirty", "%s busy (%s): detaching it", s->mnt,
			   strerror(errno));
		if (umount2(s->mnt, MNT_DETACH) < 0)
			remus_err("dirty", "cannot unmount %s: %s", s->mnt,
				  strerror(errno));
	}
	s->mounted = false;
	if (s->thread_started) {
		uint64_t one = 1;

		if (write(s->stop_fd, &one, sizeof(one)) < 0)
			remus_err("dirty", "cannot stop the FUSE server: %s",
				  strerror(errno));
		pthread_join(s->thread, NULL);
	}
	s->thread_started = false;
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	s->stop_fd = -1;
	if (s->fuse_fd >= 0)
		close(s->fuse_fd);
	s->fuse_fd = -1;
	free(s->path);
	s->path = NULL;
	free(s->mnt);
	s->mnt = NULL;
	remus_fuse_ram_release(&s->ram);
}
