// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for remusctl/render.c: a full status renders every field
 * the issue asks for, in a stable layout (golden text below); nulls,
 * missing keys and wrong types render as "-" and "?" without crashing;
 * strings from remusd cannot put control characters on the terminal;
 * the list table aligns; progress sums disks and memory and formats
 * bar and plain lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "remusctl/cli.h"

#define NOW 1796150000 /* 2026-12-01 18:33:20 UTC */

/* Renders @json with @fn into a malloc'd string. */
static char *render(void (*fn)(FILE *, struct json_object *, time_t), const char *json)
{
	struct json_object *o = json_tokener_parse(json);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(o);
	assert_non_null(f);
	fn(f, o, NOW);
	fclose(f);
	json_object_put(o);
	return text;
}

static void assert_contains(const char *text, const char *needle)
{
	if (!strstr(text, needle))
		fail_msg("'%s' not in:\n%s", needle, text);
}

static const char full[] =
	"{\"ok\":true,\"domains\":[{\"domain\":\"web1\",\"uuid\":\"8f0c\","
	"\"role\":\"primary\",\"state\":\"protected\",\"peer\":\"hostB:7790\","
	"\"since\":1796149700,\"epoch\":1234,\"interval_ms\":200,\"pause_budget_ms\":300,"
	"\"pause_p50_ms\":4.5,\"pause_p99_ms\":12.25,\"commit_p50_ms\":2,\"lag_ms\":35,"
	"\"heartbeat_age_ms\":40,\"held_frames\":12,\"failures\":2,"
	"\"last_failure\":\"standby hostB:7790 lost\",\"reprotect\":\"auto\","
	"\"engine\":\"v2\",\"engine_reason\":\"v2: guest RAM of web1 (memory backend 'pc.ram') "
	"is /var/lib/libvirt/qemu/ram/1-web1/pc.ram on remusd ramfs (/run/remus/ramfs.sock), "
	"share=on\",\"v2_checkpoints\":1200,"
	"\"initial_sync\":{\"bytes\":1073741824,\"total\":2147483648,\"percent\":50,"
	"\"rate_bps\":104857600,\"eta_s\":10},"
	"\"disks\":[{\"target\":\"vda\",\"state\":\"synced\",\"bytes\":2147483648,"
	"\"total\":2147483648,\"percent\":100,\"rate_bps\":null,\"eta_s\":null}]}]}";

static void test_status_full(void **state)
{
	char *t = render(remusctl_render_status, full);

	assert_string_equal(t,
		"web1\n"
		"  role:           primary\n"
		"  state:          protected\n"
		"  peer:           hostB:7790\n"
		"  since:          2026-12-01 18:28:20 UTC (5 min 0 s ago)\n"
		"  uuid:           8f0c\n"
		"  epoch:          1234\n"
		"  interval:       200 ms (pause budget 300 ms)\n"
		"  pause:          p50 4.5 ms, p99 12 ms\n"
		"  commit latency: p50 2.0 ms\n"
		"  lag:            35 ms\n"
		"  heartbeat age:  40 ms\n"
		"  held frames:    12\n"
		"  reprotect:      auto\n"
		"  initial sync:   copying: 1.0 GiB of 2.0 GiB (50%), 100.0 MiB/s, ETA 10 s\n"
		"  engine:         v2 (v2: guest RAM of web1 (memory backend 'pc.ram') is "
		"/var/lib/libvirt/qemu/ram/1-web1/pc.ram on remusd ramfs (/run/remus/ramfs.sock), "
		"share=on)\n"
		"  v2 checkpoints: 1200\n"
		"  disks:          vda synced: 2.0 GiB of 2.0 GiB (100%)\n"
		"  failures:       2, last: standby hostB:7790 lost\n");
	free(t);
}

/* What remusd serve answers today (hostd/hostd.c): its own view merged
 * with the engine's status, whose initial_sync and last_failure have the
 * engine's shapes; since is an ISO 8601 string. */
static const char hostd_shaped[] =
	"{\"domain\":\"web1\",\"role\":\"primary\",\"state\":\"syncing\","
	"\"peer\":\"hostB:7790\",\"since\":\"2026-12-01T18:28:20Z\",\"uuid\":\"8f0c\","
	"\"host_state\":\"running\",\"interval_ms\":200,\"pause_budget_ms\":300,"
	"\"netbuffer\":\"qemu\",\"reprotect\":\"auto\",\"repl_port\":7800,"
	"\"child_pid\":4242,\"child_restarts\":0,\"failures\":1,\"last_failure\":null,"
	"\"disks\":[{\"target\":\"vda\",\"format\":\"qcow2\",\"total\":1073741824}],"
	"\"epoch\":0,\"initial_sync\":{\"epoch\":1,\"elapsed_ms\":1500.5,"
	"\"ram_bytes\":268435456,\"copied_bytes\":67108864,\"remaining_bytes\":201326592,"
	"\"rate_bps\":33554432,\"eta_s\":6},\"protected\":false,"
	"\"child\":{\"state\":\"syncing\"},\"ok\":true}";

