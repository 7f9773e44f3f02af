/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Test support: a fake QEMU monitor (QMP server) for unit tests.
 *
 * The fake runs on the caller's event loop, the same loop as the code
 * under test, not on a thread: nothing it does can interleave with the
 * code under test except between two callbacks, so a test sees one order
 * of events, needs no locks, and may assert from inside a handler.  It
 * sends the greeting, records every command it reads (name, arguments,
 * id, an fd passed with SCM_RIGHTS) in arrival order, and answers each
 * one by the first rule that applies:
 *
 *   1. the first rule scripted for the command's name that has uses left,
 *      else the first such rule for any name (remus_fake_qmp_script());
 *   2. else the policy: RETURN answers every command like a QEMU that
 *      accepts it ({} as return value; getfd keeps the fd under its
 *      fdname, closefd closes it), NOT_FOUND does the same for
 *      qmp_capabilities, getfd and closefd and answers everything else
 *      with CommandNotFound, MANUAL answers nothing (the test does).
 *
 * A rule answers with a return value, an error, later (a delay), never,
 * or hands the command to a callback that decides (answer now, later
 * through remus_fake_qmp_reply(), or never).  Events are sent with
 * remus_fake_qmp_event(), raw bytes with remus_fake_qmp_send().
 *
 * Fds: the QMP client sends an fd with the first byte of its command, and
 * a unix socket read stops right after the bytes that carried fds, so an
 * fd belongs to the last command that starts in the read that brought
 * it.  If no command starts in that read the fd came with the middle of
 * a command; it is then given to that command with fd_misplaced set.
 *
 * Replies and events are written at once with a blocking write: they are
 * small and the client reads them on the same loop; what a client that
 * closed its end would get is dropped.  Protocol errors of
 * the client (a line that is not a JSON object) fail the running cmocka
 * test.  Not thread-safe, like the loop.
 */
#ifndef REMUS_TESTS_SUPPORT_FAKE_QMP_H
#define REMUS_TESTS_SUPPORT_FAKE_QMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;
struct remus_loop;
struct remus_qmp;
struct remus_fake_qmp;

/* The greeting of QEMU 10.0.2 (no newline). */
#define REMUS_FAKE_QMP_GREETING \
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, " \
	"\"major\": 10}, \"package\": \"\"}, \"capabilities\": [\"oob\"]}}"

enum remus_fake_qmp_policy {
	REMUS_FAKE_QMP_RETURN,    /* accept everything (see above) */
	REMUS_FAKE_QMP_NOT_FOUND, /* CommandNotFound for what is not built in */
	REMUS_FAKE_QMP_MANUAL,    /* answer nothing, not even qmp_capabilities */
};

struct remus_fake_qmp_opts {
	const char *greeting;   /* borrowed, without newline; NULL: the default */
	bool no_greeting;       /* send none; the test sends it when it wants */
	enum remus_fake_qmp_policy policy;
};

/* One command as QEMU would have read it.  Owned by the fake, valid
 * until remus_fake_qmp_free(). */
struct remus_fake_qmp_cmd {
	uint64_t seq;             /* 1, 2, ... in arrival order */
	const char *name;         /* "execute"; "" if missing */
	struct json_object *args; /* "arguments" or NULL; borrowed */
	struct json_object *id;   /* "id" or NULL; borrowed */
	int fd;                   /* passed with it, or -1; the fake's until taken */
	bool fd_misplaced;        /* the fd came with the middle of the command */
	uint64_t offset;          /* stream offset of the command's first byte */
	uint64_t t_ms;            /* remus_now_ms() when it was read */
	bool answered;
	struct json_object *msg;  /* the whole message; owned by the fake */
};

/* Decides about @cmd (borrowed): answer now with remus_fake_qmp_reply*()
 * or remus_fake_qmp_builtin(), keep it and answer later, or never. */
typedef void remus_fake_qmp_cmd_cb(struct remus_fake_qmp *f,
				   struct remus_fake_qmp_cmd *cmd, void *opaque);

/* A scripted answer (copied by remus_fake_qmp_script()). */
struct remus_fake_qmp_rule {
	const char *ret;          /* JSON text of the return value; NULL: {} */
	const char *err_class;    /* not NULL: an error instead ... */
	const char *err_desc;     /* ... with this description */
	unsigned delay_ms;        /* answer this much later, from a loop timer */
	bool silent;              /* never answer */
	remus_fake_qmp_cmd_cb *cb;/* not NULL: the callback decides (all of
				   * the above is ignored) */
	void *opaque;             /* for @cb, borrowed */
	unsigned times;           /* 0: every matching command; n: the next n */
};

/*
 * A fake on a new socketpair: *@client_fd (owned by the caller, e.g.
 * taken by remus_qmp_open_fd()) is the client's end.  @loop borrowed,
 * must outlive the fake; @opts borrowed, NULL for defaults.  Returns 0
 * with *@out (owned: remus_fake_qmp_free()), or -errno.
 */
int remus_fake_qmp_new(struct remus_loop *loop, const struct remus_fake_qmp_opts *opts,
		       struct remus_fake_qmp **out, int *client_fd);
/* A fake that listens on the unix socket @path (borrowed) and serves the
 * first connection; remus_fake_qmp_free() removes the socket file. */
