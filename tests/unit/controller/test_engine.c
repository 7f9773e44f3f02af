// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The engine's epoch chain (controller/engine.h), driven through its
 * public API against fakes on the same loop:
 *
 *   fake QEMU     tests/support/fake_qmp.h plus a model of QEMU's
 *                 migration source: at `migrate` it writes the epoch's
 *                 running part (tests/support/migstream_build.h) into the
 *                 fd it got with getfd; at `stop` the completion part; it
 *                 closes the channel only once it has read the return
 *                 path's SHUT, as QEMU's source waits for it; it answers
 *                 query-migrate "active" twice after that, then
 *                 "completed".  Without the SHUT an epoch never ends.
 *                 While the guest runs, query-migrate says "active" with
 *                 the ram numbers the test sets (default: first pass
 *                 done, nothing remaining: converged); migrate_cancel
 *                 makes it "cancelling" for cancel_polls answers, then
 *                 "cancelled", as QEMU does.
 *   fake standby  a TCP listener the engine connects to (standby_host
 *                 127.0.0.1): answers HELLO, assembles every epoch with
 *                 repl/repl.h's assembler (sizes and hashes checked),
 *                 acknowledges COMMIT_REQ unless told to hold the ack,
 *                 and sends heartbeats unless told to be silent.
 *   hooks         barrier, commit, standby_lost, epoch_done, finished.
 *
 * Engine v2 (the tests named test_v2_*): the engine gets a real FUSE dirty
 * tracker (dirty/dirty.h; root and /dev/fuse, in the private mount
 * namespace main() enters, else those tests are skipped) and the fake
 * QEMU plays a guest whose RAM is its file: qom-get of the memory backend
 * names the tracker's file with share=on, and with x-ignore-shared set it
 * writes the whole x-ignore-shared stream at `migrate` (the guest is
 * stopped by then), without a page of the shared block.  The guest's
 * writes, where a test needs them, come from a writer child that maps the
 * file as QEMU does (the test process itself never opens the file it
 * serves: see tests/unit/dirty/test_dirty_fuse.c).
 *
 * All of them write one timeline ("qmp:stop", "rp:SHUT", "hook:barrier 1",
 * "link:COMMIT_REQ 1", ...) in the order things happened on the loop.
 * QMP commands and link frames travel on two sockets, so across them the
 * tests assert only orders that the engine causes (the barrier hook before
 * the COMMIT_REQ it allows, the ack before the commit hook); within QMP
 * they assert the exact transcript.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/sock.h"
#include "controller/engine.h"
#include "dirty/dirty.h"
#include "migstream/migstream.h"
#include "qmp/qmp.h"
#include "repl/repl.h"
#include "support/fake_qmp.h"
#include "support/migstream_build.h"
#include "support/timeline.h"

#define WAIT_MS 5000
#define RAM_SID 2
#define ACTIVE_POLLS 2
#define MIG_FD_NAME "remus-mig"
#define VM_NAME "vm0"
#define VM_UUID "00112233-4455-6677-8899-aabbccddeeff"
#define MAX_MIG 64
/* engine v2: the guest's RAM block, one tracker file of V2_PAGES pages */
#define V2_BLOCK "mem"
#define V2_PAGES 64u

/* Where the v2 tests mount their tracker; "" if FUSE cannot run here. */
static char fuse_mnt[64];

/* MIG_RP_MSG_SHUT: be16 type 1, be16 length 4, be32 0. */
static const uint8_t rp_shut[8] = { 0, 1, 0, 4, 0, 0, 0, 0 };

/* An epoch as the fake standby assembled it. */
struct sby_epoch {
	unsigned session;
	uint64_t epoch;
	struct remus_buf data, device;
};

struct env {
	struct remus_loop *loop;
	struct remus_fake_qmp *fq;
	struct remus_qmp *qmp;
	struct remus_engine *e;
	struct remus_engine_config cfg;

	struct remus_tl tl;

	/* Called with every QMP command before the fake QEMU answers it;
	 * returns true if it took care of the command (answer or hold). */
	bool (*on_cmd)(struct env *v, struct remus_fake_qmp_cmd *c);
	struct remus_fake_qmp_cmd *held;

	/* fake QEMU, the migration of the current epoch */
	enum { MIG_NONE, MIG_ACTIVE, MIG_COMPLETED, MIG_CANCELLING, MIG_CANCELLED } mig_state;
	unsigned syncs;          /* ram.dirty-sync-count while active */
	uint64_t remaining;      /* ram.remaining while active */
	unsigned cancel_polls;   /* "cancelling" answers after migrate_cancel */
	unsigned cancel_left;
	bool stop_stuck;         /* at stop: send nothing more, never finish */
	bool complete_at_cancel; /* ...but finish when migrate_cancel arrives */
	bool in_setup;           /* query-migrate says "setup" while active */
	unsigned migrates_while_busy; /* migrate while not NONE/COMPLETED/CANCELLED */
	int mig_fd;              /* QEMU's end of the channel, or -1 */
	bool mig_closed;         /* closed by QEMU after SHUT */
	unsigned polls;          /* query-migrate answered since */
	struct remus_buf rp;     /* return path bytes */
	unsigned nmig;           /* migrations started */
	struct remus_buf stream[MAX_MIG];  /* each migration's whole stream */
	struct remus_buf completion;       /* the current one's second part */
	uint64_t t_migrate[MAX_MIG], t_stop[MAX_MIG], t_cont[MAX_MIG], t_cancel[MAX_MIG];
	unsigned nstop, ncont, ncancel;

	/* engine v2 */
	struct remus_dirty *dirty; /* the tracker, or NULL (v1 tests) */
	bool shared;             /* x-ignore-shared as last set */
	bool no_vmdesc;          /* suppress-vmdesc as last set */
	bool vmdesc_refused;     /* qom-set of suppress-vmdesc fails */
	unsigned vmdesc_sets;    /* qom-set of it answered */
	bool v2_stalled;         /* a v2 migration was held in setup */
	bool v2_bad_page;        /* next v2 stream carries a page of the shared block */
	pid_t writer;            /* the guest's writes: a child mapping the file */
	int writer_cmd, writer_ack;
	struct remus_epoch_metrics at_cont[MAX_MIG]; /* each epoch's metrics at cont */
	unsigned ndone_cont;     /* how many of them */

	/* fake standby */
	int lfd, sfd;
	uint16_t port;
	struct remus_buf sin;
	struct remus_repl_decoder dec;
	struct remus_repl_assembler asmb;
	bool hold_acks, silent;
	unsigned sessions;
	uint64_t hb_seq;
	struct remus_timer hb_timer;
	struct sby_epoch got[MAX_MIG];
	unsigned ngot;
	char hello_name[64];
	uint8_t hello_uuid[16];
	unsigned closes;
	char close_reason[256];

	/* hooks */
	int barrier_rc;          /* what the barrier hook returns */
	uint64_t barrier_fail_epoch;
	unsigned barriers, commits, losts, finished;
	uint64_t last_commit;
	char lost_reason[256];
	unsigned done_calls, done_acked, done_abandoned;
	double cycle_ms[MAX_MIG]; /* each epoch's metrics at cont */
	struct remus_epoch_metrics abandoned;
	enum remus_engine_state fin_state;
	int fin_rc;
	char fin_reason[256];
};

#define RUN_UNTIL(v, cond) REMUS_TL_RUN_UNTIL(&(v)->tl, (v)->loop, cond, WAIT_MS)

/* ---- fake QEMU: the migration source ---------------------------------- */

static void mig_close(struct env *v)
{
	if (v->mig_fd < 0)
		return;
	remus_loop_del_fd(v->loop, v->mig_fd);
	close(v->mig_fd);
	v->mig_fd = -1;
}

/* Writes stream bytes into the channel, as QEMU does (small: they fit the
 * socket buffer, so a blocking write cannot hang the loop).  An engine
 * that closed its end makes QEMU's write fail, not the test. */
static void mig_write(struct env *v, const struct remus_buf *b)
{
	int rc = remus_write_all(v->mig_fd, remus_buf_data(b), remus_buf_len(b));

	if (rc == -EPIPE || rc == -ECONNRESET) {
		remus_tl_add(&v->tl, "mig:closed by the engine");
		mig_close(v);
		return;
	}
	assert_int_equal(rc, 0);
}

/* The return path: the engine's SHUT lets the source finish. */
static void on_rp(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct env *v = opaque;
	uint8_t b[64];
	ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);

	if (r < 0)
		return;
	if (r == 0) {
		remus_tl_add(&v->tl, "mig:closed by the engine");
		mig_close(v);
		return;
	}
	assert_int_equal(remus_buf_append(&v->rp, b, (size_t)r), 0);
	if (remus_buf_len(&v->rp) < sizeof(rp_shut))
		return;
	assert_int_equal(remus_buf_len(&v->rp), sizeof(rp_shut));
	assert_memory_equal(remus_buf_data(&v->rp), rp_shut, sizeof(rp_shut));
	remus_tl_add(&v->tl, "rp:SHUT");
	remus_buf_reset(&v->rp);
	if (v->stop_stuck)
		return; /* still busy with its tail */
	/* QEMU's source closes the channel once the return path is shut. */
	mig_close(v);
	v->mig_closed = true;
}

