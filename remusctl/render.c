// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * remusd's status and list answers -> text for people.
 *
 * The answer is input from another process (of another version,
 * perhaps), so nothing here trusts it: any key may be missing, null or
 * of another type (shown as "-" and "?"), numbers may be huge, negative,
 * NaN or infinite (never cast to an integer unchecked), and strings are
 * printed with control characters replaced and bounded in length, so a
 * domain name cannot move the terminal's cursor.  tests/fuzz/remusctl
 * feeds arbitrary JSON through every function here.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "remusctl/cli.h"

#define MAX_SHOWN 200 /* characters of one string value */

static void clean(char *buf, size_t len, const char *s, size_t max);

static struct json_object *get(const struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (!o || !json_object_is_type(o, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	return v; /* NULL for a JSON null too */
}

/* A finite number at @key. */
static bool num(const struct json_object *o, const char *key, double *v)
{
	struct json_object *j = get(o, key);

	if (!j || !(json_object_is_type(j, json_type_int) ||
		    json_object_is_type(j, json_type_double)))
		return false;
	*v = json_object_get_double(j);
	return isfinite(*v);
}

/* A finite number at @key, or else at @alt (the engine's own name for
 * it, which remusd serve may pass through: copied_bytes, ram_bytes). */
static bool num2(const struct json_object *o, const char *key, const char *alt, double *v)
{
	return num(o, key, v) || (alt && num(o, alt, v));
}

static const char *str(const struct json_object *o, const char *key)
{
	struct json_object *j = get(o, key);

	return j && json_object_is_type(j, json_type_string) ? json_object_get_string(j) : NULL;
}

void remusctl_printable(char *buf, size_t len, const char *s, size_t max)
{
	clean(buf, len, s, max);
}

/* @s made printable: control characters become '?', at most @max
 * characters (then "..."). */
static void clean(char *buf, size_t len, const char *s, size_t max)
{
	size_t n = 0, i;

	for (i = 0; s[i] && n + 1 < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (i == max && n + 4 < len) {
			memcpy(buf + n, "...", 3);
			n += 3;
			break;
		}
		buf[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	buf[n] = 0;
}

/* A string-valued key for display: "-" missing/null, "?" another type. */
static const char *show_str(char *buf, size_t len, const struct json_object *o,
			    const char *key)
{
	struct json_object *j = get(o, key);

	if (!j)
		return "-";
	if (!json_object_is_type(j, json_type_string))
		return "?";
	clean(buf, len, json_object_get_string(j), MAX_SHOWN);
	return buf;
}

void remusctl_fmt_bytes(char *buf, size_t len, double b)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	size_t u = 0;

	if (!isfinite(b) || b < 0 || b >= 1e21) { /* nonsense past ~867 EiB */
		snprintf(buf, len, "?");
		return;
	}
	while (b >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		b /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%.0f B", b);
	else
		snprintf(buf, len, "%.1f %s", b, units[u]);
}

void remusctl_fmt_duration(char *buf, size_t len, double s)
{
	unsigned long long t;

	if (!isfinite(s) || s < 0 || s > 1e12) {
		snprintf(buf, len, "?");
		return;
	}
	t = (unsigned long long)(s + 0.5);
	if (t < 60)
		snprintf(buf, len, "%llu s", t);
	else if (t < 3600)
		snprintf(buf, len, "%llu min %llu s", t / 60, t % 60);
	else if (t < 86400)
		snprintf(buf, len, "%llu h %llu min", t / 3600, t % 3600 / 60);
	else
		snprintf(buf, len, "%llu d %llu h", t / 86400, t % 86400 / 3600);
}

/* Milliseconds: "4.5 ms", "120 ms", "12.3 s". */
static void fmt_ms(char *buf, size_t len, double ms)
{
	if (ms < 0)
		snprintf(buf, len, "?");
	else if (ms < 10)
		snprintf(buf, len, "%.1f ms", ms);
	else if (ms < 10000)
		snprintf(buf, len, "%.0f ms", ms);
	else if (ms < 1e15)
		snprintf(buf, len, "%.1f s", ms / 1000);
	else
		snprintf(buf, len, "?");
}

/* A number at @key shown with @fmt ("-" missing/null, "?" another type). */
static const char *show_ms(char *buf, size_t len, const struct json_object *o,
			   const char *key)
{
	double v;

	if (!get(o, key))
		return "-";
	if (!num(o, key, &v))
		return "?";
	fmt_ms(buf, len, v);
	return buf;
}

static const char *show_count(char *buf, size_t len, const struct json_object *o,
			      const char *key)
{
	double v;

	if (!get(o, key))
		return "-";
	if (!num(o, key, &v) || v < 0 || v > 1.8e19)
		return "?";
	snprintf(buf, len, "%.0f", v);
	return buf;
}

/* "2026-12-01T18:40:02Z" (what remusd serve sends), or seconds since the
 * epoch (milliseconds are recognised by their size) -> "2026-12-01
 * 18:40:02 UTC (5 min ago)"; another string is shown as it is. */
static const char *show_since(char *buf, size_t len, const struct json_object *o,
			      time_t now, bool with_age)
{
	char age[48];
	struct tm tm;
	time_t t;
	double v;
	size_t n;

	if (!get(o, "since"))
		return "-";
	if (str(o, "since")) {
		/* remusd serve's "2026-12-01T18:40:02Z"; anything else as it is. */
		const char *end;

		memset(&tm, 0, sizeof(tm));
		end = strptime(str(o, "since"), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (!end || *end)
			return show_str(buf, len, o, "since");
		v = (double)timegm(&tm);
		if (v < 0)
			return show_str(buf, len, o, "since");
	} else if (!num(o, "since", &v) || v < 0) {
		return "?";
	} else if (v >= 1e11) { /* past year 5000 in seconds: milliseconds */
		v /= 1000;
	}
	if (v > 253402300799.0) /* 9999-12-31 */
		return "?";
	t = (time_t)v;
	if (!gmtime_r(&t, &tm) || !(n = strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm)))
		return "?";
	if (with_age && (double)now >= v) {
		remusctl_fmt_duration(age, sizeof(age), (double)now - v);
		snprintf(buf + n, len - n, " (%s ago)", age);
	}
	return buf;
}

/* Running sums of remusctl_progress_of; @p->known etc. set at the end. */
struct sums {
	double bytes, total, rate, eta;
	bool rate_known, eta_known;
};

/* Adds one transfer object ({bytes, total, rate_bps, eta_s}); parts
 * without a sane total are left out. */
static void sums_add(struct sums *s, const struct json_object *part)
{
	double b, t, r, e;

	if (!num2(part, "total", "ram_bytes", &t) || t <= 0 || t > 1e18 ||
	    s->total + t > 1e19)
		return; /* the sums stay well inside uint64_t */
	if (!num2(part, "bytes", "copied_bytes", &b))
		return; /* a size, not a transfer */
	if (b < 0)
		b = 0;
	s->total += t;
	s->bytes += b < t ? b : t;
	if (num(part, "rate_bps", &r) && r >= 0 && r < 1e18) {
		s->rate += r;
		s->rate_known = true;
	}
	if (num(part, "eta_s", &e) && e >= 0 && e < 1e12 && b < t) {
		if (e > s->eta)
			s->eta = e;
		s->eta_known = true;
	}
}

static void sums_done(const struct sums *s, struct remusctl_progress *p)
{
	memset(p, 0, sizeof(*p));
	p->rate_bps = s->rate_known ? s->rate : -1;
	p->eta_s = s->eta_known ? s->eta : -1;
	if (s->total <= 0)
		return;
	p->known = true;
	p->bytes = (uint64_t)s->bytes;
	p->total = (uint64_t)s->total;
	/* 100 * b / t can round above 100 when b == t (1e18 + 1e8, twice):
	 * the bar and the "percent" of --json never pass 100. */
	p->percent = s->bytes >= s->total ? 100.0 : 100.0 * s->bytes / s->total;
	if (p->percent > 100.0)
		p->percent = 100.0;
}

void remusctl_progress_of(const struct json_object *dom, struct remusctl_progress *p)
{
	struct json_object *disks = get(dom, "disks");
	struct sums s = { 0 };

	sums_add(&s, get(dom, "initial_sync"));
	if (disks && json_object_is_type(disks, json_type_array)) {
		size_t n = json_object_array_length(disks);

		for (size_t i = 0; i < n; i++)
			sums_add(&s, json_object_array_get_idx(disks, i));
	}
	sums_done(&s, p);
}

void remusctl_progress_format(char *buf, size_t len, const char *state,
			      const struct remusctl_progress *p, bool bar, int width)
{
	char b[32], t[32], r[32] = "", e[48] = "", st[64];
	size_t n = 0;

	clean(st, sizeof(st), state ? state : "-", 40);
	if (!p->known) {
		snprintf(buf, len, "%s", st);
		return;
	}
	remusctl_fmt_bytes(b, sizeof(b), (double)p->bytes);
	remusctl_fmt_bytes(t, sizeof(t), (double)p->total);
	if (p->rate_bps >= 0) {
		remusctl_fmt_bytes(r, sizeof(r) - 2, p->rate_bps);
		strcat(r, "/s");
	}
	if (p->eta_s >= 0) {
		char d[32];

		remusctl_fmt_duration(d, sizeof(d), p->eta_s);
		snprintf(e, sizeof(e), "ETA %s", d);
	}
	if (bar && width > 0 && len > (size_t)width + 3) {
		int fill = (int)(p->percent / 100.0 * width + 0.5);

		if (fill > width)
			fill = width;
		buf[n++] = '[';
		for (int i = 0; i < width; i++)
			buf[n++] = i < fill ? '#' : '-';
		buf[n++] = ']';
		buf[n++] = ' ';
		buf[n] = 0;
		snprintf(buf + n, len - n, "%s / %s %5.1f%%%s%s%s%s  %s", b, t, p->percent,
			 *r ? "  " : "", r, *e ? "  " : "", e, st);
		return;
	}
	snprintf(buf, len, "%s: %s of %s (%.0f%%)%s%s%s%s", st, b, t, p->percent,
		 *r ? ", " : "", r, *e ? ", " : "", e);
}

/* "copying: 1.0 GiB of 2.0 GiB (50%), 10.0 MiB/s, ETA 1 min 40 s" */
static void show_transfer(char *buf, size_t len, const struct json_object *x,
			  const char *state)
{
	struct remusctl_progress p;
	struct sums s = { 0 };
	double b;

	sums_add(&s, x);
	sums_done(&s, &p);
	if (p.known) {
		remusctl_progress_format(buf, len, state, &p, false, 0);
	} else if (num2(x, "total", "ram_bytes", &b) && b >= 0) {
		char bb[32];

		remusctl_fmt_bytes(bb, sizeof(bb), b);
		snprintf(buf, len, "%s %s", state, bb);
	} else if (num2(x, "bytes", "copied_bytes", &b) && b >= 0) {
		char bb[32];

		remusctl_fmt_bytes(bb, sizeof(bb), b);
		snprintf(buf, len, "%s: %s", state, bb);
	} else {
		snprintf(buf, len, "%s", state);
	}
}

/* last_failure: a string (remusd serve's), or the engine's {reason,time}. */
static const char *show_failure(char *buf, size_t len, const struct json_object *o)
{
	struct json_object *lf = get(o, "last_failure");
	const char *reason, *when;
	char r[MAX_SHOWN + 8], w[64];

	if (!lf || json_object_is_type(lf, json_type_string))
		return show_str(buf, len, o, "last_failure");
	reason = str(lf, "reason");
	if (!reason)
		return "?";
	clean(r, sizeof(r), reason, MAX_SHOWN);
	when = str(lf, "time");
	if (when) {
		clean(w, sizeof(w), when, 40);
		snprintf(buf, len, "%s (%s)", r, w);
	} else {
		snprintf(buf, len, "%s", r);
	}
	return buf;
}

static void render_disks(FILE *f, const struct json_object *dom)
{
	struct json_object *disks = get(dom, "disks");
	char tg[MAX_SHOWN + 8], st[MAX_SHOWN + 8], line[512];
	size_t n;

	if (!disks) {
		fprintf(f, "  %-16s-\n", "disks:");
		return;
	}
	if (!json_object_is_type(disks, json_type_array)) {
		fprintf(f, "  %-16s?\n", "disks:");
		return;
	}
	n = json_object_array_length(disks);
	if (n == 0)
		fprintf(f, "  %-16snone\n", "disks:");
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(disks, i);

		char label[2 * MAX_SHOWN + 24];

		/* "vda copying", or "vda" alone when no state is given. */
		snprintf(label, sizeof(label), "%s%s%s", show_str(tg, sizeof(tg), d, "target"),
			 get(d, "state") ? " " : "",
			 get(d, "state") ? show_str(st, sizeof(st), d, "state") : "");
		show_transfer(line, sizeof(line), d, label);
		fprintf(f, "  %-16s%s", i ? "" : "disks:", line);
		if (str(d, "format"))
			fprintf(f, " (%s)", show_str(st, sizeof(st), d, "format"));
		fputc('\n', f);
	}
}

static void render_domain(FILE *f, const struct json_object *dom, time_t now)
{
	char a[MAX_SHOWN + 8], b[MAX_SHOWN + 8], c[2 * MAX_SHOWN], line[512];
	struct json_object *sync = get(dom, "initial_sync");

	fprintf(f, "%s\n", show_str(a, sizeof(a), dom, "domain"));
	fprintf(f, "  %-16s%s\n", "role:", show_str(a, sizeof(a), dom, "role"));
	fprintf(f, "  %-16s%s", "state:", show_str(a, sizeof(a), dom, "state"));
	if (str(dom, "host_state") && str(dom, "state") &&
	    strcmp(str(dom, "host_state"), str(dom, "state")) != 0)
		fprintf(f, " (remusd: %s)", show_str(b, sizeof(b), dom, "host_state"));
	fputc('\n', f);
	fprintf(f, "  %-16s%s\n", "peer:", show_str(a, sizeof(a), dom, "peer"));
	fprintf(f, "  %-16s%s\n", "since:", show_since(a, sizeof(a), dom, now, true));
	fprintf(f, "  %-16s%s\n", "uuid:", show_str(a, sizeof(a), dom, "uuid"));
	fprintf(f, "  %-16s%s\n", "epoch:", show_count(a, sizeof(a), dom, "epoch"));
	fprintf(f, "  %-16s%s (pause budget %s)\n", "interval:",
		show_ms(a, sizeof(a), dom, "interval_ms"),
		show_ms(b, sizeof(b), dom, "pause_budget_ms"));
	fprintf(f, "  %-16sp50 %s, p99 %s\n", "pause:",
		show_ms(a, sizeof(a), dom, "pause_p50_ms"),
		show_ms(b, sizeof(b), dom, "pause_p99_ms"));
	fprintf(f, "  %-16sp50 %s\n", "commit latency:",
		show_ms(a, sizeof(a), dom, "commit_p50_ms"));
	fprintf(f, "  %-16s%s\n", "lag:", show_ms(a, sizeof(a), dom, "lag_ms"));
	fprintf(f, "  %-16s%s\n", "heartbeat age:",
		show_ms(a, sizeof(a), dom, "heartbeat_age_ms"));
	fprintf(f, "  %-16s%s\n", "held frames:", show_count(a, sizeof(a), dom, "held_frames"));
	if (get(dom, "netbuffer"))
		fprintf(f, "  %-16s%s\n", "netbuffer:", show_str(a, sizeof(a), dom, "netbuffer"));
	fprintf(f, "  %-16s%s\n", "reprotect:", show_str(a, sizeof(a), dom, "reprotect"));
	if (!sync) {
		fprintf(f, "  %-16s-\n", "initial sync:");
	} else {
		show_transfer(line, sizeof(line), sync, "copying");
		fprintf(f, "  %-16s%s\n", "initial sync:",
			json_object_is_type(sync, json_type_object) ? line : "?");
	}
	if (str(dom, "engine") && str(dom, "engine_reason")) {
		/* the reason in full: it names the object and the fix */
		char why[4 * MAX_SHOWN + 8];

		clean(why, sizeof(why), str(dom, "engine_reason"), 4 * MAX_SHOWN);
		fprintf(f, "  %-16s%s (%s)\n", "engine:", show_str(a, sizeof(a), dom, "engine"),
			why);
	} else
		fprintf(f, "  %-16s%s\n", "engine:", show_str(a, sizeof(a), dom, "engine"));
	if (get(dom, "v2_checkpoints"))
		fprintf(f, "  %-16s%s\n", "v2 checkpoints:",
			show_count(a, sizeof(a), dom, "v2_checkpoints"));
	render_disks(f, dom);
	if (get(dom, "last_failure"))
		fprintf(f, "  %-16s%s, last: %s\n", "failures:",
			show_count(b, sizeof(b), dom, "failures"),
			show_failure(c, sizeof(c), dom));
	else
		fprintf(f, "  %-16s%s\n", "failures:", show_count(b, sizeof(b), dom, "failures"));
	if (get(dom, "child_error"))
		fprintf(f, "  %-16snot answering: %s\n", "engine:",
			show_str(a, sizeof(a), dom, "child_error"));
}

/* The domain objects of an answer: "domains":[...], "status":{...}, or
 * the answer itself when it has a "domain" key. */
static size_t domains_of(struct json_object *answer, struct json_object **one,
			 struct json_object **arr)
{
	struct json_object *d = get(answer, "domains"), *s = get(answer, "status");

	*arr = NULL;
	*one = NULL;
	if (d && json_object_is_type(d, json_type_array)) {
		*arr = d;
		return json_object_array_length(d);
	}
	if (s && json_object_is_type(s, json_type_object)) {
		*one = s;
		return 1;
	}
	if (get(answer, "domain")) {
		*one = answer;
		return 1;
	}
	return 0;
}

void remusctl_render_status(FILE *f, struct json_object *answer, time_t now)
{
	struct json_object *one, *arr;
	size_t n = domains_of(answer, &one, &arr);

	if (n == 0)
		fprintf(f, "no protected domains\n");
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc('\n', f);
		render_domain(f, one ? one : json_object_array_get_idx(arr, i), now);
	}
}

void remusctl_render_list(FILE *f, struct json_object *answer, time_t now)
{
	static const char *const head[6] = { "DOMAIN", "ROLE", "STATE", "ENGINE", "PEER",
					     "SINCE" };
	static const char *const keys[5] = { "domain", "role", "state", "engine", "peer" };
	struct json_object *one, *arr;
	size_t n = domains_of(answer, &one, &arr);
	int w[5];
	char cell[MAX_SHOWN + 8], since[96];

	(void)now;
	if (n == 0) {
		fprintf(f, "no protected domains\n");
		return;
	}
	for (int k = 0; k < 5; k++)
		w[k] = (int)strlen(head[k]);
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = one ? one : json_object_array_get_idx(arr, i);

		for (int k = 0; k < 5; k++) {
			int l = (int)strlen(show_str(cell, sizeof(cell), d, keys[k]));

			if (l > w[k])
				w[k] = l;
		}
	}
	fprintf(f, "%-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w[0], head[0], w[1], head[1], w[2],
		head[2], w[3], head[3], w[4], head[4], head[5]);
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = one ? one : json_object_array_get_idx(arr, i);

		for (int k = 0; k < 5; k++)
			fprintf(f, "%-*s  ", w[k], show_str(cell, sizeof(cell), d, keys[k]));
		fprintf(f, "%s\n", show_since(since, sizeof(since), d, now, false));
	}
}
