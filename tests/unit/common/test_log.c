// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Logging: level filter, line format (timestamp, level, component), one
 * newline per message even when the message is truncated, level parsing.
 */
#include <errno.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/log.h"

static char *capture(void (*fn)(void))
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);

	assert_non_null(f);
	remus_log_set_stream(f);
	fn();
	remus_log_set_stream(NULL);
	fclose(f);
	return out;
}

static void emit_levels(void)
{
	remus_log_set_level(REMUS_LOG_INFO);
	remus_debug("t", "hidden %d", 1);
	remus_info("qmp", "connected to %s", "/x.qmp");
	remus_err("engine", "epoch %d failed", 7);
}

static void test_format_and_filter(void **state)
{
	char *out = capture(emit_levels);
	regex_t re;

	assert_null(strstr(out, "hidden"));
	assert_int_equal(regcomp(&re,
		"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
		"INFO  \\[qmp\\] connected to /x\\.qmp\n"
		"[0-9T:.Z-]+ ERROR \\[engine\\] epoch 7 failed\n$",
		REG_EXTENDED), 0);
	assert_int_equal(regexec(&re, out, 0, NULL, 0), 0);
	regfree(&re);
	free(out);
}

static void emit_long(void)
{
	static char big[10000];

	memset(big, 'a', sizeof(big) - 1);
	remus_info("t", "%s\n\n", big);
}

static void test_truncation_one_line(void **state)
{
	char *out = capture(emit_long);
	size_t n = strlen(out);

	assert_true(n > 1000 && n < 4097);
	assert_int_equal(out[n - 1], '\n');
	assert_null(memchr(out, '\n', n - 1));
	free(out);
}

static void emit_named(void)
{
	remus_log_set_level(REMUS_LOG_INFO);
	remus_log_set_name("web1");
	remus_info("qmp", "connected");
	remus_log_set_name("");
	remus_info("qmp", "unnamed");
}

/* --name DOMAIN: the domain is in the line, after the tag; "" takes it
 * away again. */
static void test_domain_name(void **state)
{
	char *out = capture(emit_named);
	regex_t re;

	assert_int_equal(regcomp(&re,
		"^[0-9T:.Z-]+ INFO  \\[qmp\\] web1: connected\n"
		"[0-9T:.Z-]+ INFO  \\[qmp\\] unnamed\n$", REG_EXTENDED), 0);
	assert_int_equal(regexec(&re, out, 0, NULL, 0), 0);
	regfree(&re);
	free(out);
}

static void test_parse_level(void **state)
{
	enum remus_log_level l;

	assert_int_equal(remus_log_parse_level("DEBUG", &l), 0);
	assert_int_equal(l, REMUS_LOG_DEBUG);
	assert_int_equal(remus_log_parse_level("warn", &l), 0);
	assert_int_equal(l, REMUS_LOG_WARN);
	assert_int_equal(remus_log_parse_level("loud", &l), -EINVAL);
	assert_int_equal(remus_log_parse_level(NULL, &l), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_and_filter),
		cmocka_unit_test(test_truncation_one_line),
		cmocka_unit_test(test_domain_name),
		cmocka_unit_test(test_parse_level),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
