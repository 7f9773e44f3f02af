/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The QMP proxy's text handling, private to virt/ and kept free of
 * sockets, threads and libvirt so that a fuzzer can drive all of it
 * (tests/fuzz/qmp_proxy): the client's lines are parsed into commands to
 * forward, and libvirt's strings (a monitor reply, an event's details,
 * both ultimately QEMU's words) are checked and rewritten into the lines
 * the client gets.  Nothing here trusts its input: lengths are bounded by
 * the caller's line limit, anything that is not what QMP allows is
 * reported, never passed through.
 */
#ifndef REMUS_VIRT_QMP_PROXY_WIRE_H
#define REMUS_VIRT_QMP_PROXY_WIRE_H

#include <stddef.h>

struct json_object;
struct remus_buf;

/* What a client line asks for. */
enum remus_qmp_proxy_kind {
	REMUS_QMP_PROXY_FORWARD,      /* a command for QEMU: forward remus_qmp_proxy_cmd.forward */
	REMUS_QMP_PROXY_CAPABILITIES, /* qmp_capabilities: answered by the proxy */
	REMUS_QMP_PROXY_REFUSE,       /* a JSON object that is not a valid command: answer
			  * remus_qmp_proxy_cmd.error_desc as a GenericError with the id */
};

struct remus_qmp_proxy_cmd {
	enum remus_qmp_proxy_kind kind;
	char *name;               /* owned; the "execute" value, or NULL */
	struct json_object *id;   /* owned (json_object_put); NULL: none */
	char *forward;            /* owned; REMUS_QMP_PROXY_FORWARD: the command without its
				   * id, as one line of JSON without newline */
	const char *error_desc;   /* REMUS_QMP_PROXY_REFUSE: static text */
};

/* Releases what @c owns and zeroes it.  Idempotent. */
void remus_qmp_proxy_cmd_release(struct remus_qmp_proxy_cmd *c);

/*
 * Takes the next complete line out of @in (consumed with its '\n').
 * Returns 1 with *@line and *@len (borrowed, valid until @in changes; the
 * newline excluded and a NUL written in its place), 0 if no complete line
 * is buffered, or -EMSGSIZE if @max_line bytes are buffered without a
 * newline (the client is then dropped).
 */
int remus_qmp_proxy_next_line(struct remus_buf *in, size_t max_line, char **line, size_t *len);

/*
 * Parses one client line (@len bytes at @line, borrowed).  Returns 0 with
 * *@out filled (owned: remus_qmp_proxy_cmd_release), 1 for a blank line (nothing to
 * do), or -EBADMSG for malformed JSON or a value that is not an object,
 * which closes the client (*@why: static text), or -ENOMEM.
 */
int remus_qmp_proxy_parse_command(const char *line, size_t len, struct remus_qmp_proxy_cmd *out, const char **why);

/*
 * Builds the client's reply line (owned, ending in '\n') from libvirt's
 * @reply (borrowed: QEMU's reply object as text) and the client's @id
 * (borrowed; NULL: none): {"return": R, "id": ID} or {"error": E, "id":
 * ID}.  Returns NULL and *@why if @reply is not such an object (the
 * caller answers an error instead), or NULL with *@why "out of memory".
 */
char *remus_qmp_proxy_build_reply(const char *reply, struct json_object *id, const char **why);

/* {"error": {"class": @cls, "desc": @desc}, "id": ID}\n (owned), or NULL
 * when out of memory.  All borrowed. */
char *remus_qmp_proxy_build_error(const char *cls, const char *desc, struct json_object *id);

/* {"return": {}, "id": ID}\n (owned), or NULL when out of memory. */
char *remus_qmp_proxy_build_empty_return(struct json_object *id);

/*
 * An event line (owned, ending in '\n'): {"event": @event, "data": DATA,
 * "timestamp": {"seconds": S, "microseconds": U}} where DATA is @details
 * (QEMU's "data" member as text, or NULL: no data member).  Returns NULL
 * if @event is not a plain name or @details is not a JSON object (the
 * event is then dropped with a warning), or when out of memory.
 */
char *remus_qmp_proxy_build_event(const char *event, long long seconds, unsigned micros,
		     const char *details);

/* The greeting line (owned, ending in '\n') from the "return" value of
 * query-version given as libvirt's reply text @reply (borrowed):
 * {"QMP": {"version": V, "capabilities": []}}.  NULL and *@why if the
 * reply is not a successful query-version. */
char *remus_qmp_proxy_build_greeting(const char *reply, const char **why);

#endif
