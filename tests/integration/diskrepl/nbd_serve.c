// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * nbd_serve: serves raw image files with diskrepl's NBD server on one
 * event loop until SIGTERM or SIGINT (test support).
 *
 *     nbd_serve [-r] [-d DESCRIPTION] SOCKET NAME=IMAGE [NAME=IMAGE ...]
 *
 * -r serves every image read-only.  The ops are plain file I/O:
 * pread/pwrite, fdatasync for FLUSH and after anything with FUA,
 * fallocate(ZERO_RANGE) for WRITE_ZEROES with NO_HOLE and
 * fallocate(PUNCH_HOLE|KEEP_SIZE) without it or for TRIM (falling back to
 * writing zeros, or to nothing for TRIM, where the filesystem has
 * neither).  On exit it prints, on stdout, one line of server statistics
 * and one per image of what its ops saw, so that a test can check that
 * command flags reached the ops:
 *
 *     stats clients=2 reads=... protocol_errors=0
 *     image NAME fua=3 zero_nohole=1 zero_hole=2 trims=1 flushes=4
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/loop.h"
#include "diskrepl/nbd_server.h"

#define MAX_IMAGES 8

struct image {
	char *name; /* owned */
	int fd;     /* owned */
	uint64_t size;
	uint64_t fua, zero_nohole, zero_hole, trims, flushes;
};

static int sync_if_fua(struct image *im, uint32_t flags)
{
	if (!(flags & REMUS_NBD_CMD_FLAG_FUA))
		return 0;
	im->fua++;
	return fdatasync(im->fd) < 0 ? -errno : 0;
}

static int img_read(void *opaque, uint64_t off, uint32_t len, void *buf)
{
	struct image *im = opaque;
	uint8_t *p = buf;

	while (len) {
		ssize_t r = pread(im->fd, p, len, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0) /* the file shrank: what is gone reads as zeros */
			return memset(p, 0, len), 0;
		p += r, off += (uint64_t)r, len -= (uint32_t)r;
	}
	return 0;
}

