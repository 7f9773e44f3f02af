// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * remusd ramfs's filesystem without a mount (dirty/ramfs.h): the request
 * handler driven with hand-built requests in the order libvirt and QEMU
 * send them, the ones the kernel should never send, the WRITE's order
 * (copy before mark) and the control messages' parsers.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dirty/ramfs.h"

#define PAGE 4096u
#define QEMU_UID 64055

static uint8_t buf[3 * PAGE];

/* One request as the kernel sends it: header + @body + @tail. */
static size_t req(uint32_t opcode, uint64_t nodeid, uint32_t uid,
		  const void *body, size_t n, const void *tail, size_t tn)
{
	struct fuse_in_header h = { 0 };

	h.len = (uint32_t)(sizeof(h) + n + tn);
	h.opcode = opcode;
	h.unique = 7;
	h.nodeid = nodeid;
	h.uid = uid;
	h.gid = uid;
	memcpy(buf, &h, sizeof(h));
	if (n)
		memcpy(buf + sizeof(h), body, n);
	if (tn)
		memcpy(buf + sizeof(h) + n, tail, tn);
	return h.len;
}

static int call(struct remus_ramfs *fs, struct remus_fuse_reply *rep,
		uint32_t opcode, uint64_t nodeid, const void *body, size_t n,
		const void *tail, size_t tn)
{
	size_t len = req(opcode, nodeid, 0, body, n, tail, tn);

	remus_ramfs_handle(fs, buf, len, rep);
	if (!rep->none) {
		assert_int_equal(rep->hdr.unique, 7);
		assert_int_equal(rep->hdr.len, sizeof(rep->hdr) +
					       rep->body_len + rep->data_len);
	}
	return rep->hdr.error;
}

static void init_fs(struct remus_ramfs *fs)
{
	struct fuse_init_in in = { .major = 7, .minor = 45,
				   .max_readahead = 131072,
				   .flags = FUSE_WRITEBACK_CACHE |
					    FUSE_DO_READDIRPLUS |
					    FUSE_MAX_PAGES | FUSE_BIG_WRITES };
	struct remus_fuse_reply rep;

	assert_int_equal(remus_ramfs_init(fs), 0);
	/* Nothing before INIT. */
	assert_int_equal(call(fs, &rep, FUSE_GETATTR, 1, NULL, 0, NULL, 0), -EIO);
	assert_int_equal(call(fs, &rep, FUSE_INIT, 0, &in, sizeof(in), NULL, 0), 0);
	assert_true(rep.body.init.flags & FUSE_WRITEBACK_CACHE);
	/* READDIR, not READDIRPLUS: nothing to gain for a few files. */
	assert_false(rep.body.init.flags & FUSE_DO_READDIRPLUS);
}

/* Names and types of the dirents in a READDIR reply, "a/d b/f ...". */
static void dirents(const struct remus_fuse_reply *rep, char *out, size_t cap,
		    uint64_t *last_off)
{
	size_t off = 0;

	out[0] = '\0';
	while (off + FUSE_NAME_OFFSET <= rep->data_len) {
		struct fuse_dirent d;
		const uint8_t *p = (const uint8_t *)rep->data + off;
		size_t l = strlen(out);

		memcpy(&d, p, FUSE_NAME_OFFSET);
		snprintf(out + l, cap - l, "%s%.*s/%c", l ? " " : "",
			 (int)d.namelen, (const char *)p + FUSE_NAME_OFFSET,
			 d.type == DT_DIR ? 'd' : d.type == DT_REG ? 'f' : '?');
		*last_off = d.off;
		off += FUSE_DIRENT_SIZE(&d);
	}
	assert_int_equal(off, rep->data_len);
}

