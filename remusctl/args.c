// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * remusctl's command line -> struct remusctl_args -> one request line.
 *
 * No getopt: options may come before or after the subcommand (`remusctl
 * --socket S status web1 --json`), so the parser first finds the
 * subcommand (the first word that is not an option or an option's
 * value, which needs the table below), then reads every option against
 * it.  Each option belongs to the subcommands in its mask (0: global);
 * one given to another subcommand is refused by name.  Nothing here
 * prints or touches global state: tests/unit/remusctl drives it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remusctl/cli.h"

#define BIT(c) (1u << (c))

enum opt_id { O_SOCKET, O_CONFIG, O_TIMEOUT, O_HELP, O_VERSION, O_STANDBY, O_INTERVAL,
	      O_NETBUFFER, O_PAUSE_BUDGET, O_REPROTECT, O_NO_WAIT, O_JSON, O_RELEASE_DISKS,
	      O_FORCE };

static const struct opt {
	const char *name;
	enum opt_id id;
	const char *metavar; /* NULL: a flag */
	unsigned cmds;       /* 0: every subcommand */
} opts[] = {
	{ "socket", O_SOCKET, "PATH", 0 },
	{ "config", O_CONFIG, "FILE", 0 },
	{ "timeout", O_TIMEOUT, "SECONDS", 0 },
	{ "help", O_HELP, NULL, 0 },
	{ "version", O_VERSION, NULL, 0 },
	{ "standby", O_STANDBY, "HOST[:PORT]", BIT(REMUSCTL_PROTECT) },
	{ "interval", O_INTERVAL, "MS", BIT(REMUSCTL_PROTECT) },
	{ "netbuffer", O_NETBUFFER, "qemu|plug|off", BIT(REMUSCTL_PROTECT) },
	{ "pause-budget", O_PAUSE_BUDGET, "MS", BIT(REMUSCTL_PROTECT) },
	{ "reprotect", O_REPROTECT, "auto|manual", BIT(REMUSCTL_PROTECT) },
	{ "no-wait", O_NO_WAIT, NULL, BIT(REMUSCTL_PROTECT) },
	{ "json", O_JSON, NULL, BIT(REMUSCTL_STATUS) | BIT(REMUSCTL_LIST) },
	{ "release-disks", O_RELEASE_DISKS, NULL, BIT(REMUSCTL_UNPROTECT) },
	{ "force", O_FORCE, NULL, BIT(REMUSCTL_UNPROTECT) },
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static const struct subcmd {
	const char *name;
	enum remusctl_cmd cmd;
	const char *usage;
} subcmds[] = {
	{ "protect", REMUSCTL_PROTECT,
	  "remusctl protect DOMAIN --standby HOST[:PORT] [--interval MS]\n"
	  "                 [--netbuffer qemu|plug|off] [--pause-budget MS]\n"
	  "                 [--reprotect auto|manual] [--no-wait]\n"
	  "    Protects the running libvirt domain DOMAIN of this host with a hot\n"
	  "    standby on HOST (its remusd serve; PORT default 7790), then shows the\n"
	  "    initial sync until the domain is protected, and its engine: v2, or\n"
	  "    v1 with what keeps v2 off (--no-wait: return once remusd accepted).\n"
	  "    Ctrl-C stops waiting; the protection goes on.\n"
	  "    Options left out take remusd's configured defaults.\n" },
	{ "status", REMUSCTL_STATUS,
	  "remusctl status [DOMAIN] [--json]\n"
	  "    The state of DOMAIN, or of every domain protected on this host (both\n"
	  "    roles); --json prints remusd's answer unchanged (remusctl(8)).\n" },
	{ "list", REMUSCTL_LIST,
	  "remusctl list [--json]\n"
	  "    One line per protected domain on this host: role, state, peer, since.\n" },
	{ "set-interval", REMUSCTL_SET_INTERVAL,
	  "remusctl set-interval DOMAIN MS\n"
	  "    Sets DOMAIN's checkpoint interval (10..3600000 ms) from its next epoch.\n" },
	{ "failover", REMUSCTL_FAILOVER,
	  "remusctl failover DOMAIN\n"
	  "    Planned switch: DOMAIN moves to its standby host, which becomes its\n"
	  "    primary (run on either host).\n" },
	{ "unprotect", REMUSCTL_UNPROTECT,
	  "remusctl unprotect DOMAIN [--release-disks] [--force]\n"
	  "    Ends DOMAIN's protection; the domain keeps running here on its own\n"
	  "    disks: they are copied live from remusd's export back to the files\n"
	  "    they were on (progress shown), remusd's child for it stops and its\n"
	  "    standby is destroyed.  --release-disks: the same (the default now).\n"
	  "    On the standby's host it discards a standby whose primary's host\n"
	  "    no longer runs DOMAIN (asked first); --force: without asking, for\n"
	  "    a primary's host that is gone for good.\n" },
	{ "keygen", REMUSCTL_KEYGEN,
	  "remusctl keygen FILE\n"
	  "    Writes a new pre-shared key for one pair of hosts to FILE, mode 0600,\n"
	  "    never over an existing file.  Copy it to the other host over a channel\n"
	  "    you trust and set tls_psk = FILE in both hosts' remusd.conf.  Runs on\n"
	  "    this host without remusd (the same as remusd keygen FILE).\n" },
};
#define NSUBCMDS (sizeof(subcmds) / sizeof(subcmds[0]))

static const char global_usage[] =
	"Global options (before or after the subcommand):\n"
	"  --socket PATH     remusd's control socket (default: $REMUS_CTL, else the\n"
	"                    config file's ctl key, else " REMUSCTL_DEFAULT_SOCKET ")\n"
	"  --config FILE     remusd's config file (default " REMUSCTL_DEFAULT_CONFIG ")\n"
	"  --timeout SECONDS how long to wait for remusd's answer\n"
	"  --help, -h        this help (after a subcommand: its help)\n"
	"  --version         remusctl's version\n"
	"Exit status: 0 done, 1 remusd refused or the operation failed (keygen: the\n"
	"file exists, or its directory is missing or not writable), 2 usage error,\n"
	"3 remusd not reachable.  See remusctl(8).\n";

const char *remusctl_cmd_name(enum remusctl_cmd cmd)
{
	for (size_t i = 0; i < NSUBCMDS; i++)
		if (subcmds[i].cmd == cmd)
			return subcmds[i].name;
	return "remusctl";
}

void remusctl_usage(FILE *f, enum remusctl_cmd cmd, bool brief)
{
	bool all = true;

	for (size_t i = 0; i < NSUBCMDS; i++)
		if (subcmds[i].cmd == cmd)
			all = false;
	fputs("usage:\n", f);
	for (size_t i = 0; i < NSUBCMDS; i++)
		if (all || subcmds[i].cmd == cmd)
			fprintf(f, "  %s", subcmds[i].usage);
	if (brief)
		fputs("Global options: --socket PATH, --config FILE, --timeout SECONDS "
		      "(remusctl --help)\n", f);
	else
		fputs(global_usage, f);
}

static int fail(struct remusctl_args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct remusctl_args *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->error, sizeof(a->error), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A decimal in @min..@max, nothing else (no sign, no suffix, no blanks). */
static int parse_uint(struct remusctl_args *a, const char *what, const char *s,
		      unsigned min, unsigned max, const char *unit, unsigned *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || *s < '0' || *s > '9' || v < min || v > max)
		return fail(a, "%s: '%s' is not a number of %s in %u..%u", what, s, unit,
			    min, max);
	*out = (unsigned)v;
	return 0;
}

static bool has_control_char(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* HOST, HOST:PORT, [V6], [V6]:PORT; a bare IPv6 address is ambiguous. */
static int check_standby(struct remusctl_args *a, const char *s)
{
	const char *port = NULL, *colon;
	unsigned p;

	if (has_control_char(s) || strchr(s, ' '))
		return fail(a, "--standby: '%s' has a blank or control character; expected "
			    "HOST[:PORT]", s);
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close == s + 1 || (close[1] && close[1] != ':'))
			return fail(a, "--standby: '%s' is not [ADDRESS] or [ADDRESS]:PORT", s);
		if (close[1] == ':')
			port = close + 2;
	} else {
		colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':'))
			return fail(a, "--standby: '%s': write an IPv6 address in brackets, "
				    "e.g. [%s]:%d", s, s, REMUSCTL_DEFAULT_PEER_PORT);
		if (colon == s)
			return fail(a, "--standby: '%s' has no HOST before the ':'", s);
		if (colon)
			port = colon + 1;
	}
	if (port && parse_uint(a, "--standby", port, 1, 65535, "a port", &p) < 0)
		return fail(a, "--standby: '%s': the PORT '%s' is not a number in 1..65535 "
			    "(default %d)", s, port, REMUSCTL_DEFAULT_PEER_PORT);
	return 0;
}

