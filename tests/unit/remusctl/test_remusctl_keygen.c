// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * `remusctl keygen FILE`, the user-facing way to make the pre-shared key
 * of a pair of hosts (issue 12).  Checked: its command line (FILE
 * required, one only, options for remusd refused, --help); a real run,
 * in-process through remusctl_main with no remusd anywhere, writes a
 * file of mode 0600 (whatever the umask) that the tls module's loader
 * takes for both roles (the loader remusd uses for --tls-psk and
 * tls_psk); two runs give different keys; an existing file, or a
 * symlink, is refused and left byte for byte and mode for mode as it
 * was; a missing directory and a directory the user may not write give
 * exit status 1 with the path and the fix in the message.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "remusctl/cli.h"
#include "tls/tls.h"

static char dir[64];

struct run {
	char *out, *err;
	int rc;
};

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* Runs remusctl with @argv (NULL-terminated, without argv[0]); the
 * control socket is one that does not exist: keygen must not need it. */
static struct run run_argv(char **argv)
{
	struct remusctl_io io = { .env_ctl = "/nonexistent/remusd.sock" };
	struct run r = { 0 };
	size_t ol = 0, el = 0;
	char *args[16] = { "remusctl" };
	int argc = 1;

	while (argv[argc - 1]) {
		assert_true(argc < 15);
		args[argc] = argv[argc - 1];
		argc++;
	}
	io.out = open_memstream(&r.out, &ol);
	io.err = open_memstream(&r.err, &el);
	r.rc = remusctl_main(argc, args, &io);
	fclose(io.out);
	fclose(io.err);
	return r;
}

#define RUN(...) run_argv((char *[]){ __VA_ARGS__, NULL })

static void assert_contains(const char *text, const char *needle)
{
	if (!strstr(text, needle))
		fail_msg("'%s' not in:\n%s", needle, text);
}

