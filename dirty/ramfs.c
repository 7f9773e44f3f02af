// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * `remusd ramfs`: the process that serves the guest RAM filesystem
 * (ramfs_fs.c) on a mount and the control socket of its trackers
 * (ramfs.h).  One thread, one poll loop over /dev/fuse, the control
 * socket and its connections, and a signalfd; nothing in it blocks (a
 * FUSE request and an ATTACH are answered from memory).
 *
 * The process never touches its own mount through the VFS (no stat, no
 * open): the kernel would ask this very thread and wait forever.  It
 * learns the mount's device from /proc/self/mountinfo instead.
 *
 * Stopping: the process is in the memory path of every guest whose RAM
 * file is here, so SIGTERM/SIGINT only stop it when no regular file
 * exists; otherwise it logs the files and goes on.
 */
#include "dirty/ramfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "dirty/dirty.h"

#define TAG "ramfs"

struct conn {
	int fd;
	uint64_t ino; /* attached file, 0: none */
};

struct server {
	struct remus_ramfs fs;
	const char *mnt, *sock_path;
	char mnt_real[PATH_MAX];
	int fuse_fd, listen_fd, sig_fd;
	bool mounted, sock_bound, sock_taken;
	dev_t dev;
	ino_t sock_ino; /* of the socket file we bound */
	struct timespec sock_checked;
	struct conn conns[REMUS_RAMFS_MAX_CONNS];
	uint8_t *buf;
};

/* In place: mountinfo's \ooo escapes. */
static void unescape(char *s)
{
	char *w = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 4;
		} else {
			*w++ = *s++;
		}
	}
	*w = '\0';
}

/* The topmost mount on @dir (canonical): its type, source and device.
 * Returns 1, 0 (none: @dir is not a mount point) or -errno. */
static int mount_at(const char *dir, char *type, size_t tcap, char *source,
		    size_t scap, dev_t *dev)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int found = 0;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char mp[PATH_MAX], fstype[256], src[PATH_MAX], *dash;
		unsigned maj, min;

		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mp) != 3)
			continue;
		dash = strstr(line, " - ");
		if (!dash || sscanf(dash + 3, "%255s %4095s", fstype, src) != 2)
			continue;
		unescape(mp);
		if (strcmp(mp, dir) != 0)
			continue;
		unescape(src);
		snprintf(type, tcap, "%s", fstype);
		snprintf(source, scap, "%s", src);
		*dev = makedev(maj, min);
		found = 1; /* later lines are mounted on top */
	}
	free(line);
	fclose(f);
	return found;
}

static int send_rep(int fd, const struct remus_ramfs_rep *rep, const int *fds,
		    int nfds)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (void *)rep, sizeof(*rep) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		m.msg_control = u.buf;
		m.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	if (sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

static void conn_close(struct server *s, struct conn *c)
{
	if (c->ino) {
		remus_info(TAG, "tracker detached from inode %llu",
			   (unsigned long long)c->ino);
		remus_ramfs_detach(&s->fs, c->ino);
	}
	close(c->fd);
	c->fd = -1;
	c->ino = 0;
}

static void conn_request(struct server *s, struct conn *c)
{
	struct remus_ramfs_req req;
	struct remus_ramfs_rep rep;
	uint8_t buf[64];
	int fds[2], nfds = 0, rc;
	ssize_t n;

	n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(s, c);
		return;
	}
	/* MSG_TRUNC: @n is the message's length, even beyond @buf. */
	if (remus_ramfs_parse_req(buf, (size_t)n > sizeof(buf) ? 0 : (size_t)n,
				  &req) < 0) {
		remus_warn(TAG, "control: a malformed request of %zd bytes; "
			   "closing that connection", n);
		conn_close(s, c);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.magic = REMUS_RAMFS_MAGIC;
	rep.version = REMUS_RAMFS_VERSION;
	rep.op = req.op;
	if (req.op == REMUS_RAMFS_OP_STAT) {
		rep.files = remus_ramfs_nfiles(&s->fs);
		rep.dev = s->dev;
		rep.pid = (uint64_t)getpid();
	} else if (c->ino) {
		rep.status = -EBUSY; /* one attachment per connection */
	} else if (req.dev != (uint64_t)s->dev) {
		rep.status = -EXDEV;
	} else {
		rc = remus_ramfs_attach(&s->fs, req.ino, &fds[0], &fds[1],
					&rep.size);
		rep.status = rc;
		if (rc == 0) {
			nfds = 2;
			c->ino = req.ino;
		}
	}
	rc = send_rep(c->fd, &rep, fds, nfds);
	if (rc < 0) {
		remus_warn(TAG, "control: cannot answer: %s", strerror(-rc));
		conn_close(s, c);
		return;
	}
	if (req.op == REMUS_RAMFS_OP_ATTACH)
		remus_info(TAG, "attach of inode %llu: %s",
			   (unsigned long long)req.ino,
			   rep.status ? strerror(-rep.status) : "attached");
}

static void accept_conn(struct server *s)
{
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	int fd, i;

	fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0 ||
	    cr.uid != 0) {
		remus_warn(TAG, "control: refused a client of uid %d (root "
			   "only)", crlen == sizeof(cr) ? (int)cr.uid : -1);
		close(fd);
		return;
	}
	for (i = 0; i < REMUS_RAMFS_MAX_CONNS; i++)
		if (s->conns[i].fd < 0) {
			s->conns[i].fd = fd;
			s->conns[i].ino = 0;
			return;
		}
	remus_warn(TAG, "control: %d connections already; refused one more",
		   REMUS_RAMFS_MAX_CONNS);
	close(fd);
}

