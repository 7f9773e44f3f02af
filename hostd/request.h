/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control protocol of remusd serve (remusctl <-> remusd serve; see
 * DESIGN-10 and remusctl(8)): one JSON object per line in, one JSON
 * answer line out.
 *
 *   {"cmd":"protect","domain":"web1","standby":"hostB[:7790]","interval_ms":200,
 *    "netbuffer":"qemu|plug|off","pause_budget_ms":300,"reprotect":"auto|manual"}
 *   {"cmd":"status"[,"domain":"web1"]}      {"cmd":"list"}
 *   {"cmd":"set-interval","domain":"web1","interval_ms":100}
 *   {"cmd":"failover","domain":"web1"}
 *   {"cmd":"unprotect","domain":"web1","release_disks":false[,"force":true]}
 *
 * Answers: {"ok":true,...} or {"ok":false,"error":MESSAGE,"code":CODE},
 * CODE one of enum remus_hostd_code's names.  The parser is strict: an
 * unknown command or key, a value of the wrong type or out of range is
 * refused with "bad-request" and a message naming the key and the fix,
 * so a typo in a client never silently means a default.
 */
#ifndef REMUS_HOSTD_REQUEST_H
#define REMUS_HOSTD_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostd/config.h"
#include "hostd/state.h"

/* The longest request line (a protect is far shorter). */
#define REMUS_HOSTD_REQUEST_MAX (64u << 10)

enum remus_hostd_cmd {
	REMUS_HOSTD_CMD_PROTECT,
	REMUS_HOSTD_CMD_STATUS,
	REMUS_HOSTD_CMD_LIST,
	REMUS_HOSTD_CMD_SET_INTERVAL,
	REMUS_HOSTD_CMD_FAILOVER,
	REMUS_HOSTD_CMD_UNPROTECT,
};

enum remus_hostd_code {
	REMUS_HOSTD_E_NO_DOMAIN,
	REMUS_HOSTD_E_NOT_RUNNING,
	REMUS_HOSTD_E_EXISTS,
	REMUS_HOSTD_E_PEER_UNREACHABLE,
	REMUS_HOSTD_E_NO_BRIDGE,
	REMUS_HOSTD_E_BAD_DISK,
	REMUS_HOSTD_E_LIBVIRT_TOO_OLD,
	REMUS_HOSTD_E_QEMU_TOO_OLD,
	REMUS_HOSTD_E_BAD_REQUEST,
	REMUS_HOSTD_E_INTERNAL,
	REMUS_HOSTD_E_NOT_OWNER,   /* a peer asked for a domain of another owner */
};

/* "no-domain", ..., "internal", "not-owner". */
const char *remus_hostd_code_name(enum remus_hostd_code c);
/* The enum of @name, or -1. */
int remus_hostd_code_parse(const char *name);

struct remus_hostd_request {
	enum remus_hostd_cmd cmd;
	bool has_domain;
	char domain[REMUS_HOSTD_DOMAIN_MAX];
	/* protect */
	char standby_host[REMUS_HOSTD_HOST_MAX];
	uint16_t standby_port;                 /* 7790 when not given */
	bool has_interval, has_pause_budget, has_netbuffer, has_reprotect;
	unsigned interval_ms, pause_budget_ms;
	enum remus_hostd_netbuffer netbuffer;
	enum remus_hostd_reprotect reprotect;
	/* unprotect: accepted for older clients; the disks always go back
	 * to plain files (hostd.c, ctl_unprotect) */
	bool release_disks;
	/* unprotect of a standby record: discard it without asking its
	 * primary's host first (ctl_unprotect says when that is needed) */
	bool force;
};

/*
 * Parses one request @line (borrowed, NUL-terminated, no newline) into
 * *@r.  Returns 0, or -EINVAL with @err naming the key and the fix (the
 * answer's code is then bad-request).
 */
int remus_hostd_request_parse(const char *line, struct remus_hostd_request *r, char *err,
			      size_t errlen);

/* "HOST", "HOST:PORT", "[V6]" or "[V6]:PORT" (port default 7790).
 * Returns 0 or -EINVAL. */
int remus_hostd_parse_peer(const char *s, char *host, size_t hostlen, uint16_t *port);

/* {"ok":false,"error":MSG,"code":CODE} (owned), or NULL on ENOMEM. */
char *remus_hostd_answer_error(enum remus_hostd_code code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
