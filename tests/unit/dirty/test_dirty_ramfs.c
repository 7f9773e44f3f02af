// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * `remusd ramfs` on a real mount and the RAMFS tracker attached to it: the
 * server (remus_ramfs_serve(), what `remusd ramfs` runs) in a forked child
 * on MNT with its control socket in a temporary directory; writers create
 * MNT/N-dom/pc.ram the way QEMU does under libvirt (the directory made
 * first, as libvirt does) and write through a shared mapping; the tracker
 * attaches by path.  Does it report exactly the written pages, lose none
 * in a race, refuse a second tracker and foreign files, and does the
 * server refuse to stop while a file exists?
 *
 * Needs root and /dev/fuse (else exit 77, skipped).  The process enters a
 * private mount namespace first, so the mount dies with it; the server
 * child dies with the parent (PR_SET_PDEATHSIG).  This process holds no
 * /dev/fuse fd, so it may open files of the mount itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "dirty/dirty.h"
#include "dirty/ramfs.h"
#include "ram_writer.h"

#define FUSE_MAGIC 0x65735546

static char top[64], mnt[96], sock[96];
static pid_t server = -1;

static pid_t server_start_on(const char *dir)
{
	pid_t pid = fork();

	if (pid == 0) {
		/* allow_other, as remus-ramfs.service runs it for libvirt's
		 * qemu user. */
		struct remus_ramfs_opts o = { dir, sock, true };

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(remus_ramfs_serve(&o) < 0 ? 1 : 0);
	}
	return pid;
}

static pid_t server_start(void)
{
	return server_start_on(mnt);
}

/* Until the control socket answers, or the server exited (-1). */
static int server_wait(pid_t pid)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int i, st;

	strcpy(a.sun_path, sock);
	for (i = 0; i < 500; i++) {
		int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		int r = connect(fd, (struct sockaddr *)&a, sizeof(a));

		close(fd);
		if (r == 0)
			return 0;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return -1;
		usleep(10000);
	}
	return -1;
}

static bool mounted(void)
{
	struct statfs sf;

	return statfs(mnt, &sf) == 0 && sf.f_type == FUSE_MAGIC;
}

static int open_ramfs(const char *path, uint64_t size, struct remus_dirty **d)
{
	struct remus_dirty_opts o = { .kind = REMUS_DIRTY_RAMFS,
				      .size = size,
				      .ram_fd = -1,
				      .ram_path = path,
				      .ramfs_socket = sock };

	*d = NULL;
	return remus_dirty_open(&o, d);
}

static void dom_path(char *buf, size_t cap, const char *dom)
{
	char dir[160];

	snprintf(dir, sizeof(dir), "%s/%s", mnt, dom);
	assert_int_equal(mkdir(dir, 0755), 0); /* as libvirt does */
	snprintf(buf, cap, "%s/pc.ram", dir);
}

static void test_ramfs_reports_exactly_the_written_pages(void **state)
{
	struct remus_dirty *d, *again;
	struct remus_dirty_set set;
	struct remus_dirty_stats st;
	struct ram_writer w;
	char path[200];
	uint64_t p, differ = 0;

	dom_path(path, sizeof(path), "1-dom");
	ram_writer_start(path, true, &w);
	assert_int_equal(open_ramfs(path, 0, &d), 0);
	assert_int_equal(remus_dirty_kind(d), REMUS_DIRTY_RAMFS);
	assert_string_equal(remus_dirty_kind_name(REMUS_DIRTY_RAMFS), "ramfs");
	assert_int_equal(remus_dirty_npages(d), RAM_PAGES);
	assert_string_equal(remus_dirty_ram_path(d), path);
	ram_check_exact_epochs(d, &w, "ramfs");
	/* Writer stopped (between epochs): after a collect the server's
	 * copy is the writer's memory, every page. */
	ram_writer_epoch(&w, 77);
	assert_int_equal(remus_dirty_set_init(&set, RAM_PAGES), 0);
	assert_int_equal(remus_dirty_collect(d, &set), 0);
	assert_true(set.ndirty > 0);
	for (p = 0; p < RAM_PAGES; p++)
		differ += memcmp(remus_dirty_ram(d) + p * RW_PAGE,
				 ram_mirror + p * RW_PAGE, RW_PAGE) != 0;
	assert_int_equal(differ, 0);
	remus_dirty_get_stats(d, &st);
	assert_int_equal(st.collects, 15);
	/* One tracker per file; the next one after it is closed. */
	assert_int_equal(open_ramfs(path, 0, &again), -EBUSY);
	assert_null(again);
	remus_dirty_close(d);
	assert_int_equal(open_ramfs(path, (uint64_t)RAM_PAGES * RW_PAGE, &d), 0);
	/* The first epoch starts at open: nothing written since. */
	assert_int_equal(remus_dirty_collect(d, &set), 0);
	assert_int_equal(set.ndirty, 0);
	ram_writer_epoch(&w, 5);
	assert_int_equal(remus_dirty_collect(d, &set), 0);
	assert_true(set.ndirty > 0);
	remus_dirty_close(d);
	ram_writer_stop(&w);
	remus_dirty_set_release(&set);
}

