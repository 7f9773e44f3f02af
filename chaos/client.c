// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * remus-chaos-client: the client side of the chaos suite's workload.
 *
 *     remus-chaos-client --server 10.9.0.100:7070 --out history.jsonl
 *                        [--sessions 8] [--keys 8] [--duration S]
 *                        [--timeout-ms 3000] [--read-pct 40] [--seed N]
 *                        [--final-timeout S] [--first-session N]
 *
 * Jepsen's rule: the client's view is the truth.  N sessions (one thread
 * and one TCP connection each) talk to the guest's kvstore
 * (vm-images/guest/kvstore.c) and every operation becomes one JSON line of
 * the history as soon as it completes:
 *
 *     {"session":3,"op":"append","key":"k2","value":3000000017,
 *      "invoke_us":T0,"complete_us":T1,"result":"ok","out":12}
 *
 * op is "inc" (out: the counter after it), "append" (value: unique to the
 * run, out: the list's length after it) or "read" ("counter" and "list").
 * result is "ok" (answered ok), "fail" (answered err, or never sent: the
 * store did not apply it) or "unknown" (sent, no answer within
 * --timeout-ms or the connection broke: it may or may not have been
 * applied, as at a failover).  After an unknown operation the session
 * drops its connection and connects again.  Times are CLOCK_REALTIME in
 * microseconds, so a fault's time taken by another process lines up.
 *
 * The run ends after --duration seconds (0: at SIGTERM or SIGINT); the
 * sessions finish their operation in flight, then one final read of every
 * key ("final":true) is retried until it succeeds or --final-timeout
 * passes, so a write acknowledged at the very end is still checked.  The
 * checker is remus-chaos-check(1).  Two clients whose histories are
 * judged together (one on each side of a partition) must not share
 * session numbers, which make the appended values unique:
 * --first-session gives the second one its own range.  Exit 0, 1 on an error (message on
 * stderr), 2 on a usage error.
 *
 * Blocking sockets with poll timeouts in a thread per session: the client
 * measures the service and must never be the bottleneck or hold an
 * operation back; no event loop is needed for a handful of connections.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SESSIONS 256
#define MAX_KEYS 256
/* A read of a full list (4096 values of up to 20 digits) fits. */
#define REPLY_MAX (128 * 1024)

struct client_opts {
	struct sockaddr_in server;
	const char *out_path;     /* borrowed from argv */
	unsigned sessions, keys, read_pct;
	unsigned first_session;   /* id of the first session (default 1) */
	unsigned timeout_ms, duration_s, final_timeout_s;
	uint64_t seed;
};

/* One session: its thread, connection and reply buffer. */
struct session {
	unsigned id;              /* 1-based, part of every appended value */
	int fd;                   /* owned; -1 when not connected */
	char *buf;                /* owned; REPLY_MAX + 1 bytes */
	size_t len;               /* bytes in buf (a reply line and what followed) */
	uint64_t rng, appends;
	uint64_t ok, failed, unknown;
	pthread_t thread;
};

static struct client_opts opts;
static FILE *history;                   /* owned by main */
static pthread_mutex_t history_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool stopping;
static int history_error;               /* under history_lock */

static void on_stop(int sig)
{
	(void)sig;
	atomic_store(&stopping, true);
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xorshift64*: reproducible per session from --seed. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static void session_disconnect(struct session *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->len = 0;
}

/* Connects within the operation timeout.  Returns 0 or -errno. */
static int session_connect(struct session *s)
{
	int one = 1, err = 0, rc;
	socklen_t elen = sizeof(err);
	struct pollfd p;

	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -errno;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(s->fd, (struct sockaddr *)&opts.server, sizeof(opts.server)) == 0)
		return 0;
	if (errno != EINPROGRESS) {
		rc = -errno;
		goto out;
	}
	p = (struct pollfd){ s->fd, POLLOUT, 0 };
	rc = poll(&p, 1, (int)opts.timeout_ms);
	if (rc <= 0) {
		rc = rc == 0 ? -ETIMEDOUT : -errno;
		goto out;
	}
	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err != 0) {
		rc = err ? -err : -errno;
		goto out;
	}
	return 0;
out:
	session_disconnect(s);
	return rc;
}

/*
 * Sends @req and reads one reply line into s->buf (NUL-terminated, no
 * '\n') before @deadline_ms (mono_ms).  Returns 1 when the request was not
 * sent at all, 0 on a reply, or -errno when it was sent (or partly) and no
 * complete reply came: an unknown outcome.
 */
