// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target for hostd/state.c's reader: the input is a state file.
 * Checked besides crashes (ASan/UBSan): a refusal says why; an accepted
 * record has a usable domain name and UUID, at most the disk limit, and
 * survives format -> parse unchanged (what remusd writes, it reads).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hostd/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct remus_hostd_dstate s, t;
	char err[512] = "";
	char *text;
	int rc;

	rc = remus_hostd_state_parse((const char *)data, size, &s, err, sizeof(err));
	if (rc < 0) {
		if (!err[0] && rc != -12 /* ENOMEM */)
			abort();
		return 0;
	}
	if (!remus_hostd_domain_name_ok(s.domain) || !remus_hostd_uuid_ok(s.uuid) ||
	    s.ndisks > REMUS_HOSTD_MAX_DISKS)
		abort();
	text = remus_hostd_state_format(&s);
	if (!text)
		return 0;
	if (remus_hostd_state_parse(text, strlen(text), &t, err, sizeof(err)) != 0 ||
	    memcmp(&s, &t, sizeof(s)) != 0)
		abort();
	free(text);
	return 0;
}
