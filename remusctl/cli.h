/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The `remusctl` binary, in three layers that tests drive separately:
 *
 *   argv --remusctl_args_parse--> struct remusctl_args   (pure: no I/O)
 *        --remusctl_request-----> one JSON request line    (pure)
 *        --remus_cli_request----> the daemon's answer line (remusctl.h)
 *        --remusctl_render_*----> text on a FILE           (pure but for the FILE)
 *
 * One subcommand talks to no daemon: `remusctl keygen FILE` writes a
 * pre-shared key for a pair of hosts here, with remus_tls_keygen()
 * (tls/tls.h), the same code that reads the key back in remusd, so it
 * works before any remusd is set up.
 *
 * remusctl_main() runs the whole thing against a control socket, with
 * the process's streams, terminal and signal flag passed in (struct
 * remusctl_io), so the unit tests run it in-process against a fake
 * remusd.  The protocol is docs/DESIGN-10's control protocol: one JSON
 * object line per connection, one JSON answer line; doc/man/remusctl.8
 * documents the keys and the exit codes below.
 */
#ifndef REMUS_REMUSCTL_CLI_H
#define REMUS_REMUSCTL_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <json-c/json.h>

/* Exit codes of remusctl (remusctl(8), EXIT STATUS). */
enum {
	REMUSCTL_EXIT_OK = 0,
	REMUSCTL_EXIT_FAILED = 1,      /* remusd refused, or the operation failed
				* (keygen: the file exists, no such
				* directory, not allowed to write there) */
	REMUSCTL_EXIT_USAGE = 2,       /* the command line cannot be used */
	REMUSCTL_EXIT_UNREACHABLE = 3, /* no answer from remusd's control socket */
};

#define REMUSCTL_DEFAULT_SOCKET "/run/remus/remusd.sock"
#define REMUSCTL_DEFAULT_CONFIG "/etc/remus/remusd.conf"
#define REMUSCTL_DEFAULT_PEER_PORT 7790

enum remusctl_cmd {
	REMUSCTL_NONE,       /* no subcommand: usage error */
	REMUSCTL_HELP,       /* --help (of @help_cmd, or of remusctl) */
	REMUSCTL_VERSION,
	REMUSCTL_PROTECT,
	REMUSCTL_STATUS,
	REMUSCTL_LIST,
	REMUSCTL_SET_INTERVAL,
	REMUSCTL_FAILOVER,
	REMUSCTL_UNPROTECT,
	REMUSCTL_KEYGEN,     /* local: writes a pre-shared key file */
};

/*
 * One parsed command line.  Strings are borrowed from argv (which must
 * outlive the struct); nothing here is allocated, so there is no
 * release.  An option that was not given keeps its zero value and is
 * left out of the request: remusd applies its own (configured) default.
 */
struct remusctl_args {
	enum remusctl_cmd cmd;
	enum remusctl_cmd help_cmd;  /* REMUSCTL_HELP: whose usage (NONE: all) */
	const char *socket;          /* --socket, or NULL */
	const char *config;          /* --config, or NULL */
	unsigned timeout_s;          /* --timeout, 0: the command's default */
	const char *domain;
	const char *key_file;        /* keygen FILE */
	const char *standby;         /* protect: HOST[:PORT] as given */
	unsigned interval_ms;        /* protect --interval, set-interval MS */
	unsigned pause_budget_ms;
	const char *netbuffer;       /* "qemu", "plug", "off" or NULL */
	const char *reprotect;       /* "auto", "manual" or NULL */
	bool no_wait, json, release_disks, force;
	char error[512];             /* why parsing failed */
};

/* Parses @argv[0..@argc) (borrowed, not modified; argv[0] the program).
 * Returns 0, or -EINVAL with @a->error saying what is wrong (the caller
 * prints it and the usage of @a->cmd, if known). */
int remusctl_args_parse(struct remusctl_args *a, int argc, char *const *argv);

/* Prints the usage of @cmd (REMUSCTL_NONE: every subcommand) on @f;
 * @brief: one line on the global options instead of their list (after a
 * usage error). */
void remusctl_usage(FILE *f, enum remusctl_cmd cmd, bool brief);

/* The subcommand's name ("set-interval"), or "remusctl" for NONE/HELP. */
const char *remusctl_cmd_name(enum remusctl_cmd cmd);

/* The request line for @a (a subcommand that talks to remusd: not
 * keygen), without the newline.  Returns it owned (free()), or NULL on
 * ENOMEM. */
char *remusctl_request(const struct remusctl_args *a);

/*
 * The value of key "ctl" in a remusd.conf text @conf (borrowed, @len
 * bytes, need not be NUL-terminated), read with remusd's syntax
 * (hostd/config.h: `key = value`, `#` comments, "quoted" values).
 * Copies it into @out (@outlen bytes) and returns 1, returns 0 when there
 * is none, or -EINVAL with @err saying which line is wrong (not a pair,
 * ctl empty, too long, given twice).  Other keys are not checked.
 */
int remusctl_config_ctl(const char *conf, size_t len, char *out, size_t outlen,
			char *err, size_t errlen);

/* Renders a status answer (borrowed; {"domains":[...]}, {"status":{}},
 * or one domain's keys at the top level) as one block per domain; any
 * key may be missing, null or of the wrong type ("-" then).  @now is the
 * wall clock for "since" ages. */
void remusctl_render_status(FILE *f, struct json_object *answer, time_t now);
/* Renders a list answer ({"domains":[{domain,role,state,peer,since}]})
 * as a table with a header line, or "no protected domains". */
void remusctl_render_list(FILE *f, struct json_object *answer, time_t now);

/* Initial-sync progress summed over status's initial_sync and disks. */
struct remusctl_progress {
	bool known;           /* some total > 0 was reported */
	uint64_t bytes, total;
	double percent;       /* 0..100 */
	double rate_bps;      /* < 0: unknown */
	double eta_s;         /* < 0: unknown */
};

/* Fills @p from one domain's status object (borrowed). */
void remusctl_progress_of(const struct json_object *dom, struct remusctl_progress *p);
/* One progress line without a newline into @buf (@len bytes): with
 * @bar a [####----] bar of @width cells first.  @state labels it. */
void remusctl_progress_format(char *buf, size_t len, const char *state,
			      const struct remusctl_progress *p, bool bar, int width);

/* @s (borrowed; from remusd) made fit for a terminal into @buf (@len
 * bytes): control characters become '?', at most @max characters, then
 * "...". */
void remusctl_printable(char *buf, size_t len, const char *s, size_t max);

/* "1.5 GiB", "12.0 MiB", "512 B" into @buf. */
void remusctl_fmt_bytes(char *buf, size_t len, double bytes);
/* "4 s", "2 min 5 s", "1 h 3 min", "3 d 2 h" into @buf. */
void remusctl_fmt_duration(char *buf, size_t len, double seconds);

/* The process around remusctl_main: its streams, whether @out is a
 * terminal (progress bar) and how wide, how often protect polls status,
 * and the flag a SIGINT handler sets (NULL: none).  @env_ctl is
 * $REMUS_CTL. */
struct remusctl_io {
	FILE *out, *err;
	bool tty;
	unsigned columns;             /* the terminal's width; 0: 80 */
	unsigned poll_ms;             /* 0: 500 */
	unsigned plain_every_ms;      /* non-tty progress lines; 0: 5000 */
	const char *env_ctl;
	volatile sig_atomic_t *interrupted;
};

/* Runs one remusctl command line; returns the exit code. */
int remusctl_main(int argc, char *const *argv, const struct remusctl_io *io);

#endif