static int set_option(struct remusctl_args *a, const struct opt *o, const char *v)
{
	char what[40];

	snprintf(what, sizeof(what), "--%s", o->name);
	switch (o->id) {
	case O_SOCKET: a->socket = v; return 0;
	case O_CONFIG: a->config = v; return 0;
	case O_TIMEOUT:
		return parse_uint(a, what, v, 1, 86400, "seconds", &a->timeout_s);
	case O_HELP: return 0; /* handled by the caller */
	case O_VERSION: return 0;
	case O_STANDBY:
		a->standby = v;
		return check_standby(a, v);
	case O_INTERVAL:
		return parse_uint(a, what, v, 10, 3600000, "ms", &a->interval_ms);
	case O_PAUSE_BUDGET:
		return parse_uint(a, what, v, 1, 60000, "ms", &a->pause_budget_ms);
	case O_NETBUFFER:
		if (strcmp(v, "qemu") && strcmp(v, "plug") && strcmp(v, "off"))
			return fail(a, "--netbuffer: '%s' is not qemu, plug or off", v);
		a->netbuffer = v;
		return 0;
	case O_REPROTECT:
		if (strcmp(v, "auto") && strcmp(v, "manual"))
			return fail(a, "--reprotect: '%s' is not auto or manual", v);
		a->reprotect = v;
		return 0;
	case O_NO_WAIT: a->no_wait = true; return 0;
	case O_JSON: a->json = true; return 0;
	case O_RELEASE_DISKS: a->release_disks = true; return 0;
	case O_FORCE: a->force = true; return 0;
	}
	return fail(a, "%s: not handled (a bug)", what);
}

