// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for common/prom.c: the exposition text (golden pages for
 * counters, gauges and histograms; escaping of HELP text and label
 * values; names checked; the sticky error), the request parser (every
 * answer, incremental input, bounds), and the responder on a real loop
 * and TCP socket (answers, HEAD, errors, the slow-client timeout, the
 * client limit, a failing collector).
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/loop.h"
#include "common/prom.h"
#include "common/sock.h"

static char *page(struct remus_prom *p)
{
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(remus_prom_finish(p, &text, &len), 0);
	assert_int_equal(strlen(text), len);
	return text;
}

static void test_counter_gauge(void **state)
{
	struct remus_prom p;
	char *t;

	remus_prom_init(&p);
	remus_prom_family(&p, "remus_epochs_total", REMUS_PROM_COUNTER,
			  "Committed epochs; a \\ and a\nnewline.");
	remus_prom_sample_u64(&p, (const char *[]){ "domain", "web1", NULL }, 18446744073709551615ull);
	remus_prom_sample(&p, (const char *[]){ "domain", "we\"b\\2\n", "role", "primary", NULL },
			  3);
	remus_prom_family(&p, "remus_lag_seconds", REMUS_PROM_GAUGE, NULL);
	remus_prom_sample(&p, NULL, 0.005);
	remus_prom_sample(&p, NULL, NAN);
	remus_prom_sample(&p, NULL, -INFINITY);
	remus_prom_sample(&p, NULL, 1e300);
	remus_prom_sample(&p, NULL, -2);
	t = page(&p);
	assert_string_equal(t,
		"# HELP remus_epochs_total Committed epochs; a \\\\ and a\\nnewline.\n"
		"# TYPE remus_epochs_total counter\n"
		"remus_epochs_total{domain=\"web1\"} 18446744073709551615\n"
		"remus_epochs_total{domain=\"we\\\"b\\\\2\\n\",role=\"primary\"} 3\n"
		"# TYPE remus_lag_seconds gauge\n"
		"remus_lag_seconds 0.005\n"
		"remus_lag_seconds NaN\n"
		"remus_lag_seconds -Inf\n"
		"remus_lag_seconds 1e+300\n"
		"remus_lag_seconds -2\n");
	free(t);
	/* An empty page is fine. */
	remus_prom_init(&p);
	t = page(&p);
	assert_string_equal(t, "");
	free(t);
}

static void test_histogram(void **state)
{
	static const double b[] = { 0.001, 0.01, 0.1 };
	struct remus_prom_hist h;
	struct remus_prom p;
	char *t;

	assert_int_equal(remus_prom_hist_init(&h, b, 3), 0);
	remus_prom_hist_observe(&h, 0.0005);
	remus_prom_hist_observe(&h, 0.001); /* le is inclusive */
	remus_prom_hist_observe(&h, 0.05);
	remus_prom_hist_observe(&h, 7);
	remus_prom_hist_observe(&h, NAN);   /* ignored */
	remus_prom_init(&p);
	remus_prom_family(&p, "remus_pause_seconds", REMUS_PROM_HISTOGRAM, "Pauses.");
	remus_prom_histogram(&p, (const char *[]){ "domain", "web1", NULL }, &h);
	remus_prom_histogram(&p, NULL, &h);
	t = page(&p);
	assert_string_equal(t,
		"# HELP remus_pause_seconds Pauses.\n"
		"# TYPE remus_pause_seconds histogram\n"
		"remus_pause_seconds_bucket{domain=\"web1\",le=\"0.001\"} 2\n"
		"remus_pause_seconds_bucket{domain=\"web1\",le=\"0.01\"} 2\n"
		"remus_pause_seconds_bucket{domain=\"web1\",le=\"0.1\"} 3\n"
		"remus_pause_seconds_bucket{domain=\"web1\",le=\"+Inf\"} 4\n"
		"remus_pause_seconds_sum{domain=\"web1\"} 7.0515\n"
		"remus_pause_seconds_count{domain=\"web1\"} 4\n"
		"remus_pause_seconds_bucket{le=\"0.001\"} 2\n"
		"remus_pause_seconds_bucket{le=\"0.01\"} 2\n"
		"remus_pause_seconds_bucket{le=\"0.1\"} 3\n"
		"remus_pause_seconds_bucket{le=\"+Inf\"} 4\n"
		"remus_pause_seconds_sum 7.0515\n"
		"remus_pause_seconds_count 4\n");
	free(t);
	remus_prom_hist_release(&h);
	remus_prom_hist_release(&h); /* idempotent */

	assert_int_equal(remus_prom_hist_init(&h, b, 0), -EINVAL);
	assert_int_equal(remus_prom_hist_init(&h, (const double[]){ 1, 1 }, 2), -EINVAL);
	assert_int_equal(remus_prom_hist_init(&h, (const double[]){ 2, 1 }, 2), -EINVAL);
	assert_int_equal(remus_prom_hist_init(&h, (const double[]){ 1, INFINITY }, 2), -EINVAL);
	remus_prom_hist_observe(&h, 1); /* an empty histogram ignores it */
	remus_prom_hist_release(&h);
}

