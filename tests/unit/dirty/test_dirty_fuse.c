// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The FUSE backend on a real mount: does the tracker report the pages a
 * process wrote through a shared mapping, all of them, in every epoch, and
 * does a page written while a collect runs survive?
 *
 * Needs root and /dev/fuse (else exit 77, skipped).  The process first
 * enters a private mount namespace, so its mounts vanish with it even if
 * it crashes; each test also closes (unmounts) its tracker.
 *
 * The writers and the two checks are ram_writer.h's (shared with the
 * RAMFS tests).  The parent itself never maps or opens the file: a
 * process that serves a FUSE mount and dies with a file of it open or
 * mapped can wait in its own exit forever.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dirty/dirty.h"
#include "ram_writer.h"

static char mnt[64];

static struct remus_dirty *open_fuse(void)
{
	struct remus_dirty_opts o = { .kind = REMUS_DIRTY_FUSE,
				      .size = (uint64_t)RAM_PAGES * RW_PAGE,
				      .ram_fd = -1,
				      .mount_dir = mnt,
				      .raise_bdi_limits = true };
	struct remus_dirty *d = NULL;

	assert_int_equal(remus_dirty_open(&o, &d), 0);
	return d;
}

static void test_fuse_reports_exactly_the_written_pages(void **state)
{
	struct remus_dirty *d = open_fuse();
	struct ram_writer w;

	ram_writer_start(remus_dirty_ram_path(d), false, &w);
	ram_check_exact_epochs(d, &w, "fuse");
	ram_writer_stop(&w);
	remus_dirty_close(d);
}

static void test_fuse_loses_no_page_written_during_collect(void **state)
{
	struct remus_dirty *d = open_fuse();

	ram_check_no_page_lost_in_race(d, remus_dirty_ram_path(d), "fuse");
	remus_dirty_close(d);
}

static void test_fuse_close_unmounts(void **state)
{
	struct remus_dirty *d = open_fuse();
	struct stat a, b;

	assert_int_equal(stat(mnt, &a), 0);
	remus_dirty_close(d);
	assert_int_equal(stat(mnt, &b), 0);
	assert_true(a.st_dev != b.st_dev); /* the mount is gone */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuse_reports_exactly_the_written_pages),
		cmocka_unit_test(test_fuse_loses_no_page_written_during_collect),
		cmocka_unit_test(test_fuse_close_unmounts),
	};
	int rc;

	rc = ram_test_main_setup(mnt, sizeof(mnt), "/tmp/remus-dirty-XXXXXX");
	if (rc)
		return rc;
	{
		/* A container may have /dev/fuse but forbid the mount. */
		struct remus_dirty_opts o = { .kind = REMUS_DIRTY_FUSE,
					      .size = 4096, .ram_fd = -1,
					      .mount_dir = mnt };
		struct remus_dirty *probe;
		int r = remus_dirty_open(&o, &probe);

		if (r == -EPERM || r == -EACCES || r == -ENODEV) {
			printf("SKIP: cannot mount FUSE here: %s\n",
			       strerror(-r));
			rmdir(mnt);
			return 77;
		}
		remus_dirty_close(probe);
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	umount2(mnt, MNT_DETACH); /* only if a failed test left it */
	rmdir(mnt);
	return rc;
}
