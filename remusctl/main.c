// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * remusctl: the command-line client of `remusd serve` (remusctl(8)).
 * Everything is in remusctl_main (run.c); main() only hands it the
 * process: stdout/stderr, whether stdout is a terminal (progress bar),
 * $REMUS_CTL, and a SIGINT flag (Ctrl-C while `protect` waits stops the
 * waiting, not the protection; a second Ctrl-C ends remusctl at once).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "remusctl/cli.h"

static volatile sig_atomic_t interrupted;

/* The first Ctrl-C asks remusctl to stop waiting (it may be in a request
 * that remusd is still carrying out); a second one ends it at once. */
static void on_sigint(int sig)
{
	if (interrupted) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	interrupted = 1;
}

int main(int argc, char **argv)
{
	struct remusctl_io io = {
		.out = stdout,
		.err = stderr,
		.tty = isatty(STDOUT_FILENO) == 1,
		.env_ctl = getenv("REMUS_CTL"),
		.interrupted = &interrupted,
	};
	struct sigaction sa;
	struct winsize ws;

	if (io.tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
		io.columns = ws.ws_col;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	return remusctl_main(argc, argv, &io);
}