/* A histogram travels as JSON (a child's status) and comes back whole;
 * anything malformed from the other process is refused. */
static void test_hist_json(void **state)
{
	static const double b[] = { 0.001, 0.01, 0.1 };
	static const char *const bad[] = {
		"[]", "{}", "{\"bounds\":[1],\"counts\":[0,0],\"sum\":0}",
		"{\"bounds\":[],\"counts\":[0],\"sum\":0,\"count\":0}",
		"{\"bounds\":[2,1],\"counts\":[0,0,0],\"sum\":0,\"count\":0}",
		"{\"bounds\":[1,1],\"counts\":[0,0,0],\"sum\":0,\"count\":0}",
		"{\"bounds\":[1,\"2\"],\"counts\":[0,0,0],\"sum\":0,\"count\":0}",
		"{\"bounds\":[1],\"counts\":[0],\"sum\":0,\"count\":0}",
		"{\"bounds\":[1],\"counts\":[0,0,0],\"sum\":0,\"count\":0}",
		"{\"bounds\":[1],\"counts\":[-1,1],\"sum\":0,\"count\":0}",
		"{\"bounds\":[1],\"counts\":[1.5,0],\"sum\":0,\"count\":1}",
		"{\"bounds\":[1],\"counts\":[1,1],\"sum\":0,\"count\":3}",
		"{\"bounds\":[1],\"counts\":[1,1],\"sum\":1e400,\"count\":2}",
		"{\"bounds\":[1],\"counts\":[1,1],\"sum\":\"2\",\"count\":2}",
		"{\"bounds\":[1e400],\"counts\":[1,1],\"sum\":2,\"count\":2}",
		"{\"bounds\":[1],\"counts\":[9223372036854775807,9223372036854775807],"
		"\"sum\":2,\"count\":2}",
	};
	struct remus_prom_hist h, back;
	struct json_object *o;
	struct remus_prom p1, p2;
	char *t1, *t2;

	assert_int_equal(remus_prom_hist_init(&h, b, 3), 0);
	remus_prom_hist_observe(&h, 0.0005);
	remus_prom_hist_observe(&h, 0.05);
	remus_prom_hist_observe(&h, 3);
	o = remus_prom_hist_to_json(&h);
	assert_non_null(o);
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			    "{\"bounds\":[0.001,0.01,0.1],\"counts\":[1,0,1,1],"
			    "\"sum\":3.0505,\"count\":3}");
	assert_int_equal(remus_prom_hist_from_json(&back, o), 0);
	json_object_put(o);
	/* The same page from the original and from the copy. */
	remus_prom_init(&p1);
	remus_prom_init(&p2);
	remus_prom_family(&p1, "h", REMUS_PROM_HISTOGRAM, NULL);
	remus_prom_family(&p2, "h", REMUS_PROM_HISTOGRAM, NULL);
	remus_prom_histogram(&p1, NULL, &h);
	remus_prom_histogram(&p2, NULL, &back);
	t1 = page(&p1);
	t2 = page(&p2);
	assert_string_equal(t1, t2);
	free(t1);
	free(t2);
	remus_prom_hist_release(&back);
	remus_prom_hist_release(&h);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = json_tokener_parse(bad[i]);
		if (remus_prom_hist_from_json(&back, o) != -EINVAL)
			fail_msg("accepted %s", bad[i]);
		assert_null(back.counts);
		remus_prom_hist_release(&back);
		json_object_put(o);
	}
	assert_int_equal(remus_prom_hist_from_json(&back, NULL), -EINVAL);
}

