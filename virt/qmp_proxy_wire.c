// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The QMP proxy's text handling (see qmp_proxy_wire.h).
 *
 * A client's line is checked the way QEMU's monitor checks it (an object
 * with a string "execute", optional object "arguments" and any "id", no
 * other member) so a client sees the same answers through the proxy as
 * from QEMU; what passes is rebuilt from the parsed value rather than
 * forwarded as bytes, without the id (libvirt adds its own and refuses a
 * second).  The answers going back are rebuilt the same way from what
 * libvirt returned, with the client's id put back.
 */
#include "virt/qmp_proxy_wire.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/buf.h"

#define MAX_EVENT_NAME 128

void remus_qmp_proxy_cmd_release(struct remus_qmp_proxy_cmd *c)
{
	free(c->name);
	json_object_put(c->id);
	free(c->forward);
	memset(c, 0, sizeof(*c));
}

int remus_qmp_proxy_next_line(struct remus_buf *in, size_t max_line, char **line,
			      size_t *len)
{
	uint8_t *p = remus_buf_data(in);
	size_t n = remus_buf_len(in);
	uint8_t *nl = p ? memchr(p, '\n', n < max_line ? n : max_line) : NULL;

	if (!nl)
		return n >= max_line ? -EMSGSIZE : 0;
	*nl = '\0';
	*line = (char *)p;
	*len = (size_t)(nl - p);
	/* Consuming only moves the start: the bytes stay until the next
	 * append, which is what "valid until @in changes" promises. */
	remus_buf_consume(in, *len + 1);
	return 1;
}

