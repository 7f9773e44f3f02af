// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Retry delays (see backoff.h): doubling per consecutive failure, capped,
 * computed by doubling only while the result stays within the cap, so no
 * count of failures can overflow it.
 */
#include "controller/backoff.h"

void remus_backoff_init(struct remus_backoff *b, unsigned base_ms, unsigned cap_ms)
{
	b->base_ms = base_ms ? base_ms : 1;
	b->cap_ms = cap_ms < b->base_ms ? b->base_ms : cap_ms;
	b->failures = 0;
}

unsigned remus_backoff_delay(const struct remus_backoff *b)
{
	unsigned d = b->base_ms, i;

	for (i = 1; i < b->failures; i++) {
		if (d > b->cap_ms - d)
			return b->cap_ms;
		d *= 2;
	}
	return d < b->cap_ms ? d : b->cap_ms;
}

unsigned remus_backoff_fail(struct remus_backoff *b)
{
	if (b->failures < ~0u)
		b->failures++;
	return remus_backoff_delay(b);
}

void remus_backoff_success(struct remus_backoff *b)
{
	b->failures = 0;
}
