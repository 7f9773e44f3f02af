/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fswork: an ext4 workload that checks the file system on disk against the
 * program's memory, for failover tests of replicated disks.
 *
 *     remus.run=fswork remus.modules=ext4 remus.args=dev=/dev/vda,secs=30
 *
 * Mounts the ext4 file system on `dev` (made on the host with mkfs.ext4) at
 * `mnt`, empties the directory `mnt`/fswork and then, op after op, picks a
 * file of `files` and
 *   - creates it (f<i>.<gen>, written, fsync'd, directory fsync'd),
 *   - appends 1..16 KiB to it and fsyncs it,
 *   - renames it to f<i>.<gen+1> (directory fsync'd) and appends, or
 *   - when it would grow past `max` bytes, replaces it: writes a new file
 *     t<i>, fsyncs it, renames it to f<i>.<gen+1>, unlinks the old name and
 *     fsyncs the directory.
 * Byte o of a file instance c (a number given at its creation) is a pure
 * function of (c, o), so the program's memory is a small table: per file
 * its generation, instance and length, updated when an op has returned.
 *
 * Every `verify` ops (and at the end) it drops the page cache
 * (/proc/sys/vm/drop_caches; everything is fsync'd, so all of it is clean)
 * and reads the directory and every file back: exactly the expected names,
 * sizes and bytes.  Those reads come from the disk, so after a failover
 * the guest compares the standby's disk with the checkpoint's memory.  A
 * mismatch prints
 *
 *     FSWORK-VIOLATION <what> file=<name> op=N
 *
 * and exits 3 (nothing later would mean more).  Progress, once a second:
 *
 *     fswork op=N files=F bytes=B verified=V ok
 *
 * After `secs` seconds (0: never) it verifies once more, unmounts, prints
 * "fswork done op=N" and exits 0, so the host can fsck a cleanly unmounted
 * image.  Missed seconds after a pause print one line, not a burst.
 */
#define _GNU_SOURCE
#include "guest-args.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GOLDEN 0x9e3779b97f4a7c15ull
#define MAX_FILES 64
#define MAX_CHUNK (16u * 1024)

struct file {
	uint64_t gen;       /* 0: does not exist */
	uint64_t instance;  /* content function's key */
	uint64_t len;
};

struct work {
	const char *dir;         /* borrowed: mnt/fswork */
	int dirfd;               /* owned */
	uint64_t nfiles, max;
	struct file f[MAX_FILES];
	uint64_t instances;      /* instances created so far */
	uint64_t op;
	unsigned char *buf;      /* owned, >= max bytes */
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/* Fills @p with bytes @off..@off+@n-1 of instance @c. */
static void content(uint64_t c, uint64_t off, unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t o = off + i;

		p[i] = (unsigned char)(mix64(c * GOLDEN + (o >> 3)) >> ((o & 7) * 8));
	}
}

static void say(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDOUT_FILENO, line, (size_t)n) < 0)
		return;
}

static void name_of(char *out, size_t len, char kind, uint64_t i, uint64_t gen)
{
	snprintf(out, len, "%c%" PRIu64 ".%" PRIu64, kind, i, gen);
}

/* Prints what failed on which file and returns -1 (an I/O error is not a
 * violation: the program cannot tell what the disk holds). */
static int io_error(const struct work *w, const char *what, const char *name)
{
	fprintf(stderr, "fswork: %s %s/%s at op %" PRIu64 ": %s\n", what, w->dir, name,
		w->op, strerror(errno));
	return -1;
}

