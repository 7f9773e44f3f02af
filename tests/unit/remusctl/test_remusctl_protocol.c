// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * remusctl and remusd serve speak the same control protocol: every
 * request line remusctl builds is accepted by hostd's strict parser
 * (hostd/request.h) and means what the command line said; every error
 * code hostd can answer is documented in remusctl(8).
 *
 *   test_remusctl_protocol SOURCE-DIR
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hostd/request.h"
#include "remusctl/cli.h"

static const char *src;

/* Parses remusctl @argv, builds its request, parses that with hostd. */
static void both(char **argv, struct remus_hostd_request *r)
{
	struct remusctl_args a;
	char err[512], *req;
	int argc = 0;

	while (argv[argc])
		argc++;
	if (remusctl_args_parse(&a, argc, argv) < 0)
		fail_msg("remusctl refused: %s", a.error);
	req = remusctl_request(&a);
	assert_non_null(req);
	if (remus_hostd_request_parse(req, r, err, sizeof(err)) < 0)
		fail_msg("hostd refused remusctl's %s: %s", req, err);
	free(req);
}

#define BOTH(r, ...) both((char *[]){ "remusctl", __VA_ARGS__, NULL }, (r))

static void test_requests_accepted(void **state)
{
	struct remus_hostd_request r;

	BOTH(&r, "protect", "web1", "--standby", "hostB");
	assert_int_equal(r.cmd, REMUS_HOSTD_CMD_PROTECT);
	assert_string_equal(r.domain, "web1");
	assert_string_equal(r.standby_host, "hostB");
	assert_int_equal(r.standby_port, 7790);
	assert_false(r.has_interval || r.has_pause_budget || r.has_netbuffer || r.has_reprotect);

	BOTH(&r, "protect", "web1", "--standby", "[fd00::2]:7791", "--interval", "200",
	     "--netbuffer", "plug", "--pause-budget", "250", "--reprotect", "manual");
	assert_string_equal(r.standby_host, "fd00::2");
	assert_int_equal(r.standby_port, 7791);
	assert_true(r.has_interval && r.interval_ms == 200);
	assert_true(r.has_pause_budget && r.pause_budget_ms == 250);
	assert_true(r.has_netbuffer && r.netbuffer == REMUS_HOSTD_NB_PLUG);
	assert_true(r.has_reprotect && r.reprotect == REMUS_HOSTD_REPROTECT_MANUAL);
	BOTH(&r, "protect", "web1", "--standby", "h", "--netbuffer", "off", "--reprotect", "auto");
	assert_int_equal(r.netbuffer, REMUS_HOSTD_NB_OFF);
	assert_int_equal(r.reprotect, REMUS_HOSTD_REPROTECT_AUTO);
	/* The extremes of remusctl's ranges are in hostd's. */
	BOTH(&r, "protect", "w", "--standby", "h:1", "--interval", "10", "--pause-budget", "1");
	BOTH(&r, "protect", "w", "--standby", "h:65535", "--interval", "3600000",
	     "--pause-budget", "60000");

	BOTH(&r, "status");
	assert_int_equal(r.cmd, REMUS_HOSTD_CMD_STATUS);
	assert_false(r.has_domain);
	BOTH(&r, "status", "web1");
	assert_true(r.has_domain);
	BOTH(&r, "list");
	assert_int_equal(r.cmd, REMUS_HOSTD_CMD_LIST);
	BOTH(&r, "set-interval", "web1", "100");
	assert_int_equal(r.cmd, REMUS_HOSTD_CMD_SET_INTERVAL);
	assert_int_equal(r.interval_ms, 100);
	BOTH(&r, "failover", "web1");
	assert_int_equal(r.cmd, REMUS_HOSTD_CMD_FAILOVER);
	BOTH(&r, "unprotect", "web1");
	assert_int_equal(r.cmd, REMUS_HOSTD_CMD_UNPROTECT);
	assert_false(r.release_disks);
	BOTH(&r, "unprotect", "web1", "--release-disks");
	assert_true(r.release_disks);
	assert_false(r.force);
	BOTH(&r, "unprotect", "web1", "--force");
	assert_true(r.force);
}

static void test_codes_documented(void **state)
{
	char path[4096], *man = NULL, want[64];
	size_t len = 0;
	FILE *f, *m;
	int c;

	snprintf(path, sizeof(path), "%s/doc/man/remusctl.8", src);
	f = fopen(path, "r");
	assert_non_null(f);
	m = open_memstream(&man, &len);
	while ((c = fgetc(f)) != EOF)
		fputc(c, m);
	fclose(f);
	fclose(m);
	for (int i = 0; i <= REMUS_HOSTD_E_INTERNAL; i++) {
		const char *name = remus_hostd_code_name(i);
		size_t k = 0;

		/* In roff, '-' is written '\-'. */
		for (const char *p = name; *p && k + 3 < sizeof(want); p++) {
			if (*p == '-')
				want[k++] = '\\';
			want[k++] = *p;
		}
		want[k] = 0;
		if (!strstr(man, want))
			fail_msg("remusctl.8 does not document the error code %s", name);
	}
	free(man);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests_accepted),
		cmocka_unit_test(test_codes_documented),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: test_remusctl_protocol SOURCE-DIR\n");
		return 2;
	}
	src = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
