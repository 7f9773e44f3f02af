// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The qemu backend's frame data path (see qemu.h for the picture): per
 * NIC, the two socketpairs whose other ends QEMU's filter-redirector
 * uses, the reader that turns what QEMU writes to outdev into frames for
 * the queue, and the writer that sends released frames to indev.  It
 * speaks no QMP: qemu.c's setup and teardown call it at their steps.
 *
 * vnet_hdr_support=on for every netdev type: QEMU then sends the netdev's
 * vnet_hdr_len with each frame (0 for user, 10 or 12 for a tap with
 * vnet_hdr=on, whose frames start with the virtio-net header).  We store
 * frame and header length as they came and write them back unchanged,
 * which is exactly what QEMU's indev reader expects; nothing here parses
 * the header.
 *
 * QEMU writes to outdev with a blocking write_all in its main loop: if we
 * stop reading, the guest's network (and QMP) stalls.  So our end is read
 * on the loop whenever it is readable, and QEMU's end gets a large send
 * buffer before it is passed (socket options travel with the socket).
 * Released frames go to indev without a copy while the socket takes them;
 * what it does not take is buffered, so no frame is cut short in the
 * stream.
 */
#include "netbuffer/qemu_nic.h"

#include <errno.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/log.h"
#include "common/sock.h"
#include "common/wire.h"
#include "netbuffer/queue.h"

#define LOG "netbuffer"
#define SOCK_BUF_BYTES (4u << 20)  /* per direction per NIC */
#define READ_BUDGET (1u << 20)     /* per readable event, then yield */

/* ---- a NIC's sockets --------------------------------------------------- */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Makes @n NIC @index of @b for @netdev (borrowed, copied) and names its
 * QEMU objects; opens nothing.  Returns 0 or -ENOMEM, and @n can be
 * released either way. */
int remus_nbqemu_nic_init(struct nic *n, struct remus_nbqemu *b, unsigned index,
			  const char *netdev)
{
	memset(n, 0, sizeof(*n));
	n->b = b;
	n->index = index;
	n->out_fd = n->in_fd = n->qemu_out_fd = n->qemu_in_fd = -1;
	n->vnet_hdr_len = -1;
	remus_buf_init(&n->wbuf, 0);
	n->netdev = strdup(netdev);
	if (n->netdev && asprintf(&n->id_filter, "remus-nb-%s", netdev) >= 0 &&
	    asprintf(&n->id_out, "remus-nb-%s-out", netdev) >= 0 &&
	    asprintf(&n->id_in, "remus-nb-%s-in", netdev) >= 0)
		return 0;
	return -ENOMEM;
}

static void on_out_ready(struct remus_loop *loop, int fd, unsigned events, void *opaque);

