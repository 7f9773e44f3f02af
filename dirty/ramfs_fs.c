// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The filesystem of `remusd ramfs` (ramfs.h): directories and regular
 * files whose content is a memfd each, served one /dev/fuse request at a
 * time by a pure handler, and the control protocol's parsers.  No mount
 * here (ramfs.c); the unit tests and the fuzz target drive this file.
 *
 * What libvirt and QEMU do on it (libvirt 11, memoryBacking source
 * type='file', access mode='shared'): libvirt mkdirs
 * memory_backing_dir/ID-NAME (and may chown it: SETATTR uid/gid/mode, and
 * try xattrs: ENOSYS, which the kernel turns into EOPNOTSUPP and libvirt
 * tolerates); QEMU creates pc.ram there, ftruncates it to the guest's RAM
 * (SETATTR size) and maps it MAP_SHARED; at shutdown libvirt removes the
 * tree (READDIR, UNLINK, RMDIR).  A file's memfds go when it is unlinked
 * and neither open nor known to the kernel (FORGET).
 *
 * WRITE: copy, THEN mark (atomic or, release), THEN reply.  A tracker in
 * another process that clears a bit (atomic exchange, acquire) and then
 * reads the page sees at least the data of the WRITE that set it; a later
 * WRITE of the page sets the bit again and is reported next time.  The
 * other order could let a collect report the page and read its old
 * content, which then is never sent again.
 */
#include "dirty/ramfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
/* The kernel is the only one who changes anything here, and it updates
 * its cache from our replies: what it was told stays true. */
#define VALID_S 86400

struct remus_ramfs_node {
	uint64_t ino, parent;
	char *name; /* owned; NULL once unlinked (or the root) */
	uint32_t mode, uid, gid;
	struct timespec atime, mtime, ctime;
	uint64_t nlookup; /* the kernel's references (LOOKUP - FORGET) */
	uint32_t nopen;	  /* OPEN/CREATE - RELEASE */
	uint32_t nsubdirs;
	bool attached;
	/* directories: children in creation order, so in ino order */
	struct remus_ramfs_node *first, *last, *next, *prev;
	/* regular files */
	int content_fd, bits_fd;
	uint64_t size;
	uint8_t *content;   /* MAP_SHARED of content_fd, @size bytes */
	uint64_t *bits;	    /* MAP_SHARED of bits_fd, @bits_len bytes */
	size_t bits_len;
};

static bool is_dir(const struct remus_ramfs_node *n)
{
	return S_ISDIR(n->mode);
}

static size_t bits_bytes(uint64_t size)
{
	uint64_t words = (size / PAGE + 63) / 64;

	return (size_t)((words * 8 + PAGE - 1) / PAGE * PAGE);
}

int remus_ramfs_parse_req(const void *buf, size_t len,
			  struct remus_ramfs_req *out)
{
	if (len != sizeof(*out))
		return -EBADMSG;
	memcpy(out, buf, sizeof(*out));
	if (out->magic != REMUS_RAMFS_MAGIC ||
	    out->version != REMUS_RAMFS_VERSION ||
	    (out->op != REMUS_RAMFS_OP_ATTACH && out->op != REMUS_RAMFS_OP_STAT))
		return -EBADMSG;
	return 0;
}

int remus_ramfs_parse_rep(const void *buf, size_t len, uint16_t op,
			  struct remus_ramfs_rep *out)
{
	if (len != sizeof(*out))
		return -EBADMSG;
	memcpy(out, buf, sizeof(*out));
	if (out->magic != REMUS_RAMFS_MAGIC ||
	    out->version != REMUS_RAMFS_VERSION || out->op != op ||
	    out->status > 0 || out->status <= -4096)
		return -EBADMSG;
	return 0;
}

static struct remus_ramfs_node *node_get(const struct remus_ramfs *fs,
					 uint64_t ino)
{
	return ino < fs->cap ? fs->nodes[ino] : NULL;
}

static void now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

static void node_free(struct remus_ramfs *fs, struct remus_ramfs_node *n)
{
	if (n->content)
		munmap(n->content, n->size);
	if (n->bits)
		munmap(n->bits, n->bits_len);
	if (n->content_fd >= 0)
		close(n->content_fd);
	if (n->bits_fd >= 0)
		close(n->bits_fd);
	free(n->name);
	fs->nodes[n->ino] = NULL;
	fs->nnodes--;
	free(n);
}

