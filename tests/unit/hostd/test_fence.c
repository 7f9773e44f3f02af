// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The fence rule (hostd/fence.h), every row of its table: a primary copy
 * here is destroyed only for its own standby host's create-standby with
 * a newer takeover count, or when that host, proven to be the record's
 * owner, refuses ours because it runs the domain with a newer count;
 * everything else keeps the copy (refused, or nothing to decide), and a
 * paused standby is replaced whatever the count.  The case that broke the
 * lab (issue 10, hostd-serve-crash): the restarted old primary asking
 * the survivor to be its standby again must be refused there, never
 * destroy the survivor's copy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hostd/fence.h"

#define SBY_ID "PSK identity sby"
#define EVE_ID "CN=eve.example"

static struct remus_hostd_dstate rec(enum remus_hostd_role role, const char *peer,
				     uint64_t takeover, const char *owner)
{
	struct remus_hostd_dstate s;

	memset(&s, 0, sizeof(s));
	snprintf(s.domain, sizeof(s.domain), "web1");
	snprintf(s.peer, sizeof(s.peer), "%s", peer);
	snprintf(s.owner, sizeof(s.owner), "%s", owner);
	s.role = role;
	s.takeover = takeover;
	return s;
}

/* pri (count 0, primary, standby on sby) after sby took over (count 1). */
static void test_stale_primary_destroyed_for_its_survivor(void **state)
{
	struct remus_hostd_dstate pri = rec(REMUS_HOSTD_ROLE_PRIMARY, "sby", 0, SBY_ID);
	char why[512];

	(void)state;
	assert_int_equal(remus_hostd_fence_create(&pri, false, "sby", "sby", 1, why, sizeof(why)),
			 REMUS_HOSTD_FENCE_DESTROY);
	assert_non_null(strstr(why, "stale"));
	assert_non_null(strstr(why, "web1"));
	/* By the hello name or by the primary it names. */
	assert_int_equal(remus_hostd_fence_create(&pri, false, "10.9.0.12", "sby", 1, why,
						  sizeof(why)), REMUS_HOSTD_FENCE_DESTROY);
	assert_int_equal(remus_hostd_fence_create(&pri, false, "sby", "10.9.0.12", 5, why,
						  sizeof(why)), REMUS_HOSTD_FENCE_DESTROY);
	/* Later rounds: count 3 here, 4 there. */
	pri.takeover = 3;
	assert_int_equal(remus_hostd_fence_create(&pri, false, "sby", "sby", 4, why, sizeof(why)),
			 REMUS_HOSTD_FENCE_DESTROY);
}

/* The same count, or an older one, never destroys a primary copy. */
static void test_primary_kept_without_newer_takeover(void **state)
{
	struct remus_hostd_dstate p = rec(REMUS_HOSTD_ROLE_PRIMARY, "sby", 2, SBY_ID);
	char why[512];

	(void)state;
	for (uint64_t t = 0; t <= 2; t++) {
		assert_int_equal(remus_hostd_fence_create(&p, false, "sby", "sby", t, why,
							  sizeof(why)), REMUS_HOSTD_FENCE_REFUSE);
		assert_non_null(strstr(why, "kept"));
	}
}

/* The lab's failure: the survivor (primary after its takeover, count 1,
 * or still taking over with count 0 recorded) is asked by the restarted
 * old primary (count 0) to become its standby: refused, kept. */
static void test_survivor_refuses_the_stale_primary(void **state)
{
	struct remus_hostd_dstate survivor = rec(REMUS_HOSTD_ROLE_PRIMARY, "pri", 1, "");
	struct remus_hostd_dstate taking = rec(REMUS_HOSTD_ROLE_STANDBY, "pri", 0, "");
	char why[512];

	(void)state;
	assert_int_equal(remus_hostd_fence_create(&survivor, false, "pri", "pri", 0, why,
						  sizeof(why)), REMUS_HOSTD_FENCE_REFUSE);
	assert_int_equal(remus_hostd_fence_create(&taking, true, "pri", "pri", 0, why,
						  sizeof(why)), REMUS_HOSTD_FENCE_REFUSE);
	/* The same standby record before its takeover is renewed as usual. */
	assert_int_equal(remus_hostd_fence_create(&taking, false, "pri", "pri", 0, why,
						  sizeof(why)), REMUS_HOSTD_FENCE_NONE);
	assert_string_equal(why, "");
}

/* Only its own standby host may replace a primary, whatever count the
 * request claims. */
static void test_other_host_never_destroys(void **state)
{
	struct remus_hostd_dstate p = rec(REMUS_HOSTD_ROLE_PRIMARY, "sby", 0, "");
	char why[512];

	(void)state;
	assert_int_equal(remus_hostd_fence_create(&p, false, "eve", "eve", 99, why, sizeof(why)),
			 REMUS_HOSTD_FENCE_REFUSE);
	assert_non_null(strstr(why, "eve"));
	assert_non_null(strstr(why, "sby"));
}

static void test_standby_and_no_record(void **state)
{
	struct remus_hostd_dstate sb = rec(REMUS_HOSTD_ROLE_STANDBY, "pri", 2, "");
	char why[512];

	(void)state;
	assert_int_equal(remus_hostd_fence_create(NULL, false, "pri", "pri", 0, why, sizeof(why)),
			 REMUS_HOSTD_FENCE_NONE);
	assert_int_equal(remus_hostd_fence_create(&sb, false, "pri", "pri", 2, why, sizeof(why)),
			 REMUS_HOSTD_FENCE_NONE);
	assert_int_equal(remus_hostd_fence_create(&sb, false, "pri", "pri", 3, why, sizeof(why)),
			 REMUS_HOSTD_FENCE_NONE);
	/* A paused standby is replaced whatever the count: a fresh protect
	 * starts at 0 again (an unprotect that could not reach this host
	 * left the record). */
	assert_int_equal(remus_hostd_fence_create(&sb, false, "pri", "pri", 0, why, sizeof(why)),
			 REMUS_HOSTD_FENCE_NONE);
}