static void test_status_hostd_shaped(void **state)
{
	char *t = render(remusctl_render_status, hostd_shaped);
	struct json_object *o;
	struct remusctl_progress p;

	assert_string_equal(t,
		"web1\n"
		"  role:           primary\n"
		"  state:          syncing (remusd: running)\n"
		"  peer:           hostB:7790\n"
		"  since:          2026-12-01 18:28:20 UTC (5 min 0 s ago)\n"
		"  uuid:           8f0c\n"
		"  epoch:          0\n"
		"  interval:       200 ms (pause budget 300 ms)\n"
		"  pause:          p50 -, p99 -\n"
		"  commit latency: p50 -\n"
		"  lag:            -\n"
		"  heartbeat age:  -\n"
		"  held frames:    -\n"
		"  netbuffer:      qemu\n"
		"  reprotect:      auto\n"
		"  initial sync:   copying: 64.0 MiB of 256.0 MiB (25%), 32.0 MiB/s, ETA 6 s\n"
		"  engine:         -\n"
		"  disks:          vda 1.0 GiB (qcow2)\n"
		"  failures:       1\n");
	free(t);
	/* The disk's size alone is no transfer: the progress is memory's. */
	o = json_tokener_parse(hostd_shaped);
	remusctl_progress_of(o, &p);
	assert_true(p.known);
	assert_int_equal(p.bytes, 67108864);
	assert_int_equal(p.total, 268435456);
	json_object_put(o);

	/* The engine's last_failure object; a child that does not answer. */
	t = render(remusctl_render_status,
		   "{\"ok\":true,\"domain\":\"w\",\"failures\":3,\"last_failure\":"
		   "{\"reason\":\"standby hostB:7800 refused\",\"time\":\"18:30:01\"},"
		   "\"child_error\":\"Connection refused\",\"since\":\"tomorrow\"}");
	assert_contains(t, "  failures:       3, last: standby hostB:7800 refused (18:30:01)\n");
	assert_contains(t, "  engine:         not answering: Connection refused\n");
	assert_contains(t, "  since:          tomorrow\n");
	free(t);
	t = render(remusctl_render_status,
		   "{\"ok\":true,\"domain\":\"w\",\"last_failure\":{\"time\":1}}");
	assert_contains(t, "  failures:       -, last: ?\n");
	free(t);
}

static void test_status_nulls(void **state)
{
	/* A standby just created: most keys null, some missing. */
	char *t = render(remusctl_render_status,
			 "{\"ok\":true,\"domain\":\"web1\",\"role\":\"standby\","
			 "\"state\":\"waiting\",\"peer\":null,\"since\":null,\"epoch\":null,"
			 "\"pause_p50_ms\":null,\"initial_sync\":null,\"disks\":null,"
			 "\"failures\":0,\"last_failure\":null}");

	assert_contains(t, "web1\n  role:           standby\n  state:          waiting\n");
	assert_contains(t, "  peer:           -\n");
	assert_contains(t, "  since:          -\n");
	assert_contains(t, "  epoch:          -\n");
	assert_contains(t, "  interval:       - (pause budget -)\n");
	assert_contains(t, "  pause:          p50 -, p99 -\n");
	assert_contains(t, "  initial sync:   -\n");
	assert_contains(t, "  disks:          -\n");
	assert_contains(t, "  failures:       0\n");
	free(t);

	/* Nothing at all but the domain. */
	t = render(remusctl_render_status, "{\"ok\":true,\"status\":{\"domain\":\"x\"}}");
	assert_contains(t, "x\n  role:           -\n");
	assert_contains(t, "  failures:       -\n");
	free(t);

	t = render(remusctl_render_status, "{\"ok\":true,\"domains\":[]}");
	assert_string_equal(t, "no protected domains\n");
	free(t);
	t = render(remusctl_render_status, "{\"ok\":true}");
	assert_string_equal(t, "no protected domains\n");
	free(t);
}

