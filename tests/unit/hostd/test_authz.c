// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Who may act on which domain (hostd/authz.h), every rule: a ping always;
 * a record's owner may replace, destroy, fail over and change the interval
 * of its domain and nobody else may; a record without an owner binds nobody; a peer
 * without TLS owns nothing; a UUID held under another name is never
 * given away, whoever asks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hostd/authz.h"

#define UUID1 "6f2b5c1e-3d4a-4b8e-9c1f-0a1b2c3d4e5f"
#define ALICE "PSK identity alice"
#define MALLORY "CN=mallory.example"

static struct remus_hostd_dstate rec(const char *domain, const char *owner,
				     enum remus_hostd_role role)
{
	struct remus_hostd_dstate s;

	memset(&s, 0, sizeof(s));
	snprintf(s.domain, sizeof(s.domain), "%s", domain);
	snprintf(s.uuid, sizeof(s.uuid), UUID1);
	snprintf(s.owner, sizeof(s.owner), "%s", owner);
	s.role = role;
	return s;
}

static int az(enum remus_hostd_peer_req req, const char *domain, const char *id,
	      const struct remus_hostd_dstate *byname, const struct remus_hostd_dstate *byuuid,
	      char *why)
{
	return remus_hostd_authorise(req, domain, UUID1, id, byname, byuuid, why, 512);
}

static void test_owner_and_others(void **state)
{
	struct remus_hostd_dstate sb = rec("web1", ALICE, REMUS_HOSTD_ROLE_STANDBY);
	struct remus_hostd_dstate pr = rec("web1", ALICE, REMUS_HOSTD_ROLE_PRIMARY);
	enum remus_hostd_peer_req reqs[] = { REMUS_HOSTD_PEER_CREATE_STANDBY,
					     REMUS_HOSTD_PEER_DESTROY_STANDBY,
					     REMUS_HOSTD_PEER_FAILOVER,
					     REMUS_HOSTD_PEER_SET_INTERVAL,
					     REMUS_HOSTD_PEER_QUERY };
	char why[512];

	(void)state;
	for (unsigned i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		assert_int_equal(az(reqs[i], "web1", ALICE, &sb, &sb, why), 0);
		assert_int_equal(az(reqs[i], "web1", ALICE, &pr, &pr, why), 0);
		assert_int_equal(az(reqs[i], "web1", MALLORY, &sb, &sb, why), -EPERM);
		assert_non_null(strstr(why, "web1"));
		assert_non_null(strstr(why, ALICE));
		assert_non_null(strstr(why, MALLORY));
		assert_int_equal(az(reqs[i], "web1", MALLORY, &pr, &pr, why), -EPERM);
		assert_non_null(strstr(why, "primary"));
		/* Without TLS nobody is anybody. */
		assert_int_equal(az(reqs[i], "web1", "", &sb, &sb, why), -EPERM);
		assert_non_null(strstr(why, "unauthenticated"));
	}
	assert_int_equal(az(REMUS_HOSTD_PEER_FAILOVER, "web1", MALLORY, &sb, NULL, why), -EPERM);
	assert_non_null(strstr(why, "fail over"));
	assert_int_equal(az(REMUS_HOSTD_PEER_DESTROY_STANDBY, "web1", MALLORY, &sb, NULL, why),
			 -EPERM);
	assert_non_null(strstr(why, "destroy"));
	assert_int_equal(az(REMUS_HOSTD_PEER_CREATE_STANDBY, "web1", MALLORY, &sb, NULL, why),
			 -EPERM);
	assert_non_null(strstr(why, "replace"));
	assert_int_equal(az(REMUS_HOSTD_PEER_SET_INTERVAL, "web1", MALLORY, &sb, NULL, why),
			 -EPERM);
	assert_non_null(strstr(why, "change the interval"));
	/* Only the owner learns how this host holds its domain. */
	assert_int_equal(az(REMUS_HOSTD_PEER_QUERY, "web1", MALLORY, &pr, NULL, why), -EPERM);
	assert_non_null(strstr(why, "ask about"));
}

static void test_no_record_no_owner_ping(void **state)
{
	struct remus_hostd_dstate old = rec("web1", "", REMUS_HOSTD_ROLE_STANDBY);
	char why[512];

	(void)state;
	/* Nothing here by that name or UUID: anyone authenticated may create
	 * (libvirt's own domains are checked when it is created). */
	assert_int_equal(az(REMUS_HOSTD_PEER_CREATE_STANDBY, "web1", MALLORY, NULL, NULL, why), 0);
	assert_int_equal(az(REMUS_HOSTD_PEER_DESTROY_STANDBY, "web1", MALLORY, NULL, NULL, why), 0);
	assert_int_equal(az(REMUS_HOSTD_PEER_FAILOVER, "web1", "", NULL, NULL, why), 0);
	/* A record from before owners (or --insecure) binds nobody. */
	assert_int_equal(az(REMUS_HOSTD_PEER_FAILOVER, "web1", MALLORY, &old, NULL, why), 0);
	assert_int_equal(az(REMUS_HOSTD_PEER_CREATE_STANDBY, "web1", "", &old, &old, why), 0);
	/* A ping is always fine. */
	assert_int_equal(remus_hostd_authorise(REMUS_HOSTD_PEER_PING, "", "", "", NULL, NULL, why,
					       sizeof(why)), 0);
}

static void test_uuid_under_another_name(void **state)
{
	struct remus_hostd_dstate web1 = rec("web1", ALICE, REMUS_HOSTD_ROLE_STANDBY);
	struct remus_hostd_dstate open = rec("web1", "", REMUS_HOSTD_ROLE_PRIMARY);
	char why[512];

	(void)state;
	/* Even its owner may not give web1's UUID to web9, nor may anyone
	 * take the UUID of an ownerless record. */
	assert_int_equal(az(REMUS_HOSTD_PEER_CREATE_STANDBY, "web9", ALICE, NULL, &web1, why),
			 -EPERM);
	assert_non_null(strstr(why, "UUID " UUID1 " is domain web1's"));
	assert_non_null(strstr(why, "web9"));
	assert_int_equal(az(REMUS_HOSTD_PEER_CREATE_STANDBY, "web9", MALLORY, NULL, &open, why),
			 -EPERM);
	/* Only create-standby names a UUID. */
	assert_int_equal(az(REMUS_HOSTD_PEER_FAILOVER, "web9", MALLORY, NULL, &web1, why), 0);
	/* A small @why is cut, not overrun. */
	assert_int_equal(remus_hostd_authorise(REMUS_HOSTD_PEER_FAILOVER, "web1", UUID1, MALLORY,
					       &web1, NULL, why, 8), -EPERM);
	assert_int_equal(strlen(why), 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_owner_and_others),
		cmocka_unit_test(test_no_record_no_owner_ping),
		cmocka_unit_test(test_uuid_under_another_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
