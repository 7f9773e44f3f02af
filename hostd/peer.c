// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Peer protocol messages (see peer.h).  A line is untrusted: it is
 * bounded, parsed strictly as one JSON object, and every field is
 * checked for type and range before it is copied; the XML is only
 * carried here (virt/ reads it), bounded by the line.  Unknown keys are
 * refused, so the two hosts notice a version skew at once.
 */
#include "hostd/peer.h"
#include "hostd/field.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostd/request.h"

static const char *const req_names[] = {
	[REMUS_HOSTD_PEER_CREATE_STANDBY] = "create-standby",
	[REMUS_HOSTD_PEER_DESTROY_STANDBY] = "destroy-standby",
	[REMUS_HOSTD_PEER_FAILOVER] = "failover",
	[REMUS_HOSTD_PEER_PING] = "ping",
	[REMUS_HOSTD_PEER_SET_INTERVAL] = "set-interval",
	[REMUS_HOSTD_PEER_QUERY] = "query",
};
#define NREQ (sizeof(req_names) / sizeof(req_names[0]))

const char *remus_hostd_peer_req_name(enum remus_hostd_peer_req r)
{
	return (unsigned)r < NREQ ? req_names[r] : "?";
}

void remus_hostd_peer_msg_release(struct remus_hostd_peer_msg *m)
{
	free(m->xml);
	m->xml = NULL;
}

/* Refuses keys of @o not in @allowed (NULL-terminated). */
static int only_keys(struct json_object *o, const char *const *allowed, const char *what,
		     char *err, size_t errlen)
{
	json_object_object_foreach(o, key, val) {
		const char *const *a;

		(void)val;
		for (a = allowed; *a; a++)
			if (strcmp(*a, key) == 0)
				break;
		if (!*a)
			return remus_hostd_fail(err, errlen, "%s: unknown key \"%.40s\"", what, key);
	}
	return 0;
}

static int parse_options(struct json_object *o, struct remus_hostd_peer_options *opt,
			 char *err, size_t errlen)
{
	static const char *const allowed[] = { "interval_ms", "pause_budget_ms", "heartbeat_ms",
					       "miss", "netbuffer", "reprotect", NULL };
	char buf[16];
	uint64_t v;
	int rc;

	if (!json_object_is_type(o, json_type_object))
		return remus_hostd_fail(err, errlen, "\"options\" is not an object");
	if ((rc = only_keys(o, allowed, "options", err, errlen)))
		return rc;
	if ((rc = remus_hostd_json_u64(o, "interval_ms", 10, 3600000, &v, err, errlen)))
		return rc;
	opt->interval_ms = (unsigned)v;
	if ((rc = remus_hostd_json_u64(o, "pause_budget_ms", 1, 60000, &v, err, errlen)))
		return rc;
	opt->pause_budget_ms = (unsigned)v;
	if ((rc = remus_hostd_json_u64(o, "heartbeat_ms", 10, 60000, &v, err, errlen)))
		return rc;
	opt->heartbeat_ms = (unsigned)v;
	if ((rc = remus_hostd_json_u64(o, "miss", 1, 1000, &v, err, errlen)))
		return rc;
	opt->miss = (unsigned)v;
	if ((rc = remus_hostd_json_str(o, "netbuffer", buf, sizeof(buf), true, err, errlen)))
		return rc;
	if (strcmp(buf, "qemu") == 0)
		opt->netbuffer = REMUS_HOSTD_NB_QEMU;
	else if (strcmp(buf, "plug") == 0)
		opt->netbuffer = REMUS_HOSTD_NB_PLUG;
	else if (strcmp(buf, "off") == 0)
		opt->netbuffer = REMUS_HOSTD_NB_OFF;
	else
		return remus_hostd_fail(err, errlen, "\"netbuffer\" is not qemu, plug or off");
	if ((rc = remus_hostd_json_str(o, "reprotect", buf, sizeof(buf), true, err, errlen)))
		return rc;
	if (strcmp(buf, "auto") == 0)
		opt->reprotect = REMUS_HOSTD_REPROTECT_AUTO;
	else if (strcmp(buf, "manual") == 0)
		opt->reprotect = REMUS_HOSTD_REPROTECT_MANUAL;
	else
		return remus_hostd_fail(err, errlen, "\"reprotect\" is not auto or manual");
	return 0;
}

