// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * nbcheck: the client side of the netbuffer tests and bench/netbuffer.
 *
 *   nbcheck record --udp-port PORT [--tcp A.B.C.D:PORT] [--poll-ms 100]
 *                  [--tcp-timeout-ms 5000] --out FILE
 *   nbcheck check  --log FILE --split UNIX_US [--protected-from UNIX_US]
 *                  [--max-loss N]
 *   nbcheck ping   --to A.B.C.D [--count 20] [--interval-ms 200] [--wait-ms 5000]
 *   nbcheck tcprtt --tcp A.B.C.D:PORT [--count 20] [--interval-ms 200]
 *                  [--timeout-ms 5000]
 *   nbcheck bulk   --tcp A.B.C.D:PORT [--seconds 5]
 *
 * record receives the guest counter's UDP datagrams ("counter N\n",
 * vm-images/guest/counter.c) on a socket with a large receive buffer and,
 * one connection at a time, reads the counter's TCP port every --poll-ms
 * (a reply held by the netbuffer makes one poll last up to two epochs; a
 * new poll starts --poll-ms after the previous one ended).  Every value
 * goes to FILE with the kernel's receive timestamp (SO_TIMESTAMPNS, wall
 * clock, so the test script can place its own events on the same axis):
 *
 *     udp VALUE UNIX_US
 *     tcp VALUE UNIX_US CONNECT_MS TOTAL_MS
 *     tcperr UNIX_US REASON
 *     udpbad UNIX_US                      (a datagram that is no counter line)
 *
 * It stops on SIGTERM or SIGINT.  The kernel timestamp matters: a
 * datagram the primary released just before it was killed keeps the time
 * it reached the client's socket even if this process runs late.
 *
 * check reads such a log and tests the output-commit invariant around a
 * failover at --split (the wall-clock time the script killed the
 * primary, in microseconds): the client never sees the counter go back.
 *   - UDP values (one per increment) strictly increase in receive order;
 *     a value at or below an earlier one is a violation.
 *   - TCP values (the current value at accept) never decrease.
 *   - Across the split: every UDP value after it is above every value (UDP
 *     or TCP) before it, every TCP value after it at least as high.  The
 *     guest the standby resumes holds the last committed checkpoint; with
 *     output commit nothing the client saw came from later than that.
 * Continuity: UDP values after the first post-split value must be
 * consecutive (gaps are datagrams lost; at most --max-loss, default 0).
 * The values skipped at the split ("boundary_skip": the uncommitted
 * epoch's output, never released) are reported, not judged.
 * --protected-from (when protection began) additionally requires UDP
 * values received between it and the split: output did flow while held.
 * Prints one JSON line and exits 0 (pass), 1 (output-commit violation),
 * 2 (cannot judge: no value before or after the split, or no TCP value
 * on a side when TCP was polled), 4 (more loss than --max-loss) or
 * 3 (usage or I/O error).
 *
 * ping, tcprtt and bulk are bench/netbuffer's probes: ICMP echo round trips
 * (raw socket, needs root), TCP connect + read of one counter line, and
 * bytes read per second from the counter's bulk= port.  Each prints one
 * JSON line with every sample so the caller computes its own statistics.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* signalfd, SO_RCVBUFFORCE */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_PASS = 0, EXIT_VIOLATION = 1, EXIT_NODATA = 2, EXIT_USAGE = 3, EXIT_LOSS = 4 };

#define UDP_RCVBUF (8 * 1024 * 1024)
#define MAX_SAMPLES 100000

