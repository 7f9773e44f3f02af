// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * remusd's command line -> struct remusd_options.
 *
 * Parsing has no side effects (it prints nothing and touches no global
 * state but getopt's), so tests/unit/daemon drives it directly.  Each
 * error says which option, what value, and what was expected, in
 * o->error; main() prints it.  getopt runs with "+:" so that argv is
 * never permuted, a missing value is told apart from an unknown option,
 * and getopt prints nothing itself.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"

void remusd_usage(FILE *f)
{
	fputs("usage:\n"
	      "  remusd serve [--config FILE] [--KEY VALUE]...   (remusd serve --help)\n"
	      "  remusd primary --qmp PATH --standby HOST:PORT [--interval MS]\n"
	      "                 [--heartbeat MS] [--miss N] [--primary-miss N]\n"
	      "                 [--no-dedup] [--reconnect MS]\n"
	      "                 [--pause-budget MS] [--ctl PATH]\n"
	      "                 [--engine auto|v1|v2] [--ram-dir DIR --ram-size MIB]\n"
	      "                 [--ram-backend ID] [--ramfs SOCKET]\n"
	      "                 [--netbuffer qemu|plug|off] [--netdev ID]... [--tap IF]...\n"
	      "                 [--nb-limit BYTES] [--nb-on-lost release|hold]\n"
	      "                 [--disk NAME,image=PATH,socket=PATH]...\n"
	      "                 [--metrics FILE] [--log LEVEL] [--name DOMAIN]\n"
	      "                 (--tls-psk FILE | --tls-x509-dir DIR | --insecure)\n"
	      "  remusd standby --qmp PATH --incoming PATH --listen [HOST:]PORT\n"
	      "                 [--heartbeat MS] [--miss N] [--primary-miss N]\n"
	      "                 [--vm-name NAME] [--manual]\n"
	      "                 [--fence CMD] [--on-activate CMD] [--ctl PATH]\n"
	      "                 [--report FILE] [--exit-after-failover] [--log LEVEL]\n"
	      "                 [--disk NAME,image=PATH,socket=PATH]... [--journal PATH]\n"
	      "                 [--epoch-mem MB] [--spill-dir DIR] [--name DOMAIN]\n"
	      "                 [--ramfs SOCKET] (its engine's, once it protects)\n"
	      "                 (--tls-psk FILE | --tls-x509-dir DIR | --insecure)\n"
	      "                 [--tls-handshake-timeout MS] [--max-handshakes N]\n"
	      "                 [--tls-peer-identity DN] (x509)\n"
	      "  both roles, x509: [--tls-ca FILE] [--tls-cert FILE] [--tls-key FILE]\n"
	      "                 [--tls-peer-name NAME]\n"
	      "  both roles: [--ctl-group GROUP] (who besides root may use --ctl)\n"
	      "                 [--qmp-wait MS] (how long start-up waits for QEMU's\n"
	      "                 monitor, default 10000; 0: no limit, as remusd serve\n"
	      "                 starts its children before their domain's disks are\n"
	      "                 moved, which takes as long as the disks are big)\n"
	      "  remusd ctl SOCKET status|set-interval MS|set-pause-budget MS|failover|\n"
	      "                   unprotect|protect HOST:PORT\n"
	      "  remusd keygen FILE\n"
	      "  remusd ramfs --mount DIR [--socket PATH] [--allow-other] [--log LEVEL]\n"
	      "\n"
	      "remusd serve is the host daemon (one per host, the systemd unit runs it):\n"
	      "remusctl talks to it, and it runs the primary and standby roles below\n"
	      "for each protected libvirt domain.  The roles can also be run by hand.\n"
	      "\n"
	      "The primary protects the QEMU whose QMP socket is --qmp: it checkpoints\n"
	      "it every --interval ms (default 1000) to the standby remusd at --standby.\n"
	      "An epoch ends only once QEMU's copy of the guest's RAM has converged, so\n"
	      "the first one (the initial sync, the guest still UNPROTECTED) and those of\n"
	      "a big guest last longer.  --pause-budget (default 300 ms) bounds how long\n"
	      "a checkpoint keeps the guest stopped: past it the checkpoint is abandoned,\n"
	      "the guest resumed, and the standby resynced with a full epoch.\n"
	      "remusd ramfs serves the guest RAM files of libvirt domains: a FUSE\n"
	      "filesystem on DIR (libvirt's memory_backing_dir; root only, start it\n"
	      "before libvirtd) whose files QEMU maps; engine v2 attaches to a domain's\n"
	      "file through the control socket (default /run/remus/ramfs.sock).  It is\n"
	      "in the memory path of those guests: it does not stop on SIGTERM while a\n"
	      "file exists.  --allow-other lets libvirt's qemu user in.\n"
	      "\n"
	      "Engine v2 (--ram-dir): remusd serves the guest's RAM as DIR/guest.ram\n"
	      "(a FUSE mount, root only; it must be an empty directory) of --ram-size\n"
	      "MiB before QEMU starts; start QEMU with -object\n"
	      "memory-backend-file,id=mem,size=SIZEM,mem-path=DIR/guest.ram,share=on\n"
	      "-machine memory-backend=mem (--ram-backend names another id).  Then\n"
	      "each epoch after a session's first carries only the pages the guest\n"
	      "wrote plus QEMU's device state (--engine auto, the default, picks v2\n"
	      "when QEMU's RAM is that file, else v1; v2 refuses to start otherwise;\n"
	      "v1 always migrates the whole RAM).  The standby QEMU needs a RAM block\n"
	      "of the same id (-object memory-backend-ram,id=mem,size=SIZEM -machine\n"
	      "memory-backend=mem).  remusd is then in the guest's memory path: it\n"
	      "stays after unprotect to serve the file; do not stop it before QEMU.\n"
	      "Engine v2 on remusd ramfs (--ramfs SOCKET, e.g. /run/remus/ramfs.sock;\n"
	      "remusd serve passes its ramfs_socket): the guest's RAM is a shared file\n"
	      "on a remusd ramfs mount (libvirt: <memoryBacking><source type='file'/>\n"
	      "<access mode='shared'/></memoryBacking>, memory_backing_dir on the\n"
	      "mount); at start remusd finds the RAM backend from QMP and asks that\n"
	      "server for a tracker of its file.  Without one: v1, and status says why.\n"
	      "The standby feeds the QEMU started with -incoming unix:PATH (--incoming)\n"
	      "and runs it when --miss heartbeats of --heartbeat ms (default 5 x 100)\n"
	      "are missed or the primary's link drops, after --fence CMD exited 0 if\n"
	      "given.  The primary declares its standby lost after --primary-miss\n"
	      "heartbeats (default --miss; a standby uses it once it protects in turn):\n"
	      "with a fence, give it more than the standby's --miss plus the fence's\n"
	      "time, so a cut link gets the primary fenced before it releases output the\n"
	      "standby never saw.  Without a standby the primary\n"
	      "keeps the guest running unprotected and reconnects after --reconnect ms\n"
	      "(default 1000), doubled for each further failed session up to 30 s; a\n"
	      "reconnected standby gets a full epoch.\n"
	      "\n"
	      "Standby memory: an uncommitted epoch is kept in memory up to --epoch-mem\n"
	      "MiB (default 256), the rest in an unlinked file in --spill-dir (default:\n"
	      "the journal's directory, or /var/tmp); the first epoch of a new stream\n"
	      "goes to the standby QEMU as it arrives.  Resident memory stays below\n"
	      "--epoch-mem + 64 MiB (status: peak_rss_kb, memory_bound_kb).\n"
	      "\n"
	      "--name DOMAIN (both roles) puts the protected domain's name in every log\n"
	      "line ('INFO  [engine] web1: ...'); remusd serve starts its children so.\n"
	      "\n"
	      "Output commit (--netbuffer, default qemu): every frame the guest sends\n"
	      "is held until the standby acknowledged its epoch.  qemu: a\n"
	      "filter-redirector on each --netdev (default: every NIC's netdev);\n"
	      "plug: a sch_plug qdisc fed by each --tap; off: nothing is held (clients\n"
	      "may see output of state lost at failover).  --nb-limit bounds one\n"
	      "epoch's held bytes (default 16 MiB; more is dropped and counted);\n"
	      "--nb-on-lost says what happens to held output when the standby is\n"
	      "lost (default release).\n"
	      "\n"
	      "Disks (--disk, both roles, same names): remusd serves the raw image\n"
	      "PATH as NBD export NAME on the unix socket; give QEMU\n"
	      "  -blockdev driver=nbd,node-name=NAME,server.type=unix,server.path=SOCK,export=NAME\n"
	      "The primary replicates every write with its epoch; the standby applies\n"
	      "an epoch's writes only when it commits (journal: --journal, default\n"
	      "IMAGE.journal).  A new session first copies the extents that differ.\n"
	      "\n"
	      "After a failover the standby serves the guest; 'remusd ctl SOCK protect\n"
	      "HOST:PORT' protects it from there (the role switch; the netbuffer options\n"
	      "apply), with the old primary's host as the new standby.\n"
	      "\n"
	      "TLS (required; --insecure runs without it and warns at every session):\n"
	      "--tls-psk FILE: a pre-shared key per pair of hosts ('remusctl keygen FILE'\n"
	      "or 'remusd keygen FILE' writes one, mode 0600; copy it to the other\n"
	      "host).  --tls-x509-dir DIR:\n"
	      "libvirt's PKI layout (DIR /etc/pki/libvirt: servercert.pem and\n"
	      "private/serverkey.pem for the standby, clientcert.pem and\n"
	      "private/clientkey.pem for the primary; the CA DIR/cacert.pem, else\n"
	      "/etc/pki/CA/cacert.pem).  The primary checks that the standby's\n"
	      "certificate names the --standby HOST (or --tls-peer-name); the standby\n"
	      "checks --tls-peer-name if given, and with --tls-peer-identity DN takes\n"
	      "only the primary whose certificate has that DN (as logged after\n"
	      "'authenticated:'; remusd serve gives its standbys their owner's).\n"
	      "A primary must finish its handshake\n"
	      "within --tls-handshake-timeout ms (default 10000) of connecting; at\n"
	      "most --max-handshakes (default 4) run at once.\n", f);
}

enum { OPT_QMP = 256, OPT_STANDBY, OPT_INTERVAL, OPT_HEARTBEAT, OPT_MISS, OPT_NO_DEDUP,
       OPT_CTL, OPT_METRICS, OPT_LOG, OPT_INCOMING, OPT_LISTEN, OPT_VM_NAME, OPT_MANUAL,
       OPT_FENCE, OPT_ACTIVATE, OPT_REPORT, OPT_EXIT_AFTER, OPT_RECONNECT, OPT_NETBUFFER,
       OPT_NETDEV, OPT_TAP, OPT_NB_LIMIT, OPT_NB_ON_LOST, OPT_DISK, OPT_JOURNAL,
       OPT_EPOCH_MEM, OPT_SPILL_DIR, OPT_HELP, OPT_PAUSE_BUDGET, OPT_NAME,
       OPT_TLS_PSK, OPT_TLS_X509_DIR, OPT_TLS_CA, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_PEER_NAME,
       OPT_TLS_HANDSHAKE, OPT_MAX_HANDSHAKES, OPT_INSECURE, OPT_CTL_GROUP,
       OPT_PRIMARY_MISS, OPT_QMP_WAIT, OPT_TLS_PEER_IDENTITY, OPT_ENGINE, OPT_RAM_DIR,
       OPT_RAM_SIZE, OPT_RAM_BACKEND, OPT_RAMFS };

static const struct option long_opts[] = {
	{ "qmp", required_argument, NULL, OPT_QMP },
	{ "standby", required_argument, NULL, OPT_STANDBY },
	{ "interval", required_argument, NULL, OPT_INTERVAL },
	{ "heartbeat", required_argument, NULL, OPT_HEARTBEAT },
	{ "miss", required_argument, NULL, OPT_MISS },
	{ "no-dedup", no_argument, NULL, OPT_NO_DEDUP },
	{ "ctl", required_argument, NULL, OPT_CTL },
	{ "metrics", required_argument, NULL, OPT_METRICS },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "incoming", required_argument, NULL, OPT_INCOMING },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "vm-name", required_argument, NULL, OPT_VM_NAME },
	{ "manual", no_argument, NULL, OPT_MANUAL },
	{ "fence", required_argument, NULL, OPT_FENCE },
	{ "on-activate", required_argument, NULL, OPT_ACTIVATE },
	{ "report", required_argument, NULL, OPT_REPORT },
	{ "exit-after-failover", no_argument, NULL, OPT_EXIT_AFTER },
	{ "reconnect", required_argument, NULL, OPT_RECONNECT },
	{ "netbuffer", required_argument, NULL, OPT_NETBUFFER },
	{ "netdev", required_argument, NULL, OPT_NETDEV },
	{ "tap", required_argument, NULL, OPT_TAP },
	{ "nb-limit", required_argument, NULL, OPT_NB_LIMIT },
	{ "nb-on-lost", required_argument, NULL, OPT_NB_ON_LOST },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "journal", required_argument, NULL, OPT_JOURNAL },
	{ "epoch-mem", required_argument, NULL, OPT_EPOCH_MEM },
	{ "spill-dir", required_argument, NULL, OPT_SPILL_DIR },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "pause-budget", required_argument, NULL, OPT_PAUSE_BUDGET },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "tls-psk", required_argument, NULL, OPT_TLS_PSK },
	{ "tls-x509-dir", required_argument, NULL, OPT_TLS_X509_DIR },
	{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "tls-peer-name", required_argument, NULL, OPT_TLS_PEER_NAME },
	{ "tls-handshake-timeout", required_argument, NULL, OPT_TLS_HANDSHAKE },
	{ "max-handshakes", required_argument, NULL, OPT_MAX_HANDSHAKES },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "ctl-group", required_argument, NULL, OPT_CTL_GROUP },
	{ "primary-miss", required_argument, NULL, OPT_PRIMARY_MISS },
	{ "qmp-wait", required_argument, NULL, OPT_QMP_WAIT },
	{ "tls-peer-identity", required_argument, NULL, OPT_TLS_PEER_IDENTITY },
	{ "engine", required_argument, NULL, OPT_ENGINE },
	{ "ram-dir", required_argument, NULL, OPT_RAM_DIR },
	{ "ram-size", required_argument, NULL, OPT_RAM_SIZE },
	{ "ram-backend", required_argument, NULL, OPT_RAM_BACKEND },
	{ "ramfs", required_argument, NULL, OPT_RAMFS },
	{ 0 },
};