static int parse_create(struct json_object *o, struct remus_hostd_peer_msg *m, char *err,
			size_t errlen)
{
	static const char *const allowed[] = { "req", "id", "domain", "uuid", "xml", "disks",
					       "options", "primary", "primary_port", "takeover", NULL };
	struct json_object *v, *d;
	uint64_t n;
	size_t i;
	int rc;

	if ((rc = only_keys(o, allowed, "create-standby", err, errlen)))
		return rc;
	if ((rc = remus_hostd_json_str(o, "uuid", m->uuid, sizeof(m->uuid), true, err, errlen)))
		return rc;
	if (!remus_hostd_uuid_ok(m->uuid))
		return remus_hostd_fail(err, errlen, "\"uuid\" is not a UUID");
	if (!json_object_object_get_ex(o, "xml", &v) || !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0)
		return remus_hostd_fail(err, errlen, "\"xml\" is missing or not a non-empty string (the "
			    "domain's live XML)");
	if ((size_t)json_object_get_string_len(v) != strlen(json_object_get_string(v)))
		return remus_hostd_fail(err, errlen, "\"xml\" has a NUL byte");
	m->xml = strdup(json_object_get_string(v));
	if (!m->xml)
		return -ENOMEM;
	if (!json_object_object_get_ex(o, "disks", &v) || !json_object_is_type(v, json_type_array))
		return remus_hostd_fail(err, errlen, "\"disks\" is missing or not an array");
	if (json_object_array_length(v) > REMUS_HOSTD_MAX_DISKS)
		return remus_hostd_fail(err, errlen, "more than %d disks", REMUS_HOSTD_MAX_DISKS);
	m->ndisks = (unsigned)json_object_array_length(v);
	for (i = 0; i < m->ndisks; i++) {
		static const char *const dkeys[] = { "target", "format", "size", NULL };
		struct remus_hostd_peer_disk *disk = &m->disks[i];

		d = json_object_array_get_idx(v, i);
		if (!json_object_is_type(d, json_type_object))
			return remus_hostd_fail(err, errlen, "disk %zu is not an object", i);
		if ((rc = only_keys(d, dkeys, "disk", err, errlen)) ||
		    (rc = remus_hostd_json_str(d, "target", disk->target, sizeof(disk->target),
					       true, err, errlen)) ||
		    (rc = remus_hostd_json_str(d, "format", disk->format, sizeof(disk->format),
					       true, err, errlen)) ||
		    (rc = remus_hostd_json_u64(d, "size", 0, INT64_MAX, &n, err, errlen)))
			return rc;
		disk->size = n;
	}
	if (!json_object_object_get_ex(o, "options", &v))
		return remus_hostd_fail(err, errlen, "\"options\" is missing");
	if ((rc = parse_options(v, &m->options, err, errlen)))
		return rc;
	if ((rc = remus_hostd_json_str(o, "primary", m->primary, sizeof(m->primary),
				       true, err, errlen)))
		return rc;
	if ((rc = remus_hostd_json_u64(o, "primary_port", 1, 65535, &n, err, errlen)))
		return rc;
	m->primary_port = (uint16_t)n;
	/* Optional (a peer from before the fence rule): 0. */
	if (json_object_object_get_ex(o, "takeover", NULL) &&
	    (rc = remus_hostd_json_u64(o, "takeover", 0, INT64_MAX, &m->takeover, err, errlen)))
		return rc;
	return 0;
}

