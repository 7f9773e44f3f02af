/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The words remusctl(8) shows for the state of a protected domain: one
 * table for status (its JSON and its text), list and the metrics' state
 * label, so that the same domain reads the same in each of them.
 *
 * Where a word comes from: while the domain's child runs, the child's
 * own state (the engine's names, controller/engine.h, on a primary; the
 * standby's, failover/standby.h), mapped here; otherwise the host
 * daemon's view (hostd.c, user_state), which picks a word of this table
 * too.  A checkpoint in progress reads protected: it is a moment of a
 * protected domain, and list and the metrics' labels would otherwise
 * flip at every epoch while status said "checkpoint".  The child's own
 * word stays in status, under child.state.
 */
#ifndef REMUS_HOSTD_WORDS_H
#define REMUS_HOSTD_WORDS_H

enum remus_hostd_word {
	/* primary */
	REMUS_HOSTD_WORD_STARTING,
	REMUS_HOSTD_WORD_SYNCING,
	REMUS_HOSTD_WORD_PROTECTED,
	REMUS_HOSTD_WORD_UNPROTECTED,
	REMUS_HOSTD_WORD_FAILED,
	REMUS_HOSTD_WORD_STOPPED,
	REMUS_HOSTD_WORD_RELEASING,
	REMUS_HOSTD_WORD_HANDED_OVER,
	/* standby */
	REMUS_HOSTD_WORD_WAITING,
	REMUS_HOSTD_WORD_RECEIVING,
	REMUS_HOSTD_WORD_FAILOVER,
	REMUS_HOSTD_WORD_ACTIVE,
	/* a child's word this remusd serve does not know (child.state has it) */
	REMUS_HOSTD_WORD_UNKNOWN,
};
#define REMUS_HOSTD_NWORDS (REMUS_HOSTD_WORD_UNKNOWN + 1)

/* "protected", ...; "unknown" for a value out of range.  Static. */
const char *remus_hostd_word_name(enum remus_hostd_word w);

/* The word shown for a child's state @state (borrowed; NULL: unknown):
 * the engine's checkpoint reads protected, the others their own name.
 * @committed is the child's "protected" flag (1, 0; -1 when it gave
 * none): a checkpoint of a session that has not committed yet is the
 * initial sync's last step, so it reads syncing, not protected. */
enum remus_hostd_word remus_hostd_word_of_child(const char *state, int committed);

#endif