static void test_status_wrong_types(void **state)
{
	char *t = render(remusctl_render_status,
			 "{\"ok\":true,\"domains\":[{\"domain\":7,\"role\":[],\"state\":{},"
			 "\"since\":-5,\"epoch\":\"many\",\"interval_ms\":true,"
			 "\"pause_p50_ms\":-1,\"held_frames\":1e300,\"lag_ms\":1e300,"
			 "\"initial_sync\":[1],\"disks\":{\"vda\":1},\"failures\":-3},"
			 "17, null, \"str\",{\"domain\":\"b\",\"disks\":[null,3,{\"total\":-1,"
			 "\"bytes\":5},{\"target\":\"vdb\",\"total\":10,\"bytes\":50,"
			 "\"eta_s\":1e400,\"rate_bps\":-2}]}]}");

	assert_contains(t, "?\n  role:           ?\n  state:          ?\n");
	assert_contains(t, "  since:          ?\n");
	assert_contains(t, "  epoch:          ?\n");
	assert_contains(t, "  interval:       ? (pause budget -)\n");
	assert_contains(t, "  pause:          p50 ?, p99 -\n");
	assert_contains(t, "  lag:            ?\n");
	assert_contains(t, "  held frames:    ?\n");
	assert_contains(t, "  initial sync:   ?\n");
	assert_contains(t, "  disks:          ?\n");
	assert_contains(t, "  failures:       ?\n");
	/* Non-objects in the array render as empty blocks: "-" everywhere. */
	assert_contains(t, "\n-\n  role:           -\n");
	/* A disk with more bytes than its total is shown full, not 500%. */
	assert_contains(t, "  disks:          -\n                  -\n"
			   "                  -: 5 B\n"
			   "                  vdb: 10 B of 10 B (100%)\n");
	free(t);
}

static void test_no_control_characters(void **state)
{
	char *t = render(remusctl_render_status,
			 "{\"ok\":true,\"domain\":\"evil\\u001b[2J\",\"last_failure\":"
			 "\"line1\\nline2\\r\",\"failures\":1,\"peer\":\"\\u007f\"}");

	for (const char *p = t; *p; p++)
		assert_true(*p == '\n' || ((unsigned char)*p >= 0x20 && *p != 0x7f));
	assert_contains(t, "evil?[2J\n");
	assert_contains(t, "1, last: line1?line2?\n");
	free(t);

	/* Long strings are cut. */
	char json[2048] = "{\"ok\":true,\"domain\":\"";
	size_t n = strlen(json);

	memset(json + n, 'x', 1000);
	strcpy(json + n + 1000, "\"}");
	t = render(remusctl_render_status, json);
	for (const char *l = t; *l; l = strchr(l, '\n') + 1)
		assert_true(strchr(l, '\n') - l < 300);
	assert_contains(t, "xxx...\n");
	free(t);
}

static void test_list(void **state)
{
	char *t = render(remusctl_render_list,
			 "{\"ok\":true,\"domains\":[{\"domain\":\"web1\",\"role\":\"primary\","
			 "\"state\":\"protected\",\"engine\":\"v2\",\"peer\":\"hostB:7790\","
			 "\"since\":1796149700},"
			 "{\"domain\":\"database-7\",\"role\":\"standby\",\"state\":\"receiving\","
			 "\"engine\":null,\"peer\":null}]}");

	assert_string_equal(t,
		"DOMAIN      ROLE     STATE      ENGINE  PEER        SINCE\n"
		"web1        primary  protected  v2      hostB:7790  2026-12-01 18:28:20 UTC\n"
		"database-7  standby  receiving  -       -           -\n");
	free(t);
	/* since in milliseconds (the state files' since_ms), or a string. */
	t = render(remusctl_render_list,
		   "{\"ok\":true,\"domains\":[{\"domain\":\"a\",\"since\":1796149700123},"
		   "{\"domain\":\"b\",\"since\":\"yesterday\"},{\"domain\":\"c\",\"since\":1e300},"
		   "{\"domain\":\"d\",\"since\":\"2026-12-01T18:28:20Z\"},"
		   "{\"domain\":\"e\",\"since\":\"2026-12-01T18:28:20Zjunk\"}]}");
	assert_string_equal(t,
		"DOMAIN  ROLE  STATE  ENGINE  PEER  SINCE\n"
		"a       -     -      -       -     2026-12-01 18:28:20 UTC\n"
		"b       -     -      -       -     yesterday\n"
		"c       -     -      -       -     ?\n"
		"d       -     -      -       -     2026-12-01 18:28:20 UTC\n"
		"e       -     -      -       -     2026-12-01T18:28:20Zjunk\n");
	free(t);
	t = render(remusctl_render_list, "{\"ok\":true,\"domains\":[]}");
	assert_string_equal(t, "no protected domains\n");
	free(t);
	t = render(remusctl_render_list, "{\"ok\":true,\"domains\":[3,{\"domain\":[]}]}");
	assert_string_equal(t,
		"DOMAIN  ROLE  STATE  ENGINE  PEER  SINCE\n"
		"-       -     -      -       -     -\n"
		"?       -     -      -       -     -\n");
	free(t);
}

