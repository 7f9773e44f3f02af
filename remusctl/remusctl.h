/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The client side of remusd's control socket (common/ctl.h has the
 * server): one request line out, one JSON line back, then the daemon
 * closes.  This is what `remusd ctl SOCKET REQUEST...` runs today and
 * what the libvirt-facing `remusctl` will build on.  Everything here
 * blocks: it is for command-line tools, never for code on the loop.
 */
#ifndef REMUS_REMUSCTL_REMUSCTL_H
#define REMUS_REMUSCTL_REMUSCTL_H

#include <stdio.h>

/* How long a CLI waits for the daemon's answer. */
#define REMUS_CLI_TIMEOUT_MS 10000u
/* The longest answer line a CLI accepts (a status of many domains). */
#define REMUS_CLI_MAX_REPLY (1u << 20)

/*
 * Sends @request (borrowed, one line without the newline) to the control
 * socket at @path (borrowed) and waits up to @timeout_ms for the answer
 * line.  Returns 0 with *@reply (owned: free(); the JSON line without its
 * newline) or -errno (-ENOENT/-ECONNREFUSED: no daemon there, -ETIMEDOUT,
 * -ECONNRESET: closed without an answer, -EMSGSIZE: an answer longer than
 * REMUS_CLI_MAX_REPLY); *@reply is untouched then.  @timeout_ms bounds
 * each wait for more of the answer.
 */
int remus_cli_request(const char *path, const char *request, unsigned timeout_ms,
		      char **reply);

/*
 * Runs one control request given as words (@words[0..@nwords), borrowed;
 * joined with single spaces, e.g. {"set-interval", "300"}) against the
 * socket @path: prints the daemon's JSON answer on @out, and every
 * failure on @err prefixed with @prog (e.g. "remusd ctl").  Returns the
 * process exit status: 0 the daemon answered {"ok":...} without
 * "ok":false, 1 it answered an error or could not be reached, 2 the
 * request is empty or longer than one control line.
 */
int remus_cli_ctl(const char *prog, const char *path, int nwords, char *const *words,
		  FILE *out, FILE *err);

#endif