static void qemu_migrate(struct env *v, struct remus_fake_qmp_cmd *c)
{
	struct remus_test_migstream_opts o = {
		.ram_sid = RAM_SID, .part_pages = 3, .end_pages = 2, .seed = v->nmig,
	};
	bool v2 = v->dirty && v->shared;
	struct remus_buf running;
	int fd;

	assert_string_equal(remus_fake_qmp_arg(c, "uri"), "fd:" MIG_FD_NAME);
	/* QEMU refuses a migration while one runs ("Invalid argument"
	 * sessions, issue 14); the engine must never ask. */
	if (v->mig_state == MIG_ACTIVE || v->mig_state == MIG_CANCELLING) {
		v->migrates_while_busy++;
		remus_tl_add(&v->tl, "qemu:migrate while busy");
	}
	v->mig_state = MIG_ACTIVE;
	v->in_setup = false;
	if (v->dirty) {
		o.block = V2_BLOCK;
		o.ram_pages = V2_PAGES;
	}
	o.no_vmdesc = v->no_vmdesc;
	if (v2) {
		/* x-ignore-shared: no page of the shared block (unless the
		 * test wants a stream the composer must refuse) */
		o.ignore_shared = true;
		o.part_pages = 0;
		o.end_pages = v->v2_bad_page ? 1 : 0;
	}
	/* The channel came with the getfd before. */
	fd = remus_fake_qmp_take_fd(v->fq, MIG_FD_NAME);
	assert_true(fd >= 0);
	assert_true(v->nmig < MAX_MIG);
	mig_close(v);
	v->mig_fd = fd;
	v->mig_closed = false;
	v->polls = 0;
	remus_buf_reset(&v->rp);
	remus_buf_init(&running, 0);
	remus_buf_reset(&v->completion);
	remus_test_migstream_build(&o, &running, &v->completion);
	remus_buf_init(&v->stream[v->nmig], 0);
	assert_int_equal(remus_buf_append(&v->stream[v->nmig], remus_buf_data(&running),
					  remus_buf_len(&running)), 0);
	assert_int_equal(remus_buf_append(&v->stream[v->nmig], remus_buf_data(&v->completion),
					  remus_buf_len(&v->completion)), 0);
	v->t_migrate[v->nmig++] = remus_now_ms();
	remus_fake_qmp_reply(v->fq, c, NULL);
	assert_int_equal(remus_loop_add_fd(v->loop, fd, REMUS_EV_READ, on_rp, v), 0);
	if (v2 && v->stop_stuck) {
		/* QEMU still sets the migration up: nothing on the channel */
		v->in_setup = true;
	} else {
		mig_write(v, &running);
		/* a v2 migration starts with the guest stopped: all at once */
		if (v2 && v->mig_fd >= 0)
			mig_write(v, &v->completion);
	}
	remus_buf_release(&running);
}

static void qemu_stop(struct env *v, struct remus_fake_qmp_cmd *c)
{
	if (v->nstop < MAX_MIG)
		v->t_stop[v->nstop++] = remus_now_ms();
	remus_fake_qmp_reply(v->fq, c, NULL);
	/* The guest is stopped: the source sends the rest and then waits
	 * for the return path's SHUT before it closes the channel.  A stuck
	 * source (a tail too big for the budget) sends nothing more. */
	if (v->mig_fd >= 0 && !v->stop_stuck)
		mig_write(v, &v->completion);
}

static void qemu_query_migrate(struct env *v, struct remus_fake_qmp_cmd *c)
{
	char ram[160];

	switch (v->mig_state) {
	case MIG_NONE:
		remus_fake_qmp_reply(v->fq, c, "{}");
		return;
	case MIG_COMPLETED:
		remus_fake_qmp_reply(v->fq, c, "{\"status\": \"completed\"}");
		return;
	case MIG_CANCELLING:
		if (v->cancel_left) {
			v->cancel_left--;
			remus_tl_add(&v->tl, "qemu:cancelling");
			remus_fake_qmp_reply(v->fq, c, "{\"status\": \"cancelling\"}");
			return;
		}
		v->mig_state = MIG_CANCELLED;
		remus_tl_add(&v->tl, "qemu:cancelled");
		/* fall through */
	case MIG_CANCELLED:
		remus_fake_qmp_reply(v->fq, c, "{\"status\": \"cancelled\"}");
		return;
	case MIG_ACTIVE:
		break;
	}
	if (v->in_setup) {
		remus_fake_qmp_reply(v->fq, c, "{\"status\": \"setup\"}");
		return;
	}
	if (!v->mig_closed || v->polls++ < ACTIVE_POLLS) {
		snprintf(ram, sizeof(ram), "{\"status\": \"active\", \"ram\": {"
			 "\"dirty-sync-count\": %u, \"remaining\": %llu, \"total\": 268435456, "
			 "\"transferred\": 1000}}", v->syncs, (unsigned long long)v->remaining);
		remus_fake_qmp_reply(v->fq, c, ram);
		return;
	}
	v->mig_state = MIG_COMPLETED;
	remus_fake_qmp_reply(v->fq, c, "{\"status\": \"completed\"}");
}

static void qemu_migrate_cancel(struct env *v, struct remus_fake_qmp_cmd *c)
{
	if (v->mig_state == MIG_ACTIVE && v->complete_at_cancel && v->mig_fd >= 0) {
		/* The source finished just before the cancel arrived: the
		 * cancel finds a completed migration and does nothing. */
		remus_tl_add(&v->tl, "qemu:completed before the cancel");
		mig_write(v, &v->completion);
		mig_close(v);
		v->mig_closed = true;
		v->polls = ACTIVE_POLLS;
	} else if (v->mig_state == MIG_ACTIVE) {
		mig_close(v);
		v->in_setup = false;
		v->mig_state = MIG_CANCELLING;
		v->cancel_left = v->cancel_polls;
	}
	remus_fake_qmp_reply(v->fq, c, NULL);
}

/* The guest's RAM is the tracker's file, share=on. */
static void qemu_qom_get(struct env *v, struct remus_fake_qmp_cmd *c)
{
	const char *path = remus_fake_qmp_arg(c, "path");
	const char *prop = remus_fake_qmp_arg(c, "property");
	char ret[256];

	assert_string_equal(path, "/objects/" V2_BLOCK);
	if (strcmp(prop, "mem-path") == 0) {
		snprintf(ret, sizeof(ret), "\"%s\"", remus_dirty_ram_path(v->dirty));
		remus_fake_qmp_reply(v->fq, c, ret);
	} else if (strcmp(prop, "share") == 0) {
		remus_fake_qmp_reply(v->fq, c, "true");
	} else {
		remus_fake_qmp_reply_error(v->fq, c, "GenericError", "no such property");
	}
}

/* x-ignore-shared as the engine sets it between migrations. */
static void note_shared(struct env *v, struct remus_fake_qmp_cmd *c)
{
	struct json_object *list, *cap, *x;
	size_t i;

	if (!c->args || !json_object_object_get_ex(c->args, "capabilities", &list))
		return;
	for (i = 0; i < json_object_array_length(list); i++) {
		cap = json_object_array_get_idx(list, i);
		if (json_object_object_get_ex(cap, "capability", &x) &&
		    strcmp(json_object_get_string(x), "x-ignore-shared") == 0 &&
		    json_object_object_get_ex(cap, "state", &x)) {
			v->shared = json_object_get_boolean(x);
			remus_tl_add(&v->tl, "qemu:x-ignore-shared %s", v->shared ? "on" : "off");
		}
	}
}

/* qom-set /machine suppress-vmdesc: the next migrations lack (or have)
 * their vmdescription, as QEMU's do; refused when the test says so. */
static void qemu_qom_set(struct env *v, struct remus_fake_qmp_cmd *c)
{
	struct json_object *x;

	assert_string_equal(remus_fake_qmp_arg(c, "path"), "/machine");
	assert_string_equal(remus_fake_qmp_arg(c, "property"), "suppress-vmdesc");
	if (v->vmdesc_refused) {
		remus_fake_qmp_reply_error(v->fq, c, "GenericError",
					   "Property 'pc-machine.suppress-vmdesc' not found");
		return;
	}
	assert_true(json_object_object_get_ex(c->args, "value", &x));
	v->no_vmdesc = json_object_get_boolean(x);
	v->vmdesc_sets++;
	remus_tl_add(&v->tl, "qemu:suppress-vmdesc %s", v->no_vmdesc ? "on" : "off");
	remus_fake_qmp_reply(v->fq, c, "{}");
}

static void qemu_cmd(struct remus_fake_qmp *f, struct remus_fake_qmp_cmd *c, void *opaque)
{
	struct env *v = opaque;
	const char *n = c->name;

	if (strcmp(n, "qmp_capabilities") != 0)
		remus_tl_add(&v->tl, "qmp:%s", n);
	if (strcmp(n, "cont") == 0 && v->ncont < MAX_MIG)
		v->t_cont[v->ncont++] = remus_now_ms();
	if (strcmp(n, "migrate_cancel") == 0 && v->ncancel < MAX_MIG)
		v->t_cancel[v->ncancel++] = remus_now_ms();
	if (v->on_cmd && v->on_cmd(v, c))
		return;
	if (strcmp(n, "migrate") == 0) {
		qemu_migrate(v, c);
	} else if (strcmp(n, "stop") == 0) {
		qemu_stop(v, c);
	} else if (strcmp(n, "query-migrate") == 0) {
		qemu_query_migrate(v, c);
	} else if (strcmp(n, "migrate_cancel") == 0) {
		qemu_migrate_cancel(v, c);
	} else if (strcmp(n, "query-name") == 0) {
		remus_fake_qmp_reply(f, c, "{\"name\": \"" VM_NAME "\"}");
	} else if (strcmp(n, "query-uuid") == 0) {
		remus_fake_qmp_reply(f, c, "{\"UUID\": \"" VM_UUID "\"}");
	} else if (strcmp(n, "qom-get") == 0 && v->dirty) {
		qemu_qom_get(v, c);
	} else if (strcmp(n, "migrate-set-capabilities") == 0) {
		note_shared(v, c);
		remus_fake_qmp_builtin(f, c);
	} else if (strcmp(n, "qom-set") == 0) {
		qemu_qom_set(v, c);
	} else {
		/* qmp_capabilities, capabilities, parameters, getfd, cont */
		remus_fake_qmp_builtin(f, c);
	}
}

/* ---- fake standby ----------------------------------------------------- */

static void sby_drop(struct env *v);

