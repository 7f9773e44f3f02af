// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The convergence gate's arithmetic (see converge.h for why it is what it
 * is).  Windows close only when a sample arrives, so a window can be
 * longer than REMUS_CONVERGE_WINDOW_MS when the channel was idle; that
 * lowers its rate, which is right: the channel carried less.
 */
#include "controller/converge.h"

#define WINDOW_NS ((uint64_t)REMUS_CONVERGE_WINDOW_MS * 1000000u)

void remus_converge_start(struct remus_converge *c, uint64_t now_ns, uint64_t bytes)
{
	c->t0_ns = c->tw_ns = now_ns;
	c->bytes0 = c->bytesw = bytes;
	c->peak_bps = c->last_bps = 0;
}

void remus_converge_sample(struct remus_converge *c, uint64_t now_ns, uint64_t bytes)
{
	double bps;

	if (now_ns < c->tw_ns + WINDOW_NS || bytes < c->bytesw)
		return;
	bps = (double)(bytes - c->bytesw) * 1e9 / (double)(now_ns - c->tw_ns);
	c->last_bps = bps;
	if (bps > c->peak_bps)
		c->peak_bps = bps;
	c->tw_ns = now_ns;
	c->bytesw = bytes;
}

double remus_converge_rate(const struct remus_converge *c, uint64_t now_ns, uint64_t bytes)
{
	double avg = 0;

	if (now_ns > c->t0_ns && bytes > c->bytes0)
		avg = (double)(bytes - c->bytes0) * 1e9 / (double)(now_ns - c->t0_ns);
	return avg > c->peak_bps ? avg : c->peak_bps;
}

double remus_converge_recent_rate(const struct remus_converge *c)
{
	return c->last_bps;
}

double remus_converge_predict_ms(uint64_t remaining, double rate_bps)
{
	if (remaining == 0)
		return 0;
	if (rate_bps <= 0)
		return 1e12;
	return (double)remaining * 1000.0 / rate_bps;
}

bool remus_converge_ready(uint64_t dirty_syncs, double predicted_ms, unsigned budget_ms)
{
	return dirty_syncs >= 2 && predicted_ms <= (double)budget_ms * REMUS_CONVERGE_SAFETY;
}

unsigned remus_converge_downtime_limit_ms(unsigned budget_ms)
{
	return budget_ms >= 20 ? budget_ms / 10 : 1;
}

unsigned remus_converge_cancel_at_ms(unsigned budget_ms)
{
	unsigned reserve = budget_ms / 5;

	if (reserve < 2)
		reserve = 2;
	if (reserve > 50)
		reserve = 50;
	return budget_ms > reserve ? budget_ms - reserve : 1;
}