struct listing {
	char text[1024];
	size_t len;
};

static void list_one(void *ctx, const char *path)
{
	struct listing *l = ctx;
	int n = snprintf(l->text + l->len, sizeof(l->text) - l->len, "%s%s",
			 l->len ? ", " : "", path);

	if (n > 0 && l->len + (size_t)n < sizeof(l->text))
		l->len += (size_t)n;
}

static void log_status(struct server *s)
{
	struct listing l = { .len = 0 };
	int i, conns = 0, attached = 0;

	l.text[0] = '\0';
	remus_ramfs_each_file(&s->fs, list_one, &l);
	for (i = 0; i < REMUS_RAMFS_MAX_CONNS; i++) {
		conns += s->conns[i].fd >= 0;
		attached += s->conns[i].fd >= 0 && s->conns[i].ino;
	}
	remus_info(TAG, "status: mount %s, %u files (%s), %llu nodes, %d "
		   "control connections, %d attached", s->mnt,
		   remus_ramfs_nfiles(&s->fs), l.len ? l.text : "none",
		   (unsigned long long)s->fs.nnodes, conns, attached);
}

/* SIGTERM/SIGINT: true when we may stop (unmounted). */
static bool try_stop(struct server *s, int sig)
{
	unsigned files = remus_ramfs_nfiles(&s->fs);

	if (files) {
		struct listing l = { .len = 0 };

		l.text[0] = '\0';
		remus_ramfs_each_file(&s->fs, list_one, &l);
		remus_warn(TAG, "%s: not stopping: %u guest RAM files on %s "
			   "(%s) are served by this process and their guests "
			   "would fault; stop the domains first",
			   strsignal(sig), files, s->mnt, l.text);
		return false;
	}
	if (umount2(s->mnt, 0) < 0) {
		remus_warn(TAG, "%s: not stopping: cannot unmount %s: %s",
			   strsignal(sig), s->mnt, strerror(errno));
		return false;
	}
	s->mounted = false;
	remus_info(TAG, "%s: no guest RAM file left; unmounted %s",
		   strsignal(sig), s->mnt);
	return true;
}

static void handle_fs(void *ctx, const uint8_t *req, size_t len,
		      struct remus_fuse_reply *out)
{
	remus_ramfs_handle(ctx, req, len, out);
}

/* Refuses a directory that is not empty or already served; and a socket
 * on which another server answers (then says who). */
