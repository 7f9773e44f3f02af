/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Arguments of the guest programs: every argv entry is one "key=value".
 *
 * The guest's /init turns the kernel command line parameter
 * "remus.args=mb=16,mbps=4" into argv { "dirty", "mb=16", "mbps=4" }, and the
 * same binaries run on the host as "./dirty mb=16 mbps=4".  A program
 * declares the keys it knows in a table; an unknown key, a missing "=" or a
 * malformed number is an error that names the key and lists the valid ones,
 * so a typo on a kernel command line never silently falls back to a default.
 */
#ifndef REMUS_GUEST_ARGS_H
#define REMUS_GUEST_ARGS_H

#include <stdint.h>

enum guest_arg_type {
	GUEST_ARG_U64,  /* decimal or 0x-hex; @u64 */
	GUEST_ARG_STR,  /* borrowed from argv; @str */
};

struct guest_arg {
	const char *key;
	enum guest_arg_type type;
	const char *help;
	uint64_t min, max;     /* GUEST_ARG_U64 only: accepted range */
	uint64_t *u64;         /* borrowed; written when the key is given */
	const char **str;      /* borrowed; set to point into argv */
	int seen;              /* set to 1 when the key was given */
};

/*
 * Parses argv[1..argc-1] against @args (@n entries).  Returns 0, or -EINVAL
 * after printing "@prog: <problem>" and the list of keys to stderr.
 */
int guest_args_parse(const char *prog, struct guest_arg *args, int n,
		     int argc, char **argv);

#endif
