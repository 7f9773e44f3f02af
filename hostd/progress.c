// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Transfer progress in status's five keys (hostd/progress.h).  The rate
 * is the average since the first sample, not an instantaneous one: a
 * block copy's cur jumps in whole chunks and an ETA from one 500 ms step
 * would swing; the average is steady and honest for the copies here
 * (seconds to minutes at a rate the disk sets).
 */
#include "hostd/progress.h"

#include <json-c/json.h>
#include <math.h>
#include <stdbool.h>

void remus_hostd_copy_update(struct remus_hostd_copy *c, uint64_t bytes, uint64_t total,
			     uint64_t now_ms)
{
	if (!c->samples) {
		c->bytes0 = bytes;
		c->t0_ms = now_ms;
	}
	c->samples++;
	c->bytes = bytes;
	c->total = total;
	c->t_ms = now_ms;
}

static struct json_object *num_or_null(double v)
{
	return v >= 0 && isfinite(v) ? json_object_new_double(v) : NULL;
}

/* The five keys from their numbers; rate/eta < 0: unknown (null). */
static struct json_object *five(uint64_t bytes, uint64_t total, double rate, double eta)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	if (bytes > total)
		bytes = total;
	json_object_object_add(o, "bytes", json_object_new_int64((int64_t)bytes));
	json_object_object_add(o, "total", json_object_new_int64((int64_t)total));
	json_object_object_add(o, "percent", total ? json_object_new_double(
		floor(1000.0 * (double)bytes / (double)total) / 10.0) : NULL);
	json_object_object_add(o, "rate_bps", num_or_null(rate));
	json_object_object_add(o, "eta_s", num_or_null(eta));
	return o;
}

struct json_object *remus_hostd_copy_json(const struct remus_hostd_copy *c)
{
	double rate = -1, eta = -1;

	if (!c->samples)
		return NULL;
	if (c->t_ms >= c->t0_ms + 1000 && c->bytes >= c->bytes0) {
		rate = (double)(c->bytes - c->bytes0) * 1000.0 / (double)(c->t_ms - c->t0_ms);
		if (c->bytes >= c->total)
			eta = 0;
		else if (rate > 0)
			eta = ceil((double)(c->total - c->bytes) / rate);
	}
	return five(c->bytes, c->total, rate, eta);
}

/* A number of @o at @key into *@v (>= 0), or false. */
static bool get_num(struct json_object *o, const char *key, double *v)
{
	struct json_object *x;

	if (!json_object_object_get_ex(o, key, &x) ||
	    !(json_object_is_type(x, json_type_int) || json_object_is_type(x, json_type_double)))
		return false;
	*v = json_object_get_double(x);
	return *v >= 0 && isfinite(*v) && *v < 1e19;
}

struct json_object *remus_hostd_sync_json(struct json_object *engine)
{
	double total, copied, remaining, rate = -1, eta = -1;

	if (!engine || !json_object_is_type(engine, json_type_object))
		return NULL;
	if (get_num(engine, "bytes", &copied) && get_num(engine, "total", &total))
		return json_object_get(engine);
	if (!get_num(engine, "ram_bytes", &total))
		return NULL;
	if (!get_num(engine, "copied_bytes", &copied))
		copied = get_num(engine, "remaining_bytes", &remaining) && remaining <= total
			 ? total - remaining : 0;
	if (!get_num(engine, "rate_bps", &rate))
		rate = -1;
	if (!get_num(engine, "eta_s", &eta))
		eta = -1;
	return five((uint64_t)copied, (uint64_t)total, rate, eta);
}