static void test_progress(void **state)
{
	struct json_object *o = json_tokener_parse(
		"{\"initial_sync\":{\"bytes\":100,\"total\":1000,\"rate_bps\":10,\"eta_s\":90},"
		"\"disks\":[{\"bytes\":500,\"total\":1000,\"rate_bps\":20,\"eta_s\":25},"
		"{\"bytes\":1000,\"total\":1000,\"eta_s\":0},{\"total\":null}]}");
	struct remusctl_progress p;
	char line[256];

	remusctl_progress_of(o, &p);
	assert_true(p.known);
	assert_int_equal(p.bytes, 1600);
	assert_int_equal(p.total, 3000);
	assert_true(p.percent > 53.3 && p.percent < 53.4);
	assert_true(p.rate_bps == 30);
	assert_true(p.eta_s == 90);
	remusctl_progress_format(line, sizeof(line), "syncing", &p, true, 10);
	assert_string_equal(line,
		"[#####-----] 1.6 KiB / 2.9 KiB  53.3%  30 B/s  ETA 1 min 30 s  syncing");
	remusctl_progress_format(line, sizeof(line), "web1 syncing", &p, false, 0);
	assert_string_equal(line,
		"web1 syncing: 1.6 KiB of 2.9 KiB (53%), 30 B/s, ETA 1 min 30 s");
	json_object_put(o);

	/* Nothing known yet: just the state. */
	o = json_tokener_parse("{\"initial_sync\":null,\"disks\":[]}");
	remusctl_progress_of(o, &p);
	assert_false(p.known);
	remusctl_progress_format(line, sizeof(line), "starting", &p, true, 10);
	assert_string_equal(line, "starting");
	json_object_put(o);
	remusctl_progress_of(NULL, &p);
	assert_false(p.known);

	/* Done parts whose sum rounds: 100 * b / t came out 100.00000000000001
	 * (found by fuzz_remusctl's campaign). */
	o = json_tokener_parse("{\"disks\":[{\"total\":1e18,\"bytes\":1e19},"
			       "{\"total\":1e8,\"bytes\":1e8}]}");
	remusctl_progress_of(o, &p);
	assert_true(p.known);
	assert_true(p.percent == 100.0);
	assert_true(p.bytes == p.total);
	json_object_put(o);

	/* Rate and ETA unknown. */
	o = json_tokener_parse("{\"initial_sync\":{\"bytes\":0,\"total\":3221225472}}");
	remusctl_progress_of(o, &p);
	remusctl_progress_format(line, sizeof(line), "syncing", &p, true, 4);
	assert_string_equal(line, "[----] 0 B / 3.0 GiB   0.0%  syncing");
	json_object_put(o);
}

static void test_formats(void **state)
{
	char b[64];

	remusctl_fmt_bytes(b, sizeof(b), 0);
	assert_string_equal(b, "0 B");
	remusctl_fmt_bytes(b, sizeof(b), 1023);
	assert_string_equal(b, "1023 B");
	remusctl_fmt_bytes(b, sizeof(b), 1536);
	assert_string_equal(b, "1.5 KiB");
	remusctl_fmt_bytes(b, sizeof(b), 5.0 * (1ull << 40));
	assert_string_equal(b, "5.0 TiB");
	remusctl_fmt_bytes(b, sizeof(b), -1);
	assert_string_equal(b, "?");
	remusctl_fmt_bytes(b, sizeof(b), 1e300);
	assert_string_equal(b, "?");
	remusctl_fmt_bytes(b, sizeof(b), 1e20);
	assert_string_equal(b, "86.7 EiB");
	remusctl_fmt_duration(b, sizeof(b), 4.4);
	assert_string_equal(b, "4 s");
	remusctl_fmt_duration(b, sizeof(b), 125);
	assert_string_equal(b, "2 min 5 s");
	remusctl_fmt_duration(b, sizeof(b), 3780);
	assert_string_equal(b, "1 h 3 min");
	remusctl_fmt_duration(b, sizeof(b), 266400);
	assert_string_equal(b, "3 d 2 h");
	remusctl_fmt_duration(b, sizeof(b), -1);
	assert_string_equal(b, "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_full),
		cmocka_unit_test(test_status_hostd_shaped),
		cmocka_unit_test(test_status_nulls),
		cmocka_unit_test(test_status_wrong_types),
		cmocka_unit_test(test_no_control_characters),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_progress),
		cmocka_unit_test(test_formats),
	};

	setenv("TZ", "UTC", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
