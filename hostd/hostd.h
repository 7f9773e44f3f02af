/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The host daemon, `remusd serve`: one per hypervisor host.  It keeps the
 * registry of this host's protections (primary and standby roles), runs
 * one child `remusd primary|standby --name DOMAIN --ctl RUN/DOMAIN.ctl
 * --qmp RUN/DOMAIN.qmp` per protected domain and restarts it when it
 * dies, answers remusctl on the control socket (hostd/request.h; status
 * merges the child's answer with the host's view), talks to the other
 * hosts' remusd serve on the peer port (hostd/peer.h), records every
 * protection in STATE_DIR/domains/DOMAIN.json (hostd/state.h) and
 * resumes them when it starts again.  libvirt is reached through a table
 * of asynchronous operations (hostd/virtops.h).
 *
 * protect on the primary's host:
 *
 *   inspect (libvirt) --> peer create-standby --> record --> child primary
 *   --> (disks) block copy onto the child's NBD exports
 *   the request is answered once the standby exists ("starting"); remusctl
 *   then polls status.
 *
 * The standby host, on create-standby: images for the disks, the standby
 * child (it serves the disks' NBD exports and waits for QMP), the paused
 * standby domain (libvirt), its QMP proxy, the record; answer repl_port.
 *
 * After a takeover (the standby child went active, planned or not) the
 * survivor resumes the domain in libvirt, records itself as primary, and
 * with reprotect auto retries create-standby on the old host with
 * backoff until its remusd serve answers, then switches its child to the
 * primary role (the child's `protect HOST:PORT`) and gives it the
 * record's interval and pause budget.  set-interval on the primary's host
 * is sent to the standby's host as well (peer set-interval), so that the
 * record a takeover starts from holds what the user last set; when that
 * host does not answer, it is applied here all the same, said so, and
 * sent again until it answers (hostd.c, "the standby's copy of the
 * settings").
 *
 * A restart resumes every record (docs/ARCHITECTURE.md, "When remusd
 * serve stops or dies"):
 *
 *   primary:  recover (libvirt; a guest a checkpoint left paused is resumed)
 *             --> query its standby host (peer.h) --> it took the domain
 *             over after a newer takeover: FENCE, the copy here is destroyed
 *             (hostd/fence.h) | anything else, or no answer within the peer
 *             timeout: the primary child starts again
 *   standby:  its standby QEMU is destroyed and the record dropped (the
 *             child that fed it is gone; so when a standby child dies),
 *             unless libvirt still has a definition of the domain then (a
 *             host crash left it shut off, or the standby was the live
 *             instance of the old primary's own definition): that keeps its
 *             record, so that the primary's next create-standby makes the
 *             standby again over that definition, as one remusd protected
 *
 * Why no answer resumes the child rather than waiting for one: the peer's
 * host may be down, and then the copy here is the only one; without its
 * child its disks (on the child's NBD exports) and its network (the dead
 * child's filters) stay dead.  fence.h says what that costs when the
 * peer took over and is only out of reach.
 */
#ifndef REMUS_HOSTD_HOSTD_H
#define REMUS_HOSTD_HOSTD_H

#include "hostd/config.h"
#include "hostd/virtops.h"

struct remus_loop;
struct remus_hostd;

/*
 * Starts the host daemon on @loop (borrowed, outlives it) with @cfg
 * (borrowed, copied): the state directory is read, the control socket and
 * the peer port listen, recorded protections are resumed.  @ops/@virt: the
 * libvirt operations (@ops borrowed, @virt taken: ops->free at the end);
 * NULL: none (protect then answers that libvirt support is missing).
 * Returns 0 with *@out (owned: remus_hostd_free), or -errno after logging
 * what failed, on what, and the fix.
 */
int remus_hostd_new(struct remus_loop *loop, const struct remus_hostd_config *cfg,
		    const struct remus_hostd_virt_ops *ops, void *virt,
		    struct remus_hostd **out);

/*
 * The clean stop (SIGTERM): every child is sent SIGTERM (a primary then
 * resumes its guest and releases held output, through the QMP proxy that
 * stays up meanwhile); @done(@opaque) runs on the loop once all are gone,
 * at most @timeout_ms later (the rest are SIGKILLed).  Records are kept,
 * so the next start resumes.
 */
void remus_hostd_stop(struct remus_hostd *h, unsigned timeout_ms, void (*done)(void *opaque),
		      void *opaque);

/* The peer port actually bound (listen port 0 in tests). */
unsigned remus_hostd_peer_port(const struct remus_hostd *h);

/* Frees everything; children still running are SIGKILLed.  NULL ok. */
void remus_hostd_free(struct remus_hostd *h);

/*
 * `remusd serve ARGS...` (@argv[0] "serve"): the configuration, a loop,
 * SIGTERM/SIGINT, the libvirt operations, run until a signal.  Returns
 * the exit status (0; 1 on failure; 2 for a command line or config file
 * that cannot be used).
 */
int remus_hostd_serve_main(int argc, char *const *argv);

#endif
