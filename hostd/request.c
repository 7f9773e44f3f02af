// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * remusd serve's control requests (see request.h).  Each command has a
 * set of keys it accepts; the parser walks the object's keys once and
 * refuses any key the command does not take, so the table below is the
 * whole protocol.
 */
#include "hostd/request.h"
#include "hostd/field.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const code_names[] = {
	[REMUS_HOSTD_E_NO_DOMAIN] = "no-domain",
	[REMUS_HOSTD_E_NOT_RUNNING] = "not-running",
	[REMUS_HOSTD_E_EXISTS] = "exists",
	[REMUS_HOSTD_E_PEER_UNREACHABLE] = "peer-unreachable",
	[REMUS_HOSTD_E_NO_BRIDGE] = "no-bridge",
	[REMUS_HOSTD_E_BAD_DISK] = "bad-disk",
	[REMUS_HOSTD_E_LIBVIRT_TOO_OLD] = "libvirt-too-old",
	[REMUS_HOSTD_E_QEMU_TOO_OLD] = "qemu-too-old",
	[REMUS_HOSTD_E_BAD_REQUEST] = "bad-request",
	[REMUS_HOSTD_E_INTERNAL] = "internal",
	[REMUS_HOSTD_E_NOT_OWNER] = "not-owner",
};
#define NCODES (sizeof(code_names) / sizeof(code_names[0]))

const char *remus_hostd_code_name(enum remus_hostd_code c)
{
	return (unsigned)c < NCODES ? code_names[c] : "internal";
}

int remus_hostd_code_parse(const char *name)
{
	for (size_t i = 0; i < NCODES; i++)
		if (strcmp(code_names[i], name) == 0)
			return (int)i;
	return -1;
}

char *remus_hostd_answer_error(enum remus_hostd_code code, const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char msg[1024];
	char *s;
	va_list ap;

	if (!o)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "ok", json_object_new_boolean(false));
	json_object_object_add(o, "error", json_object_new_string(msg));
	json_object_object_add(o, "code", json_object_new_string(remus_hostd_code_name(code)));
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

int remus_hostd_parse_peer(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	const char *h = s, *end, *p = NULL;
	size_t hl;
	char *e;
	unsigned long v;

	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end)
			return -EINVAL;
		h = s + 1;
		hl = (size_t)(end - h);
		if (end[1] == ':')
			p = end + 2;
		else if (end[1])
			return -EINVAL;
	} else {
		end = strchr(s, ':');
		if (end && strchr(end + 1, ':'))
			return -EINVAL;    /* a v6 address needs brackets */
		hl = end ? (size_t)(end - s) : strlen(s);
		if (end)
			p = end + 1;
	}
	if (hl == 0 || hl >= hostlen)
		return -EINVAL;
	for (size_t i = 0; i < hl; i++)
		if ((unsigned char)h[i] <= ' ' || h[i] == '/' || h[i] == 0x7f)
			return -EINVAL;
	*port = REMUS_HOSTD_DEFAULT_PEER_PORT;
	if (p) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		errno = 0;
		v = strtoul(p, &e, 10);
		if (errno || *e || v < 1 || v > 65535)
			return -EINVAL;
		*port = (uint16_t)v;
	}
	memcpy(host, h, hl);
	host[hl] = 0;
	return 0;
}

/* Which keys each command takes (besides "cmd"). */
enum { K_DOMAIN = 1, K_STANDBY = 2, K_INTERVAL = 4, K_NETBUFFER = 8, K_BUDGET = 16,
       K_REPROTECT = 32, K_RELEASE = 64, K_FORCE = 128 };