/* Each misuse sets the sticky error, which finish reports. */
static void test_errors(void **state)
{
	static const double b[] = { 1 };
	struct remus_prom_hist h;
	struct remus_prom p;
	char *t = (char *)"untouched";
	size_t len = 7;

#define EXPECT_EINVAL(...) do {                                         \
		remus_prom_init(&p);                                    \
		__VA_ARGS__;                                            \
		assert_int_equal(remus_prom_finish(&p, &t, &len), -EINVAL); \
		assert_string_equal(t, "untouched");                    \
		assert_int_equal(len, 7);                               \
	} while (0)

	assert_int_equal(remus_prom_hist_init(&h, b, 1), 0);
	EXPECT_EINVAL(remus_prom_family(&p, "9lives", REMUS_PROM_GAUGE, NULL));
	EXPECT_EINVAL(remus_prom_family(&p, "a-b", REMUS_PROM_GAUGE, NULL));
	EXPECT_EINVAL(remus_prom_family(&p, "", REMUS_PROM_GAUGE, NULL));
	EXPECT_EINVAL(remus_prom_sample(&p, NULL, 1));
	EXPECT_EINVAL(remus_prom_family(&p, "g", REMUS_PROM_GAUGE, NULL);
		      remus_prom_sample(&p, (const char *[]){ "a:b", "x", NULL }, 1));
	EXPECT_EINVAL(remus_prom_family(&p, "g", REMUS_PROM_GAUGE, NULL);
		      remus_prom_sample(&p, (const char *[]){ "le", "x", NULL }, 1));
	EXPECT_EINVAL(remus_prom_family(&p, "g", REMUS_PROM_GAUGE, NULL);
		      remus_prom_sample(&p, (const char *[]){ "__name__", "x", NULL }, 1));
	EXPECT_EINVAL(remus_prom_family(&p, "g", REMUS_PROM_GAUGE, NULL);
		      remus_prom_histogram(&p, NULL, &h));
	EXPECT_EINVAL(remus_prom_family(&p, "h", REMUS_PROM_HISTOGRAM, NULL);
		      remus_prom_sample(&p, NULL, 1));
	/* The first error wins and later calls write nothing. */
	EXPECT_EINVAL(remus_prom_family(&p, "bad name", REMUS_PROM_GAUGE, NULL);
		      remus_prom_family(&p, "good", REMUS_PROM_GAUGE, NULL);
		      remus_prom_sample(&p, NULL, 1); assert_int_equal(p.len, 0));
	{
		char longname[120];

		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = 0;
		EXPECT_EINVAL(remus_prom_family(&p, longname, REMUS_PROM_GAUGE, NULL));
	}
	remus_prom_hist_release(&h);
	/* release without finish frees the text (ASan checks). */
	remus_prom_init(&p);
	remus_prom_family(&p, "g", REMUS_PROM_GAUGE, "x");
	remus_prom_release(&p);
	remus_prom_release(&p);
}

struct case_ {
	const char *in;
	int rc, status;
	bool head;
};

