// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libvirt_host: plays the libvirt side of a hypervisor host for the virt/
 * integration tests and bench.  It opens a libvirt connection (an embedded
 * root: qemu:///embed?root=DIR) with virt/virt.h, starts a transient
 * domain from an XML file, and serves the domain's QMP proxy
 * (virt/qmp_proxy.h) on a socket, all on one event loop as remusd serve
 * will.  It prints "READY <domain>" on stdout once the proxy serves.  On
 * SIGUSR1 it writes the proxy's counters as one JSON line to --stats and
 * goes on serving; on SIGTERM or SIGINT it writes them and exits 0,
 * leaving the domain running (it outlives us, as domains do; the test
 * stops its QEMU by PID).
 *
 *   libvirt_host --uri URI --xml FILE --qmp SOCKET [--stats FILE]
 *                [--bench N [--direct QMP_SOCKET]]
 *
 * --bench N: once ready, time N query-status round trips through the
 * proxy with qmp/qmp.h (what remusd uses), N through libvirt's
 * passthrough alone (virDomainQemuMonitorCommand on a worker), and, with
 * --direct, N on a QEMU monitor socket; print one JSON line and exit.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libvirt/libvirt-qemu.h>

#include "common/log.h"
#include "common/loop.h"
#include "qmp/qmp.h"
#include "virt/qmp_proxy.h"
#include "virt/virt.h"

#define COMP "libvirt_host"

struct host {
	struct remus_loop *loop;
	struct remus_virt *v;
	struct remus_qmp_proxy *proxy;
	const char *xml_path, *qmp_path, *stats_path, *direct_path;
	char *xml;
	char *name;
	unsigned bench;
	int sfd;
	int rc;
	bool ready;
};

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *s = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (s = malloc((size_t)n + 1))) {
		if (fread(s, 1, (size_t)n, f) != (size_t)n) {
			free(s);
			s = NULL;
		} else {
			s[n] = '\0';
		}
	}
	fclose(f);
	return s;
}

static void write_stats(struct host *h)
{
	struct remus_qmp_proxy_stats st;
	FILE *f;
	double n;

	if (!h->proxy || !h->stats_path)
		return;
	remus_qmp_proxy_get_stats(h->proxy, &st);
	n = st.commands ? (double)st.commands : 1;
	f = fopen(h->stats_path, "w");
	if (!f)
		return;
	fprintf(f, "{\"commands\":%llu,\"local\":%llu,\"events\":%llu,"
		"\"events_dropped\":%llu,\"clients\":%llu,"
		"\"mean_total_us\":%.1f,\"mean_backend_us\":%.1f,\"mean_added_us\":%.1f,"
		"\"max_total_us\":%.1f}\n",
		(unsigned long long)st.commands, (unsigned long long)st.local,
		(unsigned long long)st.events, (unsigned long long)st.events_dropped,
		(unsigned long long)st.clients, st.total_ns / n / 1e3, st.backend_ns / n / 1e3,
		(st.total_ns - st.backend_ns) / n / 1e3, st.max_total_ns / 1e3);
	fclose(f);
}

static void on_signal(struct remus_loop *loop, int fd, unsigned events, void *opaque)
{
	struct host *h = opaque;
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	write_stats(h);
	if (si.ssi_signo == SIGUSR1)
		return;
	remus_info(COMP, "signal %u: leaving", si.ssi_signo);
	remus_loop_stop(loop, 0);
}

