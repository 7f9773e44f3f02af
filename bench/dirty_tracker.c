// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * bench_dirty: what finding the written pages costs per epoch, side by
 * side in one run: the FUSE dirty tracker (dirty/) against a full scan
 * (the "full" backend: every page read and hashed to find the changed
 * ones, what any O(RAM) scheme pays), at several guest RAM sizes and
 * dirty rates.  Run by bench/dirty; see there for the keys.
 *
 * A forked writer plays the guest: it maps the RAM (the FUSE file, or a
 * memfd for the full scan) MAP_SHARED and writes the epoch's random pages,
 * whole, then waits while the parent collects (the guest stopped).  RAM
 * is sparse: only written pages take memory, as in a guest that has not
 * touched most of its RAM.  Nothing passes or fails on time.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "dirty/dirty.h"

#define PAGE 4096u

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double p50(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return v[n / 2];
}

/* The writer: maps @path (or @fd), then per command (a seed) writes
 * @npages random whole pages and answers with its time in ms. */
struct writer {
	pid_t pid;
	int cmd, ack;
};

static int writer_start(struct writer *w, const char *path, int fd,
			uint64_t size, uint64_t npages, uint64_t run)
{
	int c[2], a[2];

	if (pipe(c) < 0 || pipe(a) < 0)
		return -errno;
	w->pid = fork();
	if (w->pid < 0)
		return -errno;
	if (w->pid == 0) {
		uint64_t seed, i;
		uint8_t *m;
		int k;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* Not the parent's /dev/fuse (fuse_ram.h says why). */
		for (k = 3; k < 1024; k++)
			if (k != c[0] && k != a[1] && k != fd)
				close(k);
		if (path)
			fd = open(path, O_RDWR | O_CLOEXEC);
		m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			_exit(1);
		while (read(c[0], &seed, sizeof(seed)) == sizeof(seed)) {
			double t0 = now_ms(), dt;

			for (i = 0; i < npages; i += run) {
				uint64_t r = rnd(&seed);

				memset(m + (r % (size / PAGE - run + 1)) * PAGE,
				       (int)(r >> 56) | 1, PAGE * run);
			}
			dt = now_ms() - t0;
			if (write(a[1], &dt, sizeof(dt)) != sizeof(dt))
				break;
		}
		_exit(0);
	}
	close(c[0]);
	close(a[1]);
	w->cmd = c[1];
	w->ack = a[0];
	return 0;
}

static double writer_epoch(struct writer *w, uint64_t seed)
{
	double dt = -1;

	if (write(w->cmd, &seed, sizeof(seed)) != sizeof(seed) ||
	    read(w->ack, &dt, sizeof(dt)) != sizeof(dt))
		return -1;
	return dt;
}

static void writer_stop(struct writer *w)
{
	close(w->cmd);
	close(w->ack);
	waitpid(w->pid, NULL, 0);
}

/* The pages @seed writes, marked in @want (npages bits as bytes). */
static void expected(uint64_t seed, uint64_t n, uint64_t run,
		     uint64_t ram_pages, uint8_t *want)
{
	uint64_t i;

	memset(want, 0, ram_pages);
	for (i = 0; i < n; i += run)
		memset(want + rnd(&seed) % (ram_pages - run + 1), 1, run);
}

#define EPOCHS 5

