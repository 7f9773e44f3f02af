/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hostd's private helpers for strict input: the error formatter every
 * parser of hostd uses (config, control requests, state files, peer
 * messages) and the two JSON member readers the state files and the peer
 * messages share.  Each returns 0, or -EINVAL with a message naming the
 * key in @err (@errlen bytes, truncated, always terminated).
 */
#ifndef REMUS_HOSTD_FIELD_H
#define REMUS_HOSTD_FIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

/* Formats the message into @err and returns -EINVAL. */
int remus_hostd_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Copies the string member @key of @o into @dst (@size bytes with its NUL).
 * Refused: missing, not a string, an embedded NUL, longer than @size - 1,
 * or empty when @nonempty. */
int remus_hostd_json_str(struct json_object *o, const char *key, char *dst, size_t size,
			 bool nonempty, char *err, size_t errlen);

/* The integer member @key of @o, in @min..@max, into *@out.  Refused:
 * missing, not an integer, negative, out of range. */
int remus_hostd_json_u64(struct json_object *o, const char *key, uint64_t min, uint64_t max,
			 uint64_t *out, char *err, size_t errlen);

#endif
