// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target for the QMP proxy's text handling (virt/qmp_proxy_wire.h),
 * everything of the proxy that reads untrusted bytes.  Byte 0 picks the
 * line limit (16 + 4 * b bytes) and byte 1 the size of the chunks the
 * rest arrives in, as a client's reads would split it.  Each complete line
 * is parsed as a client command; the same bytes are then also taken as
 * libvirt's words (a monitor reply, query-version's reply, an event's
 * details), which come from QEMU through libvirt and are no more trusted.
 *
 * Checked besides crashes and leaks: every line built for the client is
 * one JSON object on one line; a forwarded command never carries an id;
 * a reply carries the command's id exactly when it had one.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/buf.h"
#include "virt/qmp_proxy_wire.h"

static void check_line(const char *line, struct json_object *id)
{
	struct json_object *o, *v;
	size_t n;

	if (!line)
		return;
	n = strlen(line);
	if (n == 0 || line[n - 1] != '\n' || memchr(line, '\n', n - 1))
		abort();
	o = json_tokener_parse(line);
	if (!o || !json_object_is_type(o, json_type_object))
		abort();
	if (json_object_object_get_ex(o, "id", &v) != (id != NULL))
		abort();
	json_object_put(o);
}

static void as_libvirt(const char *text, struct json_object *id)
{
	const char *why = NULL;
	char *s;

	s = remus_qmp_proxy_build_reply(text, id, &why);
	if (!s && !why)
		abort();
	check_line(s, id);
	free(s);
	s = remus_qmp_proxy_build_greeting(text, &why);
	check_line(s, NULL);
	free(s);
	s = remus_qmp_proxy_build_event("MIGRATION", 1, 2, text);
	check_line(s, NULL);
	free(s);
}

static void one_line(const char *line, size_t len)
{
	struct remus_qmp_proxy_cmd c;
	const char *why = NULL;
	char *s;
	int rc;

	rc = remus_qmp_proxy_parse_command(line, len, &c, &why);
	if (rc < 0) {
		if (!why)
			abort();
		as_libvirt(line, NULL);
		return;
	}
	if (rc == 1)
		return;
	switch (c.kind) {
	case REMUS_QMP_PROXY_FORWARD: {
		struct json_object *f = json_tokener_parse(c.forward), *v;

		if (!f || json_object_object_get_ex(f, "id", &v) ||
		    !json_object_object_get_ex(f, "execute", &v))
			abort();
		json_object_put(f);
		break;
	}
	case REMUS_QMP_PROXY_REFUSE:
		s = remus_qmp_proxy_build_error("GenericError", c.error_desc, c.id);
		check_line(s, c.id);
		free(s);
		break;
	case REMUS_QMP_PROXY_CAPABILITIES:
		s = remus_qmp_proxy_build_empty_return(c.id);
		check_line(s, c.id);
		free(s);
		break;
	}
	as_libvirt(line, c.id);
	s = remus_qmp_proxy_build_event(c.name ? c.name : "", 0, 0, NULL);
	check_line(s, NULL);
	free(s);
	remus_qmp_proxy_cmd_release(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct remus_buf in;
	size_t max_line, chunk, off = 2;
	char *line;
	size_t len;
	int r;

	if (size < 2)
		return 0;
	max_line = 16 + 4 * (size_t)data[0];
	chunk = 1 + data[1];
	remus_buf_init(&in, max_line + 256);
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;

		if (remus_buf_append(&in, data + off, n) < 0)
			break;
		off += n;
		while ((r = remus_qmp_proxy_next_line(&in, max_line, &line, &len)) == 1) {
			if (strlen(line) != len && memchr(line, '\0', len) == NULL)
				abort();
			one_line(line, len);
		}
		if (r < 0)
			break;
	}
	remus_buf_release(&in);
	return 0;
}