static int session_call(struct session *s, const char *req, int64_t deadline_ms)
{
	size_t n = strlen(req), off = 0;

	while (off < n) {
		struct pollfd p = { s->fd, POLLOUT, 0 };
		int64_t left = deadline_ms - mono_ms();
		ssize_t r;

		if (left <= 0)
			return off ? -ETIMEDOUT : 1;
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return off ? -errno : 1;
		r = send(s->fd, req + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return off ? -errno : 1;
		}
		off += (size_t)r;
	}
	for (;;) {
		char *nl = memchr(s->buf, '\n', s->len);
		int64_t left = deadline_ms - mono_ms();
		struct pollfd p = { s->fd, POLLIN, 0 };
		ssize_t r;

		if (nl != NULL) {
			*nl = '\0';
			return 0;
		}
		if (s->len == REPLY_MAX)
			return -EMSGSIZE;
		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		r = recv(s->fd, s->buf + s->len, REPLY_MAX - s->len, MSG_DONTWAIT);
		if (r == 0)
			return -ECONNRESET;
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		s->len += (size_t)r;
	}
}

/* Drops the reply line just handled from s->buf. */
static void session_consume(struct session *s)
{
	size_t n = strlen(s->buf) + 1;

	memmove(s->buf, s->buf + n, s->len - n);
	s->len -= n;
}

/* Writes one history line; remembers a write error for main. */
static void history_put(const char *line)
{
	pthread_mutex_lock(&history_lock);
	if (fputs(line, history) < 0 || fflush(history) != 0)
		history_error = errno ? errno : EIO;
	pthread_mutex_unlock(&history_lock);
}

/*
 * Appends the JSON of a read reply "ok C N V1,V2,..." to @line (capacity
 * @cap, used @*len): ,"counter":C,"list":[V1,V2,...].  Returns 0, or
 * -EPROTO for a reply that is not that.
 */
static int put_read(const char *reply, char *line, size_t cap, size_t *len)
{
	unsigned long long c, n, count = 0;
	char *end = NULL;
	const char *p;
	int w;

	errno = 0;
	c = strtoull(reply, &end, 10);
	if (errno || end == reply || *end != ' ')
		return -EPROTO;
	p = end + 1;
	n = strtoull(p, &end, 10);
	if (errno || end == p || *end != ' ')
		return -EPROTO;
	p = end + 1;
	w = snprintf(line + *len, cap - *len, ",\"counter\":%llu,\"list\":[", c);
	if (w < 0 || (size_t)w >= cap - *len)
		return -EPROTO;
	*len += (size_t)w;
	if (strcmp(p, "-") != 0) {
		for (;;) {
			unsigned long long v;

			if (*p < '0' || *p > '9')
				return -EPROTO;
			v = strtoull(p, &end, 10);
			if (errno || (*end != ',' && *end != '\0'))
				return -EPROTO;
			w = snprintf(line + *len, cap - *len, "%s%llu", count ? "," : "", v);
			if (w < 0 || (size_t)w >= cap - *len)
				return -EPROTO;
			*len += (size_t)w;
			count++;
			if (*end == '\0')
				break;
			p = end + 1;
		}
	}
	if (count != n || *len + 2 >= cap)
		return -EPROTO;
	line[(*len)++] = ']';
	line[*len] = '\0';
	return 0;
}

enum op_kind { OP_INC, OP_APPEND, OP_READ };
static const char *const op_names[] = { "inc", "append", "read" };

/*
 * One operation on @key, recorded.  Returns 0 when the session may go on
 * with its connection, or -1 when it must reconnect.
 */
