/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to diskrepl/: the file I/O loops that the image, the journal and
 * the roles share.  All restart on EINTR and return -errno on failure.
 */
#ifndef REMUS_DISKREPL_FILEIO_H
#define REMUS_DISKREPL_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Writes all @n bytes of @buf (borrowed) at @off.  0, or -EIO if the file
 * accepts no more, or -errno. */
int remus_pwrite_all(int fd, const void *buf, size_t n, uint64_t off);
/* Reads up to @n bytes at @off into @buf.  Returns the bytes read (fewer
 * than @n only at end of file) or -errno. */
ssize_t remus_pread_all(int fd, void *buf, size_t n, uint64_t off);
/* fsyncs the directory holding @path (borrowed): a new directory entry is
 * durable only then.  0 or -errno. */
int remus_sync_parent_dir(const char *path);
/* Whether all @n bytes at @p are zero. */
bool remus_all_zero(const void *p, size_t n);

#endif
