// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The standby's RAM-file flusher (ramflush.h says why).  One thread per
 * standby: wait @every_ms on a condition variable (CLOCK_MONOTONIC),
 * fdatasync, publish the figures under the mutex.  The mutex is never
 * held across fdatasync, so the loop's stats and stop never wait on one.
 */
#include "failover/ramflush.h"

#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG "standby"

struct remus_ramflush {
	int fd;
	char *path;
	unsigned every_ms;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	bool logged;        /* the first error was logged */
	struct remus_ramflush_stats st;
};

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void *flusher(void *arg)
{
	struct remus_ramflush *f = arg;
	struct timespec until;
	double t0, ms;
	int r;

	pthread_mutex_lock(&f->mu);
	while (!f->stop) {
		pthread_mutex_unlock(&f->mu);
		t0 = now_ms();
		r = fdatasync(f->fd) < 0 ? -errno : 0;
		ms = now_ms() - t0;
		pthread_mutex_lock(&f->mu);
		f->st.last_ms = ms;
		if (ms > f->st.max_ms)
			f->st.max_ms = ms;
		f->st.last_err = r;
		if (r == 0) {
			f->st.flushes++;
		} else {
			f->st.errors++;
			if (!f->logged) {
				f->logged = true;
				remus_warn(LOG, "cannot flush the standby QEMU's RAM file %s: %s; "
					   "a takeover will write its dirty pages back first "
					   "(slower failover); check the file system under it "
					   "(remusd ramfs running?)", f->path, strerror(-r));
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += f->every_ms / 1000;
		until.tv_nsec += (long)(f->every_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!f->stop &&
		       pthread_cond_timedwait(&f->cv, &f->mu, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

int remus_ramflush_start(const char *path, unsigned every_ms, struct remus_ramflush **out)
{
	struct remus_ramflush *f = NULL;
	pthread_condattr_t ca;
	bool sync_init = false;
	int rc;

	f = calloc(1, sizeof(*f));
	if (!f) {
		rc = -ENOMEM;
		goto out;
	}
	f->fd = -1;
	f->every_ms = every_ms ? every_ms : REMUS_RAMFLUSH_EVERY_MS;
	f->path = strdup(path);
	if (!f->path) {
		rc = -ENOMEM;
		goto out;
	}
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0) {
		rc = -errno;
		goto out;
	}
	pthread_mutex_init(&f->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cv, &ca);
	pthread_condattr_destroy(&ca);
	sync_init = true;
	f->st.running = 1;
	rc = -pthread_create(&f->th, NULL, flusher, f);
	if (rc < 0)
		goto out;
	*out = f;
	f = NULL;
	rc = 0;
out:
	if (f) {
		if (sync_init) {
			pthread_cond_destroy(&f->cv);
			pthread_mutex_destroy(&f->mu);
		}
		if (f->fd >= 0)
			close(f->fd);
		free(f->path);
		free(f);
	}
	return rc;
}

void remus_ramflush_stop(struct remus_ramflush *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->stop = true;
	f->st.running = 0;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

void remus_ramflush_free(struct remus_ramflush *f)
{
	if (!f)
		return;
	remus_ramflush_stop(f);
	pthread_join(f->th, NULL);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	close(f->fd);
	free(f->path);
	free(f);
}

void remus_ramflush_stats(struct remus_ramflush *f, struct remus_ramflush_stats *st)
{
	pthread_mutex_lock(&f->mu);
	*st = f->st;
	pthread_mutex_unlock(&f->mu);
}

const char *remus_ramflush_path(const struct remus_ramflush *f)
{
	return f->path;
}