/* ---- small helpers --------------------------------------------------- */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v > max) {
		fprintf(stderr, "nbcheck: %s: '%s' is not a number in 0..%" PRIu64 "\n",
			opt, s, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* "A.B.C.D:PORT" (port required) or "A.B.C.D" with @port_required false. */
static int parse_addr(const char *opt, const char *s, bool port_required,
		      struct sockaddr_in *out)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strrchr(s, ':');
	size_t hl = colon ? (size_t)(colon - s) : strlen(s);
	uint64_t port = 0;

	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	if (hl >= sizeof(host) || (port_required && !colon))
		goto bad;
	memcpy(host, s, hl);
	host[hl] = 0;
	if (inet_pton(AF_INET, host, &out->sin_addr) != 1)
		goto bad;
	if (colon) {
		if (parse_u64(opt, colon + 1, 65535, &port) < 0 || port == 0)
			goto bad;
		out->sin_port = htons((uint16_t)port);
	}
	return 0;
bad:
	fprintf(stderr, "nbcheck: %s: expected A.B.C.D%s, got '%s'\n", opt,
		port_required ? ":PORT" : "", s);
	return -EINVAL;
}

/* "counter N\n" -> N.  Returns 0 or -EINVAL. */
static int parse_counter_line(const char *p, size_t n, uint64_t *v)
{
	char line[48], *end;

	if (n < 9 || n >= sizeof(line) || memcmp(p, "counter ", 8) != 0)
		return -EINVAL;
	memcpy(line, p, n);
	line[n] = 0;
	if (line[n - 1] == '\n')
		line[n - 1] = 0;
	if (line[8] < '0' || line[8] > '9')
		return -EINVAL;
	errno = 0;
	*v = strtoull(line + 8, &end, 10);
	return errno || *end ? -EINVAL : 0;
}

/* Kernel receive time of the message whose control data is @m, in wall
 * clock microseconds; the current time if the kernel gave none. */
static uint64_t rx_time_us(struct msghdr *m)
{
	struct cmsghdr *c;

	for (c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
			struct timespec ts;

			memcpy(&ts, CMSG_DATA(c), sizeof(ts));
			return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
		}
	}
	return wall_us();
}

/* recvmsg() with a timestamp.  Returns bytes, 0 at EOF, or -errno. */
static ssize_t recv_stamped(int fd, char *buf, size_t len, uint64_t *ts_us)
{
	union {
		char b[CMSG_SPACE(sizeof(struct timespec)) * 2];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
	ssize_t r = recvmsg(fd, &m, MSG_DONTWAIT);

	if (r < 0)
		return -errno;
	*ts_us = rx_time_us(&m);
	return r;
}

static int enable_timestamps(int fd)
{
	int one = 1;

	return setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) < 0 ? -errno : 0;
}

/* A non-blocking TCP socket connecting to @to.  Returns the fd (owned by
 * the caller) or -errno. */
static int tcp_connect_start(const struct sockaddr_in *to)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int rc;

	if (fd < 0)
		return -errno;
	if ((rc = enable_timestamps(fd)) < 0)
		goto err;
	if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) < 0 && errno != EINPROGRESS) {
		rc = -errno;
		goto err;
	}
	return fd;
err:
	close(fd);
	return rc;
}

