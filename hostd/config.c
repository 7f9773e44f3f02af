// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * remusd serve's settings (see config.h).  One table lists every key
 * with its kind, its value's form and its help line; the file parser, the
 * option parser and the usage text all read it, so a key cannot be
 * settable one way and not the other, or undocumented.  A value is
 * parsed into a copy of the config that replaces the caller's only when
 * it is good, so a refused value changes nothing.
 */
#include "hostd/config.h"
#include "hostd/field.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

enum kind { K_HOSTPORT, K_STR, K_PATH, K_UINT, K_NETBUFFER, K_REPROTECT, K_PORTS, K_LOG,
	    K_BOOL, K_PATH_OFF /* K_PATH, or "off" for "" */ };

struct key {
	const char *name;      /* the file's key; the option is --name with - for _ */
	enum kind kind;
	const char *form;      /* what a value looks like, for messages and usage */
	const char *help;
	unsigned min, max;     /* K_UINT */
	size_t off, size;      /* K_STR, K_PATH, K_UINT: where in the struct */
};

#define STR(field) offsetof(struct remus_hostd_config, field), \
	sizeof(((struct remus_hostd_config *)0)->field)
#define UINT(field) offsetof(struct remus_hostd_config, field), sizeof(unsigned)

static const struct key keys[] = {
	{ "listen", K_HOSTPORT, "[HOST:]PORT", "the peer port other hosts' remusd serve "
	  "connect to (default 7790 on every address)", 0, 0, 0, 0 },
	{ "connect", K_STR, "URI", "the libvirt URI (default qemu:///system)", 0, 0,
	  STR(connect) },
	{ "ctl", K_PATH, "PATH", "the control socket remusctl talks to (default "
	  "/run/remus/remusd.sock)", 0, 0, STR(ctl) },
	{ "ctl_group", K_STR, "GROUP", "a group whose members may use the control socket "
	  "too (default: root only)", 0, 0, STR(ctl_group) },
	{ "state_dir", K_PATH, "DIR", "where protections are recorded (default "
	  "/var/lib/remus; domains/DOMAIN.json)", 0, 0, STR(state_dir) },
	{ "run_dir", K_PATH, "DIR", "the children's sockets (default /run/remus)", 0, 0,
	  STR(run_dir) },
	{ "metrics_listen", K_HOSTPORT, "[HOST:]PORT", "serve Prometheus metrics over HTTP "
	  "there (default: off)", 0, 0, 0, 0 },
	{ "name", K_STR, "NAME", "this host's name to its peers (default: the hostname)", 0, 0,
	  STR(host_name) },
	{ "remusd", K_PATH, "PATH", "the remusd binary the children run (default: this "
	  "one)", 0, 0, STR(remusd) },
	{ "interval", K_UINT, "MS", "default epoch interval of protect (default 1000)", 10,
	  3600000, UINT(interval_ms) },
	{ "pause_budget", K_UINT, "MS", "default pause budget of protect (default 300)", 1,
	  60000, UINT(pause_budget_ms) },
	{ "heartbeat", K_UINT, "MS", "replication heartbeat interval (default 100)", 10,
	  60000, UINT(heartbeat_ms) },
	{ "miss", K_UINT, "N", "missed heartbeats before a takeover (default 5)", 1, 1000,
	  UINT(heartbeat_miss) },
	{ "primary_miss", K_UINT, "N", "missed heartbeats before a primary runs on unprotected "
	  "(default 0: as miss; with a fence_command give more than miss plus the fence's "
	  "time)", 0, 1000, UINT(primary_miss) },
	{ "fence_command", K_STR, "CMD", "run by a standby (/bin/sh -c, with REMUS_PEER, the "
	  "primary's host) before it takes over; must power that host off and exit 0 "
	  "(default: none)", 0, 0, STR(fence_command) },
	{ "netbuffer", K_NETBUFFER, "qemu|plug|off", "default output commit of protect "
	  "(default qemu)", 0, 0, 0, 0 },
	{ "reprotect", K_REPROTECT, "auto|manual", "default re-protection after a failover "
	  "(default auto)", 0, 0, 0, 0 },
	{ "repl_ports", K_PORTS, "MIN-MAX", "the TCP ports of the replication links of "
	  "standbys on this host (default 7800-7899)", 0, 0, 0, 0 },
	{ "peer_timeout", K_UINT, "MS", "a peer that does not answer within this is dropped "
	  "(default 10000)", 100, 600000, UINT(peer_timeout_ms) },
	{ "copy_rate", K_UINT, "KIB/S", "how fast protect and unprotect copy a domain's "
	  "disks, in KiB/s (default 0: as fast as the disks go)", 0, 16777216,
	  UINT(copy_rate_kib) },
	{ "max_peer_sessions", K_UINT, "N", "authenticated peer sessions at once; more are "
	  "refused (default 16)", 1, 1024, UINT(max_peer_sessions) },
	{ "max_handshakes", K_UINT, "N", "TLS handshakes on the peer port at once, each "
	  "within peer_timeout; more are refused (default 4)", 1, 1024, UINT(max_handshakes) },
	{ "tls_psk", K_PATH, "FILE", "the pre-shared key of the peer port and the "
	  "replication links (remusctl keygen FILE; the children's --tls-psk)", 0, 0,
	  STR(tls_psk) },
	{ "tls_x509_dir", K_PATH, "DIR", "certificates in libvirt's layout for the peer port "
	  "and the replication links (/etc/pki/libvirt; the children's --tls-x509-dir)", 0, 0,
	  STR(tls_x509_dir) },
	{ "insecure", K_BOOL, "yes|no", "peer port and replication links without TLS, "
	  "warned at every session (default no; the children's --insecure)", 0, 0, 0, 0 },
	{ "ramfs_socket", K_PATH_OFF, "PATH|off", "the control socket of this host's remusd "
	  "ramfs, which holds the RAM files of domains with a shared file memoryBacking: "
	  "their engine runs v2 on it (the children's --ramfs; default /run/remus/ramfs.sock; "
	  "off: every domain runs v1)", 0, 0, STR(ramfs_socket) },
	{ "log", K_LOG, "error|warn|info|debug", "log level (default info, or $REMUS_LOG)", 0,
	  0, 0, 0 },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

void remus_hostd_config_init(struct remus_hostd_config *c)
{
	memset(c, 0, sizeof(*c));
	c->listen_port = REMUS_HOSTD_DEFAULT_PEER_PORT;
	snprintf(c->connect, sizeof(c->connect), "qemu:///system");
	snprintf(c->ctl, sizeof(c->ctl), "/run/remus/remusd.sock");
	snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/remus");
	snprintf(c->run_dir, sizeof(c->run_dir), "/run/remus");
	c->interval_ms = 1000;
	c->pause_budget_ms = 300;
	c->heartbeat_ms = 100;
	c->heartbeat_miss = 5;
	c->netbuffer = REMUS_HOSTD_NB_QEMU;
	c->reprotect = REMUS_HOSTD_REPROTECT_AUTO;
	c->repl_port_min = 7800;
	c->repl_port_max = 7899;
	c->peer_timeout_ms = 10000;
	c->create_standby_ms = 45000;
	c->max_peer_sessions = 16;
	c->max_handshakes = 4;
	/* dirty/dirty.h's REMUS_RAMFS_DEFAULT_SOCKET (hostd may not include
	 * dirty/; test_config checks that they agree) */
	snprintf(c->ramfs_socket, sizeof(c->ramfs_socket), "/run/remus/ramfs.sock");
}

/* A decimal without sign in @min..@max. */
static bool parse_num(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* "[HOST:]PORT" or "[V6]:PORT". */
static bool parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon = strrchr(s, ':'), *h = s, *p = s;
	size_t hl = 0;
	unsigned long v;

	if (colon) {
		hl = (size_t)(colon - s);
		p = colon + 1;
		if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
			h = s + 1;
			hl -= 2;
		} else if (memchr(s, ':', hl)) {
			return false;    /* a v6 address needs its brackets */
		}
	}
	if (hl >= hostlen || !parse_num(p, 1, 65535, &v))
		return false;
	memcpy(host, h, hl);
	host[hl] = 0;
	*port = (uint16_t)v;
	return true;
}

