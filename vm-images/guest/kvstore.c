/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kvstore: the key-value service of the chaos suite (remus-chaos(1)).
 *
 *     remus.run=kvstore remus.args=port=7070
 *     remus.run=kvstore remus.args=port=7070,disk=/dev/vda    (disk-backed)
 *     remus.run=kvstore remus.modules=ext4
 *         remus.args=port=7070,disk=/dev/vda,fs=ext4        (the log in a file)
 *     kvstore mode=check disk=IMAGE                           (on the host)
 *
 * A client that trusts only what it saw must be able to tell whether an
 * acknowledged write survived a failover.  Each key holds a counter and a
 * list, and the two writes make every read checkable (remus-chaos-check):
 * increments give a counter whose value is bounded by the increments a
 * client saw acknowledged and those it attempted, appends of values unique
 * to the run give a list whose every element names the write that put it
 * there, in the order the store applied them.
 *
 * Protocol: TCP, one request line, one reply line (ASCII, '\n'):
 *
 *     inc KEY        ok N            N = the counter after the increment
 *     app KEY V      ok N            N = the list's length after the append
 *     get KEY        ok C N V1,V2,.. counter C, list of N values ("-": empty)
 *     anything else  err WHAT
 *
 * KEY is 1..15 of [A-Za-z0-9_-], V a decimal u64.  At most MAX_KEYS keys of
 * at most MAX_LIST values each; past that a write answers "err full" (it
 * did nothing, a definite failure).  Requests of one connection are
 * answered in order; connections are served from one poll loop.
 *
 * The disk-backed variant (disk=DEV) writes one 4 KiB record per write
 * into an append-only log at the start of DEV, O_DIRECT|O_DSYNC, before
 * it applies the write in memory and answers: an acknowledged write is on
 * the disk.  A record is
 *
 *     0   "KVREC001"   magic
 *     8   seq          u64 little-endian, 1, 2, ... (block seq - 1)
 *     16  op           u64: 1 inc, 2 app
 *     24  value        u64: the appended value (0 for inc)
 *     32  result       u64: the counter or list length after the write
 *     40  key          16 bytes, NUL-padded
 *     56  zeros        up to byte 4088
 *     4088 checksum    FNV-1a 64 over bytes 0..4087
 *
 * With fs=ext4 the log is the file kvstore.log at the root of the ext4
 * file system on DEV (made on the host with mkfs.ext4), mounted at
 * /mnt/kv: created the first time at three quarters of the free space
 * (fallocate, so the records' blocks are allocated before any is
 * acknowledged; file and directory fsync'd), then written the same way.
 * The host can then fsck the image after a run as well as check the log
 * (debugfs dump of /kvstore.log, then mode=check on that file).
 *
 * At start the log is replayed (recover=1, the default) so that a restarted
 * guest goes on from what its disk holds; a record that is neither valid
 * nor zero, or a valid one after a gap, is reported and stops the service.
 * mode=check reads a log (an image file on the host after a run), checks
 * every record (checksum, consecutive seq, result consistent with the
 * replay, nothing but zeros after the end) and prints one JSON line per key
 * {"key":K,"counter":C,"len":N} and a last line
 * "kvstore check records=N ok" (exit 0) or "KVSTORE-VIOLATION ..." (exit 1).
 *
 * Status on stdout: "kvstore start port=P disk=D records=N" once, then
 * "kvstore ops=N clients=M records=R" every second while there is traffic.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* accept4, O_DIRECT */
#endif
#include "guest-args.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define MAX_KEYS 256
#define MAX_LIST 4096
#define KEY_MAX 15
#define MAX_CLIENTS 64
#define LINE_MAX_IN 128
#define REC_SIZE 4096
#define REC_MAGIC "KVREC001"
#define OP_INC 1
#define OP_APP 2

struct kv_key {
	char name[KEY_MAX + 1];
	uint64_t counter;
	uint64_t *list;  /* owned; MAX_LIST entries once the key exists */
	uint64_t len;
};

struct kv_client {
	int fd;           /* owned; -1 when the slot is free */
	char in[LINE_MAX_IN];
	size_t in_len;
	char *out;        /* owned; pending reply bytes */
	size_t out_len, out_off, out_cap;
};

struct kv_store {
	struct kv_key keys[MAX_KEYS];
	int nkeys;
	int disk_fd;      /* owned; -1 without disk= */
	uint64_t records; /* records in the log */
	uint64_t disk_blocks;
	void *block;      /* owned; one aligned record buffer */
	uint64_t ops;
};

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
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
		v = (v << 8) | p[i];
	return v;
}