static void sby_send(struct env *v, const struct remus_buf *b)
{
	int rc;

	if (v->sfd < 0)
		return;
	rc = remus_write_all(v->sfd, remus_buf_data(b), remus_buf_len(b));
	if (rc == -EPIPE || rc == -ECONNRESET) {
		remus_tl_add(&v->tl, "link:EOF");
		sby_drop(v);
		return;
	}
	assert_int_equal(rc, 0);
}

static void sby_put_ack(struct env *v, uint64_t epoch)
{
	struct remus_buf b;

	remus_buf_init(&b, 0);
	assert_int_equal(remus_repl_put_commit_ack(&b, epoch), 0);
	sby_send(v, &b);
	remus_buf_release(&b);
	remus_tl_add(&v->tl, "sby:ACK %llu", (unsigned long long)epoch);
}

static void sby_drop(struct env *v)
{
	if (v->sfd < 0)
		return;
	remus_loop_del_fd(v->loop, v->sfd);
	close(v->sfd);
	v->sfd = -1;
	remus_repl_assembler_release(&v->asmb);
}

/* What the assembler released, as one buffer (@out initialised here). */
static void store_to_buf(struct remus_spill *st, struct remus_buf *out)
{
	uint8_t buf[65536];
	ssize_t r;

	remus_buf_init(out, 0);
	while ((r = remus_spill_read(st, buf, sizeof(buf))) > 0)
		assert_int_equal(remus_buf_append(out, buf, (size_t)r), 0);
	assert_int_equal(r, 0);
}

static void sby_handle(struct env *v, const struct remus_repl_msg *m)
{
	struct remus_repl_epoch ep;
	struct remus_buf b;
	int rc;

	switch (m->type) {
	case REMUS_REPL_HELLO:
		remus_tl_add(&v->tl, "link:HELLO");
		v->sessions++;
		snprintf(v->hello_name, sizeof(v->hello_name), "%.*s",
			 (int)m->u.hello.vm_name.len, m->u.hello.vm_name.p);
		memcpy(v->hello_uuid, m->u.hello.vm_uuid, 16);
		remus_repl_assembler_release(&v->asmb);
		remus_repl_assembler_init(&v->asmb, 0, 0);
		remus_buf_init(&b, 0);
		assert_int_equal(remus_repl_encode(&b, &(struct remus_repl_msg){
			.type = REMUS_REPL_HELLO_ACK,
			.u.ack = { .version = REMUS_REPL_VERSION } }), 0);
		sby_send(v, &b);
		remus_buf_release(&b);
		return;
	case REMUS_REPL_EPOCH_DATA:
	case REMUS_REPL_EPOCH_DEVICE:
	case REMUS_REPL_COMMIT_REQ:
		if (!v->asmb.open && m->type != REMUS_REPL_COMMIT_REQ)
			remus_tl_add(&v->tl, "link:DATA %llu", (unsigned long long)m->seq);
		remus_repl_epoch_init(&ep);
		rc = remus_repl_assembler_feed(&v->asmb, m, &ep);
		if (rc < 0)
			fail_msg("standby: %s", remus_repl_assembler_error(&v->asmb));
		if (rc == 1) {
			struct sby_epoch *g = &v->got[v->ngot];

			assert_true(v->ngot < MAX_MIG);
			v->ngot++;
			g->session = v->sessions;
			g->epoch = ep.epoch;
			store_to_buf(&ep.data, &g->data);
			store_to_buf(&ep.device, &g->device);
			remus_repl_epoch_release(&ep);
			remus_tl_add(&v->tl, "link:COMMIT_REQ %llu", (unsigned long long)ep.epoch);
			if (!v->hold_acks)
				sby_put_ack(v, ep.epoch);
		} else {
			remus_repl_epoch_release(&ep);
		}
		return;
	case REMUS_REPL_HEARTBEAT:
		return;
	case REMUS_REPL_CLOSE:
		v->closes++;
		snprintf(v->close_reason, sizeof(v->close_reason), "%.*s",
			 (int)m->u.reason.len, m->u.reason.p);
		remus_tl_add(&v->tl, "link:CLOSE");
		return;
	default:
		fail_msg("standby: unexpected %s", remus_repl_type_name(m->type));
	}
}

static void on_sby(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct env *v = opaque;
	struct remus_repl_msg m;
	ssize_t r = remus_buf_read_fd(&v->sin, fd, 1u << 20);
	int rc;

	if (r == -EAGAIN)
		return;
	if (r <= 0) {
		remus_tl_add(&v->tl, "link:EOF");
		sby_drop(v);
		return;
	}
	while (v->sfd == fd && (rc = remus_repl_decode(&v->dec, &v->sin, &m)) == 1)
		sby_handle(v, &m);
	if (v->sfd == fd && rc < 0)
		fail_msg("standby: %s", remus_repl_decoder_error(&v->dec));
}

static void on_sby_accept(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct env *v = opaque;
	int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

	if (c < 0)
		return;
	if (v->sfd >= 0)
		fail_msg("the engine opened a second link while the first was up");
	v->sfd = c;
	remus_buf_reset(&v->sin);
	remus_repl_decoder_init(&v->dec);
	assert_int_equal(remus_loop_add_fd(loop, c, REMUS_EV_READ, on_sby, v), 0);
}

static void on_sby_beat(struct remus_loop *loop, void *opaque)
{
	struct env *v = opaque;
	struct remus_buf b;

	if (v->sfd >= 0 && !v->silent) {
		remus_buf_init(&b, 0);
		assert_int_equal(remus_repl_put_heartbeat(&b, ++v->hb_seq, remus_now_ms()), 0);
		sby_send(v, &b);
		remus_buf_release(&b);
	}
	remus_timer_arm(&v->hb_timer, 20);
}

/* ---- hooks ------------------------------------------------------------ */

static int h_barrier(void *opaque, uint64_t epoch)
{
	struct env *v = opaque;

	remus_tl_add(&v->tl, "hook:barrier %llu", (unsigned long long)epoch);
	v->barriers++;
	if (v->barrier_rc && epoch == v->barrier_fail_epoch)
		return v->barrier_rc;
	return 0;
}

static void h_commit(void *opaque, uint64_t epoch)
{
	struct env *v = opaque;

	remus_tl_add(&v->tl, "hook:commit %llu", (unsigned long long)epoch);
	v->commits++;
	v->last_commit = epoch;
}

static void h_lost(void *opaque, const char *reason)
{
	struct env *v = opaque;

	remus_tl_add(&v->tl, "hook:lost");
	v->losts++;
	snprintf(v->lost_reason, sizeof(v->lost_reason), "%s", reason);
}

static void h_epoch_done(void *opaque, const struct remus_epoch_metrics *m)
{
	struct env *v = opaque;

	v->done_calls++;
	if (m->commit_ms < 0 && m->epoch < MAX_MIG) {
		v->cycle_ms[m->epoch] = m->cycle_ms;
		v->at_cont[m->epoch] = *m;
		v->ndone_cont++;
	}
	if (m->commit_ms >= 0)
		v->done_acked++;
	if (m->abandoned) {
		remus_tl_add(&v->tl, "hook:abandoned %llu", (unsigned long long)m->epoch);
		v->done_abandoned++;
		v->abandoned = *m;
	}
}

static void h_finished(void *opaque, enum remus_engine_state st, int rc, const char *reason)
{
	struct env *v = opaque;

	remus_tl_add(&v->tl, "hook:finished %s", st == REMUS_ENGINE_STOPPED ? "stopped" :
	       st == REMUS_ENGINE_FAILED ? "failed" : "?");
	v->finished++;
	v->fin_state = st;
	v->fin_rc = rc;
	snprintf(v->fin_reason, sizeof(v->fin_reason), "%s", reason);
}

/* ---- the guest's writes (engine v2) ---------------------------------- */

#define W_FIRST 10u /* the writer's pages: W_FIRST .. W_FIRST + W_PAGES - 1 */
#define W_PAGES 16u

static void writer_page(unsigned p, uint8_t *out)
{
	unsigned k;

	for (k = 0; k < REMUS_DIRTY_PAGE_SIZE; k++)
		out[k] = (uint8_t)(k * 13 + p * 101 + 0x5a);
}

/* A child that maps the tracker's file as QEMU does and stays alive (had
 * it exited, its pages would be written back by the release alone); a
 * byte on its command pipe makes it write its pages and answer a byte.
 * It keeps no copy of the parent's /dev/fuse and dies with the parent. */