/* A signalfd for SIGTERM and SIGINT (blocked), or -errno. */
static int stop_signals(void)
{
	sigset_t mask;
	int fd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

/* ---- record ---------------------------------------------------------- */

enum poll_state { POLL_IDLE, POLL_CONNECTING, POLL_READING };

struct recorder {
	FILE *out;                 /* owned */
	int udp_fd;                /* owned */
	int tcp_fd;                /* owned; -1 between polls */
	bool tcp_enabled;
	struct sockaddr_in tcp_to;
	enum poll_state st;
	uint64_t poll_ns, timeout_ns;
	uint64_t next_poll;        /* monotonic ns: when to start the next poll */
	uint64_t started, connected;
	char line[64];             /* the reply being read */
	size_t len;
	uint64_t last_ts;          /* receive time of the reply's last bytes */
};

static void poll_end(struct recorder *r, const char *err)
{
	uint64_t now = mono_ns(), v;

	if (!err && parse_counter_line(r->line, r->len, &v) == 0) {
		fprintf(r->out, "tcp %" PRIu64 " %" PRIu64 " %.3f %.3f\n", v, r->last_ts,
			(double)(r->connected - r->started) / 1e6,
			(double)(now - r->started) / 1e6);
	} else {
		fprintf(r->out, "tcperr %" PRIu64 " %s\n", wall_us(),
			err ? err : "reply is not one counter line");
	}
	if (r->tcp_fd >= 0)
		close(r->tcp_fd);
	r->tcp_fd = -1;
	r->st = POLL_IDLE;
	r->len = 0;
	r->next_poll = now + r->poll_ns;
}

static void poll_start(struct recorder *r)
{
	int fd = tcp_connect_start(&r->tcp_to);

	r->started = mono_ns();
	if (fd < 0) {
		r->tcp_fd = -1;
		poll_end(r, strerror(-fd));
		return;
	}
	r->tcp_fd = fd;
	r->st = POLL_CONNECTING;
}

static void poll_io(struct recorder *r, short revents)
{
	char buf[256];
	int err = 0;
	socklen_t el = sizeof(err);
	ssize_t n;
	uint64_t ts;

	if (r->st == POLL_CONNECTING) {
		if (getsockopt(r->tcp_fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err) {
			poll_end(r, strerror(err));
			return;
		}
		if (!(revents & POLLOUT))
			return;
		r->connected = mono_ns();
		r->st = POLL_READING;
		return;
	}
	for (;;) {
		n = recv_stamped(r->tcp_fd, buf, sizeof(buf), &ts);
		if (n == -EAGAIN || n == -EWOULDBLOCK)
			return;
		if (n < 0) {
			poll_end(r, strerror((int)-n));
			return;
		}
		if (n == 0) {
			poll_end(r, NULL);
			return;
		}
		if (r->len + (size_t)n >= sizeof(r->line)) {
			poll_end(r, "reply longer than one counter line");
			return;
		}
		memcpy(r->line + r->len, buf, (size_t)n);
		r->len += (size_t)n;
		r->last_ts = ts;
	}
}

static void drain_udp(struct recorder *r)
{
	char buf[128];
	uint64_t ts, v;
	ssize_t n;

	while ((n = recv_stamped(r->udp_fd, buf, sizeof(buf), &ts)) >= 0) {
		if (parse_counter_line(buf, (size_t)n, &v) == 0)
			fprintf(r->out, "udp %" PRIu64 " %" PRIu64 "\n", v, ts);
		else
			fprintf(r->out, "udpbad %" PRIu64 "\n", ts);
	}
}

static int cmd_record(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "udp-port", required_argument, NULL, 'u' },
		{ "tcp", required_argument, NULL, 't' },
		{ "poll-ms", required_argument, NULL, 'p' },
		{ "tcp-timeout-ms", required_argument, NULL, 'T' },
		{ "out", required_argument, NULL, 'o' },
		{ 0 },
	};
	struct recorder r = { .udp_fd = -1, .tcp_fd = -1 };
	struct sockaddr_in udp_at = { .sin_family = AF_INET };
	uint64_t port = 0, poll_ms = 100, timeout_ms = 5000;
	const char *out = NULL;
	int c, sfd = -1, size = UDP_RCVBUF, rc = EXIT_USAGE;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u': if (parse_u64("--udp-port", optarg, 65535, &port) < 0) return EXIT_USAGE; break;
		case 't':
			if (parse_addr("--tcp", optarg, true, &r.tcp_to) < 0)
				return EXIT_USAGE;
			r.tcp_enabled = true;
			break;
		case 'p': if (parse_u64("--poll-ms", optarg, 60000, &poll_ms) < 0) return EXIT_USAGE; break;
		case 'T': if (parse_u64("--tcp-timeout-ms", optarg, 600000, &timeout_ms) < 0) return EXIT_USAGE; break;
		case 'o': out = optarg; break;
		default: return EXIT_USAGE;
		}
	}
	if (port == 0 || !out) {
		fprintf(stderr, "nbcheck record: --udp-port PORT and --out FILE are required\n");
		return EXIT_USAGE;
	}
	r.poll_ns = poll_ms * 1000000u;
	r.timeout_ns = timeout_ms * 1000000u;
	r.out = fopen(out, "w");
	if (!r.out) {
		fprintf(stderr, "nbcheck record: cannot create %s: %s\n", out, strerror(errno));
		goto out;
	}
	/* Line-buffered: the test reads the log while the recorder runs. */
	setvbuf(r.out, NULL, _IOLBF, 0);
	r.udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	udp_at.sin_port = htons((uint16_t)port);
	if (r.udp_fd < 0 || enable_timestamps(r.udp_fd) < 0 ||
	    bind(r.udp_fd, (struct sockaddr *)&udp_at, sizeof(udp_at)) < 0) {
		fprintf(stderr, "nbcheck record: cannot receive on UDP port %" PRIu64 ": %s\n",
			port, strerror(errno));
		goto out;
	}
	/* A released epoch arrives as one burst; root may exceed rmem_max. */
	if (setsockopt(r.udp_fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(r.udp_fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	sfd = stop_signals();
	if (sfd < 0) {
		fprintf(stderr, "nbcheck record: signalfd: %s\n", strerror(-sfd));
		goto out;
	}
	fprintf(r.out, "start %" PRIu64 "\n", wall_us());
	r.next_poll = mono_ns();
	for (;;) {
		struct pollfd p[3] = { { r.udp_fd, POLLIN, 0 }, { sfd, POLLIN, 0 },
				       { r.tcp_fd, r.st == POLL_CONNECTING ? POLLOUT : POLLIN, 0 } };
		uint64_t now = mono_ns();
		int wait_ms = 1000;

		if (r.tcp_enabled && r.st == POLL_IDLE) {
			if (now >= r.next_poll) {
				poll_start(&r);
				continue;
			}
			wait_ms = (int)((r.next_poll - now) / 1000000u) + 1;
		} else if (r.tcp_enabled) {
			if (now - r.started >= r.timeout_ns) {
				poll_end(&r, "timed out");
				continue;
			}
			wait_ms = (int)((r.started + r.timeout_ns - now) / 1000000u) + 1;
		}
		p[2].fd = r.tcp_fd;
		if (poll(p, 3, wait_ms) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "nbcheck record: poll: %s\n", strerror(errno));
			goto out;
		}
		if (p[0].revents)
			drain_udp(&r);
		if (p[2].fd >= 0 && p[2].revents)
			poll_io(&r, p[2].revents);
		if (p[1].revents)
			break;
	}
	drain_udp(&r);
	fprintf(r.out, "stop %" PRIu64 "\n", wall_us());
	rc = EXIT_PASS;
out:
	if (sfd >= 0)
		close(sfd);
	if (r.tcp_fd >= 0)
		close(r.tcp_fd);
	if (r.udp_fd >= 0)
		close(r.udp_fd);
	if (r.out && fclose(r.out) != 0 && rc == EXIT_PASS) {
		fprintf(stderr, "nbcheck record: writing %s: %s\n", out, strerror(errno));
		rc = EXIT_USAGE;
	}
	return rc;
}

/* ---- check ----------------------------------------------------------- */

struct record {
	bool udp;       /* else tcp */
	uint64_t value;
	uint64_t ts;    /* wall clock us at the client's socket */
};

struct side {
	uint64_t udp, tcp;         /* values seen */
	uint64_t udp_max, tcp_max; /* valid when the count is > 0 */
	uint64_t gaps, lost;       /* UDP: places a value was skipped, values skipped */
};

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Reads the record lines of @path into *@out (owned by the caller, free()).
 * Returns the count, or -errno after printing why. */
static ssize_t read_log(const char *path, struct record **out, uint64_t *tcperr,
			uint64_t *udpbad)
{
	struct record *rec = NULL;
	size_t n = 0, cap = 0;
	char line[256];
	unsigned long lineno = 0;
	FILE *f = fopen(path, "r");
	ssize_t rc;

	if (!f) {
		rc = -errno;
		fprintf(stderr, "nbcheck check: cannot read %s: %s\n", path, strerror(errno));
		return rc;
	}
	while (fgets(line, sizeof(line), f)) {
		char kind[16];
		uint64_t v = 0, ts = 0;
		int k = sscanf(line, "%15s %" SCNu64 " %" SCNu64, kind, &v, &ts);

		lineno++;
		if (k >= 1 && strcmp(kind, "tcperr") == 0) {
			(*tcperr)++;
			continue;
		}
		if (k >= 1 && strcmp(kind, "udpbad") == 0) {
			(*udpbad)++;
			continue;
		}
		if (k >= 1 && (strcmp(kind, "start") == 0 || strcmp(kind, "stop") == 0))
			continue;
		if (k != 3 || (strcmp(kind, "udp") && strcmp(kind, "tcp"))) {
			fprintf(stderr, "nbcheck check: %s:%lu: not a record line: %s", path,
				lineno, line);
			rc = -EINVAL;
			goto err;
		}
		if (n == cap) {
			struct record *p = realloc(rec, (cap = cap ? 2 * cap : 1024) * sizeof(*rec));

			if (!p) {
				rc = -ENOMEM;
				goto err;
			}
			rec = p;
		}
		rec[n++] = (struct record){ kind[0] == 'u', v, ts };
	}
	if (ferror(f)) {
		rc = -EIO;
		fprintf(stderr, "nbcheck check: reading %s failed\n", path);
		goto err;
	}
	fclose(f);
	*out = rec;
	return (ssize_t)n;
err:
	fclose(f);
	free(rec);
	return rc;
}

static int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "split", required_argument, NULL, 's' },
		{ "max-loss", required_argument, NULL, 'm' },
		{ "protected-from", required_argument, NULL, 'p' },
		{ 0 },
	};
	uint64_t protected_from = 0, udp_protected = 0, tcp_protected = 0;
	struct side before = { 0 }, after = { 0 };
	uint64_t split = 0, max_loss = 0, tcperr = 0, udpbad = 0, violations = 0;
	uint64_t first_after = 0, tcp_first_after = 0, max_before, prev_udp = 0, prev_tcp = 0;
	bool have_split = false, have_udp = false, have_tcp = false;
	bool have_first = false, have_tcp_first = false;
	char first_violation[200] = "";
	const char *path = NULL, *verdict;
	struct record *rec = NULL;
	ssize_t n;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l': path = optarg; break;
		case 's':
			if (parse_u64("--split", optarg, UINT64_MAX, &split) < 0)
				return EXIT_USAGE;
			have_split = true;
			break;
		case 'm': if (parse_u64("--max-loss", optarg, UINT64_MAX, &max_loss) < 0) return EXIT_USAGE; break;
		case 'p':
			if (parse_u64("--protected-from", optarg, UINT64_MAX, &protected_from) < 0)
				return EXIT_USAGE;
			break;
		default: return EXIT_USAGE;
		}
	}
	if (!path || !have_split) {
		fprintf(stderr, "nbcheck check: --log FILE and --split UNIX_US are required\n");
		return EXIT_USAGE;
	}
	n = read_log(path, &rec, &tcperr, &udpbad);
	if (n < 0)
		return EXIT_USAGE;
	/*
	 * Sides by receive timestamp, not by line order: the recorder may
	 * process a reply that arrived before the failover after datagrams
	 * that arrived after it.  Within one stream the line order is the
	 * arrival order (one UDP socket; one TCP poll at a time).
	 */
	for (ssize_t i = 0; i < n; i++) {
		struct side *s = rec[i].ts >= split ? &after : &before;

		if (protected_from && rec[i].ts >= protected_from && rec[i].ts < split)
			*(rec[i].udp ? &udp_protected : &tcp_protected) += 1;
		if (rec[i].udp)
			s->udp_max = s->udp++ ? max_u64(s->udp_max, rec[i].value) : rec[i].value;
		else
			s->tcp_max = s->tcp++ ? max_u64(s->tcp_max, rec[i].value) : rec[i].value;
	}
	max_before = max_u64(before.udp ? before.udp_max : 0, before.tcp ? before.tcp_max : 0);
	for (ssize_t i = 0; i < n; i++) {
		bool is_after = rec[i].ts >= split;
		struct side *s = is_after ? &after : &before;
		uint64_t v = rec[i].value;
		char why[160] = "";

		if (rec[i].udp) {
			/* The skip before the first value after the failover is the
			 * boundary's (boundary_skip), not loss. */
			bool boundary = is_after && !have_first;

			if (boundary)
				first_after = v, have_first = true;
			/* One datagram per increment: strictly increasing. */
			if (have_udp && v <= prev_udp)
				snprintf(why, sizeof(why), "udp %" PRIu64 " after udp %" PRIu64 " (%s)",
					 v, prev_udp, v == prev_udp ? "repeat" : "went back");
			else if (!boundary && have_udp && v > prev_udp + 1)
				s->gaps++, s->lost += v - prev_udp - 1;
			/*
			 * Output commit: the standby's guest resumed from a state
			 * at least as new as anything the client saw; its first
			 * increment is above all of it.
			 */
			if (!why[0] && is_after && before.tcp && v <= before.tcp_max)
				snprintf(why, sizeof(why), "udp %" PRIu64 " after the failover, but tcp %"
					 PRIu64 " was seen before it", v, before.tcp_max);
			prev_udp = have_udp ? max_u64(prev_udp, v) : v;
			have_udp = true;
		} else {
			/* The value at accept time: never lower than an earlier one. */
			if (have_tcp && v < prev_tcp)
				snprintf(why, sizeof(why), "tcp %" PRIu64 " after tcp %" PRIu64
					 " (went back)", v, prev_tcp);
			else if (is_after && max_before > v)
				snprintf(why, sizeof(why), "tcp %" PRIu64 " after the failover, but %"
					 PRIu64 " was seen before it", v, max_before);
			if (is_after && !have_tcp_first)
				tcp_first_after = v, have_tcp_first = true;
			prev_tcp = have_tcp ? max_u64(prev_tcp, v) : v;
			have_tcp = true;
		}
		if (why[0] && violations++ == 0)
			snprintf(first_violation, sizeof(first_violation), "%s", why);
	}
	if (violations)
		rc = EXIT_VIOLATION, verdict = "violation";
	else if (!before.udp || !after.udp || (before.tcp + after.tcp > 0 && (!before.tcp || !after.tcp)) ||
		 (protected_from && !udp_protected))
		rc = EXIT_NODATA, verdict = "no-data";
	else if (after.lost > max_loss)
		rc = EXIT_LOSS, verdict = "loss";
	else
		rc = EXIT_PASS, verdict = "pass";
	printf("{\"check\":\"output-commit\",\"verdict\":\"%s\",\"split_us\":%" PRIu64 ","
	       "\"udp_before\":%" PRIu64 ",\"udp_after\":%" PRIu64 ","
	       "\"tcp_before\":%" PRIu64 ",\"tcp_after\":%" PRIu64 ","
	       "\"max_before\":%" PRIu64 ",\"first_after\":%" PRIu64 ","
	       "\"tcp_max_before\":%" PRIu64 ",\"tcp_first_after\":%" PRIu64 ","
	       "\"boundary_skip\":%" PRId64 ",\"gaps_before\":%" PRIu64 ",\"lost_before\":%" PRIu64 ","
	       "\"gaps_after\":%" PRIu64 ",\"lost_after\":%" PRIu64 ",\"max_loss\":%" PRIu64 ","
	       "\"tcp_errors\":%" PRIu64 ",\"udp_malformed\":%" PRIu64 ","
	       "\"udp_protected\":%" PRIu64 ",\"tcp_protected\":%" PRIu64 ","
	       "\"violations\":%" PRIu64 ",\"first_violation\":",
	       verdict, split, before.udp, after.udp, before.tcp, after.tcp, max_before,
	       first_after, before.tcp_max, tcp_first_after,
	       after.udp ? (int64_t)first_after - (int64_t)max_before - 1 : 0,
	       before.gaps, before.lost, after.gaps, after.lost, max_loss, tcperr, udpbad,
	       udp_protected, tcp_protected, violations);
	if (first_violation[0])
		printf("\"%s\"}\n", first_violation);
	else
		printf("null}\n");
	free(rec);
	return rc;
}