static void test_ramfs_loses_no_page_written_during_collect(void **state)
{
	struct remus_dirty *d;
	char path[200];
	int fd;

	dom_path(path, sizeof(path), "2-dom");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)RAM_PAGES * RW_PAGE), 0);
	close(fd);
	assert_int_equal(open_ramfs(path, 0, &d), 0);
	ram_check_no_page_lost_in_race(d, path, "ramfs");
	remus_dirty_close(d);
}

static void test_ramfs_refuses_what_it_does_not_serve(void **state)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct remus_dirty *d;
	char path[200], other[200], dead[200];
	int fd;

	dom_path(path, sizeof(path), "3-dom");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 64 * RW_PAGE), 0);
	close(fd);
	/* Not on FUSE at all. */
	snprintf(other, sizeof(other), "%s/plain.ram", top);
	fd = open(other, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 64 * RW_PAGE), 0);
	close(fd);
	assert_int_equal(open_ramfs(other, 0, &d), -EXDEV);
	assert_null(d);
	/* No such file; a directory; a size that is not the file's. */
	snprintf(other, sizeof(other), "%s/3-dom/none.ram", mnt);
	assert_int_equal(open_ramfs(other, 0, &d), -ENOENT);
	snprintf(other, sizeof(other), "%s/3-dom", mnt);
	assert_int_equal(open_ramfs(other, 0, &d), -EISDIR);
	assert_int_equal(open_ramfs(path, 65 * RW_PAGE, &d), -EINVAL);
	/* No server: no socket, or a socket nobody listens on. */
	snprintf(dead, sizeof(dead), "%s/dead.sock", top);
	{
		struct remus_dirty_opts o = { .kind = REMUS_DIRTY_RAMFS,
					      .ram_fd = -1, .ram_path = path,
					      .ramfs_socket = dead };

		assert_int_equal(remus_dirty_open(&o, &d), -ENOENT);
		strcpy(a.sun_path, dead);
		fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
		assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
		close(fd);
		assert_int_equal(remus_dirty_open(&o, &d), -ECONNREFUSED);
		unlink(dead);
		o.ram_path = NULL;
		assert_int_equal(remus_dirty_open(&o, &d), -EINVAL);
	}
	/* The size stays while a tracker is attached; before and after it
	 * may change. */
	assert_int_equal(open_ramfs(path, 0, &d), 0);
	assert_int_equal(truncate(path, 128 * RW_PAGE), -1);
	assert_int_equal(errno, EBUSY);
	remus_dirty_close(d);
	assert_int_equal(truncate(path, 128 * RW_PAGE), 0);
	assert_int_equal(open_ramfs(path, 128 * RW_PAGE, &d), 0);
	remus_dirty_close(d);
}

/*
 * A server that takes the connection (or not even that: its backlog is
 * full) and never answers: the open gives up with -ETIMEDOUT after
 * REMUS_RAMFS_CALL_TIMEOUT_MS, so the engine's loop that waits for it
 * goes on (with engine v1).  The open runs in a child, so that a hang
 * fails the test instead of stopping it.
 */
