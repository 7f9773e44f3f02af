/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diskrec: a disk writer whose disk can be checked against its memory after
 * a checkpoint, a failover or a restart.
 *
 *     remus.run=diskrec remus.args=dev=/dev/vda,ms=20,slots=256,scan=50
 *
 * Disk replication is correct when, after a failover, the disk holds exactly
 * the writes the guest's memory remembers: every write the checkpointed
 * memory saw complete, and none the primary made after that checkpoint.
 * diskrec makes both halves visible.
 *
 * The ring.  Record n (n = 1, 2, ...) is one 4 KiB block written with
 * O_DIRECT into slot (n - 1) mod slots of a ring of `slots` blocks starting
 * at block `first` of `dev`; its lap is (n - 1) / slots, so the ring is
 * overwritten forever and slot s always holds the newest record n <= last
 * with (n - 1) mod slots == s, or zeros while lap 0 has not reached it.  A
 * record is
 *
 *     0    "DISKREC1"   magic
 *     8    seq n        little-endian u64, as every field
 *     16   slot
 *     24   lap
 *     32   slots        ring size (a verify with another size fails loudly)
 *     40   payload      words mix64(n * GOLDEN + i), up to byte 4088
 *     4088 checksum     FNV-1a 64 over bytes 0..4087
 *
 * a pure function of (n, slots), so a checker compares whole blocks.
 *
 * The memory.  The program keeps `last`, the newest record whose write
 * completed.  Before writing record n = last + 1 it reads back slot(n - 1),
 * which must hold record n - 1 (else "record missing before the checkpoint":
 * the disk lost a write the memory saw complete), and slot(n), which must
 * not hold a record >= n (else "record past the checkpoint": the disk kept
 * a write from a future the memory never reached, i.e. an uncommitted epoch
 * survived the failover).  Every `scan` records it reads the whole ring and
 * checks every slot against `last` the same way.  A guest resumed from a
 * checkpoint on a standby thus checks the standby's disk against the
 * checkpoint's memory within one record.
 *
 * On a violation diskrec prints
 *
 *     DISKREC-VIOLATION <what> seq=N slot=S found=F last=L
 *
 * where <what> is "record missing before the checkpoint", "record past the
 * checkpoint" or "record corrupt" (a block that is neither zeros nor an
 * exact record), N the record slot S should hold given L (the newest record
 * the memory knows; 0 = empty) and F the seq the slot holds (0 if empty);
 * in write mode diskrec then exits 3 at
 * once: after the first mismatch memory and disk disagree and every later
 * line would repeat it.  Progress: "diskrec seq=N ok" when N is a multiple
 * of `every` (N consecutive multiples, tick-style, even across a pause:
 * missed periods are skipped, never burst).
 *
 * Modes (mode=):
 *   write   the above; count=N exits 0 after record N.  A ring that already
 *           holds records is refused unless resume=1, which finds the newest
 *           record on disk, checks the ring against it and continues.
 *   verify  checks the ring against seq=N (records 1..N present as above,
 *           nothing newer), or with seq=0 against the newest record found,
 *           which must be >= min.  Prints every violation, then
 *           "diskrec verify last=N ok" (exit 0) or exits 1.
 *   forge   writes record seq=N into its slot (a test makes a "future"
 *   erase   record), or zeroes the slot of record seq=N (a "lost" write).
 *   bench   sequential (pattern=seq) or random (pattern=rand) O_DIRECT
 *           writes of bs bytes for secs seconds over size MiB (0: the whole
 *           device after `first`), queue depth 1, then one line
 *           "diskrec bench pattern=P bs=B secs=S ops=N MBps=X iops=Y".
 *           Destroys the ring.
 *
 * The same binary runs on the host (a raw image file as dev=; direct=0 for
 * file systems without O_DIRECT), which is how tests forge and check images.
 */
