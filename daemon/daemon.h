/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * remusd's private header: the composition root of the daemon.
 *
 *   main.c     parse argv (options.c), then run the role; nothing else
 *   options.c  argv -> struct remusd_options, no side effects
 *   daemon.c   what both roles share: loop, signals, metrics file, disks,
 *              the QEMU monitor, the control socket, shutdown
 *   primary.c  the primary role: the engine's hooks wired to the
 *              netbuffer and the disks
 *   standby.c  the standby role: the standby's hooks wired to the disks
 *   ctl.c      the control requests (status, set-interval, ...)
 *
 * Nothing outside daemon/ includes this header (docs/ARCHITECTURE.md).
 */
#ifndef REMUS_DAEMON_DAEMON_H
#define REMUS_DAEMON_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/log.h"
#include "common/prom.h"
#include "repl/repl.h"
#include "controller/engine.h"
#include "diskrepl/diskrepl.h"
#include "failover/standby.h"
#include "netbuffer/netbuffer.h"
#include "tls/tls.h"

#define REMUSD_MAX_NB_DEVICES 16
#define REMUSD_HOST_MAX 256
#define REMUSD_NAME_MAX 64          /* --name, with its NUL */

enum remusd_mode {
	REMUSD_PRIMARY,
	REMUSD_STANDBY,
	REMUSD_HELP,    /* --help: print remusd_usage() on stdout, exit 0 */
	REMUSD_CTL,     /* remusd ctl SOCKET REQUEST... */
	REMUSD_SERVE,   /* remusd serve ...: the host daemon (hostd/hostd.h) */
	REMUSD_KEYGEN,  /* remusd keygen FILE: a new pre-shared key (tls/tls.h) */
	REMUSD_RAMFS,   /* remusd ramfs --mount DIR: guest RAM files (dirty/ramfs.h) */
};

/*
 * Everything argv says.  Strings are borrowed from argv unless noted, so
 * argv must outlive the options.  The module configs are filled in
 * directly and point into this struct (engine.standby_host, nb.devices,
 * disks.disks): do not copy it after remusd_options_parse().
 */
struct remusd_options {
	enum remusd_mode mode;
	const char *qmp_path;       /* --qmp */
	/* --qmp-wait: how long start-up waits for the monitor; 0: no limit
	 * (qmp_wait_given false: the default, REMUS_QMP_DEFAULT_CONNECT_...) */
	unsigned qmp_wait_ms;
	bool qmp_wait_given;
	const char *ctl_path;       /* --ctl; NULL: no control socket */
	const char *ctl_group;      /* --ctl-group: may use the control socket besides root */
	const char *metrics_path;   /* --metrics; NULL: none */
	const char *report_path;    /* --report (standby) */
	bool exit_after_failover;   /* --exit-after-failover (standby) */
	struct remus_tls_config tls; /* --tls-*: strings borrowed from argv */
	bool insecure;              /* --insecure: no TLS, warned at every session */
	const char *name;           /* --name: the domain, in every log line; or NULL */
	bool log_level_given;
	enum remus_log_level log_level;  /* --log, if log_level_given */

	struct remus_engine_config engine;   /* primary; standby_host -> standby_host */
	unsigned primary_miss;               /* --primary-miss, 0: --miss; in engine */
	const char *ram_dir;                 /* --ram-dir: engine v2's RAM file mount */
	unsigned ram_size_mib;               /* --ram-size */
	char standby_host[REMUSD_HOST_MAX];  /* --standby's HOST */
	struct remus_standby_config standby; /* standby; listen_host -> listen_host or NULL,
					      * spill_dir -> --spill-dir or spill_dir */
	char listen_host[REMUSD_HOST_MAX];   /* --listen's HOST, "" when absent */
	bool epoch_mem_given;                /* --epoch-mem */
	char spill_dir[4096];                /* the journal's directory, by default */

	bool nb_off;                         /* --netbuffer off */
	struct remus_netbuffer_config nb;    /* devices -> nb_devices, or NULL */
	const char *nb_devices[REMUSD_MAX_NB_DEVICES];  /* --netdev / --tap */

	struct remus_diskrepl_config disks;  /* disks -> disk; standby set by role */
	struct remus_diskrepl_disk disk[REMUS_REPL_MAX_DISKS];
	char *disk_spec[REMUS_REPL_MAX_DISKS]; /* owned copies of --disk values,
						* split in place; disk[] points in */

	/* REMUSD_KEYGEN: the key file to write. */
	const char *keygen_path;

	/* REMUSD_SERVE: argv from "serve" on, for hostd's own parser */
	int serve_argc;
	char *const *serve_argv;

	/* REMUSD_RAMFS: --mount, --socket (NULL: the default), --allow-other */
	const char *ramfs_mount;
	const char *ramfs_socket;
	bool ramfs_allow_other;

	/* REMUSD_CTL: remusd ctl SOCKET WORD... */
	const char *ctl_socket;
	int ctl_nwords;
	char *const *ctl_words;

	/* Why parsing failed: names the option, the value and what is
	 * expected (no "remusd: " prefix). */
	char error[512];
};