static const struct {
	const char *name;
	enum remus_hostd_cmd cmd;
	unsigned keys, required;
} cmds[] = {
	{ "protect", REMUS_HOSTD_CMD_PROTECT,
	  K_DOMAIN | K_STANDBY | K_INTERVAL | K_NETBUFFER | K_BUDGET | K_REPROTECT,
	  K_DOMAIN | K_STANDBY },
	{ "status", REMUS_HOSTD_CMD_STATUS, K_DOMAIN, 0 },
	{ "list", REMUS_HOSTD_CMD_LIST, 0, 0 },
	{ "set-interval", REMUS_HOSTD_CMD_SET_INTERVAL, K_DOMAIN | K_INTERVAL,
	  K_DOMAIN | K_INTERVAL },
	{ "failover", REMUS_HOSTD_CMD_FAILOVER, K_DOMAIN, K_DOMAIN },
	{ "unprotect", REMUS_HOSTD_CMD_UNPROTECT, K_DOMAIN | K_RELEASE | K_FORCE, K_DOMAIN },
};

static const struct {
	const char *name;
	unsigned bit;
	const char *form;
} keys[] = {
	{ "domain", K_DOMAIN, "the libvirt domain's name" },
	{ "standby", K_STANDBY, "HOST[:PORT] of the standby host's remusd serve" },
	{ "interval_ms", K_INTERVAL, "an integer in 10..3600000" },
	{ "netbuffer", K_NETBUFFER, "\"qemu\", \"plug\" or \"off\"" },
	{ "pause_budget_ms", K_BUDGET, "an integer in 1..60000" },
	{ "reprotect", K_REPROTECT, "\"auto\" or \"manual\"" },
	{ "release_disks", K_RELEASE, "true or false" },
	{ "force", K_FORCE, "true or false" },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static int get_uint(struct json_object *v, const char *key, unsigned min, unsigned max,
		    unsigned *out, char *err, size_t errlen)
{
	int64_t n;

	if (!json_object_is_type(v, json_type_int))
		return remus_hostd_fail(err, errlen, "\"%s\" must be an integer in %u..%u", key, min, max);
	n = json_object_get_int64(v);
	if (n < min || n > max)
		return remus_hostd_fail(err, errlen, "\"%s\": %lld is not in %u..%u", key, (long long)n, min,
			    max);
	*out = (unsigned)n;
	return 0;
}

static int set_key(struct remus_hostd_request *r, unsigned bit, const char *key,
		   struct json_object *v, char *err, size_t errlen)
{
	const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v)
			: NULL;

	if (s && (size_t)json_object_get_string_len(v) != strlen(s))
		return remus_hostd_fail(err, errlen, "\"%s\" has a NUL byte", key);
	switch (bit) {
	case K_DOMAIN:
		if (!s)
			return remus_hostd_fail(err, errlen, "\"domain\" must be a string: the libvirt "
				    "domain's name");
		if (!remus_hostd_domain_name_ok(s))
			return remus_hostd_fail(err, errlen, "domain '%.80s': remusd protects domains named "
				    "with 1..63 of A-Z a-z 0-9 _ . + - (not starting with . or -); "
				    "rename the domain", s);
		snprintf(r->domain, sizeof(r->domain), "%s", s);
		r->has_domain = true;
		return 0;
	case K_STANDBY:
		if (!s || remus_hostd_parse_peer(s, r->standby_host, sizeof(r->standby_host),
						 &r->standby_port) < 0)
			return remus_hostd_fail(err, errlen, "\"standby\" must be HOST, HOST:PORT or [V6]:PORT "
				    "(PORT in 1..65535, default 7790): the standby host's remusd "
				    "serve");
		return 0;
	case K_INTERVAL:
		r->has_interval = true;
		return get_uint(v, key, 10, 3600000, &r->interval_ms, err, errlen);
	case K_BUDGET:
		r->has_pause_budget = true;
		return get_uint(v, key, 1, 60000, &r->pause_budget_ms, err, errlen);
	case K_NETBUFFER:
		r->has_netbuffer = true;
		if (s && strcmp(s, "qemu") == 0)
			r->netbuffer = REMUS_HOSTD_NB_QEMU;
		else if (s && strcmp(s, "plug") == 0)
			r->netbuffer = REMUS_HOSTD_NB_PLUG;
		else if (s && strcmp(s, "off") == 0)
			r->netbuffer = REMUS_HOSTD_NB_OFF;
		else
			return remus_hostd_fail(err, errlen, "\"netbuffer\" must be \"qemu\", \"plug\" or "
				    "\"off\"");
		return 0;
	case K_REPROTECT:
		r->has_reprotect = true;
		if (s && strcmp(s, "auto") == 0)
			r->reprotect = REMUS_HOSTD_REPROTECT_AUTO;
		else if (s && strcmp(s, "manual") == 0)
			r->reprotect = REMUS_HOSTD_REPROTECT_MANUAL;
		else
			return remus_hostd_fail(err, errlen, "\"reprotect\" must be \"auto\" or \"manual\"");
		return 0;
	case K_RELEASE:
		if (!json_object_is_type(v, json_type_boolean))
			return remus_hostd_fail(err, errlen, "\"release_disks\" must be true or false");
		r->release_disks = json_object_get_boolean(v);
		return 0;
	case K_FORCE:
		if (!json_object_is_type(v, json_type_boolean))
			return remus_hostd_fail(err, errlen, "\"force\" must be true or false");
		r->force = json_object_get_boolean(v);
		return 0;
	}
	return remus_hostd_fail(err, errlen, "\"%s\": not handled (a bug)", key);
}