/* ---- bench ---------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n ? v[n / 2] : 0;
}

/* N query-status through a QMP socket; returns the median in ms. */
static int time_qmp(struct host *h, const char *path, double *med, double *p99)
{
	struct remus_qmp *q = NULL;
	double *t = calloc(h->bench, sizeof(*t));
	unsigned i;
	int rc;

	if (!t)
		return -ENOMEM;
	rc = remus_qmp_connect(h->loop, path, NULL, NULL, NULL, &q);
	if (rc == 0)
		rc = remus_qmp_wait_ready(q, 10000);
	for (i = 0; rc == 0 && i < h->bench; i++) {
		uint64_t t0 = remus_now_ns();

		rc = remus_qmp_execute_sync(q, "query-status", NULL, -1, 10000, NULL, NULL);
		t[i] = (remus_now_ns() - t0) / 1e6;
	}
	remus_qmp_free(q);
	if (rc == 0) {
		*med = median(t, h->bench);
		*p99 = t[(h->bench * 99) / 100 < h->bench ? (h->bench * 99) / 100 : h->bench - 1];
	}
	free(t);
	return rc;
}

struct pt_job {
	const char *name;
	unsigned n;
	double *t;
	int done;  /* 1: done, < 0: failed */
};

static int passthrough_work(virConnectPtr conn, void *opaque, char **err)
{
	struct pt_job *j = opaque;
	virDomainPtr d = virDomainLookupByName(conn, j->name);
	unsigned i;

	if (!d)
		return -ENOENT;
	for (i = 0; i < j->n; i++) {
		char *r = NULL;
		uint64_t t0 = remus_now_ns();

		if (virDomainQemuMonitorCommand(d, "{\"execute\":\"query-status\"}", &r, 0) < 0) {
			virDomainFree(d);
			return -EIO;
		}
		j->t[i] = (remus_now_ns() - t0) / 1e6;
		free(r);
	}
	virDomainFree(d);
	return 0;
}

static void passthrough_done(struct remus_virt *v, int rc, const char *err, void *opaque)
{
	struct pt_job *j = opaque;

	j->done = rc < 0 ? rc : 1;
	if (rc < 0)
		remus_err(COMP, "passthrough bench: %s", err);
}

static void run_bench(struct host *h)
{
	double proxy_med = 0, proxy_p99 = 0, pt_med = 0, direct_med = 0, direct_p99 = 0;
	struct pt_job j = { .name = h->name, .n = h->bench };
	int rc;

	j.t = calloc(h->bench, sizeof(*j.t));
	rc = time_qmp(h, h->qmp_path, &proxy_med, &proxy_p99);
	if (rc == 0 && j.t)
		rc = remus_virt_call(h->v, passthrough_work, passthrough_done, NULL, &j);
	while (rc == 0 && !j.done)
		remus_loop_run_once(h->loop, 100);
	if (rc == 0 && j.done < 0)
		rc = j.done;
	if (rc == 0)
		pt_med = median(j.t, h->bench);
	if (rc == 0 && h->direct_path)
		rc = time_qmp(h, h->direct_path, &direct_med, &direct_p99);
	free(j.t);
	if (rc < 0) {
		remus_err(COMP, "bench failed: %s", strerror(-rc));
		h->rc = 1;
		return;
	}
	printf("{\"bench\":\"virt-qmp-proxy\",\"command\":\"query-status\",\"n\":%u,"
	       "\"proxy_p50_ms\":%.3f,\"proxy_p99_ms\":%.3f,\"passthrough_p50_ms\":%.3f,"
	       "\"proxy_added_p50_ms\":%.3f",
	       h->bench, proxy_med, proxy_p99, pt_med, proxy_med - pt_med);
	if (h->direct_path)
		printf(",\"direct_qmp_p50_ms\":%.3f,\"direct_qmp_p99_ms\":%.3f", direct_med,
		       direct_p99);
	printf("}\n");
	fflush(stdout);
}

/* ---- start-up -------------------------------------------------------- */

static void on_proxy_state(struct remus_qmp_proxy *p, enum remus_qmp_proxy_state s, int rc,
			   const char *err, void *opaque)
{
	struct host *h = opaque;

	if (s == REMUS_QMP_PROXY_READY) {
		h->ready = true;
		printf("READY %s\n", h->name);
		fflush(stdout);
		return;
	}
	remus_err(COMP, "%s", err);
	if (!h->ready)
		h->rc = 1;
	write_stats(h);
	remus_loop_stop(h->loop, 1);
}