#define _GNU_SOURCE
#include "guest-args.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096u
#define SUM_OFF (BLOCK - 8u)
#define PAYLOAD_OFF 40u
#define GOLDEN 0x9e3779b97f4a7c15ull
#define FNV_PRIME 0x100000001b3ull
#define FNV_BASIS 0xcbf29ce484222325ull
#define MAGIC "DISKREC1"
#define MAX_REPORTS 20  /* violations printed by one verify */

struct ring {
	int fd;               /* owned */
	const char *dev;      /* borrowed from argv */
	uint64_t first;       /* first block of the ring */
	uint64_t slots;
	unsigned char *buf;   /* one block, BLOCK-aligned, owned */
	unsigned char *want;  /* one block, BLOCK-aligned, owned */
	uint64_t violations;
	int hinted;           /* the wrong-slots= hint was printed */
};

/* What a slot holds. */
enum slot_kind { SLOT_EMPTY, SLOT_RECORD, SLOT_CORRUPT };

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t fnv1a64(const unsigned char *p, size_t n)
{
	uint64_t h = FNV_BASIS;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= FNV_PRIME;
	}
	return h;
}

/* One write() per line, so lines never interleave with the kernel's. */
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
		return;  /* nowhere left to report it */
}

static uint64_t slot_of(const struct ring *r, uint64_t seq)
{
	return (seq - 1) % r->slots;
}

/* The newest record <= @last that lives in slot @s, 0 if none yet. */
static uint64_t expected_in(const struct ring *r, uint64_t s, uint64_t last)
{
	if (last < s + 1)
		return 0;
	return s + 1 + (last - (s + 1)) / r->slots * r->slots;
}

static void make_record(const struct ring *r, uint64_t seq, unsigned char *b)
{
	memcpy(b, MAGIC, 8);
	put_le64(b + 8, seq);
	put_le64(b + 16, slot_of(r, seq));
	put_le64(b + 24, (seq - 1) / r->slots);
	put_le64(b + 32, r->slots);
	for (uint64_t i = 0; PAYLOAD_OFF + 8 * i < SUM_OFF; i++)
		put_le64(b + PAYLOAD_OFF + 8 * i, mix64(seq * GOLDEN + i));
	put_le64(b + SUM_OFF, fnv1a64(b, SUM_OFF));
}

static int read_slot(struct ring *r, uint64_t s)
{
	off_t off = (off_t)((r->first + s) * BLOCK);
	ssize_t n = pread(r->fd, r->buf, BLOCK, off);

	if (n == (ssize_t)BLOCK)
		return 0;
	fprintf(stderr, "diskrec: reading slot %" PRIu64 " of %s at byte %lld: %s\n",
		s, r->dev, (long long)off, n < 0 ? strerror(errno) : "short read");
	return n < 0 ? -errno : -EIO;
}

static int write_slot(struct ring *r, uint64_t s, const unsigned char *b)
{
	off_t off = (off_t)((r->first + s) * BLOCK);
	ssize_t n = pwrite(r->fd, b, BLOCK, off);

	if (n == (ssize_t)BLOCK)
		return 0;
	fprintf(stderr, "diskrec: writing slot %" PRIu64 " of %s at byte %lld: %s\n",
		s, r->dev, (long long)off, n < 0 ? strerror(errno) : "short write");
	return n < 0 ? -errno : -EIO;
}

/* Classifies r->buf, just read from slot @s; a record's seq in @seq. */
static enum slot_kind classify(struct ring *r, uint64_t s, uint64_t *seq)
{
	static const unsigned char zero[BLOCK];
	uint64_t n;

	*seq = 0;
	if (memcmp(r->buf, zero, BLOCK) == 0)
		return SLOT_EMPTY;
	if (memcmp(r->buf, MAGIC, 8) != 0)
		return SLOT_CORRUPT;
	n = get_le64(r->buf + 8);
	if (n == 0 || get_le64(r->buf + 32) != r->slots || slot_of(r, n) != s)
		return SLOT_CORRUPT;
	/* The whole block, not only the checksum: a record is exact or not. */
	make_record(r, n, r->want);
	if (memcmp(r->buf, r->want, BLOCK) != 0)
		return SLOT_CORRUPT;
	*seq = n;
	return SLOT_RECORD;
}

