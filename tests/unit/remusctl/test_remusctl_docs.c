// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The documentation of remusd serve's settings cannot drift from the
 * code: every key of hostd/config.c (read from its usage text) is in the
 * example dist/remusd.conf and in doc/man/remusd.8; the example, with
 * every key uncommented, is a config remusd serve accepts; remusctl
 * finds the same control socket in it that remusd serve listens on by
 * default; and every command of remusctl's usage has its synopsis and
 * its entry under COMMANDS in doc/man/remusctl.8.
 *
 *   test_remusctl_docs SOURCE-DIR
 */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hostd/config.h"
#include "remusctl/cli.h"

static const char *src;

static char *slurp(const char *rel)
{
	char path[4096], *text = NULL;
	size_t len = 0;
	FILE *f, *m;
	int c;

	snprintf(path, sizeof(path), "%s/%s", src, rel);
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s", path);
	m = open_memstream(&text, &len);
	while ((c = fgetc(f)) != EOF)
		fputc(c, m);
	fclose(f);
	fclose(m);
	return text;
}

/* The keys remusd serve knows, from its usage ("  --state-dir DIR ..."). */
static int keys(char names[][64], int max)
{
	char *usage = NULL, *line, *save = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&usage, &len);
	int n = 0;

	remus_hostd_config_usage(f);
	fclose(f);
	for (line = strtok_r(usage, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t k = 0;

		if (strncmp(line, "  --", 4) != 0 || n == max)
			continue;
		for (const char *p = line + 4; *p && *p != ' ' && k < 63; p++)
			names[n][k++] = *p == '-' ? '_' : *p;
		names[n][k] = 0;
		if (strcmp(names[n], "config") != 0 && strcmp(names[n], "help") != 0)
			n++;
	}
	free(usage);
	return n;
}

static void test_every_key_documented(void **state)
{
	char names[64][64], want[128];
	char *conf = slurp("dist/remusd.conf"), *man = slurp("doc/man/remusd.8");
	int n = keys(names, 64);

	assert_true(n >= 10);
	for (int i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "\n#%.63s = ", names[i]);
		if (!strstr(conf, want))
			fail_msg("dist/remusd.conf has no '#%s = VALUE' line", names[i]);
		snprintf(want, sizeof(want), "\n.BI %.63s ", names[i]);
		if (!strstr(man, want)) {
			snprintf(want, sizeof(want), "\n.BR %.63s ", names[i]);
			if (!strstr(man, want))
				fail_msg("doc/man/remusd.8 does not document key %s (.BI/.BR %s)",
					 names[i], names[i]);
		}
	}
	free(conf);
	free(man);
}

static void test_example_is_valid(void **state)
{
	char *conf = slurp("dist/remusd.conf"), *p, err[512], sock[256];
	struct remus_hostd_config c, def;
	int rc;

	/* Uncomment "#key = value" lines (not the prose comments). */
	for (p = conf; (p = strstr(p, "\n#")); p++)
		if (p[2] >= 'a' && p[2] <= 'z' && strchr(p + 2, '=') &&
		    strchr(p + 2, '=') < strchr(p + 2, '\n') &&
		    strcspn(p + 2, " =") < strcspn(p + 2, "\n") &&
		    p[2 + strcspn(p + 2, " ")] == ' ' && p[3 + strcspn(p + 2, " ")] == '=')
			p[1] = ' ';
	remus_hostd_config_init(&c);
	rc = remus_hostd_config_parse(&c, "remusd.conf", conf, strlen(conf), err, sizeof(err));
	if (rc)
		fail_msg("the example with every key set is refused: %s", err);
	assert_int_equal(remusctl_config_ctl(conf, strlen(conf), sock, sizeof(sock), err,
					     sizeof(err)), 1);
	remus_hostd_config_init(&def);
	assert_string_equal(sock, def.ctl);
	assert_string_equal(def.ctl, REMUSCTL_DEFAULT_SOCKET);
	assert_int_equal(def.listen_port, REMUSCTL_DEFAULT_PEER_PORT);
	/* The example's values are the defaults. */
	assert_int_equal(c.interval_ms, def.interval_ms);
	assert_int_equal(c.pause_budget_ms, def.pause_budget_ms);
	assert_int_equal(c.listen_port, def.listen_port);
	assert_string_equal(c.connect, def.connect);
	free(conf);
}

/* "set-interval" as the man page writes it: "set\-interval". */
static void man_word(char *out, size_t len, const char *w)
{
	size_t n = 0;

	for (; *w && n + 3 < len; w++) {
		if (*w == '-')
			out[n++] = '\\';
		out[n++] = *w;
	}
	out[n] = 0;
}

static void test_every_command_in_man(void **state)
{
	char *usage = NULL, *line, *save = NULL, *man = slurp("doc/man/remusctl.8");
	char *synopsis = strstr(man, "\n.SH SYNOPSIS\n");
	char *commands = strstr(man, "\n.SH COMMANDS\n");
	size_t len = 0;
	FILE *f = open_memstream(&usage, &len);
	int n = 0;

	assert_non_null(synopsis);
	assert_non_null(commands);
	/* Each section ends where the next begins. */
	assert_non_null(strstr(synopsis + 1, "\n.SH "));
	strstr(synopsis + 1, "\n.SH ")[1] = 0;
	assert_non_null(strstr(commands + 1, "\n.SH "));
	strstr(commands + 1, "\n.SH ")[1] = 0;
	remusctl_usage(f, REMUSCTL_NONE, false);
	fclose(f);
	for (line = strtok_r(usage, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[64], word[128], want[256];
		size_t k = 0;

		if (strncmp(line, "  remusctl ", 11) != 0)
			continue;
		for (const char *p = line + 11; *p && *p != ' ' && k < 63; p++)
			name[k++] = *p;
		name[k] = 0;
		man_word(word, sizeof(word), name);
		snprintf(want, sizeof(want), "\n.B %s\n", word);
		if (!strstr(synopsis, want))
			fail_msg("remusctl.8's SYNOPSIS lacks '.B %s'", word);
		/* Its entry: .TP, then .BI/.BR with the word first, quoted
		 * or not ('.BR "unprotect " ...', '.BR list " [" ...'). */
		{
			static const char *const forms[] = { ".BI \"", ".BR \"", ".BI ", ".BR " };
			bool found = false;

			for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
				snprintf(want, sizeof(want), "\n.TP\n%s%s ", forms[i], word);
				found = found || strstr(commands, want);
			}
			if (!found)
				fail_msg("remusctl.8's COMMANDS has no .TP entry for %s", word);
		}
		n++;
	}
	assert_true(n >= 7);
	free(usage);
	free(man);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_key_documented),
		cmocka_unit_test(test_example_is_valid),
		cmocka_unit_test(test_every_command_in_man),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: test_remusctl_docs SOURCE-DIR\n");
		return 2;
	}
	src = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
