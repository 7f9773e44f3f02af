// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The tracker's side of `remusd ramfs` (dirty.h kind RAMFS, ramfs.h):
 * attach to one RAM file through the control socket, map the server's
 * content memfd read-only and the bitmap read-write, and collect by
 * fsync() of the file, then clearing the bitmap word by word.
 *
 * Why fsync and not the server's word: fsync returns only once the kernel
 * has written back every page dirty at the call and the server has
 * answered each WRITE, and the server answers only after copy and mark.
 * So every page written before the call has its bit set when fsync
 * returns; the exchange (acquire) pairs with the server's fetch_or
 * (release), so the content of a page whose bit we took is in our
 * mapping.  This process holds no /dev/fuse fd, so fsync here is safe
 * (fuse_ram.h's flusher exists for a process that serves its own mount).
 */
#include "dirty/ramfs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "dirty/dirty.h"

#define TAG "dirty"
#define PAGE 4096u

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

/* One request, one reply with up to two fds (closed on any error). */
static int call(int sock, const struct remus_ramfs_req *q,
		struct remus_ramfs_rep *rep, int fds[2])
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	uint8_t buf[64];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c;
	int nfds = 0, rc;
	ssize_t n;

	fds[0] = fds[1] = -1;
	/* SO_SNDTIMEO/SO_RCVTIMEO (open_socket) bound both: EAGAIN then. */
	if (send(sock, q, sizeof(*q), MSG_NOSIGNAL) != sizeof(*q))
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		size_t k, got;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		got = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (k = 0; k < got; k++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(fd));
			if (nfds < 2)
				fds[nfds++] = fd;
			else
				close(fd);
		}
	}
	rc = (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ? -EBADMSG
		: remus_ramfs_parse_rep(buf, (size_t)n, q->op, rep);
	if (rc == 0 && rep->status < 0)
		rc = rep->status;
	if (rc == 0 && q->op == REMUS_RAMFS_OP_ATTACH && nfds != 2)
		rc = -EBADMSG;
	if (rc < 0) {
		for (n = 0; n < nfds; n++)
			close(fds[n]);
		fds[0] = fds[1] = -1;
	}
	return rc;
}

/* The control connection, every call on it bounded by
 * REMUS_RAMFS_CALL_TIMEOUT_MS (a stuck server must not hang the engine's
 * loop): the socket's timeouts bound connect (a full backlog), send and
 * receive.  Returns the fd or -errno (-ETIMEDOUT for a connect that did
 * not get through). */