static int parse_request_body(struct json_object *o, struct remus_hostd_peer_msg *m,
			      const char *name, char *err, size_t errlen)
{
	static const char *const dom_keys[] = { "req", "id", "domain", NULL };
	static const char *const ping_keys[] = { "req", "id", NULL };
	static const char *const set_keys[] = { "req", "id", "domain", "interval_ms",
						"pause_budget_ms", NULL };
	uint64_t v;
	int rc;

	if ((rc = remus_hostd_json_u64(o, "id", 0, INT64_MAX, &v, err, errlen)))
		return rc;
	m->id = v;
	if (m->req == REMUS_HOSTD_PEER_PING)
		return only_keys(o, ping_keys, name, err, errlen);
	if ((rc = remus_hostd_json_str(o, "domain", m->domain, sizeof(m->domain),
				       true, err, errlen)))
		return rc;
	if (!remus_hostd_domain_name_ok(m->domain))
		return remus_hostd_fail(err, errlen, "\"domain\" is not a domain name remusd uses");
	if (m->req == REMUS_HOSTD_PEER_CREATE_STANDBY)
		return parse_create(o, m, err, errlen);
	if (m->req == REMUS_HOSTD_PEER_SET_INTERVAL) {
		/* The ranges of create-standby's options and of the records. */
		if ((rc = only_keys(o, set_keys, name, err, errlen)) ||
		    (rc = remus_hostd_json_u64(o, "interval_ms", 10, 3600000, &v, err, errlen)))
			return rc;
		m->options.interval_ms = (unsigned)v;
		if ((rc = remus_hostd_json_u64(o, "pause_budget_ms", 1, 60000, &v, err, errlen)))
			return rc;
		m->options.pause_budget_ms = (unsigned)v;
		return 0;
	}
	return only_keys(o, dom_keys, name, err, errlen);
}

static int parse_request(struct json_object *o, struct remus_hostd_peer_msg *m, char *err,
			 size_t errlen)
{
	char name[32], tmp[512];
	size_t i;
	int rc;

	m->kind = REMUS_HOSTD_PEER_REQUEST;
	if ((rc = remus_hostd_json_str(o, "req", name, sizeof(name), true, err, errlen)))
		return rc;
	for (i = 0; i < NREQ; i++)
		if (strcmp(req_names[i], name) == 0)
			break;
	if (i == NREQ)
		return remus_hostd_fail(err, errlen, "unknown request '%s' (a newer peer? this remusd "
			    "knows create-standby, destroy-standby, failover, ping, set-interval, query)", name);
	m->req = (enum remus_hostd_peer_req)i;
	rc = parse_request_body(o, m, name, err, errlen);
	if (rc == -EINVAL && strncmp(err, name, strlen(name)) != 0) {
		snprintf(tmp, sizeof(tmp), "%s", err);
		remus_hostd_fail(err, errlen, "%s: %s", name, tmp);
	}
	return rc;
}

