/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dirty: a memory dirtier whose memory can be checked after a checkpoint,
 * a migration or a failover.
 *
 *     remus.run=dirty remus.args=mb=16,mbps=2,slices=20,seed=1,count=0
 *
 * prints, on stdout (the guest's ttyS0),
 *
 *     dirty start mb=16 pages=4096 rate=512 slices=20 seed=1
 *     dirty seq=0 sum=5c3e1b0a9d8f7e21       after filling the region
 *     dirty seq=1 sum=...                    once per second after that
 *     dirty MISMATCH seq=N sum=X expected=Y  (then exits 1) on corruption
 *
 * The region is mb MiB of 4 KiB pages.  Writes go round-robin: the c-th page
 * write (c = 0, 1, ...) goes to page c mod P and makes it version c / P + 1
 * (version 0 is the initial fill).  Page i at version v holds the words
 * base(i, v, seed) + k * GOLDEN, k = 0..511.  Every second is cut into
 * `slices` equal slices on absolute CLOCK_MONOTONIC deadlines and each slice
 * writes its share of the rate, so dirtying is spread over the second rather
 * than bursty, and each second writes exactly `rate` pages whatever the
 * timing: the region's content at seq N is a pure function of
 * (mb, rate, seed, N).  So is the printed sum, which means two guests started
 * with the same arguments print the same sum for the same seq, and a resumed
 * copy must continue the original's sequence exactly.
 *
 * The sum is sum over pages of mix64(fnv1a64 over the page's words, seeded
 * with the page index), mod 2^64.  Because it is an order-free sum, the
 * program keeps an expected sum up to date as it writes (subtracting the
 * page's old contribution, adding the new one, both computed from the values
 * it writes, never re-read from the region).  At every second boundary it
 * recomputes the sum by reading the whole region, with nothing else writing
 * it (one thread), and compares: memory that a snapshot, a migration or a
 * failover lost or corrupted between two boundaries shows as a MISMATCH.
 * The guest therefore checks its own memory after being resumed elsewhere,
 * at its next boundary, against the values it maintained before.
 */
#include "guest-args.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE_BYTES 4096u
#define PAGE_WORDS (PAGE_BYTES / sizeof(uint64_t))
#define GOLDEN 0x9e3779b97f4a7c15ull
#define FNV_PRIME 0x100000001b3ull
#define FNV_BASIS 0xcbf29ce484222325ull

struct region {
	uint64_t *mem;      /* pages * PAGE_WORDS words, owned (mmap) */
	uint64_t *contrib;  /* per-page contribution to the sum, owned */
	uint64_t pages;
	uint64_t seed;
	uint64_t writes;    /* page writes so far after the initial fill */
	uint64_t expected;  /* sum of contrib[] */
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

/* Writes version @ver of page @i and returns its contribution to the sum. */
static uint64_t write_page(struct region *r, uint64_t i, uint64_t ver)
{
	uint64_t *p = r->mem + i * PAGE_WORDS;
	uint64_t w = mix64(r->seed ^ mix64(i * GOLDEN + ver));
	uint64_t h = FNV_BASIS ^ i;

	for (size_t k = 0; k < PAGE_WORDS; k++, w += GOLDEN) {
		p[k] = w;
		h = (h ^ w) * FNV_PRIME;
	}
	return mix64(h);
}

/* Reads the whole region; the sum it holds now. */
static uint64_t region_sum(const struct region *r)
{
	uint64_t sum = 0;

	for (uint64_t i = 0; i < r->pages; i++) {
		const volatile uint64_t *p = r->mem + i * PAGE_WORDS;
		uint64_t h = FNV_BASIS ^ i;

		for (size_t k = 0; k < PAGE_WORDS; k++)
			h = (h ^ p[k]) * FNV_PRIME;
		sum += mix64(h);
	}
	return sum;
}

static void dirty_pages(struct region *r, uint64_t n)
{
	while (n-- > 0) {
		uint64_t i = r->writes % r->pages;
		uint64_t ver = r->writes / r->pages + 1;
		uint64_t c = write_page(r, i, ver);

		r->expected += c - r->contrib[i];
		r->contrib[i] = c;
		r->writes++;
	}
}

static void add_ns(struct timespec *t, uint64_t ns)
{
	t->tv_sec += (time_t)(ns / 1000000000u);
	t->tv_nsec += (long)(ns % 1000000000u);
	if (t->tv_nsec >= 1000000000L) {
		t->tv_nsec -= 1000000000L;
		t->tv_sec++;
	}
}

static int say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int say(const char *fmt, ...)
{
	char line[160];
	va_list ap;

	va_start(ap, fmt);
	int len = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(line))
		len = (int)sizeof(line) - 1;
	/* One write per line so lines never interleave with others. */
	if (write(STDOUT_FILENO, line, (size_t)len) != len) {
		perror("dirty: write to stdout");
		return -EIO;
	}
	return 0;
}

/* Returns 0 if the region holds what was written, else prints and -EIO. */
static int check_and_print(const struct region *r, uint64_t seq)
{
	uint64_t sum = region_sum(r);

	if (sum != r->expected) {
		say("dirty MISMATCH seq=%" PRIu64 " sum=%016" PRIx64
		    " expected=%016" PRIx64 "\n", seq, sum, r->expected);
		return -EIO;
	}
	return say("dirty seq=%" PRIu64 " sum=%016" PRIx64 "\n", seq, sum);
}

int main(int argc, char **argv)
{
	uint64_t mb = 16, mbps = 2, pages_ps = 0, slices = 20, seed = 1, count = 0;
	struct guest_arg args[] = {
		{ "mb", GUEST_ARG_U64, "region size in MiB (default 16)",
		  1, 1u << 20, &mb, NULL, 0 },
		{ "mbps", GUEST_ARG_U64, "dirty rate in MiB/s (default 2)",
		  0, 1u << 20, &mbps, NULL, 0 },
		{ "pages", GUEST_ARG_U64, "dirty rate in 4 KiB pages/s (overrides mbps)",
		  0, 1u << 28, &pages_ps, NULL, 0 },
		{ "slices", GUEST_ARG_U64, "write slices per second (default 20)",
		  1, 1000, &slices, NULL, 0 },
		{ "seed", GUEST_ARG_U64, "content seed (default 1)",
		  0, UINT64_MAX, &seed, NULL, 0 },
		{ "count", GUEST_ARG_U64, "seconds before exiting 0, 0 = forever (default 0)",
		  0, UINT64_MAX, &count, NULL, 0 },
	};
	struct region r = { .seed = 0 };
	struct timespec next;
	int rc = 1;

	if (guest_args_parse("dirty", args, 6, argc, argv) < 0)
		return 2;
	uint64_t rate = args[2].seen ? pages_ps : mbps * (1u << 20) / PAGE_BYTES;

	r.pages = mb * (1u << 20) / PAGE_BYTES;
	r.seed = seed;
	r.mem = mmap(NULL, r.pages * PAGE_BYTES, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (r.mem == MAP_FAILED) {
		fprintf(stderr, "dirty: cannot map %" PRIu64 " MiB: %s; "
			"give the guest more memory or a smaller mb=\n",
			mb, strerror(errno));
		r.mem = NULL;
		goto out;
	}
	r.contrib = calloc(r.pages, sizeof(*r.contrib));
	if (r.contrib == NULL) {
		fprintf(stderr, "dirty: out of memory for %" PRIu64 " page sums\n",
			r.pages);
		goto out;
	}
	if (say("dirty start mb=%" PRIu64 " pages=%" PRIu64 " rate=%" PRIu64
		" slices=%" PRIu64 " seed=%" PRIu64 "\n",
		mb, r.pages, rate, slices, seed) < 0)
		goto out;
	for (uint64_t i = 0; i < r.pages; i++) {
		r.contrib[i] = write_page(&r, i, 0);
		r.expected += r.contrib[i];
	}
	if (check_and_print(&r, 0) < 0)
		goto out;

	if (clock_gettime(CLOCK_MONOTONIC, &next) < 0) {
		perror("dirty: clock_gettime(CLOCK_MONOTONIC)");
		goto out;
	}
	for (uint64_t seq = 1; count == 0 || seq <= count; seq++) {
		for (uint64_t s = 0; s < slices; s++) {
			int e;

			/* Slice s writes pages [rate*s/slices, rate*(s+1)/slices). */
			dirty_pages(&r, rate * (s + 1) / slices - rate * s / slices);
			add_ns(&next, 1000000000u / slices);
			while ((e = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME,
						    &next, NULL)) == EINTR)
				;
			if (e != 0) {
				fprintf(stderr, "dirty: clock_nanosleep: %s\n",
					strerror(e));
				goto out;
			}
		}
		if (check_and_print(&r, seq) < 0)
			goto out;
	}
	rc = 0;
out:
	free(r.contrib);
	if (r.mem != NULL)
		munmap(r.mem, r.pages * PAGE_BYTES);
	return rc;
}
