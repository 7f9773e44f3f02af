// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The writers and exactness checks of ram_writer.h, shared by the FUSE and
 * RAMFS real-mount tests.  A process that serves a FUSE mount must never
 * open or map a file of it (it would wait on itself in its exit), so the
 * pages are always written by forked children.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
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

#include <cmocka.h>

#include "ram_writer.h"

#define PAGE RW_PAGE

uint8_t *ram_mirror;

int ram_test_main_setup(char *dir, size_t len, const char *template)
{
	if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0) {
		printf("SKIP: needs root and /dev/fuse to mount the guest RAM "
		       "filesystem\n");
		return 77;
	}
	/* Mounts made from here die with this process. */
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		printf("SKIP: no private mount namespace: %s\n", strerror(errno));
		return 77;
	}
	if (ram_writer_setup() < 0) {
		perror("mmap");
		return 1;
	}
	snprintf(dir, len, "%s", template);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	return 0;
}

int ram_writer_setup(void)
{
	ram_mirror = mmap(NULL, (size_t)RAM_PAGES * PAGE,
			  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			  -1, 0);
	return ram_mirror == MAP_FAILED ? -1 : 0;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint8_t *map_ram(const char *path, bool create)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
	uint8_t *m;

	if (fd < 0)
		_exit(3);
	if (create && ftruncate(fd, (off_t)RAM_PAGES * PAGE) < 0)
		_exit(4);
	m = mmap(NULL, (size_t)RAM_PAGES * PAGE, PROT_READ | PROT_WRITE,
		 MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		_exit(5);
	close(fd);
	return m;
}

/* The pages epoch @seed writes: a random count up to 3000, a third of
 * them in runs of neighbours (so WRITEs span several pages), some written
 * one byte only.  Marks them in @want (RAM_PAGES bytes). */
static void epoch_pages(uint64_t seed, uint8_t *want, uint8_t *m)
{
	uint64_t s = seed * 2654435761u + 1, n, i, p = 0;

	n = seed >= 1000 ? 0 : rnd(&s) % 3000; /* 1000+: none */
	for (i = 0; i < n; i++) {
		uint64_t r = rnd(&s);

		if (i % 3 == 0 && p + 1 < RAM_PAGES)
			p = p + 1;
		else
			p = r % RAM_PAGES;
		if (want)
			want[p] = 1;
		if (!m)
			continue;
		if (r & 0x100000)
			m[p * PAGE + r % PAGE] = (uint8_t)(seed + 1);
		else
			memset(m + p * PAGE, (int)(r >> 24), PAGE);
	}
}

/*
 * Run first in every writer child.  The child must not keep a /dev/fuse
 * fd of the parent's (fork copies it): if the parent died, the connection
 * would stay open with nobody serving it and the child's own exit would
 * wait on it forever.  And it must not outlive a parent whose assertion
 * failed.
 */
static void child_detach(int keep1, int keep2)
{
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (fd = 3; fd < 1024; fd++)
		if (fd != keep1 && fd != keep2)
			close(fd);
}

void ram_writer_start(const char *path, bool create, struct ram_writer *w)
{
	int c[2], a[2];
	char k;

	assert_int_equal(pipe(c), 0);
	assert_int_equal(pipe(a), 0);
	w->pid = fork();
	assert_true(w->pid >= 0);
	if (w->pid == 0) {
		uint8_t *m;
		uint64_t seed;

		child_detach(c[0], a[1]);
		m = map_ram(path, create);
		if (write(a[1], "m", 1) != 1)
			_exit(1);
		while (read(c[0], &seed, sizeof(seed)) == sizeof(seed) && seed) {
			epoch_pages(seed, NULL, m);
			memcpy(ram_mirror, m, (size_t)RAM_PAGES * PAGE);
			if (write(a[1], "k", 1) != 1)
				break;
		}
		_exit(0);
	}
	close(c[0]);
	close(a[1]);
	w->cmd = c[1];
	w->ack = a[0];
	assert_int_equal(read(w->ack, &k, 1), 1); /* mapped */
}

void ram_writer_epoch(struct ram_writer *w, uint64_t seed)
{
	char k;

	assert_int_equal(write(w->cmd, &seed, sizeof(seed)), sizeof(seed));
	if (seed)
		assert_int_equal(read(w->ack, &k, 1), 1);
}

void ram_writer_stop(struct ram_writer *w)
{
	int st;

	ram_writer_epoch(w, 0);
	assert_int_equal(waitpid(w->pid, &st, 0), w->pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(w->cmd);
	close(w->ack);
}

void ram_check_exact_epochs(struct remus_dirty *d, struct ram_writer *w,
			    const char *label)
{
	struct remus_dirty_set set;
	uint8_t *want = calloc(RAM_PAGES, 1);
	uint64_t seed, p, missed = 0, over = 0, written = 0;

	assert_non_null(want);
	assert_int_equal(remus_dirty_set_init(&set, RAM_PAGES), 0);
	/* Nothing written yet: an empty first epoch (the writer's mapping
	 * and its reads do not count). */
	ram_writer_epoch(w, 1000); /* a seed that writes no page */
	assert_int_equal(remus_dirty_collect(d, &set), 0);
	assert_int_equal(set.ndirty, 0);
	for (seed = 1; seed <= 12; seed++) {
		memset(want, 0, RAM_PAGES);
		epoch_pages(seed, want, NULL);
		ram_writer_epoch(w, seed);
		assert_int_equal(remus_dirty_collect(d, &set), 0);
		for (p = 0; p < RAM_PAGES; p++) {
			bool got = remus_dirty_set_test(&set, p);

			written += want[p];
			if (want[p] && !got)
				missed++;
			if (!want[p] && got)
				over++;
			/* What was reported is in the copy as written. */
			if (got)
				assert_memory_equal(remus_dirty_ram(d) + p * PAGE,
						    ram_mirror + p * PAGE, PAGE);
		}
	}
	print_message("%s: 12 epochs, %llu pages written, %llu missed, "
		      "%llu over-reported\n", label,
		      (unsigned long long)written, (unsigned long long)missed,
		      (unsigned long long)over);
	assert_int_equal(missed, 0);
	/* Over-reporting is allowed by the contract, but this mechanism is
	 * exact: a change here is a finding, not noise. */
	assert_int_equal(over, 0);
	/* start forgets what was written before it. */
	ram_writer_epoch(w, 99);
	assert_int_equal(remus_dirty_start(d), 0);
	assert_int_equal(remus_dirty_collect(d, &set), 0);
	assert_int_equal(set.ndirty, 0);
	remus_dirty_set_release(&set);
	free(want);
}

void ram_check_no_page_lost_in_race(struct remus_dirty *d, const char *path,
				    const char *label)
{
	struct remus_dirty_set set;
	uint8_t *shadow = calloc(RAM_PAGES, PAGE);
	volatile uint32_t *stop = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint64_t collects = 0, reported = 0, p, stale = 0;
	double t0, slowest = 0;
	pid_t pid;
	int st;

	assert_non_null(shadow);
	assert_true(stop != MAP_FAILED);
	assert_int_equal(remus_dirty_set_init(&set, RAM_PAGES), 0);
	*stop = 0;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uint8_t *w;
		uint64_t s = 88172645463325252ull, n = 0;

		child_detach(-1, -1);
		w = map_ram(path, false);
		while (__atomic_load_n(stop, __ATOMIC_ACQUIRE) == 0) {
			uint64_t r = rnd(&s), q = r % RAM_PAGES;

			/* Hot pages too: a tenth go to the first 64. */
			if (r % 10 == 0)
				q %= 64;
			n++;
			memcpy(w + q * PAGE + (r >> 40) % (PAGE - 8), &n, 8);
		}
		/* Stopped like a paused guest: alive, mapping held, until
		 * the parent has checked (see struct ram_writer). */
		memcpy(ram_mirror, w, (size_t)RAM_PAGES * PAGE);
		__atomic_store_n(stop, 2, __ATOMIC_RELEASE);
		while (__atomic_load_n(stop, __ATOMIC_ACQUIRE) != 3)
			usleep(1000);
		_exit(0);
	}
	t0 = now_ms();
	while (now_ms() - t0 < 2000) {
		double c0 = now_ms();

		assert_int_equal(remus_dirty_collect(d, &set), 0);
		if (now_ms() - c0 > slowest)
			slowest = now_ms() - c0;
		collects++;
		reported += set.ndirty;
		for (p = remus_dirty_set_next(&set, 0); p < RAM_PAGES;
		     p = remus_dirty_set_next(&set, p + 1))
			memcpy(shadow + p * PAGE, remus_dirty_ram(d) + p * PAGE,
			       PAGE);
	}
	__atomic_store_n(stop, 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(stop, __ATOMIC_ACQUIRE) != 2)
		usleep(1000);
	assert_int_equal(remus_dirty_collect(d, &set), 0);
	for (p = remus_dirty_set_next(&set, 0); p < RAM_PAGES;
	     p = remus_dirty_set_next(&set, p + 1))
		memcpy(shadow + p * PAGE, remus_dirty_ram(d) + p * PAGE, PAGE);
	for (p = 0; p < RAM_PAGES; p++)
		stale += memcmp(shadow + p * PAGE, ram_mirror + p * PAGE,
				PAGE) != 0;
	__atomic_store_n(stop, 3, __ATOMIC_RELEASE);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	print_message("%s race: %llu collects in 2 s while writing, %llu "
		      "pages reported, slowest collect %.1f ms, %llu stale "
		      "pages in the shadow\n", label,
		      (unsigned long long)collects,
		      (unsigned long long)reported, slowest,
		      (unsigned long long)stale);
	assert_true(collects >= 10);
	assert_int_equal(stale, 0);
	munmap((void *)stop, 4096);
	remus_dirty_set_release(&set);
	free(shadow);
}