/* Frees @n once nothing refers to it: unlinked, the kernel forgot it,
 * nobody has it open. */
static void node_maybe_free(struct remus_ramfs *fs, struct remus_ramfs_node *n)
{
	if (n->ino != FUSE_ROOT_ID && !n->name && n->nlookup == 0 &&
	    n->nopen == 0)
		node_free(fs, n);
}

static struct remus_ramfs_node *node_new(struct remus_ramfs *fs, uint32_t mode,
					 uint32_t uid, uint32_t gid)
{
	struct remus_ramfs_node *n;

	if (fs->nnodes >= REMUS_RAMFS_MAX_NODES)
		return NULL;
	if (fs->next_ino >= fs->cap) {
		uint64_t cap = fs->cap ? fs->cap * 2 : 64;
		struct remus_ramfs_node **p =
			realloc(fs->nodes, cap * sizeof(*p));

		if (!p)
			return NULL;
		memset(p + fs->cap, 0, (cap - fs->cap) * sizeof(*p));
		fs->nodes = p;
		fs->cap = cap;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->content_fd = n->bits_fd = -1;
	n->ino = fs->next_ino++;
	n->mode = mode;
	n->uid = uid;
	n->gid = gid;
	now(&n->atime);
	n->mtime = n->ctime = n->atime;
	fs->nodes[n->ino] = n;
	fs->nnodes++;
	return n;
}

int remus_ramfs_init(struct remus_ramfs *fs)
{
	struct remus_ramfs_node *root;
	long pages = sysconf(_SC_PHYS_PAGES);

	memset(fs, 0, sizeof(*fs));
	fs->next_ino = FUSE_ROOT_ID;
	fs->total_pages = pages > 0 ? (uint64_t)pages : UINT64_C(1) << 20;
	fs->dirbuf = malloc(REMUS_RAMFS_DIRBUF);
	root = fs->dirbuf ? node_new(fs, S_IFDIR | 0755, 0, 0) : NULL;
	if (!root) {
		remus_ramfs_release(fs);
		return -ENOMEM;
	}
	return 0;
}

void remus_ramfs_release(struct remus_ramfs *fs)
{
	uint64_t i;

	for (i = 0; i < fs->cap; i++)
		if (fs->nodes[i])
			node_free(fs, fs->nodes[i]);
	free(fs->nodes);
	free(fs->dirbuf);
	memset(fs, 0, sizeof(*fs));
}

/* Content and bitmap to @size bytes.  On error the file is as before. */
static int resize(struct remus_ramfs_node *n, uint64_t size)
{
	size_t blen = bits_bytes(size);
	void *c = NULL, *b = NULL;
	int rc;

	if (size > REMUS_RAMFS_MAX_FILE)
		return -EFBIG;
	if (size == n->size)
		return 0;
	if (ftruncate(n->content_fd, (off_t)size) < 0 ||
	    ftruncate(n->bits_fd, (off_t)blen) < 0) {
		rc = -errno;
		goto fail;
	}
	if (size) {
		c = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 n->content_fd, 0);
		b = mmap(NULL, blen, PROT_READ | PROT_WRITE, MAP_SHARED,
			 n->bits_fd, 0);
		if (c == MAP_FAILED || b == MAP_FAILED) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	if (n->content)
		munmap(n->content, n->size);
	if (n->bits)
		munmap(n->bits, n->bits_len);
	n->content = c;
	n->bits = b;
	n->bits_len = size ? blen : 0;
	/* Bits of pages cut off in the last word. */
	if (size && (size / PAGE) % 64)
		n->bits[size / PAGE / 64] &=
			(UINT64_C(1) << (size / PAGE % 64)) - 1;
	n->size = size;
	return 0;
fail:
	if (c && c != MAP_FAILED)
		munmap(c, size);
	if (b && b != MAP_FAILED)
		munmap(b, blen);
	/* Back to the old sizes (a memfd shrinks and grows at will). */
	if (ftruncate(n->content_fd, (off_t)n->size) < 0 ||
	    ftruncate(n->bits_fd, (off_t)bits_bytes(n->size)) < 0)
		rc = -EIO;
	return rc;
}

static void fill_attr(const struct remus_ramfs_node *n, struct fuse_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = n->ino;
	a->mode = n->mode;
	a->uid = n->uid;
	a->gid = n->gid;
	a->blksize = PAGE;
	a->atime = (uint64_t)n->atime.tv_sec;
	a->atimensec = (uint32_t)n->atime.tv_nsec;
	a->mtime = (uint64_t)n->mtime.tv_sec;
	a->mtimensec = (uint32_t)n->mtime.tv_nsec;
	a->ctime = (uint64_t)n->ctime.tv_sec;
	a->ctimensec = (uint32_t)n->ctime.tv_nsec;
	if (is_dir(n)) {
		a->nlink = 2 + n->nsubdirs;
	} else {
		a->nlink = n->name ? 1 : 0;
		a->size = n->size;
		a->blocks = n->size / 512;
	}
}

static void fill_entry(struct remus_ramfs_node *n, struct fuse_entry_out *e)
{
	memset(e, 0, sizeof(*e));
	e->nodeid = n->ino;
	e->generation = 1; /* inos are never reused */
	e->entry_valid = VALID_S;
	e->attr_valid = VALID_S;
	fill_attr(n, &e->attr);
	n->nlookup++;
}

/* A name in @body (@n bytes, NUL-terminated inside), one path element. */
static int get_name(const uint8_t *body, size_t n, const char **name)
{
	const uint8_t *nul = memchr(body, '\0', n);
	size_t len;

	if (!nul)
		return -EINVAL;
	len = (size_t)(nul - body);
	if (len == 0 || memchr(body, '/', len))
		return -EINVAL;
	if (len > 255)
		return -ENAMETOOLONG;
	*name = (const char *)body;
	return 0;
}

static struct remus_ramfs_node *child(const struct remus_ramfs_node *dir,
				      const char *name)
{
	struct remus_ramfs_node *c;

	for (c = dir->first; c; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static struct remus_ramfs_node *get_dir(const struct remus_ramfs *fs,
					uint64_t ino, int *rc)
{
	struct remus_ramfs_node *d = node_get(fs, ino);

	*rc = !d ? -ENOENT : !is_dir(d) ? -ENOTDIR : !d->name && ino != FUSE_ROOT_ID ? -ENOENT : 0;
	return *rc ? NULL : d;
}

static void link_child(struct remus_ramfs_node *dir, struct remus_ramfs_node *c)
{
	c->parent = dir->ino;
	c->prev = dir->last;
	if (dir->last)
		dir->last->next = c;
	else
		dir->first = c;
	dir->last = c;
	if (is_dir(c))
		dir->nsubdirs++;
	now(&dir->mtime);
	dir->ctime = dir->mtime;
}

static void unlink_child(struct remus_ramfs_node *dir, struct remus_ramfs_node *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		dir->first = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		dir->last = c->prev;
	c->next = c->prev = NULL;
	if (is_dir(c))
		dir->nsubdirs--;
	free(c->name);
	c->name = NULL;
	now(&dir->mtime);
	dir->ctime = dir->mtime;
	now(&c->ctime);
}

/* MKDIR, MKNOD, CREATE: a new node @name in @parent. */
static int make(struct remus_ramfs *fs, const struct fuse_in_header *h,
		const char *name, uint32_t mode, struct remus_ramfs_node **out)
{
	struct remus_ramfs_node *dir, *n;
	int rc;

	dir = get_dir(fs, h->nodeid, &rc);
	if (!dir)
		return rc;
	if (child(dir, name))
		return -EEXIST;
	n = node_new(fs, mode, h->uid, h->gid);
	if (!n)
		return fs->nnodes >= REMUS_RAMFS_MAX_NODES ? -ENOSPC : -ENOMEM;
	n->name = strdup(name);
	if (!n->name)
		goto nomem;
	if (S_ISREG(mode)) {
		char tag[300];

		snprintf(tag, sizeof(tag), "remus-ramfs:%s", name);
		n->content_fd = memfd_create(tag, MFD_CLOEXEC);
		n->bits_fd = memfd_create("remus-ramfs-bits", MFD_CLOEXEC);
		if (n->content_fd < 0 || n->bits_fd < 0) {
			rc = -errno;
			node_free(fs, n);
			return rc;
		}
	}
	link_child(dir, n);
	*out = n;
	return 0;
nomem:
	node_free(fs, n);
	return -ENOMEM;
}

/* MKDIR, MKNOD, CREATE: node @type named by the string at @name (@len
 * bytes, after the request's fixed part) with @mode less @umask. */
static int make_named(struct remus_ramfs *fs, const struct fuse_in_header *h,
		      const uint8_t *name, size_t len, uint32_t type, uint32_t mode,
		      uint32_t umask, struct remus_ramfs_node **out)
{
	const char *s;
	int rc = get_name(name, len, &s);

	if (rc < 0)
		return rc;
	return make(fs, h, s, type | (mode & ~umask & 07777), out);
}

static int do_mkdir(struct remus_ramfs *fs, const struct fuse_in_header *h,
		    const uint8_t *body, size_t n, struct remus_fuse_reply *out)
{
	struct fuse_mkdir_in in;
	struct remus_ramfs_node *d;
	int rc;

	if (n < sizeof(in))
		return -EINVAL;
	memcpy(&in, body, sizeof(in));
	rc = make_named(fs, h, body + sizeof(in), n - sizeof(in), S_IFDIR, in.mode, in.umask, &d);
	if (rc < 0)
		return rc;
	fill_entry(d, &out->body.entry);
	out->body_len = sizeof(out->body.entry);
	return 0;
}

static int do_mknod(struct remus_ramfs *fs, const struct fuse_in_header *h,
		    const uint8_t *body, size_t n, struct remus_fuse_reply *out)
{
	struct fuse_mknod_in in;
	struct remus_ramfs_node *f;
	int rc;

	if (n < sizeof(in))
		return -EINVAL;
	memcpy(&in, body, sizeof(in));
	if (!S_ISREG(in.mode))
		return -EPERM; /* guest RAM files only */
	rc = make_named(fs, h, body + sizeof(in), n - sizeof(in), S_IFREG, in.mode, in.umask, &f);
	if (rc < 0)
		return rc;
	fill_entry(f, &out->body.entry);
	out->body_len = sizeof(out->body.entry);
	return 0;
}

static void fill_open(struct remus_ramfs_node *f, struct fuse_open_out *o)
{
	memset(o, 0, sizeof(*o));
	o->fh = f->ino;
	/* Keep the page cache across opens: it holds the guest's RAM. */
	o->open_flags = FOPEN_KEEP_CACHE;
	f->nopen++;
}

static int do_create(struct remus_ramfs *fs, const struct fuse_in_header *h,
		     const uint8_t *body, size_t n,
		     struct remus_fuse_reply *out)
{
	struct fuse_create_in in;
	struct remus_ramfs_node *f;
	int rc;

	if (n < sizeof(in))
		return -EINVAL;
	memcpy(&in, body, sizeof(in));
	if (!S_ISREG(in.mode))
		return -EPERM;
	rc = make_named(fs, h, body + sizeof(in), n - sizeof(in), S_IFREG, in.mode, in.umask, &f);
	if (rc < 0)
		return rc;
	fill_entry(f, &out->body.create.entry);
	fill_open(f, &out->body.create.open);
	out->body_len = sizeof(out->body.create);
	return 0;
}

static int do_lookup(struct remus_ramfs *fs, uint64_t parent,
		     const uint8_t *body, size_t n,
		     struct remus_fuse_reply *out)
{
	struct remus_ramfs_node *dir, *c;
	const char *name;
	int rc;

	dir = get_dir(fs, parent, &rc);
	if (!dir)
		return rc;
	if ((rc = get_name(body, n, &name)) < 0)
		return rc;
	c = child(dir, name);
	if (!c)
		return -ENOENT;
	fill_entry(c, &out->body.entry);
	out->body_len = sizeof(out->body.entry);
	return 0;
}

static void forget(struct remus_ramfs *fs, uint64_t ino, uint64_t nlookup)
{
	struct remus_ramfs_node *x = node_get(fs, ino);

	if (!x || ino == FUSE_ROOT_ID)
		return;
	x->nlookup = nlookup > x->nlookup ? 0 : x->nlookup - nlookup;
	node_maybe_free(fs, x);
}

static void do_forget(struct remus_ramfs *fs, const struct fuse_in_header *h,
		      const uint8_t *body, size_t n)
{
	struct fuse_forget_in in;

	if (n < sizeof(in))
		return;
	memcpy(&in, body, sizeof(in));
	forget(fs, h->nodeid, in.nlookup);
}

static void do_batch_forget(struct remus_ramfs *fs, const uint8_t *body,
			    size_t n)
{
	struct fuse_batch_forget_in in;
	struct fuse_forget_one one;
	uint32_t i;

	if (n < sizeof(in))
		return;
	memcpy(&in, body, sizeof(in));
	for (i = 0; i < in.count &&
		    sizeof(in) + (size_t)(i + 1) * sizeof(one) <= n; i++) {
		memcpy(&one, body + sizeof(in) + (size_t)i * sizeof(one),
		       sizeof(one));
		forget(fs, one.nodeid, one.nlookup);
	}
}

static int do_setattr(struct remus_ramfs *fs, uint64_t ino,
		      const uint8_t *body, size_t n,
		      struct remus_fuse_reply *out)
{
	struct remus_ramfs_node *x = node_get(fs, ino);
	struct fuse_setattr_in in;
	int rc;

	if (!x)
		return -ENOENT;
	if (n < sizeof(in))
		return -EINVAL;
	memcpy(&in, body, sizeof(in));
	if (in.valid & FATTR_SIZE) {
		if (is_dir(x))
			return -EISDIR;
		/* The tracker mapped the file at its size: QEMU sizes it
		 * once, before mapping it. */
		if (in.size != x->size && x->attached)
			return -EBUSY;
		if ((rc = resize(x, in.size)) < 0)
			return rc;
		now(&x->mtime);
	}
	if (in.valid & FATTR_MODE)
		x->mode = (x->mode & S_IFMT) | (in.mode & 07777);
	if (in.valid & FATTR_UID)
		x->uid = in.uid;
	if (in.valid & FATTR_GID)
		x->gid = in.gid;
	if (in.valid & FATTR_ATIME_NOW)
		now(&x->atime);
	else if (in.valid & FATTR_ATIME)
		x->atime = (struct timespec){ (time_t)in.atime,
					      in.atimensec % 1000000000 };
	if (in.valid & FATTR_MTIME_NOW)
		now(&x->mtime);
	else if (in.valid & FATTR_MTIME)
		x->mtime = (struct timespec){ (time_t)in.mtime,
					      in.mtimensec % 1000000000 };
	if (in.valid & FATTR_CTIME)
		x->ctime = (struct timespec){ (time_t)in.ctime,
					      in.ctimensec % 1000000000 };
	else
		now(&x->ctime);
	memset(&out->body.attr, 0, sizeof(out->body.attr));
	out->body.attr.attr_valid = VALID_S;
	fill_attr(x, &out->body.attr.attr);
	out->body_len = sizeof(out->body.attr);
	return 0;
}

static int do_remove(struct remus_ramfs *fs, uint64_t parent,
		     const uint8_t *body, size_t n, bool want_dir)
{
	struct remus_ramfs_node *dir, *c;
	const char *name;
	int rc;

	dir = get_dir(fs, parent, &rc);
	if (!dir)
		return rc;
	if ((rc = get_name(body, n, &name)) < 0)
		return rc;
	c = child(dir, name);
	if (!c)
		return -ENOENT;
	if (want_dir && !is_dir(c))
		return -ENOTDIR;
	if (!want_dir && is_dir(c))
		return -EISDIR;
	if (want_dir && c->first)
		return -ENOTEMPTY;
	unlink_child(dir, c);
	node_maybe_free(fs, c);
	return 0;
}

static struct remus_ramfs_node *get_file(const struct remus_ramfs *fs,
					 uint64_t ino, int *rc)
{
	struct remus_ramfs_node *f = node_get(fs, ino);

	*rc = !f ? -ENOENT : is_dir(f) ? -EISDIR : 0;
	return *rc ? NULL : f;
}

static int do_open(struct remus_ramfs *fs, uint64_t ino, const uint8_t *body,
		   size_t n, bool dir, struct remus_fuse_reply *out)
{
	struct remus_ramfs_node *x = node_get(fs, ino);

	if (n < sizeof(struct fuse_open_in))
		return -EINVAL;
	if (!x)
		return -ENOENT;
	if (dir != is_dir(x))
		return dir ? -ENOTDIR : -EISDIR;
	if (dir) {
		memset(&out->body.open, 0, sizeof(out->body.open));
		out->body.open.fh = ino;
	} else {
		fill_open(x, &out->body.open);
	}
	out->body_len = sizeof(out->body.open);
	return 0;
}

static void do_release(struct remus_ramfs *fs, uint64_t ino)
{
	struct remus_ramfs_node *f = node_get(fs, ino);

	if (!f || is_dir(f) || f->nopen == 0)
		return;
	f->nopen--;
	node_maybe_free(fs, f);
}

static int do_read(struct remus_ramfs *fs, uint64_t ino, const uint8_t *body,
		   size_t n, struct remus_fuse_reply *out)
{
	struct fuse_read_in in;
	struct remus_ramfs_node *f;
	uint64_t len;
	int rc;

	if (n < sizeof(in))
		return -EINVAL;
	memcpy(&in, body, sizeof(in));
	if (!(f = get_file(fs, ino, &rc)))
		return rc;
	len = in.offset >= f->size ? 0 : f->size - in.offset;
	if (len > in.size)
		len = in.size;
	if (len > REMUS_FUSE_MAX_WRITE)
		len = REMUS_FUSE_MAX_WRITE;
	out->data = len ? f->content + in.offset : NULL;
	out->data_len = len;
	return 0;
}

static int do_write(struct remus_ramfs *fs, uint64_t ino, const uint8_t *body,
		    size_t n, struct remus_fuse_reply *out)
{
	struct fuse_write_in in;
	struct remus_ramfs_node *f;
	uint64_t p, last;
	int rc;

	if (n < sizeof(in))
		return -EINVAL;
	memcpy(&in, body, sizeof(in));
	if (!(f = get_file(fs, ino, &rc)))
		return rc;
	if (in.size > n - sizeof(in) || in.size > REMUS_FUSE_MAX_WRITE)
		return -EINVAL;
	memset(&out->body.write, 0, sizeof(out->body.write));
	out->body_len = sizeof(out->body.write);
	if (in.size == 0)
		return 0;
	/* Files are sized by SETATTR (QEMU's ftruncate) before they are
	 * written; the writeback never goes past the size it knows. */
	if (in.offset >= f->size || in.size > f->size - in.offset)
		return -EFBIG;
	/* Copy first, mark second, reply third: the file comment. */
	memcpy(f->content + in.offset, body + sizeof(in), in.size);
	last = (in.offset + in.size - 1) / PAGE;
	for (p = in.offset / PAGE; p <= last; p++)
		__atomic_fetch_or(&f->bits[p / 64], UINT64_C(1) << (p % 64),
				  __ATOMIC_RELEASE);
	out->body.write.size = in.size;
	return 0;
}

/* One dirent into @buf at *@off if it fits in @cap; false when full. */
static bool put_dirent(uint8_t *buf, size_t cap, size_t *off, uint64_t ino,
		       uint64_t cookie, uint32_t mode, const char *name)
{
	struct fuse_dirent d;
	size_t nlen = strlen(name), sz = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + nlen);

	if (*off + sz > cap)
		return false;
	d.ino = ino;
	d.off = cookie;
	d.namelen = (uint32_t)nlen;
	d.type = (mode & S_IFMT) >> 12;
	memset(buf + *off, 0, sz);
	memcpy(buf + *off, &d, FUSE_NAME_OFFSET);
	memcpy(buf + *off + FUSE_NAME_OFFSET, name, nlen);
	*off += sz;
	return true;
}

/* Cookies: "." 1, ".." 2, a child its ino + 2 (inos grow in creation
 * order, which is the list's): a reader resumes after the last entry it
 * got even if entries before it were removed meanwhile (libvirt unlinks
 * while it reads). */
static int do_readdir(struct remus_ramfs *fs, uint64_t ino,
		      const uint8_t *body, size_t n,
		      struct remus_fuse_reply *out)
{
	struct remus_ramfs_node *dir, *c;
	struct fuse_read_in in;
	size_t cap, off = 0;
	int rc;

	if (n < sizeof(in))
		return -EINVAL;
	memcpy(&in, body, sizeof(in));
	dir = get_dir(fs, ino, &rc);
	if (!dir)
		return rc;
	cap = in.size < REMUS_RAMFS_DIRBUF ? in.size : REMUS_RAMFS_DIRBUF;
	if (in.offset < 1 &&
	    !put_dirent(fs->dirbuf, cap, &off, dir->ino, 1, dir->mode, "."))
		goto done;
	if (in.offset < 2 &&
	    !put_dirent(fs->dirbuf, cap, &off,
			dir->parent ? dir->parent : FUSE_ROOT_ID, 2,
			S_IFDIR, ".."))
		goto done;
	for (c = dir->first; c; c = c->next)
		if (c->ino + 2 > in.offset &&
		    !put_dirent(fs->dirbuf, cap, &off, c->ino, c->ino + 2,
				c->mode, c->name))
			break;
done:
	out->data = off ? fs->dirbuf : NULL;
	out->data_len = off;
	return 0;
}

static void do_statfs(const struct remus_ramfs *fs, struct remus_fuse_reply *out)
{
	struct fuse_kstatfs *st = &out->body.statfs.st;
	uint64_t used = 0, i;

	for (i = 0; i < fs->cap; i++)
		if (fs->nodes[i] && !is_dir(fs->nodes[i]))
			used += (fs->nodes[i]->size + PAGE - 1) / PAGE;
	memset(&out->body.statfs, 0, sizeof(out->body.statfs));
	st->blocks = fs->total_pages;
	st->bfree = st->bavail = used < fs->total_pages ? fs->total_pages - used : 0;
	st->files = REMUS_RAMFS_MAX_NODES;
	st->ffree = REMUS_RAMFS_MAX_NODES - fs->nnodes;
	st->bsize = PAGE;
	st->frsize = PAGE;
	st->namelen = 255;
	out->body_len = sizeof(out->body.statfs);
}

static void reply_attr(const struct remus_ramfs_node *x,
		       struct remus_fuse_reply *out)
{
	memset(&out->body.attr, 0, sizeof(out->body.attr));
	out->body.attr.attr_valid = VALID_S;
	fill_attr(x, &out->body.attr.attr);
	out->body_len = sizeof(out->body.attr);
}

void remus_ramfs_handle(struct remus_ramfs *fs, const uint8_t *req,
			size_t len, struct remus_fuse_reply *out)
{
	struct fuse_in_header h;
	struct remus_ramfs_node *x;
	const uint8_t *body;
	size_t n;
	int rc = remus_fuse_request_open(req, len, fs->proto_minor, &h, &body, &n, out);

	if (rc > 0)
		return;
	if (rc < 0)
		goto out;
	switch (h.opcode) {
	case FUSE_INIT:
		rc = remus_fuse_negotiate(body, n, &out->body.init);
		if (rc == 0) {
			fs->proto_minor = out->body.init.minor;
			out->body_len = sizeof(out->body.init);
		}
		break;
	case FUSE_LOOKUP:
		rc = do_lookup(fs, h.nodeid, body, n, out);
		break;
	case FUSE_FORGET:
		do_forget(fs, &h, body, n);
		out->none = true; /* no reply by protocol */
		return;
	case FUSE_BATCH_FORGET:
		do_batch_forget(fs, body, n);
		out->none = true;
		return;
	case FUSE_INTERRUPT:
		out->none = true; /* nothing of ours ever blocks */
		return;
	case FUSE_GETATTR:
	case FUSE_ACCESS: /* the kernel checks (default_permissions) */
		if (!(x = node_get(fs, h.nodeid)))
			rc = -ENOENT;
		else if (h.opcode == FUSE_GETATTR)
			reply_attr(x, out);
		break;
	case FUSE_SETATTR:
		rc = do_setattr(fs, h.nodeid, body, n, out);
		break;
	case FUSE_MKDIR:
		rc = do_mkdir(fs, &h, body, n, out);
		break;
	case FUSE_MKNOD:
		rc = do_mknod(fs, &h, body, n, out);
		break;
	case FUSE_CREATE:
		rc = do_create(fs, &h, body, n, out);
		break;
	case FUSE_UNLINK:
		rc = do_remove(fs, h.nodeid, body, n, false);
		break;
	case FUSE_RMDIR:
		rc = do_remove(fs, h.nodeid, body, n, true);
		break;
	case FUSE_OPEN:
		rc = do_open(fs, h.nodeid, body, n, false, out);
		break;
	case FUSE_OPENDIR:
		rc = do_open(fs, h.nodeid, body, n, true, out);
		break;
	case FUSE_RELEASE:
		do_release(fs, h.nodeid);
		break;
	case FUSE_READ:
		rc = do_read(fs, h.nodeid, body, n, out);
		break;
	case FUSE_WRITE:
		rc = do_write(fs, h.nodeid, body, n, out);
		break;
	case FUSE_READDIR:
		rc = do_readdir(fs, h.nodeid, body, n, out);
		break;
	case FUSE_STATFS:
		do_statfs(fs, out);
		break;
	case FUSE_RELEASEDIR:
	case FUSE_FLUSH:
	case FUSE_FSYNC:
	case FUSE_FSYNCDIR:
	case FUSE_DESTROY:
		break; /* empty success: data is kept when it arrives */
	default:
		/* xattrs, links, rename, locks, fallocate, lseek...: the
		 * kernel remembers ENOSYS for most and asks once. */
		rc = -ENOSYS;
		break;
	}
out:
	remus_fuse_reply_finish(out, rc);
}

unsigned remus_ramfs_nfiles(const struct remus_ramfs *fs)
{
	unsigned count = 0;
	uint64_t i;

	for (i = 0; i < fs->cap; i++) {
		const struct remus_ramfs_node *x = fs->nodes[i];

		if (x && S_ISREG(x->mode) && (x->name || x->nopen))
			count++;
	}
	return count;
}

/* "/a/b" of @x into @buf (@cap bytes), or "(unlinked)". */
static void path_of(const struct remus_ramfs *fs,
		    const struct remus_ramfs_node *x, char *buf, size_t cap)
{
	const struct remus_ramfs_node *p = x;
	size_t len = 0;
	int depth = 0;

	buf[0] = '\0';
	/* Built right to left at the end of @buf, then moved. */
	buf[cap - 1] = '\0';
	while (p && p->ino != FUSE_ROOT_ID && depth++ < 256) {
		size_t l;

		if (!p->name) {
			snprintf(buf, cap, "(unlinked)");
			return;
		}
		l = strlen(p->name) + 1;
		if (len + l + 1 > cap) {
			snprintf(buf, cap, "(too long)");
			return;
		}
		len += l;
		memcpy(buf + cap - 1 - len, "/", 1);
		memcpy(buf + cap - len, p->name, l - 1);
		p = node_get(fs, p->parent);
	}
	memmove(buf, buf + cap - 1 - len, len + 1);
}

void remus_ramfs_each_file(const struct remus_ramfs *fs,
			   void (*each)(void *ctx, const char *path), void *ctx)
{
	char path[4096];
	uint64_t i;

	for (i = 0; i < fs->cap; i++) {
		const struct remus_ramfs_node *x = fs->nodes[i];

		if (x && S_ISREG(x->mode) && (x->name || x->nopen)) {
			path_of(fs, x, path, sizeof(path));
			each(ctx, path);
		}
	}
}

int remus_ramfs_attach(struct remus_ramfs *fs, uint64_t ino, int *content_fd,
		       int *bits_fd, uint64_t *size)
{
	struct remus_ramfs_node *f;
	int rc;

	if (!(f = get_file(fs, ino, &rc)))
		return rc;
	if (f->attached)
		return -EBUSY;
	f->attached = true;
	*content_fd = f->content_fd;
	*bits_fd = f->bits_fd;
	*size = f->size;
	return 0;
}

void remus_ramfs_detach(struct remus_ramfs *fs, uint64_t ino)
{
	struct remus_ramfs_node *f = node_get(fs, ino);

	if (f)
		f->attached = false;
}

uint64_t *remus_ramfs_bits(const struct remus_ramfs *fs, uint64_t ino)
{
	struct remus_ramfs_node *f = node_get(fs, ino);

	return f && !is_dir(f) ? f->bits : NULL;
}