static int run(const char *mnt, uint64_t mem_mib, uint64_t dirty,
	       uint64_t runlen)
{
	uint64_t size = mem_mib << 20, ram_pages = size / PAGE;
	struct remus_dirty_opts o = { .kind = REMUS_DIRTY_FUSE, .size = size,
				      .ram_fd = -1, .mount_dir = mnt,
				      .raise_bdi_limits = true };
	double f_collect[EPOCHS], f_read[EPOCHS], f_write[EPOCHS];
	double s_scan[EPOCHS], s_write[EPOCHS];
	uint64_t reported = 0, missed = 0, over = 0, changed = 0, e, p;
	struct remus_dirty *d = NULL;
	struct remus_dirty_set set = { 0 };
	uint8_t *want = calloc(ram_pages, 1), *buf = malloc(1 << 20);
	XXH64_hash_t *h = calloc(ram_pages, sizeof(*h)), zero;
	struct writer w;
	int rc, fd = -1;

	if (!want || !buf || !h)
		return -ENOMEM;
	/* FUSE tracker: collect, then read (hash) what it reported. */
	rc = remus_dirty_open(&o, &d);
	if (rc < 0)
		goto out;
	rc = remus_dirty_set_init(&set, ram_pages);
	if (rc < 0 || (rc = writer_start(&w, remus_dirty_ram_path(d), -1,
					 size, dirty, runlen)) < 0)
		goto out;
	writer_epoch(&w, 0x9e3779b9); /* warm: first touch reads pages in */
	remus_dirty_collect(d, &set);
	for (e = 0; e < EPOCHS; e++) {
		uint64_t seed = 1000 + e;
		double t0;

		f_write[e] = writer_epoch(&w, seed);
		t0 = now_ms();
		rc = remus_dirty_collect(d, &set);
		if (rc < 0)
			goto out;
		f_collect[e] = now_ms() - t0;
		t0 = now_ms();
		for (p = remus_dirty_set_next(&set, 0); p < ram_pages;
		     p = remus_dirty_set_next(&set, p + 1))
			h[p] = XXH3_64bits(remus_dirty_ram(d) + p * PAGE, PAGE);
		f_read[e] = now_ms() - t0;
		expected(seed, dirty, runlen, ram_pages, want);
		for (p = 0; p < ram_pages; p++) {
			int got = remus_dirty_set_test(&set, p);

			missed += want[p] && !got;
			over += !want[p] && got;
		}
		reported += set.ndirty;
	}
	writer_stop(&w);
	remus_dirty_close(d);
	d = NULL;

	/* Full scan: the same writes into a memfd; every page is read
	 * (pread: holes read as zeros without allocating) and hashed. */
	fd = memfd_create("bench-ram", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		rc = -errno;
		goto out;
	}
	zero = XXH3_64bits(memset(buf, 0, PAGE), PAGE);
	for (p = 0; p < ram_pages; p++)
		h[p] = zero;
	if ((rc = writer_start(&w, NULL, fd, size, dirty, runlen)) < 0)
		goto out;
	writer_epoch(&w, 0x9e3779b9);
	for (e = (uint64_t)-1; e + 1 < EPOCHS + 1; e++) {
		double t0, wt = 0;
		off_t off;

		/* The first pass only learns the warm-up's pages. */
		if (e != (uint64_t)-1)
			wt = writer_epoch(&w, 1000 + e);
		t0 = now_ms();
		for (off = 0; off < (off_t)size; off += 1 << 20) {
			if (pread(fd, buf, 1 << 20, off) != 1 << 20) {
				rc = -EIO;
				goto out;
			}
			for (p = 0; p < (1u << 20) / PAGE; p++) {
				uint64_t i = (uint64_t)off / PAGE + p;
				XXH64_hash_t x = XXH3_64bits(buf + p * PAGE, PAGE);

				changed += x != h[i] && e != (uint64_t)-1;
				h[i] = x;
			}
		}
		if (e != (uint64_t)-1) {
			s_scan[e] = now_ms() - t0;
			s_write[e] = wt;
		}
	}
	writer_stop(&w);
	{
		double fc = p50(f_collect, EPOCHS), fr = p50(f_read, EPOCHS);
		double ss = p50(s_scan, EPOCHS);

		printf("{\"mem_mib\":%llu,\"dirty_pages\":%llu,\"run_pages\":%llu,"
		       "\"fuse_collect_ms_p50\":%.3f,\"fuse_read_ms_p50\":%.3f,"
		       "\"fuse_epoch_ms_p50\":%.3f,\"full_scan_ms_p50\":%.3f,"
		       "\"full_vs_fuse\":%.1f,"
		       "\"fuse_reported_per_epoch\":%llu,\"fuse_missed\":%llu,"
		       "\"fuse_over_reported\":%llu,"
		       "\"full_changed_per_epoch\":%llu,"
		       "\"writer_ms_fuse_p50\":%.3f,\"writer_ms_memfd_p50\":%.3f}\n",
		       (unsigned long long)mem_mib, (unsigned long long)dirty,
		       (unsigned long long)runlen, fc, fr, fc + fr, ss, ss / (fc + fr > 0.001 ? fc + fr : 0.001),
		       (unsigned long long)(reported / EPOCHS),
		       (unsigned long long)missed, (unsigned long long)over,
		       (unsigned long long)(changed / EPOCHS),
		       p50(f_write, EPOCHS), p50(s_write, EPOCHS));
		fflush(stdout);
	}
	rc = 0;
out:
	if (rc < 0)
		fprintf(stderr, "bench_dirty: %llu MiB, %llu pages: %s\n",
			(unsigned long long)mem_mib, (unsigned long long)dirty,
			strerror(-rc));
	if (fd >= 0)
		close(fd);
	remus_dirty_set_release(&set);
	remus_dirty_close(d);
	free(want);
	free(buf);
	free(h);
	return rc;
}

