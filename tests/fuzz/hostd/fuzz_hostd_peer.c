// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target for hostd/peer.c: the input is one line from a peer.
 * Checked besides crashes and leaks: a refusal says why; an accepted
 * message formats back to a line that parses to the same message (what
 * one remusd sends, the other reads).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hostd/peer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct remus_hostd_peer_msg m, n;
	char err[512] = "";
	char *line;
	int rc;

	rc = remus_hostd_peer_parse((const char *)data, size, &m, err, sizeof(err));
	if (rc < 0) {
		if (rc != -12 && !err[0])
			abort();
		remus_hostd_peer_msg_release(&m);
		return 0;
	}
	line = remus_hostd_peer_format(&m);
	if (line) {
		if (remus_hostd_peer_parse(line, strlen(line), &n, err, sizeof(err)) != 0 ||
		    n.kind != m.kind || n.id != m.id || n.req != m.req || n.ok != m.ok ||
		    strcmp(n.domain, m.domain) != 0 || n.ndisks != m.ndisks ||
		    n.takeover != m.takeover || n.runs_primary != m.runs_primary ||
		    (m.kind == REMUS_HOSTD_PEER_REQUEST && m.req == REMUS_HOSTD_PEER_SET_INTERVAL &&
		     (n.options.interval_ms != m.options.interval_ms ||
		      n.options.pause_budget_ms != m.options.pause_budget_ms)) ||
		    n.holds_standby != m.holds_standby ||
		    (m.xml && strcmp(n.xml, m.xml) != 0))
			abort();
		remus_hostd_peer_msg_release(&n);
		free(line);
	}
	remus_hostd_peer_msg_release(&m);
	return 0;
}