/* ---- probes: ping, tcprtt, bulk ------------------------------------- */

static void print_samples(const char *key, const double *v, size_t n)
{
	printf("\"%s\":[", key);
	for (size_t i = 0; i < n; i++)
		printf("%s%.3f", i ? "," : "", v[i]);
	printf("]");
}

static uint16_t icmp_sum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		s += (uint32_t)b[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return htons((uint16_t)~s);
}

static int cmd_ping(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'c' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "wait-ms", required_argument, NULL, 'w' },
		{ 0 },
	};
	struct sockaddr_in to;
	uint64_t count = 20, interval_ms = 200, wait_ms = 5000, *sent_at = NULL;
	uint16_t id = (uint16_t)getpid();
	double *rtt = NULL;
	size_t got = 0, sent = 0;
	bool have_to = false;
	int c, fd = -1, rc = EXIT_USAGE;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_addr("--to", optarg, false, &to) < 0)
				return EXIT_USAGE;
			have_to = true;
			break;
		case 'c': if (parse_u64("--count", optarg, MAX_SAMPLES, &count) < 0) return EXIT_USAGE; break;
		case 'i': if (parse_u64("--interval-ms", optarg, 60000, &interval_ms) < 0) return EXIT_USAGE; break;
		case 'w': if (parse_u64("--wait-ms", optarg, 600000, &wait_ms) < 0) return EXIT_USAGE; break;
		default: return EXIT_USAGE;
		}
	}
	if (!have_to || count == 0) {
		fprintf(stderr, "nbcheck ping: --to A.B.C.D and --count >= 1 are required\n");
		return EXIT_USAGE;
	}
	sent_at = calloc(count, sizeof(*sent_at));
	rtt = calloc(count, sizeof(*rtt));
	fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (!sent_at || !rtt || fd < 0) {
		fprintf(stderr, "nbcheck ping: raw ICMP socket: %s (needs root)\n", strerror(errno));
		goto out;
	}
	uint64_t next = mono_ns(), deadline = 0;
	for (;;) {
		uint64_t now = mono_ns();

		if (sent < count && now >= next) {
			struct icmphdr h = { .type = ICMP_ECHO };
			uint8_t pkt[sizeof(h) + 24] = { 0 };

			h.un.echo.id = htons(id);
			h.un.echo.sequence = htons((uint16_t)sent);
			memcpy(pkt, &h, sizeof(h));
			((struct icmphdr *)pkt)->checksum = icmp_sum(pkt, sizeof(pkt));
			sent_at[sent] = now;
			if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to)) < 0)
				sent_at[sent] = 0; /* counted as lost */
			sent++;
			next += interval_ms * 1000000u;
			if (sent == count)
				deadline = now + wait_ms * 1000000u;
			continue;
		}
		if (sent == count && (got == count || now >= deadline))
			break;
		uint64_t until = sent < count ? next : deadline;
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, (int)((until - now) / 1000000u) + 1) < 0 && errno != EINTR)
			goto out;
		if (!(p.revents & POLLIN))
			continue;
		uint8_t in[1500];
		ssize_t n;
		while ((n = recv(fd, in, sizeof(in), MSG_DONTWAIT)) > 0) {
			size_t ihl = (size_t)(in[0] & 0x0f) * 4;
			struct icmphdr h;
			unsigned seq;

			if ((size_t)n < ihl + sizeof(h))
				continue;
			memcpy(&h, in + ihl, sizeof(h));
			seq = ntohs(h.un.echo.sequence);
			if (h.type != ICMP_ECHOREPLY || ntohs(h.un.echo.id) != id || seq >= sent ||
			    !sent_at[seq])
				continue;
			rtt[got++] = (double)(mono_ns() - sent_at[seq]) / 1e6;
			sent_at[seq] = 0; /* a duplicate reply is not a second sample */
		}
	}
	printf("{\"probe\":\"ping\",\"sent\":%zu,\"received\":%zu,", sent, got);
	print_samples("rtt_ms", rtt, got);
	printf("}\n");
	rc = EXIT_PASS;