static int write_all(int fd, const unsigned char *p, size_t n, off_t off)
{
	while (n) {
		ssize_t r = pwrite(fd, p, n, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r, n -= (size_t)r, off += r;
	}
	return 0;
}

/* Writes @n new bytes of @f at its end through @fd and fsyncs. */
static int append(struct work *w, struct file *f, int fd, size_t n, const char *name)
{
	content(f->instance, f->len, w->buf, n);
	if (write_all(fd, w->buf, n, (off_t)f->len) < 0)
		return io_error(w, "appending to", name);
	if (fsync(fd) < 0)
		return io_error(w, "fsync of", name);
	f->len += n;
	return 0;
}

static int one_op(struct work *w, uint64_t rnd)
{
	uint64_t i = rnd % w->nfiles;
	struct file *f = &w->f[i];
	size_t n = 1 + (size_t)((rnd >> 16) % MAX_CHUNK);
	char name[64], to[64];
	int fd = -1, rc = -1;

	if (f->gen == 0 || f->len + n > w->max) {
		/* Create (or replace) under a temporary name, then rename. */
		struct file nf = { .gen = f->gen + 1, .instance = ++w->instances };
		char tmp[64];

		name_of(tmp, sizeof(tmp), 't', i, 0);
		fd = openat(w->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			return io_error(w, "creating", tmp);
		if (append(w, &nf, fd, n, tmp) < 0)
			goto out;
		name_of(to, sizeof(to), 'f', i, nf.gen);
		if (renameat(w->dirfd, tmp, w->dirfd, to) < 0) {
			io_error(w, "renaming to", to);
			goto out;
		}
		if (f->gen) {
			name_of(name, sizeof(name), 'f', i, f->gen);
			if (unlinkat(w->dirfd, name, 0) < 0) {
				io_error(w, "unlinking", name);
				goto out;
			}
		}
		if (fsync(w->dirfd) < 0) {
			io_error(w, "fsync of the directory", ".");
			goto out;
		}
		*f = nf;
		rc = 0;
		goto out;
	}
	name_of(name, sizeof(name), 'f', i, f->gen);
	if ((rnd >> 40) % 4 == 0) {
		name_of(to, sizeof(to), 'f', i, f->gen + 1);
		if (renameat(w->dirfd, name, w->dirfd, to) < 0)
			return io_error(w, "renaming", name);
		if (fsync(w->dirfd) < 0)
			return io_error(w, "fsync of the directory", ".");
		f->gen++;
		memcpy(name, to, sizeof(name));
	}
	fd = openat(w->dirfd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return io_error(w, "opening", name);
	rc = append(w, f, fd, n, name);
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

static int violation(const struct work *w, const char *what, const char *name)
{
	say("FSWORK-VIOLATION %s file=%s op=%" PRIu64, what, name, w->op);
	return 1;
}

/* Drops the page cache and compares the directory with memory.  Returns 0,
 * 1 after printing a violation, or -1 on an I/O error. */
static int verify(struct work *w)
{
	static unsigned char want[MAX_CHUNK];
	int fd, rc = 0, found = 0;
	char name[64];
	DIR *d = NULL;
	struct dirent *de;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "3\n", 2) != 2) {
		fprintf(stderr, "fswork: cannot drop the page cache (/proc/sys/vm/drop_caches): "
			"%s; run as root with /proc mounted\n", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);

	/* Names first: exactly one f<i>.<gen> per existing file, nothing else. */
	fd = openat(w->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return io_error(w, "listing", ".");
	}
	while ((de = readdir(d)) != NULL) {
		uint64_t i, gen;
		char kind, extra;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (sscanf(de->d_name, "%c%" SCNu64 ".%" SCNu64 "%c", &kind, &i, &gen,
			   &extra) != 3 || kind != 'f' || i >= w->nfiles || w->f[i].gen != gen) {
			rc = violation(w, "unexpected name", de->d_name);
			goto out;
		}
		found++;
	}
	for (uint64_t i = 0; i < w->nfiles; i++) {
		const struct file *f = &w->f[i];
		struct stat st;

		if (f->gen == 0)
			continue;
		found--;
		name_of(name, sizeof(name), 'f', i, f->gen);
		fd = openat(w->dirfd, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = errno == ENOENT ? violation(w, "file missing", name)
					     : io_error(w, "opening", name);
			goto out;
		}
		if (fstat(fd, &st) < 0) {
			rc = io_error(w, "stat of", name);
			close(fd);
			goto out;
		}
		if ((uint64_t)st.st_size != f->len) {
			char what[96];

			snprintf(what, sizeof(what), "size %lld expected %" PRIu64,
				 (long long)st.st_size, f->len);
			rc = violation(w, what, name);
			close(fd);
			goto out;
		}
		for (uint64_t off = 0; off < f->len && rc == 0; off += MAX_CHUNK) {
			size_t n = f->len - off < MAX_CHUNK ? (size_t)(f->len - off) : MAX_CHUNK;
			ssize_t r = pread(fd, w->buf, n, (off_t)off);

			if (r != (ssize_t)n) {
				rc = r < 0 ? io_error(w, "reading", name)
					   : violation(w, "short read", name);
				break;
			}
			content(f->instance, off, want, n);
			if (memcmp(w->buf, want, n) != 0) {
				char what[64];

				snprintf(what, sizeof(what), "content differs in bytes %" PRIu64
					 "..%" PRIu64, off, off + n - 1);
				rc = violation(w, what, name);
			}
		}
		close(fd);
		if (rc)
			goto out;
	}
	if (found != 0)
		rc = violation(w, "file count differs", ".");
out:
	closedir(d);
	return rc;
}

/* Removes every entry of the (flat) work directory. */
static int empty_dir(struct work *w)
{
	int fd = openat(w->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return io_error(w, "listing", ".");
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(w->dirfd, de->d_name, 0) < 0) {
			closedir(d);
			return io_error(w, "removing", de->d_name);
		}
	}
	closedir(d);
	if (fsync(w->dirfd) < 0)
		return io_error(w, "fsync of the directory", ".");
	return 0;
}

static uint64_t now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec;
}

int main(int argc, char **argv)
{
	uint64_t files = 8, max = 256 * 1024, secs = 0, ms = 0, every = 50, seed = 1;
	const char *dev = "/dev/vda", *mnt = "/mnt";
	struct guest_arg args[] = {
		{ "dev", GUEST_ARG_STR, "ext4 block device (default /dev/vda)", 0, 0, NULL, &dev, 0 },
		{ "mnt", GUEST_ARG_STR, "mount point, created if missing (default /mnt)",
		  0, 0, NULL, &mnt, 0 },
		{ "files", GUEST_ARG_U64, "files kept (default 8)", 1, MAX_FILES, &files, NULL, 0 },
		{ "max", GUEST_ARG_U64, "bytes before a file is replaced (default 262144)",
		  MAX_CHUNK, 64u << 20, &max, NULL, 0 },
		{ "secs", GUEST_ARG_U64, "seconds before unmounting and exiting, 0 = never (default 0)",
		  0, 86400, &secs, NULL, 0 },
		{ "ms", GUEST_ARG_U64, "milliseconds of sleep between ops (default 0)",
		  0, 60000, &ms, NULL, 0 },
		{ "verify", GUEST_ARG_U64, "ops between full checks against the disk, 0 = only at the end (default 50)",
		  0, UINT64_MAX, &every, NULL, 0 },
		{ "seed", GUEST_ARG_U64, "choice of files and sizes (default 1)",
		  0, UINT64_MAX, &seed, NULL, 0 },
	};
	struct work w = { .dirfd = -1 };
	char dir[256];
	uint64_t start, last_line, bytes, verified = 0;
	int rc = 1, mounted = 0, v;

	if (guest_args_parse("fswork", args, (int)(sizeof(args) / sizeof(args[0])), argc,
			     argv) < 0)
		return 2;
	w.nfiles = files;
	w.max = max;
	w.buf = malloc(max > MAX_CHUNK ? max : MAX_CHUNK);
	if (!w.buf) {
		fprintf(stderr, "fswork: no memory for a %" PRIu64 "-byte buffer\n", max);
		return 1;
	}
	if (mkdir(mnt, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "fswork: cannot create mount point %s: %s\n", mnt, strerror(errno));
		goto out;
	}
	if (mount(dev, mnt, "ext4", 0, NULL) < 0) {
		fprintf(stderr, "fswork: cannot mount %s on %s as ext4: %s (made with mkfs.ext4? "
			"booted with remus.modules=ext4?)\n", dev, mnt, strerror(errno));
		goto out;
	}
	mounted = 1;
	snprintf(dir, sizeof(dir), "%s/fswork", mnt);
	w.dir = dir;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "fswork: cannot create %s: %s\n", dir, strerror(errno));
		goto out;
	}
	w.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w.dirfd < 0) {
		fprintf(stderr, "fswork: cannot open %s: %s\n", dir, strerror(errno));
		goto out;
	}
	if (empty_dir(&w) < 0)
		goto out;
	say("fswork start dev=%s files=%" PRIu64 " max=%" PRIu64 " secs=%" PRIu64
	    " verify=%" PRIu64 " seed=%" PRIu64, dev, files, max, secs, every, seed);
	start = last_line = now_s();
	for (;;) {
		uint64_t t = now_s();

		if (secs && t - start >= secs)
			break;
		w.op++;
		if (one_op(&w, mix64(seed * GOLDEN + w.op)) < 0)
			goto out;
		if (every && w.op % every == 0) {
			if ((v = verify(&w)) != 0) {
				rc = v < 0 ? 1 : 3;
				goto out;
			}
			verified++;
		}
		if (t != last_line) {
			bytes = 0;
			for (uint64_t i = 0; i < files; i++)
				bytes += w.f[i].len;
			say("fswork op=%" PRIu64 " files=%" PRIu64 " bytes=%" PRIu64
			    " verified=%" PRIu64 " ok", w.op, files, bytes, verified);
			last_line = t;
		}
		if (ms)
			usleep((useconds_t)(ms * 1000));
	}
	if ((v = verify(&w)) != 0) {
		rc = v < 0 ? 1 : 3;
		goto out;
	}
	close(w.dirfd);
	w.dirfd = -1;
	if (umount(mnt) < 0) {
		fprintf(stderr, "fswork: cannot unmount %s: %s\n", mnt, strerror(errno));
		goto out;
	}
	mounted = 0;
	sync();
	say("fswork done op=%" PRIu64, w.op);
	rc = 0;
out:
	if (w.dirfd >= 0)
		close(w.dirfd);
	/* Leave a violation's state mounted for a look, but never half-written
	 * data: sync either way. */
	if (mounted)
		sync();
	free(w.buf);
	return rc;
}
