/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * counter: the network workload of the test guest.
 *
 *     remus.run=counter remus.args=udp=10.0.3.1:9000,ms=100,tcp=7777,log=1
 *     (optional: bulk=7778)
 *
 * Keeps a 64-bit counter that starts at 0 and goes up by one every ms=
 * milliseconds.  Each increment sends one UDP datagram to udp=ADDR:PORT (if
 * given) whose payload is the ASCII line
 *
 *     counter N\n          (N decimal, no leading zeros, 1 for the first)
 *
 * and every connection accepted on TCP port tcp= (0 = no TCP) gets the same
 * line for the current value, then is closed.  A client can therefore check
 * what Remus promises: after a failover the values it receives continue
 * where they stopped, with no value seen twice (output from an uncommitted
 * epoch never left the primary) and no gap beyond datagrams lost in flight.
 *
 * Timing uses an absolute CLOCK_MONOTONIC timerfd.  After a pause longer
 * than one period (the guest stopped for a checkpoint or failover) the
 * missed periods are skipped, not caught up in a burst: the counter counts
 * sends, not elapsed time.  A failed send (network unreachable while the
 * link is down) still consumes its value and is counted as an error.
 * With log=1 (default) one status line per second goes to stdout:
 *
 *     counter value=N udp_sent=A udp_errors=B tcp_served=C
 *
 * bulk=PORT (0 = off, the default) adds a throughput source for benchmarks
 * (bench/netbuffer): every connection accepted there gets an endless
 * stream of bytes until the client closes it.  The stream is written from
 * the same poll loop without blocking, at most BULK_BURST bytes per
 * wakeup, so the counter keeps its period while a client drains it; the
 * status line then ends with " bulk_bytes=D" (omitted without bulk=, so
 * the line above stays what existing tests match).
 */
#define _GNU_SOURCE  /* accept4 */
#include "guest-args.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* Concurrent bulk clients; one more is accepted and closed at once. */
#define BULK_CLIENTS 4
/* Bytes written to one bulk client per wakeup: bounded so that a fast
 * reader cannot keep the loop away from the timer for long. */
#define BULK_BURST (256 * 1024)

struct counter {
	uint64_t value;
	uint64_t udp_sent, udp_errors, tcp_served, bulk_bytes;
	int udp_fd, tcp_fd, timer_fd, bulk_fd;   /* -1 when unused */
	int bulk_clients[BULK_CLIENTS];          /* owned; -1 when free */
	struct sockaddr_in udp_to;
	int udp_last_errno;
};

/* Parses "A.B.C.D:PORT".  Returns 0 or -EINVAL. */
static int parse_addr(const char *s, struct sockaddr_in *out)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strrchr(s, ':');
	char *end = NULL;

	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || port == 0 || port > 65535)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &out->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

static int format_value(const struct counter *c, char *line, size_t size)
{
	return snprintf(line, size, "counter %" PRIu64 "\n", c->value);
}

static void send_udp(struct counter *c)
{
	char line[40];
	int len = format_value(c, line, sizeof(line));

	if (sendto(c->udp_fd, line, (size_t)len, MSG_DONTWAIT,
		   (const struct sockaddr *)&c->udp_to, sizeof(c->udp_to)) == len) {
		c->udp_sent++;
		return;
	}
	if (c->udp_errors++ == 0 || errno != c->udp_last_errno)
		fprintf(stderr, "counter: send to %s:%u failed: %s\n",
			inet_ntoa(c->udp_to.sin_addr), ntohs(c->udp_to.sin_port),
			strerror(errno));
	c->udp_last_errno = errno;
}