static const struct key *find_key(const char *name, char *norm, size_t normlen)
{
	size_t i;

	snprintf(norm, normlen, "%s", name);
	for (i = 0; norm[i]; i++)
		if (norm[i] == '-')
			norm[i] = '_';
	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, norm) == 0)
			return &keys[i];
	return NULL;
}

/* "--state-dir" or "remusd.conf:12: state_dir", for messages. */
static void describe(char *buf, size_t len, const struct key *k, const char *where)
{
	size_t i;

	if (where) {
		snprintf(buf, len, "%s: %s", where, k->name);
		return;
	}
	snprintf(buf, len, "--%s", k->name);
	for (i = 2; buf[i]; i++)
		if (buf[i] == '_')
			buf[i] = '-';
}

int remus_hostd_config_set(struct remus_hostd_config *c, const char *key, const char *value,
			   const char *where, char *err, size_t errlen)
{
	struct remus_hostd_config n = *c;
	char norm[64], what[300];
	const struct key *k = find_key(key, norm, sizeof(norm));
	unsigned long v, w;
	const char *dash;
	int lvl;

	if (!k) {
		if (where)
			return remus_hostd_fail(err, errlen, "%s: unknown key '%s' (see remusd serve --help for "
				    "the keys)", where, key);
		return remus_hostd_fail(err, errlen, "unknown option '--%s' for remusd serve (see remusd "
			    "serve --help)", key);
	}
	describe(what, sizeof(what), k, where);
	for (const char *p = value; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return remus_hostd_fail(err, errlen, "%s: the value has a control character", what);
	switch (k->kind) {
	case K_HOSTPORT:
		if (strcmp(k->name, "metrics_listen") == 0) {
			if (!*value || strcmp(value, "off") == 0) {
				n.metrics_port = 0;
				n.metrics_host[0] = 0;
				break;
			}
			if (!parse_hostport(value, n.metrics_host, sizeof(n.metrics_host),
					    &n.metrics_port))
				return remus_hostd_fail(err, errlen, "%s: '%s' is not [HOST:]PORT (PORT in "
					    "1..65535, [V6]:PORT) or off", what, value);
			break;
		}
		if (!parse_hostport(value, n.listen_host, sizeof(n.listen_host), &n.listen_port))
			return remus_hostd_fail(err, errlen, "%s: '%s' is not [HOST:]PORT (PORT in 1..65535, "
				    "[V6]:PORT)", what, value);
		break;
	case K_PATH_OFF:
		if (strcmp(value, "off") == 0) {
			*((char *)&n + k->off) = '\0';
			break;
		}
		/* fall through */
	case K_STR:
	case K_PATH:
		if (!*value && k->kind != K_STR)
			return remus_hostd_fail(err, errlen, "%s: the value is empty; expected %s", what,
				    k->form);
		if (k->kind != K_STR && value[0] != '/')
			return remus_hostd_fail(err, errlen, "%s: '%s' is not an absolute path", what, value);
		if (strlen(value) >= k->size)
			return remus_hostd_fail(err, errlen, "%s: '%.40s...' is longer than %zu bytes%s", what,
				    value, k->size - 1, k->size == REMUS_HOSTD_PATH_MAX
				    ? " (the limit of a unix socket path)" : "");
		memcpy((char *)&n + k->off, value, strlen(value) + 1);
		break;
	case K_UINT:
		if (!parse_num(value, k->min, k->max, &v))
			return remus_hostd_fail(err, errlen, "%s: '%s' is not a number of %s in %u..%u", what,
				    value, strcmp(k->form, "MS") == 0 ? "ms" : "heartbeats",
				    k->min, k->max);
		*(unsigned *)((char *)&n + k->off) = (unsigned)v;
		break;
	case K_NETBUFFER:
		if (strcmp(value, "qemu") == 0)
			n.netbuffer = REMUS_HOSTD_NB_QEMU;
		else if (strcmp(value, "plug") == 0)
			n.netbuffer = REMUS_HOSTD_NB_PLUG;
		else if (strcmp(value, "off") == 0)
			n.netbuffer = REMUS_HOSTD_NB_OFF;
		else
			return remus_hostd_fail(err, errlen, "%s: '%s' is not qemu, plug or off", what, value);
		break;
	case K_REPROTECT:
		if (strcmp(value, "auto") == 0)
			n.reprotect = REMUS_HOSTD_REPROTECT_AUTO;
		else if (strcmp(value, "manual") == 0)
			n.reprotect = REMUS_HOSTD_REPROTECT_MANUAL;
		else
			return remus_hostd_fail(err, errlen, "%s: '%s' is not auto or manual", what, value);
		break;
	case K_PORTS:
		dash = strchr(value, '-');
		if (dash && dash > value && dash - value < 6) {
			char lo[8];

			memcpy(lo, value, (size_t)(dash - value));
			lo[dash - value] = 0;
			if (parse_num(lo, 1, 65535, &v) && parse_num(dash + 1, 1, 65535, &w) &&
			    v <= w) {
				n.repl_port_min = (uint16_t)v;
				n.repl_port_max = (uint16_t)w;
				break;
			}
		}
		return remus_hostd_fail(err, errlen, "%s: '%s' is not a port range MIN-MAX (1 <= MIN <= MAX "
			    "<= 65535, e.g. 7800-7899)", what, value);
	case K_BOOL:
		if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0)
			n.insecure = true;
		else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0)
			n.insecure = false;
		else
			return remus_hostd_fail(err, errlen, "%s: '%s' is not yes or no", what, value);
		break;
	case K_LOG:
		if (remus_log_parse_level(value, (enum remus_log_level *)&lvl) < 0)
			return remus_hostd_fail(err, errlen, "%s: '%s' is not error, warn, info or debug", what,
				    value);
		n.log_level = lvl;
		n.log_level_given = true;
		break;
	}
	*c = n;
	return 0;
}

