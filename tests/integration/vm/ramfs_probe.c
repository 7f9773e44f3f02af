// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ramfs_probe: a RAMFS dirty tracker (dirty.h) driven by a test script,
 * for a QEMU whose RAM is a file on `remusd ramfs`.
 *
 *   ramfs_probe RAM_PATH SOCKET OUT
 *
 * Attaches to RAM_PATH and prints "attached PAGES"; then, for each line
 * it reads on stdin, collects and prints "collected N" (the pages written
 * since the previous collect or the attach); at EOF it writes the
 * tracker's copy of the RAM (remus_dirty_ram()) to OUT and prints "saved".
 * The script stops the guest before the last collect, so the copy is
 * then the guest's RAM.  Exit 0, or 1 with the reason on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dirty/dirty.h"

int main(int argc, char **argv)
{
	struct remus_dirty_opts o = { .kind = REMUS_DIRTY_RAMFS, .ram_fd = -1 };
	struct remus_dirty *d = NULL;
	struct remus_dirty_set set = { 0 };
	const uint8_t *ram;
	char line[64];
	uint64_t off, size;
	int rc = 1, fd = -1, r;

	if (argc != 4) {
		fprintf(stderr, "usage: ramfs_probe RAM_PATH SOCKET OUT\n");
		return 2;
	}
	o.ram_path = argv[1];
	o.ramfs_socket = argv[2];
	setvbuf(stdout, NULL, _IOLBF, 0);
	r = remus_dirty_open(&o, &d);
	if (r < 0) {
		fprintf(stderr, "ramfs_probe: cannot attach %s: %s\n", argv[1],
			strerror(-r));
		goto out;
	}
	if (remus_dirty_set_init(&set, remus_dirty_npages(d)) < 0)
		goto out;
	printf("attached %llu\n", (unsigned long long)remus_dirty_npages(d));
	while (fgets(line, sizeof(line), stdin)) {
		r = remus_dirty_collect(d, &set);
		if (r < 0) {
			fprintf(stderr, "ramfs_probe: collect: %s\n", strerror(-r));
			goto out;
		}
		printf("collected %llu\n", (unsigned long long)set.ndirty);
	}
	ram = remus_dirty_ram(d);
	size = remus_dirty_npages(d) * REMUS_DIRTY_PAGE_SIZE;
	fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "ramfs_probe: %s: %s\n", argv[3], strerror(errno));
		goto out;
	}
	for (off = 0; off < size;) {
		ssize_t n = write(fd, ram + off, size - off > (1u << 20)
							? (1u << 20)
							: size - off);

		if (n <= 0) {
			fprintf(stderr, "ramfs_probe: writing %s: %s\n", argv[3],
				strerror(errno));
			goto out;
		}
		off += (uint64_t)n;
	}
	printf("saved\n");
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	remus_dirty_set_release(&set);
	remus_dirty_close(d);
	return rc;
}