int remus_nbqemu_nic_open(struct remus_nbqemu *b, struct nic *n)
{
	int sv[2], bufsz = SOCK_BUF_BYTES, rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	n->out_fd = sv[0];
	n->qemu_out_fd = sv[1];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	n->in_fd = sv[0];
	n->qemu_in_fd = sv[1];
	/* QEMU's writer blocks when its send buffer is full; ours would
	 * only make us buffer.  FORCE (CAP_NET_ADMIN) exceeds wmem_max;
	 * without it the kernel caps SO_SNDBUF, which still helps. */
	if (setsockopt(n->qemu_out_fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof(bufsz)) < 0)
		setsockopt(n->qemu_out_fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	if (setsockopt(n->in_fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof(bufsz)) < 0)
		setsockopt(n->in_fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	if ((rc = remus_fd_set_nonblock(n->out_fd, true)) < 0 ||
	    (rc = remus_fd_set_nonblock(n->in_fd, true)) < 0)
		return rc;
	rc = remus_nbf_reader_init(&n->rd, true, 0);
	if (rc < 0)
		return rc;
	rc = remus_loop_add_fd(b->loop, n->out_fd, REMUS_EV_READ, on_out_ready, n);
	if (rc < 0)
		return rc;
	n->out_watched = true;
	return 0;
}

void remus_nbqemu_nic_gave_fd(struct nic *n, bool out)
{
	close_fd(out ? &n->qemu_out_fd : &n->qemu_in_fd);
}

void remus_nbqemu_nic_close(struct remus_nbqemu *b, struct nic *n)
{
	if (n->out_watched)
		remus_loop_del_fd(b->loop, n->out_fd);
	if (n->in_watched)
		remus_loop_del_fd(b->loop, n->in_fd);
	n->out_watched = n->in_watched = false;
	close_fd(&n->out_fd);
	close_fd(&n->in_fd);
	close_fd(&n->qemu_out_fd);
	close_fd(&n->qemu_in_fd);
	remus_buf_release(&n->wbuf);
}

void remus_nbqemu_nic_release(struct remus_nbqemu *b, struct nic *n)
{
	remus_nbqemu_nic_close(b, n);
	remus_nbf_reader_release(&n->rd);
	free(n->netdev);
	free(n->id_filter);
	free(n->id_out);
	free(n->id_in);
}

/* ---- QEMU -> queue: reading outdev ------------------------------------- */

static void on_frame(void *opaque, const uint8_t *frame, uint32_t len, uint32_t vnet_hdr_len)
{
	struct nic *n = opaque;
	struct remus_nbqemu *b = n->b;
	int rc = remus_nbq_push(b->q, n->index, frame, len, vnet_hdr_len, remus_now_ns());

	n->vnet_hdr_len = vnet_hdr_len;

	if (rc < 0 && !b->overflow_logged) {
		b->overflow_logged = true;
		remus_warn(LOG, "netdev '%s': output of this epoch exceeds %zu bytes; "
			   "dropping frames until the next barrier (raise the epoch "
			   "byte limit or shorten the epoch)", n->netdev, b->q->epoch_limit);
	}
}

void remus_nbqemu_nic_stop_reading(struct remus_nbqemu *b, struct nic *n)
{
	if (n->out_watched)
		remus_loop_del_fd(b->loop, n->out_fd);
	n->out_watched = false;
	n->out_dead = true;
}

/* Reads what QEMU wrote to outdev into the queue, at most @budget bytes
 * (0: until the socket is empty).  Returns 0 or -errno (the NIC stops
 * reading and it is logged; EOF is -ECONNRESET). */
static int nic_read(struct remus_nbqemu *b, struct nic *n, size_t budget)
{
	uint8_t buf[65536];
	size_t total = 0;
	ssize_t r;

	if (n->out_fd < 0 || n->out_dead)
		return 0;
	for (;;) {
		r = read(n->out_fd, buf, sizeof(buf));
		if (r > 0) {
			remus_nbf_reader_feed(&n->rd, buf, (size_t)r, on_frame, n);
			if (n->rd.malformed > n->malformed_logged) {
				if (n->malformed_logged == 0)
					remus_warn(LOG, "netdev '%s': malformed frame from QEMU's "
						   "filter %s dropped (counted in "
						   "dropped_malformed; further ones not logged)",
						   n->netdev, n->id_filter);
				n->malformed_logged = n->rd.malformed;
			}
			total += (size_t)r;
			if (budget && total >= budget)
				return 0;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		r = r == 0 ? -ECONNRESET : -errno;
		remus_err(LOG, "netdev '%s': QEMU's chardev %s %s: %s; this NIC's output "
			  "is no longer read (QEMU exited, or someone removed the chardev)", n->netdev,
			  n->id_out, r == -ECONNRESET ? "closed" : "failed", strerror((int)-r));
		remus_nbqemu_nic_stop_reading(b, n);
		return (int)r;
	}
}

static void on_out_ready(struct remus_loop *loop, int fd, unsigned events, void *opaque)
{
	struct nic *n = opaque;

	nic_read(n->b, n, READ_BUDGET);
}

int remus_nbqemu_drain(struct remus_nbqemu *b)
{
	int rc, first = 0;
	size_t i;

	b->overflow_logged = false;
	for (i = 0; i < b->nnics; i++) {
		rc = nic_read(b, &b->nics[i], 0);
		if (rc < 0 && first == 0)
			first = rc;
	}
	return first;
}

/* ---- queue -> QEMU: writing indev -------------------------------------- */

static void in_broken(struct remus_nbqemu *b, struct nic *n, int err)
{
	remus_err(LOG, "netdev '%s': writing released frames to QEMU's chardev %s "
		  "failed: %s; %zu bytes lost, later frames dropped (counted in "
		  "dropped_io)", n->netdev, n->id_in, strerror(-err), remus_buf_len(&n->wbuf));
	n->in_dead = true;
	if (n->in_watched)
		remus_loop_del_fd(b->loop, n->in_fd);
	n->in_watched = false;
	remus_buf_reset(&n->wbuf);
}

static void on_in_ready(struct remus_loop *loop, int fd, unsigned events, void *opaque);

/* Writes buffered bytes to indev until the socket is full. */
static void nic_flush(struct remus_nbqemu *b, struct nic *n)
{
	ssize_t r;

	while (remus_buf_len(&n->wbuf) > 0 && !n->in_dead) {
		r = send(n->in_fd, remus_buf_data(&n->wbuf), remus_buf_len(&n->wbuf),
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r > 0) {
			remus_buf_consume(&n->wbuf, (size_t)r);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		in_broken(b, n, r < 0 ? -errno : -EPIPE);
		return;
	}
	if (remus_buf_len(&n->wbuf) > 0 && !n->in_watched && !n->in_dead) {
		/* Without the watch nothing would ever write the rest. */
		int rc = remus_loop_add_fd(b->loop, n->in_fd, REMUS_EV_WRITE, on_in_ready, n);

		if (rc < 0)
			in_broken(b, n, rc);
		else
			n->in_watched = true;
	} else if (remus_buf_len(&n->wbuf) == 0 && n->in_watched) {
		remus_loop_del_fd(b->loop, n->in_fd);
		n->in_watched = false;
	}
}

static void on_in_ready(struct remus_loop *loop, int fd, unsigned events, void *opaque)
{
	struct nic *n = opaque;

	nic_flush(n->b, n);
}

void remus_nbqemu_output(struct remus_nbqemu *b, unsigned nic, const uint8_t *data,
			 uint32_t len, uint32_t vnet_hdr_len)
{
	struct nic *n;
	uint8_t hdr[8];
	struct iovec iov[2];
	size_t total, sent = 0;
	ssize_t r;

	if (nic >= b->nnics || b->nics[nic].in_fd < 0 || b->nics[nic].in_dead) {
		b->dropped_io++;
		return;
	}
	n = &b->nics[nic];
	remus_put_be32(hdr, len);
	remus_put_be32(hdr + 4, vnet_hdr_len);
	total = sizeof(hdr) + len;
	if (remus_buf_len(&n->wbuf) == 0) {
		/* Common case: straight into the socket, no copy. */
		iov[0] = (struct iovec){ hdr, sizeof(hdr) };
		iov[1] = (struct iovec){ (void *)data, len };
		do {
			r = sendmsg(n->in_fd, &(struct msghdr){ .msg_iov = iov, .msg_iovlen = 2 },
				    MSG_NOSIGNAL | MSG_DONTWAIT);
		} while (r < 0 && errno == EINTR);
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			b->dropped_io++;
			in_broken(b, n, -errno);
			return;
		}
		sent = r > 0 ? (size_t)r : 0;
		if (sent == total)
			return;
	}
	/* Keep the rest; a frame must never be cut short in the stream. */
	if ((sent < sizeof(hdr) &&
	     remus_buf_append(&n->wbuf, hdr + sent, sizeof(hdr) - sent) < 0) ||
	    remus_buf_append(&n->wbuf, data + (sent > sizeof(hdr) ? sent - sizeof(hdr) : 0),
			     len - (sent > sizeof(hdr) ? sent - sizeof(hdr) : 0)) < 0) {
		b->dropped_io++;
		in_broken(b, n, -ENOMEM);
		return;
	}
	nic_flush(b, n);
}

size_t remus_nbqemu_flush_pending(struct remus_nbqemu *b)
{
	size_t i, pending = 0;
	int outq;

	for (i = 0; i < b->nnics; i++) {
		struct nic *n = &b->nics[i];

		nic_read(b, n, 0);
		if (n->in_fd < 0 || n->in_dead)
			continue;
		nic_flush(b, n);
		pending += remus_buf_len(&n->wbuf);
		/* Unix stream sockets charge sent bytes to the sender until
		 * the receiver has read them. */
		if (ioctl(n->in_fd, SIOCOUTQ, &outq) == 0 && outq > 0)
			pending += (size_t)outq;
	}
	return pending;
}

/* ---- counters ---------------------------------------------------------- */

void remus_nbqemu_get_stats(const struct remus_nbqemu *b, struct remus_netbuffer_stats *st)
{
	size_t i;

	st->dropped_malformed = 0;
	for (i = 0; i < b->nnics; i++)
		st->dropped_malformed += b->nics[i].rd.malformed;
	st->dropped_io = b->dropped_io;
}

void remus_nbqemu_status_json(const struct remus_nbqemu *b, struct json_object *o)
{
	struct json_object *a = json_object_new_array(), *e;
	size_t i;

	for (i = 0; i < b->nnics; i++) {
		const struct nic *n = &b->nics[i];

		e = json_object_new_object();
		json_object_object_add(e, "netdev", json_object_new_string(n->netdev));
		json_object_object_add(e, "filter", json_object_new_string(n->id_filter));
		json_object_object_add(e, "frames", json_object_new_int64((int64_t)n->rd.frames));
		json_object_object_add(e, "malformed", json_object_new_int64((int64_t)n->rd.malformed));
		json_object_object_add(e, "vnet_hdr_len", json_object_new_int64(n->vnet_hdr_len));
		json_object_object_add(e, "unbuffered", json_object_new_boolean(n->out_dead));
		json_object_array_add(a, e);
	}
	json_object_object_add(o, "nics", a);
}