/* The option an argv word names ("--name" or "--name=value"); *@value
 * points after '=' or is NULL.  NULL when there is no such option. */
static const struct opt *find_opt(const char *word, const char **value)
{
	const char *name = word + 2, *eq = strchr(name, '=');
	size_t n = eq ? (size_t)(eq - name) : strlen(name);

	*value = eq ? eq + 1 : NULL;
	if (strcmp(word, "-h") == 0)
		return &opts[O_HELP];
	if (strncmp(word, "--", 2) != 0)
		return NULL;
	for (size_t i = 0; i < NOPTS; i++)
		if (strlen(opts[i].name) == n && strncmp(opts[i].name, name, n) == 0)
			return &opts[i];
	return NULL;
}

static bool is_option(const char *w)
{
	return w[0] == '-' && w[1] != 0;
}

/* First pass: the subcommand word's index, or 0 if none. */
static int find_subcmd(int argc, char *const *argv)
{
	const char *value;

	for (int i = 1; i < argc; i++) {
		const struct opt *o;

		if (strcmp(argv[i], "--") == 0)
			return i + 1 < argc ? i + 1 : 0;
		if (!is_option(argv[i]))
			return i;
		o = find_opt(argv[i], &value);
		if (o && o->metavar && !value)
			i++; /* its value, even if it looks like a word */
	}
	return 0;
}

static const char *cmds_of(unsigned mask, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	for (size_t i = 0; i < NSUBCMDS; i++)
		if (mask & BIT(subcmds[i].cmd))
			n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s",
					      n ? " and " : "", subcmds[i].name);
	return buf;
}

static int check_domain(struct remusctl_args *a, const char *d)
{
	if (!*d)
		return fail(a, "%s: the DOMAIN name is empty", remusctl_cmd_name(a->cmd));
	if (has_control_char(d))
		return fail(a, "%s: the DOMAIN name has a control character",
			    remusctl_cmd_name(a->cmd));
	a->domain = d;
	return 0;
}