static int parse_answer(struct json_object *o, struct remus_hostd_peer_msg *m, char *err,
			size_t errlen)
{
	static const char *const ok_keys[] = { "id", "ok", "repl_port", "role", "takeover", NULL };
	static const char *const err_keys[] = { "id", "ok", "error", "code", "takeover", NULL };
	struct json_object *v;
	char code[32];
	uint64_t n;
	int rc;

	m->kind = REMUS_HOSTD_PEER_ANSWER;
	m->code = -1;
	if ((rc = remus_hostd_json_u64(o, "id", 0, INT64_MAX, &n, err, errlen)))
		return rc;
	m->id = n;
	if (!json_object_object_get_ex(o, "ok", &v) || !json_object_is_type(v, json_type_boolean))
		return remus_hostd_fail(err, errlen, "answer: \"ok\" is missing or not true/false");
	m->ok = json_object_get_boolean(v);
	if (m->ok) {
		if ((rc = only_keys(o, ok_keys, "answer", err, errlen)))
			return rc;
		if (json_object_object_get_ex(o, "repl_port", &v)) {
			if ((rc = remus_hostd_json_u64(o, "repl_port", 1, 65535, &n, err, errlen)))
				return rc;
			m->repl_port = (uint16_t)n;
		}
		/* query's answer: "role" and "takeover" together, or neither. */
		if (json_object_object_get_ex(o, "role", NULL) !=
		    json_object_object_get_ex(o, "takeover", NULL))
			return remus_hostd_fail(err, errlen, "answer: \"role\" and \"takeover\" "
						"come together");
		if (!json_object_object_get_ex(o, "role", NULL))
			return 0;
		if ((rc = remus_hostd_json_str(o, "role", code, sizeof(code), true, err, errlen)) ||
		    (rc = remus_hostd_json_u64(o, "takeover", 0, INT64_MAX, &m->takeover, err,
					       errlen)))
			return rc;
		if (strcmp(code, "primary") == 0)
			m->runs_primary = true;
		else if (strcmp(code, "standby") == 0)
			m->holds_standby = true;
		else
			return remus_hostd_fail(err, errlen, "answer: \"role\" is not primary or "
						"standby");
		return 0;
	}
	if ((rc = only_keys(o, err_keys, "answer", err, errlen)) ||
	    (rc = remus_hostd_json_str(o, "error", m->error, sizeof(m->error),
				       true, err, errlen)) ||
	    (rc = remus_hostd_json_str(o, "code", code, sizeof(code), true, err, errlen)))
		return rc;
	m->code = remus_hostd_code_parse(code);
	if (m->code < 0)
		return remus_hostd_fail(err, errlen, "answer: unknown code '%s'", code);
	if (json_object_object_get_ex(o, "takeover", NULL)) {
		if ((rc = remus_hostd_json_u64(o, "takeover", 0, INT64_MAX, &m->takeover, err,
					       errlen)))
			return rc;
		m->runs_primary = true;
	}
	return 0;
}

int remus_hostd_peer_parse(const char *line, size_t len, struct remus_hostd_peer_msg *m,
			   char *err, size_t errlen)
{
	struct json_tokener *tok = NULL;
	struct json_object *o = NULL, *v;
	char word[32];
	uint64_t n;
	int rc;

	memset(m, 0, sizeof(*m));
	m->code = -1;
	if (len > REMUS_HOSTD_PEER_MAX_LINE)
		return remus_hostd_fail(err, errlen, "a line longer than %u bytes", REMUS_HOSTD_PEER_MAX_LINE);
	if (memchr(line, 0, len))
		return remus_hostd_fail(err, errlen, "a NUL byte in the line");
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, line, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len || !json_object_is_type(o, json_type_object)) {
		rc = remus_hostd_fail(err, errlen, "not one JSON object (is this a remusd serve peer port?)");
		goto out;
	}
	if (json_object_object_get_ex(o, "hello", &v)) {
		static const char *const keys[] = { "hello", "version", "host", NULL };

		m->kind = REMUS_HOSTD_PEER_HELLO;
		if ((rc = remus_hostd_json_str(o, "hello", word, sizeof(word), true, err, errlen)))
			goto out;
		if (strcmp(word, "remus-peer") != 0) {
			rc = remus_hostd_fail(err, errlen, "hello: '%s' is not remus-peer", word);
			goto out;
		}
		if ((rc = remus_hostd_json_u64(o, "version", 1, UINT32_MAX, &n, err, errlen)))
			goto out;
		m->version = (unsigned)n;
		if ((rc = remus_hostd_json_str(o, "host", m->host, sizeof(m->host),
					       true, err, errlen)) ||
		    (rc = only_keys(o, keys, "hello", err, errlen)))
			goto out;
	} else if (json_object_object_get_ex(o, "req", &v)) {
		rc = parse_request(o, m, err, errlen);
	} else if (json_object_object_get_ex(o, "ok", &v)) {
		rc = parse_answer(o, m, err, errlen);
	} else {
		rc = remus_hostd_fail(err, errlen, "neither a hello, a request nor an answer");
	}
out:
	json_object_put(o);
	json_tokener_free(tok);
	return rc;
}