static void test_ramfs_open_gives_up_on_a_stuck_server(void **state)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char path[200];
	int lfd, queued = -1, fd;

	dom_path(path, sizeof(path), "9-stuck");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 64 * RW_PAGE), 0);
	close(fd);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/stuck.sock", top);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 0), 0);
	/* First the request is taken and never answered, then (one
	 * connection queued, backlog 0) connect itself waits. */
	for (int round = 0; round < 2; round++) {
		struct timespec t0, t1;
		double secs;
		pid_t pid;
		int st = -1;

		if (round == 1) {
			/* Round 0's connection may hold the one place already. */
			queued = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (connect(queued, (struct sockaddr *)&a, sizeof(a)) < 0)
				assert_int_equal(errno, EAGAIN);
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct remus_dirty_opts o = { .kind = REMUS_DIRTY_RAMFS, .ram_fd = -1,
						      .ram_path = path,
						      .ramfs_socket = a.sun_path };
			struct remus_dirty *d = NULL;
			int rc = remus_dirty_open(&o, &d);

			_exit(rc == -ETIMEDOUT ? 0 : rc < 0 ? (-rc & 0x7f) : 100);
		}
		do {
			if (waitpid(pid, &st, WNOHANG) == pid)
				break;
			usleep(10000);
			clock_gettime(CLOCK_MONOTONIC, &t1);
		} while (t1.tv_sec - t0.tv_sec < 6);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		if (st == -1) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			fail_msg("round %d: the open still waits after %.1f s", round, secs);
		}
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("round %d: the open returned %d (exit %d), not -ETIMEDOUT", round,
				 -WEXITSTATUS(st), WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		assert_true(secs >= REMUS_RAMFS_CALL_TIMEOUT_MS / 1000.0 - 0.1);
		assert_true(secs < REMUS_RAMFS_CALL_TIMEOUT_MS / 1000.0 + 2);
	}
	close(queued);
	close(lfd);
	unlink(a.sun_path);
	/* The last test stops the server, which needs its mount empty. */
	assert_int_equal(unlink(path), 0);
	*strrchr(path, '/') = '\0';
	assert_int_equal(rmdir(path), 0);
}

/*
 * libvirt's qemu user (here nobody): with allow_other it reaches the
 * mount, and the kernel checks the modes we report (default_permissions):
 * it may not create in the root (root's, 0755) but may create, size, map
 * and write its RAM file in the directory libvirt chowned to it.
 */
