// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The state words of remusctl(8) (words.h): the names, and the child's
 * state names mapped onto them.  A new state of the engine or the
 * standby needs a row below (tests/unit/hostd/test_words.c walks both
 * state machines and the man page).
 */
#include "hostd/words.h"

#include <stddef.h>
#include <string.h>

static const char *const names[REMUS_HOSTD_NWORDS] = {
	[REMUS_HOSTD_WORD_STARTING] = "starting",
	[REMUS_HOSTD_WORD_SYNCING] = "syncing",
	[REMUS_HOSTD_WORD_PROTECTED] = "protected",
	[REMUS_HOSTD_WORD_UNPROTECTED] = "unprotected",
	[REMUS_HOSTD_WORD_FAILED] = "failed",
	[REMUS_HOSTD_WORD_STOPPED] = "stopped",
	[REMUS_HOSTD_WORD_RELEASING] = "releasing",
	[REMUS_HOSTD_WORD_HANDED_OVER] = "handed-over",
	[REMUS_HOSTD_WORD_WAITING] = "waiting",
	[REMUS_HOSTD_WORD_RECEIVING] = "receiving",
	[REMUS_HOSTD_WORD_FAILOVER] = "failover",
	[REMUS_HOSTD_WORD_ACTIVE] = "active",
	[REMUS_HOSTD_WORD_UNKNOWN] = "unknown",
};

/* The child's words (engine, then standby) that are not ours as such. */
static const struct {
	const char *child;
	enum remus_hostd_word word;
} child_words[] = {
	{ "checkpoint", REMUS_HOSTD_WORD_PROTECTED },
};

const char *remus_hostd_word_name(enum remus_hostd_word w)
{
	return (unsigned)w < REMUS_HOSTD_NWORDS ? names[w] : names[REMUS_HOSTD_WORD_UNKNOWN];
}

enum remus_hostd_word remus_hostd_word_of_child(const char *state, int committed)
{
	size_t i;

	if (!state)
		return REMUS_HOSTD_WORD_UNKNOWN;
	/* Before the session's first commit remusctl protect still waits:
	 * "protected" there, then "syncing" again, read as a step back. */
	if (committed == 0 && strcmp(state, "checkpoint") == 0)
		return REMUS_HOSTD_WORD_SYNCING;
	for (i = 0; i < sizeof(child_words) / sizeof(child_words[0]); i++)
		if (strcmp(child_words[i].child, state) == 0)
			return child_words[i].word;
	/* The child's own names that are ours too; releasing and
	 * handed-over are the host's only. */
	for (i = 0; i < (size_t)REMUS_HOSTD_WORD_UNKNOWN; i++)
		if (i != (size_t)REMUS_HOSTD_WORD_RELEASING && i != (size_t)REMUS_HOSTD_WORD_HANDED_OVER &&
		    strcmp(names[i], state) == 0)
			return (enum remus_hostd_word)i;
	return REMUS_HOSTD_WORD_UNKNOWN;
}