out:
	if (fd >= 0)
		close(fd);
	free(sent_at);
	free(rtt);
	return rc;
}

/* Waits for @events on @fd until monotonic @deadline.  Returns revents,
 * 0 on timeout, or -errno. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = mono_ns();
		struct pollfd p = { fd, events, 0 };
		int r;

		if (now >= deadline)
			return 0;
		r = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r > 0)
			return p.revents;
	}
}

/* One connect + read of a counter line.  Returns 0 with the times, or a
 * negative errno (-ETIMEDOUT, -EPROTO for a reply that is not a line). */
static int tcp_exchange(const struct sockaddr_in *to, uint64_t timeout_ms,
			double *connect_ms, double *total_ms)
{
	uint64_t t0 = mono_ns(), deadline = t0 + timeout_ms * 1000000u, ts, v;
	char line[64];
	size_t len = 0;
	int fd = tcp_connect_start(to), rc, err = 0;
	socklen_t el = sizeof(err);

	if (fd < 0)
		return fd;
	rc = wait_fd(fd, POLLOUT, deadline);
	if (rc <= 0) {
		rc = rc ? rc : -ETIMEDOUT;
		goto out;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
		rc = -(err ? err : errno);
		goto out;
	}
	*connect_ms = (double)(mono_ns() - t0) / 1e6;
	for (;;) {
		ssize_t n;

		rc = wait_fd(fd, POLLIN, deadline);
		if (rc <= 0) {
			rc = rc ? rc : -ETIMEDOUT;
			goto out;
		}
		n = recv_stamped(fd, line + len, sizeof(line) - 1 - len, &ts);
		if (n == -EAGAIN)
			continue;
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == sizeof(line) - 1) {
			rc = -EPROTO;
			goto out;
		}
	}
	*total_ms = (double)(mono_ns() - t0) / 1e6;
	rc = parse_counter_line(line, len, &v) == 0 ? 0 : -EPROTO;
