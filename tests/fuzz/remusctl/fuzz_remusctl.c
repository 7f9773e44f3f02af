// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target for remusctl's readers of input from elsewhere: the input
 * is remusd's answer line (JSON, any shape) rendered by every renderer,
 * and the same bytes read as a remusd.conf.  Checked besides crashes,
 * leaks and undefined behaviour (huge, negative, NaN numbers cast to
 * integers): the rendered text has no control character but newlines
 * (nothing from remusd reaches the terminal raw), and a progress line
 * fits its buffer with a percent in 0..100.  An input starting with byte
 * 1 is a command line instead (words separated by NULs): argv is not
 * input from elsewhere, but the parser is cheap to harden (keygen: an
 * accepted line names one non-empty FILE and no option for remusd).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remusctl/cli.h"

static void check_text(const char *t, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)t[i];

		if ((c < 0x20 && c != '\n') || c == 0x7f)
			abort();
	}
}

static void render(void (*fn)(FILE *, struct json_object *, time_t), struct json_object *o)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return;
	fn(f, o, 1796150000);
	fclose(f);
	check_text(text, len);
	free(text);
}

/* Input "\x01word\0word\0...": a command line.  Parsing must not crash,
 * must fill error on failure, and an accepted command line must give a
 * request line that is one JSON object (no raw newline). */
static void check_argv(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *argv[64] = { "remusctl" };
	struct remusctl_args a;
	int argc = 1;

	if (!copy)
		return;
	memcpy(copy, data, size);
	copy[size] = 0;
	for (size_t i = 0; i < size && argc < 63; ) {
		argv[argc++] = copy + i;
		i += strlen(copy + i) + 1;
	}
	argv[argc] = NULL;
	if (remusctl_args_parse(&a, argc, argv) < 0) {
		if (!a.error[0])
			abort();
	} else if (a.cmd == REMUSCTL_KEYGEN) {
		/* Runs locally, on one non-empty FILE from argv, with no
		 * option meant for remusd; never run here (it writes). */
		if (!a.key_file || !*a.key_file || a.socket || a.config || a.timeout_s ||
		    a.domain)
			abort();
	} else if (a.cmd != REMUSCTL_HELP && a.cmd != REMUSCTL_VERSION) {
		char *req = remusctl_request(&a);
		struct json_object *o = req ? json_tokener_parse(req) : NULL;

		if (!req || strchr(req, '\n') || !o || !json_object_is_type(o, json_type_object))
			abort();
		json_object_put(o);
		free(req);
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = NULL;
	char out[256], err[128], line[512];

	if (size > 0 && data[0] == 1) {
		json_tokener_free(tok);
		check_argv(data + 1, size - 1);
		return 0;
	}
	if (tok && size < (1u << 20))
		o = json_tokener_parse_ex(tok, (const char *)data, (int)size);
	json_tokener_free(tok);
	if (o) {
		struct remusctl_progress p;
		struct json_object *arr = NULL;

		render(remusctl_render_status, o);
		render(remusctl_render_list, o);
		remusctl_progress_of(o, &p);
		if (p.known && (p.percent < 0 || p.percent > 100 || p.bytes > p.total))
			abort();
		remusctl_progress_format(line, sizeof(line), "syncing", &p, true, 30);
		check_text(line, strlen(line));
		remusctl_progress_format(line, sizeof(line), "syncing", &p, false, 0);
		check_text(line, strlen(line));
		/* Each domain of a list, as protect's wait sees it. */
		if (json_object_is_type(o, json_type_object) &&
		    json_object_object_get_ex(o, "domains", &arr) &&
		    json_object_is_type(arr, json_type_array))
			for (size_t i = 0; i < json_object_array_length(arr) && i < 64; i++)
				remusctl_progress_of(json_object_array_get_idx(arr, i), &p);
		json_object_put(o);
	}
	if (remusctl_config_ctl((const char *)data, size, out, sizeof(out), err,
				sizeof(err)) == 1 && strlen(out) >= sizeof(out))
		abort();
	return 0;
}