static void test_ramfs_lets_qemu_in_where_libvirt_chowned(void **state)
{
	char dir[200], path[300];
	pid_t pid;
	int st;

	snprintf(dir, sizeof(dir), "%s/4-dom", mnt);
	snprintf(path, sizeof(path), "%s/pc.ram", dir);
	assert_int_equal(mkdir(dir, 0750), 0);
	assert_int_equal(chown(dir, 65534, 65534), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char other[200];
		uint8_t *m;
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 ||
		    setuid(65534) < 0)
			_exit(10);
		snprintf(other, sizeof(other), "%s/5-dom", mnt);
		if (mkdir(other, 0755) == 0 || errno != EACCES)
			_exit(11);
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			_exit(12);
		if (ftruncate(fd, 16 * RW_PAGE) < 0)
			_exit(13);
		m = mmap(NULL, 16 * RW_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
			 fd, 0);
		if (m == MAP_FAILED)
			_exit(14);
		m[3 * RW_PAGE] = 1;
		if (msync(m, 16 * RW_PAGE, MS_SYNC) < 0)
			_exit(15);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	{
		struct stat sb;

		assert_int_equal(stat(path, &sb), 0);
		assert_int_equal(sb.st_uid, 65534);
		assert_int_equal(sb.st_mode, S_IFREG | 0600);
	}
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* Another unit's cleanup removed /run/remus: the server listens again. */
static void test_ramfs_listens_again_when_its_socket_is_removed(void **state)
{
	struct remus_dirty *d;
	char path[200];
	int i;

	snprintf(path, sizeof(path), "%s/3-dom/pc.ram", mnt);
	assert_int_equal(unlink(sock), 0);
	assert_int_equal(open_ramfs(path, 0, &d), -ENOENT);
	for (i = 0; i < 300 && access(sock, F_OK) != 0; i++)
		usleep(10000);
	assert_int_equal(open_ramfs(path, 0, &d), 0);
	remus_dirty_close(d);
}

/* SIGTERM until the server is gone or @tries are used up; its status. */
static int term_server(int tries)
{
	int st, i, j;

	for (i = 0; i < tries; i++) {
		kill(server, SIGTERM);
		for (j = 0; j < 20; j++) {
			if (waitpid(server, &st, WNOHANG) == server)
				return st;
			usleep(10000);
		}
	}
	return -1;
}

static void rm_dom(const char *dom)
{
	char p[200];

	snprintf(p, sizeof(p), "%s/%s/pc.ram", mnt, dom);
	unlink(p);
	snprintf(p, sizeof(p), "%s/%s", mnt, dom);
	assert_int_equal(rmdir(p), 0);
}

/* Last: it stops the server. */
static void test_ramfs_stops_only_without_files(void **state)
{
	char other[200];
	pid_t second;
	int st;

	/* A second server on the same mount or socket refuses. */
	second = server_start();
	assert_true(second > 0);
	assert_int_equal(waitpid(second, &st, 0), second);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	snprintf(other, sizeof(other), "%s/mnt2", top);
	assert_int_equal(mkdir(other, 0755), 0);
	second = server_start_on(other); /* an empty directory, our socket */
	assert_true(second > 0);
	assert_int_equal(waitpid(second, &st, 0), second);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	assert_int_equal(rmdir(other), 0); /* nothing was mounted on it */
	assert_int_equal(access(sock, F_OK), 0); /* the first's, still */
	assert_true(mounted());
	/* Files left by the tests before: SIGTERM changes nothing. */
	assert_int_equal(term_server(2), -1);
	assert_true(mounted());
	rm_dom("1-dom");
	rm_dom("2-dom");
	rm_dom("3-dom");
	st = term_server(10);
	assert_true(st != -1);
	server = -1;
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_false(mounted());
	assert_int_equal(access(sock, F_OK), -1); /* it removed its socket */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ramfs_reports_exactly_the_written_pages),
		cmocka_unit_test(test_ramfs_loses_no_page_written_during_collect),
		cmocka_unit_test(test_ramfs_refuses_what_it_does_not_serve),
		cmocka_unit_test(test_ramfs_open_gives_up_on_a_stuck_server),
		cmocka_unit_test(test_ramfs_listens_again_when_its_socket_is_removed),
		cmocka_unit_test(test_ramfs_lets_qemu_in_where_libvirt_chowned),
		cmocka_unit_test(test_ramfs_stops_only_without_files),
	};
	int rc;

	rc = ram_test_main_setup(top, sizeof(top), "/tmp/remus-ramfs-XXXXXX");
	if (rc)
		return rc;
	/* Traversable, as /var/lib/libvirt/qemu is for libvirt's qemu. */
	if (chmod(top, 0711) < 0) {
		perror("chmod");
		return 1;
	}
	snprintf(mnt, sizeof(mnt), "%s/mnt", top);
	snprintf(sock, sizeof(sock), "%s/ramfs.sock", top);
	if (mkdir(mnt, 0755) < 0) {
		perror("mkdir");
		return 1;
	}
	/* The server logs to our stderr; quiet unless asked. */
	if (!getenv("REMUS_LOG"))
		remus_log_set_level(REMUS_LOG_WARN);
	server = server_start();
	if (server < 0 || server_wait(server) < 0) {
		/* A container may have /dev/fuse but forbid the mount. */
		printf("SKIP: remusd ramfs could not start here (see its log "
		       "above)\n");
		rmdir(mnt);
		rmdir(top);
		return 77;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	if (server > 0) {
		kill(server, SIGKILL);
		waitpid(server, NULL, 0);
	}
	umount2(mnt, MNT_DETACH); /* only if a failed test left it */
	{
		char p[200];

		snprintf(p, sizeof(p), "%s/plain.ram", top);
		unlink(p);
		unlink(sock);
	}
	rmdir(mnt);
	rmdir(top);
	return rc;
}