static void writer_start(struct env *v)
{
	int c[2], a[2], fd;

	assert_int_equal(pipe(c), 0);
	assert_int_equal(pipe(a), 0);
	v->writer = fork();
	assert_true(v->writer >= 0);
	if (v->writer == 0) {
		uint8_t *m, cmd;
		unsigned p;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (fd = 3; fd < 1024; fd++)
			if (fd != c[0] && fd != a[1])
				close(fd);
		fd = open(remus_dirty_ram_path(v->dirty), O_RDWR | O_CLOEXEC);
		if (fd < 0)
			_exit(1);
		m = mmap(NULL, (size_t)V2_PAGES * REMUS_DIRTY_PAGE_SIZE, PROT_READ | PROT_WRITE,
			 MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			_exit(1);
		close(fd);
		while (read(c[0], &cmd, 1) == 1) {
			for (p = W_FIRST; p < W_FIRST + W_PAGES; p++)
				writer_page(p, m + (size_t)p * REMUS_DIRTY_PAGE_SIZE);
			if (write(a[1], "k", 1) != 1)
				break;
		}
		_exit(0);
	}
	close(c[0]);
	close(a[1]);
	v->writer_cmd = c[1];
	v->writer_ack = a[0];
}

/* The guest writes its pages (returns once they are written). */
static void writer_write(struct env *v)
{
	char k;

	assert_int_equal(write(v->writer_cmd, "w", 1), 1);
	assert_int_equal(read(v->writer_ack, &k, 1), 1);
}

static void writer_stop(struct env *v)
{
	int st;

	if (v->writer <= 0)
		return;
	close(v->writer_cmd);
	assert_int_equal(waitpid(v->writer, &st, 0), v->writer);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(v->writer_ack);
	v->writer = 0;
}

/* ---- fixture ---------------------------------------------------------- */

static int setup(void **state)
{
	struct env *v = calloc(1, sizeof(*v));

	assert_non_null(v);
	v->mig_fd = v->sfd = v->writer_cmd = v->writer_ack = -1;
	v->syncs = 2;
	v->cancel_polls = 1;
	assert_int_equal(remus_loop_new(&v->loop), 0);
	remus_fake_qmp_pair(v->loop, qemu_cmd, v, &v->fq, &v->qmp);
	v->tl.qmp = v->fq;
	remus_buf_init(&v->rp, 0);
	remus_buf_init(&v->completion, 0);
	remus_buf_init(&v->sin, REMUS_REPL_FRAME_MAX);
	remus_repl_assembler_init(&v->asmb, 0, 0);
	v->lfd = remus_tcp_listen("127.0.0.1", 0, 4, &v->port);
	assert_true(v->lfd >= 0);
	assert_int_equal(remus_loop_add_fd(v->loop, v->lfd, REMUS_EV_READ, on_sby_accept, v), 0);
	remus_timer_init(&v->hb_timer, v->loop, on_sby_beat, v);
	remus_timer_arm(&v->hb_timer, 20);
	v->cfg = (struct remus_engine_config){
		.standby_host = "127.0.0.1",
		.standby_port = v->port,
		.interval_ms = 30,
		.heartbeat_ms = 20,
		/* 500 ms: a loaded machine must not lose the standby by accident */
		.heartbeat_miss = 25,
		.reconnect_ms = 50,
	};
	*state = v;
	return 0;
}

static int teardown(void **state)
{
	struct env *v = *state;
	unsigned i;

	remus_engine_free(v->e);
	remus_qmp_free(v->qmp);
	remus_fake_qmp_free(v->fq);
	/* after the engine, as after QEMU: nothing maps the file any more */
	writer_stop(v);
	remus_dirty_close(v->dirty);
	mig_close(v);
	sby_drop(v);
	remus_loop_del_fd(v->loop, v->lfd);
	close(v->lfd);
	remus_timer_disarm(&v->hb_timer);
	for (i = 0; i < v->nmig; i++)
		remus_buf_release(&v->stream[i]);
	for (i = 0; i < v->ngot; i++) {
		remus_buf_release(&v->got[i].data);
		remus_buf_release(&v->got[i].device);
	}
	remus_buf_release(&v->rp);
	remus_buf_release(&v->completion);
	remus_buf_release(&v->sin);
	remus_repl_assembler_release(&v->asmb);
	remus_loop_free(v->loop);
	free(v);
	return 0;
}

static void start(struct env *v)
{
	struct remus_engine_hooks h = {
		.barrier = h_barrier, .commit = h_commit, .standby_lost = h_lost,
		.epoch_done = h_epoch_done, .finished = h_finished, .opaque = v,
	};

	assert_int_equal(remus_engine_start(v->loop, v->qmp, &v->cfg, &h, &v->e), 0);
}

/* The standby holds exactly what the engine's rewriter makes of
 * migration @mig's stream, as epoch @epoch of its session. */
static void assert_epoch_is(const struct env *v, unsigned got, unsigned mig, uint64_t epoch,
			    bool first)
{
	struct remus_buf data, dev;

	remus_buf_init(&data, 0);
	remus_buf_init(&dev, 0);
	assert_int_equal(remus_test_migstream_rewrite(remus_buf_data(&v->stream[mig]),
						      remus_buf_len(&v->stream[mig]), first,
						      RAM_SID, &data, &dev), 0);
	assert_true(got < v->ngot);
	assert_int_equal(v->got[got].epoch, epoch);
	assert_int_equal(remus_buf_len(&v->got[got].data), remus_buf_len(&data));
	assert_memory_equal(remus_buf_data(&v->got[got].data), remus_buf_data(&data),
			    remus_buf_len(&data));
	assert_int_equal(remus_buf_len(&v->got[got].device), remus_buf_len(&dev));
	assert_memory_equal(remus_buf_data(&v->got[got].device), remus_buf_data(&dev),
			    remus_buf_len(&dev));
	remus_buf_release(&data);
	remus_buf_release(&dev);
}

/* The entries of epoch @n's checkpoint, in the order they must come,
 * starting at @from; returns where the epoch's cont is. */
static int assert_checkpoint(struct env *v, int from, uint64_t n)
{
	char barrier[32], req[32], ack[32], commit[32];
	int at_barrier, at_cont;

	snprintf(barrier, sizeof(barrier), "hook:barrier %llu", (unsigned long long)n);
	snprintf(req, sizeof(req), "link:COMMIT_REQ %llu", (unsigned long long)n);
	snprintf(ack, sizeof(ack), "sby:ACK %llu", (unsigned long long)n);
	snprintf(commit, sizeof(commit), "hook:commit %llu", (unsigned long long)n);
	/* stop, then SHUT on the return path (QEMU waits for it), then
	 * query-migrate until completed (ACTIVE_POLLS + 1 times), then the
	 * barrier, then cont */
	at_barrier = remus_tl_order(&v->tl, from, "qmp:getfd", "qmp:migrate", "qmp:stop", "rp:SHUT",
			      "qmp:query-migrate", "qmp:query-migrate", "qmp:query-migrate",
			      barrier, NULL);
	/* and the next QMP command after the barrier is cont */
	at_cont = remus_tl_next(&v->tl, "qmp:", at_barrier);
	if (at_cont < 0 || strcmp(v->tl.entry[at_cont], "qmp:cont") != 0)
		remus_tl_fail(&v->tl, "epoch %llu: the command after the barrier is not cont",
			      (unsigned long long)n);
	/* the COMMIT_REQ the barrier allowed, its ack, then the commit hook */
	remus_tl_order(&v->tl, at_barrier, req, ack, commit, NULL);
	return at_cont;
}

/* ---- tests ------------------------------------------------------------ */

static void test_epoch_chain(void **state)
{
	struct env *v = *state;
	struct json_object *caps;
	const char *want;
	struct remus_fake_qmp_cmd *c;
	int at;
	unsigned i;

	start(v);
	RUN_UNTIL(v, v->commits == 3 && v->nmig >= 4);
	remus_engine_free(v->e);
	v->e = NULL;

	/* The QMP transcript, exactly: set-up, then is a migration running
	 * (QEMU is new: no), then per epoch the getfd that passes the
	 * channel, migrate over it, at the interval query-migrate (converged:
	 * yes) and stop, query-migrate until completed, cont; a completed
	 * migration needs no check before the next. */
	want = "migrate-set-capabilities;migrate-set-parameters;query-name;query-uuid;"
	       "query-migrate;getfd remus-mig;migrate fd:remus-mig;query-migrate;stop;"
	       "query-migrate;query-migrate;query-migrate;cont;"
	       "getfd remus-mig;migrate fd:remus-mig;query-migrate;stop;"
	       "query-migrate;query-migrate;query-migrate;cont;"
	       "getfd remus-mig;migrate fd:remus-mig;query-migrate;stop;"
	       "query-migrate;query-migrate;query-migrate;cont;"
	       "getfd remus-mig;migrate fd:remus-mig;";
	if (strncmp(remus_fake_qmp_log(v->fq), want, strlen(want)) != 0)
		fail_msg("QMP transcript:\n  %s\nexpected it to start with:\n  %s",
			 remus_fake_qmp_log(v->fq), want);
	/* The capabilities are migstream's list (return-path, switchover-ack,
	 * events off). */
	c = remus_fake_qmp_cmd(v->fq, 1);
	assert_string_equal(c->name, "migrate-set-capabilities");
	caps = remus_migstream_caps_args();
	assert_string_equal(json_object_to_json_string_ext(c->args, JSON_C_TO_STRING_PLAIN),
			    json_object_to_json_string_ext(caps, JSON_C_TO_STRING_PLAIN));
	json_object_put(caps);
	/* (Each getfd carried the channel: the fake QEMU's getfd fails
	 * without an fd, and its migrate takes the fd by that name.) */

	/* The chain of every epoch, in order; the next epoch's migrate only
	 * after the previous cont. */
	at = 0;
	for (i = 0; i < 3; i++)
		at = assert_checkpoint(v, at, i);
	remus_tl_order(&v->tl, at, "qmp:getfd", "qmp:migrate", NULL);

	/* The interval: stop comes interval_ms after migrate at the earliest. */
	for (i = 0; i < 3; i++)
		assert_true(v->t_stop[i] - v->t_migrate[i] >= v->cfg.interval_ms);
	/* The real epoch in the metrics: stop to stop as the fake QEMU saw
	 * them (ms clocks: +-2 ms; QMP is a socket away, on one loop), none
	 * for the session's first checkpoint. */
	assert_true(v->cycle_ms[0] == 0);
	for (i = 1; i < 3; i++) {
		double seen = (double)(v->t_stop[i] - v->t_stop[i - 1]);

		assert_true(v->cycle_ms[i] >= v->cfg.interval_ms);
		if (v->cycle_ms[i] < seen - 2 || v->cycle_ms[i] > seen + 2)
			fail_msg("epoch %u: cycle_ms %.3f, stops %.0f ms apart", i, v->cycle_ms[i],
				 seen);
	}

	/* What reached the standby: HELLO with the VM's identity, then each
	 * epoch exactly as the rewriter makes it (the first a new stream,
	 * the later ones continuing its RAM section), verified by the
	 * assembler against its COMMIT_REQ. */
	assert_int_equal(v->sessions, 1);
	assert_string_equal(v->hello_name, VM_NAME);
	assert_int_equal(v->hello_uuid[0], 0x00);
	assert_int_equal(v->hello_uuid[1], 0x11);
	assert_int_equal(v->hello_uuid[15], 0xff);
	assert_epoch_is(v, 0, 0, 0, true);
	assert_epoch_is(v, 1, 1, 1, false);
	assert_epoch_is(v, 2, 2, 2, false);
	/* Epoch metrics: once at cont, once more when acknowledged. */
	assert_true(v->done_calls >= 6);
	assert_true(v->done_acked >= 3);
	assert_true(v->barriers >= 3);
	assert_int_equal(v->losts, 0);
	assert_int_equal(v->finished, 0);
}

/* Remus pipelining: the guest resumes without waiting for the ack, but
 * the epoch's output is released (commit hook) only when it comes. */
static void test_commit_waits_for_ack(void **state)
{
	struct env *v = *state;

	v->hold_acks = true;
	start(v);
	RUN_UNTIL(v, v->ngot == 1 && v->nmig == 2);
	remus_test_run_for(v->loop, 20);
	remus_tl_order(&v->tl, 0, "hook:barrier 0", "qmp:cont", "qmp:getfd", "qmp:migrate", NULL);
	assert_int_equal(v->commits, 0);
	assert_int_equal(remus_tl_find(&v->tl, "hook:commit 0", 0), -1);
	sby_put_ack(v, 0);
	RUN_UNTIL(v, v->commits == 1);
	assert_int_equal(v->last_commit, 0);
	remus_tl_order(&v->tl, 0, "link:COMMIT_REQ 0", "sby:ACK 0", "hook:commit 0", NULL);
	assert_int_equal(v->losts, 0);
}

/* The standby goes away while the guest is stopped: the checkpoint is
 * dropped (no barrier, no COMMIT_REQ), the guest is resumed, the engine
 * runs unprotected and reconnects with a new stream. */
static bool drop_standby_at_second_stop(struct env *v, struct remus_fake_qmp_cmd *c)
{
	if (strcmp(c->name, "stop") == 0 && v->nstop == 1) {
		remus_tl_add(&v->tl, "test:standby dropped");
		sby_drop(v);
	}
	return false;
}

static void test_standby_lost_in_checkpoint_resumes_guest(void **state)
{
	struct env *v = *state;
	int at;

	v->on_cmd = drop_standby_at_second_stop;
	/* Reconnecting within the checkpoint would be another test. */
	v->cfg.reconnect_ms = 300;
	start(v);
	RUN_UNTIL(v, v->losts == 1);
	RUN_UNTIL(v, v->sessions == 2 && v->ngot >= 2 && v->commits >= 2);
	at = remus_tl_find(&v->tl, "test:standby dropped", 0);
	assert_true(at > 0);
	/* The stopped guest is resumed: the chain runs to cont. */
	at = remus_tl_order(&v->tl, at, "rp:SHUT", "qmp:query-migrate", "qmp:cont", NULL);
	/* Epoch 1 was not closed: no barrier, never committed. */
	assert_int_equal(remus_tl_find(&v->tl, "hook:barrier 1", 0), -1);
	assert_int_equal(remus_tl_find(&v->tl, "link:COMMIT_REQ 1", 0), -1);
	assert_int_equal(remus_tl_find(&v->tl, "hook:commit 1", 0), -1);
	assert_non_null(strstr(v->lost_reason, "closed the connection"));
	/* A new session: HELLO, a new stream from epoch 0. */
	remus_tl_order(&v->tl, at, "link:HELLO", "qmp:getfd", "qmp:migrate", "qmp:stop", "rp:SHUT",
		 "hook:barrier 0", "qmp:cont", NULL);
	assert_int_equal(v->got[1].session, 2);
	assert_epoch_is(v, 1, 2, 0, true);
}

/* The standby falls silent while the guest runs: the engine gives the
 * migration up (migrate_cancel) without ever stopping the guest, says
 * goodbye (CLOSE), and runs unprotected. */
static void test_standby_silent_while_running(void **state)
{
	struct env *v = *state;

	v->cfg.interval_ms = 60000; /* never a checkpoint in this test */
	v->cfg.heartbeat_miss = 5;  /* 100 ms */
	v->cfg.reconnect_ms = 60000;
	start(v);
	RUN_UNTIL(v, v->nmig == 1 && v->sfd >= 0);
	v->silent = true;
	RUN_UNTIL(v, v->losts == 1 && v->closes == 1);
	RUN_UNTIL(v, remus_engine_get_state(v->e) == REMUS_ENGINE_UNPROTECTED);
	{
		int at = remus_tl_order(&v->tl, 0, "qmp:migrate", "hook:lost", NULL);

		remus_tl_order(&v->tl, at, "qmp:migrate_cancel", NULL);
	}
	assert_int_equal(remus_tl_count(&v->tl, "qmp:stop"), 0);
	assert_int_equal(remus_tl_count(&v->tl, "qmp:cont"), 0);
	assert_non_null(strstr(v->lost_reason, "no word from standby"));
	assert_non_null(strstr(v->close_reason, "no word from standby"));
	assert_int_equal(v->ngot, 0);
}

/* A failing barrier (the netbuffer or disk could not close the epoch)
 * drops the checkpoint and the session, and still resumes the guest. */
static void test_barrier_failure_resumes_guest(void **state)
{
	struct env *v = *state;
	int at;

	v->barrier_rc = -EIO;
	v->barrier_fail_epoch = 1;
	v->cfg.reconnect_ms = 60000;
	start(v);
	RUN_UNTIL(v, v->losts == 1);
	RUN_UNTIL(v, remus_engine_get_state(v->e) == REMUS_ENGINE_UNPROTECTED);
	at = remus_tl_order(&v->tl, 0, "hook:barrier 1", "qmp:query-status", "hook:lost", NULL);
	at = remus_tl_order(&v->tl, 0, "hook:barrier 1", "qmp:cont", NULL);
	assert_int_equal(remus_tl_find(&v->tl, "link:COMMIT_REQ 1", 0), -1);
	assert_int_equal(remus_tl_find(&v->tl, "qmp:migrate", at), -1);
	RUN_UNTIL(v, v->closes == 1);
	assert_non_null(strstr(v->close_reason, "barrier hook failed"));
}

/* set_interval: from the next epoch on. */
static void test_set_interval(void **state)
{
	struct env *v = *state;

	start(v);
	assert_int_equal(remus_engine_set_interval(v->e, 5), -EINVAL);
	assert_int_equal(remus_engine_set_interval(v->e, 3600001), -EINVAL);
	RUN_UNTIL(v, v->nmig == 2);
	/* Epoch 1's migrate has been answered: its timer runs. */
	remus_test_run_for(v->loop, 5);
	assert_int_equal(remus_engine_set_interval(v->e, 400), 0);
	RUN_UNTIL(v, v->nstop == 3);
	assert_true(v->t_stop[1] - v->t_migrate[1] < 400);
	assert_true(v->t_stop[2] - v->t_migrate[2] >= 400);
}

/* unprotect while the guest is stopped: the chain still resumes it, then
 * the engine stops and tells the standby (CLOSE: no takeover). */
static bool unprotect_at_second_stop(struct env *v, struct remus_fake_qmp_cmd *c)
{
	if (strcmp(c->name, "stop") == 0 && v->nstop == 1) {
		remus_tl_add(&v->tl, "test:unprotect");
		remus_engine_stop(v->e);
	}
	return false;
}

static void test_stop_in_checkpoint_resumes_guest(void **state)
{
	struct env *v = *state;
	int at;

	v->on_cmd = unprotect_at_second_stop;
	start(v);
	RUN_UNTIL(v, v->finished == 1);
	RUN_UNTIL(v, v->closes == 1);
	at = remus_tl_order(&v->tl, 0, "qmp:stop", "test:unprotect", "rp:SHUT", "qmp:cont",
		      "hook:finished stopped", NULL);
	assert_int_equal(remus_tl_find(&v->tl, "qmp:getfd", at), -1);
	assert_int_equal(v->fin_state, REMUS_ENGINE_STOPPED);
	assert_int_equal(v->fin_rc, 0);
	assert_int_equal(remus_engine_get_state(v->e), REMUS_ENGINE_STOPPED);
	assert_string_equal(v->close_reason, "unprotect");
	remus_test_run_for(v->loop, 50);
	assert_int_equal(remus_tl_find(&v->tl, "qmp:migrate", at), -1);
	assert_int_equal(remus_tl_count(&v->tl, "qmp:stop"), 2);
}

/* unprotect while the guest runs: the migration is cancelled, the guest
 * never stopped. */
static void test_stop_while_running(void **state)
{
	struct env *v = *state;

	v->cfg.interval_ms = 60000;
	start(v);
	RUN_UNTIL(v, v->nmig == 1);
	remus_test_run_for(v->loop, 10);
	remus_engine_stop(v->e);
	RUN_UNTIL(v, v->finished == 1 && v->closes == 1);
	RUN_UNTIL(v, remus_tl_find(&v->tl, "qmp:migrate_cancel", 0) >= 0);
	assert_int_equal(v->fin_state, REMUS_ENGINE_STOPPED);
	assert_string_equal(v->close_reason, "unprotect");
	assert_int_equal(remus_tl_count(&v->tl, "qmp:stop"), 0);
	assert_int_equal(remus_tl_count(&v->tl, "qmp:cont"), 0);
}

/* An engine freed while QMP owes it an answer: when the answer comes no
 * part of the engine runs (nothing is used after free: ASan). */
static bool hold_first_stop(struct env *v, struct remus_fake_qmp_cmd *c)
{
	if (strcmp(c->name, "stop") == 0 && !v->held) {
		v->held = c;
		return true;
	}
	return false;
}

static void test_free_with_reply_pending(void **state)
{
	struct env *v = *state;
	unsigned n;

	v->on_cmd = hold_first_stop;
	start(v);
	RUN_UNTIL(v, v->held != NULL);
	remus_engine_free(v->e);
	v->e = NULL;
	n = v->tl.n;
	remus_fake_qmp_reply(v->fq, v->held, NULL);
	remus_test_run_for(v->loop, 50);
	assert_int_equal(remus_tl_find(&v->tl, "qmp:query-migrate", (int)n), -1);
	assert_int_equal(remus_tl_find(&v->tl, "qmp:cont", (int)n), -1);
	assert_int_equal(v->barriers, 0);
	assert_int_equal(v->finished, 0);
}

/* QEMU without switchover-ack: protection fails at once, named. */
static bool refuse_caps(struct env *v, struct remus_fake_qmp_cmd *c)
{
	if (strcmp(c->name, "migrate-set-capabilities") != 0)
		return false;
	remus_fake_qmp_reply_error(v->fq, c, "GenericError", "Parameter "
				   "'capabilities[1].capability' does not accept value "
				   "'switchover-ack'");
	return true;
}

static void test_capabilities_refused(void **state)
{
	struct env *v = *state;

	v->on_cmd = refuse_caps;
	start(v);
	RUN_UNTIL(v, v->finished == 1);
	assert_int_equal(v->fin_state, REMUS_ENGINE_FAILED);
	assert_int_equal(remus_engine_get_state(v->e), REMUS_ENGINE_FAILED);
	assert_non_null(strstr(v->fin_reason, "switchover-ack"));
	remus_test_run_for(v->loop, 20);
	assert_string_equal(remus_fake_qmp_log(v->fq), "migrate-set-capabilities;");
	assert_int_equal(v->sessions, 0);
}


/* ---- issue 14: convergence gate, pause budget, clean start ------------ */

static struct json_object *status_of(struct env *v, const char *key)
{
	static struct json_object *last;
	struct json_object *val = NULL;

	json_object_put(last);
	last = remus_engine_status_json(v->e);
	assert_non_null(last);
	json_object_object_get_ex(last, key, &val);
	return val;
}

/* The stop waits for the migration to converge: not during the first
 * pass (dirty-sync-count 1), not while what remains would not fit half
 * the pause budget at the channel's rate; then at the next poll.  The
 * session's first epoch runs SYNCING (unprotected) until its commit. */
static void test_gate_waits_for_convergence(void **state)
{
	struct env *v = *state;
	struct json_object *o, *x;
	uint64_t t;

	v->syncs = 1;
	v->remaining = 200u << 20;
	v->cfg.pause_budget_ms = 100;
	start(v);
	RUN_UNTIL(v, v->nmig == 1);
	remus_test_run_for(v->loop, 200); /* the 30 ms interval is long over */
	assert_int_equal(remus_tl_count(&v->tl, "qmp:stop"), 0);
	/* the clean-start check, then the gate every 25 ms */
	assert_true(remus_fake_qmp_count(v->fq, "query-migrate") >= 1 + 4);
	assert_string_equal(json_object_get_string(status_of(v, "state")), "syncing");
	assert_false(json_object_get_boolean(status_of(v, "protected")));
	assert_int_equal(json_object_get_int(status_of(v, "pause_budget_ms")), 100);
	o = status_of(v, "converging");
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "dirty_syncs", &x));
	assert_int_equal(json_object_get_int(x), 1);
	assert_non_null(status_of(v, "initial_sync"));

	/* First pass done, but 200 MiB at the fake stream's few KB/s: no. */
	v->syncs = 2;
	remus_test_run_for(v->loop, 100);
	assert_int_equal(remus_tl_count(&v->tl, "qmp:stop"), 0);

	/* Converged: the stop follows within a poll or two. */
	t = remus_now_ms();
	v->remaining = 0;
	RUN_UNTIL(v, v->nstop == 1);
	assert_true(v->t_stop[0] >= t);
	assert_true(v->t_stop[0] - t < 500);
	RUN_UNTIL(v, v->commits == 1 && v->nmig == 2);
	remus_test_run_for(v->loop, 5);
	assert_true(json_object_get_boolean(status_of(v, "protected")));
	assert_null(status_of(v, "initial_sync"));
	assert_true(json_object_get_double(status_of(v, "last_initial_sync_ms")) >= 300);
	/* Epoch 0 was held back ~300 ms past its 30 ms interval. */
	assert_true(json_object_get_double(status_of(v, "last_epoch_ms")) >= 300);
	assert_int_equal(v->losts, 0);
}