static int key_valid(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n > KEY_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = k[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* Returns the key, created if @create and there is room, or NULL. */
static struct kv_key *key_find(struct kv_store *s, const char *name, int create)
{
	for (int i = 0; i < s->nkeys; i++)
		if (strcmp(s->keys[i].name, name) == 0)
			return &s->keys[i];
	if (!create || s->nkeys == MAX_KEYS)
		return NULL;
	struct kv_key *k = &s->keys[s->nkeys];
	k->list = calloc(MAX_LIST, sizeof(uint64_t));
	if (k->list == NULL)
		return NULL;
	snprintf(k->name, sizeof(k->name), "%s", name);
	s->nkeys++;
	return k;
}

/* Applies a write in memory; returns the result (counter or length). */
static uint64_t apply(struct kv_key *k, int op, uint64_t value)
{
	if (op == OP_INC)
		return ++k->counter;
	k->list[k->len++] = value;
	return k->len;
}

/* The record of write @seq into s->block. */
static void record_build(struct kv_store *s, uint64_t seq, int op, const char *key,
			 uint64_t value, uint64_t result)
{
	unsigned char *b = s->block;

	memset(b, 0, REC_SIZE);
	memcpy(b, REC_MAGIC, 8);
	put_le64(b + 8, seq);
	put_le64(b + 16, (uint64_t)op);
	put_le64(b + 24, value);
	put_le64(b + 32, result);
	memcpy(b + 40, key, strlen(key));
	put_le64(b + REC_SIZE - 8, fnv1a(b, REC_SIZE - 8));
}

/* 1 for a valid record, 0 for an all-zero block, -1 for anything else. */
static int record_parse(const unsigned char *b, uint64_t *seq, int *op, char *key,
			uint64_t *value, uint64_t *result)
{
	int zero = 1;

	for (size_t i = 0; i < REC_SIZE && zero; i++)
		zero = b[i] == 0;
	if (zero)
		return 0;
	if (memcmp(b, REC_MAGIC, 8) != 0 || get_le64(b + REC_SIZE - 8) != fnv1a(b, REC_SIZE - 8))
		return -1;
	*seq = get_le64(b + 8);
	*op = (int)get_le64(b + 16);
	*value = get_le64(b + 24);
	*result = get_le64(b + 32);
	memcpy(key, b + 40, 16);
	if (key[15] != '\0' || !key_valid(key) || (*op != OP_INC && *op != OP_APP))
		return -1;
	for (size_t i = 56; i < REC_SIZE - 8; i++)
		if (b[i] != 0)
			return -1;
	return 1;
}

/*
 * Replays the log into @s.  Returns 0, or -EIO after printing
 * KVSTORE-VIOLATION for a record that is corrupt, out of sequence,
 * inconsistent with the replay, or followed by anything but zeros.
 */
static int replay(struct kv_store *s)
{
	uint64_t blk, end = 0;
	int ended = 0;

	for (blk = 0; blk < s->disk_blocks; blk++) {
		uint64_t seq = 0, value = 0, result = 0;
		int op = 0, r;
		char key[16];

		if (pread(s->disk_fd, s->block, REC_SIZE, (off_t)(blk * REC_SIZE)) != REC_SIZE) {
			printf("KVSTORE-VIOLATION cannot read block %" PRIu64 ": %s\n", blk,
			       strerror(errno));
			return -EIO;
		}
		r = record_parse(s->block, &seq, &op, key, &value, &result);
		if (r == 0) {
			if (!ended)
				end = blk;
			ended = 1;
			/* Only the first few blocks past the end are read: a
			 * log is written in order, so garbage just past the
			 * end is what a torn or forged write leaves. */
			if (blk >= end + 64)
				break;
			continue;
		}
		if (r < 0 || ended) {
			printf("KVSTORE-VIOLATION record %s at block %" PRIu64 " (log end %" PRIu64 ")\n",
			       r < 0 ? "corrupt" : "after the end of the log", blk,
			       ended ? end : blk);
			return -EIO;
		}
		if (seq != blk + 1) {
			printf("KVSTORE-VIOLATION record seq=%" PRIu64 " at block %" PRIu64
			       " (expected seq=%" PRIu64 ")\n", seq, blk, blk + 1);
			return -EIO;
		}
		struct kv_key *k = key_find(s, key, 1);
		if (k == NULL || (op == OP_APP && k->len == MAX_LIST)) {
			printf("KVSTORE-VIOLATION record seq=%" PRIu64 " does not fit the store\n", seq);
			return -EIO;
		}
		uint64_t got = apply(k, op, value);
		if (got != result) {
			printf("KVSTORE-VIOLATION record seq=%" PRIu64 " key=%s says result=%" PRIu64
			       ", replay gives %" PRIu64 "\n", seq, key, result, got);
			return -EIO;
		}
		s->records = seq;
	}
	return 0;
}

/* Appends the record of one write and waits for the disk.  Returns 0 or -errno. */
static int log_write(struct kv_store *s, int op, const char *key, uint64_t value,
		     uint64_t result)
{
	uint64_t seq = s->records + 1;

	if (seq > s->disk_blocks)
		return -ENOSPC;
	record_build(s, seq, op, key, value, result);
	if (pwrite(s->disk_fd, s->block, REC_SIZE, (off_t)((seq - 1) * REC_SIZE)) != REC_SIZE)
		return errno ? -errno : -EIO;
	if (fdatasync(s->disk_fd) < 0)
		return -errno;
	s->records = seq;
	return 0;
}

/* Appends @text to the client's pending output.  Returns 0 or -ENOMEM. */
static int reply(struct kv_client *c, const char *text, size_t n)
{
	if (c->out_len + n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 256;
		while (cap < c->out_len + n)
			cap *= 2;
		char *p = realloc(c->out, cap);
		if (p == NULL)
			return -ENOMEM;
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, text, n);
	c->out_len += n;
	return 0;
}

static int replyf(struct kv_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int replyf(struct kv_client *c, const char *fmt, ...)
{
	char line[160];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -EINVAL;
	return reply(c, line, (size_t)n);
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end = NULL;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

/* One request line (NUL-terminated, no '\n').  Returns 0 or -ENOMEM. */
static int handle(struct kv_store *s, struct kv_client *c, char *line)
{
	char *save = NULL;
	char *cmd = strtok_r(line, " ", &save);
	char *key = strtok_r(NULL, " ", &save);
	char *arg = strtok_r(NULL, " ", &save);
	char *extra = strtok_r(NULL, " ", &save);
	uint64_t value = 0;
	int op;

	if (cmd == NULL)
		return replyf(c, "err empty request\n");
	if (key == NULL || !key_valid(key) || extra != NULL)
		return replyf(c, "err usage: inc KEY | app KEY VALUE | get KEY\n");
	if (strcmp(cmd, "get") == 0 && arg == NULL) {
		struct kv_key *k = key_find(s, key, 0);
		char num[24];
		int rc;

		s->ops++;
		if (k == NULL)
			return replyf(c, "ok 0 0 -\n");
		rc = replyf(c, "ok %" PRIu64 " %" PRIu64 " ", k->counter, k->len);
		for (uint64_t i = 0; rc == 0 && i < k->len; i++) {
			int n = snprintf(num, sizeof(num), "%s%" PRIu64, i ? "," : "", k->list[i]);
			rc = reply(c, num, (size_t)n);
		}
		return rc ? rc : reply(c, k->len ? "\n" : "-\n", k->len ? 1 : 2);
	}
	if (strcmp(cmd, "inc") == 0 && arg == NULL) {
		op = OP_INC;
	} else if (strcmp(cmd, "app") == 0 && arg != NULL && parse_u64(arg, &value) == 0) {
		op = OP_APP;
	} else {
		return replyf(c, "err usage: inc KEY | app KEY VALUE | get KEY\n");
	}
	struct kv_key *k = key_find(s, key, 1);
	if (k == NULL || (op == OP_APP && k->len == MAX_LIST))
		return replyf(c, "err full\n");
	uint64_t result = op == OP_INC ? k->counter + 1 : k->len + 1;
	if (s->disk_fd >= 0) {
		int rc = log_write(s, op, key, value, result);
		if (rc < 0)
			return replyf(c, "err disk: %s\n", strerror(-rc));
	}
	apply(k, op, value);
	s->ops++;
	return replyf(c, "ok %" PRIu64 "\n", result);
}

static void client_close(struct kv_client *c)
{
	close(c->fd);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Reads what the client sent and answers every complete line. */
static void client_read(struct kv_store *s, struct kv_client *c)
{
	for (;;) {
		ssize_t r = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
		char *nl;

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			client_close(c);
			return;
		}
		if (r < 0)
			return;
		c->in_len += (size_t)r;
		while ((nl = memchr(c->in, '\n', c->in_len)) != NULL) {
			size_t n = (size_t)(nl - c->in);
			*nl = '\0';
			if (n > 0 && c->in[n - 1] == '\r')
				c->in[n - 1] = '\0';
			if (handle(s, c, c->in) < 0) {
				client_close(c);
				return;
			}
			memmove(c->in, nl + 1, c->in_len - n - 1);
			c->in_len -= n + 1;
		}
		if (c->in_len == sizeof(c->in)) {
			/* A line longer than any request: not a client of ours. */
			client_close(c);
			return;
		}
	}
}

static void client_write(struct kv_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t r = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0) {
			if (errno != EAGAIN && errno != EINTR)
				client_close(c);
			return;
		}
		c->out_off += (size_t)r;
	}
	c->out_off = c->out_len = 0;
}

static int open_disk(struct kv_store *s, const char *path, int direct)
{
	struct stat st;
	int flags = O_RDWR | O_CLOEXEC | (direct ? O_DIRECT | O_DSYNC : 0);

	s->disk_fd = open(path, flags);
	if (s->disk_fd < 0) {
		fprintf(stderr, "kvstore: cannot open disk=%s: %s\n", path, strerror(errno));
		return -errno;
	}
	off_t size = lseek(s->disk_fd, 0, SEEK_END);
	if (fstat(s->disk_fd, &st) < 0 || size < REC_SIZE) {
		fprintf(stderr, "kvstore: disk=%s is smaller than one record\n", path);
		return -EINVAL;
	}
	s->disk_blocks = (uint64_t)size / REC_SIZE;
	return 0;
}

#define FS_DIR "/mnt/kv"
#define FS_LOG FS_DIR "/kvstore.log"

/* fs=ext4: DEV mounted at FS_DIR and the log file made there once
 * (allocated whole and made durable before the first record, so a
 * record's O_DSYNC write never needs a new extent); *@path becomes the
 * file's.  0 or -errno, said on stderr. */
static int mount_log(const char *dev, const char **path)
{
	struct statvfs vf;
	int fd = -1, dfd = -1, rc = 0;
	off_t size;

	if ((mkdir("/mnt", 0755) < 0 && errno != EEXIST) ||
	    (mkdir(FS_DIR, 0755) < 0 && errno != EEXIST) ||
	    mount(dev, FS_DIR, "ext4", 0, NULL) < 0) {
		rc = -errno;
		fprintf(stderr, "kvstore: cannot mount %s (ext4) on %s: %s (mkfs.ext4 it on "
			"the host, and boot with remus.modules=ext4)\n", dev, FS_DIR,
			strerror(errno));
		return rc;
	}
	*path = FS_LOG;
	if (access(FS_LOG, F_OK) == 0)
		return 0;
	if (statvfs(FS_DIR, &vf) < 0) {
		rc = -errno;
		goto out;
	}
	size = (off_t)((uint64_t)vf.f_bavail * vf.f_frsize / 4 * 3 / REC_SIZE * REC_SIZE);
	if (size < REC_SIZE) {
		rc = -ENOSPC;
		goto out;
	}
	fd = open(FS_LOG ".new", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || fallocate(fd, 0, 0, size) < 0 || fsync(fd) < 0 ||
	    rename(FS_LOG ".new", FS_LOG) < 0) {
		rc = -errno;
		goto out;
	}
	/* The rename durable too: a failover right after must find the file. */
	dfd = open(FS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0)
		rc = -errno;
out:
	if (rc < 0)
		fprintf(stderr, "kvstore: cannot make the log %s on %s: %s\n", FS_LOG, dev,
			strerror(-rc));
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

static int serve(struct kv_store *s, uint64_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_ANY) };
	struct kv_client clients[MAX_CLIENTS];
	struct pollfd pfd[MAX_CLIENTS + 1];
	int one = 1, lfd;
	time_t last_log = time(NULL);
	uint64_t logged_ops = 0;

	for (int i = 0; i < MAX_CLIENTS; i++) {
		memset(&clients[i], 0, sizeof(clients[i]));
		clients[i].fd = -1;
	}
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 64) < 0) {
		fprintf(stderr, "kvstore: cannot listen on TCP port %" PRIu64 ": %s\n", port,
			strerror(errno));
		return 1;
	}
	printf("kvstore start port=%" PRIu64 " disk=%s records=%" PRIu64 "\n", port,
	       s->disk_fd >= 0 ? "yes" : "no", s->records);
	fflush(stdout);
	for (;;) {
		int n = 0, nclients = 0;

		pfd[n++] = (struct pollfd){ lfd, POLLIN, 0 };
		for (int i = 0; i < MAX_CLIENTS; i++) {
			struct kv_client *c = &clients[i];
			pfd[n++] = (struct pollfd){ c->fd,
						    (short)(c->out_len ? POLLIN | POLLOUT : POLLIN), 0 };
			nclients += c->fd >= 0;
		}
		if (poll(pfd, (nfds_t)n, 1000) < 0 && errno != EINTR) {
			perror("kvstore: poll");
			return 1;
		}
		if (pfd[0].revents & POLLIN) {
			for (;;) {
				int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				int i;

				if (fd < 0)
					break;
				for (i = 0; i < MAX_CLIENTS && clients[i].fd >= 0; i++)
					;
				if (i == MAX_CLIENTS) {
					close(fd);
					continue;
				}
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				clients[i].fd = fd;
			}
		}
		for (int i = 0; i < MAX_CLIENTS; i++) {
			struct kv_client *c = &clients[i];
			short ev = pfd[i + 1].revents;

			if (c->fd < 0 || pfd[i + 1].fd != c->fd || ev == 0)
				continue;
			if (ev & (POLLIN | POLLERR | POLLHUP))
				client_read(s, c);
			if (c->fd >= 0 && c->out_len)
				client_write(c);
		}
		time_t now = time(NULL);
		if (now != last_log && s->ops != logged_ops) {
			printf("kvstore ops=%" PRIu64 " clients=%d records=%" PRIu64 "\n", s->ops,
			       nclients, s->records);
			fflush(stdout);
			last_log = now;
			logged_ops = s->ops;
		}
	}
}