/* The asker's half: its create-standby refused by the host that runs the
 * domain as primary. */
static void test_refused_by_the_survivor(void **state)
{
	struct remus_hostd_dstate pri = rec(REMUS_HOSTD_ROLE_PRIMARY, "sby", 0, SBY_ID);
	struct remus_hostd_dstate open = rec(REMUS_HOSTD_ROLE_PRIMARY, "sby", 0, "");
	struct remus_hostd_dstate sb = rec(REMUS_HOSTD_ROLE_STANDBY, "sby", 0, SBY_ID);
	char why[512];

	(void)state;
	assert_int_equal(remus_hostd_fence_refused(&pri, true, 1, SBY_ID, why, sizeof(why)),
			 REMUS_HOSTD_FENCE_DESTROY);
	assert_non_null(strstr(why, "stale"));
	/* Not the owner: a liar, or a host with another key. */
	assert_int_equal(remus_hostd_fence_refused(&pri, true, 9, EVE_ID, why, sizeof(why)),
			 REMUS_HOSTD_FENCE_NONE);
	assert_non_null(strstr(why, EVE_ID));
	assert_int_equal(remus_hostd_fence_refused(&pri, true, 9, "", why, sizeof(why)),
			 REMUS_HOSTD_FENCE_NONE);
	/* Not newer: two primaries of one count; nothing is destroyed. */
	assert_int_equal(remus_hostd_fence_refused(&pri, true, 0, SBY_ID, why, sizeof(why)),
			 REMUS_HOSTD_FENCE_NONE);
	assert_non_null(strstr(why, "nothing is destroyed"));
	/* It did not say it runs the domain (any other refusal). */
	assert_int_equal(remus_hostd_fence_refused(&pri, false, 9, SBY_ID, why, sizeof(why)),
			 REMUS_HOSTD_FENCE_NONE);
	/* A record without an owner (--insecure) trusts the network. */
	assert_int_equal(remus_hostd_fence_refused(&open, true, 1, "", why, sizeof(why)),
			 REMUS_HOSTD_FENCE_DESTROY);
	/* Only a primary record fences itself. */
	assert_int_equal(remus_hostd_fence_refused(&sb, true, 5, SBY_ID, why, sizeof(why)),
			 REMUS_HOSTD_FENCE_NONE);
	assert_int_equal(remus_hostd_fence_refused(NULL, true, 5, SBY_ID, why, sizeof(why)),
			 REMUS_HOSTD_FENCE_NONE);
}

/* The restart rows: a restarted primary's host asks its standby host
 * (query) before its child starts; the answer is decided as a refusal
 * is.  It holds our standby (its count, not "runs primary"), or nothing:
 * the child resumes; it runs the domain after a newer takeover and is
 * the owner: fenced before any child starts. */
static void test_restart_query(void **state)
{
	struct remus_hostd_dstate pri = rec(REMUS_HOSTD_ROLE_PRIMARY, "sby", 1, SBY_ID);
	char why[512];

	(void)state;
	/* "role":"standby","takeover":1 and no role at all */
	assert_int_equal(remus_hostd_fence_refused(&pri, false, 1, SBY_ID, why, sizeof(why)),
			 REMUS_HOSTD_FENCE_NONE);
	assert_string_equal(why, "");
	assert_int_equal(remus_hostd_fence_refused(&pri, false, 0, SBY_ID, why, sizeof(why)),
			 REMUS_HOSTD_FENCE_NONE);
	/* "role":"primary","takeover":2: it took over since our count 1 */
	assert_int_equal(remus_hostd_fence_refused(&pri, true, 2, SBY_ID, why, sizeof(why)),
			 REMUS_HOSTD_FENCE_DESTROY);
	/* ... but said by another identity, or with no newer count: kept */
	assert_int_equal(remus_hostd_fence_refused(&pri, true, 2, EVE_ID, why, sizeof(why)),
			 REMUS_HOSTD_FENCE_NONE);
	assert_int_equal(remus_hostd_fence_refused(&pri, true, 1, SBY_ID, why, sizeof(why)),
			 REMUS_HOSTD_FENCE_NONE);
}

static void test_names_and_short_why(void **state)
{
	struct remus_hostd_dstate p = rec(REMUS_HOSTD_ROLE_PRIMARY, "sby", 0, "");
	char why[8];

	(void)state;
	assert_string_equal(remus_hostd_fence_name(REMUS_HOSTD_FENCE_DESTROY), "destroy");
	assert_string_equal(remus_hostd_fence_name(REMUS_HOSTD_FENCE_REFUSE), "refuse");
	assert_string_equal(remus_hostd_fence_name(REMUS_HOSTD_FENCE_NONE), "none");
	assert_int_equal(remus_hostd_fence_create(&p, false, "sby", "sby", 1, why, sizeof(why)),
			 REMUS_HOSTD_FENCE_DESTROY);
	assert_int_equal(strlen(why), 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stale_primary_destroyed_for_its_survivor),
		cmocka_unit_test(test_primary_kept_without_newer_takeover),
		cmocka_unit_test(test_survivor_refuses_the_stale_primary),
		cmocka_unit_test(test_other_host_never_destroys),
		cmocka_unit_test(test_standby_and_no_record),
		cmocka_unit_test(test_refused_by_the_survivor),
		cmocka_unit_test(test_restart_query),
		cmocka_unit_test(test_names_and_short_why),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
