/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A QMP monitor socket for a libvirt-owned QEMU.
 *
 * libvirt owns a domain's QMP monitor; remusd's engines (qmp/qmp.h) speak
 * QMP over a unix socket.  The proxy gives them one: per domain it listens
 * on a unix socket (mode 0600) and serves one client at a time as QEMU's
 * monitor would,
 *
 *     client (qmp.h)          proxy (this loop)              worker / libvirt
 *     connect        <------- greeting, built once from query-version
 *     qmp_capabilities  ----> {"return": {}} answered here
 *     {"execute": C, "id": I} [+ fds by SCM_RIGHTS]
 *                       ----> queue ------------------------> virDomainQemuMonitorCommandWithFiles
 *                 <---------- {"return"|"error": .., "id": I} <--'   (fds as in-files: getfd, add-fd)
 *                 <---------- {"event": ..} <--- mailbox <--- virConnectDomainQemuMonitorEventRegister
 *
 * Commands run one at a time, in the order the client sent them, so the
 * replies come in command order (the engine relies on it), and events
 * are interleaved in the order they reached the loop.  A line longer
 * than max_line, malformed JSON, a value that is not an object or more
 * than REMUS_QMP_PROXY_MAX_FDS fds on one command close the client; a
 * well-formed object that is not a valid command gets QEMU's kind of
 * error answer.  Events are sent only after qmp_capabilities, as QEMU
 * does.  A second client waits in the listen backlog until the first one
 * is gone (as with QEMU's monitor).
 *
 * When libvirt says the domain is gone (not running, no such domain, the
 * connection lost) the client is closed, as QEMU's death closes its
 * monitor, and the proxy is "dead": later clients are accepted and closed
 * at once.  The owner learns it through the state callback.
 *
 * The libvirt calls go through a table of operations (struct
 * remus_qmp_proxy_ops, libvirt's own functions by default) so that tests
 * can put a fake monitor behind the proxy; they run on remus_virt's
 * workers, never on the loop.
 *
 * Not thread-safe: a proxy belongs to the thread running its virt's loop.
 *
 * Missing: no timeout on a command libvirt never answers (libvirt's own
 * job timeout, 30 s, applies); events are not filtered (turn QEMU's
 * `events` migration capability off, as remusd primary does, or a
 * MIGRATION_PASS flood crosses the proxy); out-of-band execution is not
 * offered (QEMU's greeting's "oob" is not advertised).
 */
#ifndef REMUS_VIRT_QMP_PROXY_H
#define REMUS_VIRT_QMP_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include <libvirt/libvirt.h>
#include <libvirt/libvirt-qemu.h>

struct remus_virt;
struct remus_qmp_proxy;

/* Longest command line accepted from the client (QMP commands are small;
 * the longest the engine sends is a few hundred bytes). */
#define REMUS_QMP_PROXY_DEFAULT_MAX_LINE (1u << 20)
/* Most fds one command may carry (getfd and add-fd take one). */
#define REMUS_QMP_PROXY_MAX_FDS 8u
/* Bytes of replies and events buffered for a client that does not read;
 * beyond, the client is closed. */
#define REMUS_QMP_PROXY_MAX_OUTPUT (64u << 20)

/*
 * What the proxy calls, with libvirt's signatures (NULL members: libvirt's
 * function).  Everything runs on a virt worker, except that @event_cb is
 * called from wherever the backend calls it (libvirt's event thread).
 */
struct remus_qmp_proxy_ops {
	virDomainPtr (*lookup)(virConnectPtr conn, const char *name);
	int (*monitor_command)(virDomainPtr dom, const char *cmd, unsigned int ninfiles,
			       int *infiles, unsigned int *noutfiles, int **outfiles,
			       char **result, unsigned int flags);
	int (*event_register)(virConnectPtr conn, virDomainPtr dom, const char *event,
			      virConnectDomainQemuMonitorEventCallback cb, void *opaque,
			      virFreeCallback freecb, unsigned int flags);
	int (*event_deregister)(virConnectPtr conn, int callback_id);
	int (*domain_free)(virDomainPtr dom);
};

enum remus_qmp_proxy_state {
	REMUS_QMP_PROXY_STARTING, /* looking the domain up, asking its version */
	REMUS_QMP_PROXY_READY,    /* serving */
	REMUS_QMP_PROXY_DEAD,     /* final: setup failed or the domain is gone */
};

/*
 * Called with READY once (@rc 0, @err NULL), and with DEAD once (@rc <
 * 0, @err borrowed: "qmp proxy web1: domain is gone: ...").  Not called
 * from remus_qmp_proxy_free().  May free the proxy.
 */
typedef void remus_qmp_proxy_state_cb(struct remus_qmp_proxy *p,
				      enum remus_qmp_proxy_state state, int rc,
				      const char *err, void *opaque);

struct remus_qmp_proxy_opts {
	size_t max_line;                       /* 0: the default */
	const struct remus_qmp_proxy_ops *ops; /* borrowed; NULL: libvirt */
};

/* Proxy counters, for status and the bench. */
struct remus_qmp_proxy_stats {
	uint64_t commands;     /* forwarded and answered */
	uint64_t local;        /* answered by the proxy (capabilities, refusals) */
	uint64_t events;       /* event lines queued for a client */
	uint64_t events_dropped; /* arrived without a negotiated client */
	uint64_t clients;      /* accepted */
	/* Time from a forwarded command's start (handed to a worker) to
	 * its reply queued for the client, and the part of it spent in the
	 * backend call on the worker: the difference is what the proxy adds
	 * (two thread hops, the JSON rewrite).  Time waiting behind the
	 * client's previous command is in neither. */
	uint64_t total_ns, backend_ns, max_total_ns;
};

/*
 * Starts serving domain @domain (borrowed, copied; libvirt's name) of @v's
 * connection (borrowed, outlives the proxy) on the unix socket @path
 * (borrowed, copied; an old socket file there is replaced; mode 0600 from
 * before any client can connect).  The socket listens at once; clients
 * get the greeting once the domain is looked up and its version known
 * (a worker call), then @state_cb (may be NULL) hears READY, or DEAD if
 * that failed.  Returns 0 with *@out (owned: remus_qmp_proxy_free) or
 * -errno (socket, memory) with nothing started.
 */
int remus_qmp_proxy_new(struct remus_virt *v, const char *domain, const char *path,
			const struct remus_qmp_proxy_opts *opts,
			remus_qmp_proxy_state_cb *state_cb, void *opaque,
			struct remus_qmp_proxy **out);

/*
 * Closes the client and the socket (the file is removed), drops queued
 * commands, and frees @p; a command running in libvirt finishes there
 * and its reply is dropped; the event registration is removed by a later
 * worker call (free the virt after remus_virt_pending() drops to 0, or
 * the registration goes only with the connection).  Safe from inside the
 * state callback.  NULL is fine.
 */
void remus_qmp_proxy_free(struct remus_qmp_proxy *p);

enum remus_qmp_proxy_state remus_qmp_proxy_get_state(const struct remus_qmp_proxy *p);
/* Borrowed; valid until @p is freed. */
const char *remus_qmp_proxy_path(const struct remus_qmp_proxy *p);
void remus_qmp_proxy_get_stats(const struct remus_qmp_proxy *p,
			       struct remus_qmp_proxy_stats *out);

#endif