static int setup(void **state)
{
	strcpy(dir, "/tmp/remusctl-keygen-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static size_t slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, len);
	close(fd);
	assert_true(n >= 0);
	return (size_t)n;
}

static void test_parse(void **state)
{
	struct remusctl_args a;

	assert_int_equal(remusctl_args_parse(&a, 3, (char *[]){ "remusctl", "keygen",
								"/etc/remus/a-b.psk" }), 0);
	assert_int_equal(a.cmd, REMUSCTL_KEYGEN);
	assert_string_equal(a.key_file, "/etc/remus/a-b.psk");
	assert_string_equal(remusctl_cmd_name(REMUSCTL_KEYGEN), "keygen");
	/* A file whose name starts with '-', after --. */
	assert_int_equal(remusctl_args_parse(&a, 4, (char *[]){ "remusctl", "keygen", "--",
								"-k.psk" }), 0);
	assert_string_equal(a.key_file, "-k.psk");
	assert_int_equal(remusctl_args_parse(&a, 2, (char *[]){ "remusctl", "keygen" }),
			 -EINVAL);
	assert_contains(a.error, "keygen: missing FILE");
	assert_int_equal(remusctl_args_parse(&a, 4, (char *[]){ "remusctl", "keygen", "a",
								"b" }), -EINVAL);
	assert_contains(a.error, "keygen: unexpected argument 'b'");
	assert_int_equal(remusctl_args_parse(&a, 3, (char *[]){ "remusctl", "keygen", "" }),
			 -EINVAL);
	assert_contains(a.error, "keygen: the FILE name is empty");
	assert_int_equal(remusctl_args_parse(&a, 5, (char *[]){ "remusctl", "--socket", "/s",
								"keygen", "k" }), -EINVAL);
	assert_contains(a.error, "without remusd");
	assert_int_equal(remusctl_args_parse(&a, 4, (char *[]){ "remusctl", "keygen", "k",
								"--json" }), -EINVAL);
	assert_contains(a.error, "--json is not an option of keygen");
	assert_int_equal(remusctl_args_parse(&a, 3, (char *[]){ "remusctl", "keygen",
								"--help" }), 0);
	assert_int_equal(a.cmd, REMUSCTL_HELP);
	assert_int_equal(a.help_cmd, REMUSCTL_KEYGEN);
	assert_int_equal(remusctl_args_parse(&a, 3, (char *[]){ "remusctl", "help",
								"keygen" }), 0);
	assert_int_equal(a.help_cmd, REMUSCTL_KEYGEN);
}

static void test_usage_errors(void **state)
{
	struct run r = RUN("keygen");

	assert_int_equal(r.rc, REMUSCTL_EXIT_USAGE);
	assert_string_equal(r.out, "");
	assert_contains(r.err, "remusctl: keygen: missing FILE, where the new pre-shared key "
			       "goes (e.g. remusctl keygen /etc/remus/hostA-hostB.psk)\n"
			       "usage:\n  remusctl keygen FILE\n");
	run_free(&r);
	r = RUN("keygen", "a.psk", "b.psk");
	assert_int_equal(r.rc, REMUSCTL_EXIT_USAGE);
	assert_contains(r.err, "unexpected argument 'b.psk'");
	run_free(&r);
	r = RUN("keygen", "--help");
	assert_int_equal(r.rc, REMUSCTL_EXIT_OK);
	assert_contains(r.out, "usage:\n  remusctl keygen FILE\n");
	assert_contains(r.out, "0600");
	run_free(&r);
	/* The usage of every command lists it. */
	r = RUN("--help");
	assert_int_equal(r.rc, REMUSCTL_EXIT_OK);
	assert_contains(r.out, "  remusctl keygen FILE\n");
	run_free(&r);
}

/* The tls module loads @path for both roles, as remusd does. */
static void assert_loads(const char *path)
{
	struct remus_tls_config cfg = { .psk_file = path };
	struct remus_tls_creds *c = NULL;
	char err[512];

	if (remus_tls_creds_new(&cfg, REMUS_TLS_SERVER, &c, err, sizeof(err)) < 0)
		fail_msg("the server cannot load %s: %s", path, err);
	remus_tls_creds_free(c);
	c = NULL;
	if (remus_tls_creds_new(&cfg, REMUS_TLS_CLIENT, &c, err, sizeof(err)) < 0)
		fail_msg("the client cannot load %s: %s", path, err);
	assert_contains(remus_tls_creds_describe(c), "identity remus");
	remus_tls_creds_free(c);
}

static void test_writes_a_key(void **state)
{
	char p[128], q[128], a[256], b[256], id[64], want[256];
	uint8_t key[64];
	size_t na, nb, keylen;
	struct stat st;
	struct run r;
	mode_t old;

	snprintf(p, sizeof(p), "%s/a-b.psk", dir);
	snprintf(q, sizeof(q), "%s/a-c.psk", dir);
	/* A umask that would let everyone read: the file is 0600 anyway. */
	old = umask(0);
	r = RUN("keygen", p);
	umask(old);
	assert_int_equal(r.rc, REMUSCTL_EXIT_OK);
	assert_string_equal(r.err, "");
	snprintf(want, sizeof(want), "wrote a new pre-shared key to %s (mode 0600)\n", p);
	assert_contains(r.out, want);
	snprintf(want, sizeof(want), "  tls_psk = %s\n", p);
	assert_contains(r.out, want);
	run_free(&r);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, geteuid());
	na = slurp(p, a, sizeof(a));
	assert_int_equal(na, 6 + 64 + 1);
	assert_int_equal(remus_tls_psk_parse(a, na, id, sizeof(id), key, sizeof(key), &keylen),
			 0);
	assert_string_equal(id, "remus");
	assert_int_equal(keylen, 32);
	assert_loads(p);

	/* A second key is another key. */
	r = RUN("keygen", q);
	assert_int_equal(r.rc, REMUSCTL_EXIT_OK);
	run_free(&r);
	nb = slurp(q, b, sizeof(b));
	assert_int_equal(nb, na);
	assert_memory_not_equal(a, b, na);
	assert_loads(q);

	/* A relative FILE works, and the hint gives remusd.conf its
	 * absolute path. */
	{
		char cwd[4096], rel_abs[256];

		assert_non_null(getcwd(cwd, sizeof(cwd)));
		assert_int_equal(chdir(dir), 0);
		r = RUN("keygen", "rel.psk");
		assert_int_equal(chdir(cwd), 0);
		assert_int_equal(r.rc, REMUSCTL_EXIT_OK);
		snprintf(rel_abs, sizeof(rel_abs), "  tls_psk = %s/rel.psk\n", dir);
		/* mkdtemp under /tmp: no symlink in the way of realpath. */
		assert_contains(r.out, rel_abs);
		run_free(&r);
	}
}

