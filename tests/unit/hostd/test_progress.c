// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Progress in status's five keys (hostd/progress.h): a block copy's
 * samples give bytes, total, percent, and a rate and ETA once a second
 * has passed; the engine's initial_sync object is renamed (ram_bytes,
 * copied_bytes or remaining_bytes) and anything else is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "hostd/progress.h"

static double num(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, key, &v));
	assert_non_null(v);
	return json_object_get_double(v);
}

static void assert_null_key(struct json_object *o, const char *key)
{
	struct json_object *v = (struct json_object *)1;

	assert_true(json_object_object_get_ex(o, key, &v));
	assert_null(v);
}

static void test_copy(void **state)
{
	struct remus_hostd_copy c;
	struct json_object *o;

	memset(&c, 0, sizeof(c));
	assert_null(remus_hostd_copy_json(&c));
	remus_hostd_copy_update(&c, 0, 1000, 5000);
	o = remus_hostd_copy_json(&c);
	assert_int_equal((int)num(o, "bytes"), 0);
	assert_int_equal((int)num(o, "total"), 1000);
	assert_true(num(o, "percent") == 0);
	assert_null_key(o, "rate_bps");   /* one sample: no rate yet */
	assert_null_key(o, "eta_s");
	json_object_put(o);
	remus_hostd_copy_update(&c, 250, 1000, 5500);
	o = remus_hostd_copy_json(&c);
	assert_null_key(o, "rate_bps");   /* less than a second */
	json_object_put(o);
	remus_hostd_copy_update(&c, 400, 1000, 7000);
	o = remus_hostd_copy_json(&c);
	assert_true(num(o, "percent") == 40);
	assert_true(num(o, "rate_bps") == 200);   /* 400 B in 2 s */
	assert_true(num(o, "eta_s") == 3);        /* 600 B at 200 B/s */
	json_object_put(o);
	/* the guest writes: end grows; cur never shown past it */
	remus_hostd_copy_update(&c, 1300, 1200, 8000);
	o = remus_hostd_copy_json(&c);
	assert_int_equal((int)num(o, "bytes"), 1200);
	assert_true(num(o, "percent") == 100);
	assert_true(num(o, "eta_s") == 0);
	json_object_put(o);
	/* an empty disk */
	memset(&c, 0, sizeof(c));
	remus_hostd_copy_update(&c, 0, 0, 1);
	o = remus_hostd_copy_json(&c);
	assert_null_key(o, "percent");
	json_object_put(o);
}

static void test_sync(void **state)
{
	struct json_object *e, *o;

	assert_null(remus_hostd_sync_json(NULL));
	e = json_tokener_parse("{\"epoch\":1,\"elapsed_ms\":1500.5,\"ram_bytes\":1000,"
			       "\"copied_bytes\":400,\"remaining_bytes\":600,\"rate_bps\":100,"
			       "\"eta_s\":6}");
	o = remus_hostd_sync_json(e);
	assert_int_equal((int)num(o, "bytes"), 400);
	assert_int_equal((int)num(o, "total"), 1000);
	assert_true(num(o, "percent") == 40);
	assert_true(num(o, "rate_bps") == 100);
	assert_true(num(o, "eta_s") == 6);
	assert_false(json_object_object_get_ex(o, "ram_bytes", NULL));
	json_object_put(o);
	json_object_put(e);
	/* no copied_bytes: from remaining_bytes; eta null stays null */
	e = json_tokener_parse("{\"ram_bytes\":1000,\"remaining_bytes\":100,\"eta_s\":null}");
	o = remus_hostd_sync_json(e);
	assert_int_equal((int)num(o, "bytes"), 900);
	assert_null_key(o, "eta_s");
	assert_null_key(o, "rate_bps");
	json_object_put(o);
	json_object_put(e);
	/* already in status's keys: as it is */
	e = json_tokener_parse("{\"bytes\":5,\"total\":10,\"percent\":50}");
	o = remus_hostd_sync_json(e);
	assert_ptr_equal(o, e);
	json_object_put(o);
	json_object_put(e);
	/* not a sync object */
	for (const char *const *t = (const char *const[]){ "[1]", "7", "{}", "{\"ram_bytes\":-1}",
		"{\"ram_bytes\":\"x\"}", NULL }; *t; t++) {
		e = json_tokener_parse(*t);
		assert_null(remus_hostd_sync_json(e));
		json_object_put(e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_sync),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