static bool only_space(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

/* Parses exactly one JSON value from @p/@n.  Returns it (owned) or NULL
 * with *@why. */
static struct json_object *parse_value(const char *p, size_t n, const char **why)
{
	struct json_tokener *tok;
	struct json_object *o = NULL;
	enum json_tokener_error jerr;
	size_t end;

	if (n > (size_t)INT32_MAX - 1) {
		*why = "line too long";
		return NULL;
	}
	tok = json_tokener_new();
	if (!tok) {
		*why = "out of memory";
		return NULL;
	}
	o = json_tokener_parse_ex(tok, p, (int)n);
	jerr = json_tokener_get_error(tok);
	if (jerr == json_tokener_continue) {
		/* A bare scalar ends only at a delimiter: give it one. */
		struct json_object *o2 = json_tokener_parse_ex(tok, " ", 1);

		json_object_put(o);
		o = o2;
		jerr = json_tokener_get_error(tok);
		if (jerr == json_tokener_continue) {
			json_object_put(o);
			o = NULL;
			*why = "incomplete JSON";
			goto out;
		}
		end = n;
	} else {
		end = json_tokener_get_parse_end(tok);
	}
	if (jerr != json_tokener_success) {
		json_object_put(o);
		o = NULL;
		*why = json_tokener_error_desc(jerr);
		goto out;
	}
	if (end > n || !only_space(p + end, n - end)) {
		json_object_put(o);
		o = NULL;
		*why = "trailing data after the JSON value";
	} else if (!o) {
		/* json-c's null is a NULL object. */
		*why = "message is not a JSON object";
	}
out:
	json_tokener_free(tok);
	return o;
}

static void refuse(struct remus_qmp_proxy_cmd *out, const char *desc)
{
	out->kind = REMUS_QMP_PROXY_REFUSE;
	out->error_desc = desc;
}

int remus_qmp_proxy_parse_command(const char *line, size_t len,
				  struct remus_qmp_proxy_cmd *out, const char **why)
{
	struct json_object *o = NULL, *v, *exec = NULL, *args = NULL, *fwd = NULL;
	const char *s;
	int rc;

	memset(out, 0, sizeof(*out));
	if (only_space(line, len))
		return 1;
	o = parse_value(line, len, why);
	if (!o) {
		rc = strcmp(*why, "out of memory") ? -EBADMSG : -ENOMEM;
		goto out;
	}
	if (!json_object_is_type(o, json_type_object)) {
		*why = "message is not a JSON object";
		rc = -EBADMSG;
		goto out;
	}
	if (json_object_object_get_ex(o, "id", &v))
		out->id = json_object_get(v);
	{
		json_object_object_foreach(o, key, val) {
			(void)val;
			if (strcmp(key, "execute") && strcmp(key, "arguments") &&
			    strcmp(key, "id")) {
				refuse(out, strcmp(key, "exec-oob") ?
				       "QMP input has an unexpected member" :
				       "out-of-band execution is not offered by this monitor");
				rc = 0;
				goto out;
			}
		}
	}
	if (!json_object_object_get_ex(o, "execute", &exec)) {
		refuse(out, "QMP input lacks member 'execute'");
		rc = 0;
		goto out;
	}
	if (!json_object_is_type(exec, json_type_string)) {
		refuse(out, "QMP input member 'execute' must be a string");
		rc = 0;
		goto out;
	}
	s = json_object_get_string(exec);
	if (json_object_object_get_ex(o, "arguments", &args) &&
	    !json_object_is_type(args, json_type_object)) {
		refuse(out, "QMP input member 'arguments' must be an object");
		rc = 0;
		goto out;
	}
	out->name = strdup(s);
	if (!out->name) {
		rc = -ENOMEM;
		goto out;
	}
	if (!strcmp(s, "qmp_capabilities")) {
		struct json_object *en;

		out->kind = REMUS_QMP_PROXY_CAPABILITIES;
		if (args && json_object_object_get_ex(args, "enable", &en) &&
		    (!json_object_is_type(en, json_type_array) ||
		     json_object_array_length(en) > 0))
			refuse(out, "no capability can be enabled through this monitor");
		rc = 0;
		goto out;
	}
	fwd = json_object_new_object();
	if (!fwd || json_object_object_add(fwd, "execute", json_object_new_string(s)) < 0 ||
	    (args && json_object_object_add(fwd, "arguments", json_object_get(args)) < 0)) {
		rc = -ENOMEM;
		goto out;
	}
	s = json_object_to_json_string_ext(fwd, JSON_C_TO_STRING_PLAIN |
					   JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!s || !(out->forward = strdup(s))) {
		rc = -ENOMEM;
		goto out;
	}
	out->kind = REMUS_QMP_PROXY_FORWARD;
	rc = 0;
out:
	if (rc == -ENOMEM)
		*why = "out of memory";
	if (rc < 0)
		remus_qmp_proxy_cmd_release(out);
	json_object_put(fwd);
	json_object_put(o);
	return rc;
}

/* @o as one line with a newline (owned), or NULL. */
static char *to_line(struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t n;
	char *line;

	if (!s)
		return NULL;
	n = strlen(s);
	line = malloc(n + 2);
	if (!line)
		return NULL;
	memcpy(line, s, n);
	line[n] = '\n';
	line[n + 1] = '\0';
	return line;
}

static int add_id(struct json_object *o, struct json_object *id)
{
	if (!id)
		return 0;
	return json_object_object_add(o, "id", json_object_get(id));
}

char *remus_qmp_proxy_build_reply(const char *reply, struct json_object *id,
				  const char **why)
{
	struct json_object *in = NULL, *out = NULL, *v;
	char *line = NULL;

	in = parse_value(reply, strlen(reply), why);
	if (!in)
		goto out;
	if (!json_object_is_type(in, json_type_object)) {
		*why = "the monitor's reply is not a JSON object";
		goto out;
	}
	out = json_object_new_object();
	if (!out) {
		*why = "out of memory";
		goto out;
	}
	if (json_object_object_get_ex(in, "return", &v)) {
		if (json_object_object_add(out, "return", json_object_get(v)) < 0)
			goto oom;
	} else if (json_object_object_get_ex(in, "error", &v) &&
		   json_object_is_type(v, json_type_object)) {
		if (json_object_object_add(out, "error", json_object_get(v)) < 0)
			goto oom;
	} else {
		*why = "the monitor's reply has neither 'return' nor 'error'";
		goto out;
	}
	if (add_id(out, id) < 0 || !(line = to_line(out)))
		goto oom;
	goto out;
oom:
	*why = "out of memory";
out:
	json_object_put(in);
	json_object_put(out);
	return line;
}

char *remus_qmp_proxy_build_error(const char *cls, const char *desc, struct json_object *id)
{
	struct json_object *o = json_object_new_object(), *e = json_object_new_object();
	char *line = NULL;

	if (!o || !e) {
		json_object_put(e);
		goto out;
	}
	if (json_object_object_add(e, "class", json_object_new_string(cls)) < 0 ||
	    json_object_object_add(e, "desc", json_object_new_string(desc)) < 0 ||
	    json_object_object_add(o, "error", e) < 0) {
		json_object_put(e);
		goto out;
	}
	if (add_id(o, id) < 0)
		goto out;
	line = to_line(o);
out:
	json_object_put(o);
	return line;
}

char *remus_qmp_proxy_build_empty_return(struct json_object *id)
{
	struct json_object *o = json_object_new_object();
	char *line = NULL;

	if (!o || json_object_object_add(o, "return", json_object_new_object()) < 0 ||
	    add_id(o, id) < 0)
		goto out;
	line = to_line(o);
out:
	json_object_put(o);
	return line;
}

static bool plain_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > MAX_EVENT_NAME)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