/* The positional words after the subcommand, in @pos[0..@npos). */
static int check_positionals(struct remusctl_args *a, const char *const *pos, int npos)
{
	const char *name = remusctl_cmd_name(a->cmd);
	int max = 1, rc;

	switch (a->cmd) {
	case REMUSCTL_LIST: max = 0; break;
	case REMUSCTL_KEYGEN:
		if (npos > 1)
			return fail(a, "keygen: unexpected argument '%s' (one FILE only)", pos[1]);
		if (npos == 0)
			return fail(a, "keygen: missing FILE, where the new pre-shared key goes "
				    "(e.g. remusctl keygen /etc/remus/hostA-hostB.psk)");
		if (!*pos[0])
			return fail(a, "keygen: the FILE name is empty");
		a->key_file = pos[0];
		/* Nothing of remusd's is used: an option for it is a
		 * misunderstanding worth saying. */
		if (a->socket || a->config || a->timeout_s)
			return fail(a, "keygen runs on this host without remusd: --socket, "
				    "--config and --timeout do not apply");
		return 0;
	case REMUSCTL_SET_INTERVAL: max = 2; break;
	default: break;
	}
	if (npos > max)
		return fail(a, "%s: unexpected argument '%s'%s", name, pos[max],
			    max ? "" : " (list takes no DOMAIN; see status)");
	if (a->cmd == REMUSCTL_STATUS || a->cmd == REMUSCTL_LIST)
		return npos ? check_domain(a, pos[0]) : 0;
	if (npos == 0)
		return fail(a, "%s: missing the DOMAIN (the libvirt domain's name)", name);
	rc = check_domain(a, pos[0]);
	if (rc < 0)
		return rc;
	if (a->cmd == REMUSCTL_SET_INTERVAL) {
		if (npos < 2)
			return fail(a, "set-interval: missing MS, the new interval in ms "
				    "(10..3600000)");
		return parse_uint(a, "set-interval", pos[1], 10, 3600000, "ms", &a->interval_ms);
	}
	if (a->cmd == REMUSCTL_PROTECT && !a->standby)
		return fail(a, "protect: missing --standby HOST[:PORT] (the host whose remusd "
			    "keeps the standby)");
	return 0;
}

int remusctl_args_parse(struct remusctl_args *a, int argc, char *const *argv)
{
	const char **pos = NULL;
	bool help = false, version = false, dashdash = false;
	int sub, npos = 0, rc;
	char buf[128];

	memset(a, 0, sizeof(*a));
	sub = find_subcmd(argc, argv);
	if (sub) {
		if (strcmp(argv[sub], "help") == 0) {
			a->cmd = REMUSCTL_HELP;
			if (sub + 1 < argc) {
				for (size_t i = 0; i < NSUBCMDS; i++)
					if (strcmp(argv[sub + 1], subcmds[i].name) == 0)
						a->help_cmd = subcmds[i].cmd;
				if (a->help_cmd == REMUSCTL_NONE)
					return fail(a, "help: unknown subcommand '%s'", argv[sub + 1]);
			}
			return 0;
		}
		for (size_t i = 0; i < NSUBCMDS; i++)
			if (strcmp(argv[sub], subcmds[i].name) == 0)
				a->cmd = subcmds[i].cmd;
		if (a->cmd == REMUSCTL_NONE)
			return fail(a, "unknown subcommand '%s': expected protect, status, list, "
				    "set-interval, failover, unprotect or keygen", argv[sub]);
	}
	for (int i = 1; i < argc; i++) {
		const char *w = argv[i], *value;
		const struct opt *o;

		if (i == sub)
			continue;
		if (dashdash || !is_option(w)) {
			/* Words before the subcommand are values of options
			 * (find_subcmd skipped them) or the subcommand itself. */
			if (!pos)
				pos = calloc((size_t)argc, sizeof(*pos));
			if (!pos)
				return fail(a, "out of memory");
			pos[npos++] = w;
			continue;
		}
		if (strcmp(w, "--") == 0) {
			dashdash = true;
			if (i + 1 == sub)
				i++;
			continue;
		}
		o = find_opt(w, &value);
		if (!o) {
			rc = fail(a, "unknown option '%s' for remusctl%s%s", w, sub ? " " : "",
				  sub ? argv[sub] : "");
			goto out;
		}
		if (o->cmds && sub && !(o->cmds & BIT(a->cmd))) {
			rc = fail(a, "--%s is not an option of %s (it is one of %s)", o->name,
				  argv[sub], cmds_of(o->cmds, buf, sizeof(buf)));
			goto out;
		}
		if (!o->metavar && value) {
			rc = fail(a, "--%s takes no value ('%s')", o->name, w);
			goto out;
		}
		if (o->metavar && !value) {
			if (i + 1 >= argc) {
				rc = fail(a, "--%s: needs a value: %s", o->name, o->metavar);
				goto out;
			}
			value = argv[++i];
		}
		if (o->metavar && !*value) {
			rc = fail(a, "--%s: the value is empty; expected %s", o->name, o->metavar);
			goto out;
		}
		if (o->id == O_HELP)
			help = true;
		if (o->id == O_VERSION)
			version = true;
		if (o->cmds && !sub) {
			rc = fail(a, "--%s needs a subcommand first: %s", o->name,
				  cmds_of(o->cmds, buf, sizeof(buf)));
			goto out;
		}
		rc = set_option(a, o, value);
		if (rc < 0)
			goto out;
	}
	if (help) {
		a->help_cmd = a->cmd;
		a->cmd = REMUSCTL_HELP;
		rc = 0;
		goto out;
	}
	if (version) {
		a->cmd = REMUSCTL_VERSION;
		rc = 0;
		goto out;
	}
	if (!sub) {
		rc = fail(a, "missing the subcommand: protect, status, list, set-interval, "
			  "failover, unprotect or keygen");
		goto out;
	}
	rc = check_positionals(a, pos, npos);
out:
	free(pos);
	return rc;
}

