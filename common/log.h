/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Logging: one line per message on stderr (or a chosen stream),
 *
 *     2026-11-21T13:49:20.123Z INFO  [qmp] connected to /run/x.qmp
 *
 * with a level and a component tag.  The level comes from
 * remus_log_set_level() or, at first use, the REMUS_LOG environment
 * variable (error, warn, info, debug; default info).
 *
 * A process that serves one protected domain (remusd primary|standby
 * --name DOMAIN, as the host daemon starts them) names it once with
 * remus_log_set_name(), and every line then carries it after the tag:
 *
 *     2026-11-21T13:49:20.123Z INFO  [qmp] web1: connected to /run/x.qmp
 *
 * so the journal of a host with many domains can be read per domain.
 */
#ifndef REMUS_COMMON_LOG_H
#define REMUS_COMMON_LOG_H

#include <stdio.h>

enum remus_log_level {
	REMUS_LOG_ERROR,
	REMUS_LOG_WARN,
	REMUS_LOG_INFO,
	REMUS_LOG_DEBUG,
};

void remus_log_set_level(enum remus_log_level level);
enum remus_log_level remus_log_get_level(void);
/* Parses "error", "warn", "info" or "debug".  Returns 0 or -EINVAL. */
int remus_log_parse_level(const char *s, enum remus_log_level *out);
/* @stream is borrowed and must outlive logging; NULL restores stderr. */
void remus_log_set_stream(FILE *stream);

/* The domain this process serves, put in every line; @name is copied
 * (at most 63 bytes are kept); NULL or "" removes it. */
void remus_log_set_name(const char *name);

/* @component: a short tag such as "qmp" or "engine" (borrowed). */
void remus_log(enum remus_log_level level, const char *component,
	       const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define remus_err(comp, ...) remus_log(REMUS_LOG_ERROR, comp, __VA_ARGS__)
#define remus_warn(comp, ...) remus_log(REMUS_LOG_WARN, comp, __VA_ARGS__)
#define remus_info(comp, ...) remus_log(REMUS_LOG_INFO, comp, __VA_ARGS__)
#define remus_debug(comp, ...) remus_log(REMUS_LOG_DEBUG, comp, __VA_ARGS__)

#endif
