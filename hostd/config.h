/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The host daemon's settings (remusd serve): /etc/remus/remusd.conf and
 * the command line, both into one struct remus_hostd_config.
 *
 * The file is `key = value` lines; `#` starts a comment (at the start of
 * a line or after a blank), blank lines are fine, values may be put in
 * double quotes (for a value with a `#` or surrounding blanks).  Every
 * key is also an option of `remusd serve`: `state_dir = /x` is
 * `--state-dir /x`.  What wins: the defaults, then the file (`--config
 * FILE`, default /etc/remus/remusd.conf; a missing default file is fine,
 * a missing named one is not), then the command line.  A key given twice
 * in the file is refused (one of them is a mistake).
 *
 * Errors name where: "remusd.conf:12: interval: 'fast' is not a number of
 * ms in 10..3600000", or "--interval: ...".  Parsing has no side effects
 * beyond the struct, so tests and the fuzzer drive it directly.
 */
#ifndef REMUS_HOSTD_CONFIG_H
#define REMUS_HOSTD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define REMUS_HOSTD_DEFAULT_CONFIG "/etc/remus/remusd.conf"
#define REMUS_HOSTD_DEFAULT_PEER_PORT 7790
#define REMUS_HOSTD_PATH_MAX 108      /* a unix socket path, with its NUL */
#define REMUS_HOSTD_HOST_MAX 256
#define REMUS_HOSTD_STR_MAX 1024      /* any other value, with its NUL */
/* A config file longer than this is not a config file. */
#define REMUS_HOSTD_CONFIG_MAX_BYTES (1u << 20)

enum remus_hostd_netbuffer {
	REMUS_HOSTD_NB_QEMU,
	REMUS_HOSTD_NB_PLUG,
	REMUS_HOSTD_NB_OFF,
};

enum remus_hostd_reprotect {
	REMUS_HOSTD_REPROTECT_AUTO,
	REMUS_HOSTD_REPROTECT_MANUAL,
};

/* Every setting; strings are stored in the struct (no allocation, no
 * release).  Defaults: remus_hostd_config_init(). */
struct remus_hostd_config {
	char listen_host[REMUS_HOSTD_HOST_MAX];  /* listen: peer port; "" any */
	uint16_t listen_port;                    /* default 7790 */
	char connect[REMUS_HOSTD_STR_MAX];       /* libvirt URI, qemu:///system */
	char ctl[REMUS_HOSTD_PATH_MAX];          /* /run/remus/remusd.sock */
	char ctl_group[64];                      /* "": root only */
	char state_dir[REMUS_HOSTD_STR_MAX];     /* /var/lib/remus */
	char run_dir[REMUS_HOSTD_STR_MAX];       /* /run/remus */
	char metrics_host[REMUS_HOSTD_HOST_MAX]; /* metrics_listen; port 0: off */
	uint16_t metrics_port;
	char host_name[REMUS_HOSTD_HOST_MAX];    /* name: this host to its peers; "" hostname */
	char remusd[REMUS_HOSTD_STR_MAX];        /* the children's binary; "" this one */
	unsigned interval_ms;                    /* default of protect, 1000 */
	unsigned pause_budget_ms;                /* 300 */
	unsigned heartbeat_ms, heartbeat_miss;   /* 100, 5 */
	/* primary_miss: heartbeats a primary child misses before it declares
	 * its standby lost and runs on unprotected (--primary-miss); 0: as
	 * heartbeat_miss.  With a fence it must exceed the standby's miss
	 * plus the fence's time (see fence_command). */
	unsigned primary_miss;
	/* fence_command: what every standby child runs (/bin/sh -c, its
	 * --fence) before it takes over, with REMUS_PEER (the primary's host
	 * name), REMUS_DOMAIN, REMUS_EVENT=fence and REMUS_EPOCH set; it must
	 * power the primary's host off (STONITH) and exit 0, or the standby
	 * does not take over.  "": none (a cut link or a stalled primary
	 * then ends in two primaries). */
	char fence_command[REMUS_HOSTD_STR_MAX];
	enum remus_hostd_netbuffer netbuffer;    /* qemu */
	enum remus_hostd_reprotect reprotect;    /* auto */
	uint16_t repl_port_min, repl_port_max;   /* repl_ports = 7800-7899 */
	unsigned peer_timeout_ms;                /* 10000; also the TLS handshake's */
	/* What a create-standby may take on the standby host, on top of
	 * peer_timeout_ms (hostd.c); no config key: tests shorten it. */
	unsigned create_standby_ms;              /* 45000 */
	unsigned max_peer_sessions;              /* 16 */
	unsigned max_handshakes;                 /* 4 */
	/* copy_rate: KiB/s of the disks' block copies of protect and
	 * unprotect (libvirt's bandwidth); 0: as fast as they go */
	unsigned copy_rate_kib;
	/* TLS of the peer port and of the children's replication links
	 * (daemon: --tls-psk, --tls-x509-dir, --insecure); none set: remusd
	 * serve refuses to start, saying how. */
	/* ramfs_socket: this host's remusd ramfs (dirty/dirty.h RAMFS), given
	 * to every child as --ramfs: engine v2 for a domain whose RAM is a
	 * shared file on that mount.  Default /run/remus/ramfs.sock; "" (off):
	 * none, every domain v1. */
	char ramfs_socket[REMUS_HOSTD_PATH_MAX];
	char tls_psk[REMUS_HOSTD_STR_MAX];
	char tls_x509_dir[REMUS_HOSTD_STR_MAX];
	bool insecure;
	bool log_level_given;
	int log_level;                           /* enum remus_log_level */
};

/* The defaults. */
void remus_hostd_config_init(struct remus_hostd_config *c);

/*
 * Sets @key (a file key "state_dir", or an option's name "state-dir") to
 * @value (both borrowed).  @where says where it came from for the
 * message ("remusd.conf:12" or NULL for the command line, whose message
 * then names "--state-dir").  Returns 0, or -EINVAL with a message in
 * @err naming where, the key, the value and what is expected (unknown
 * keys say so); @c is unchanged on failure.
 */
int remus_hostd_config_set(struct remus_hostd_config *c, const char *key, const char *value,
			   const char *where, char *err, size_t errlen);

/*
 * Applies a config file's text @text (@len bytes, borrowed, need not be
 * NUL-terminated) read from @path (borrowed; named in messages).  Returns
 * 0, or -EINVAL with @err saying "PATH:LINE: KEY: what is wrong"; keys
 * before the bad line stay applied (the caller gives up anyway).
 */
int remus_hostd_config_parse(struct remus_hostd_config *c, const char *path,
			     const char *text, size_t len, char *err, size_t errlen);

/*
 * Reads and applies the file at @path.  @must_exist false: a missing
 * file is not an error (the default path).  Returns 0 or -errno with
 * @err set (a file that cannot be read names the file and errno).
 */
int remus_hostd_config_load(struct remus_hostd_config *c, const char *path, bool must_exist,
			    char *err, size_t errlen);

/*
 * `remusd serve [--config FILE] [--KEY VALUE | --KEY=VALUE]... [--help]`:
 * @argv[0] is "serve" (borrowed, not modified).  Loads the file, then
 * applies the options over it.  Returns 0 (*@help true: --help was
 * given, nothing else was checked), or -errno with @err set.
 */
int remus_hostd_config_from_args(struct remus_hostd_config *c, int argc, char *const *argv,
				 bool *help, char *err, size_t errlen);

/* The usage text of remusd serve (every key, its default). */
void remus_hostd_config_usage(FILE *f);

#endif
