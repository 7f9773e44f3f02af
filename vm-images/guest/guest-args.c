/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * key=value argument parsing for the guest programs (see guest-args.h).
 * Numbers go through strtoull with full-string and range checks; a key
 * given twice is an error because on a kernel command line the second one
 * is almost always a copy-paste mistake.
 */
#include "guest-args.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(const char *prog, const struct guest_arg *args, int n)
{
	fprintf(stderr, "%s: arguments are key=value; known keys:\n", prog);
	for (int i = 0; i < n; i++)
		fprintf(stderr, "  %-8s %s\n", args[i].key, args[i].help);
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end = NULL;

	if (*s == '\0' || *s == '-')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno != 0 || *end != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

int guest_args_parse(const char *prog, struct guest_arg *args, int n,
		     int argc, char **argv)
{
	for (int a = 1; a < argc; a++) {
		const char *eq = strchr(argv[a], '=');
		int i;

		if (eq == NULL) {
			fprintf(stderr, "%s: argument '%s' is not key=value\n",
				prog, argv[a]);
			goto bad;
		}
		size_t klen = (size_t)(eq - argv[a]);
		for (i = 0; i < n; i++)
			if (strlen(args[i].key) == klen &&
			    memcmp(args[i].key, argv[a], klen) == 0)
				break;
		if (i == n) {
			fprintf(stderr, "%s: unknown key '%.*s'\n", prog,
				(int)klen, argv[a]);
			goto bad;
		}
		if (args[i].seen) {
			fprintf(stderr, "%s: key '%s' given twice\n", prog,
				args[i].key);
			goto bad;
		}
		args[i].seen = 1;
		if (args[i].type == GUEST_ARG_STR) {
			*args[i].str = eq + 1;
			continue;
		}
		uint64_t v;
		if (parse_u64(eq + 1, &v) < 0 || v < args[i].min ||
		    v > args[i].max) {
			fprintf(stderr,
				"%s: %s='%s' is not a number in [%" PRIu64
				", %" PRIu64 "]\n",
				prog, args[i].key, eq + 1, args[i].min,
				args[i].max);
			goto bad;
		}
		*args[i].u64 = v;
	}
	return 0;
bad:
	usage(prog, args, n);
	return -EINVAL;
}