char *remus_qmp_proxy_build_event(const char *event, long long seconds, unsigned micros,
				  const char *details)
{
	struct json_object *o = NULL, *data = NULL, *ts = NULL;
	const char *why;
	char *line = NULL;

	if (!event || !plain_name(event) || micros >= 1000000u || seconds < 0)
		return NULL;
	if (details) {
		data = parse_value(details, strlen(details), &why);
		if (!data || !json_object_is_type(data, json_type_object))
			goto out;
	}
	o = json_object_new_object();
	ts = json_object_new_object();
	if (!o || !ts ||
	    json_object_object_add(o, "event", json_object_new_string(event)) < 0)
		goto out;
	if (data) {
		if (json_object_object_add(o, "data", data) < 0)
			goto out;
		data = NULL;
	}
	if (json_object_object_add(ts, "seconds", json_object_new_int64(seconds)) < 0 ||
	    json_object_object_add(ts, "microseconds", json_object_new_int64(micros)) < 0 ||
	    json_object_object_add(o, "timestamp", ts) < 0)
		goto out;
	ts = NULL;
	line = to_line(o);
out:
	json_object_put(data);
	json_object_put(ts);
	json_object_put(o);
	return line;
}

char *remus_qmp_proxy_build_greeting(const char *reply, const char **why)
{
	struct json_object *in = NULL, *g = NULL, *qmp = NULL, *v;
	char *line = NULL;

	in = parse_value(reply, strlen(reply), why);
	if (!in)
		goto out;
	if (!json_object_is_type(in, json_type_object) ||
	    !json_object_object_get_ex(in, "return", &v) ||
	    !json_object_is_type(v, json_type_object)) {
		*why = "query-version did not return an object";
		goto out;
	}
	g = json_object_new_object();
	qmp = json_object_new_object();
	if (!g || !qmp ||
	    json_object_object_add(qmp, "version", json_object_get(v)) < 0 ||
	    json_object_object_add(qmp, "capabilities", json_object_new_array()) < 0 ||
	    json_object_object_add(g, "QMP", qmp) < 0) {
		*why = "out of memory";
		goto out;
	}
	qmp = NULL;
	line = to_line(g);
	if (!line)
		*why = "out of memory";
out:
	json_object_put(qmp);
	json_object_put(g);
	json_object_put(in);
	return line;
}