/* What the value of each option with one looks like, for "needs a
 * value" messages; same order as long_opts. */
static const char *const metavars[] = {
	"PATH", "HOST:PORT", "MS", "MS", "N", NULL, "PATH", "FILE", "error|warn|info|debug",
	"PATH", "[HOST:]PORT", "NAME", NULL, "CMD", "CMD", "FILE", NULL, "MS",
	"qemu|plug|off", "ID", "IF", "BYTES", "release|hold", "NAME,image=PATH,socket=PATH",
	"PATH", "MB", "DIR", NULL, "MS", "DOMAIN",
	"FILE", "DIR", "FILE", "FILE", "FILE", "NAME", "MS", "N", NULL, "GROUP",
	"N", "MS", "DN", "auto|v1|v2", "DIR", "MIB", "ID", "SOCKET",
};
_Static_assert(sizeof(metavars) / sizeof(metavars[0]) + 1 ==
	       sizeof(long_opts) / sizeof(long_opts[0]), "one metavar per option");

static int fail(struct remusd_options *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct remusd_options *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(o->error, sizeof(o->error), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A decimal in @min..@max; @unit says what it counts ("ms", "bytes"). */
static int parse_uint(struct remusd_options *o, const char *opt, const char *s,
		      unsigned min, unsigned max, const char *unit, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || *s == '-' || *s == '+' || v < min || v > max)
		return fail(o, "%s: '%s' is not a number of %s in %u..%u", opt, s, unit, min, max);
	*out = (unsigned)v;
	return 0;
}

int remusd_parse_hostport(const char *what, const char *s, bool host_optional,
			  char *host, size_t hostlen, uint16_t *port,
			  char *err, size_t errlen)
{
	const char *colon = strrchr(s, ':');
	const char *h = s, *p;
	size_t hl = 0;
	char *end;
	unsigned long v;

	if (!colon) {
		if (!host_optional)
			goto bad;
		p = s;
	} else {
		hl = (size_t)(colon - s);
		p = colon + 1;
		if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
			h = s + 1;
			hl -= 2;
		}
	}
	if (hl >= hostlen)
		goto bad;
	errno = 0;
	v = strtoul(p, &end, 10);
	if (errno || *end || end == p || *p == '-' || *p == '+' || v < 1 || v > 65535)
		goto bad;
	memcpy(host, h, hl);
	host[hl] = 0;
	*port = (uint16_t)v;
	return 0;
bad:
	snprintf(err, errlen, "%s: '%s' is not %s (PORT in 1..65535%s)", what, s,
		 host_optional ? "[HOST:]PORT" : "HOST:PORT",
		 hl >= hostlen ? ", HOST shorter than 256" : "");
	return -EINVAL;
}