int main(int argc, char **argv)
{
	uint64_t port = 7070, recover = 1, direct = 1;
	const char *disk = NULL, *mode = "serve", *fs = "none";
	struct guest_arg args[] = {
		{ "port", GUEST_ARG_U64, "TCP port to serve (default 7070)", 1, 65535, &port,
		  NULL, 0 },
		{ "disk", GUEST_ARG_STR, "block device or image of the write log "
		  "(default: none, in memory only)", 0, 0, NULL, &disk, 0 },
		{ "recover", GUEST_ARG_U64, "1 = replay the log at start (default 1)", 0, 1,
		  &recover, NULL, 0 },
		{ "direct", GUEST_ARG_U64, "1 = O_DIRECT|O_DSYNC on disk= (default 1)", 0, 1,
		  &direct, NULL, 0 },
		{ "mode", GUEST_ARG_STR, "serve (default) or check (the log on disk=)", 0, 0,
		  NULL, &mode, 0 },
		{ "fs", GUEST_ARG_STR, "none (default: the log on disk= itself) or ext4 (the "
		  "file kvstore.log of the ext4 on disk=)", 0, 0, NULL, &fs, 0 },
	};
	struct kv_store *s = calloc(1, sizeof(*s));
	int rc = 1;

	if (s == NULL)
		return 1;
	s->disk_fd = -1;
	if (guest_args_parse("kvstore", args, (int)(sizeof(args) / sizeof(args[0])), argc,
			     argv) < 0) {
		rc = 2;
		goto out;
	}
	if (strcmp(mode, "serve") != 0 && strcmp(mode, "check") != 0) {
		fprintf(stderr, "kvstore: mode=%s: serve or check\n", mode);
		rc = 2;
		goto out;
	}
	if (strcmp(fs, "none") != 0 && (strcmp(fs, "ext4") != 0 || disk == NULL ||
					 strcmp(mode, "serve") != 0)) {
		fprintf(stderr, "kvstore: fs=%s: none, or ext4 with disk=DEV to serve\n", fs);
		rc = 2;
		goto out;
	}
	if (posix_memalign(&s->block, REC_SIZE, REC_SIZE) != 0)
		goto out;
	if (strcmp(fs, "ext4") == 0 && mount_log(disk, &disk) < 0)
		goto out;
	if (disk != NULL && open_disk(s, disk, strcmp(mode, "serve") == 0 && direct) < 0)
		goto out;
	if (strcmp(mode, "check") == 0) {
		if (disk == NULL) {
			fprintf(stderr, "kvstore: mode=check needs disk=IMAGE\n");
			rc = 2;
			goto out;
		}
		if (replay(s) < 0)
			goto out;
		for (int i = 0; i < s->nkeys; i++)
			printf("{\"key\":\"%s\",\"counter\":%" PRIu64 ",\"len\":%" PRIu64 "}\n",
			       s->keys[i].name, s->keys[i].counter, s->keys[i].len);
		printf("kvstore check records=%" PRIu64 " ok\n", s->records);
		rc = 0;
		goto out;
	}
	if (disk != NULL && recover && replay(s) < 0)
		goto out;
	rc = serve(s, port);
out:
	if (s->disk_fd >= 0)
		close(s->disk_fd);
	for (int i = 0; i < s->nkeys; i++)
		free(s->keys[i].list);
	free(s->block);
	free(s);
	return rc;
}
