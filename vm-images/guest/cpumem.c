/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpumem: an unthrottled CPU and memory workload that counts its own
 * operations, so what protection costs the guest shows up as lost
 * throughput (bench/engine).  tick and dirty cannot show that: they sleep
 * between fixed amounts of work and catch up after a pause.
 *
 *     remus.run=cpumem remus.args=mb=32,ms=100,port=0,secs=0,seed=1
 *
 * One operation: one xorshift64 step, a read-modify-write of the 64-bit
 * word it picks uniformly in the mb MiB working set (so every page of it
 * is written many times a second), a multiply and an add.  The set is
 * filled with non-zero words first, so its pages are present and not
 * zero-pages from the start, and kept in 4 KiB pages (MADV_NOHUGEPAGE),
 * so khugepaged cannot change the cost of an access in the middle of a
 * run.
 *
 * Under TCG a random access over tens of MiB costs about 7x more while
 * QEMU's software TLB is small than once it has grown to cover the set,
 * and QEMU resizes it only when the guest flushes its TLB, which a lone
 * busy process hardly makes it do: measured, the rate stayed at ~4 M/s
 * for 2 to 6 s after a start and then jumped to ~30 M/s, sooner when
 * checkpoints happened to flush.  So each print also flushes the guest's
 * TLB (an mprotect of 64 scratch pages, past the kernel's single-page
 * flush ceiling): the TLB reaches its size within a second of any start,
 * protected or not, and the cost of the flush itself is the same in both.  While running it prints, every ms of guest
 * time, the cumulative count:
 *
 *     cpumem start mb=32 ms=100 port=0 seed=1
 *     cpumem run=R ops=N          every ms while run R goes on
 *     cpumem stop run=R ops=N     when run R ends (port mode)
 *
 * The host divides two counts by ITS OWN clock between reading them: the
 * guest's clock does not advance while QEMU has the VM stopped, so a rate
 * by guest time would hide every checkpoint pause.  N is exact; the only
 * error is how stale the last line is (< ms plus one pause) at each end of
 * the host's window.
 *
 * port=0 runs from the start (for secs= seconds, 0 = forever).  port=P
 * runs only while a TCP client holds a connection to P open: a bench can
 * take turns between this and another guest program (the kvstore) on the
 * guest's one vCPU.  The count is cumulative over runs.  Bytes the client
 * sends are ignored; EOF or an error on the connection ends the run, which
 * is checked at each print.
 */
#define _GNU_SOURCE /* accept4 */
#include "guest-args.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SCRATCH_BYTES (64 * 4096)

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* One write per line, so lines never interleave with another program's. */
static int say(const char *fmt, uint64_t a, uint64_t b)
{
	char line[96];
	int len = snprintf(line, sizeof(line), fmt, a, b);

	if (write(STDOUT_FILENO, line, (size_t)len) != len) {
		perror("cpumem: write to stdout");
		return -1;
	}
	return 0;
}

/* A full TLB flush of this CPU: mprotect past the single-page ceiling. */
static int flush_tlb(void *scratch)
{
	if (mprotect(scratch, SCRATCH_BYTES, PROT_READ) < 0 ||
	    mprotect(scratch, SCRATCH_BYTES, PROT_READ | PROT_WRITE) < 0) {
		perror("cpumem: mprotect of the scratch pages");
		return -1;
	}
	memset(scratch, 1, SCRATCH_BYTES);  /* present again, for the next one */
	return 0;
}

/* The connection is over: EOF, an error or a hang-up. */
static int conn_closed(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[256];

	if (poll(&p, 1, 0) <= 0)
		return 0;
	if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
		return 1;
	return read(fd, buf, sizeof(buf)) <= 0;
}

/*
 * Runs until @conn (if >= 0) closes or @until_ns (if non-zero) passes,
 * printing the count every @ms.  Returns 0, or -1 after an output error.
 */