/* "NAME,image=PATH,socket=PATH" (keys in any order) into o->disk[i]; the
 * strings point into a copy of @arg owned by @o. */
static int parse_disk(struct remusd_options *o, const char *arg, size_t i)
{
	struct remus_diskrepl_disk *d = &o->disk[i];
	char *save = NULL, *tok;

	o->disk_spec[i] = strdup(arg);
	if (!o->disk_spec[i])
		return fail(o, "--disk: out of memory");
	d->name = strtok_r(o->disk_spec[i], ",", &save);
	while ((tok = strtok_r(NULL, ",", &save))) {
		if (strncmp(tok, "image=", 6) == 0)
			d->image = tok + 6;
		else if (strncmp(tok, "socket=", 7) == 0)
			d->socket = tok + 7;
		else
			return fail(o, "--disk: '%s': unknown key '%s'; expected "
				    "NAME,image=PATH,socket=PATH (e.g. --disk vda,"
				    "image=/var/lib/vm/vda.raw,socket=/run/remus/vda.sock)", arg, tok);
	}
	if (!d->name || !*d->name || arg[0] == ',' || strchr(d->name, '='))
		return fail(o, "--disk: '%s': the first field must be the disk's NAME; "
			    "expected NAME,image=PATH,socket=PATH", arg);
	if (!d->image || !*d->image)
		return fail(o, "--disk: '%s': no image=PATH (the raw image file); expected "
			    "NAME,image=PATH,socket=PATH", arg);
	if (!d->socket || !*d->socket)
		return fail(o, "--disk: '%s': no socket=PATH (the NBD socket QEMU connects "
			    "to); expected NAME,image=PATH,socket=PATH", arg);
	return 0;
}

