// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Logging (see log.h).  Each message is formatted into one buffer and
 * written with a single fwrite so lines from a daemon and its children do
 * not interleave mid-line.  Timestamps are UTC wall-clock with
 * milliseconds, which is what an operator correlates with other hosts' logs.
 */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static enum remus_log_level log_level = REMUS_LOG_INFO;
static bool log_level_set;
static FILE *log_stream;
static char log_name[64];

static const char *const level_names[] = {
	[REMUS_LOG_ERROR] = "error",
	[REMUS_LOG_WARN] = "warn",
	[REMUS_LOG_INFO] = "info",
	[REMUS_LOG_DEBUG] = "debug",
};

int remus_log_parse_level(const char *s, enum remus_log_level *out)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (s && strcasecmp(s, level_names[i]) == 0) {
			*out = (enum remus_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void remus_log_set_level(enum remus_log_level level)
{
	log_level = level;
	log_level_set = true;
}

enum remus_log_level remus_log_get_level(void)
{
	if (!log_level_set) {
		enum remus_log_level l;

		if (remus_log_parse_level(getenv("REMUS_LOG"), &l) == 0)
			log_level = l;
		log_level_set = true;
	}
	return log_level;
}

void remus_log_set_name(const char *name)
{
	snprintf(log_name, sizeof(log_name), "%s", name ? name : "");
}

void remus_log_set_stream(FILE *stream)
{
	log_stream = stream;
}

void remus_log(enum remus_log_level level, const char *component,
	       const char *fmt, ...)
{
	static const char *const tags[] = { "ERROR", "WARN ", "INFO ", "DEBUG" };
	char line[4096];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	size_t n;
	int r;

	if (level > remus_log_get_level() || (unsigned)level > REMUS_LOG_DEBUG)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s [%s] %s%s",
		     ts.tv_nsec / 1000000, tags[level], component ? component : "-",
		     log_name, *log_name ? ": " : "");
	if (r > 0)
		n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
	/* Always end with exactly one newline, even when truncated. */
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	while (n > 0 && line[n - 1] == '\n')
		n--;
	line[n++] = '\n';
	fwrite(line, 1, n, log_stream ? log_stream : stderr);
	fflush(log_stream ? log_stream : stderr);
}