static int write_all_at(int fd, const uint8_t *p, uint32_t len, uint64_t off)
{
	while (len) {
		ssize_t r = pwrite(fd, p, len, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		p += r, off += (uint64_t)r, len -= (uint32_t)r;
	}
	return 0;
}

static int img_write(void *opaque, uint64_t off, uint32_t len, const void *buf, uint32_t flags)
{
	struct image *im = opaque;
	int rc = write_all_at(im->fd, buf, len, off);

	return rc < 0 ? rc : sync_if_fua(im, flags);
}

static int write_zeros(struct image *im, uint64_t off, uint32_t len)
{
	static const uint8_t zeros[65536];
	int rc;

	while (len) {
		uint32_t n = len < sizeof(zeros) ? len : (uint32_t)sizeof(zeros);

		if ((rc = write_all_at(im->fd, zeros, n, off)) < 0)
			return rc;
		off += n, len -= n;
	}
	return 0;
}

static int img_write_zeroes(void *opaque, uint64_t off, uint32_t len, uint32_t flags)
{
	struct image *im = opaque;
	int mode, rc = 0;

	if (flags & REMUS_NBD_CMD_FLAG_NO_HOLE) {
		im->zero_nohole++;
		mode = FALLOC_FL_ZERO_RANGE;
	} else {
		im->zero_hole++;
		mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	}
	if (fallocate(im->fd, mode, (off_t)off, (off_t)len) < 0) {
		if (errno != EOPNOTSUPP)
			return -errno;
		rc = write_zeros(im, off, len);
	}
	return rc < 0 ? rc : sync_if_fua(im, flags);
}

static int img_trim(void *opaque, uint64_t off, uint32_t len, uint32_t flags)
{
	struct image *im = opaque;

	im->trims++;
	/* TRIM is advisory: where holes cannot be punched, do nothing. */
	if (fallocate(im->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		      (off_t)len) < 0 && errno != EOPNOTSUPP)
		return -errno;
	return sync_if_fua(im, flags);
}

static int img_flush(void *opaque)
{
	struct image *im = opaque;

	im->flushes++;
	return fdatasync(im->fd) < 0 ? -errno : 0;
}

static const struct remus_nbd_ops image_ops = {
	.read = img_read,
	.write = img_write,
	.write_zeroes = img_write_zeroes,
	.trim = img_trim,
	.flush = img_flush,
};

static void signal_cb(struct remus_loop *loop, int fd, unsigned events, void *opaque)
{
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		remus_loop_stop(loop, 0);
}

static void usage(void)
{
	fprintf(stderr, "usage: nbd_serve [-r] [-d DESCRIPTION] SOCKET NAME=IMAGE...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct image images[MAX_IMAGES];
	struct remus_nbd_server *srv = NULL;
	struct remus_loop *loop = NULL;
	struct remus_nbd_stats st;
	const char *desc = NULL;
	bool read_only = false;
	int nimages = 0, sfd = -1, opt, rc = 1, i;
	sigset_t mask;

	while ((opt = getopt(argc, argv, "rd:")) != -1) {
		if (opt == 'r')
			read_only = true;
		else if (opt == 'd')
			desc = optarg;
		else
			usage();
	}
	if (argc - optind < 2 || argc - optind - 1 > MAX_IMAGES)
		usage();

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (remus_loop_new(&loop) < 0)
		goto out;
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0 || remus_loop_add_fd(loop, sfd, REMUS_EV_READ, signal_cb, NULL) < 0)
		goto out;
	if (remus_nbd_server_new(loop, argv[optind], &srv) < 0)
		goto out;
	for (i = optind + 1; i < argc; i++) {
		struct image *im = &images[nimages];
		char *eq = strchr(argv[i], '=');
		struct stat sb;

		if (!eq)
			usage();
		*eq = 0;
		im->fd = open(eq + 1, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (im->fd < 0 || fstat(im->fd, &sb) < 0) {
			fprintf(stderr, "nbd_serve: cannot open image %s: %s\n", eq + 1,
				strerror(errno));
			goto out;
		}
		im->name = argv[i];
		im->size = (uint64_t)sb.st_size;
		im->fua = im->zero_nohole = im->zero_hole = im->trims = im->flushes = 0;
		nimages++;
		if (remus_nbd_server_add_export(srv, &(struct remus_nbd_export){
			.name = im->name, .description = desc, .size = im->size,
			.read_only = read_only, .ops = &image_ops, .opaque = im }) < 0)
			goto out;
	}
	rc = remus_loop_run(loop);
	remus_nbd_server_get_stats(srv, &st);
	printf("stats clients=%" PRIu64 " reads=%" PRIu64 " writes=%" PRIu64
	       " bytes_read=%" PRIu64 " bytes_written=%" PRIu64 " flushes=%" PRIu64
	       " trims=%" PRIu64 " zeroes=%" PRIu64 " protocol_errors=%" PRIu64 "\n",
	       st.clients, st.reads, st.writes, st.bytes_read, st.bytes_written, st.flushes,
	       st.trims, st.zeroes, st.protocol_errors);
	for (i = 0; i < nimages; i++)
		printf("image %s fua=%" PRIu64 " zero_nohole=%" PRIu64 " zero_hole=%" PRIu64
		       " trims=%" PRIu64 " flushes=%" PRIu64 "\n",
		       images[i].name, images[i].fua, images[i].zero_nohole, images[i].zero_hole,
		       images[i].trims, images[i].flushes);
	fflush(stdout);
out:
	remus_nbd_server_free(srv);
	for (i = 0; i < nimages; i++)
		close(images[i].fd);
	if (sfd >= 0)
		close(sfd);
	remus_loop_free(loop);
	return rc;
}