static int open_socket(const struct sockaddr_un *a)
{
	struct timeval tv = { REMUS_RAMFS_CALL_TIMEOUT_MS / 1000,
			      (REMUS_RAMFS_CALL_TIMEOUT_MS % 1000) * 1000 };
	int fd, rc;

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (const struct sockaddr *)a, sizeof(*a)) < 0) {
		rc = errno == EAGAIN || errno == EINPROGRESS ? -ETIMEDOUT : -errno;
		goto out;
	}
	rc = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int remus_ramfs_client_open(struct remus_ramfs_client *c, const char *path,
			    const char *socket_path, uint64_t size)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct remus_ramfs_req q = { REMUS_RAMFS_MAGIC, REMUS_RAMFS_VERSION,
				     REMUS_RAMFS_OP_ATTACH, 0, 0 };
	struct remus_ramfs_rep rep;
	struct stat st, st2, cst, bst;
	struct statfs sf;
	int fds[2] = { -1, -1 }, rc;
	size_t need;
	void *m;

	memset(c, 0, sizeof(*c));
	c->sock = c->fd = -1;
	c->content = MAP_FAILED;
	c->bits = MAP_FAILED;
	if (!socket_path)
		socket_path = REMUS_RAMFS_DEFAULT_SOCKET;
	c->path = strdup(path);
	if (!c->path)
		return -ENOMEM;
	if (stat(path, &st) < 0 || statfs(path, &sf) < 0) {
		rc = -errno;
		remus_err(TAG, "guest RAM file %s: %s", path, strerror(-rc));
		goto out;
	}
	if (sf.f_type != FUSE_SUPER_MAGIC || !S_ISREG(st.st_mode)) {
		rc = S_ISDIR(st.st_mode) ? -EISDIR : -EXDEV;
		remus_err(TAG, "%s is not a regular file on a remusd ramfs "
			  "mount: %s", path, strerror(-rc));
		goto out;
	}
	if (strlen(socket_path) >= sizeof(a.sun_path)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	strcpy(a.sun_path, socket_path);
	rc = open_socket(&a);
	if (rc < 0) {
		remus_err(TAG, "cannot reach remusd ramfs at %s: %s (is it "
			  "running?)", socket_path, strerror(-rc));
		goto out;
	}
	c->sock = rc;
	q.ino = st.st_ino;
	q.dev = st.st_dev;
	rc = call(c->sock, &q, &rep, fds);
	if (rc == -ENOENT)
		rc = -EXDEV; /* a FUSE file the server does not serve */
	if (rc == -ETIMEDOUT) {
		remus_err(TAG, "remusd ramfs at %s did not answer the attach of %s "
			  "within %d ms", socket_path, path, REMUS_RAMFS_CALL_TIMEOUT_MS);
		goto out;
	}
	if (rc < 0) {
		remus_err(TAG, "remusd ramfs at %s refused to attach %s: %s%s",
			  socket_path, path, strerror(-rc),
			  rc == -EBUSY ? " (another tracker holds it)"
			  : rc == -EXDEV ? " (not on that server's mount)" : "");
		goto out;
	}
	c->size = rep.size;
	if (c->size == 0 || c->size % PAGE || (size && size != c->size)) {
		rc = -EINVAL;
		remus_err(TAG, "%s is %llu bytes; expected %llu, a multiple of "
			  "4096", path, (unsigned long long)c->size,
			  (unsigned long long)size);
		goto out;
	}
	need = (size_t)((c->size / PAGE + 63) / 64 * 8);
	if (fstat(fds[0], &cst) < 0 || fstat(fds[1], &bst) < 0 ||
	    (uint64_t)cst.st_size < c->size || (size_t)bst.st_size < need) {
		rc = -EBADMSG;
		goto out;
	}
	m = mmap(NULL, c->size, PROT_READ, MAP_SHARED, fds[0], 0);
	if (m == MAP_FAILED) {
		rc = -errno;
		goto out;
	}
	c->content = m;
	m = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
	if (m == MAP_FAILED) {
		rc = -errno;
		goto out;
	}
	c->bits = m;
	c->bits_len = need;
	/* For fsync only; the same file as the one we attached? */
	c->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (c->fd < 0 || fstat(c->fd, &st2) < 0) {
		rc = -errno;
		goto out;
	}
	if (st2.st_ino != st.st_ino || st2.st_dev != st.st_dev) {
		rc = -ESTALE;
		goto out;
	}
	rc = 0;
out:
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	if (rc < 0)
		remus_ramfs_client_close(c);
	return rc;
}

int64_t remus_ramfs_client_collect(struct remus_ramfs_client *c,
				   uint64_t *bits, uint64_t npages)
{
	struct pollfd p = { c->sock, POLLIN, 0 };
	uint64_t i, words = (npages + 63) / 64, count = 0;

	if (fsync(c->fd) < 0) {
		int rc = -errno;

		remus_err(TAG, "fsync of %s: %s; dirty pages lost", c->path,
			  strerror(-rc));
		return rc == -ENOTCONN ? -EIO : rc;
	}
	/* The server never writes to us: anything readable is its end. */
	if (poll(&p, 1, 0) == 1) {
		remus_err(TAG, "remusd ramfs closed the attachment of %s",
			  c->path);
		return -EIO;
	}
	for (i = 0; i < words; i++) {
		uint64_t w = __atomic_exchange_n(&c->bits[i], 0,
						 __ATOMIC_ACQUIRE);

		if (i == words - 1 && npages % 64)
			w &= (UINT64_C(1) << (npages % 64)) - 1;
		bits[i] = w;
		count += (uint64_t)__builtin_popcountll(w);
	}
	return (int64_t)count;
}

void remus_ramfs_client_close(struct remus_ramfs_client *c)
{
	if (c->content != MAP_FAILED && c->content)
		munmap((void *)c->content, c->size);
	c->content = MAP_FAILED;
	if (c->bits != MAP_FAILED && c->bits)
		munmap(c->bits, c->bits_len);
	c->bits = MAP_FAILED;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->sock >= 0) {
		/* The server releases the attachment when it reads our end,
		 * then closes its side: wait for that (bounded), so that a
		 * tracker opened right after this one is not refused with
		 * EBUSY by an attachment the server has not dropped yet. */
		struct pollfd p = { c->sock, POLLIN, 0 };
		char b[64];

		if (shutdown(c->sock, SHUT_WR) == 0)
			while (poll(&p, 1, 1000) == 1 &&
			       recv(c->sock, b, sizeof(b), MSG_DONTWAIT) > 0)
				;
		close(c->sock);
	}
	c->sock = -1;
	free(c->path);
	c->path = NULL;
}