/* A QEMU that cannot finish the checkpoint (its tail never comes): the
 * migration is cancelled at the budget's cancel point, the guest resumed
 * as soon as QEMU shows `cancelled`, within the budget; the epoch is
 * abandoned (nothing committed, the standby told why), and the next
 * session starts once QEMU's migration has ended. */
static bool stick_second_stop(struct env *v, struct remus_fake_qmp_cmd *c)
{
	if (strcmp(c->name, "stop") == 0 && v->nstop == 1) {
		remus_tl_add(&v->tl, "test:stuck");
		v->stop_stuck = true;
	}
	if (strcmp(c->name, "migrate") == 0)
		v->stop_stuck = false;
	return false;
}

static void test_budget_abandons_checkpoint(void **state)
{
	struct env *v = *state;
	unsigned cancel_at = 48; /* 60 ms budget - 12 ms reserve */
	int at;

	v->cfg.pause_budget_ms = 60;
	v->cancel_polls = 2;
	v->on_cmd = stick_second_stop;
	start(v);
	RUN_UNTIL(v, v->losts == 1 && v->closes == 1);
	RUN_UNTIL(v, v->sessions == 2 && v->commits >= 2);
	at = remus_tl_find(&v->tl, "test:stuck", 0);
	assert_true(at > 0);
	at = remus_tl_order(&v->tl, at, "rp:SHUT", "qmp:migrate_cancel", "qemu:cancelling",
			    "qemu:cancelling", "qemu:cancelled", "qmp:cont", NULL);
	/* cont follows the budget timer, and comes within the budget */
	assert_int_equal(v->ncancel, 1);
	assert_true(v->t_cancel[0] - v->t_stop[1] >= cancel_at - 1);
	assert_true(v->t_cont[1] - v->t_stop[1] >= cancel_at - 1);
	if (v->t_cont[1] - v->t_stop[1] > 60 + 40)
		remus_tl_fail(&v->tl, "cont %llu ms after stop, budget 60 ms",
			      (unsigned long long)(v->t_cont[1] - v->t_stop[1]));
	/* nothing of epoch 1 was committed; the metrics say abandoned */
	assert_int_equal(remus_tl_find(&v->tl, "hook:barrier 1", 0), -1);
	assert_int_equal(remus_tl_find(&v->tl, "link:COMMIT_REQ 1", 0), -1);
	assert_int_equal(v->done_abandoned, 1);
	assert_int_equal(v->abandoned.epoch, 1);
	assert_int_equal(v->abandoned.pause_budget_ms, 60);
	assert_true(v->abandoned.pause_ms >= cancel_at - 1);
	assert_true(v->abandoned.commit_ms < 0);
	assert_non_null(strstr(v->close_reason, "abandoned"));
	assert_non_null(strstr(v->close_reason, "pause budget of 60 ms"));
	/* the next migration only after QEMU's ended; the new session's
	 * first epoch is a new stream, committed */
	remus_tl_order(&v->tl, at, "link:HELLO", "qmp:getfd", "qmp:migrate", "qmp:stop",
		       "hook:barrier 0", "qmp:cont", NULL);
	assert_int_equal(v->migrates_while_busy, 0);
	assert_epoch_is(v, 1, 2, 0, true);
	assert_int_equal(json_object_get_int(status_of(v, "epochs_abandoned")), 1);
	assert_non_null(status_of(v, "last_failure"));
}