char *remusctl_request(const struct remusctl_args *a)
{
	struct json_object *o = json_object_new_object();
	char *s = NULL;

	if (!o)
		return NULL;
	json_object_object_add(o, "cmd", json_object_new_string(remusctl_cmd_name(a->cmd)));
	if (a->domain)
		json_object_object_add(o, "domain", json_object_new_string(a->domain));
	switch (a->cmd) {
	case REMUSCTL_PROTECT:
		json_object_object_add(o, "standby", json_object_new_string(a->standby));
		if (a->interval_ms)
			json_object_object_add(o, "interval_ms",
					       json_object_new_int64(a->interval_ms));
		if (a->netbuffer)
			json_object_object_add(o, "netbuffer",
					       json_object_new_string(a->netbuffer));
		if (a->pause_budget_ms)
			json_object_object_add(o, "pause_budget_ms",
					       json_object_new_int64(a->pause_budget_ms));
		if (a->reprotect)
			json_object_object_add(o, "reprotect",
					       json_object_new_string(a->reprotect));
		break;
	case REMUSCTL_SET_INTERVAL:
		json_object_object_add(o, "interval_ms", json_object_new_int64(a->interval_ms));
		break;
	case REMUSCTL_UNPROTECT:
		json_object_object_add(o, "release_disks",
				       json_object_new_boolean(a->release_disks));
		if (a->force) /* only when given: an older remusd refuses the key */
			json_object_object_add(o, "force", json_object_new_boolean(true));
		break;
	default:
		break;
	}
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

/* Follows hostd/config.c's syntax (remusd(8), FILES): `key = value`,
 * `#` comments at the start of a line or after a blank outside quotes,
 * a value in double quotes; only "ctl" is taken, the rest is remusd's
 * business (it checks the keys when it starts). */
int remusctl_config_ctl(const char *conf, size_t len, char *out, size_t outlen,
			char *err, size_t errlen)
{
	size_t pos = 0;
	int lineno = 0, found = 0;
	char line[4096];

	while (pos < len) {
		const char *nl = memchr(conf + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (conf + pos)) : len - pos;
		bool quoted = false;
		char *k, *v, *eq, *e, *p;

		lineno++;
		if (n >= sizeof(line)) {
			snprintf(err, errlen, "line %d is longer than %zu bytes", lineno,
				 sizeof(line) - 1);
			return -EINVAL;
		}
		memcpy(line, conf + pos, n);
		line[n] = 0;
		pos += n + (nl ? 1 : 0);
		if (strlen(line) != n) {
			snprintf(err, errlen, "line %d has a NUL byte", lineno);
			return -EINVAL;
		}
		if (n && line[n - 1] == '\r')
			line[--n] = 0;
		for (p = line; *p; p++) {
			if (*p == '"')
				quoted = !quoted;
			else if (*p == '#' && !quoted && (p == line || p[-1] == ' ' ||
							  p[-1] == '\t'))
				break;
		}
		*p = 0;
		for (k = line; *k == ' ' || *k == '\t'; k++)
			;
		if (!*k)
			continue;
		eq = strchr(k, '=');
		if (!eq) {
			snprintf(err, errlen, "line %d is not 'key = value'", lineno);
			return -EINVAL;
		}
		for (e = eq; e > k && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		*e = 0;
		if (strcmp(k, "ctl") != 0)
			continue;
		for (v = eq + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		*e = 0;
		if (*v == '"') {
			if (e - v < 2 || e[-1] != '"' || memchr(v + 1, '"', (size_t)(e - v - 2))) {
				snprintf(err, errlen, "line %d: ctl: the value's quotes do not "
					 "match", lineno);
				return -EINVAL;
			}
			e[-1] = 0;
			v++;
		}
		if (found) {
			snprintf(err, errlen, "line %d: ctl: given a second time", lineno);
			return -EINVAL;
		}
		if (!*v || strlen(v) >= outlen) {
			snprintf(err, errlen, "line %d: ctl is %s", lineno,
				 *v ? "too long" : "empty");
			return -EINVAL;
		}
		memcpy(out, v, strlen(v) + 1);
		found = 1;
	}
	return found;
}