static void test_existing_file_kept(void **state)
{
	static const char precious[] = "remus:00112233445566778899aabbccddeeff\n";
	char p[128], l[128], t[128], buf[256];
	struct stat before, after;
	struct run r;
	int fd;

	snprintf(p, sizeof(p), "%s/old.psk", dir);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0640);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, precious, strlen(precious)), (ssize_t)strlen(precious));
	assert_int_equal(fchmod(fd, 0640), 0);
	close(fd);
	assert_int_equal(stat(p, &before), 0);
	r = RUN("keygen", p);
	assert_int_equal(r.rc, REMUSCTL_EXIT_FAILED);
	assert_string_equal(r.out, "");
	assert_contains(r.err, "remusctl keygen: ");
	assert_contains(r.err, p);
	assert_contains(r.err, "exists: refusing to overwrite it");
	assert_contains(r.err, "pick another path, or remove it first");
	run_free(&r);
	assert_int_equal(stat(p, &after), 0);
	assert_int_equal(after.st_ino, before.st_ino);
	assert_int_equal(after.st_mode, before.st_mode);
	assert_int_equal(after.st_size, before.st_size);
	assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	assert_int_equal(slurp(p, buf, sizeof(buf)), strlen(precious));
	assert_memory_equal(buf, precious, strlen(precious));

	/* A symlink, even one to nowhere, is not followed or replaced. */
	snprintf(l, sizeof(l), "%s/link.psk", dir);
	snprintf(t, sizeof(t), "%s/target.psk", dir);
	assert_int_equal(symlink(t, l), 0);
	r = RUN("keygen", l);
	assert_int_equal(r.rc, REMUSCTL_EXIT_FAILED);
	assert_contains(r.err, "exists: refusing to overwrite it");
	run_free(&r);
	assert_int_equal(lstat(t, &after), -1);
	assert_int_equal(lstat(l, &after), 0);
	assert_true(S_ISLNK(after.st_mode));
	/* A directory by that name neither. */
	r = RUN("keygen", dir);
	assert_int_equal(r.rc, REMUSCTL_EXIT_FAILED);
	assert_contains(r.err, "exists: refusing to overwrite it");
	run_free(&r);
}

static void test_missing_directory(void **state)
{
	char p[160], d[100], want[512];
	struct stat st;
	struct run r;

	snprintf(d, sizeof(d), "%s/no/such", dir);
	snprintf(p, sizeof(p), "%s/k.psk", d);
	r = RUN("keygen", p);
	assert_int_equal(r.rc, REMUSCTL_EXIT_FAILED);
	assert_string_equal(r.out, "");
	snprintf(want, sizeof(want), "remusctl keygen: cannot create %s: the directory %s does "
		 "not exist; create it first (install -d -m 0700 %s) or pick another path\n",
		 p, d, d);
	assert_string_equal(r.err, want);
	run_free(&r);
	assert_int_equal(lstat(d, &st), -1);
}

/* A directory the user may not write: as root, in a child that drops to
 * nobody (root may write anywhere); otherwise in a directory made 0500. */
static void test_permission_denied(void **state)
{
	char d[100], p[160];
	int pipefd[2], status;
	pid_t pid;

	snprintf(d, sizeof(d), "%s/ro", dir);
	snprintf(p, sizeof(p), "%s/k.psk", d);
	assert_int_equal(mkdir(d, 0755), 0);
	assert_int_equal(chmod(d, geteuid() == 0 ? 0755 : 0500), 0);
	/* The tmp dir itself must let nobody reach d. */
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct run r;

		close(pipefd[0]);
		if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
			_exit(99);
		r = RUN("keygen", p);
		if (write(pipefd[1], r.err, strlen(r.err)) < 0)
			_exit(98);
		_exit(r.rc);
	}
	close(pipefd[1]);
	{
		char err[1024] = "", want[512];
		ssize_t n = read(pipefd[0], err, sizeof(err) - 1);
		struct stat st;

		close(pipefd[0]);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), REMUSCTL_EXIT_FAILED);
		assert_true(n > 0);
		err[n] = 0;
		snprintf(want, sizeof(want), "remusctl keygen: cannot create %s: Permission "
			 "denied in %s; run as root (or as the directory's owner) or pick a "
			 "directory you may write\n", p, d);
		assert_string_equal(err, want);
		assert_int_equal(lstat(p, &st), -1);
	}
	chmod(d, 0700);
	chmod(dir, 0700);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_writes_a_key),
		cmocka_unit_test(test_existing_file_kept),
		cmocka_unit_test(test_missing_directory),
		cmocka_unit_test(test_permission_denied),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
