// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * `remusd serve`: the settings (config.c), a loop, SIGTERM/SIGINT read
 * from a signalfd, the libvirt operations, the host daemon (hostd.c).
 * libvirt is reached through hostd/virtops_libvirt.c (connect = URI).
 * SIGTERM is the clean stop: the children are told to stop (a primary
 * resumes its guest and releases held output) while the QMP proxies stay
 * up, for at most 10 s; the records stay, so the next start resumes.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/loop.h"
#include "hostd/hostd.h"
#include "hostd/virtops_libvirt.h"

#define LOG "serve"
#define STOP_MS 10000

struct serve {
	struct remus_loop *loop;
	struct remus_hostd *h;
	int sigfd;
	bool stopping;
};

static void on_stopped(void *opaque)
{
	struct serve *s = opaque;

	remus_loop_stop(s->loop, 0);
}

static void on_signal(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct serve *s = opaque;
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (s->stopping) {
		remus_warn(LOG, "signal %u again: stopping now", si.ssi_signo);
		remus_loop_stop(loop, 0);
		return;
	}
	remus_info(LOG, "signal %u: stopping the children, then remusd serve", si.ssi_signo);
	s->stopping = true;
	remus_hostd_stop(s->h, STOP_MS, on_stopped, s);
}

int remus_hostd_serve_main(int argc, char *const *argv)
{
	struct remus_hostd_config cfg;
	struct serve s = { .sigfd = -1 };
	const struct remus_hostd_virt_ops *ops = NULL;
	void *impl = NULL;
	char err[1024];
	bool help;
	sigset_t mask;
	int rc;

	remus_hostd_config_init(&cfg);
	if (remus_hostd_config_from_args(&cfg, argc, argv, &help, err, sizeof(err)) < 0) {
		fprintf(stderr, "remusd serve: %s\n", err);
		return 2;
	}
	if (help) {
		remus_hostd_config_usage(stdout);
		return 0;
	}
	if (cfg.log_level_given)
		remus_log_set_level((enum remus_log_level)cfg.log_level);
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR || sigemptyset(&mask) < 0 ||
	    sigaddset(&mask, SIGTERM) < 0 || sigaddset(&mask, SIGINT) < 0 ||
	    sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
		remus_err(LOG, "cannot set up the signals: %s", strerror(errno));
		return 1;
	}
	s.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s.sigfd < 0) {
		remus_err(LOG, "cannot create a signalfd: %s", strerror(errno));
		return 1;
	}
	rc = remus_loop_new(&s.loop);
	if (rc < 0) {
		remus_err(LOG, "cannot create the event loop: %s", strerror(-rc));
		goto out;
	}
	rc = remus_loop_add_fd(s.loop, s.sigfd, REMUS_EV_READ, on_signal, &s);
	if (rc < 0)
		goto out;
	rc = remus_hostd_virt_libvirt_new(s.loop, cfg.connect,
					  (uint64_t)cfg.copy_rate_kib * 1024, &ops, &impl);
	if (rc < 0) {
		remus_err(LOG, "cannot start the libvirt connection to %s: %s", cfg.connect,
			  strerror(-rc));
		goto out;
	}
	rc = remus_hostd_new(s.loop, &cfg, ops, impl, &s.h);
	if (rc < 0)
		goto out;
	rc = remus_loop_run(s.loop);
out:
	remus_hostd_free(s.h);
	remus_loop_free(s.loop);
	close(s.sigfd);
	return rc < 0 ? 1 : 0;
}