out:
	close(fd);
	return rc;
}

static int cmd_tcprtt(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tcp", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'c' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ 0 },
	};
	struct sockaddr_in to;
	uint64_t count = 20, interval_ms = 200, timeout_ms = 5000, errors = 0;
	double *conn = NULL, *total = NULL;
	size_t got = 0;
	bool have_to = false;
	int c, rc = EXIT_USAGE;
	const char *last_err = "";

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_addr("--tcp", optarg, true, &to) < 0)
				return EXIT_USAGE;
			have_to = true;
			break;
		case 'c': if (parse_u64("--count", optarg, MAX_SAMPLES, &count) < 0) return EXIT_USAGE; break;
		case 'i': if (parse_u64("--interval-ms", optarg, 60000, &interval_ms) < 0) return EXIT_USAGE; break;
		case 'T': if (parse_u64("--timeout-ms", optarg, 600000, &timeout_ms) < 0) return EXIT_USAGE; break;
		default: return EXIT_USAGE;
		}
	}
	if (!have_to || count == 0) {
		fprintf(stderr, "nbcheck tcprtt: --tcp A.B.C.D:PORT and --count >= 1 are required\n");
		return EXIT_USAGE;
	}
	conn = calloc(count, sizeof(*conn));
	total = calloc(count, sizeof(*total));
	if (!conn || !total)
		goto out;
	for (uint64_t i = 0; i < count; i++) {
		int r = tcp_exchange(&to, timeout_ms, &conn[got], &total[got]);

		if (r == 0)
			got++;
		else
			errors++, last_err = strerror(-r);
		if (i + 1 < count)
			usleep((useconds_t)(interval_ms * 1000u));
	}
	printf("{\"probe\":\"tcprtt\",\"tries\":%" PRIu64 ",\"ok\":%zu,\"errors\":%" PRIu64
	       ",\"last_error\":\"%s\",", count, got, errors, last_err);
	print_samples("connect_ms", conn, got);
	printf(",");
	print_samples("rtt_ms", total, got);
	printf("}\n");
	rc = EXIT_PASS;
