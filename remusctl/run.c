// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * remusctl_main: one command line against remusd's control socket
 * (keygen: one key file written here, without remusd).
 *
 *   parse argv -> find the socket (--socket, $REMUS_CTL, the config's
 *   ctl key, the default) -> one request -> one answer -> exit code
 *
 * `protect` then polls `status` of its domain every io->poll_ms and
 * draws the initial sync (a bar on a terminal, a plain line at most
 * every io->plain_every_ms otherwise) until the domain is `protected`
 * (0) or `failed`/gone (1), then names its engine (v1 or v2 and why,
 * or "not decided yet" when we stop before the engine has picked one).
 * A SIGINT (io->interrupted) ends the wait only: remusd goes on
 * protecting, and we say so.
 *
 * `unprotect` is answered once the domain's disks are back on plain
 * files, which takes as long as they are big: meanwhile a thread polls
 * `status` on its own connections and draws the copy's progress the same
 * way; it stops (and is joined) before the answer is printed, so only
 * one thread writes at a time.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/loop.h"
#include "remusctl/cli.h"
#include "remusctl/remusctl.h"
#include "tls/tls.h"

#define BAR_WIDTH 30

static unsigned timeout_ms_of(const struct remusctl_args *a)
{
	if (a->timeout_s)
		return a->timeout_s * 1000u;
	switch (a->cmd) {
	case REMUSCTL_PROTECT:
	case REMUSCTL_FAILOVER:
		return 120000; /* remusd talks to the peer, creates the standby */
	case REMUSCTL_UNPROTECT:
		/* The disks are copied back: remusd fails a copy that stalls
		 * for a minute, not one that takes long. */
		return 24u * 3600u * 1000u;
	default:
		return REMUS_CLI_TIMEOUT_MS;
	}
}

/* Fills @path with the control socket; returns 0 or an exit code (the
 * reason printed). */
