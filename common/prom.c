// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Prometheus text exposition and its HTTP/1.0 responder (see prom.h).
 *
 * One client's life, all on the loop, all bounded:
 *
 *   accept (over MAX_CLIENTS: close) -> read into a MAX_REQUEST buffer
 *   -> remus_prom_http_parse says "answer N" -> collect, write the answer
 *   -> shutdown(SHUT_WR) -> read and drop until EOF -> close
 *   (the timer drops the client at any point after TIMEOUT_MS)
 *
 * Draining before close matters: closing a socket with unread bytes
 * (headers after the blank line, a pipelined request) sends a RST that
 * can destroy the answer in flight at the client.
 */
#include "common/prom.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/sock.h"

/* ---- the text format ---- */

void remus_prom_init(struct remus_prom *p)
{
	memset(p, 0, sizeof(*p));
}

void remus_prom_release(struct remus_prom *p)
{
	free(p->buf);
	remus_prom_init(p);
}

static void put(struct remus_prom *p, const char *s, size_t n)
{
	if (p->err)
		return;
	if (p->len + n + 1 > p->cap) {
		size_t cap = p->cap ? p->cap : 4096;
		char *b;

		while (cap < p->len + n + 1)
			cap *= 2;
		b = realloc(p->buf, cap);
		if (!b) {
			p->err = -ENOMEM;
			return;
		}
		p->buf = b;
		p->cap = cap;
	}
	memcpy(p->buf + p->len, s, n);
	p->len += n;
	p->buf[p->len] = 0;
}

static void puts_(struct remus_prom *p, const char *s)
{
	put(p, s, strlen(s));
}

static void printf_(struct remus_prom *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void printf_(struct remus_prom *p, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		if (!p->err)
			p->err = -EINVAL;
		return;
	}
	put(p, tmp, (size_t)n);
}

static void fail(struct remus_prom *p, int err)
{
	if (!p->err)
		p->err = err;
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* (metric), without ':' for labels. */
static bool valid_name(const char *s, bool label)
{
	if (!s || !*s)
		return false;
	for (size_t i = 0; s[i]; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			  (!label && c == ':') || (i > 0 && c >= '0' && c <= '9');

		if (!ok)
			return false;
	}
	return true;
}

/* Escapes \ and newline (HELP), and " too (label values). */
static void put_escaped(struct remus_prom *p, const char *s, bool quote)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n"
				: quote && *s == '"' ? "\\\"" : NULL;

		if (!esc)
			continue;
		put(p, run, (size_t)(s - run));
		puts_(p, esc);
		run = s + 1;
	}
	put(p, run, (size_t)(s - run));
}

void remus_prom_family(struct remus_prom *p, const char *name, enum remus_prom_type type,
		       const char *help)
{
	static const char *const types[] = { "counter", "gauge", "histogram", "untyped" };

	if (p->err)
		return;
	if (!valid_name(name, false) || strlen(name) > 100 || (unsigned)type > 3) {
		fail(p, -EINVAL);
		return;
	}
	snprintf(p->family, sizeof(p->family), "%s", name);
	p->type = type;
	if (help) {
		printf_(p, "# HELP %s ", name);
		put_escaped(p, help, false);
		puts_(p, "\n");
	}
	printf_(p, "# TYPE %s %s\n", name, types[type]);
}

/* {a="x",b="y"} plus, if @le, le="LE"; nothing for no labels. */
static void put_labels(struct remus_prom *p, const char *const *labels, const char *le)
{
	bool any = false;

	for (size_t i = 0; labels && labels[i]; i += 2) {
		if (!labels[i + 1] || !valid_name(labels[i], true) || strcmp(labels[i], "le") == 0 ||
		    strncmp(labels[i], "__", 2) == 0) {
			fail(p, -EINVAL);
			return;
		}
		puts_(p, any ? "," : "{");
		puts_(p, labels[i]);
		puts_(p, "=\"");
		put_escaped(p, labels[i + 1], true);
		puts_(p, "\"");
		any = true;
	}
	if (le) {
		puts_(p, any ? "," : "{");
		printf_(p, "le=\"%s\"", le);
		any = true;
	}
	if (any)
		puts_(p, "}");
}

