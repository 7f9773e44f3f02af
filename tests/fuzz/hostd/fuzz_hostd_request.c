// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target for hostd/request.c: the input is one control request
 * line (NUL-terminated here, as the control socket hands it over).
 * Checked besides crashes: a refusal says why; an accepted request has a
 * usable domain name when it has one, and a standby host for protect.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hostd/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct remus_hostd_request r;
	char err[512] = "";
	char *line = malloc(size + 1);
	int rc;

	if (!line)
		return 0;
	memcpy(line, data, size);
	line[size] = 0;
	rc = remus_hostd_request_parse(line, &r, err, sizeof(err));
	if (rc < 0 && rc != -12 && !err[0])
		abort();
	if (rc == 0) {
		if (r.has_domain && !remus_hostd_domain_name_ok(r.domain))
			abort();
		if (r.cmd == REMUS_HOSTD_CMD_PROTECT && (!r.standby_host[0] || !r.standby_port))
			abort();
	}
	free(line);
	return 0;
}