/* Parses @argv (borrowed; read, never modified) into @o (fully
 * overwritten).  No side effects: prints nothing, sets no global state
 * except getopt's.  Returns 0, or -EINVAL with @o->error set; call
 * remusd_options_release() in both cases. */
int remusd_options_parse(struct remusd_options *o, int argc, char *const *argv);
/* Frees what parsing allocated.  Idempotent. */
void remusd_options_release(struct remusd_options *o);
/* The usage text (--help). */
void remusd_usage(FILE *f);
/* "HOST:PORT", "[V6]:PORT" or, if @host_optional, "PORT", as given to
 * @what (e.g. "--standby").  Writes the host into @host (NUL-terminated;
 * "" when absent).  Returns 0, or -EINVAL with a message naming @what, the
 * value and the expected form in @err. */
int remusd_parse_hostport(const char *what, const char *s, bool host_optional,
			  char *host, size_t hostlen, uint16_t *port,
			  char *err, size_t errlen);

/* The running daemon of one protected VM. */
#define REMUSD_WINDOW 1024

struct remusd {
	const struct remusd_options *opt;   /* borrowed */
	struct remus_loop *loop;
	struct remus_qmp *qmp;
	struct remus_engine *engine;        /* primary role (or after protect) */
	struct remus_standby *standby;      /* standby role */
	struct remus_netbuffer *nb;         /* NULL: output commit off or not yet */
	struct remus_diskrepl *disks;       /* NULL: no replicated disks */
	struct remus_ctl *ctl;
	/* TLS credentials (NULL: --insecure): the primary's client side, the
	 * standby's server side and, for a protect after a takeover, its
	 * client side (NULL then with the reason in tls_client_err). */
	struct remus_tls_creds *tls_client, *tls_server;
	char tls_client_err[512];
	FILE *metrics;                      /* JSON line per committed epoch, or NULL */
	bool metrics_failed;                /* a write failed; said once */
	/* Every checkpoint's pause and every commit's latency, in seconds
	 * (status "pause_seconds", "commit_seconds"): remusd serve makes
	 * its Prometheus histograms of them. */
	struct remus_prom_hist pause_hist, commit_hist;
	/* The last REMUSD_WINDOW pauses and commit latencies in ms (rings:
	 * sample n at n % REMUSD_WINDOW), for status's pause_p50_ms,
	 * pause_p99_ms and commit_p50_ms; and when the last committed
	 * checkpoint captured the guest (monotonic ms, 0: none), for lag_ms. */
	double pause_win[REMUSD_WINDOW], commit_win[REMUSD_WINDOW];
	uint64_t npause, ncommit;
	uint64_t last_capture_ms;
	bool tearing_down;                  /* the netbuffer's teardown runs */
	bool stopping;                      /* SIGTERM/SIGINT */
	bool running;                       /* the role started */
	/* The engine's config: opt->engine, with the standby "protect" names. */
	struct remus_engine_config ecfg;
	char standby_host[REMUSD_HOST_MAX]; /* ecfg.standby_host points here */
	struct remus_engine_hooks eh;
	/* Engine v2: the dirty tracker serving the guest's RAM file (owned;
	 * closed only after the loop ended, never while QEMU may run on it). */
	struct remus_dirty *dirty;
	char engine_why[300];
	int sigfd;
	int exit_rc;
};

/* Runs the role of @o (PRIMARY or STANDBY) until it ends.  Every start-up
 * failure is logged with its object and the fix.  Returns the process
 * exit status (0, or 1 on failure). */
int remusd_run(const struct remusd_options *o);

/* primary.c.  Starts protecting from this host on d->qmp with d->ecfg:
 * the netbuffer first (its setup starts the engine), or the engine at
 * once with --netbuffer off.  0 or -errno (logged). */
int remusd_primary_start(struct remusd *d);
/* SIGTERM/SIGINT on the primary: true when an asynchronous stop was
 * started (the engine resumes the guest, or the netbuffer undoes its
 * setup) and will stop the loop itself. */
bool remusd_primary_stop(struct remusd *d);

/* standby.c.  Starts the standby role on d->qmp.  0 or -errno (logged). */
int remusd_standby_start(struct remusd *d);

/* daemon.c.  Opens remusd's appended output file (--metrics)
 * with fopen's @how ("a" or "w"), created mode 0644 whatever the umask
 * (never writable by group or others; an existing file keeps its mode).
 * Returns the stream (owned; fclose it), or NULL with errno set. */
FILE *remusd_open_output(const char *path, const char *how);

/* daemon.c.  Replaces the file @path (--report) by @text (borrowed),
 * atomically: a temporary file beside it, mode 0644 whatever the umask
 * or the old file's mode, written, fsynced and renamed over @path (a
 * symlink there is replaced, not followed), then the directory fsynced.
 * Returns 0, or -errno with @path as it was (the temporary file
 * removed).  Blocks for the fsyncs: for small files written once. */
int remusd_write_output(const char *path, const char *text);

/* ctl.c.  The control-socket handler (common/ctl.h); @opaque is the
 * struct remusd. */
char *remusd_ctl_handle(void *opaque, const char *request);

#endif