/* bench_dirty serve MNT MIB: a tracker on MNT for bench/dirty-qemu, whose
 * QEMU maps the file.  Prints "ready PATH"; then per line on stdin "c"
 * collects and prints one JSON object, "d PATH" writes the tracker's copy
 * of the RAM to PATH, "q" (or EOF) closes.  Mount
 * namespace: the caller's. */
static int serve(const char *mnt, uint64_t mib)
{
	struct remus_dirty_opts o = { .kind = REMUS_DIRTY_FUSE,
				      .size = mib << 20, .ram_fd = -1,
				      .mount_dir = mnt,
				      .raise_bdi_limits = true };
	struct remus_dirty *d = NULL;
	struct remus_dirty_set set = { 0 };
	struct remus_dirty_stats a, b;
	char line[300];
	int rc;

	rc = remus_dirty_open(&o, &d);
	if (rc == 0)
		rc = remus_dirty_set_init(&set, remus_dirty_npages(d));
	if (rc < 0) {
		fprintf(stderr, "bench_dirty serve: %s\n", strerror(-rc));
		remus_dirty_close(d);
		return 1;
	}
	printf("ready %s\n", remus_dirty_ram_path(d));
	fflush(stdout);
	while (fgets(line, sizeof(line) - 1, stdin)) {
		if (line[0] == 'd') {
			/* "d PATH": the tracker's copy of the RAM into PATH. */
			char path[256];
			FILE *f;
			size_t n = 0;

			if (sscanf(line, "d %255s", path) == 1 &&
			    (f = fopen(path, "w"))) {
				n = fwrite(remus_dirty_ram(d), 1, mib << 20, f);
				fclose(f);
			}
			printf("{\"dumped\":%zu}\n", n);
			fflush(stdout);
			continue;
		}
		if (line[0] != 'c')
			break;
		uint64_t first, count, from = 0, runs = 0;
		double t0 = now_ms(), dt;

		remus_dirty_get_stats(d, &a);
		rc = remus_dirty_collect(d, &set);
		dt = now_ms() - t0;
		remus_dirty_get_stats(d, &b);
		while (remus_dirty_set_next_range(&set, from, &first, &count)) {
			runs++;
			from = first + count;
		}
		printf("{\"rc\":%d,\"ndirty\":%llu,\"runs\":%llu,"
		       "\"collect_ms\":%.3f,\"write_requests\":%llu,"
		       "\"read_requests\":%llu}\n", rc,
		       (unsigned long long)set.ndirty, (unsigned long long)runs,
		       dt, (unsigned long long)(b.write_requests - a.write_requests),
		       (unsigned long long)(b.read_requests - a.read_requests));
		fflush(stdout);
	}
	remus_dirty_set_release(&set);
	remus_dirty_close(d);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mems = getenv("BENCH_MEM_MIB"), *dirt = getenv("BENCH_DIRTY_PAGES");
	const char *runs = getenv("BENCH_RUN_PAGES");
	char mnt[] = "/tmp/remus-bench-dirty-XXXXXX", *list, *a, *b, *sa, *sb;
	int rc = 0;

	if (argc == 4 && strcmp(argv[1], "serve") == 0)
		return serve(argv[2], strtoull(argv[3], NULL, 10));
	if (!mems)
		mems = "256 1024 3072";
	if (!dirt)
		dirt = "0 256 4096 16384";
	if (!runs)
		runs = "1 64";
	if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0) {
		fprintf(stderr, "bench_dirty: needs root and /dev/fuse\n");
		return 77;
	}
	/* Our mounts die with us. */
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    !mkdtemp(mnt)) {
		perror("bench_dirty: private mount namespace");
		return 1;
	}
	list = strdup(mems);
	for (a = strtok_r(list, " ", &sa); a; a = strtok_r(NULL, " ", &sa)) {
		char *dl = strdup(dirt);

		for (b = strtok_r(dl, " ", &sb); b; b = strtok_r(NULL, " ", &sb)) {
			char *rl = strdup(runs), *c, *sc;

			for (c = strtok_r(rl, " ", &sc); c;
			     c = strtok_r(NULL, " ", &sc)) {
				uint64_t n = strtoull(b, NULL, 10);
				uint64_t k = strtoull(c, NULL, 10);

				if (k == 0 || (n && n < k))
					continue;
				if (run(mnt, strtoull(a, NULL, 10), n, k) < 0)
					rc = 1;
			}
			free(rl);
		}
		free(dl);
	}
	free(list);
	rmdir(mnt);
	return rc;
}
