// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target for remusctl's readers of input from elsewhere: the input
 * is remusd's answer line (JSON, any shape) rendered by every renderer,
 * and the same bytes read as a remusd.conf.  Checked besides crashes,
 * leaks and undefined behaviour (huge, negative, NaN numbers cast to
 * integers): the rendered text has no control character but newlines
 * (nothing from remusd reaches the terminal raw), and a progress line
 * fits its buffer with a percent in 0..100.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = NULL;
	char out[256], err[128], line[512];

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