int remus_hostd_config_parse(struct remus_hostd_config *c, const char *path,
			     const char *text, size_t len, char *err, size_t errlen)
{
	bool seen[NKEYS] = { false };
	size_t pos = 0, lineno = 0;
	char line[4096], where[300], norm[64];
	int rc;

	if (len > REMUS_HOSTD_CONFIG_MAX_BYTES)
		return remus_hostd_fail(err, errlen, "%s: longer than %u bytes: not a config file", path,
			    REMUS_HOSTD_CONFIG_MAX_BYTES);
	if (memchr(text, 0, len))
		return remus_hostd_fail(err, errlen, "%s: has a NUL byte: not a text file", path);
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		char *k, *v, *eq, *e, *p;
		bool quoted = false;
		const struct key *key;

		lineno++;
		snprintf(where, sizeof(where), "%s:%zu", path, lineno);
		if (n >= sizeof(line))
			return remus_hostd_fail(err, errlen, "%s: the line is longer than %zu bytes", where,
				    sizeof(line) - 1);
		memcpy(line, text + pos, n);
		line[n] = 0;
		pos += n + (nl ? 1 : 0);
		if (n && line[n - 1] == '\r')
			line[--n] = 0;
		/* A comment: '#' at the start or after a blank, outside quotes. */
		for (p = line; *p; p++) {
			if (*p == '"')
				quoted = !quoted;
			else if (*p == '#' && !quoted && (p == line || p[-1] == ' ' || p[-1] == '\t'))
				break;
		}
		*p = 0;
		for (k = line; *k == ' ' || *k == '\t'; k++)
			;
		if (!*k)
			continue;
		eq = strchr(k, '=');
		if (!eq)
			return remus_hostd_fail(err, errlen, "%s: '%s' is not 'key = value'", where, k);
		for (e = eq; e > k && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		*e = 0;
		if (!*k)
			return remus_hostd_fail(err, errlen, "%s: no key before '='", where);
		for (v = eq + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		*e = 0;
		if (*v == '"') {
			if (e - v < 2 || e[-1] != '"' || memchr(v + 1, '"', (size_t)(e - v - 2)))
				return remus_hostd_fail(err, errlen, "%s: %s: the value's quotes do not match "
					    "(\"VALUE\", no quote inside)", where, k);
			e[-1] = 0;
			v++;
		}
		key = find_key(k, norm, sizeof(norm));
		if (key && strchr(k, '-'))
			return remus_hostd_fail(err, errlen, "%s: '%s': keys are written with '_' in the file "
				    "(%s)", where, k, key->name);
		if (key && seen[key - keys])
			return remus_hostd_fail(err, errlen, "%s: %s: given a second time (remove one)", where,
				    key->name);
		rc = remus_hostd_config_set(c, k, v, where, err, errlen);
		if (rc < 0)
			return rc;
		seen[key - keys] = true;
	}
	return 0;
}

int remus_hostd_config_load(struct remus_hostd_config *c, const char *path, bool must_exist,
			    char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	struct stat st;
	ssize_t r;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ENOENT && !must_exist)
			return 0;
		snprintf(err, errlen, "cannot read the config file %s: %s%s", path, strerror(-rc),
			 rc == -ENOENT ? " (give an existing file with --config, or none)" : "");
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot read the config file %s: %s", path, strerror(-rc));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(err, errlen, "cannot read the config file %s: not a regular file", path);
		goto out;
	}
	if ((size_t)st.st_size > REMUS_HOSTD_CONFIG_MAX_BYTES) {
		rc = remus_hostd_fail(err, errlen, "%s: longer than %u bytes: not a config file", path,
			  REMUS_HOSTD_CONFIG_MAX_BYTES);
		goto out;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		rc = -ENOMEM;
		snprintf(err, errlen, "cannot read the config file %s: out of memory", path);
		goto out;
	}
	while (len < (size_t)st.st_size) {
		r = read(fd, text + len, (size_t)st.st_size - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot read the config file %s: %s", path,
				 strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	rc = remus_hostd_config_parse(c, path, text, len, err, errlen);
out:
	free(text);
	close(fd);
	return rc;
}

int remus_hostd_config_from_args(struct remus_hostd_config *c, int argc, char *const *argv,
				 bool *help, char *err, size_t errlen)
{
	const char *config = REMUS_HOSTD_DEFAULT_CONFIG;
	bool named = false;
	char name[64];
	int i, rc;

	*help = false;
	/* First the file, wherever --config is, so the options win over it. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			*help = true;
			return 0;
		}
		if (strcmp(argv[i], "--config") == 0) {
			if (i + 1 >= argc || !*argv[i + 1])
				return remus_hostd_fail(err, errlen, "--config: needs a value: FILE");
			config = argv[++i];
			named = true;
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			config = argv[i] + 9;
			named = true;
		}
	}
	rc = remus_hostd_config_load(c, config, named, err, errlen);
	if (rc < 0)
		return rc;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *eqs, *v;
		size_t n;

		if (strncmp(a, "--", 2) != 0 || !a[2])
			return remus_hostd_fail(err, errlen, "unexpected argument '%s' (every remusd serve "
				    "option starts with --)", a);
		a += 2;
		eqs = strchr(a, '=');
		n = eqs ? (size_t)(eqs - a) : strlen(a);
		if (n >= sizeof(name))
			return remus_hostd_fail(err, errlen, "unknown option '%s' for remusd serve", argv[i]);
		memcpy(name, a, n);
		name[n] = 0;
		if (strchr(name, '_'))
			return remus_hostd_fail(err, errlen, "unknown option '--%s' for remusd serve (options "
				    "are written with '-')", name);
		if (eqs) {
			v = eqs + 1;
		} else {
			if (i + 1 >= argc)
				return remus_hostd_fail(err, errlen, "--%s: needs a value", name);
			v = argv[++i];
		}
		if (strcmp(name, "config") == 0)
			continue;
		rc = remus_hostd_config_set(c, name, v, NULL, err, errlen);
		if (rc < 0)
			return rc;
	}
	return 0;
}

void remus_hostd_config_usage(FILE *f)
{
	char opt[64];
	size_t i, j;

	fputs("usage: remusd serve [--config FILE] [--KEY VALUE]...\n"
	      "\n"
	      "The host daemon: protects this host's libvirt domains (remusctl protect)\n"
	      "and keeps the standbys of other hosts' domains.  Settings come from\n"
	      "--config FILE (default " REMUS_HOSTD_DEFAULT_CONFIG ", 'key = value' lines,\n"
	      "'#' comments), then the options; every key is an option (state_dir is\n"
	      "--state-dir):\n", f);
	for (i = 0; i < NKEYS; i++) {
		snprintf(opt, sizeof(opt), "--%s %s", keys[i].name, keys[i].form);
		for (j = 2; opt[j] && opt[j] != ' '; j++)
			if (opt[j] == '_')
				opt[j] = '-';
		fprintf(f, "  %-34s %s\n", opt, keys[i].help);
	}
}
