/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * When the engine may stop the guest for a checkpoint, and for how long.
 *
 * Every epoch is a new migration, so QEMU first copies all of the guest's
 * RAM into the controller (the first pass), then iterates over what the
 * guest dirtied.  `stop` completes the migration: whatever QEMU has not
 * sent yet is sent with the guest stopped.  Stopping in the middle of the
 * first pass of a 3 GiB guest therefore freezes it for the rest of that
 * pass (seconds).  Measured (docs/ARCHITECTURE.md, "Pause budget"): QMP
 * query-migrate reports ram.dirty-sync-count 1 during the first pass and
 * >= 2 once it is done, and ram.remaining (bytes) falls from the RAM size
 * to tens of MB at that point.
 *
 * So the engine stops only when the migration has converged:
 *
 *     dirty-sync-count >= 2   and   remaining / rate <= budget * SAFETY
 *
 * where rate is the channel's capacity as measured here: the fastest
 * REMUS_CONVERGE_WINDOW_MS window of bytes read in this epoch, or the
 * epoch's average if that is higher.  Not the rate of the last second:
 * once the first pass is done QEMU only sends what the guest dirties, so
 * the recent rate falls to the dirtying rate and remaining / recent rate
 * would stay near one second forever; the peak of the epoch is what the
 * channel can do when QEMU has something to send, which is the case
 * during the pause.  The estimate is pessimistic when QEMU was scanning
 * zero pages (few bytes per page) or the link throttled the channel;
 * that only delays the stop.
 *
 * The pause budget bounds the pause when the estimate is wrong: the
 * engine gives the checkpoint remus_converge_cancel_at_ms(budget) after
 * `stop`, then cancels the migration (measured: status `cancelled` 6 ms
 * after migrate_cancel) and resumes the guest within the reserve that is
 * left.  Pure arithmetic on numbers the caller supplies; no clock.
 */
#ifndef REMUS_CONTROLLER_CONVERGE_H
#define REMUS_CONTROLLER_CONVERGE_H

#include <stdbool.h>
#include <stdint.h>

/* The window the channel's rate is measured over. */
#define REMUS_CONVERGE_WINDOW_MS 200u
/* The predicted pause must fit in this fraction of the budget: the rest
 * covers the stop itself, QEMU's last dirty sync, the device state, the
 * barrier hooks and cont. */
#define REMUS_CONVERGE_SAFETY 0.5
/* Default pause budget (remusd --pause-budget). */
#define REMUS_CONVERGE_BUDGET_DEFAULT_MS 300u

/* The channel's rate in the current epoch (fields private). */
struct remus_converge {
	uint64_t t0_ns, bytes0;  /* the epoch's migration started */
	uint64_t tw_ns, bytesw;  /* the open window started */
	double peak_bps;         /* fastest closed window; 0 before the first */
	double last_bps;         /* the last closed window */
};

/* Starts measuring an epoch at @now_ns with @bytes read so far (usually 0). */
void remus_converge_start(struct remus_converge *c, uint64_t now_ns, uint64_t bytes);
/* Records that @bytes (cumulative, this epoch) were read by @now_ns; call
 * it after every read of the channel.  Cheap: closes a window when one is
 * due, nothing else. */
void remus_converge_sample(struct remus_converge *c, uint64_t now_ns, uint64_t bytes);
/* The channel's capacity in bytes/s as defined above; 0 before anything
 * was read. */
double remus_converge_rate(const struct remus_converge *c, uint64_t now_ns, uint64_t bytes);
/* The rate of the last closed window in bytes/s (what the channel does
 * now, for progress reports); 0 before the first window closed. */
double remus_converge_recent_rate(const struct remus_converge *c);
/* How long moving @remaining bytes takes at @rate_bps, in ms: 0 for
 * nothing, a huge value (1e12) when there is something and no rate. */
double remus_converge_predict_ms(uint64_t remaining, double rate_bps);
/* True when the guest may be stopped: the first pass is done
 * (@dirty_syncs >= 2) and @predicted_ms <= @budget_ms * SAFETY. */
bool remus_converge_ready(uint64_t dirty_syncs, double predicted_ms, unsigned budget_ms);
/*
 * QEMU's own downtime-limit parameter for a pause budget.  After `stop`
 * QEMU iterates (without its big lock) until what is left is below
 * downtime-limit x its bandwidth estimate, then completes the migration
 * holding the lock, and a migrate_cancel can only be served between the
 * two: a small limit keeps the part that cannot be cancelled small.  A
 * tenth of the budget, at least 1 ms.
 */
unsigned remus_converge_downtime_limit_ms(unsigned budget_ms);
/* When, after `stop`, the engine gives a checkpoint up and cancels the
 * migration, in ms: the budget minus a reserve of a fifth of it (at
 * least 2 ms, at most 50 ms) for migrate_cancel, its polling and cont.
 * At least 1. */
unsigned remus_converge_cancel_at_ms(unsigned budget_ms);

#endif