/* The budget runs out, but QEMU completed the migration just before our
 * migrate_cancel reached it: the checkpoint is whole, so it is committed
 * as usual and the session goes on. */
static bool complete_second_stop_at_cancel(struct env *v, struct remus_fake_qmp_cmd *c)
{
	if (strcmp(c->name, "stop") == 0 && v->nstop == 1)
		v->stop_stuck = v->complete_at_cancel = true;
	if (strcmp(c->name, "migrate") == 0)
		v->stop_stuck = v->complete_at_cancel = false;
	return false;
}

static void test_completed_wins_over_cancel(void **state)
{
	struct env *v = *state;
	int at;

	v->cfg.pause_budget_ms = 60;
	v->on_cmd = complete_second_stop_at_cancel;
	start(v);
	RUN_UNTIL(v, v->commits >= 3);
	at = remus_tl_order(&v->tl, 0, "hook:barrier 0", "qmp:stop", "qmp:migrate_cancel",
			    "qemu:completed before the cancel", "hook:barrier 1", NULL);
	remus_tl_order(&v->tl, at, "qmp:cont", NULL);
	remus_tl_order(&v->tl, at, "link:COMMIT_REQ 1", "sby:ACK 1", "hook:commit 1", NULL);
	assert_int_equal(v->losts, 0);
	assert_int_equal(v->closes, 0);
	assert_int_equal(v->done_abandoned, 0);
	assert_int_equal(v->sessions, 1);
	assert_epoch_is(v, 1, 1, 1, false);
}

/* QEMU still runs a migration when the engine starts (left by a remusd
 * that died): cancelled once, then polled, and the engine's migrate comes
 * only after QEMU shows `cancelled`. */
static void test_no_migrate_while_busy(void **state)
{
	struct env *v = *state;

	v->mig_state = MIG_ACTIVE;
	v->cancel_polls = 3;
	start(v);
	RUN_UNTIL(v, v->commits >= 1);
	remus_tl_order(&v->tl, 0, "qmp:query-migrate", "qmp:migrate_cancel", "qemu:cancelling",
		       "qemu:cancelling", "qemu:cancelling", "qemu:cancelled", "qmp:getfd",
		       "qmp:migrate", NULL);
	assert_int_equal(remus_tl_find(&v->tl, "qmp:migrate",
				       remus_tl_find(&v->tl, "qmp:migrate_cancel", 0)) >
			 remus_tl_find(&v->tl, "qemu:cancelled", 0), 1);
	assert_int_equal(remus_tl_count(&v->tl, "qmp:migrate_cancel"), 1);
	assert_int_equal(v->migrates_while_busy, 0);
	assert_int_equal(v->losts, 0);
}