static void test_ramfs_serves_what_libvirt_and_qemu_do(void **state)
{
	struct remus_ramfs fs;
	struct remus_fuse_reply rep;
	struct fuse_mkdir_in mk = { .mode = 0755, .umask = 022 };
	struct fuse_setattr_in sa = { 0 };
	struct fuse_create_in cr = { .flags = O_RDWR | O_CREAT, .mode = S_IFREG | 0600,
				     .umask = 022 };
	struct fuse_write_in w = { 0 };
	struct fuse_read_in rd = { 0 };
	struct fuse_forget_in fg = { .nlookup = 1 };
	struct fuse_open_in op = { .flags = O_RDONLY };
	static uint8_t data[2 * PAGE];
	uint64_t dir, file, size, last = 0, *bits;
	int cfd, bfd;
	char names[256];
	size_t len;

	init_fs(&fs);
	/* libvirt: mkdir memory_backing_dir/1-web1, chown it to qemu. */
	assert_int_equal(call(&fs, &rep, FUSE_MKDIR, 1, &mk, sizeof(mk), "1-web1", 7), 0);
	dir = rep.body.entry.nodeid;
	assert_int_equal(rep.body.entry.attr.ino, dir); /* st_ino = nodeid */
	assert_int_equal(rep.body.entry.attr.mode, S_IFDIR | 0755);
	sa.valid = FATTR_UID | FATTR_GID | FATTR_MODE;
	sa.uid = sa.gid = QEMU_UID;
	sa.mode = 0750;
	assert_int_equal(call(&fs, &rep, FUSE_SETATTR, dir, &sa, sizeof(sa), NULL, 0), 0);
	assert_int_equal(rep.body.attr.attr.uid, QEMU_UID);
	assert_int_equal(rep.body.attr.attr.mode, S_IFDIR | 0750);
	/* ...and tries an xattr (its security labels): ENOSYS. */
	assert_int_equal(call(&fs, &rep, FUSE_SETXATTR, dir, &sa, 8, "x", 2), -ENOSYS);
	assert_int_equal(call(&fs, &rep, FUSE_LOOKUP, 1, "1-web1", 7, NULL, 0), 0);
	assert_int_equal(rep.body.entry.nodeid, dir);
	/* QEMU (as qemu): creates pc.ram, sizes it, maps it. */
	len = req(FUSE_CREATE, dir, QEMU_UID, &cr, sizeof(cr), "pc.ram", 7);
	remus_ramfs_handle(&fs, buf, len, &rep);
	assert_int_equal(rep.hdr.error, 0);
	assert_int_equal(rep.body_len, sizeof(rep.body.create));
	file = rep.body.create.entry.nodeid;
	assert_int_equal(rep.body.create.entry.attr.ino, file);
	assert_int_equal(rep.body.create.entry.attr.uid, QEMU_UID);
	assert_int_equal(rep.body.create.entry.attr.mode, S_IFREG | 0600);
	assert_true(rep.body.create.open.open_flags & FOPEN_KEEP_CACHE);
	memset(&sa, 0, sizeof(sa));
	sa.valid = FATTR_SIZE;
	sa.size = 64 * PAGE;
	assert_int_equal(call(&fs, &rep, FUSE_SETATTR, file, &sa, sizeof(sa), NULL, 0), 0);
	assert_int_equal(rep.body.attr.attr.size, 64 * PAGE);
	assert_int_equal(remus_ramfs_nfiles(&fs), 1);
	/* The kernel writes pages 5..6 back: copied and marked. */
	memset(data, 0xab, sizeof(data));
	w.offset = 5 * PAGE;
	w.size = sizeof(data);
	assert_int_equal(call(&fs, &rep, FUSE_WRITE, file, &w, sizeof(w), data, sizeof(data)), 0);
	assert_int_equal(rep.body.write.size, sizeof(data));
	bits = remus_ramfs_bits(&fs, file);
	assert_non_null(bits);
	assert_int_equal(bits[0], UINT64_C(3) << 5);
	rd.offset = 6 * PAGE - 2;
	rd.size = 4;
	assert_int_equal(call(&fs, &rep, FUSE_READ, file, &rd, sizeof(rd), NULL, 0), 0);
	assert_int_equal(rep.data_len, 4);
	assert_memory_equal(rep.data, data, 4);
	/* A tracker attaches; the size then stays; one tracker only. */
	assert_int_equal(remus_ramfs_attach(&fs, file, &cfd, &bfd, &size), 0);
	assert_int_equal(size, 64 * PAGE);
	assert_true(cfd >= 0 && bfd >= 0);
	assert_int_equal(pread(cfd, names, 4, 5 * PAGE), 4);
	assert_memory_equal(names, data, 4);
	assert_int_equal(remus_ramfs_attach(&fs, file, &cfd, &bfd, &size), -EBUSY);
	assert_int_equal(remus_ramfs_attach(&fs, dir, &cfd, &bfd, &size), -EISDIR);
	assert_int_equal(remus_ramfs_attach(&fs, 999, &cfd, &bfd, &size), -ENOENT);
	sa.size = 32 * PAGE;
	assert_int_equal(call(&fs, &rep, FUSE_SETATTR, file, &sa, sizeof(sa), NULL, 0), -EBUSY);
	sa.size = 64 * PAGE; /* the same size is no change */
	assert_int_equal(call(&fs, &rep, FUSE_SETATTR, file, &sa, sizeof(sa), NULL, 0), 0);
	remus_ramfs_detach(&fs, file);
	/* libvirt at shutdown: readdir, unlink, rmdir. */
	assert_int_equal(call(&fs, &rep, FUSE_OPENDIR, dir, &op, sizeof(op), NULL, 0), 0);
	rd.offset = 0;
	rd.size = 4096;
	assert_int_equal(call(&fs, &rep, FUSE_READDIR, dir, &rd, sizeof(rd), NULL, 0), 0);
	dirents(&rep, names, sizeof(names), &last);
	assert_string_equal(names, "./d ../d pc.ram/f");
	rd.offset = last;
	assert_int_equal(call(&fs, &rep, FUSE_READDIR, dir, &rd, sizeof(rd), NULL, 0), 0);
	assert_int_equal(rep.data_len, 0);
	assert_int_equal(call(&fs, &rep, FUSE_RELEASEDIR, dir, &op, sizeof(op), NULL, 0), 0);
	assert_int_equal(call(&fs, &rep, FUSE_RMDIR, 1, "1-web1", 7, NULL, 0), -ENOTEMPTY);
	assert_int_equal(call(&fs, &rep, FUSE_UNLINK, dir, "pc.ram", 7, NULL, 0), 0);
	assert_int_equal(call(&fs, &rep, FUSE_LOOKUP, dir, "pc.ram", 7, NULL, 0), -ENOENT);
	/* Still open (QEMU maps it): still a file, still served. */
	assert_int_equal(remus_ramfs_nfiles(&fs), 1);
	assert_non_null(remus_ramfs_bits(&fs, file));
	assert_int_equal(call(&fs, &rep, FUSE_RELEASE, file, &op, sizeof(op), NULL, 0), 0);
	assert_int_equal(remus_ramfs_nfiles(&fs), 0);
	/* Known to the kernel until it forgets it; then its memfds go. */
	assert_non_null(remus_ramfs_bits(&fs, file));
	assert_int_equal(call(&fs, &rep, FUSE_FORGET, file, &fg, sizeof(fg), NULL, 0), 0);
	assert_true(rep.none);
	assert_null(remus_ramfs_bits(&fs, file));
	assert_int_equal(call(&fs, &rep, FUSE_GETATTR, file, NULL, 0, NULL, 0), -ENOENT);
	assert_int_equal(call(&fs, &rep, FUSE_RMDIR, 1, "1-web1", 7, NULL, 0), 0);
	{
		struct {
			struct fuse_batch_forget_in in;
			struct fuse_forget_one one;
		} bf = { { 1, 0 }, { dir, 2 } };

		assert_int_equal(call(&fs, &rep, FUSE_BATCH_FORGET, 0, &bf, sizeof(bf), NULL, 0), 0);
		assert_true(rep.none);
	}
	assert_int_equal(call(&fs, &rep, FUSE_GETATTR, dir, NULL, 0, NULL, 0), -ENOENT);
	assert_int_equal(fs.nnodes, 1); /* the root only */
	/* Inode numbers are never reused. */
	assert_int_equal(call(&fs, &rep, FUSE_MKDIR, 1, &mk, sizeof(mk), "2-web2", 7), 0);
	assert_true(rep.body.entry.nodeid > file);
	remus_ramfs_release(&fs);
	remus_ramfs_release(&fs);
}