static int check_free(struct server *s)
{
	char type[256], source[PATH_MAX];
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct dirent *e;
	struct stat st;
	dev_t dev;
	DIR *d;
	int fd, rc, entries = 0;

	if (!realpath(s->mnt, s->mnt_real) || stat(s->mnt_real, &st) < 0) {
		rc = -errno;
		remus_err(TAG, "mount directory %s: %s", s->mnt, strerror(-rc));
		return rc;
	}
	if (!S_ISDIR(st.st_mode)) {
		remus_err(TAG, "%s is not a directory", s->mnt);
		return -ENOTDIR;
	}
	rc = mount_at(s->mnt_real, type, sizeof(type), source, sizeof(source),
		      &dev);
	if (rc > 0 && strcmp(type, REMUS_RAMFS_FSTYPE) == 0) {
		remus_err(TAG, "%s is already a guest RAM filesystem (%s); "
			  "another remusd ramfs serves it, or a dead one left "
			  "it: stop its domains and unmount it", s->mnt,
			  source);
		return -EBUSY;
	}
	d = opendir(s->mnt_real);
	if (!d) {
		rc = -errno;
		remus_err(TAG, "cannot read %s: %s", s->mnt, strerror(-rc));
		return rc;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			entries++;
	closedir(d);
	if (entries) {
		remus_err(TAG, "%s is not empty: give an empty directory to "
			  "mount the guest RAM filesystem on", s->mnt);
		return -ENOTEMPTY;
	}
	if (strlen(s->sock_path) >= sizeof(a.sun_path)) {
		remus_err(TAG, "socket path %s is too long", s->sock_path);
		return -ENAMETOOLONG;
	}
	strcpy(a.sun_path, s->sock_path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
		struct remus_ramfs_req q = { REMUS_RAMFS_MAGIC,
					     REMUS_RAMFS_VERSION,
					     REMUS_RAMFS_OP_STAT, 0, 0 };
		struct remus_ramfs_rep r;
		uint8_t buf[64];
		ssize_t n = -1;
		struct pollfd p = { fd, POLLIN, 0 };

		if (send(fd, &q, sizeof(q), MSG_NOSIGNAL) == sizeof(q) &&
		    poll(&p, 1, 2000) == 1)
			n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0 && remus_ramfs_parse_rep(buf, (size_t)n,
						   REMUS_RAMFS_OP_STAT, &r) == 0)
			remus_err(TAG, "another remusd ramfs (pid %llu, %u "
				  "files) serves the socket %s; stop it first "
				  "or give another --socket",
				  (unsigned long long)r.pid, r.files,
				  s->sock_path);
		else
			remus_err(TAG, "something answers on %s; not taking "
				  "it over", s->sock_path);
		close(fd);
		return -EADDRINUSE;
	}
	rc = errno;
	close(fd);
	if (rc == ECONNREFUSED) {
		/* Left by a server that is gone. */
		remus_warn(TAG, "removing the stale socket %s", s->sock_path);
		unlink(s->sock_path);
	} else if (rc != ENOENT) {
		remus_err(TAG, "socket %s: %s", s->sock_path, strerror(rc));
		return -rc;
	}
	return 0;
}

static int listen_ctl(struct server *s)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char dir[sizeof(a.sun_path)], *slash;
	mode_t old;
	int rc;

	strcpy(a.sun_path, s->sock_path);
	snprintf(dir, sizeof(dir), "%s", s->sock_path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			rc = -errno;
			remus_err(TAG, "cannot create %s: %s", dir, strerror(-rc));
			return rc;
		}
	}
	s->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC |
					       SOCK_NONBLOCK, 0);
	if (s->listen_fd < 0)
		return -errno;
	old = umask(0177);
	rc = bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a));
	umask(old);
	if (rc < 0 || chmod(s->sock_path, 0600) < 0 ||
	    listen(s->listen_fd, 16) < 0) {
		rc = -errno;
		remus_err(TAG, "cannot listen on %s: %s", s->sock_path,
			  strerror(-rc));
		return rc;
	}
	s->sock_bound = true;
	{
		struct stat st;

		s->sock_ino = stat(s->sock_path, &st) == 0 ? st.st_ino : 0;
	}
	return 0;
}

/*
 * Our socket file can be removed under us: remusd.service's
 * RuntimeDirectory=remus is removed when that unit stops, with our
 * /run/remus/ramfs.sock in it, and this server cannot simply be restarted
 * while guests run on it.  So once a second we look, and listen anew if
 * the file is gone (connections already made are not affected).  A file
 * of someone else's in its place is left alone (logged once).
 */
static void check_socket(struct server *s)
{
	struct timespec now;
	struct stat st;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - s->sock_checked.tv_sec < 1)
		return;
	s->sock_checked = now;
	if (stat(s->sock_path, &st) == 0) {
		if (st.st_ino != s->sock_ino && !s->sock_taken) {
			remus_err(TAG, "control socket %s was replaced by "
				  "another file; trackers can no longer attach "
				  "through it", s->sock_path);
			s->sock_taken = true;
		}
		return;
	}
	if (errno != ENOENT)
		return;
	remus_warn(TAG, "control socket %s was removed; listening on it "
		   "again", s->sock_path);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	s->listen_fd = -1;
	s->sock_bound = false;
	s->sock_taken = false;
	if (listen_ctl(s) < 0 && s->listen_fd >= 0) {
		close(s->listen_fd);
		s->listen_fd = -1;
	}
}