char *remus_hostd_peer_format(const struct remus_hostd_peer_msg *m)
{
	struct json_object *o = json_object_new_object(), *a, *d, *opt;
	char *s = NULL;
	unsigned i;

	if (!o)
		return NULL;
	switch (m->kind) {
	case REMUS_HOSTD_PEER_HELLO:
		json_object_object_add(o, "hello", json_object_new_string("remus-peer"));
		json_object_object_add(o, "version", json_object_new_int64(m->version));
		json_object_object_add(o, "host", json_object_new_string(m->host));
		break;
	case REMUS_HOSTD_PEER_REQUEST:
		json_object_object_add(o, "req",
				       json_object_new_string(remus_hostd_peer_req_name(m->req)));
		json_object_object_add(o, "id", json_object_new_int64((int64_t)m->id));
		if (m->req == REMUS_HOSTD_PEER_PING)
			break;
		json_object_object_add(o, "domain", json_object_new_string(m->domain));
		if (m->req == REMUS_HOSTD_PEER_SET_INTERVAL) {
			json_object_object_add(o, "interval_ms",
					       json_object_new_int64(m->options.interval_ms));
			json_object_object_add(o, "pause_budget_ms",
					       json_object_new_int64(m->options.pause_budget_ms));
			break;
		}
		if (m->req != REMUS_HOSTD_PEER_CREATE_STANDBY)
			break;
		json_object_object_add(o, "uuid", json_object_new_string(m->uuid));
		json_object_object_add(o, "xml", json_object_new_string(m->xml ? m->xml : ""));
		a = json_object_new_array();
		for (i = 0; a && i < m->ndisks; i++) {
			d = json_object_new_object();
			if (!d)
				goto out;
			json_object_object_add(d, "target", json_object_new_string(m->disks[i].target));
			json_object_object_add(d, "format", json_object_new_string(m->disks[i].format));
			json_object_object_add(d, "size", json_object_new_int64((int64_t)m->disks[i].size));
			json_object_array_add(a, d);
		}
		json_object_object_add(o, "disks", a);
		opt = json_object_new_object();
		if (!opt)
			goto out;
		json_object_object_add(opt, "interval_ms", json_object_new_int64(m->options.interval_ms));
		json_object_object_add(opt, "pause_budget_ms",
				       json_object_new_int64(m->options.pause_budget_ms));
		json_object_object_add(opt, "heartbeat_ms",
				       json_object_new_int64(m->options.heartbeat_ms));
		json_object_object_add(opt, "miss", json_object_new_int64(m->options.miss));
		json_object_object_add(opt, "netbuffer", json_object_new_string(
			remus_hostd_netbuffer_name(m->options.netbuffer)));
		json_object_object_add(opt, "reprotect", json_object_new_string(
			remus_hostd_reprotect_name(m->options.reprotect)));
		json_object_object_add(o, "options", opt);
		json_object_object_add(o, "primary", json_object_new_string(m->primary));
		json_object_object_add(o, "primary_port", json_object_new_int(m->primary_port));
		json_object_object_add(o, "takeover", json_object_new_int64((int64_t)m->takeover));
		break;
	case REMUS_HOSTD_PEER_ANSWER:
		json_object_object_add(o, "id", json_object_new_int64((int64_t)m->id));
		json_object_object_add(o, "ok", json_object_new_boolean(m->ok));
		if (m->ok) {
			if (m->repl_port)
				json_object_object_add(o, "repl_port", json_object_new_int(m->repl_port));
			if (m->runs_primary || m->holds_standby) {
				json_object_object_add(o, "role", json_object_new_string(
					m->runs_primary ? "primary" : "standby"));
				json_object_object_add(o, "takeover",
						       json_object_new_int64((int64_t)m->takeover));
			}
		} else {
			json_object_object_add(o, "error", json_object_new_string(m->error));
			json_object_object_add(o, "code", json_object_new_string(
				remus_hostd_code_name((enum remus_hostd_code)m->code)));
			if (m->runs_primary)
				json_object_object_add(o, "takeover",
						       json_object_new_int64((int64_t)m->takeover));
		}
		break;
	}
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	if (s && strlen(s) > REMUS_HOSTD_PEER_MAX_LINE) {
		free(s);
		s = NULL;
	}
out:
	json_object_put(o);
	return s;
}