static void test_ramfs_refuses_bad_requests(void **state)
{
	struct remus_ramfs fs;
	struct remus_fuse_reply rep;
	struct fuse_mkdir_in mk = { .mode = 0755 };
	struct fuse_mknod_in mn = { .mode = S_IFIFO | 0600 };
	struct fuse_create_in cr = { .mode = S_IFREG | 0600 };
	struct fuse_setattr_in sa = { .valid = FATTR_SIZE, .size = 4 * PAGE };
	struct fuse_write_in w = { 0 };
	struct fuse_read_in rd = { .size = 4096 };
	struct fuse_open_in op = { 0 };
	static uint8_t data[PAGE];
	char longname[300];
	uint64_t file, dir;
	size_t len;

	init_fs(&fs);
	/* Short, and a length that lies. */
	remus_ramfs_handle(&fs, buf, 3, &rep);
	assert_true(rep.none);
	len = req(FUSE_GETATTR, 1, 0, NULL, 0, NULL, 0);
	remus_ramfs_handle(&fs, buf, len + 1, &rep);
	assert_int_equal(rep.hdr.error, -EIO);
	/* Unknown nodes and opcodes. */
	assert_int_equal(call(&fs, &rep, FUSE_GETATTR, 77, NULL, 0, NULL, 0), -ENOENT);
	assert_int_equal(call(&fs, &rep, FUSE_GETATTR, UINT64_MAX, NULL, 0, NULL, 0), -ENOENT);
	assert_int_equal(call(&fs, &rep, FUSE_LOOKUP, 77, "x", 2, NULL, 0), -ENOENT);
	assert_int_equal(call(&fs, &rep, FUSE_RENAME, 1, "x", 2, NULL, 0), -ENOSYS);
	assert_int_equal(call(&fs, &rep, FUSE_SYMLINK, 1, "x", 2, NULL, 0), -ENOSYS);
	assert_int_equal(call(&fs, &rep, FUSE_GETXATTR, 1, "x", 2, NULL, 0), -ENOSYS);
	assert_int_equal(call(&fs, &rep, 4242, 1, NULL, 0, NULL, 0), -ENOSYS);
	/* Names: without their NUL, with a slash, empty, too long. */
	assert_int_equal(call(&fs, &rep, FUSE_LOOKUP, 1, "abc", 3, NULL, 0), -EINVAL);
	assert_int_equal(call(&fs, &rep, FUSE_MKDIR, 1, &mk, sizeof(mk), "a/b", 4), -EINVAL);
	assert_int_equal(call(&fs, &rep, FUSE_MKDIR, 1, &mk, sizeof(mk), "", 1), -EINVAL);
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(call(&fs, &rep, FUSE_MKDIR, 1, &mk, sizeof(mk), longname,
			      sizeof(longname)), -ENAMETOOLONG);
	/* Bodies shorter than their struct. */
	assert_int_equal(call(&fs, &rep, FUSE_MKDIR, 1, &mk, 4, NULL, 0), -EINVAL);
	assert_int_equal(call(&fs, &rep, FUSE_SETATTR, 1, &sa, 8, NULL, 0), -EINVAL);
	/* Only regular files and directories. */
	assert_int_equal(call(&fs, &rep, FUSE_MKNOD, 1, &mn, sizeof(mn), "fifo", 5), -EPERM);
	mn.mode = S_IFREG | 0600;
	assert_int_equal(call(&fs, &rep, FUSE_MKNOD, 1, &mn, sizeof(mn), "f", 2), 0);
	file = rep.body.entry.nodeid;
	assert_int_equal(call(&fs, &rep, FUSE_CREATE, 1, &cr, sizeof(cr), "f", 2), -EEXIST);
	assert_int_equal(call(&fs, &rep, FUSE_MKDIR, 1, &mk, sizeof(mk), "d", 2), 0);
	dir = rep.body.entry.nodeid;
	/* Directories are not files, and the other way round. */
	assert_int_equal(call(&fs, &rep, FUSE_MKDIR, file, &mk, sizeof(mk), "x", 2), -ENOTDIR);
	assert_int_equal(call(&fs, &rep, FUSE_OPEN, dir, &op, sizeof(op), NULL, 0), -EISDIR);
	assert_int_equal(call(&fs, &rep, FUSE_OPENDIR, file, &op, sizeof(op), NULL, 0), -ENOTDIR);
	assert_int_equal(call(&fs, &rep, FUSE_READ, dir, &rd, sizeof(rd), NULL, 0), -EISDIR);
	assert_int_equal(call(&fs, &rep, FUSE_READDIR, file, &rd, sizeof(rd), NULL, 0), -ENOTDIR);
	assert_int_equal(call(&fs, &rep, FUSE_UNLINK, 1, "d", 2, NULL, 0), -EISDIR);
	assert_int_equal(call(&fs, &rep, FUSE_RMDIR, 1, "f", 2, NULL, 0), -ENOTDIR);
	assert_int_equal(call(&fs, &rep, FUSE_SETATTR, dir, &sa, sizeof(sa), NULL, 0), -EISDIR);
	/* WRITE: to a directory, beyond the size (0 yet), more than sent. */
	w.size = 16;
	assert_int_equal(call(&fs, &rep, FUSE_WRITE, dir, &w, sizeof(w), data, 16), -EISDIR);
	assert_int_equal(call(&fs, &rep, FUSE_WRITE, file, &w, sizeof(w), data, 16), -EFBIG);
	assert_int_equal(call(&fs, &rep, FUSE_SETATTR, file, &sa, sizeof(sa), NULL, 0), 0);
	w.offset = 3 * PAGE + 1;
	w.size = PAGE;
	assert_int_equal(call(&fs, &rep, FUSE_WRITE, file, &w, sizeof(w), data, PAGE), -EFBIG);
	w.offset = UINT64_MAX - 8;
	assert_int_equal(call(&fs, &rep, FUSE_WRITE, file, &w, sizeof(w), data, PAGE), -EFBIG);
	w.offset = 0;
	w.size = PAGE + 1;
	assert_int_equal(call(&fs, &rep, FUSE_WRITE, file, &w, sizeof(w), data, PAGE), -EINVAL);
	assert_int_equal(remus_ramfs_bits(&fs, file)[0], 0); /* nothing marked */
	/* A file larger than the server holds. */
	sa.size = REMUS_RAMFS_MAX_FILE + PAGE;
	assert_int_equal(call(&fs, &rep, FUSE_SETATTR, file, &sa, sizeof(sa), NULL, 0), -EFBIG);
	assert_int_equal(call(&fs, &rep, FUSE_GETATTR, file, NULL, 0, NULL, 0), 0);
	assert_int_equal(rep.body.attr.attr.size, 4 * PAGE);
	/* Shrinking drops the bits of the pages cut off. */
	w.offset = 3 * PAGE;
	w.size = 16;
	assert_int_equal(call(&fs, &rep, FUSE_WRITE, file, &w, sizeof(w), data, 16), 0);
	sa.size = 2 * PAGE;
	assert_int_equal(call(&fs, &rep, FUSE_SETATTR, file, &sa, sizeof(sa), NULL, 0), 0);
	assert_int_equal(remus_ramfs_bits(&fs, file)[0], 0);
	/* READ beyond the end: nothing. */
	rd.offset = UINT64_MAX;
	assert_int_equal(call(&fs, &rep, FUSE_READ, file, &rd, sizeof(rd), NULL, 0), 0);
	assert_int_equal(rep.data_len, 0);
	/* A BATCH_FORGET whose count is more than it carries. */
	{
		struct {
			struct fuse_batch_forget_in in;
			struct fuse_forget_one one;
		} bf = { { 1000, 0 }, { file, 1 } };

		call(&fs, &rep, FUSE_BATCH_FORGET, 0, &bf, sizeof(bf), NULL, 0);
		assert_true(rep.none);
	}
	assert_non_null(remus_ramfs_bits(&fs, file)); /* still linked */
	remus_ramfs_release(&fs);
}