int remus_fake_qmp_listen(struct remus_loop *loop, const char *path,
			  const struct remus_fake_qmp_opts *opts,
			  struct remus_fake_qmp **out);
/*
 * The usual set-up of a test of code that takes a struct remus_qmp: a
 * fake (default options) whose every command goes to @cb with @opaque
 * (borrowed; @cb NULL: the RETURN policy answers), and a client named
 * "fake.qmp" connected to it and READY, in *@fake and *@client (owned:
 * free the client, then the fake).  Fails the test on any error.
 */
void remus_fake_qmp_pair(struct remus_loop *loop, remus_fake_qmp_cmd_cb *cb, void *opaque,
			 struct remus_fake_qmp **fake, struct remus_qmp **client);
/* Closes every fd (the connection, fds received and not taken), cancels
 * delayed answers, frees every command.  NULL is fine. */
void remus_fake_qmp_free(struct remus_fake_qmp *f);

/* Adds a rule for @name (borrowed, copied; NULL: any command), after the
 * rules already there.  Returns 0 or -ENOMEM. */
int remus_fake_qmp_script(struct remus_fake_qmp *f, const char *name,
			  const struct remus_fake_qmp_rule *rule);

/* Answers @cmd with the return value @ret_json (JSON text, NULL: {}). */
void remus_fake_qmp_reply(struct remus_fake_qmp *f, struct remus_fake_qmp_cmd *cmd,
			  const char *ret_json);
/* Answers @cmd with @ret (taken; NULL: {}). */
void remus_fake_qmp_reply_json(struct remus_fake_qmp *f, struct remus_fake_qmp_cmd *cmd,
			       struct json_object *ret);
/* Answers @cmd with {"error": {"class": @cls, "desc": @desc}}. */
void remus_fake_qmp_reply_error(struct remus_fake_qmp *f, struct remus_fake_qmp_cmd *cmd,
				const char *cls, const char *desc);
/* Answers @cmd as the policy would without rules (MANUAL: as RETURN). */
void remus_fake_qmp_builtin(struct remus_fake_qmp *f, struct remus_fake_qmp_cmd *cmd);
/* Sends the event @name with @data_json (JSON object text or NULL) and a
 * timestamp. */
void remus_fake_qmp_event(struct remus_fake_qmp *f, const char *name, const char *data_json);
/* Sends raw bytes (the greeting, a malformed line, a burst of replies). */
void remus_fake_qmp_send(struct remus_fake_qmp *f, const char *text);
void remus_fake_qmp_sendf(struct remus_fake_qmp *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Closes the server end: the client reads EOF. */
void remus_fake_qmp_close(struct remus_fake_qmp *f);
/* The server end (borrowed; -1 before a client connected or after
 * remus_fake_qmp_close()), for tricks such as shutdown(SHUT_RD). */
int remus_fake_qmp_fd(const struct remus_fake_qmp *f);
/* Stops (true) or resumes reading commands: a QEMU that does not read. */
void remus_fake_qmp_pause(struct remus_fake_qmp *f, bool paused);
/* True once the client closed its end (EOF read). */
bool remus_fake_qmp_peer_closed(const struct remus_fake_qmp *f);

/* Commands read so far, and the @i-th (0-based; NULL if none). */
size_t remus_fake_qmp_ncmds(const struct remus_fake_qmp *f);
struct remus_fake_qmp_cmd *remus_fake_qmp_cmd(const struct remus_fake_qmp *f, size_t i);
/* How many commands named @name were read. */
unsigned remus_fake_qmp_count(const struct remus_fake_qmp *f, const char *name);
/*
 * Runs the loop until a command arrives that no earlier call returned
 * (commands are returned in order, each once), fails the test unless it
 * is named @expect (NULL: any) or if none comes within @timeout_ms.
 */
struct remus_fake_qmp_cmd *remus_fake_qmp_next(struct remus_fake_qmp *f, const char *expect,
					       unsigned timeout_ms);

/*
 * The transcript since the last remus_fake_qmp_log_clear(): "name;" per
 * command, or "name value;" with the value of its first argument among
 * fdname, uri, path, id (strings as they are, others as JSON), e.g.
 * "getfd remus-mig;migrate fd:remus-mig;stop;".  qmp_capabilities is
 * left out.  Borrowed, valid until the next command or clear.
 */
const char *remus_fake_qmp_log(const struct remus_fake_qmp *f);
void remus_fake_qmp_log_clear(struct remus_fake_qmp *f);

/* The string argument @key of @cmd, or NULL. */
const char *remus_fake_qmp_arg(const struct remus_fake_qmp_cmd *cmd, const char *key);
/* The id of @cmd as an integer (fails the test if it is not one). */
int64_t remus_fake_qmp_cmd_id(const struct remus_fake_qmp_cmd *cmd);
/* Takes the fd passed with @cmd (owned by the caller now), or -1. */
int remus_fake_qmp_take_cmd_fd(struct remus_fake_qmp_cmd *cmd);
/* Takes the fd a built-in getfd stored under @fdname (owned by the
 * caller now), or -1 if there is none. */
int remus_fake_qmp_take_fd(struct remus_fake_qmp *f, const char *fdname);
/* Fds stored by built-in getfd and not taken or closed. */
unsigned remus_fake_qmp_nfds(const struct remus_fake_qmp *f);

#endif