/* ---- engine v2 (issue 13) --------------------------------------------- */

/* The engine gets a FUSE tracker of V2_PAGES pages whose file the fake
 * QEMU's RAM is; skips the test where FUSE cannot run. */
static void v2_setup(struct env *v)
{
	struct remus_dirty_opts o = { .kind = REMUS_DIRTY_FUSE,
				      .size = (uint64_t)V2_PAGES * REMUS_DIRTY_PAGE_SIZE,
				      .ram_fd = -1, .mount_dir = fuse_mnt };

	if (!*fuse_mnt)
		skip();
	assert_int_equal(remus_dirty_open(&o, &v->dirty), 0);
	v->cfg.dirty = v->dirty;
	v->cfg.ram_backend = V2_BLOCK;
	v->cfg.kind = REMUS_ENGINE_AUTO;
}

static uint64_t status_u64(struct env *v, const char *key)
{
	struct json_object *x = status_of(v, key);

	assert_non_null(x);
	return (uint64_t)json_object_get_int64(x);
}

static bool on_v2(struct env *v)
{
	return strcmp(json_object_get_string(status_of(v, "engine")), "v2") == 0;
}

/* The first v2 migration sits in `setup` and sends nothing until it is
 * cancelled (issue 13's 2 GiB guest, in its fill); every other one runs. */
static bool stall_first_v2_migrate(struct env *v, struct remus_fake_qmp_cmd *c)
{
	if (strcmp(c->name, "migrate") != 0)
		return false;
	v->stop_stuck = v->shared && !v->v2_stalled;
	if (v->stop_stuck) {
		v->v2_stalled = true;
		remus_tl_add(&v->tl, "test:v2 migrate in setup");
	}
	return false;
}

/* The designed budget path in a v2 epoch: the checkpoint whose migration
 * is still in `setup` when the pause budget runs out is cancelled and
 * dropped (the session ends, the guest resumes), and QEMU's channel, cut
 * by that cancel, is not a failure of engine v2: the next session's
 * epochs after its full one are v2 again. */
static void test_v2_abandoned_checkpoint_keeps_v2(void **state)
{
	struct env *v = *state;
	uint64_t v2_before;
	int at;

	v2_setup(v);
	v->cfg.pause_budget_ms = 60;
	v->on_cmd = stall_first_v2_migrate;
	start(v);
	RUN_UNTIL(v, v->closes == 1 && v->done_abandoned == 1);
	remus_test_run_for(v->loop, 5);
	at = remus_tl_order(&v->tl, 0, "hook:barrier 0", "qemu:x-ignore-shared on", "qmp:stop",
			    "qmp:getfd", "qmp:migrate", "test:v2 migrate in setup",
			    "qmp:migrate_cancel", "qmp:cont", "link:CLOSE", NULL);
	assert_non_null(strstr(v->close_reason, "pause budget of 60 ms"));
	assert_non_null(strstr(v->close_reason, "setup"));
	assert_int_equal(v->abandoned.epoch, 1);
	assert_true(on_v2(v));
	assert_int_equal(strncmp(json_object_get_string(status_of(v, "engine_reason")), "v2:", 3),
			 0);
	v2_before = status_u64(v, "v2_checkpoints");
	assert_int_equal(v2_before, 0);

	/* a new session: a full (v1) epoch, then v2 epochs, committed */
	RUN_UNTIL(v, v->sessions == 2 && status_u64(v, "v2_checkpoints") >= v2_before + 2 &&
		  v->commits >= 4);
	remus_tl_order(&v->tl, at, "link:HELLO", "qemu:x-ignore-shared off", "qmp:migrate",
		       "hook:barrier 0", "qemu:x-ignore-shared on", "hook:barrier 1",
		       "hook:barrier 2", NULL);
	assert_true(on_v2(v));
	assert_int_equal(status_u64(v, "v1_checkpoints"), 2);
	assert_int_equal(v->done_abandoned, 1);
	assert_int_equal(v->migrates_while_busy, 0);
}

/* A v2 stream QEMU really got wrong (here a page of the shared block,
 * which x-ignore-shared never sends) still puts the engine back to v1
 * for good, budget or not. */
static bool bad_first_v2_stream(struct env *v, struct remus_fake_qmp_cmd *c)
{
	if (strcmp(c->name, "migrate") == 0)
		v->v2_bad_page = v->shared && !v->v2_stalled;
	if (v->v2_bad_page)
		v->v2_stalled = true;
	return false;
}

static void test_v2_bad_stream_falls_back(void **state)
{
	struct env *v = *state;
	const char *why;

	v2_setup(v);
	v->on_cmd = bad_first_v2_stream;
	start(v);
	RUN_UNTIL(v, v->closes == 1);
	RUN_UNTIL(v, v->sessions == 2 && v->commits >= 3);
	assert_false(on_v2(v));
	why = json_object_get_string(status_of(v, "engine_reason"));
	assert_non_null(strstr(why, "fell back"));
	assert_non_null(strstr(why, "stream failed"));
	assert_int_equal(status_u64(v, "v2_checkpoints"), 0);
	assert_true(status_u64(v, "v1_checkpoints") >= 3);
	assert_false(v->shared);
}

/* The guest writes its pages as epoch 2 (a v2 one) begins: at cont of
 * epoch 1. */
static bool write_at_second_cont(struct env *v, struct remus_fake_qmp_cmd *c)
{
	if (strcmp(c->name, "cont") == 0 && v->ncont == 2) {
		assert_true(v->shared);
		writer_write(v);
		remus_tl_add(&v->tl, "test:guest wrote");
	}
	return false;
}

/* While the guest runs, a v2 engine drains the tracker every 50 ms: pages
 * the guest wrote early in an epoch are written back then, not in the
 * pause (where, on a 2 GiB guest filling its RAM, the collect alone
 * outlasted the 300 ms budget), and the checkpoint still sends each of
 * them with its content. */
static void test_v2_drain_keeps_pages(void **state)
{
	struct env *v = *state;
	const struct remus_epoch_metrics *m;
	uint8_t page[REMUS_DIRTY_PAGE_SIZE];
	unsigned i, p;
	int at;

	v2_setup(v);
	writer_start(v);
	v->cfg.interval_ms = 300;
	v->on_cmd = write_at_second_cont;
	start(v);
	RUN_UNTIL(v, v->commits >= 3 && v->ndone_cont >= 3);
	at = remus_tl_find(&v->tl, "test:guest wrote", 0);
	assert_true(at > 0);
	m = &v->at_cont[2];
	assert_true(m->v2);
	assert_false(m->abandoned);
	/* drained while the guest ran (by the drain at ~50 ms; a loaded
	 * machine may take two), none left for the collect in the pause */
	assert_true(m->drains >= 1);
	assert_int_equal(m->drain_pages, W_PAGES);
	assert_int_equal(m->dirty_pages, W_PAGES);
	assert_int_equal(v->at_cont[1].dirty_pages, 0); /* nothing written in epoch 1 */
	/* pages written once: the drains keep their pace (drain_adapt) */
	assert_int_equal(m->drain_every_ms, 50);
	/* the standby got every page, with the content the guest wrote */
	for (i = 0; i < v->ngot && v->got[i].epoch != 2; i++)
		;
	assert_true(i < v->ngot);
	for (p = W_FIRST; p < W_FIRST + W_PAGES; p++) {
		writer_page(p, page);
		if (!memmem(remus_buf_data(&v->got[i].data), remus_buf_len(&v->got[i].data), page,
			    sizeof(page)))
			fail_msg("page %u of epoch 2 did not reach the standby", p);
	}
	assert_true(on_v2(v));
}

/* A v2 checkpoint's migration carries no vmdescription (~100 KB of JSON
 * per epoch with a real QEMU, read by nobody): suppress-vmdesc is set on
 * with x-ignore-shared, the parsers expect its absence, and the
 * checkpoints commit.  A QEMU that refuses the qom-set keeps the
 * vmdescription and v2 runs on just the same. */
static void run_v2_vmdesc(struct env *v, bool refused)
{
	int on, shared;

	v2_setup(v);
	v->vmdesc_refused = refused;
	start(v);
	RUN_UNTIL(v, v->commits >= 3 && v->ndone_cont >= 3);
	assert_true(v->at_cont[2].v2);
	assert_true(on_v2(v));
	shared = remus_tl_find(&v->tl, "qemu:x-ignore-shared on", 0);
	on = remus_tl_find(&v->tl, "qemu:suppress-vmdesc on", 0);
	assert_true(shared >= 0);
	if (refused) {
		assert_int_equal(on, -1);
		assert_false(v->no_vmdesc);
	} else {
		assert_true(on > shared);
		assert_true(v->no_vmdesc);
	}
}

static void test_v2_suppresses_vmdesc(void **state)
{
	run_v2_vmdesc(*state, false);
}

static void test_v2_keeps_vmdesc_if_refused(void **state)
{
	run_v2_vmdesc(*state, true);
}

/* The guest writes its pages at every cont and again at every stop: each
 * drain in between writes back pages the checkpoint finds written again. */
static bool rewrite_at_cont_and_stop(struct env *v, struct remus_fake_qmp_cmd *c)
{
	if (v->shared && v->ncont >= 2 &&
	    (strcmp(c->name, "cont") == 0 || strcmp(c->name, "stop") == 0))
		writer_write(v);
	return false;
}

/* Drains that only write back what the guest writes again before the
 * checkpoint cost it a fault per page for nothing (bench/engine: cpumem
 * at 0.07 of its speed under 50 ms drains): the engine drains half as
 * often at each such checkpoint, and the pages still reach the standby.
 * test_v2_drain_keeps_pages is the other side: pages written once keep
 * the 50 ms drains. */