static int run(volatile uint64_t *set, uint64_t words, void *scratch, uint64_t *rng,
	       uint64_t *ops, uint64_t runno, uint64_t ms, int conn, uint64_t until_ns)
{
	uint64_t x = *rng, n = *ops, next = now_ns() + ms * 1000000u;

	for (;;) {
		/* 4096 operations between clock reads: the vDSO read is
		 * cheap, but not free under TCG. */
		for (int i = 0; i < 4096; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* Uniform index without a division. */
			uint64_t w = (uint64_t)(((unsigned __int128)x * words) >> 64);
			set[w] = (set[w] ^ x) * 0x9e3779b97f4a7c15u + n + (uint64_t)i;
		}
		n += 4096;
		uint64_t t = now_ns();
		if (t < next)
			continue;
		next = t + ms * 1000000u;
		*rng = x;
		*ops = n;
		if (say("cpumem run=%" PRIu64 " ops=%" PRIu64 "\n", runno, n) < 0 ||
		    flush_tlb(scratch) < 0)
			return -1;
		if (conn >= 0 && conn_closed(conn))
			return 0;
		if (until_ns && t >= until_ns)
			return 0;
	}
}

int main(int argc, char **argv)
{
	uint64_t mb = 32, ms = 100, port = 0, secs = 0, seed = 1, ops = 0, runno = 0;
	struct guest_arg args[] = {
		{ "mb", GUEST_ARG_U64, "working set in MiB (default 32)", 1, 65536, &mb, NULL, 0 },
		{ "ms", GUEST_ARG_U64, "print the count every ms (default 100)", 1, 60000, &ms, NULL, 0 },
		{ "port", GUEST_ARG_U64, "run while a TCP client holds this port, 0 = always (default 0)",
		  0, 65535, &port, NULL, 0 },
		{ "secs", GUEST_ARG_U64, "port=0: exit after secs, 0 = never (default 0)",
		  0, UINT64_MAX / 1000000000u, &secs, NULL, 0 },
		{ "seed", GUEST_ARG_U64, "seed of the word sequence, not 0 (default 1)",
		  1, UINT64_MAX, &seed, NULL, 0 },
	};
	uint64_t words, rng;
	uint64_t *set;
	void *scratch = MAP_FAILED;
	int lfd = -1, rc = 1;

	if (guest_args_parse("cpumem", args, 5, argc, argv) < 0)
		return 2;
	words = mb * 1024 * 1024 / sizeof(uint64_t);
	set = mmap(NULL, mb << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (set == MAP_FAILED) {
		fprintf(stderr, "cpumem: mmap of %" PRIu64 " MiB: %s\n", mb, strerror(errno));
		return 1;
	}
	scratch = mmap(NULL, SCRATCH_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	if (scratch == MAP_FAILED) {
		perror("cpumem: mmap of the scratch pages");
		goto out;
	}
	memset(scratch, 1, SCRATCH_BYTES);
	/* Before the first touch, so no fault maps a huge page either. */
	if (madvise(set, mb << 20, MADV_NOHUGEPAGE) < 0 && errno != EINVAL) {
		fprintf(stderr, "cpumem: madvise(MADV_NOHUGEPAGE): %s\n", strerror(errno));
		goto out;
	}
	rng = seed;
	for (uint64_t i = 0; i < words; i++)
		set[i] = i * 0x9e3779b97f4a7c15u + seed;
	if (port) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
					 .sin_addr.s_addr = htonl(INADDR_ANY) };
		int one = 1;

		lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		    bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4) < 0) {
			fprintf(stderr, "cpumem: listen on port %" PRIu64 ": %s\n", port, strerror(errno));
			goto out;
		}
	}
	char start[128];
	int len = snprintf(start, sizeof(start), "cpumem start mb=%" PRIu64 " ms=%" PRIu64
			   " port=%" PRIu64 " seed=%" PRIu64 "\n", mb, ms, port, seed);
	if (write(STDOUT_FILENO, start, (size_t)len) != len) {
		perror("cpumem: write to stdout");
		goto out;
	}
	if (!port) {
		rc = run(set, words, scratch, &rng, &ops, 1, ms, -1,
			 secs ? now_ns() + secs * 1000000000u : 0) < 0;
		goto out;
	}
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("cpumem: accept");
			goto out;
		}
		runno++;
		int r = run(set, words, scratch, &rng, &ops, runno, ms, c, 0);
		close(c);
		if (r < 0 || say("cpumem stop run=%" PRIu64 " ops=%" PRIu64 "\n", runno, ops) < 0)
			goto out;
	}
out:
	if (lfd >= 0)
		close(lfd);
	if (scratch != MAP_FAILED)
		munmap(scratch, SCRATCH_BYTES);
	munmap(set, mb << 20);
	return rc;
}
