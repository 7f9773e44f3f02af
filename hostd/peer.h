/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The peer protocol between the remusd serve of two hosts (TCP, default
 * port 7790): JSON lines of at most REMUS_HOSTD_PEER_MAX_LINE bytes (a
 * domain's XML fits), a hello each way first, then requests with an id
 * and their answers, in any order:
 *
 *   {"hello":"remus-peer","version":1,"host":"hostA"}
 *   {"req":"create-standby","id":7,"domain":"web1","uuid":"...","xml":"<domain...>",
 *    "disks":[{"target":"vda","format":"qcow2","size":1073741824}],
 *    "options":{"interval_ms":200,"pause_budget_ms":300,"netbuffer":"qemu",
 *               "reprotect":"auto","heartbeat_ms":100,"miss":5},
 *    "primary":"hostA","primary_port":7790,"takeover":0}
 *   {"req":"destroy-standby","id":8,"domain":"web1"}
 *   {"req":"failover","id":9,"domain":"web1"}          (planned switch)
 *   {"req":"ping","id":10}
 *   {"req":"set-interval","id":11,"domain":"web1","interval_ms":300,"pause_budget_ms":300}
 *   {"req":"query","id":12,"domain":"web1"}
 *   {"id":7,"ok":true,"repl_port":7800}
 *   {"id":8,"ok":false,"error":"MESSAGE","code":"exists"}
 *   {"id":7,"ok":false,"error":"MESSAGE","code":"exists","takeover":1}
 *   {"id":12,"ok":true,"role":"primary","takeover":1}
 *
 * create-standby asks the host to make the standby of a domain that runs
 * on the sender ("primary"): check that no other domain has its name or
 * UUID and that its bridges exist, define the paused standby domain from
 * @xml, start its standby child, and answer the replication port the
 * primary's child connects to.  destroy-standby undoes that;
 * failover makes the standby take over now.  Codes are the control
 * protocol's (hostd/request.h).
 *
 * set-interval tells the standby's host the settings the primary runs
 * with now (remusctl set-interval), so that its record holds them and a
 * takeover, planned or not, and the re-protection after it go on with
 * them rather than with those of the protect that made the standby.
 * Both numbers are sent, the record's whole current values.  A peer
 * from before this request refuses it as unknown (and drops the
 * connection); the sender then keeps its value and tries again later
 * (hostd.c, "the standby's copy of the settings").
 *
 * takeover (optional, 0 when absent) is the sender's count of takeovers
 * of the domain (hostd/state.h): a create-standby from a host that took
 * the domain over carries one more than the record of the host it
 * took it from, which is what lets that host destroy its stale copy
 * (hostd/fence.h).  A create-standby refused because the domain runs on
 * the answering host as its primary says so with that host's count
 * ("takeover" in the error answer), so the asker learns that its
 * own copy is the stale one.
 *
 * query asks how the answering host holds a domain, so that a restarted
 * remusd serve learns, before it starts the primary child of its record
 * again, whether its standby took the domain over meanwhile (hostd/fence.h):
 * the answer says "role":"primary" with its takeover count when the domain
 * runs there as the primary (its child lives, or its standby just went
 * active: then the count is one more than its record's), "role":"standby"
 * with its record's count when it holds the standby there, and no role
 * when it has no record of the domain or its copy does not run there.
 * "takeover" comes with "role" and only with it.
 *
 * This file is the messages only (parse, format), pure and fuzzed
 * (fuzz_hostd_peer); the connection on the loop is peerlink.h.
 */
#ifndef REMUS_HOSTD_PEER_H
#define REMUS_HOSTD_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostd/config.h"
#include "hostd/state.h"

#define REMUS_HOSTD_PEER_MAX_LINE (1u << 20)
#define REMUS_HOSTD_PEER_VERSION 1

enum remus_hostd_peer_kind {
	REMUS_HOSTD_PEER_HELLO,
	REMUS_HOSTD_PEER_REQUEST,
	REMUS_HOSTD_PEER_ANSWER,
};

enum remus_hostd_peer_req {
	REMUS_HOSTD_PEER_CREATE_STANDBY,
	REMUS_HOSTD_PEER_DESTROY_STANDBY,
	REMUS_HOSTD_PEER_FAILOVER,
	REMUS_HOSTD_PEER_PING,
	REMUS_HOSTD_PEER_SET_INTERVAL,
	REMUS_HOSTD_PEER_QUERY,
};

struct remus_hostd_peer_disk {
	char target[32];
	char format[16];
	uint64_t size;
};

struct remus_hostd_peer_options {
	unsigned interval_ms, pause_budget_ms, heartbeat_ms, miss;
	enum remus_hostd_netbuffer netbuffer;
	enum remus_hostd_reprotect reprotect;
};

/* One message.  Only the fields of its kind (and request) are meaningful;
 * @xml is owned (remus_hostd_peer_msg_release). */
struct remus_hostd_peer_msg {
	enum remus_hostd_peer_kind kind;
	/* hello */
	unsigned version;
	char host[REMUS_HOSTD_HOST_MAX];
	/* request and answer */
	uint64_t id;
	/* request */
	enum remus_hostd_peer_req req;
	char domain[REMUS_HOSTD_DOMAIN_MAX];
	char uuid[REMUS_HOSTD_UUID_LEN + 1];
	char *xml;
	unsigned ndisks;
	struct remus_hostd_peer_disk disks[REMUS_HOSTD_MAX_DISKS];
	struct remus_hostd_peer_options options;  /* create-standby; set-interval: only
						   * interval_ms and pause_budget_ms */
	char primary[REMUS_HOSTD_HOST_MAX];
	uint16_t primary_port;
	/* create-standby, and a refusal from a host that runs it as primary */
	uint64_t takeover;
	/* answer */
	bool ok;
	char error[1024];
	int code;                 /* enum remus_hostd_code; -1 when ok */
	uint16_t repl_port;       /* create-standby's answer; 0 otherwise */
	bool runs_primary;        /* a refusal, or query's answer ("role":"primary"):
				   * the answering host runs it as primary, with
				   * @takeover; false: no "takeover" */
	bool holds_standby;       /* query's answer ("role":"standby"): the answering
				   * host holds its standby, with @takeover */
};

/* "create-standby", ... */
const char *remus_hostd_peer_req_name(enum remus_hostd_peer_req r);

/*
 * Parses one line (@len bytes of @line, borrowed, no newline) into *@m
 * (fully overwritten).  Returns 0, or -EINVAL with @err naming what is
 * wrong ("create-standby: \"uuid\" is not a UUID"), or -ENOMEM.  Call
 * remus_hostd_peer_msg_release() in every case.
 */
int remus_hostd_peer_parse(const char *line, size_t len, struct remus_hostd_peer_msg *m,
			   char *err, size_t errlen);

/* Frees what *@m owns; idempotent. */
void remus_hostd_peer_msg_release(struct remus_hostd_peer_msg *m);

/* One line for @m (owned: free(); no newline), or NULL on ENOMEM or when
 * it would exceed REMUS_HOSTD_PEER_MAX_LINE (an XML too big). */
char *remus_hostd_peer_format(const struct remus_hostd_peer_msg *m);

#endif