/* The shortest of %.15g..%.17g that reads back as @v: 0.005, not
 * 0.0050000000000000001; integral values below 2^53 without exponent. */
static void fmt_double(char *buf, size_t len, double v)
{
	if (isnan(v)) {
		snprintf(buf, len, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == floor(v) && fabs(v) < 9007199254740992.0) {
		snprintf(buf, len, "%.0f", v);
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

static void put_value(struct remus_prom *p, double v)
{
	char b[40];

	fmt_double(b, sizeof(b), v);
	puts_(p, b);
}

static bool open_family(struct remus_prom *p, bool histogram)
{
	if (p->err)
		return false;
	if (!p->family[0] || (p->type == REMUS_PROM_HISTOGRAM) != histogram) {
		fail(p, -EINVAL);
		return false;
	}
	return true;
}

void remus_prom_sample(struct remus_prom *p, const char *const *labels, double value)
{
	if (!open_family(p, false))
		return;
	puts_(p, p->family);
	put_labels(p, labels, NULL);
	puts_(p, " ");
	put_value(p, value);
	puts_(p, "\n");
}

void remus_prom_sample_u64(struct remus_prom *p, const char *const *labels, uint64_t value)
{
	if (!open_family(p, false))
		return;
	puts_(p, p->family);
	put_labels(p, labels, NULL);
	printf_(p, " %" PRIu64 "\n", value);
}

int remus_prom_hist_init(struct remus_prom_hist *h, const double *bounds, size_t n)
{
	memset(h, 0, sizeof(*h));
	if (n == 0 || n > 1000)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
			return -EINVAL;
	h->bounds = malloc(n * sizeof(*h->bounds));
	h->counts = calloc(n + 1, sizeof(*h->counts));
	if (!h->bounds || !h->counts) {
		remus_prom_hist_release(h);
		return -ENOMEM;
	}
	memcpy(h->bounds, bounds, n * sizeof(*bounds));
	h->nbounds = n;
	return 0;
}

void remus_prom_hist_release(struct remus_prom_hist *h)
{
	free(h->bounds);
	free(h->counts);
	memset(h, 0, sizeof(*h));
}

void remus_prom_hist_observe(struct remus_prom_hist *h, double v)
{
	size_t i = 0;

	if (isnan(v) || !h->counts)
		return;
	while (i < h->nbounds && v > h->bounds[i])
		i++;
	h->counts[i]++;
	h->count++;
	h->sum += v;
}

struct json_object *remus_prom_hist_to_json(const struct remus_prom_hist *h)
{
	struct json_object *o = json_object_new_object(), *b = json_object_new_array(),
			   *c = json_object_new_array();
	bool ok = o && b && c;

	char num[40];

	/* Numbers written as the page writes them (0.1, not 0.10000000000000001). */
	for (size_t i = 0; ok && i < h->nbounds; i++) {
		fmt_double(num, sizeof(num), h->bounds[i]);
		ok = json_object_array_add(b, json_object_new_double_s(h->bounds[i], num)) == 0;
	}
	for (size_t i = 0; ok && h->counts && i <= h->nbounds; i++)
		ok = json_object_array_add(c, json_object_new_int64((int64_t)h->counts[i])) == 0;
	if (!ok) {
		json_object_put(o);
		json_object_put(b);
		json_object_put(c);
		return NULL;
	}
	json_object_object_add(o, "bounds", b);
	json_object_object_add(o, "counts", c);
	fmt_double(num, sizeof(num), h->sum);
	json_object_object_add(o, "sum", isfinite(h->sum) ? json_object_new_double_s(h->sum, num)
							  : json_object_new_double(0));
	json_object_object_add(o, "count", json_object_new_int64((int64_t)h->count));
	return o;
}

int remus_prom_hist_from_json(struct remus_prom_hist *h, const struct json_object *o)
{
	struct json_object *b = NULL, *c = NULL, *sum = NULL, *count = NULL;
	double bounds[1000];
	uint64_t total = 0;
	size_t n;
	int rc;

	memset(h, 0, sizeof(*h));
	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "bounds", &b) || !json_object_is_type(b, json_type_array) ||
	    !json_object_object_get_ex(o, "counts", &c) || !json_object_is_type(c, json_type_array) ||
	    !json_object_object_get_ex(o, "sum", &sum) ||
	    !json_object_object_get_ex(o, "count", &count) ||
	    !json_object_is_type(count, json_type_int) ||
	    !(json_object_is_type(sum, json_type_double) || json_object_is_type(sum, json_type_int)))
		return -EINVAL;
	n = json_object_array_length(b);
	if (n == 0 || n > sizeof(bounds) / sizeof(bounds[0]) ||
	    json_object_array_length(c) != n + 1 || !isfinite(json_object_get_double(sum)) ||
	    json_object_get_int64(count) < 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		struct json_object *x = json_object_array_get_idx(b, i);

		if (!(json_object_is_type(x, json_type_double) || json_object_is_type(x, json_type_int)))
			return -EINVAL;
		bounds[i] = json_object_get_double(x);
	}
	rc = remus_prom_hist_init(h, bounds, n); /* checks the bounds */
	if (rc < 0)
		return rc;
	for (size_t i = 0; i <= n; i++) {
		struct json_object *x = json_object_array_get_idx(c, i);
		int64_t v = json_object_is_type(x, json_type_int) ? json_object_get_int64(x) : -1;

		if (v < 0 || total + (uint64_t)v < total) {
			remus_prom_hist_release(h);
			return -EINVAL;
		}
		h->counts[i] = (uint64_t)v;
		total += (uint64_t)v;
	}
	if (total != (uint64_t)json_object_get_int64(count)) {
		remus_prom_hist_release(h);
		return -EINVAL;
	}
	h->count = total;
	h->sum = json_object_get_double(sum);
	return 0;
}

void remus_prom_histogram(struct remus_prom *p, const char *const *labels,
			  const struct remus_prom_hist *h)
{
	uint64_t cum = 0;
	char le[40];

	if (!open_family(p, true))
		return;
	for (size_t i = 0; i <= h->nbounds && h->counts; i++) {
		cum += h->counts[i];
		if (i < h->nbounds)
			fmt_double(le, sizeof(le), h->bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		printf_(p, "%s_bucket", p->family);
		put_labels(p, labels, le);
		printf_(p, " %" PRIu64 "\n", cum);
	}
	printf_(p, "%s_sum", p->family);
	put_labels(p, labels, NULL);
	puts_(p, " ");
	put_value(p, h->sum);
	puts_(p, "\n");
	printf_(p, "%s_count", p->family);
	put_labels(p, labels, NULL);
	printf_(p, " %" PRIu64 "\n", h->count);
}

int remus_prom_finish(struct remus_prom *p, char **text, size_t *len)
{
	int rc = p->err;

	if (rc == 0 && !p->buf)
		put(p, "", 0); /* an empty page is a page */
	rc = p->err;
	if (rc == 0) {
		*text = p->buf;
		*len = p->len;
		p->buf = NULL;
	}
	remus_prom_release(p);
	return rc;
}

/* ---- the request parser ---- */

static const char *find_nl(const char *s, const char *end)
{
	return memchr(s, '\n', (size_t)(end - s));
}

/* "METHOD SP TARGET SP HTTP/x.y" in @s[0..@n) (no CR/LF). */
static int request_line(const char *s, size_t n, struct remus_prom_http_req *r)
{
	const char *e = s + n, *sp1 = memchr(s, ' ', n), *sp2, *tgt, *q;
	size_t mlen, tlen, vlen;

	for (const char *c = s; c < e; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return 400;
	if (!sp1)
		return 400;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(e - sp1 - 1));
	if (!sp2 || memchr(sp2 + 1, ' ', (size_t)(e - sp2 - 1)))
		return 400;
	mlen = (size_t)(sp1 - s);
	tgt = sp1 + 1;
	tlen = (size_t)(sp2 - tgt);
	vlen = (size_t)(e - sp2 - 1);
	if (mlen == 0 || tlen == 0 || *tgt != '/')
		return 400;
	for (size_t i = 0; i < mlen; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return 400;
	if (vlen != 8 || memcmp(sp2 + 1, "HTTP/", 5) != 0)
		return 400;
	if (memcmp(sp2 + 6, "1.0", 3) != 0 && memcmp(sp2 + 6, "1.1", 3) != 0)
		return 505;
	r->head = mlen == 4 && memcmp(s, "HEAD", 4) == 0;
	if (!r->head && !(mlen == 3 && memcmp(s, "GET", 3) == 0))
		return 405;
	q = memchr(tgt, '?', tlen);
	if (q)
		tlen = (size_t)(q - tgt);
	if (tlen != 8 || memcmp(tgt, "/metrics", 8) != 0)
		return 404;
	return 200;
}

int remus_prom_http_parse(const char *buf, size_t len, struct remus_prom_http_req *r)
{
	const char *end = buf + len, *nl = find_nl(buf, end), *line;
	size_t n;
	bool full = len >= REMUS_PROM_HTTP_MAX_REQUEST;

	memset(r, 0, sizeof(*r));
	if (!nl) {
		if (!full)
			return 0;
		r->status = 431;
		r->used = len;
		return 1;
	}
	n = (size_t)(nl - buf);
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	r->status = request_line(buf, n, r);
	if (r->status == 400 || r->status == 505) {
		r->head = false;
		r->used = (size_t)(nl + 1 - buf);
		return 1;
	}
	/* Headers: up to an empty line. */
	for (line = nl + 1; line < end; line = nl + 1) {
		nl = find_nl(line, end);
		if (!nl)
			break;
		if (nl == line || (nl == line + 1 && *line == '\r')) {
			r->used = (size_t)(nl + 1 - buf);
			return 1;
		}
	}
	if (!full)
		return 0;
	r->status = 431;
	r->head = false;
	r->used = len;
	return 1;
}

/* ---- the responder ---- */

struct client {
	struct remus_prom_http *http;
	int fd;
	struct remus_buf in, out;
	bool answered;          /* the answer is in @out (or written) */
	bool shut;              /* SHUT_WR done: drain until EOF */
	struct remus_timer timer;
	struct client *next;
};

struct remus_prom_http {
	struct remus_loop *loop;
	int fd;
	remus_prom_collect_cb *collect;
	void *opaque;
	struct client *clients;
	unsigned nclients;
};

static void client_free(struct client *c)
{
	struct client **pp;

	for (pp = &c->http->clients; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	c->http->nclients--;
	remus_loop_del_fd(c->http->loop, c->fd);
	remus_timer_disarm(&c->timer);
	close(c->fd);
	remus_buf_release(&c->in);
	remus_buf_release(&c->out);
	free(c);
}

static void on_client_timeout(struct remus_loop *loop, void *opaque)
{
	client_free(opaque);
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 505: return "HTTP Version Not Supported";
	default: return "Internal Server Error";
	}
}

/* Builds the whole answer in c->out. */
static int build_answer(struct client *c, const struct remus_prom_http_req *r)
{
	char head[256], *body = NULL, msg[128];
	size_t blen = 0;
	int status = r->status, rc, n;

	if (status == 200) {
		struct remus_prom p;

		remus_prom_init(&p);
		c->http->collect(c->http->opaque, &p);
		rc = remus_prom_finish(&p, &body, &blen);
		if (rc < 0) {
			remus_warn("metrics", "collecting the metrics failed: %s", strerror(-rc));
			status = 500;
		}
	}
	if (status != 200) {
		snprintf(msg, sizeof(msg), "%d %s: %s\n", status, reason(status),
			 status == 404 ? "the metrics are at /metrics"
			 : status == 405 ? "only GET and HEAD" : "see the server's log");
		body = strdup(msg);
		if (!body)
			return -ENOMEM;
		blen = strlen(body);
	}
	n = snprintf(head, sizeof(head),
		     "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		     "Connection: close\r\n%s\r\n", status, reason(status),
		     status == 200 ? REMUS_PROM_CONTENT_TYPE : "text/plain; charset=utf-8",
		     blen, status == 405 ? "Allow: GET, HEAD\r\n" : "");
	rc = remus_buf_append(&c->out, head, (size_t)n);
	if (rc == 0 && !(r->head && status == 200))
		rc = remus_buf_append(&c->out, body, blen);
	free(body);
	return rc;
}

static void on_client(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct client *c = opaque;
	struct remus_prom_http_req r;
	ssize_t n;

	if (c->shut) {
		char drop[4096];

		n = read(fd, drop, sizeof(drop));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			client_free(c);
		return;
	}
	if (c->answered) {
		n = remus_buf_write_fd(&c->out, fd);
		if (n < 0 && n != -EAGAIN) {
			client_free(c);
			return;
		}
		if (remus_buf_len(&c->out) == 0) {
			shutdown(fd, SHUT_WR);
			c->shut = true;
			remus_loop_mod_fd(loop, fd, REMUS_EV_READ);
		}
		return;
	}
	n = remus_buf_read_fd(&c->in, fd, REMUS_PROM_HTTP_MAX_REQUEST);
	if (n == -EAGAIN)
		return;
	if (n <= 0 && n != -EMSGSIZE) {
		client_free(c); /* gone before asking */
		return;
	}
	if (remus_prom_http_parse((const char *)remus_buf_data(&c->in), remus_buf_len(&c->in),
				  &r) == 0)
		return;
	if (build_answer(c, &r) < 0) {
		client_free(c);
		return;
	}
	c->answered = true;
	remus_loop_mod_fd(loop, fd, REMUS_EV_WRITE);
}

static void on_accept(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct remus_prom_http *h = opaque;
	struct client *c;
	int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (cfd < 0)
		return;
	if (h->nclients >= REMUS_PROM_HTTP_MAX_CLIENTS || !(c = calloc(1, sizeof(*c)))) {
		close(cfd);
		return;
	}
	c->http = h;
	c->fd = cfd;
	remus_buf_init(&c->in, REMUS_PROM_HTTP_MAX_REQUEST);
	remus_buf_init(&c->out, 0);
	if (remus_loop_add_fd(loop, cfd, REMUS_EV_READ, on_client, c) < 0) {
		close(cfd);
		free(c);
		return;
	}
	remus_timer_init(&c->timer, loop, on_client_timeout, c);
	remus_timer_arm(&c->timer, REMUS_PROM_HTTP_TIMEOUT_MS);
	c->next = h->clients;
	h->clients = c;
	h->nclients++;
}

int remus_prom_http_listen(struct remus_loop *loop, const char *host, uint16_t port,
			   remus_prom_collect_cb *collect, void *opaque,
			   struct remus_prom_http **out, uint16_t *bound)
{
	struct remus_prom_http *h = calloc(1, sizeof(*h));
	uint16_t b = 0;
	int rc;

	if (!h)
		return -ENOMEM;
	h->loop = loop;
	h->collect = collect;
	h->opaque = opaque;
	h->fd = remus_tcp_listen(host && *host ? host : NULL, port, 16, &b);
	if (h->fd < 0) {
		rc = h->fd;
		free(h);
		return rc;
	}
	rc = remus_loop_add_fd(loop, h->fd, REMUS_EV_READ, on_accept, h);
	if (rc < 0) {
		close(h->fd);
		free(h);
		return rc;
	}
	if (bound)
		*bound = b;
	*out = h;
	return 0;
}

void remus_prom_http_free(struct remus_prom_http *h)
{
	if (!h)
		return;
	while (h->clients)
		client_free(h->clients);
	remus_loop_del_fd(h->loop, h->fd);
	close(h->fd);
	free(h);
}