static void test_parse(void **state)
{
	static const struct case_ cases[] = {
		{ "GET /metrics HTTP/1.0\r\n\r\n", 1, 200, false },
		{ "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", 1, 200, false },
		{ "GET /metrics?x=1 HTTP/1.1\n\n", 1, 200, false },
		{ "HEAD /metrics HTTP/1.0\r\n\r\n", 1, 200, true },
		{ "GET / HTTP/1.0\r\n\r\n", 1, 404, false },
		{ "GET /metricsx HTTP/1.0\r\n\r\n", 1, 404, false },
		{ "POST /metrics HTTP/1.0\r\n\r\n", 1, 405, false },
		{ "GET /metrics HTTP/2.0\r\n", 1, 505, false },
		{ "GET /metrics\r\n", 1, 400, false },          /* HTTP/0.9 */
		{ "GET  /metrics HTTP/1.0\r\n", 1, 400, false }, /* two blanks */
		{ "get /metrics HTTP/1.0\r\n", 1, 400, false },
		{ "GET metrics HTTP/1.0\r\n", 1, 400, false },
		{ "GET /met\x01rics HTTP/1.0\r\n", 1, 400, false },
		{ "GET /metrics HTTP/1.0 x\r\n", 1, 400, false },
		{ "\r\n", 1, 400, false },
		{ "GET /metrics HTTP/1.0\r\nHost: x\r\n", 0, 0, false }, /* more headers */
		{ "GET /metrics HTTP/1.0", 0, 0, false },
		{ "", 0, 0, false },
	};
	struct remus_prom_http_req r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct case_ *c = &cases[i];
		int rc = remus_prom_http_parse(c->in, strlen(c->in), &r);

		if (rc != c->rc || (rc && (r.status != c->status || r.head != c->head)))
			fail_msg("'%s': rc %d status %d head %d", c->in, rc, r.status, r.head);
		if (rc == 1 && c->status == 200)
			assert_int_equal(r.used, strlen(c->in));
	}
	/* Bytes after the blank line are not the request's. */
	assert_int_equal(remus_prom_http_parse("GET /metrics HTTP/1.0\n\nGET", 26, &r), 1);
	assert_int_equal(r.used, 23);

	/* Byte by byte: nothing until the blank line. */
	const char *req = "GET /metrics HTTP/1.1\r\nUser-Agent: Prometheus\r\n\r\n";
	for (size_t n = 0; n < strlen(req); n++)
		assert_int_equal(remus_prom_http_parse(req, n, &r), 0);
	assert_int_equal(remus_prom_http_parse(req, strlen(req), &r), 1);
	assert_int_equal(r.status, 200);

	/* Too long: a request line, or headers, that never end. */
	static char big[REMUS_PROM_HTTP_MAX_REQUEST + 10];
	memset(big, 'a', sizeof(big));
	assert_int_equal(remus_prom_http_parse(big, REMUS_PROM_HTTP_MAX_REQUEST - 1, &r), 0);
	assert_int_equal(remus_prom_http_parse(big, REMUS_PROM_HTTP_MAX_REQUEST, &r), 1);
	assert_int_equal(r.status, 431);
	memcpy(big, "GET /metrics HTTP/1.0\r\n", 23);
	for (size_t i = 23; i + 4 < sizeof(big); i += 4)
		memcpy(big + i, "h\r\n", 3), big[i + 3] = 'x';
	assert_int_equal(remus_prom_http_parse(big, REMUS_PROM_HTTP_MAX_REQUEST, &r), 1);
	assert_int_equal(r.status, 431);
}

/* ---- the responder ---- */

struct srv {
	struct remus_loop *loop;
	struct remus_prom_http *http;
	uint16_t port;
	int collected;
	bool fail;
};

static void collect(void *opaque, struct remus_prom *p)
{
	struct srv *s = opaque;

	s->collected++;
	remus_prom_family(p, "remus_up", REMUS_PROM_GAUGE, "Up.");
	remus_prom_sample(p, NULL, 1);
	if (s->fail)
		remus_prom_family(p, "bad name", REMUS_PROM_GAUGE, NULL);
}

static int setup(void **state)
{
	struct srv *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	assert_int_equal(remus_loop_new(&s->loop), 0);
	assert_int_equal(remus_prom_http_listen(s->loop, "127.0.0.1", 0, collect, s, &s->http,
						&s->port), 0);
	assert_true(s->port > 0);
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	struct srv *s = *state;

	remus_prom_http_free(s->http);
	remus_loop_free(s->loop);
	free(s);
	return 0;
}

static int connect_to(struct srv *s)
{
	int fd = remus_tcp_connect("127.0.0.1", s->port, true);

	assert_true(fd >= 0);
	return fd;
}

/* Runs the loop until @fd reaches EOF (or @max_ms); returns what it read. */
static char *read_all(struct srv *s, int fd, unsigned max_ms)
{
	static char buf[65536];
	size_t n = 0;
	uint64_t end = remus_now_ms() + max_ms;

	while (remus_now_ms() < end) {
		ssize_t r;

		remus_loop_run_once(s->loop, 10);
		r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r == 0)
			break;
		if (r < 0 && errno == ECONNRESET)
			fail_msg("the connection was reset");
		if (r > 0)
			n += (size_t)r;
	}
	buf[n] = 0;
	return buf;
}

static char *ask(struct srv *s, const char *req)
{
	int fd = connect_to(s);
	char *out;

	remus_loop_run_once(s->loop, 10); /* accept */
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	out = read_all(s, fd, 3000);
	close(fd);
	return out;
}