/*
 * Reads slot @s and checks it against @last, the newest record the memory
 * says was written.  Returns 0 if it matches, 1 after printing a violation,
 * or -errno if the slot cannot be read.
 */
static int check_slot(struct ring *r, uint64_t s, uint64_t last)
{
	uint64_t want = expected_in(r, s, last), got;
	const char *what;
	enum slot_kind k;
	int rc = read_slot(r, s);

	if (rc < 0)
		return rc;
	k = classify(r, s, &got);
	if (k == SLOT_CORRUPT) {
		what = "record corrupt";
		if (!r->hinted && memcmp(r->buf, MAGIC, 8) == 0 &&
		    get_le64(r->buf + 32) != r->slots) {
			fprintf(stderr, "diskrec: %s holds records of a ring of %" PRIu64
				" slots; pass slots=%" PRIu64 " (this run has %" PRIu64 ")\n",
				r->dev, get_le64(r->buf + 32), get_le64(r->buf + 32), r->slots);
			r->hinted = 1;
		}
	}
	else if (got > last)
		what = "record past the checkpoint";
	else if (got != want)
		what = "record missing before the checkpoint";
	else
		return 0;
	say("DISKREC-VIOLATION %s seq=%" PRIu64 " slot=%" PRIu64 " found=%" PRIu64
	    " last=%" PRIu64, what, want, s, k == SLOT_CORRUPT ? get_le64(r->buf + 8) : got,
	    last);
	r->violations++;
	return 1;
}

/* Checks every slot against @last, printing at most MAX_REPORTS violations
 * (all of them are counted).  Returns 0, or -errno on a read error. */
static int scan_ring(struct ring *r, uint64_t last)
{
	uint64_t before = r->violations;

	for (uint64_t s = 0; s < r->slots; s++) {
		int rc;

		if (r->violations - before >= MAX_REPORTS) {
			/* Keep counting without printing. */
			uint64_t got;

			if ((rc = read_slot(r, s)) < 0)
				return rc;
			if (classify(r, s, &got) == SLOT_CORRUPT || got > last ||
			    got != expected_in(r, s, last))
				r->violations++;
			continue;
		}
		if ((rc = check_slot(r, s, last)) < 0)
			return rc;
	}
	return 0;
}