int remus_hostd_request_parse(const char *line, struct remus_hostd_request *r, char *err,
			      size_t errlen)
{
	struct json_tokener *tok = NULL;
	struct json_object *o = NULL, *cmd;
	size_t len = strlen(line), c, k;
	unsigned seen = 0;
	const char *name;
	int rc;

	memset(r, 0, sizeof(*r));
	r->standby_port = REMUS_HOSTD_DEFAULT_PEER_PORT;
	if (len > REMUS_HOSTD_REQUEST_MAX)
		return remus_hostd_fail(err, errlen, "the request is longer than %u bytes",
			    REMUS_HOSTD_REQUEST_MAX);
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, line, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len || !json_object_is_type(o, json_type_object)) {
		rc = remus_hostd_fail(err, errlen, "the request is not one JSON object (the control protocol "
			  "is {\"cmd\":...} per line; use remusctl)");
		goto out;
	}
	if (!json_object_object_get_ex(o, "cmd", &cmd) || !json_object_is_type(cmd, json_type_string)) {
		rc = remus_hostd_fail(err, errlen, "no \"cmd\": expected protect, status, list, set-interval, "
			  "failover or unprotect");
		goto out;
	}
	name = json_object_get_string(cmd);
	for (c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++)
		if (strcmp(cmds[c].name, name) == 0)
			break;
	if (c == sizeof(cmds) / sizeof(cmds[0])) {
		rc = remus_hostd_fail(err, errlen, "unknown command '%.40s': expected protect, status, list, "
			  "set-interval, failover or unprotect", name);
		goto out;
	}
	r->cmd = cmds[c].cmd;
	json_object_object_foreach(o, key, v) {
		if (strcmp(key, "cmd") == 0)
			continue;
		for (k = 0; k < NKEYS; k++)
			if (strcmp(keys[k].name, key) == 0)
				break;
		if (k == NKEYS || !(cmds[c].keys & keys[k].bit)) {
			rc = remus_hostd_fail(err, errlen, "%s: unknown key \"%.40s\"", cmds[c].name, key);
			goto out;
		}
		if ((rc = set_key(r, keys[k].bit, key, v, err, errlen)) < 0) {
			char tmp[512];

			snprintf(tmp, sizeof(tmp), "%s", err);
			remus_hostd_fail(err, errlen, "%s: %s", cmds[c].name, tmp);
			goto out;
		}
		seen |= keys[k].bit;
	}
	for (k = 0; k < NKEYS; k++)
		if ((cmds[c].required & keys[k].bit) && !(seen & keys[k].bit)) {
			rc = remus_hostd_fail(err, errlen, "%s: \"%s\" is missing: %s", cmds[c].name,
				  keys[k].name, keys[k].form);
			goto out;
		}
	rc = 0;
out:
	json_object_put(o);
	json_tokener_free(tok);
	return rc;
}