static int run_op(struct session *s, enum op_kind op, unsigned key, bool final)
{
	static const size_t cap = REPLY_MAX + 512;
	char req[64], *line = malloc(cap);
	uint64_t value = 0;
	const char *result = "unknown", *why = NULL;
	size_t len;
	int64_t t0, t1;
	int rc, keep = 0;

	if (line == NULL)
		return -1;
	if (op == OP_APPEND) {
		value = (uint64_t)s->id * 1000000000ULL + ++s->appends;
		snprintf(req, sizeof(req), "app k%u %" PRIu64 "\n", key, value);
	} else {
		snprintf(req, sizeof(req), "%s k%u\n", op == OP_INC ? "inc" : "get", key);
	}
	t0 = now_us();
	rc = s->fd >= 0 ? 0 : session_connect(s);
	if (rc < 0) {
		result = "fail";
		why = "connect";
	} else {
		rc = session_call(s, req, mono_ms() + opts.timeout_ms);
		if (rc == 1) {
			result = "fail";
			why = "not sent";
		} else if (rc < 0) {
			why = rc == -ETIMEDOUT ? "timeout" : "connection lost";
		}
	}
	t1 = now_us();
	len = (size_t)snprintf(line, cap,
			       "{\"session\":%u,\"op\":\"%s\",\"key\":\"k%u\",\"value\":",
			       s->id, op_names[op], key);
	if (op == OP_APPEND)
		len += (size_t)snprintf(line + len, cap - len, "%" PRIu64, value);
	else
		len += (size_t)snprintf(line + len, cap - len, "null");
	if (rc == 0 && strncmp(s->buf, "ok ", 3) == 0) {
		size_t before = len;
		unsigned long long out;
		char *end = NULL;

		result = "ok";
		if (op == OP_READ) {
			if (put_read(s->buf + 3, line, cap, &len) < 0) {
				len = before;
				result = "unknown";
				why = "malformed reply";
			}
		} else {
			errno = 0;
			out = strtoull(s->buf + 3, &end, 10);
			if (errno || *end != '\0') {
				result = "unknown";
				why = "malformed reply";
			} else {
				len += (size_t)snprintf(line + len, cap - len, ",\"out\":%llu", out);
			}
		}
		keep = strcmp(result, "ok") == 0;
	} else if (rc == 0 && strncmp(s->buf, "err ", 4) == 0) {
		result = "fail";
		why = "refused";
		keep = 1;
	} else if (rc == 0) {
		why = "malformed reply";
	}
	if (rc == 0 && keep)
		session_consume(s);
	len += (size_t)snprintf(line + len, cap - len,
				",\"invoke_us\":%" PRId64 ",\"complete_us\":%" PRId64
				",\"result\":\"%s\"", t0, t1, result);
	if (why)
		len += (size_t)snprintf(line + len, cap - len, ",\"error\":\"%s\"", why);
	if (final)
		len += (size_t)snprintf(line + len, cap - len, ",\"final\":true");
	snprintf(line + len, cap - len, "}\n");
	history_put(line);
	free(line);
	if (strcmp(result, "ok") == 0)
		s->ok++;
	else if (strcmp(result, "fail") == 0)
		s->failed++;
	else
		s->unknown++;
	if (!keep) {
		session_disconnect(s);
		return -1;
	}
	return 0;
}

static void *session_main(void *arg)
{
	struct session *s = arg;

	while (!atomic_load(&stopping)) {
		unsigned key = (unsigned)(rnd(&s->rng) % opts.keys);
		unsigned dice = (unsigned)(rnd(&s->rng) % 100);
		enum op_kind op = dice < opts.read_pct ? OP_READ :
				  (dice - opts.read_pct) % 2 ? OP_APPEND : OP_INC;

		if (run_op(s, op, key, false) < 0) {
			/* No busy loop against a service that is down. */
			struct timespec ts = { 0, 50 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: remus-chaos-client --server ADDR:PORT --out FILE [--sessions N]\n"
		"       [--keys N] [--duration S] [--timeout-ms MS] [--read-pct P]\n"
		"       [--seed N] [--final-timeout S] [--first-session N]\n"
		"Runs N concurrent sessions of increments, appends and reads against the\n"
		"chaos suite's kvstore and writes every operation to FILE (JSON lines),\n"
		"then a final read of every key.  See remus-chaos(1).\n");
}

static int parse_uint(const char *name, const char *v, unsigned min, unsigned max,
		      unsigned *out)
{
	char *end = NULL;
	unsigned long x;

	errno = 0;
	x = strtoul(v, &end, 10);
	if (errno || end == v || *end != '\0' || x < min || x > max) {
		fprintf(stderr, "remus-chaos-client: --%s %s: a number from %u to %u\n", name,
			v, min, max);
		return -EINVAL;
	}
	*out = (unsigned)x;
	return 0;
}

static int parse_server(const char *v)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strrchr(v, ':');
	unsigned port;

	if (colon == NULL || (size_t)(colon - v) >= sizeof(host))
		goto bad;
	memcpy(host, v, (size_t)(colon - v));
	host[colon - v] = '\0';
	if (parse_uint("server port", colon + 1, 1, 65535, &port) < 0)
		goto bad;
	opts.server.sin_family = AF_INET;
	opts.server.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &opts.server.sin_addr) != 1)
		goto bad;
	return 0;
