/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Prometheus metrics: the text exposition format (version 0.0.4) and a
 * minimal HTTP/1.0 responder for `GET /metrics` on the loop.
 *
 * Building a page: a struct remus_prom collects text with a sticky error
 * (the first failure wins, later calls do nothing, remus_prom_finish()
 * reports it once), so a collector writes its families without checking
 * each call:
 *
 *   remus_prom_family(p, "remus_epochs_total", REMUS_PROM_COUNTER, "Committed epochs.");
 *   remus_prom_sample(p, (const char *[]){ "domain", name, NULL }, epochs);
 *   remus_prom_family(p, "remus_pause_seconds", REMUS_PROM_HISTOGRAM, "Pauses.");
 *   remus_prom_histogram(p, labels, &pause_hist);
 *
 * Names are checked ([a-zA-Z_:][a-zA-Z0-9_:]*, label names without ':'),
 * HELP text and label values escaped (\\ \" \n), so nothing a domain is
 * called can break the page.  A sample belongs to the family opened
 * last; histograms write their cumulative _bucket{le=...}, _sum, _count.
 *
 * Serving it: remus_prom_http_listen() answers each connection once and
 * closes it (HTTP/1.0, Connection: close): the request line and headers
 * are read up to REMUS_PROM_HTTP_MAX_REQUEST bytes within
 * REMUS_PROM_HTTP_TIMEOUT_MS (else the client is dropped: a slow or
 * silent client costs one small buffer for 5 s, never the loop), then
 * GET or HEAD /metrics gets 200 with the page from the collector,
 * anything else 400, 404, 405 or 431.  At most REMUS_PROM_HTTP_MAX_CLIENTS
 * at once; more are closed at accept.  The parser is a pure function
 * (remus_prom_http_parse) that tests/fuzz/prom drives.
 */
#ifndef REMUS_COMMON_PROM_H
#define REMUS_COMMON_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REMUS_PROM_HTTP_MAX_REQUEST 8192
#define REMUS_PROM_HTTP_TIMEOUT_MS 5000
#define REMUS_PROM_HTTP_MAX_CLIENTS 16
#define REMUS_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct json_object;
struct remus_loop;

enum remus_prom_type {
	REMUS_PROM_COUNTER,
	REMUS_PROM_GAUGE,
	REMUS_PROM_HISTOGRAM,
	REMUS_PROM_UNTYPED,
};

/* A page being built (fields private).  _init makes _release a no-op. */
struct remus_prom {
	char *buf;
	size_t len, cap;
	int err;                 /* sticky: first -errno */
	char family[128];        /* the open family's name */
	enum remus_prom_type type;
};

void remus_prom_init(struct remus_prom *p);
/* Frees the text (if not handed out by remus_prom_finish). Idempotent. */
void remus_prom_release(struct remus_prom *p);

/* Opens family @name (borrowed; at most 100 characters) of @type with
 * @help (borrowed; NULL: no HELP line): writes its # HELP and # TYPE
 * lines.  A bad name sets the sticky error -EINVAL. */
void remus_prom_family(struct remus_prom *p, const char *name, enum remus_prom_type type,
		       const char *help);
/* One sample of the open counter, gauge or untyped family: @labels
 * (borrowed; NULL, or name, value, name, value, ..., NULL) and @value
 * (integral values print exactly; NaN and infinities as NaN, +Inf,
 * -Inf).  Sticky -EINVAL without an open family of such a type, for a
 * bad label name, or on a histogram family. */
void remus_prom_sample(struct remus_prom *p, const char *const *labels, double value);
/* The same for a 64-bit counter (exact beyond 2^53). */
void remus_prom_sample_u64(struct remus_prom *p, const char *const *labels, uint64_t value);

/* Observations counted into buckets (upper bounds, "le"). */
struct remus_prom_hist {
	double *bounds;     /* owned, ascending, finite */
	uint64_t *counts;   /* owned, nbounds + 1 (the last: above every bound) */
	size_t nbounds;
	uint64_t count;
	double sum;
};

/* Copies @bounds[0..@n) (borrowed; strictly ascending and finite, n >= 1).
 * Returns 0, -EINVAL (bad bounds; @h is then empty but releasable) or
 * -ENOMEM. */
int remus_prom_hist_init(struct remus_prom_hist *h, const double *bounds, size_t n);
void remus_prom_hist_release(struct remus_prom_hist *h);
/* Counts @v (NaN is ignored). */
void remus_prom_hist_observe(struct remus_prom_hist *h, double v);
/*
 * @h as JSON, for a process that observes and another that serves (a
 * remusd child's status, read by remusd serve): returns (owned; NULL on
 * ENOMEM) {"bounds":[B...],"counts":[C...],"sum":S,"count":N}, counts
 * per bucket (not cumulative), one more than bounds (the last: above
 * every bound).
 */
struct json_object *remus_prom_hist_to_json(const struct remus_prom_hist *h);
/*
 * The reverse, for such an object received from elsewhere (@o borrowed):
 * checks everything (bounds as remus_prom_hist_init wants them, counts
 * non-negative integers, one more than bounds, count their sum, sum
 * finite).  Returns 0 with @h initialised (release it), -EINVAL for
 * anything else (@h empty and releasable), or -ENOMEM.
 */
int remus_prom_hist_from_json(struct remus_prom_hist *h, const struct json_object *o);

/* Writes @h as a sample of the open histogram family: NAME_bucket lines
 * (cumulative, le="BOUND" then le="+Inf"), NAME_sum, NAME_count, each
 * with @labels (as remus_prom_sample; "le" is reserved). */
void remus_prom_histogram(struct remus_prom *p, const char *const *labels,
			  const struct remus_prom_hist *h);

/* Ends the page: returns 0 with *@text (owned: free(); NUL-terminated)
 * and *@len, or the sticky -errno (nothing handed out).  @p is empty
 * afterwards either way. */
int remus_prom_finish(struct remus_prom *p, char **text, size_t *len);

/* What one request asks for (remus_prom_http_parse). */
struct remus_prom_http_req {
	int status;     /* 200, 400, 404, 405, 431, 505 */
	bool head;      /* HEAD: no body */
	size_t used;    /* bytes of the request (through the blank line) */
};

/*
 * Parses the start of a client's bytes @buf[0..@len) (borrowed; any
 * bytes).  Returns 0 when more is needed (no complete request yet, and
 * fewer than REMUS_PROM_HTTP_MAX_REQUEST bytes), or 1 with @r filled:
 * the answer to give.  A malformed request line is answered as soon as
 * it is complete; a well-formed one once the headers end (blank line,
 * CRLF or LF).  Never reads past @len.
 */
int remus_prom_http_parse(const char *buf, size_t len, struct remus_prom_http_req *r);

/* Fills @p with the metrics of now (on the loop, per GET).  An error
 * left sticky in @p makes the answer 500. */
typedef void remus_prom_collect_cb(void *opaque, struct remus_prom *p);

struct remus_prom_http;

/* Listens on TCP @host (borrowed; NULL or "": any address) @port (0:
 * any; the bound one in *@bound if not NULL).  Returns 0 with *@out
 * (owned: remus_prom_http_free) or -errno. */
int remus_prom_http_listen(struct remus_loop *loop, const char *host, uint16_t port,
			   remus_prom_collect_cb *collect, void *opaque,
			   struct remus_prom_http **out, uint16_t *bound);
/* Closes the socket and every client.  NULL ok. */
void remus_prom_http_free(struct remus_prom_http *h);

#endif