static int mount_fs(struct server *s, bool allow_other)
{
	char opts[200], type[256], source[PATH_MAX];
	int rc;

	s->fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (s->fuse_fd < 0) {
		rc = -errno;
		remus_err(TAG, "cannot open /dev/fuse: %s", strerror(-rc));
		return rc;
	}
	/* default_permissions: the kernel checks modes and owners, so the
	 * qemu user reaches only what libvirt chowned to it. */
	snprintf(opts, sizeof(opts),
		 "fd=%d,rootmode=40000,user_id=0,group_id=0,"
		 "default_permissions%s", s->fuse_fd,
		 allow_other ? ",allow_other" : "");
	if (mount("remus-ramfs", s->mnt_real, REMUS_RAMFS_FSTYPE,
		  MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0) {
		rc = -errno;
		remus_err(TAG, "cannot mount the guest RAM filesystem on %s: "
			  "%s (needs root)", s->mnt, strerror(-rc));
		return rc;
	}
	s->mounted = true;
	rc = mount_at(s->mnt_real, type, sizeof(type), source, sizeof(source),
		      &s->dev);
	if (rc <= 0 || strcmp(type, REMUS_RAMFS_FSTYPE) != 0) {
		remus_err(TAG, "cannot find the new mount %s in "
			  "/proc/self/mountinfo", s->mnt_real);
		return rc < 0 ? rc : -ENOENT;
	}
	remus_fuse_raise_bdi(s->dev);
	return 0;
}

static int loop(struct server *s)
{
	for (;;) {
		struct pollfd p[3 + REMUS_RAMFS_MAX_CONNS];
		int i, k = 3, r;

		p[0] = (struct pollfd){ s->fuse_fd, POLLIN, 0 };
		p[1] = (struct pollfd){ s->listen_fd, POLLIN, 0 };
		p[2] = (struct pollfd){ s->sig_fd, POLLIN, 0 };
		for (i = 0; i < REMUS_RAMFS_MAX_CONNS; i++)
			if (s->conns[i].fd >= 0)
				p[k++] = (struct pollfd){ s->conns[i].fd,
							  POLLIN, 0 };
		if (poll(p, (nfds_t)k, 1000) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		check_socket(s);
		if (p[0].revents) {
			/* A flush sends one WRITE per run of pages, back
			 * to back: serve a batch, then look at the rest. */
			for (i = 0; i < 256; i++) {
				r = remus_fuse_serve_one(s->fuse_fd, s->buf,
							 handle_fs, &s->fs);
				if (r < 0) {
					remus_err(TAG, "the mount %s is gone "
						  "(%s): guest RAM there is no "
						  "longer served", s->mnt,
						  strerror(-r));
					s->mounted = false;
					return r;
				}
				if (r == 0)
					break;
			}
		}
		if (p[2].revents) {
			struct signalfd_siginfo si;

			while (read(s->sig_fd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGUSR1)
					log_status(s);
				else if (try_stop(s, (int)si.ssi_signo))
					return 0;
			}
		}
		if (p[1].revents)
			accept_conn(s);
		for (i = 3; i < k; i++) {
			int j;

			if (!p[i].revents)
				continue;
			for (j = 0; j < REMUS_RAMFS_MAX_CONNS; j++)
				if (s->conns[j].fd == p[i].fd)
					conn_request(s, &s->conns[j]);
		}
	}
}

int remus_ramfs_serve(const struct remus_ramfs_opts *o)
{
	struct server s;
	sigset_t sigs;
	int rc, i;

	memset(&s, 0, sizeof(s));
	s.fuse_fd = s.listen_fd = s.sig_fd = -1;
	for (i = 0; i < REMUS_RAMFS_MAX_CONNS; i++)
		s.conns[i].fd = -1;
	s.mnt = o->mount_dir;
	s.sock_path = o->socket_path ? o->socket_path
				     : REMUS_RAMFS_DEFAULT_SOCKET;
	rc = remus_ramfs_init(&s.fs);
	if (rc < 0)
		return rc;
	s.buf = malloc(REMUS_FUSE_BUF_SIZE);
	if (!s.buf) {
		rc = -ENOMEM;
		goto out;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	s.sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s.sig_fd < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = check_free(&s)) < 0 || (rc = listen_ctl(&s)) < 0 ||
	    (rc = mount_fs(&s, o->allow_other)) < 0)
		goto out;
	remus_info(TAG, "serving guest RAM files on %s (device %u:%u), "
		   "control socket %s, allow_other %s, pid %d", s.mnt,
		   major(s.dev), minor(s.dev), s.sock_path,
		   o->allow_other ? "on" : "off", (int)getpid());
	rc = loop(&s);
out:
	for (i = 0; i < REMUS_RAMFS_MAX_CONNS; i++)
		if (s.conns[i].fd >= 0)
			conn_close(&s, &s.conns[i]);
	if (s.mounted && umount2(s.mnt_real, 0) < 0) {
		/* Only on a failed start-up or a lost mount. */
		remus_warn(TAG, "cannot unmount %s: %s; detaching it", s.mnt,
			   strerror(errno));
		umount2(s.mnt_real, MNT_DETACH);
	}
	if (s.sock_bound) {
		struct stat st;

		if (stat(s.sock_path, &st) == 0 && st.st_ino == s.sock_ino)
			unlink(s.sock_path);
	}
	if (s.listen_fd >= 0)
		close(s.listen_fd);
	if (s.fuse_fd >= 0)
		close(s.fuse_fd);
	if (s.sig_fd >= 0)
		close(s.sig_fd);
	free(s.buf);
	remus_ramfs_release(&s.fs);
	return rc;
}