static void serve_tcp(struct counter *c)
{
	for (;;) {
		int fd = accept4(c->tcp_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		char line[40];

		if (fd < 0)
			return;  /* EAGAIN: drained; anything else: client gone */
		int len = format_value(c, line, sizeof(line));
		/* A fresh socket's send buffer always holds one short line. */
		if (write(fd, line, (size_t)len) == len)
			c->tcp_served++;
		close(fd);
	}
}

/* Accepts every pending bulk client into a free slot (or closes it). */
static void accept_bulk(struct counter *c)
{
	for (;;) {
		int fd = accept4(c->bulk_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int i;

		if (fd < 0)
			return;
		for (i = 0; i < BULK_CLIENTS && c->bulk_clients[i] >= 0; i++)
			;
		if (i == BULK_CLIENTS) {
			close(fd);
			continue;
		}
		c->bulk_clients[i] = fd;
	}
}

/* Writes up to BULK_BURST bytes to client @i; closes it when the peer is
 * gone (EPIPE, ECONNRESET, hang-up).  MSG_NOSIGNAL: a closed reader must
 * not kill the counter with SIGPIPE. */
static void feed_bulk(struct counter *c, int i, short revents)
{
	static char chunk[64 * 1024];
	size_t done = 0;

	if (revents & (POLLERR | POLLHUP | POLLNVAL))
		goto gone;
	if (chunk[0] == 0)
		memset(chunk, 'x', sizeof(chunk));
	while (done < BULK_BURST) {
		ssize_t r = send(c->bulk_clients[i], chunk, sizeof(chunk),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			goto gone;
		}
		done += (size_t)r;
		c->bulk_bytes += (uint64_t)r;
	}
	return;
gone:
	close(c->bulk_clients[i]);
	c->bulk_clients[i] = -1;
}

static int open_tcp(uint64_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_ANY) };
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int main(int argc, char **argv)
{
	uint64_t ms = 100, tcp_port = 7777, log = 1, bulk_port = 0;
	const char *udp = NULL;
	struct guest_arg args[] = {
		{ "udp", GUEST_ARG_STR, "send datagrams to A.B.C.D:PORT (default: none)",
		  0, 0, NULL, &udp, 0 },
		{ "ms", GUEST_ARG_U64, "period in milliseconds (default 100)",
		  1, 3600000, &ms, NULL, 0 },
		{ "tcp", GUEST_ARG_U64, "TCP port to serve, 0 = none (default 7777)",
		  0, 65535, &tcp_port, NULL, 0 },
		{ "log", GUEST_ARG_U64, "1 = a status line every second (default 1)",
		  0, 1, &log, NULL, 0 },
		{ "bulk", GUEST_ARG_U64, "TCP port streaming bytes to each client "
		  "until it closes, 0 = none (default 0)", 0, 65535, &bulk_port, NULL, 0 },
	};
	struct counter c = { .udp_fd = -1, .tcp_fd = -1, .timer_fd = -1, .bulk_fd = -1,
			     .bulk_clients = { -1, -1, -1, -1 } };
	struct itimerspec its = { .it_value = { 0, 0 } };
	struct timespec now, next_log;
	int rc = 1;

	_Static_assert(BULK_CLIENTS == 4, "initialise every bulk_clients slot to -1");
	if (guest_args_parse("counter", args, (int)(sizeof(args) / sizeof(args[0])),
			     argc, argv) < 0)
		return 2;
	if (udp != NULL) {
		if (parse_addr(udp, &c.udp_to) < 0) {
			fprintf(stderr, "counter: udp='%s' is not A.B.C.D:PORT\n", udp);
			return 2;
		}
		c.udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (c.udp_fd < 0) {
			perror("counter: UDP socket");
			goto out;
		}
	}
	if (tcp_port != 0) {
		c.tcp_fd = open_tcp(tcp_port);
		if (c.tcp_fd < 0) {
			fprintf(stderr, "counter: cannot listen on TCP port %" PRIu64
				": %s; choose another tcp=\n", tcp_port,
				strerror(-c.tcp_fd));
			goto out;
		}
	}
	if (bulk_port != 0) {
		if (bulk_port == tcp_port) {
			fprintf(stderr, "counter: bulk=%" PRIu64 " is also tcp=; choose "
				"two different ports\n", bulk_port);
			goto out;
		}
		c.bulk_fd = open_tcp(bulk_port);
		if (c.bulk_fd < 0) {
			fprintf(stderr, "counter: cannot listen on TCP port %" PRIu64
				": %s; choose another bulk=\n", bulk_port,
				strerror(-c.bulk_fd));
			goto out;
		}
	}
	c.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (c.timer_fd < 0 || clock_gettime(CLOCK_MONOTONIC, &now) < 0) {
		perror("counter: timerfd on CLOCK_MONOTONIC");
		goto out;
	}
	its.it_value = now;
	its.it_interval.tv_sec = (time_t)(ms / 1000);
	its.it_interval.tv_nsec = (long)(ms % 1000) * 1000000L;
	if (timerfd_settime(c.timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		perror("counter: timerfd_settime");
		goto out;
	}
	next_log = now;
	next_log.tv_sec++;
	printf("counter start ms=%" PRIu64 " tcp=%" PRIu64 " udp=%s", ms,
	       tcp_port, udp != NULL ? udp : "none");
	if (bulk_port != 0)
		printf(" bulk=%" PRIu64, bulk_port);
	printf("\n");
	fflush(stdout);

	for (;;) {
		/* timer, tcp, bulk listener, bulk clients (fd -1 is ignored) */
		struct pollfd pfd[3 + BULK_CLIENTS] = { { c.timer_fd, POLLIN, 0 },
							{ c.tcp_fd, POLLIN, 0 },
							{ c.bulk_fd, POLLIN, 0 } };
		uint64_t expirations;
		int i;

		for (i = 0; i < BULK_CLIENTS; i++)
			pfd[3 + i] = (struct pollfd){ c.bulk_clients[i], POLLOUT, 0 };
		if (poll(pfd, 3 + BULK_CLIENTS, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("counter: poll");
			goto out;
		}
		if (pfd[1].revents & POLLIN)
			serve_tcp(&c);
		if (pfd[2].revents & POLLIN)
			accept_bulk(&c);
		for (i = 0; i < BULK_CLIENTS; i++)
			if (pfd[3 + i].fd >= 0 && pfd[3 + i].revents)
				feed_bulk(&c, i, pfd[3 + i].revents);
		if (!(pfd[0].revents & POLLIN))
			continue;
		/*
		 * expirations > 1 means we were paused or starved: one step
		 * only (see the header), the periodic timer keeps its phase.
		 */
		if (read(c.timer_fd, &expirations, sizeof(expirations)) !=
		    sizeof(expirations))
			continue;
		c.value++;
		if (c.udp_fd >= 0)
			send_udp(&c);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (log && (now.tv_sec > next_log.tv_sec ||
			    (now.tv_sec == next_log.tv_sec &&
			     now.tv_nsec >= next_log.tv_nsec))) {
			printf("counter value=%" PRIu64 " udp_sent=%" PRIu64
			       " udp_errors=%" PRIu64 " tcp_served=%" PRIu64,
			       c.value, c.udp_sent, c.udp_errors, c.tcp_served);
			if (c.bulk_fd >= 0)
				printf(" bulk_bytes=%" PRIu64, c.bulk_bytes);
			printf("\n");
			fflush(stdout);
			next_log = now;
			next_log.tv_sec++;
		}
	}
out:
	if (c.udp_fd >= 0)
		close(c.udp_fd);
	if (c.tcp_fd >= 0)
		close(c.tcp_fd);
	if (c.timer_fd >= 0)
		close(c.timer_fd);
	if (c.bulk_fd >= 0)
		close(c.bulk_fd);
	for (int i = 0; i < BULK_CLIENTS; i++)
		if (c.bulk_clients[i] >= 0)
			close(c.bulk_clients[i]);
	return rc;
}
