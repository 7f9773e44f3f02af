// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Strict input helpers shared by hostd's parsers (hostd/field.h): one
 * wording of each refusal, whichever file or message it came from.
 */
#include "hostd/field.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int remus_hostd_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int remus_hostd_json_str(struct json_object *o, const char *key, char *dst, size_t size,
			 bool nonempty, char *err, size_t errlen)
{
	struct json_object *v;
	const char *s;
	size_t n;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return remus_hostd_fail(err, errlen, "\"%s\" is missing or not a string", key);
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n != strlen(s))
		return remus_hostd_fail(err, errlen, "\"%s\" has a NUL byte", key);
	if (n >= size)
		return remus_hostd_fail(err, errlen, "\"%s\" is longer than %zu bytes", key,
					size - 1);
	if (nonempty && n == 0)
		return remus_hostd_fail(err, errlen, "\"%s\" is empty", key);
	memcpy(dst, s, n + 1);
	return 0;
}

int remus_hostd_json_u64(struct json_object *o, const char *key, uint64_t min, uint64_t max,
			 uint64_t *out, char *err, size_t errlen)
{
	struct json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return remus_hostd_fail(err, errlen, "\"%s\" is missing or not an integer", key);
	errno = 0;
	n = json_object_get_int64(v);
	if (n < 0 || errno == ERANGE || (uint64_t)n < min || (uint64_t)n > max)
		return remus_hostd_fail(err, errlen, "\"%s\" is not in %llu..%llu", key,
					(unsigned long long)min, (unsigned long long)max);
	*out = (uint64_t)n;
	return 0;
}
