// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target for hostd/config.c: the input is a remusd.conf.  Checked
 * besides crashes (ASan/UBSan): a refused file leaves a message that
 * names the file, and an accepted one leaves every string NUL-terminated
 * in its field and every number in its range.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hostd/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct remus_hostd_config c;
	char err[512] = "";
	int rc;

	remus_hostd_config_init(&c);
	rc = remus_hostd_config_parse(&c, "remusd.conf", (const char *)data, size, err,
				      sizeof(err));
	if (rc < 0 && !strstr(err, "remusd.conf"))
		abort();
	if (rc == 0) {
		if (!memchr(c.connect, 0, sizeof(c.connect)) || !memchr(c.ctl, 0, sizeof(c.ctl)) ||
		    !memchr(c.state_dir, 0, sizeof(c.state_dir)) ||
		    !memchr(c.listen_host, 0, sizeof(c.listen_host)) ||
		    !memchr(c.fence_command, 0, sizeof(c.fence_command)))
			abort();
		/* What reaches a standby child's /bin/sh -c: one line. */
		for (const char *p = c.fence_command; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
		if (c.interval_ms < 10 || c.interval_ms > 3600000 || c.listen_port == 0 ||
		    c.repl_port_min > c.repl_port_max || c.pause_budget_ms < 1 ||
		    c.primary_miss > 1000)
			abort();
	}
	return 0;
}
