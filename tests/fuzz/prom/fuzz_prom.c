// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target for common/prom.c.  The input is what a client sends the
 * metrics responder: remus_prom_http_parse must never read past it, and
 * its decision must be final (a prefix that already gets an answer gets
 * the same answer with more bytes behind it), with `used` inside the
 * input.  The same bytes (up to a NUL) are also a domain name and a HELP
 * text on a page: escaping must keep the page at exactly its three
 * lines, whatever the bytes.  An input starting with '{' is also a
 * histogram as JSON (remus_prom_hist_from_json: what a remusd child's
 * status carries to remusd serve).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/prom.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_parse(const char *buf, size_t size)
{
	struct remus_prom_http_req full, part;
	int rc = remus_prom_http_parse(buf, size, &full);
	size_t step = size / 64 + 1;

	if (rc == 1 && (full.used > size || full.status < 200 || full.status > 505))
		abort();
	if (rc == 0 && size >= REMUS_PROM_HTTP_MAX_REQUEST)
		abort();
	for (size_t k = 0; k < size; k += step) {
		if (remus_prom_http_parse(buf, k, &part) != 1)
			continue;
		if (rc != 1 || part.status != full.status || part.head != full.head)
			abort();
	}
}

static void check_page(const char *s)
{
	struct remus_prom p;
	char *text = NULL;
	size_t len = 0, lines = 0;

	remus_prom_init(&p);
	remus_prom_family(&p, "remus_fuzz", REMUS_PROM_GAUGE, s);
	remus_prom_sample(&p, (const char *[]){ "domain", s, NULL }, (double)strlen(s));
	if (remus_prom_finish(&p, &text, &len) != 0)
		abort();
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	if (lines != 3 || strncmp(text, "# HELP remus_fuzz ", 18) != 0)
		abort();
	free(text);
}

/* A histogram as a child's status carries it: accepted only whole, and
 * then written as exactly its bucket, sum and count lines. */
static void check_hist_json(const char *buf, size_t size)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = tok ? json_tokener_parse_ex(tok, buf, (int)size) : NULL;
	struct remus_prom_hist h;
	struct remus_prom p;
	char *text = NULL;
	size_t len = 0, lines = 0;

	json_tokener_free(tok);
	if (remus_prom_hist_from_json(&h, o) == 0) {
		remus_prom_init(&p);
		remus_prom_family(&p, "h", REMUS_PROM_HISTOGRAM, NULL);
		remus_prom_histogram(&p, (const char *[]){ "domain", "d", NULL }, &h);
		if (remus_prom_finish(&p, &text, &len) != 0)
			abort();
		for (size_t i = 0; i < len; i++)
			lines += text[i] == '\n';
		if (lines != 1 + h.nbounds + 1 + 2)
			abort();
		free(text);
	} else if (h.counts || h.bounds) {
		abort();
	}
	remus_prom_hist_release(&h);
	json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly @size bytes: ASan sees any read past it. */
	char *buf = malloc(size ? size : 1), *s;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	check_parse(buf, size);
	if (size > 0 && size < 65536 && buf[0] == '{')
		check_hist_json(buf, size);
	free(buf);
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	check_page(s);
	free(s);
	return 0;
}