static int find_socket(const struct remusctl_args *a, const struct remusctl_io *io,
		       char *path, size_t len)
{
	const char *conf = a->config ? a->config : REMUSCTL_DEFAULT_CONFIG;
	char err[128], *text = NULL;
	size_t n = 0, cap = 0;
	FILE *f = NULL;
	int rc;

	if (a->socket || (io->env_ctl && *io->env_ctl)) {
		snprintf(path, len, "%s", a->socket ? a->socket : io->env_ctl);
		return 0;
	}
	snprintf(path, len, "%s", REMUSCTL_DEFAULT_SOCKET);
	f = fopen(conf, "re");
	if (!f) {
		if (!a->config && errno == ENOENT) {
			rc = 0;
			goto out;
		}
		fprintf(io->err, "remusctl: cannot read the config file %s: %s (give "
			"--socket PATH, or fix --config)\n", conf, strerror(errno));
		rc = a->config ? REMUSCTL_EXIT_USAGE : REMUSCTL_EXIT_FAILED;
		goto out;
	}
	for (;;) {
		size_t r;

		if (n == cap) {
			char *t = cap < (1u << 20) ? realloc(text, cap ? cap * 2 : 4096) : NULL;

			if (!t) {
				fprintf(io->err, "remusctl: the config file %s is too big (over "
					"1 MiB) or memory ran out\n", conf);
				rc = REMUSCTL_EXIT_FAILED;
				goto out;
			}
			text = t;
			cap = cap ? cap * 2 : 4096;
		}
		r = fread(text + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	rc = 0;
	if (remusctl_config_ctl(text, n, path, len, err, sizeof(err)) < 0) {
		fprintf(io->err, "remusctl: %s: %s (fix the file, or give --socket PATH)\n",
			conf, err);
		rc = REMUSCTL_EXIT_FAILED;
	}
out:
	if (f)
		fclose(f);
	free(text);
	return rc;
}

/* Sends @req; 0 with *@answer (owned) parsed, or an exit code with the
 * reason printed. */
static int ask(const char *sock, const char *req, unsigned timeout_ms,
	       const struct remusctl_io *io, char **line, struct json_object **answer)
{
	struct json_object *ok;
	int rc;

	*line = NULL;
	*answer = NULL;
	rc = remus_cli_request(sock, req, timeout_ms, line);
	if (rc == -ETIMEDOUT) {
		fprintf(io->err, "remusctl: remusd at %s did not answer within %u s (it may "
			"still carry the request out; see remusctl status, and remusd's log: "
			"journalctl -u remusd)\n", sock, timeout_ms / 1000);
		return REMUSCTL_EXIT_UNREACHABLE;
	}
	if (rc == -EACCES || rc == -EPERM) {
		fprintf(io->err, "remusctl: cannot connect to %s: %s (run remusctl as root, "
			"or as a member of the socket's group)\n", sock, strerror(-rc));
		return REMUSCTL_EXIT_UNREACHABLE;
	}
	if (rc < 0) {
		fprintf(io->err, "remusctl: cannot talk to remusd at %s: %s (is it running? "
			"systemctl start remusd; or give --socket PATH)\n", sock, strerror(-rc));
		return REMUSCTL_EXIT_UNREACHABLE;
	}
	*answer = json_tokener_parse(*line);
	if (!*answer || !json_object_is_type(*answer, json_type_object) ||
	    !json_object_object_get_ex(*answer, "ok", &ok) ||
	    !json_object_is_type(ok, json_type_boolean)) {
		char shown[256];

		remusctl_printable(shown, sizeof(shown), *line, 200);
		fprintf(io->err, "remusctl: remusd at %s answered something that is not a "
			"control answer (another version of remusd?): %s\n", sock, shown);
		json_object_put(*answer);
		*answer = NULL;
		return REMUSCTL_EXIT_FAILED;
	}
	return 0;
}

static bool answer_ok(struct json_object *answer)
{
	struct json_object *ok = NULL;

	json_object_object_get_ex(answer, "ok", &ok);
	return json_object_get_boolean(ok);
}

static const char *answer_str(struct json_object *answer, const char *key)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(answer, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Prints remusd's refusal: "remusctl: MESSAGE (code)". */
static void print_refusal(const struct remusctl_io *io, struct json_object *answer)
{
	const char *e = answer_str(answer, "error"), *code = answer_str(answer, "code");
	char msg[1100], c[64];

	remusctl_printable(msg, sizeof(msg), e ? e : "remusd refused without a reason", 1000);
	remusctl_printable(c, sizeof(c), code ? code : "", 40);
	fprintf(io->err, "remusctl: %s%s%s%s\n", msg, code ? " (" : "", c, code ? ")" : "");
}

/* The object of domain @d in a status answer. */
static struct json_object *domain_of(struct json_object *answer, const char *d)
{
	struct json_object *arr = NULL, *v = NULL;

	if (json_object_object_get_ex(answer, "status", &v) &&
	    json_object_is_type(v, json_type_object))
		return v;
	if (json_object_object_get_ex(answer, "domains", &arr) &&
	    json_object_is_type(arr, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			struct json_object *x = json_object_array_get_idx(arr, i);
			const char *n = json_object_is_type(x, json_type_object)
					? answer_str(x, "domain") : NULL;

			if (n && strcmp(n, d) == 0)
				return x;
		}
		return NULL;
	}
	return answer;
}

/* Why a domain's protection failed: last_failure as remusd serve gives
 * it (a string) or as the engine does ({"reason":...}); NULL if none. */
static const char *failure_reason(struct json_object *dom)
{
	struct json_object *lf = NULL;

	if (!json_object_object_get_ex(dom, "last_failure", &lf) || !lf)
		return NULL;
	if (json_object_is_type(lf, json_type_string))
		return json_object_get_string(lf);
	return json_object_is_type(lf, json_type_object) ? answer_str(lf, "reason") : NULL;
}

/* Protected: the engine's "protected": true (a primary's state reads
 * protected then, also during a checkpoint: hostd/words.h), or the state
 * itself. */
static bool is_protected(struct json_object *dom, const char *state)
{
	struct json_object *p = NULL;

	if (json_object_object_get_ex(dom, "protected", &p) &&
	    json_object_is_type(p, json_type_boolean))
		return json_object_get_boolean(p);
	return strcmp(state, "protected") == 0;
}

/* Failed for good: the engine failed or stopped, unless remusd serve
 * says it is restarting it (hostd maps that to "failed" too). */
static bool is_over(struct json_object *dom, const char *state)
{
	const char *host = answer_str(dom, "host_state");

	if (strcmp(state, "failed") != 0 && strcmp(state, "stopped") != 0)
		return false;
	return !host || (strcmp(host, "restarting") != 0 && strcmp(host, "starting") != 0);
}

static void sleep_ms(unsigned ms)
{
	/* poll() returns early on a signal: Ctrl-C is seen at once. */
	poll(NULL, 0, (int)ms);
}

/* Redraws the progress line in place; it must fit the terminal's width,
 * or the line wraps and \r no longer returns to its start.  The bar
 * shrinks first, then goes, then the text is cut. */
static void draw(const struct remusctl_io *io, const char *state,
		 const struct remusctl_progress *p)
{
	size_t max = (io->columns > 20 ? io->columns : 80) - 1, len;
	char text[512];
	int width = BAR_WIDTH;

	remusctl_progress_format(text, sizeof(text), state, p, true, width);
	len = strlen(text);
	if (len > max && p->known) {
		width -= (int)(len - max);
		if (width >= 10)
			remusctl_progress_format(text, sizeof(text), state, p, true, width);
		else
			remusctl_progress_format(text, sizeof(text), state, p, false, 0);
	}
	if (strlen(text) > max)
		text[max] = 0;
	fprintf(io->out, "\r\033[K%s", text);
}

/* Which engine the protection runs, as soon as it is known: the engine
 * picks v1 or v2 once it has checked QEMU's RAM, before its first epoch,
 * and until then its status reads v1 with engine_decided false, which
 * must not be shown as a choice.  A protected domain's engine has
 * decided (the standby's link opens after the choice), also from a
 * remusd whose status has no engine_decided yet.  Undecided (or no
 * status at all: @dom NULL) is said only if @say_undecided; a decided
 * engine the answer does not name (an old remusd) is not. */
static void print_engine(const struct remusctl_args *a, const struct remusctl_io *io,
			 struct json_object *dom, bool protected, bool say_undecided)
{
	const char *engine = dom ? answer_str(dom, "engine") : NULL;
	const char *why = dom ? answer_str(dom, "engine_reason") : NULL;
	struct json_object *d = NULL;
	bool decided = protected;
	char w[1100], e[16];

	if (dom && json_object_object_get_ex(dom, "engine_decided", &d) &&
	    json_object_is_type(d, json_type_boolean))
		decided = json_object_get_boolean(d);
	if (!decided) {
		if (say_undecided)
			fprintf(io->out, "%s: engine not decided yet: remusd picks v1 or v2 once "
				"it has checked the guest's RAM (remusctl status %s)\n", a->domain,
				a->domain);
		return;
	}
	if (!engine)
		return;
	remusctl_printable(e, sizeof(e), engine, 8);
	/* engine_reason reads "v1: WHY" (for v1 WHY names the fix) */
	if (why && strncmp(why, engine, strlen(engine)) == 0 && why[strlen(engine)] == ':')
		why += strlen(engine) + 1;
	while (why && *why == ' ')
		why++;
	if (!why || !*why) {
		fprintf(io->out, "%s: engine %s\n", a->domain, e);
		return;
	}
	remusctl_printable(w, sizeof(w), why, 1000);
	fprintf(io->out, "%s: engine %s: %s\n", a->domain, e, w);
}

/* Polls status of @a->domain until protected (0) or failed (1). */
static int wait_protected(const struct remusctl_args *a, const char *sock,
			  const struct remusctl_io *io)
{
	unsigned poll_ms = io->poll_ms ? io->poll_ms : 500;
	unsigned every = io->plain_every_ms ? io->plain_every_ms : 5000;
	char *req = NULL, *line = NULL, last_state[64] = "", text[512];
	struct json_object *last = NULL; /* the last status of the domain */
	uint64_t last_print = 0;
	bool drawn = false;
	struct remusctl_args st = *a;
	int rc;

	st.cmd = REMUSCTL_STATUS;
	req = remusctl_request(&st);
	if (!req) {
		fprintf(io->err, "remusctl: out of memory\n");
		return REMUSCTL_EXIT_FAILED;
	}
	for (;;) {
		struct json_object *answer = NULL, *dom;
		struct remusctl_progress p;
		const char *state;
		uint64_t now;

		if (io->interrupted && *io->interrupted) {
			fprintf(io->out, "%sstopped waiting: remusd goes on protecting %s "
				"(remusctl status %s)\n", drawn ? "\n" : "", a->domain, a->domain);
			print_engine(a, io, last, false, true);
			rc = REMUSCTL_EXIT_OK;
			break;
		}
		rc = ask(sock, req, REMUS_CLI_TIMEOUT_MS, io, &line, &answer);
		if (rc) {
			if (drawn)
				fputc('\n', io->out);
			fprintf(io->err, "remusctl: lost track of %s while waiting for its "
				"protection (remusctl status %s)\n", a->domain, a->domain);
			break;
		}
		free(line);
		line = NULL;
		if (!answer_ok(answer)) {
			if (drawn)
				fputc('\n', io->out);
			print_refusal(io, answer);
			json_object_put(answer);
			rc = REMUSCTL_EXIT_FAILED;
			break;
		}
		dom = domain_of(answer, a->domain);
		state = dom ? answer_str(dom, "state") : NULL;
		if (!state)
			state = "unknown";
		if (dom && is_protected(dom, state)) {
			const char *peer = answer_str(dom, "peer");

			if (drawn && io->tty)
				fputc('\n', io->out);
			char pr[128];

			remusctl_printable(pr, sizeof(pr), peer ? peer : a->standby, 100);
			fprintf(io->out, "%s: protected (standby %s)\n", a->domain, pr);
			print_engine(a, io, dom, true, true);
			json_object_put(answer);
			rc = REMUSCTL_EXIT_OK;
			break;
		}
		if (!dom || is_over(dom, state)) {
			const char *why = dom ? failure_reason(dom) : NULL;
			char w[1100], s[64];

			remusctl_printable(w, sizeof(w), why ? why : dom ? "no reason given (see "
					   "remusd's log: journalctl -u remusd)"
					   : "remusd no longer lists it", 1000);
			remusctl_printable(s, sizeof(s), dom ? state : "lost", 40);
			if (drawn && io->tty)
				fputc('\n', io->out);
			fprintf(io->err, "remusctl: %s: protection %s: %s\n", a->domain, s, w);
			/* the failure says what to do; the engine only if chosen */
			print_engine(a, io, dom, false, false);
			json_object_put(answer);
			rc = REMUSCTL_EXIT_FAILED;
			break;
		}
		remusctl_progress_of(dom, &p);
		now = remus_now_ms();
		if (io->tty) {
			draw(io, state, &p);
			drawn = true;
		} else if (strcmp(state, last_state) != 0 || now - last_print >= every) {
			char label[128];

			snprintf(label, sizeof(label), "%s %s", a->domain, state);
			remusctl_progress_format(text, sizeof(text), label, &p, false, 0);
			fprintf(io->out, "%s\n", text);
			last_print = now;
		}
		snprintf(last_state, sizeof(last_state), "%s", state);
		fflush(io->out);
		json_object_put(last);
		last = json_object_get(dom);
		json_object_put(answer);
		sleep_ms(poll_ms);
	}
	json_object_put(last);
	free(req);
	return rc;
}

/* unprotect's progress while remusd copies the disks back. */
struct copy_watch {
	const struct remusctl_args *a;
	const char *sock;
	const struct remusctl_io *io;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	bool drawn;     /* a bar is on the terminal's line */
};

static void *copy_watch_run(void *opaque)
{
	struct copy_watch *w = opaque;
	const struct remusctl_io *io = w->io;
	unsigned poll_ms = io->poll_ms ? io->poll_ms : 500;
	unsigned every = io->plain_every_ms ? io->plain_every_ms : 5000;
	struct remusctl_args st = *w->a;
	uint64_t last_print = 0;
	char *req, text[512];

	st.cmd = REMUSCTL_STATUS;
	req = remusctl_request(&st);
	pthread_mutex_lock(&w->lock);
	while (req && !w->stop) {
		struct json_object *answer, *dom;
		struct remusctl_progress p;
		struct timespec ts;
		char *line = NULL;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += poll_ms / 1000;
		ts.tv_nsec += (long)(poll_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&w->cond, &w->lock, &ts);
		if (w->stop)
			break;
		pthread_mutex_unlock(&w->lock);
		/* Quiet: the answer to unprotect itself says what went wrong. */
		answer = remus_cli_request(w->sock, req, REMUS_CLI_TIMEOUT_MS, &line) == 0
			 ? json_tokener_parse(line) : NULL;
		dom = answer && answer_ok(answer) ? domain_of(answer, w->a->domain) : NULL;
		if (dom) {
			remusctl_progress_of(dom, &p);
			if (p.known && io->tty) {
				draw(io, "releasing disks", &p);
				w->drawn = true;
			} else if (p.known && remus_now_ms() - last_print >= every) {
				char label[128];

				snprintf(label, sizeof(label), "%s releasing disks", w->a->domain);
				remusctl_progress_format(text, sizeof(text), label, &p, false, 0);
				fprintf(io->out, "%s\n", text);
				last_print = remus_now_ms();
			}
			fflush(io->out);
		}
		json_object_put(answer);
		free(line);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	free(req);
	return NULL;
}

/* Sends unprotect while copy_watch_run draws the progress. */
static int ask_unprotect(const struct remusctl_args *a, const char *sock, const char *req,
			 const struct remusctl_io *io, char **line, struct json_object **answer)
{
	struct copy_watch w = { .a = a, .sock = sock, .io = io };
	pthread_t t;
	bool watching;
	int rc;

	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	watching = pthread_create(&t, NULL, copy_watch_run, &w) == 0;
	rc = ask(sock, req, timeout_ms_of(a), io, line, answer);
	if (watching) {
		pthread_mutex_lock(&w.lock);
		w.stop = true;
		pthread_cond_signal(&w.cond);
		pthread_mutex_unlock(&w.lock);
		pthread_join(t, NULL);
	}
	if (w.drawn)
		fputc('\n', io->out);
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	return rc;
}

/* What an accepted command prints (not status/list). */
static void print_done(const struct remusctl_args *a, const struct remusctl_io *io,
		       struct json_object *answer)
{
	const char *msg = answer_str(answer, "message");

	switch (a->cmd) {
	case REMUSCTL_PROTECT:
		fprintf(io->out, "%s: protection accepted, standby on %s\n", a->domain,
			a->standby);
		break;
	case REMUSCTL_SET_INTERVAL:
		fprintf(io->out, "%s: checkpoint interval %u ms\n", a->domain, a->interval_ms);
		break;
	case REMUSCTL_FAILOVER:
		fprintf(io->out, "%s: failover accepted (remusctl status %s)\n", a->domain,
			a->domain);
		break;
	case REMUSCTL_UNPROTECT:
		if (json_object_object_get_ex(answer, "standby_discarded", NULL))
			fprintf(io->out, "%s: the standby here is discarded; remusd no longer "
				"keeps it\n", a->domain);
		else
			fprintf(io->out, "%s: unprotected; it runs here on its own disks\n",
				a->domain);
		break;
	default:
		break;
	}
	if (msg) {
		char m[1100];

		remusctl_printable(m, sizeof(m), msg, 1000);
		fprintf(io->out, "%s: %s\n", a->domain, m);
	}
	/* Done, with something left for the user (unprotect: a standby
	 * libvirt could not destroy). */
	if ((msg = answer_str(answer, "warning"))) {
		char m[1500];

		remusctl_printable(m, sizeof(m), msg, 1400);
		fprintf(io->err, "remusctl: warning: %s: %s\n", a->domain, m);
	}
}

/* keygen: the key is written by remus_tls_keygen, the same module that
 * loads it in remusd (--tls-psk, tls_psk), so the two cannot disagree on
 * its format or on the mode the loader insists on. */
static int keygen(const struct remusctl_args *a, const struct remusctl_io *io)
{
	char err[1024], full[PATH_MAX];
	const char *shown = a->key_file;

	if (remus_tls_keygen(a->key_file, err, sizeof(err)) < 0) {
		fprintf(io->err, "remusctl keygen: %s\n", err);
		return REMUSCTL_EXIT_FAILED;
	}
	/* remusd.conf wants a path that does not depend on the directory
	 * remusd starts in. */
	if (realpath(a->key_file, full))
		shown = full;
	fprintf(io->out, "wrote a new pre-shared key to %s (mode 0600)\n"
		"copy it to the other host over a channel you trust (e.g. scp), then set\n"
		"  tls_psk = %s\n"
		"in both hosts' /etc/remus/remusd.conf and restart remusd there\n", shown, shown);
	return REMUSCTL_EXIT_OK;
}

int remusctl_main(int argc, char *const *argv, const struct remusctl_io *io)
{
	struct remusctl_args a;
	struct json_object *answer = NULL;
	char sock[4096], *req = NULL, *line = NULL;
	int rc;

	if (remusctl_args_parse(&a, argc, argv) < 0) {
		fprintf(io->err, "remusctl: %s\n", a.error);
		remusctl_usage(io->err, a.cmd, true);
		return REMUSCTL_EXIT_USAGE;
	}
	if (a.cmd == REMUSCTL_HELP) {
		remusctl_usage(io->out, a.help_cmd, false);
		return REMUSCTL_EXIT_OK;
	}
	if (a.cmd == REMUSCTL_VERSION) {
		fprintf(io->out, "remusctl %s\n", REMUS_VERSION);
		return REMUSCTL_EXIT_OK;
	}
	if (a.cmd == REMUSCTL_KEYGEN)
		return keygen(&a, io);
	rc = find_socket(&a, io, sock, sizeof(sock));
	if (rc)
		return rc;
	req = remusctl_request(&a);
	if (!req) {
		fprintf(io->err, "remusctl: out of memory\n");
		return REMUSCTL_EXIT_FAILED;
	}
	if (a.cmd == REMUSCTL_UNPROTECT)
		rc = ask_unprotect(&a, sock, req, io, &line, &answer);
	else
		rc = ask(sock, req, timeout_ms_of(&a), io, &line, &answer);
	if (rc)
		goto out;
	if (a.json)
		fprintf(io->out, "%s\n", line);
	if (!answer_ok(answer)) {
		print_refusal(io, answer);
		rc = REMUSCTL_EXIT_FAILED;
		goto out;
	}
	switch (a.cmd) {
	case REMUSCTL_STATUS:
		if (!a.json)
			remusctl_render_status(io->out, answer, time(NULL));
		break;
	case REMUSCTL_LIST:
		if (!a.json)
			remusctl_render_list(io->out, answer, time(NULL));
		break;
	case REMUSCTL_PROTECT:
		print_done(&a, io, answer);
		fflush(io->out);
		if (!a.no_wait)
			rc = wait_protected(&a, sock, io);
		else
			print_engine(&a, io, NULL, false, true);
		break;
	default:
		print_done(&a, io, answer);
		break;
	}
out:
	json_object_put(answer);
	free(line);
	free(req);
	return rc;
}