struct create_job {
	struct host *h;
	char *name; /* out, owned */
};

static int create_work(virConnectPtr conn, void *opaque, char **err)
{
	struct create_job *j = opaque;
	virDomainPtr d = virDomainCreateXML(conn, j->h->xml, 0);
	const char *n;

	if (!d)
		return -EIO;
	n = virDomainGetName(d);
	j->name = n ? strdup(n) : NULL;
	virDomainFree(d);
	return j->name ? 0 : -ENOMEM;
}

static void create_done(struct remus_virt *v, int rc, const char *err, void *opaque)
{
	struct create_job *j = opaque;
	struct host *h = j->h;

	if (rc < 0) {
		remus_err(COMP, "cannot start the domain: %s", err);
		h->rc = 1;
		remus_loop_stop(h->loop, 1);
		return;
	}
	h->name = j->name;
	j->name = NULL;
	remus_info(COMP, "domain %s started", h->name);
	rc = remus_qmp_proxy_new(v, h->name, h->qmp_path, NULL, on_proxy_state, h, &h->proxy);
	if (rc < 0) {
		h->rc = 1;
		remus_loop_stop(h->loop, 1);
	}
}

static void create_free(void *opaque)
{
	struct create_job *j = opaque;

	free(j->name);
	free(j);
}

static void on_open(struct remus_virt *v, int rc, const char *err, void *opaque)
{
	struct host *h = opaque;
	struct create_job *j;

	if (rc < 0) {
		h->rc = 1;
		remus_loop_stop(h->loop, 1);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (j)
		j->h = h;
	if (!j || remus_virt_call(v, create_work, create_done, create_free, j) < 0) {
		free(j);
		h->rc = 1;
		remus_loop_stop(h->loop, 1);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: libvirt_host --uri URI --xml FILE --qmp SOCKET [--stats FILE]\n"
			"                    [--bench N [--direct QMP_SOCKET]]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "uri", required_argument, NULL, 'u' },
		{ "xml", required_argument, NULL, 'x' },
		{ "qmp", required_argument, NULL, 'q' },
		{ "stats", required_argument, NULL, 's' },
		{ "bench", required_argument, NULL, 'b' },
		{ "direct", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	struct host h = { .sfd = -1 };
	const char *uri = NULL;
	sigset_t mask;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u': uri = optarg; break;
		case 'x': h.xml_path = optarg; break;
		case 'q': h.qmp_path = optarg; break;
		case 's': h.stats_path = optarg; break;
		case 'b': h.bench = (unsigned)atoi(optarg); break;
		case 'd': h.direct_path = optarg; break;
		default: usage();
		}
	}
	if (!uri || !h.xml_path || !h.qmp_path)
		usage();
	h.xml = read_file(h.xml_path);
	if (!h.xml) {
		fprintf(stderr, "libvirt_host: cannot read %s: %s\n", h.xml_path, strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	/* Blocked before libvirt starts its threads, so they inherit it. */
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	h.sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (h.sfd < 0 || remus_loop_new(&h.loop) < 0 ||
	    remus_loop_add_fd(h.loop, h.sfd, REMUS_EV_READ, on_signal, &h) < 0 ||
	    remus_virt_open(h.loop, uri, NULL, on_open, &h, &h.v) < 0) {
		fprintf(stderr, "libvirt_host: cannot start\n");
		return 1;
	}
	if (h.bench) {
		while (!h.ready && !h.rc)
			remus_loop_run_once(h.loop, 100);
		if (h.ready)
			run_bench(&h);
	} else {
		remus_loop_run(h.loop);
	}
	remus_qmp_proxy_free(h.proxy);
	while (remus_virt_pending(h.v))
		remus_loop_run_once(h.loop, 100);
	remus_virt_free(h.v);
	remus_loop_del_fd(h.loop, h.sfd);
	close(h.sfd);
	remus_loop_free(h.loop);
	free(h.name);
	free(h.xml);
	return h.rc;
}