static void test_http_answers(void **state)
{
	struct srv *s = *state;
	const char *body = "# HELP remus_up Up.\n# TYPE remus_up gauge\nremus_up 1\n";
	char want[512];
	char *a;

	snprintf(want, sizeof(want), "HTTP/1.0 200 OK\r\nContent-Type: %s\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		 REMUS_PROM_CONTENT_TYPE, strlen(body), body);
	a = ask(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_string_equal(a, want);
	/* Extra bytes after the request are drained, not answered with a RST. */
	a = ask(s, "GET /metrics HTTP/1.0\r\n\r\nGET /metrics HTTP/1.0\r\n\r\n");
	assert_string_equal(a, want);
	a = ask(s, "HEAD /metrics HTTP/1.0\r\n\r\n");
	assert_non_null(strstr(a, "HTTP/1.0 200 OK\r\n"));
	assert_non_null(strstr(a, "Content-Length: 53\r\n"));
	assert_null(strstr(a, "remus_up 1"));
	a = ask(s, "GET / HTTP/1.0\r\n\r\n");
	assert_non_null(strstr(a, "HTTP/1.0 404 Not Found\r\n"));
	assert_non_null(strstr(a, "the metrics are at /metrics"));
	a = ask(s, "DELETE /metrics HTTP/1.0\r\n\r\n");
	assert_non_null(strstr(a, "HTTP/1.0 405 Method Not Allowed\r\n"));
	assert_non_null(strstr(a, "Allow: GET, HEAD\r\n"));
	a = ask(s, "hello\n");
	assert_non_null(strstr(a, "HTTP/1.0 400 Bad Request\r\n"));
	assert_int_equal(s->collected, 3);
	s->fail = true;
	a = ask(s, "GET /metrics HTTP/1.0\r\n\r\n");
	assert_non_null(strstr(a, "HTTP/1.0 500 Internal Server Error\r\n"));
	assert_null(strstr(a, "remus_up"));
}

static void test_http_too_long(void **state)
{
	struct srv *s = *state;
	static char big[REMUS_PROM_HTTP_MAX_REQUEST + 100];
	int fd = connect_to(s);
	char *a;

	memset(big, 'a', sizeof(big));
	remus_loop_run_once(s->loop, 10);
	assert_int_equal(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
	a = read_all(s, fd, 3000);
	assert_non_null(strstr(a, "HTTP/1.0 431 Request Header Fields Too Large\r\n"));
	close(fd);
}

static void test_http_slow_client(void **state)
{
	struct srv *s = *state;
	int fd = connect_to(s);
	uint64_t t0 = remus_now_ms(), dt;
	char *a;

	remus_loop_run_once(s->loop, 10);
	assert_int_equal(write(fd, "GET /metr", 9), 9);
	a = read_all(s, fd, REMUS_PROM_HTTP_TIMEOUT_MS + 3000);
	dt = remus_now_ms() - t0;
	/* Dropped without an answer, after the timeout and not much later. */
	assert_string_equal(a, "");
	assert_true(dt >= REMUS_PROM_HTTP_TIMEOUT_MS - 50);
	assert_true(dt < REMUS_PROM_HTTP_TIMEOUT_MS + 2500);
	close(fd);
	assert_int_equal(s->collected, 0);
}

static void test_http_client_limit(void **state)
{
	struct srv *s = *state;
	int fds[REMUS_PROM_HTTP_MAX_CLIENTS + 1], extra;
	char *a;

	for (int i = 0; i < REMUS_PROM_HTTP_MAX_CLIENTS; i++) {
		fds[i] = connect_to(s);
		remus_loop_run_once(s->loop, 10);
	}
	/* One too many: closed at once. */
	extra = connect_to(s);
	a = read_all(s, extra, 2000);
	assert_string_equal(a, "");
	close(extra);
	/* One of them leaves (half a request): a new client is served. */
	assert_int_equal(write(fds[0], "GET", 3), 3);
	close(fds[0]);
	for (int i = 0; i < 5; i++)
		remus_loop_run_once(s->loop, 10);
	a = ask(s, "GET /metrics HTTP/1.0\r\n\r\n");
	assert_non_null(strstr(a, "HTTP/1.0 200 OK"));
	/* The rest are freed with the server (teardown; ASan checks). */
	for (int i = 1; i < REMUS_PROM_HTTP_MAX_CLIENTS; i++)
		close(fds[i]);
}

static void test_http_listen_fails(void **state)
{
	struct srv *s = *state;
	struct remus_prom_http *h = NULL;

	/* The port is taken. */
	assert_true(remus_prom_http_listen(s->loop, "127.0.0.1", s->port, collect, s, &h,
					   NULL) < 0);
	assert_null(h);
	assert_int_equal(remus_prom_http_listen(s->loop, "no.such.host.invalid", 0, collect, s,
						&h, NULL), -EADDRNOTAVAIL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_gauge),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_hist_json),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_parse),
		cmocka_unit_test_setup_teardown(test_http_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http_slow_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http_client_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http_listen_fails, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