static void test_v2_drain_backs_off(void **state)
{
	struct env *v = *state;
	unsigned k;

	v2_setup(v);
	writer_start(v);
	v->cfg.interval_ms = 300;
	v->on_cmd = rewrite_at_cont_and_stop;
	start(v);
	RUN_UNTIL(v, v->commits >= 6 && v->ndone_cont >= 6);
	/* epoch 1 is the session's full one; 2 is the first v2 epoch with
	 * the writes, and each v2 checkpoint after it found its drained
	 * pages written again */
	for (k = 2; k < 6; k++) {
		assert_true(v->at_cont[k].v2);
		assert_false(v->at_cont[k].abandoned);
		assert_int_equal(v->at_cont[k].dirty_pages, W_PAGES);
	}
	if (v->at_cont[5].drain_every_ms < 200)
		fail_msg("drains every %u ms after 4 checkpoints whose drained pages were all "
			 "written again (%u, %u, %u before)", v->at_cont[5].drain_every_ms,
			 v->at_cont[2].drain_every_ms, v->at_cont[3].drain_every_ms,
			 v->at_cont[4].drain_every_ms);
	assert_true(v->at_cont[3].drain_every_ms > v->at_cont[2].drain_every_ms ||
		    v->at_cont[2].drain_every_ms > 50);
	assert_true(on_v2(v));
}

/* ---- engine v2 on remusd ramfs (cfg.ramfs_socket) --------------------- */

/* What the fake QEMU's RAM is, for the discovery of ramfs_find. */
static enum { RAM_ANON, RAM_FILE_PRIVATE, RAM_FILE_SHARED, RAM_NUMA } ramfs_guest;
static char ramfs_qom[4][64];
static unsigned ramfs_nqom;

/* QEMU 10 as libvirt starts it: -machine memory-backend=pc.ram, the
 * backend memory-backend-ram (anonymous) or -file with mem-path
 * /var/lib/libvirt/qemu/ram/1-vm0/pc.ram (docs/ARCHITECTURE.md). */
static bool ramfs_qom_get(struct env *v, struct remus_fake_qmp_cmd *c)
{
	const char *path, *prop;

	if (strcmp(c->name, "qom-get") != 0)
		return false;
	path = remus_fake_qmp_arg(c, "path");
	prop = remus_fake_qmp_arg(c, "property");
	if (ramfs_nqom < 4)
		snprintf(ramfs_qom[ramfs_nqom++], sizeof(ramfs_qom[0]), "%s %s", path, prop);
	if (strcmp(path, "/machine") == 0 && strcmp(prop, "memory-backend") == 0)
		remus_fake_qmp_reply(v->fq, c, ramfs_guest == RAM_NUMA ? "\"\""
					       : "\"/objects/pc.ram\"");
	else if (strcmp(path, "/objects/pc.ram") != 0)
		fail_msg("qom-get of %s", path);
	else if (strcmp(prop, "mem-path") == 0 && ramfs_guest == RAM_ANON)
		remus_fake_qmp_reply_error(v->fq, c, "GenericError",
					   "Property 'memory-backend-ram.mem-path' not found");
	else if (strcmp(prop, "mem-path") == 0)
		remus_fake_qmp_reply(v->fq, c, "\"/var/lib/libvirt/qemu/ram/1-vm0/pc.ram\"");
	else if (strcmp(prop, "share") == 0)
		remus_fake_qmp_reply(v->fq, c, ramfs_guest == RAM_FILE_SHARED ? "true" : "false");
	else
		fail_msg("qom-get of property %s", prop);
	return true;
}

static const char *ramfs_reason(struct env *v, enum remus_engine_kind kind)
{
	ramfs_nqom = 0;
	v->cfg.ramfs_socket = "/nonexistent/remus-test/ramfs.sock";
	v->cfg.kind = kind;
	v->on_cmd = ramfs_qom_get;
	start(v);
	if (kind == REMUS_ENGINE_V2) {
		RUN_UNTIL(v, v->finished == 1);
		return v->fin_reason;
	}
	/* v1 runs: protection goes on with whole-RAM epochs */
	RUN_UNTIL(v, v->commits >= 2);
	assert_false(on_v2(v));
	assert_int_equal(status_u64(v, "v2_checkpoints"), 0);
	assert_null(status_of(v, "dirty_tracker"));
	return json_object_get_string(status_of(v, "engine_reason"));
}

/* A libvirt domain without <memoryBacking>: the reason names the domain,
 * the backend and the fix, and v1 protects it. */
static void test_ramfs_anonymous_ram_is_v1(void **state)
{
	const char *why;

	ramfs_guest = RAM_ANON;
	why = ramfs_reason(*state, REMUS_ENGINE_AUTO);
	if (!strstr(why, "v1: guest RAM of " VM_NAME " is anonymous memory (memory backend "
			 "'pc.ram' has no mem-path)") || !strstr(why, "<access mode='shared'/>") ||
	    !strstr(why, "memory_backing_dir"))
		fail_msg("engine_reason: %s", why);
	assert_int_equal(ramfs_nqom, 2);
	assert_string_equal(ramfs_qom[0], "/machine memory-backend");
	assert_string_equal(ramfs_qom[1], "/objects/pc.ram mem-path");
}

static void test_ramfs_private_file_is_v1(void **state)
{
	const char *why;

	ramfs_guest = RAM_FILE_PRIVATE;
	why = ramfs_reason(*state, REMUS_ENGINE_AUTO);
	if (!strstr(why, "/var/lib/libvirt/qemu/ram/1-vm0/pc.ram") ||
	    !strstr(why, "is not share=on"))
		fail_msg("engine_reason: %s", why);
	assert_int_equal(ramfs_nqom, 3);
}

static void test_ramfs_numa_is_v1(void **state)
{
	const char *why;

	ramfs_guest = RAM_NUMA;
	why = ramfs_reason(*state, REMUS_ENGINE_AUTO);
	if (!strstr(why, "is not one memory backend"))
		fail_msg("engine_reason: %s", why);
}

/* A shared file, but no server at the socket: v1 says so. */
static void test_ramfs_not_running_is_v1(void **state)
{
	const char *why;

	ramfs_guest = RAM_FILE_SHARED;
	why = ramfs_reason(*state, REMUS_ENGINE_AUTO);
	if (!strstr(why, "v1: remusd ramfs not running at /nonexistent/remus-test/ramfs.sock"))
		fail_msg("engine_reason: %s", why);
}

/* --engine v2 refuses instead, with the same reason. */
static void test_ramfs_v2_refuses(void **state)
{
	struct env *v = *state;
	const char *why;

	ramfs_guest = RAM_ANON;
	why = ramfs_reason(v, REMUS_ENGINE_V2);
	assert_int_equal(v->fin_state, REMUS_ENGINE_FAILED);
	if (!strstr(why, "--engine v2 cannot run: guest RAM of " VM_NAME " is anonymous"))
		fail_msg("finished: %s", why);
	assert_int_equal(v->commits, 0);
}

/* --engine v1 asks QEMU nothing about its RAM. */
static void test_ramfs_v1_asks_nothing(void **state)
{
	struct env *v = *state;

	ramfs_guest = RAM_FILE_SHARED;
	ramfs_reason(v, REMUS_ENGINE_V1);
	assert_int_equal(ramfs_nqom, 0);
}

static void test_ram_backend_id(void **state)
{
	char id[8];

	(void)state;
	assert_int_equal(remus_engine_ram_backend_id("/objects/pc.ram", id, sizeof(id)), 0);
	assert_string_equal(id, "pc.ram");
	assert_int_equal(remus_engine_ram_backend_id("mem", id, sizeof(id)), 0);
	assert_string_equal(id, "mem");
	assert_int_equal(remus_engine_ram_backend_id("", id, sizeof(id)), -EINVAL);
	assert_int_equal(remus_engine_ram_backend_id(NULL, id, sizeof(id)), -EINVAL);
	assert_int_equal(remus_engine_ram_backend_id("/objects/", id, sizeof(id)), -EINVAL);
	assert_int_equal(remus_engine_ram_backend_id("/machine/x", id, sizeof(id)), -EINVAL);
	assert_int_equal(remus_engine_ram_backend_id("/objects/toolong0", id, sizeof(id)),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_epoch_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_waits_for_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_standby_lost_in_checkpoint_resumes_guest,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_standby_silent_while_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_barrier_failure_resumes_guest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_interval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_in_checkpoint_resumes_guest, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_stop_while_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_reply_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capabilities_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gate_waits_for_convergence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_abandons_checkpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_completed_wins_over_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_migrate_while_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_abandoned_checkpoint_keeps_v2, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_v2_bad_stream_falls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_suppresses_vmdesc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_keeps_vmdesc_if_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_drain_keeps_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_drain_backs_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ramfs_anonymous_ram_is_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ramfs_private_file_is_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ramfs_numa_is_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ramfs_not_running_is_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ramfs_v2_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ramfs_v1_asks_nothing, setup, teardown),
		cmocka_unit_test(test_ram_backend_id),
	};
	int rc;

	/* The fakes write into sockets the engine may have closed: EPIPE,
	 * as for QEMU, which ignores SIGPIPE too. */
	signal(SIGPIPE, SIG_IGN);
	/* Losing the standby and failing QEMU is the point of many tests:
	 * errors only, unless REMUS_LOG asks for more. */
	if (!getenv("REMUS_LOG"))
		remus_log_set_level(REMUS_LOG_ERROR);
	/* Engine v2's tests mount a FUSE tracker: as root, in a mount
	 * namespace of their own, so a crash leaves no mount behind. */
	snprintf(fuse_mnt, sizeof(fuse_mnt), "/tmp/remus-engine-XXXXXX");
	if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0 ||
	    unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    !mkdtemp(fuse_mnt)) {
		printf("engine v2 tests skipped: no root, /dev/fuse or private mount namespace\n");
		fuse_mnt[0] = '\0';
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	if (*fuse_mnt) {
		umount2(fuse_mnt, MNT_DETACH); /* only if a failed test left it */
		rmdir(fuse_mnt);
	}
	return rc;
}