/* One option @c with value @v (NULL for flags).  @name is its long name. */
static int parse_one(struct remusd_options *o, int c, const char *name, const char *v,
		     bool *nb_kind_given)
{
	char opt[40];
	unsigned n;
	int rc;

	snprintf(opt, sizeof(opt), "--%s", name);
	switch (c) {
	case OPT_QMP: o->qmp_path = v; return 0;
	case OPT_QMP_WAIT:
		if ((rc = parse_uint(o, opt, v, 0, 86400000, "ms", &n)) == 0) {
			o->qmp_wait_ms = n;
			o->qmp_wait_given = true;
		}
		return rc;
	case OPT_STANDBY:
		return remusd_parse_hostport(opt, v, false, o->standby_host,
					     sizeof(o->standby_host), &o->engine.standby_port,
					     o->error, sizeof(o->error));
	case OPT_LISTEN:
		return remusd_parse_hostport(opt, v, true, o->listen_host, sizeof(o->listen_host),
					     &o->standby.listen_port, o->error, sizeof(o->error));
	case OPT_INTERVAL:
		return parse_uint(o, opt, v, 10, 3600000, "ms", &o->engine.interval_ms);
	case OPT_HEARTBEAT:
		if ((rc = parse_uint(o, opt, v, 10, 60000, "ms", &n)) == 0)
			o->engine.heartbeat_ms = o->standby.heartbeat_ms = n;
		return rc;
	case OPT_MISS:
		if ((rc = parse_uint(o, opt, v, 1, 1000, "heartbeats", &n)) == 0)
			o->engine.heartbeat_miss = o->standby.heartbeat_miss = n;
		return rc;
	case OPT_PRIMARY_MISS:
		/* Applied after every option: --miss sets both roles. */
		return parse_uint(o, opt, v, 1, 1000, "heartbeats", &o->primary_miss);
	case OPT_NO_DEDUP: o->engine.dedup = false; return 0;
	case OPT_RECONNECT:
		return parse_uint(o, opt, v, 10, 600000, "ms", &o->engine.reconnect_ms);
	case OPT_PAUSE_BUDGET:
		return parse_uint(o, opt, v, 1, 60000, "ms", &o->engine.pause_budget_ms);
	case OPT_ENGINE:
		if (strcmp(v, "auto") == 0)
			o->engine.kind = REMUS_ENGINE_AUTO;
		else if (strcmp(v, "v1") == 0)
			o->engine.kind = REMUS_ENGINE_V1;
		else if (strcmp(v, "v2") == 0)
			o->engine.kind = REMUS_ENGINE_V2;
		else
			return fail(o, "%s: '%s' is not auto, v1 or v2", opt, v);
		return 0;
	case OPT_RAM_DIR: o->ram_dir = v; return 0;
	case OPT_RAMFS:
		if (!*v || strlen(v) >= 108)
			return fail(o, "%s: '%s' is not a socket path (1-107 bytes)", opt, v);
		o->engine.ramfs_socket = v;
		return 0;
	case OPT_RAM_SIZE:
		return parse_uint(o, opt, v, 1, 16u << 20, "MiB", &o->ram_size_mib);
	case OPT_RAM_BACKEND: o->engine.ram_backend = v; return 0;
	case OPT_CTL: o->ctl_path = v; return 0;
	case OPT_METRICS: o->metrics_path = v; return 0;
	case OPT_LOG:
		if (remus_log_parse_level(v, &o->log_level) < 0)
			return fail(o, "%s: '%s' is not error, warn, info or debug", opt, v);
		o->log_level_given = true;
		return 0;
	case OPT_INCOMING: o->standby.incoming_path = v; return 0;
	case OPT_VM_NAME: o->standby.vm_name = v; return 0;
	case OPT_MANUAL: o->standby.no_auto_failover = true; return 0;
	case OPT_FENCE: o->standby.fence_cmd = v; return 0;
	case OPT_ACTIVATE: o->standby.activate_cmd = v; return 0;
	case OPT_REPORT: o->report_path = v; return 0;
	case OPT_EXIT_AFTER: o->exit_after_failover = true; return 0;
	case OPT_NETBUFFER:
		if (strcmp(v, "off") == 0) {
			o->nb_off = true;
		} else if (remus_netbuffer_kind_parse(v, &o->nb.kind) < 0) {
			return fail(o, "%s: '%s' is not qemu, plug or off", opt, v);
		} else {
			o->nb_off = false;
		}
		*nb_kind_given = true;
		return 0;
	case OPT_NETDEV:
	case OPT_TAP:
		if (o->nb.ndevices == REMUSD_MAX_NB_DEVICES)
			return fail(o, "%s: '%s' is one too many: at most %d --netdev/--tap", opt, v,
				    REMUSD_MAX_NB_DEVICES);
		if (c == OPT_TAP && !*nb_kind_given)
			o->nb.kind = REMUS_NETBUFFER_PLUG;
		o->nb_devices[o->nb.ndevices++] = v;
		return 0;
	case OPT_NB_LIMIT:
		if ((rc = parse_uint(o, opt, v, 65536, 1u << 30, "bytes", &n)) == 0)
			o->nb.epoch_limit_bytes = n;
		return rc;
	case OPT_NB_ON_LOST:
		if (strcmp(v, "release") == 0)
			o->nb.on_lost = REMUS_NETBUFFER_LOST_RELEASE;
		else if (strcmp(v, "hold") == 0)
			o->nb.on_lost = REMUS_NETBUFFER_LOST_HOLD;
		else
			return fail(o, "%s: '%s' is not release or hold", opt, v);
		return 0;
	case OPT_DISK:
		if (o->disks.ndisks == REMUS_REPL_MAX_DISKS)
			return fail(o, "%s: '%s' is one too many: at most %u --disk", opt, v,
				    REMUS_REPL_MAX_DISKS);
		rc = parse_disk(o, v, o->disks.ndisks);
		if (rc == 0)
			o->disks.ndisks++;
		return rc;
	case OPT_JOURNAL: o->disks.journal = v; return 0;
	case OPT_EPOCH_MEM:
		if ((rc = parse_uint(o, opt, v, 1, 1u << 20, "MiB", &n)) == 0)
			o->standby.epoch_mem = (size_t)n << 20;
		o->epoch_mem_given = true;
		return rc;
	case OPT_SPILL_DIR: o->standby.spill_dir = v; return 0;
	case OPT_HELP: o->mode = REMUSD_HELP; return 0;
	case OPT_TLS_PSK: o->tls.psk_file = v; return 0;
	case OPT_TLS_X509_DIR: o->tls.x509_dir = v; return 0;
	case OPT_TLS_CA: o->tls.ca_file = v; return 0;
	case OPT_TLS_CERT: o->tls.cert_file = v; return 0;
	case OPT_TLS_KEY: o->tls.key_file = v; return 0;
	case OPT_TLS_PEER_NAME: o->tls.peer_name = v; return 0;
	case OPT_TLS_PEER_IDENTITY: o->standby.peer_identity = v; return 0;
	case OPT_TLS_HANDSHAKE:
		if ((rc = parse_uint(o, opt, v, 100, 600000, "ms", &n)) == 0)
			o->standby.handshake_ms = n;
		return rc;
	case OPT_MAX_HANDSHAKES:
		if ((rc = parse_uint(o, opt, v, 1, 1024, "handshakes", &n)) == 0)
			o->standby.max_handshakes = n;
		return rc;
	case OPT_INSECURE: o->insecure = true; return 0;
	case OPT_CTL_GROUP: o->ctl_group = v; return 0;
	case OPT_NAME:
		if (strlen(v) >= REMUSD_NAME_MAX)
			return fail(o, "%s: '%.20s...' is longer than %d bytes; give the "
				    "domain's name", opt, v, REMUSD_NAME_MAX - 1);
		for (const char *p = v; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return fail(o, "%s: the name has a control character; give the "
					    "domain's name as libvirt shows it", opt);
		o->name = v;
		return 0;
	}
	return fail(o, "%s: not handled (a bug)", opt);
}

/* Spill files go next to the journal (its directory is the standby's
 * own working space, on a file system sized for epochs), or to /var/tmp
 * without disks (NULL: failover/standby.h's default). */
static void default_spill_dir(struct remusd_options *o)
{
	const char *j = o->disks.journal ? o->disks.journal
			: o->disks.ndisks ? o->disk[0].image : NULL;
	const char *slash = j ? strrchr(j, '/') : NULL;
	size_t n;

	if (!j)
		return;
	if (!slash) {
		snprintf(o->spill_dir, sizeof(o->spill_dir), ".");
	} else {
		n = slash == j ? 1 : (size_t)(slash - j);
		if (n >= sizeof(o->spill_dir))
			return;
		memcpy(o->spill_dir, j, n);
		o->spill_dir[n] = '\0';
	}
	o->standby.spill_dir = o->spill_dir;
}

/* remusd ramfs --mount DIR [--socket PATH] [--allow-other] [--log LEVEL]:
 * a handful of options of its own, none shared with the roles. */
static int parse_ramfs(struct remusd_options *o, int argc, char *const *argv)
{
	int i;

	o->mode = REMUSD_RAMFS;
	for (i = 2; i < argc; i++) {
		const char *a = argv[i];
		bool has_value = strcmp(a, "--mount") == 0 ||
				 strcmp(a, "--socket") == 0 || strcmp(a, "--log") == 0;

		if (has_value && i + 1 >= argc)
			return fail(o, "ramfs: %s needs a value", a);
		if (strcmp(a, "--mount") == 0) {
			o->ramfs_mount = argv[++i];
		} else if (strcmp(a, "--socket") == 0) {
			o->ramfs_socket = argv[++i];
		} else if (strcmp(a, "--log") == 0) {
			if (remus_log_parse_level(argv[++i], &o->log_level) < 0)
				return fail(o, "--log: '%s' is not error, warn, info or "
					    "debug", argv[i]);
			o->log_level_given = true;
		} else if (strcmp(a, "--allow-other") == 0) {
			o->ramfs_allow_other = true;
		} else if (strcmp(a, "--help") == 0) {
			o->mode = REMUSD_HELP;
			return 0;
		} else {
			return fail(o, "ramfs: unknown option '%s': expected --mount DIR, "
				    "--socket PATH, --allow-other, --log LEVEL", a);
		}
	}
	if (!o->ramfs_mount)
		return fail(o, "ramfs: missing --mount DIR (an empty directory, e.g. "
			    "libvirt's memory_backing_dir /var/lib/libvirt/qemu/ram)");
	return 0;
}

/* The checks that need every option. */
static int check_role(struct remusd_options *o, const char *role)
{
	bool primary = o->mode == REMUSD_PRIMARY;

	if (!o->qmp_path)
		return fail(o, "%s: missing --qmp PATH (the QEMU's QMP socket)", role);
	if (primary && o->engine.standby_port == 0)
		return fail(o, "primary: missing --standby HOST:PORT (the standby "
			    "remusd's --listen)");
	if (!primary && o->standby.listen_port == 0)
		return fail(o, "standby: missing --listen [HOST:]PORT (where the "
			    "primary connects)");
	if (!primary && !o->standby.incoming_path)
		return fail(o, "standby: missing --incoming PATH (the standby QEMU's "
			    "-incoming unix:PATH)");
	if (primary && o->disks.journal)
		return fail(o, "--journal: '%s': an option of remusd standby, not of the "
			    "primary", o->disks.journal);
	if (!primary && (o->ram_dir || o->ram_size_mib || o->engine.ram_backend))
		return fail(o, "--ram-dir/--ram-size/--ram-backend: options of remusd primary "
			    "(engine v2); the standby QEMU's RAM may be on any backend");
	if (primary && !o->ram_dir != !o->ram_size_mib)
		return fail(o, "--ram-dir and --ram-size go together: the guest RAM file's "
			    "directory and its size in MiB (QEMU's -object "
			    "memory-backend-file,size=...)");
	if (o->ram_dir && o->engine.ramfs_socket)
		return fail(o, "--ramfs and --ram-dir: one dirty tracker, either remusd ramfs's "
			    "(--ramfs SOCKET) or this remusd's own (--ram-dir)");
	if (primary && o->engine.kind == REMUS_ENGINE_V2 && !o->ram_dir &&
	    !o->engine.ramfs_socket)
		return fail(o, "--engine v2: needs --ramfs SOCKET (the guest's RAM on remusd "
			    "ramfs) or --ram-dir DIR --ram-size MIB (on this remusd's dirty "
			    "tracker)");
	if (primary && o->engine.ram_backend && !o->ram_dir)
		return fail(o, "--ram-backend: only with --ram-dir (engine v2)");
	if (primary && o->epoch_mem_given)
		return fail(o, "--epoch-mem: an option of remusd standby, not of the primary");
	if (primary && o->standby.spill_dir)
		return fail(o, "--spill-dir: '%s': an option of remusd standby, not of the "
			    "primary", o->standby.spill_dir);
	if (o->nb.kind == REMUS_NETBUFFER_PLUG && !o->nb_off && o->nb.ndevices == 0)
		return fail(o, "--netbuffer plug: needs the guest's tap: --tap IF");
	if (o->tls.psk_file && o->tls.x509_dir)
		return fail(o, "--tls-psk and --tls-x509-dir: give one of them, not both");
	if (o->insecure && (o->tls.psk_file || o->tls.x509_dir))
		return fail(o, "--insecure: contradicts --tls-%s; drop one", o->tls.psk_file ?
			    "psk" : "x509-dir");
	if (!o->tls.x509_dir && (o->tls.ca_file || o->tls.cert_file || o->tls.key_file ||
				 o->tls.peer_name))
		return fail(o, "--tls-ca/--tls-cert/--tls-key/--tls-peer-name: options of "
			    "x509; give --tls-x509-dir DIR too");
	if (o->standby.peer_identity && !o->tls.x509_dir)
		return fail(o, "--tls-peer-identity: an option of x509 (with a pre-shared key "
			    "every holder has the same identity); give --tls-x509-dir DIR too");
	if (primary && o->standby.peer_identity)
		return fail(o, "--tls-peer-identity: an option of remusd standby (the primary "
			    "checks the standby's name: --tls-peer-name)");
	if (primary && (o->standby.handshake_ms || o->standby.max_handshakes))
		return fail(o, "--tls-handshake-timeout/--max-handshakes: options of remusd "
			    "standby (the side that accepts)");
	return 0;
}

int remusd_options_parse(struct remusd_options *o, int argc, char *const *argv)
{
	bool nb_kind_given = false;
	const char *role;
	int c, idx, rc;

	memset(o, 0, sizeof(*o));
	o->engine = (struct remus_engine_config){ .interval_ms = 1000, .dedup = true };
	o->engine.standby_host = o->standby_host;
	o->disks.disks = o->disk;
	if (argc < 2)
		return fail(o, "missing the role: serve, primary, standby or ctl (see remusd --help)");
	role = argv[1];
	if (strcmp(role, "--help") == 0 || strcmp(role, "-h") == 0) {
		o->mode = REMUSD_HELP;
		return 0;
	}
	if (strcmp(role, "serve") == 0) {
		/* Every key of remusd.conf is an option: hostd parses them. */
		o->mode = REMUSD_SERVE;
		o->serve_argc = argc - 1;
		o->serve_argv = argv + 1;
		return 0;
	}
	if (strcmp(role, "ctl") == 0) {
		if (argc < 4)
			return fail(o, "ctl: expected SOCKET REQUEST... (e.g. remusd ctl "
				    "/run/remus/pri.ctl status)");
		o->mode = REMUSD_CTL;
		o->ctl_socket = argv[2];
		o->ctl_nwords = argc - 3;
		o->ctl_words = argv + 3;
		return 0;
	}
	if (strcmp(role, "keygen") == 0) {
		if (argc != 3 || argv[2][0] == '-')
			return fail(o, "keygen: expected FILE, where the new pre-shared key goes "
				    "(e.g. remusd keygen /etc/remus/hostA-hostB.psk)");
		o->mode = REMUSD_KEYGEN;
		o->keygen_path = argv[2];
		return 0;
	}
	if (strcmp(role, "ramfs") == 0)
		return parse_ramfs(o, argc, argv);
	if (strcmp(role, "primary") == 0)
		o->mode = REMUSD_PRIMARY;
	else if (strcmp(role, "standby") == 0)
		o->mode = REMUSD_STANDBY;
	else
		return fail(o, "unknown role '%s': expected serve, ramfs, keygen, primary, standby or ctl", role);

	/* getopt over argv[1..]: its argv[0] is the role.  optind 0 makes
	 * glibc start afresh (tests parse many command lines). */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc - 1, argv + 1, "+:", long_opts, &idx)) != -1) {
		if (c == ':') {
			for (idx = 0; long_opts[idx].name && long_opts[idx].val != optopt; idx++)
				;
			return fail(o, "--%s: needs a value: %s", long_opts[idx].name,
				    metavars[idx]);
		}
		if (c == '?') {
			/* glibc: optopt is the option's val for a value given to
			 * a flag (--manual=yes), the letter of an unknown short
			 * option, 0 for an unknown or ambiguous long one; the
			 * long ones were consumed (argv + 1, index optind - 1). */
			if (optopt >= OPT_QMP)
				return fail(o, "'%s': this option takes no value", argv[optind]);
			if (optopt)
				return fail(o, "unknown option '-%c' for remusd %s (see remusd "
					    "--help)", optopt, role);
			return fail(o, "unknown or ambiguous option '%s' for remusd %s (see remusd --help)",
				    argv[optind], role);
		}
		if (optarg && !*optarg)
			return fail(o, "--%s: the value is empty; expected %s", long_opts[idx].name,
				    metavars[idx]);
		rc = parse_one(o, c, long_opts[idx].name, optarg, &nb_kind_given);
		if (rc < 0)
			return rc;
		if (o->mode == REMUSD_HELP)
			return 0;
	}
	if (optind != argc - 1)
		return fail(o, "unexpected argument '%s' (every remusd %s option starts "
			    "with --)", argv[optind + 1], role);
	rc = check_role(o, role);
	if (rc < 0)
		return rc;
	if (o->primary_miss)
		o->engine.heartbeat_miss = o->primary_miss;
	o->nb.devices = o->nb.ndevices ? o->nb_devices : NULL;
	o->standby.listen_host = *o->listen_host ? o->listen_host : NULL;
	o->disks.standby = o->mode == REMUSD_STANDBY;
	if (o->disks.standby && !o->standby.spill_dir)
		default_spill_dir(o);
	return 0;
}

void remusd_options_release(struct remusd_options *o)
{
	for (size_t i = 0; i < REMUS_REPL_MAX_DISKS; i++) {
		free(o->disk_spec[i]);
		o->disk_spec[i] = NULL;
	}
}