/* The newest valid record in the ring, 0 if none. */
static int newest_record(struct ring *r, uint64_t *newest)
{
	*newest = 0;
	for (uint64_t s = 0; s < r->slots; s++) {
		uint64_t got;
		int rc = read_slot(r, s);

		if (rc < 0)
			return rc;
		if (classify(r, s, &got) == SLOT_RECORD && got > *newest)
			*newest = got;
	}
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void sleep_until(uint64_t ns)
{
	struct timespec t = { .tv_sec = (time_t)(ns / 1000000000u),
			      .tv_nsec = (long)(ns % 1000000000u) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
		;
}

struct opts {
	uint64_t ms, slots, first, scan, every, count, seq, min, resume, direct;
	uint64_t bs, secs, size, seed;
	const char *mode, *dev, *pattern;
};

static int run_write(struct ring *r, const struct opts *o)
{
	uint64_t last = 0, next;
	int rc;

	if (o->resume) {
		if ((rc = newest_record(r, &last)) < 0)
			return 1;
	} else {
		uint64_t found;

		if ((rc = newest_record(r, &found)) < 0)
			return 1;
		if (found) {
			fprintf(stderr, "diskrec: %s already holds a ring with records up to "
				"seq=%" PRIu64 "; zero its first %" PRIu64 " blocks from block "
				"%" PRIu64 " or pass resume=1\n", r->dev, found, r->slots, r->first);
			return 2;
		}
	}
	if ((rc = scan_ring(r, last)) < 0)
		return 1;
	if (r->violations)
		return 3;
	say("diskrec start dev=%s slots=%" PRIu64 " first=%" PRIu64 " ms=%" PRIu64
	    " scan=%" PRIu64 " last=%" PRIu64, r->dev, r->slots, r->first, o->ms, o->scan,
	    last);
	next = now_ns();
	for (uint64_t n = last + 1; o->count == 0 || n <= o->count; n++) {
		if (n > 1 && (rc = check_slot(r, slot_of(r, n - 1), last)) != 0)
			return rc < 0 ? 1 : 3;
		if ((rc = check_slot(r, slot_of(r, n), last)) != 0)
			return rc < 0 ? 1 : 3;
		make_record(r, n, r->want);
		if (write_slot(r, slot_of(r, n), r->want) < 0)
			return 1;
		last = n;
		if (o->scan && n % o->scan == 0) {
			if (scan_ring(r, last) < 0)
				return 1;
			if (r->violations)
				return 3;
		}
		if (n % o->every == 0)
			say("diskrec seq=%" PRIu64 " ok", n);
		if (o->ms) {
			/* Skip missed periods after a pause instead of bursting. */
			uint64_t t = now_ns();

			next += o->ms * 1000000u;
			if (next < t)
				next = t;
			sleep_until(next);
		}
	}
	say("diskrec done last=%" PRIu64, last);
	return 0;
}

static int run_verify(struct ring *r, const struct opts *o)
{
	uint64_t last = o->seq;

	if (last == 0 && newest_record(r, &last) < 0)
		return 1;
	if (o->seq == 0 && last < o->min) {
		say("DISKREC-VIOLATION record missing before the checkpoint seq=%" PRIu64
		    " slot=%" PRIu64 " found=%" PRIu64 " last=%" PRIu64, o->min,
		    slot_of(r, o->min), last, last);
		r->violations++;
	}
	if (scan_ring(r, last) < 0)
		return 1;
	if (r->violations) {
		say("diskrec verify last=%" PRIu64 " violations=%" PRIu64, last, r->violations);
		return 1;
	}
	say("diskrec verify last=%" PRIu64 " ok", last);
	return 0;
}

static int run_forge(struct ring *r, const struct opts *o, int erase)
{
	if (o->seq == 0) {
		fprintf(stderr, "diskrec: mode=%s needs seq=N (N >= 1)\n", o->mode);
		return 2;
	}
	if (erase)
		memset(r->want, 0, BLOCK);
	else
		make_record(r, o->seq, r->want);
	if (write_slot(r, slot_of(r, o->seq), r->want) < 0 || fsync(r->fd) < 0)
		return 1;
	say("diskrec %s seq=%" PRIu64 " slot=%" PRIu64, erase ? "erased" : "forged", o->seq,
	    slot_of(r, o->seq));
	return 0;
}

static int run_bench(struct ring *r, const struct opts *o, uint64_t dev_blocks)
{
	uint64_t region = o->size ? o->size * 1024 * 1024 / BLOCK : dev_blocks - r->first;
	uint64_t per = o->bs / BLOCK, units, ops = 0, x = mix64(o->seed) | 1, t0, end, t;
	unsigned char *b = NULL;
	int seq = strcmp(o->pattern, "seq") == 0, rc = 1;

	if (!seq && strcmp(o->pattern, "rand") != 0) {
		fprintf(stderr, "diskrec: pattern=%s is not seq or rand\n", o->pattern);
		return 2;
	}
	if (o->bs % BLOCK || o->bs == 0) {
		fprintf(stderr, "diskrec: bs=%" PRIu64 " is not a multiple of %u\n", o->bs, BLOCK);
		return 2;
	}
	if (region > dev_blocks - r->first || region < per) {
		fprintf(stderr, "diskrec: size=%" PRIu64 " MiB does not fit %s after block %"
			PRIu64 " with bs=%" PRIu64 "\n", o->size, r->dev, r->first, o->bs);
		return 2;
	}
	units = region / per;
	if (posix_memalign((void **)&b, BLOCK, o->bs) != 0) {
		fprintf(stderr, "diskrec: no memory for a %" PRIu64 "-byte buffer\n", o->bs);
		return 1;
	}
	/* Non-zero, changing content: nothing on the path may shortcut zeros
	 * or identical blocks. */
	for (uint64_t i = 0; i < o->bs / 8; i++)
		put_le64(b + 8 * i, mix64(o->seed * GOLDEN + i));
	t0 = now_ns();
	end = t0 + o->secs * 1000000000u;
	do {
		uint64_t u;

		if (seq) {
			u = ops % units;
		} else {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			u = x % units;
		}
		for (uint64_t i = 0; i < per; i++)
			put_le64(b + i * BLOCK, ops);
		off_t off = (off_t)((r->first + u * per) * BLOCK);
		ssize_t n = pwrite(r->fd, b, o->bs, off);
		if (n != (ssize_t)o->bs) {
			fprintf(stderr, "diskrec: bench write of %" PRIu64 " bytes at %lld on %s: %s\n",
				o->bs, (long long)off, r->dev, n < 0 ? strerror(errno) : "short write");
			goto out;
		}
		ops++;
		t = now_ns();
	} while (t < end);
	{
		double secs = (double)(t - t0) / 1e9;

		say("diskrec bench pattern=%s bs=%" PRIu64 " secs=%.2f ops=%" PRIu64
		    " MBps=%.2f iops=%.1f", o->pattern, o->bs, secs, ops,
		    (double)(ops * o->bs) / 1e6 / secs, (double)ops / secs);
	}
	rc = 0;
out:
	free(b);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o = { .ms = 20, .slots = 256, .scan = 50, .every = 50, .direct = 1,
			  .bs = 4096, .secs = 10, .seed = 1,
			  .mode = "write", .dev = "/dev/vda", .pattern = "seq" };
	struct guest_arg args[] = {
		{ "mode", GUEST_ARG_STR, "write, verify, forge, erase or bench (default write)",
		  0, 0, NULL, &o.mode, 0 },
		{ "dev", GUEST_ARG_STR, "block device or image file (default /dev/vda)",
		  0, 0, NULL, &o.dev, 0 },
		{ "ms", GUEST_ARG_U64, "write: milliseconds between records, 0 = back to back (default 20)",
		  0, 3600000, &o.ms, NULL, 0 },
		{ "slots", GUEST_ARG_U64, "ring size in 4 KiB blocks (default 256)",
		  2, 1u << 30, &o.slots, NULL, 0 },
		{ "first", GUEST_ARG_U64, "first block of the ring / bench region (default 0)",
		  0, 1ull << 40, &o.first, NULL, 0 },
		{ "scan", GUEST_ARG_U64, "write: records between full ring scans, 0 = none (default 50)",
		  0, UINT64_MAX, &o.scan, NULL, 0 },
		{ "every", GUEST_ARG_U64, "write: print a progress line every N records (default 50)",
		  1, UINT64_MAX, &o.every, NULL, 0 },
		{ "count", GUEST_ARG_U64, "write: exit 0 after record N, 0 = forever (default 0)",
		  0, UINT64_MAX, &o.count, NULL, 0 },
		{ "seq", GUEST_ARG_U64, "verify: expected newest record, 0 = newest found; forge/erase: the record",
		  0, UINT64_MAX, &o.seq, NULL, 0 },
		{ "min", GUEST_ARG_U64, "verify with seq=0: the newest record must be >= min (default 0)",
		  0, UINT64_MAX, &o.min, NULL, 0 },
		{ "resume", GUEST_ARG_U64, "write: 1 = continue after the newest record on disk (default 0)",
		  0, 1, &o.resume, NULL, 0 },
		{ "direct", GUEST_ARG_U64, "1 = O_DIRECT (default), 0 = buffered (host files only)",
		  0, 1, &o.direct, NULL, 0 },
		{ "pattern", GUEST_ARG_STR, "bench: seq or rand (default seq)",
		  0, 0, NULL, &o.pattern, 0 },
		{ "bs", GUEST_ARG_U64, "bench: bytes per write, a multiple of 4096 (default 4096)",
		  4096, 64u << 20, &o.bs, NULL, 0 },
		{ "secs", GUEST_ARG_U64, "bench: seconds to run (default 10)",
		  1, 86400, &o.secs, NULL, 0 },
		{ "size", GUEST_ARG_U64, "bench: MiB region, 0 = rest of the device (default 0)",
		  0, 1u << 30, &o.size, NULL, 0 },
		{ "seed", GUEST_ARG_U64, "bench: content and random offsets (default 1)",
		  0, UINT64_MAX, &o.seed, NULL, 0 },
	};
	struct ring r = { .fd = -1 };
	int nargs = (int)(sizeof(args) / sizeof(args[0]));
	uint64_t dev_bytes = 0, dev_blocks;
	struct stat st;
	int rc = 1, flags;

	if (guest_args_parse("diskrec", args, nargs, argc, argv) < 0)
		return 2;
	int bench = strcmp(o.mode, "bench") == 0;
	if (strcmp(o.mode, "write") && strcmp(o.mode, "verify") && strcmp(o.mode, "forge") &&
	    strcmp(o.mode, "erase") && !bench) {
		fprintf(stderr, "diskrec: mode=%s is not write, verify, forge, erase or bench\n",
			o.mode);
		return 2;
	}
	r.dev = o.dev;
	r.first = o.first;
	r.slots = o.slots;
	flags = (strcmp(o.mode, "verify") ? O_RDWR : O_RDONLY) | O_CLOEXEC |
		(o.direct ? O_DIRECT : 0);
	r.fd = open(o.dev, flags);
	if (r.fd < 0) {
		fprintf(stderr, "diskrec: cannot open %s%s: %s\n", o.dev,
			o.direct ? " with O_DIRECT (direct=0 for files on tmpfs)" : "",
			strerror(errno));
		goto out;
	}
	if (fstat(r.fd, &st) < 0) {
		fprintf(stderr, "diskrec: stat %s: %s\n", o.dev, strerror(errno));
		goto out;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(r.fd, BLKGETSIZE64, &dev_bytes) < 0) {
			fprintf(stderr, "diskrec: size of %s: %s\n", o.dev, strerror(errno));
			goto out;
		}
	} else {
		dev_bytes = (uint64_t)st.st_size;
	}
	dev_blocks = dev_bytes / BLOCK;
	if (r.first >= dev_blocks || (!bench && r.slots > dev_blocks - r.first)) {
		fprintf(stderr, "diskrec: %s has %" PRIu64 " blocks of 4 KiB: too small for "
			"first=%" PRIu64 " slots=%" PRIu64 "\n", o.dev, dev_blocks, r.first, r.slots);
		rc = 2;
		goto out;
	}
	if (posix_memalign((void **)&r.buf, BLOCK, BLOCK) != 0 ||
	    posix_memalign((void **)&r.want, BLOCK, BLOCK) != 0) {
		fprintf(stderr, "diskrec: out of memory\n");
		goto out;
	}
	if (strcmp(o.mode, "write") == 0)
		rc = run_write(&r, &o);
	else if (strcmp(o.mode, "verify") == 0)
		rc = run_verify(&r, &o);
	else if (bench)
		rc = run_bench(&r, &o, dev_blocks);
	else
		rc = run_forge(&r, &o, strcmp(o.mode, "erase") == 0);
out:
	free(r.buf);
	free(r.want);
	if (r.fd >= 0)
		close(r.fd);
	return rc;
}
