/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the real-mount tests of dirty/ share (test_dirty_fuse.c for the
 * FUSE kind, test_dirty_ramfs.c for `remusd ramfs` and the RAMFS kind):
 * writer processes that map a guest RAM file the way QEMU does
 * (MAP_SHARED, read-write) and write pages chosen by a seed the parent
 * knows, copying what they see into @ram_mirror for the parent to compare
 * with; and the two exactness checks run on a tracker.
 *
 * cmocka assertions: call these from a test.
 */
#ifndef REMUS_TESTS_DIRTY_RAM_WRITER_H
#define REMUS_TESTS_DIRTY_RAM_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "dirty/dirty.h"

#define RW_PAGE 4096u
#define RAM_PAGES 16384u /* 64 MiB */

/* RAM_PAGES * RW_PAGE, MAP_SHARED: the writer's view.  ram_writer_setup()
 * maps it; 0 or -1. */
extern uint8_t *ram_mirror;
int ram_writer_setup(void);
/* A real-mount test's main() before its tests: skip without root and
 * /dev/fuse or a private mount namespace (entered here), then
 * ram_writer_setup() and a new directory from @template ("...XXXXXX")
 * in @dir (@len bytes).  Returns 0, 77 (skip) or 1, the reason printed. */
int ram_test_main_setup(char *dir, size_t len, const char *template);

/*
 * A writer that stays alive between epochs, as QEMU does: had it exited,
 * the release of its file would have written its pages back by itself
 * (FUSE does that in writeback-cache mode) and a tracker that never
 * flushed would pass.  It reads a seed, writes that epoch's pages, and
 * answers; seed 0 ends it.
 */
struct ram_writer {
	pid_t pid;
	int cmd, ack;
};
/* Forks the writer on @path; with @create it first creates the file (its
 * directory must exist) and sizes it to RAM_PAGES pages, as QEMU does.
 * Returns once the file is mapped. */
void ram_writer_start(const char *path, bool create, struct ram_writer *w);
void ram_writer_epoch(struct ram_writer *w, uint64_t seed);
void ram_writer_stop(struct ram_writer *w);

/* 12 epochs of random page sets written by @w: every collect of @d must
 * report exactly the pages written (0 missed, 0 over-reported) and the
 * copy must hold them as written.  Starts with an empty epoch (the writer
 * mapped the file, wrote nothing).  @label goes in the printed figures. */
void ram_check_exact_epochs(struct remus_dirty *d, struct ram_writer *w,
			    const char *label);
/* The race: a writer forked on @path stamps random pages without pause
 * while collects of @d run back to back for 2 s, each reported page copied
 * from the tracker's copy into a shadow; after the writer stopped and one
 * more collect, the shadow must equal the RAM in every page. */
void ram_check_no_page_lost_in_race(struct remus_dirty *d, const char *path,
				    const char *label);

#endif