bad:
	fprintf(stderr, "remus-chaos-client: --server %s: give A.B.C.D:PORT\n", v);
	return -EINVAL;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },
		{ "sessions", required_argument, NULL, 'n' },
		{ "keys", required_argument, NULL, 'k' },
		{ "duration", required_argument, NULL, 'd' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "read-pct", required_argument, NULL, 'r' },
		{ "seed", required_argument, NULL, 'S' },
		{ "final-timeout", required_argument, NULL, 'f' },
		{ "first-session", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct session *ss = NULL;
	struct sigaction sa = { .sa_handler = on_stop };
	bool have_server = false;
	unsigned seed = 1, started = 0;
	uint64_t ok = 0, failed = 0, unknown = 0;
	int c, rc = 1;

	opts.sessions = 8;
	opts.keys = 8;
	opts.read_pct = 40;
	opts.timeout_ms = 3000;
	opts.final_timeout_s = 60;
	opts.first_session = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int r = 0;

		switch (c) {
		case 's': r = parse_server(optarg); have_server = r == 0; break;
		case 'o': opts.out_path = optarg; break;
		case 'n': r = parse_uint("sessions", optarg, 1, MAX_SESSIONS, &opts.sessions); break;
		case 'k': r = parse_uint("keys", optarg, 1, MAX_KEYS, &opts.keys); break;
		case 'd': r = parse_uint("duration", optarg, 0, 86400 * 7, &opts.duration_s); break;
		case 't': r = parse_uint("timeout-ms", optarg, 10, 600000, &opts.timeout_ms); break;
		case 'r': r = parse_uint("read-pct", optarg, 0, 100, &opts.read_pct); break;
		case 'S': r = parse_uint("seed", optarg, 0, 0xffffffffu, &seed); break;
		case 'f': r = parse_uint("final-timeout", optarg, 0, 3600, &opts.final_timeout_s); break;
		case 'F':
			r = parse_uint("first-session", optarg, 1, 1000000, &opts.first_session);
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (r < 0)
			return 2;
	}
	if (optind != argc || !have_server || opts.out_path == NULL) {
		usage(stderr);
		return 2;
	}
	history = fopen(opts.out_path, "we");
	if (history == NULL) {
		fprintf(stderr, "remus-chaos-client: cannot create %s: %s\n", opts.out_path,
			strerror(errno));
		return 1;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	ss = calloc(opts.sessions, sizeof(*ss));
	if (ss == NULL)
		goto out;
	for (unsigned i = 0; i < opts.sessions; i++)
		ss[i].fd = -1;
	for (unsigned i = 0; i < opts.sessions; i++) {
		ss[i].id = opts.first_session + i;
		ss[i].rng = (seed + 1) * 0x9E3779B97F4A7C15ULL +
			    (ss[i].id - 1) * 0xD1B54A32D192ED03ULL;
		ss[i].buf = malloc(REPLY_MAX + 1);
		if (ss[i].buf == NULL)
			goto out;
	}
	for (; started < opts.sessions; started++) {
		if (pthread_create(&ss[started].thread, NULL, session_main, &ss[started]) != 0) {
			fprintf(stderr, "remus-chaos-client: cannot start session %u\n", started + 1);
			atomic_store(&stopping, true);
			goto out;
		}
	}
	for (int64_t end = mono_ms() + (int64_t)opts.duration_s * 1000;
	     !atomic_load(&stopping) && (opts.duration_s == 0 || mono_ms() < end);) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	atomic_store(&stopping, true);
	for (; started > 0; started--)
		pthread_join(ss[started - 1].thread, NULL);
	/* Final reads from session 1, each key until it answers. */
	rc = 0;
	for (unsigned k = 0; k < opts.keys; k++) {
		int64_t end = mono_ms() + (int64_t)opts.final_timeout_s * 1000;

		while (run_op(&ss[0], OP_READ, k, true) < 0) {
			struct timespec ts = { 0, 200 * 1000 * 1000 };
			if (mono_ms() >= end) {
				fprintf(stderr, "remus-chaos-client: no final read of k%u within %u s\n",
					k, opts.final_timeout_s);
				rc = 1;
				break;
			}
			nanosleep(&ts, NULL);
		}
	}
	for (unsigned i = 0; i < opts.sessions; i++) {
		ok += ss[i].ok;
		failed += ss[i].failed;
		unknown += ss[i].unknown;
	}
	fprintf(stderr, "remus-chaos-client: %" PRIu64 " operations: %" PRIu64 " ok, %" PRIu64
		" failed, %" PRIu64 " unknown\n", ok + failed + unknown, ok, failed, unknown);
	if (history_error) {
		fprintf(stderr, "remus-chaos-client: writing %s failed: %s\n", opts.out_path,
			strerror(history_error));
		rc = 1;
	}
out:
	atomic_store(&stopping, true);
	for (; started > 0; started--)
		pthread_join(ss[started - 1].thread, NULL);
	if (ss)
		for (unsigned i = 0; i < opts.sessions; i++) {
			session_disconnect(&ss[i]);
			free(ss[i].buf);
		}
	free(ss);
	if (fclose(history) != 0 && rc == 0) {
		fprintf(stderr, "remus-chaos-client: closing %s failed: %s\n", opts.out_path,
			strerror(errno));
		rc = 1;
	}
	return rc;
}