/*
 * WRITE copies before it marks.  The data of a WRITE sits on a page the
 * handler may not read yet (PROT_NONE): its copy faults, and the fault
 * handler looks at the page's bit at that moment, then lets the copy go
 * on.  A handler that marked first would have the bit set already.
 */
static uint8_t *guarded;
static uint64_t *watched_bits;
static volatile int faults;
static volatile uint64_t bits_at_fault;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if ((uint8_t *)si->si_addr < guarded ||
	    (uint8_t *)si->si_addr >= guarded + PAGE)
		abort();
	faults++;
	bits_at_fault = __atomic_load_n(&watched_bits[0], __ATOMIC_SEQ_CST);
	mprotect(guarded, PAGE, PROT_READ | PROT_WRITE);
}

static void test_ramfs_write_copies_before_it_marks(void **state)
{
	struct remus_ramfs fs;
	struct remus_fuse_reply rep;
	struct fuse_mknod_in mn = { .mode = S_IFREG | 0600 };
	struct fuse_setattr_in sa = { .valid = FATTR_SIZE, .size = 8 * PAGE };
	struct fuse_in_header h = { 0 };
	struct fuse_write_in w = { .offset = 2 * PAGE, .size = PAGE };
	struct sigaction act = { 0 }, old;
	uint8_t *area, *r;
	uint64_t file;

	init_fs(&fs);
	assert_int_equal(call(&fs, &rep, FUSE_MKNOD, 1, &mn, sizeof(mn), "pc.ram", 7), 0);
	file = rep.body.entry.nodeid;
	assert_int_equal(call(&fs, &rep, FUSE_SETATTR, file, &sa, sizeof(sa), NULL, 0), 0);
	watched_bits = remus_ramfs_bits(&fs, file);
	/* Header and write_in end where the guarded page starts. */
	area = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(area != MAP_FAILED);
	guarded = area + PAGE;
	r = guarded - sizeof(h) - sizeof(w);
	h.len = (uint32_t)(sizeof(h) + sizeof(w) + PAGE);
	h.opcode = FUSE_WRITE;
	h.unique = 9;
	h.nodeid = file;
	memcpy(r, &h, sizeof(h));
	memcpy(r + sizeof(h), &w, sizeof(w));
	memset(guarded, 0x5a, PAGE);
	assert_int_equal(mprotect(guarded, PAGE, PROT_NONE), 0);
	act.sa_sigaction = on_segv;
	act.sa_flags = SA_SIGINFO;
	sigemptyset(&act.sa_mask);
	assert_int_equal(sigaction(SIGSEGV, &act, &old), 0);
	remus_ramfs_handle(&fs, r, h.len, &rep);
	sigaction(SIGSEGV, &old, NULL);
	assert_int_equal(rep.hdr.error, 0);
	assert_true(faults >= 1);
	assert_int_equal(bits_at_fault, 0); /* not marked while copying */
	assert_int_equal(watched_bits[0], UINT64_C(1) << 2);
	munmap(area, 2 * PAGE);
	remus_ramfs_release(&fs);
}