out:
	free(conn);
	free(total);
	return rc;
}

static int cmd_bulk(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tcp", required_argument, NULL, 't' },
		{ "seconds", required_argument, NULL, 's' },
		{ 0 },
	};
	struct sockaddr_in to;
	uint64_t seconds = 5, bytes = 0, t0, t1, end;
	bool have_to = false;
	int c, fd = -1, r, err = 0, rc = EXIT_USAGE;
	socklen_t el = sizeof(err);
	static char buf[256 * 1024];

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_addr("--tcp", optarg, true, &to) < 0)
				return EXIT_USAGE;
			have_to = true;
			break;
		case 's': if (parse_u64("--seconds", optarg, 3600, &seconds) < 0) return EXIT_USAGE; break;
		default: return EXIT_USAGE;
		}
	}
	if (!have_to || seconds == 0) {
		fprintf(stderr, "nbcheck bulk: --tcp A.B.C.D:PORT and --seconds >= 1 are required\n");
		return EXIT_USAGE;
	}
	fd = tcp_connect_start(&to);
	if (fd < 0) {
		fprintf(stderr, "nbcheck bulk: connect: %s\n", strerror(-fd));
		goto out;
	}
	r = wait_fd(fd, POLLOUT, mono_ns() + 10000000000u);
	if (r <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
		fprintf(stderr, "nbcheck bulk: cannot connect to %s:%u: %s\n",
			inet_ntoa(to.sin_addr), ntohs(to.sin_port),
			r < 0 ? strerror(-r) : err ? strerror(err) : "timed out");
		goto out;
	}
	t0 = mono_ns();
	end = t0 + seconds * 1000000000u;
	for (;;) {
		ssize_t n;

		r = wait_fd(fd, POLLIN, end);
		if (r <= 0)
			break;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0)
			break;
		bytes += (uint64_t)n;
	}
	t1 = mono_ns();
	printf("{\"probe\":\"bulk\",\"bytes\":%" PRIu64 ",\"seconds\":%.3f,\"mbit_s\":%.3f}\n",
	       bytes, (double)(t1 - t0) / 1e9, (double)bytes * 8 / ((double)(t1 - t0) / 1e9) / 1e6);
	rc = EXIT_PASS;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "record", cmd_record }, { "check", cmd_check }, { "ping", cmd_ping },
		{ "tcprtt", cmd_tcprtt }, { "bulk", cmd_bulk },
	};

	for (size_t i = 0; argc >= 2 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "usage: nbcheck record|check|ping|tcprtt|bulk [options] "
		"(see the comment at the top of nbcheck.c)\n");
	return EXIT_USAGE;
}