static void test_ramfs_control_messages_parse_strictly(void **state)
{
	struct remus_ramfs_req q = { REMUS_RAMFS_MAGIC, REMUS_RAMFS_VERSION,
				     REMUS_RAMFS_OP_ATTACH, 5, 6 }, got;
	struct remus_ramfs_rep p = { REMUS_RAMFS_MAGIC, REMUS_RAMFS_VERSION,
				     REMUS_RAMFS_OP_ATTACH, -EBUSY, 0, 0, 0, 0 },
			       pgot;
	uint8_t big[64] = { 0 };

	assert_int_equal(remus_ramfs_parse_req(&q, sizeof(q), &got), 0);
	assert_int_equal(got.ino, 5);
	assert_int_equal(got.dev, 6);
	assert_int_equal(remus_ramfs_parse_req(&q, sizeof(q) - 1, &got), -EBADMSG);
	memcpy(big, &q, sizeof(q));
	assert_int_equal(remus_ramfs_parse_req(big, sizeof(q) + 1, &got), -EBADMSG);
	assert_int_equal(remus_ramfs_parse_req(big, 0, &got), -EBADMSG);
	q.magic++;
	assert_int_equal(remus_ramfs_parse_req(&q, sizeof(q), &got), -EBADMSG);
	q.magic--;
	q.version = 2;
	assert_int_equal(remus_ramfs_parse_req(&q, sizeof(q), &got), -EBADMSG);
	q.version = REMUS_RAMFS_VERSION;
	q.op = 3;
	assert_int_equal(remus_ramfs_parse_req(&q, sizeof(q), &got), -EBADMSG);
	q.op = REMUS_RAMFS_OP_STAT;
	assert_int_equal(remus_ramfs_parse_req(&q, sizeof(q), &got), 0);

	assert_int_equal(remus_ramfs_parse_rep(&p, sizeof(p), REMUS_RAMFS_OP_ATTACH, &pgot), 0);
	assert_int_equal(pgot.status, -EBUSY);
	/* A reply to another request, a status that is no -errno. */
	assert_int_equal(remus_ramfs_parse_rep(&p, sizeof(p), REMUS_RAMFS_OP_STAT, &pgot),
			 -EBADMSG);
	p.status = 1;
	assert_int_equal(remus_ramfs_parse_rep(&p, sizeof(p), REMUS_RAMFS_OP_ATTACH, &pgot),
			 -EBADMSG);
	p.status = -5000;
	assert_int_equal(remus_ramfs_parse_rep(&p, sizeof(p), REMUS_RAMFS_OP_ATTACH, &pgot),
			 -EBADMSG);
	p.status = 0;
	assert_int_equal(remus_ramfs_parse_rep(&p, sizeof(p) - 8, REMUS_RAMFS_OP_ATTACH, &pgot),
			 -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ramfs_serves_what_libvirt_and_qemu_do),
		cmocka_unit_test(test_ramfs_refuses_bad_requests),
		cmocka_unit_test(test_ramfs_write_copies_before_it_marks),
		cmocka_unit_test(test_ramfs_control_messages_parse_strictly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
