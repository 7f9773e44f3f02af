// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * diskrepl's NBD protocol layer (see nbd_proto.h for what is negotiated
 * and why): a state machine over an input and an output buffer.
 *
 *   CLIENT_FLAGS --flags--> OPTIONS --GO/EXPORT_NAME--> TRANSMISSION
 *                              |  \--ABORT--> DONE          |--DISC--> DONE
 *                              \-- violation --> FAILED <----/
 *
 * feed() looks at the message at the front of the input; when it is
 * complete it is handled (an option answered, a request executed through
 * the export's ops and its simple reply appended), then consumed.  A
 * partial message stays in the input, so the split of the byte stream
 * never matters.  Nothing here knows about sockets or the loop: the
 * server (nbd_server.c) moves the bytes.
 */
#include "diskrepl/nbd_proto.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/wire.h"

#define LOG "nbd"

#define OPT_HDR 16u  /* IHAVEOPT, option, length */
#define REQ_HDR 28u  /* magic, flags, type, cookie, offset, length */
#define REPLY_HDR 16u /* magic, error, cookie */
#define OPT_REP_HDR 20u

_Static_assert(REMUS_NBD_IN_LIMIT >= OPT_HDR + REMUS_NBD_MAX_OPTION_DATA,
	       "an option must fit the input buffer");
_Static_assert(REMUS_NBD_MAX_OPTION_DATA >= 4 + REMUS_NBD_MAX_NAME + 2 + 2 * 8,
	       "a GO with the longest name and a few info requests must fit");

/* ------------------------------------------------------------------ */
/* Export table                                                        */

struct remus_nbd_table {
	struct remus_nbd_export **v; /* owned, each with owned name/description */
	size_t n, cap;
};

int remus_nbd_table_new(struct remus_nbd_table **out)
{
	struct remus_nbd_table *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	*out = t;
	return 0;
}

static void export_free(struct remus_nbd_export *e)
{
	if (!e)
		return;
	free((char *)e->name);
	free((char *)e->description);
	free(e);
}

void remus_nbd_table_free(struct remus_nbd_table *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n; i++)
		export_free(t->v[i]);
	free(t->v);
	free(t);
}

const struct remus_nbd_export *remus_nbd_table_find(const struct remus_nbd_table *t,
						    const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strlen(t->v[i]->name) == len && memcmp(t->v[i]->name, name, len) == 0)
			return t->v[i];
	return NULL;
}

int remus_nbd_table_add(struct remus_nbd_table *t, const struct remus_nbd_export *e)
{
	struct remus_nbd_export *copy = NULL, **v;
	int rc;

	if (!e || !e->name || !e->ops || !e->ops->read || (!e->read_only && !e->ops->write) ||
	    strlen(e->name) > REMUS_NBD_MAX_NAME ||
	    (e->description && strlen(e->description) > REMUS_NBD_MAX_NAME) ||
	    e->size > (uint64_t)INT64_MAX) {
		rc = -EINVAL;
		goto out;
	}
	if (remus_nbd_table_find(t, e->name, strlen(e->name))) {
		rc = -EEXIST;
		goto out;
	}
	copy = calloc(1, sizeof(*copy));
	if (!copy) {
		rc = -ENOMEM;
		goto out;
	}
	*copy = *e;
	copy->name = strdup(e->name);
	copy->description = e->description ? strdup(e->description) : NULL;
	if (!copy->name || (e->description && !copy->description)) {
		rc = -ENOMEM;
		goto out;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 4;

		v = realloc(t->v, cap * sizeof(*v));
		if (!v) {
			rc = -ENOMEM;
			goto out;
		}
		t->v = v;
		t->cap = cap;
	}
	/* Pointers to entries stay valid as the array grows: conns keep them. */
	t->v[t->n++] = copy;
	copy = NULL;
	rc = 0;
out:
	export_free(copy);
	return rc;
}

static uint16_t transmission_flags(const struct remus_nbd_export *e)
{
	uint16_t f = REMUS_NBD_FLAG_HAS_FLAGS;

	if (e->read_only)
		f |= REMUS_NBD_FLAG_READ_ONLY;
	if (e->ops->flush)
		f |= REMUS_NBD_FLAG_SEND_FLUSH;
	if (e->ops->flush && !e->read_only)
		f |= REMUS_NBD_FLAG_SEND_FUA;
	if (e->ops->trim && !e->read_only)
		f |= REMUS_NBD_FLAG_SEND_TRIM;
	if (e->ops->write_zeroes && !e->read_only)
		f |= REMUS_NBD_FLAG_SEND_WRITE_ZEROES;
	return f;
}

/* ------------------------------------------------------------------ */
/* Protocol layer                                                      */

struct remus_nbd_conn {
	const struct remus_nbd_table *table; /* borrowed */
	struct remus_nbd_stats *stats;       /* borrowed, may be NULL */
	char *peer;                          /* owned */
	enum remus_nbd_conn_state state;
	int result;              /* what feed returns once DONE or FAILED */
	bool no_zeroes;          /* client set NBD_FLAG_C_NO_ZEROES */
	bool hold;
	size_t out_high;
	const struct remus_nbd_export *exp; /* borrowed from the table */
	uint16_t tflags;
	uint64_t op_errors;      /* for thinning the log when a disk fails */
	char err[256];
};

int remus_nbd_conn_new(const struct remus_nbd_table *table, struct remus_nbd_stats *stats,
		       const char *peer, struct remus_nbd_conn **out)
{
	struct remus_nbd_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->peer = strdup(peer ? peer : "client");
	if (!c->peer) {
		free(c);
		return -ENOMEM;
	}
	c->table = table;
	c->stats = stats;
	c->state = REMUS_NBD_CONN_CLIENT_FLAGS;
	c->out_high = REMUS_NBD_OUT_HIGH_WATER;
	*out = c;
	return 0;
}

void remus_nbd_conn_free(struct remus_nbd_conn *c)
{
	if (!c)
		return;
	free(c->peer);
	free(c);
}

void remus_nbd_conn_set_out_high_water(struct remus_nbd_conn *c, size_t bytes)
{
	c->out_high = bytes ? bytes : 1;
}

void remus_nbd_conn_set_hold(struct remus_nbd_conn *c, bool hold)
{
	c->hold = hold;
}

enum remus_nbd_conn_state remus_nbd_conn_get_state(const struct remus_nbd_conn *c)
{
	return c->state;
}

const char *remus_nbd_conn_error(const struct remus_nbd_conn *c)
{
	return c->err;
}

const struct remus_nbd_export *remus_nbd_conn_export(const struct remus_nbd_conn *c)
{
	return c->exp;
}

int remus_nbd_conn_start(struct remus_nbd_conn *c, struct remus_buf *out)
{
	struct remus_wire_writer w;

	remus_wire_writer_init(&w, out);
	remus_wire_put_be64(&w, REMUS_NBD_MAGIC);
	remus_wire_put_be64(&w, REMUS_NBD_OPTS_MAGIC);
	remus_wire_put_be16(&w, REMUS_NBD_FLAG_FIXED_NEWSTYLE | REMUS_NBD_FLAG_NO_ZEROES);
	return remus_wire_writer_error(&w);
}

/* Copies at most 64 bytes of a client-supplied name into @dst for a log
 * message, with anything unprintable shown as '?'. */
static const char *printable(char *dst, size_t dstlen, const uint8_t *p, size_t len)
{
	size_t i, n = len < dstlen - 4 ? len : dstlen - 4;

	for (i = 0; i < n; i++)
		dst[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	if (n < len)
		memcpy(dst + n, "...", 3), n += 3;
	dst[n] = 0;
	return dst;
}

static int set_state_error(struct remus_nbd_conn *c, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Ends the conn: FAILED with @rc (negative) or DONE (REMUS_NBD_FEED_DONE),
 * recording why. */
static int set_state_error(struct remus_nbd_conn *c, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	c->result = rc;
	c->state = rc < 0 ? REMUS_NBD_CONN_FAILED : REMUS_NBD_CONN_DONE;
	if (c->stats && (rc == -EPROTO || rc == -EMSGSIZE))
		c->stats->protocol_errors++;
	return rc;
}

static int out_error(struct remus_nbd_conn *c, int rc)
{
	return set_state_error(c, rc, "cannot queue a reply: %s", strerror(-rc));
}

/* One option reply; @data (borrowed) may be NULL when @len is 0. */
static void put_opt_reply(struct remus_wire_writer *w, uint32_t opt, uint32_t type,
			  const void *data, uint32_t len)
{
	remus_wire_put_be64(w, REMUS_NBD_REP_MAGIC);
	remus_wire_put_be32(w, opt);
	remus_wire_put_be32(w, type);
	remus_wire_put_be32(w, len);
	remus_wire_put_bytes(w, data, len);
}

static int opt_error(struct remus_nbd_conn *c, struct remus_buf *out, uint32_t opt,
		     uint32_t type, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* An error reply carrying a message for the user (QEMU prints it). */
static int opt_error(struct remus_nbd_conn *c, struct remus_buf *out, uint32_t opt,
		     uint32_t type, const char *fmt, ...)
{
	struct remus_wire_writer w;
	char msg[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	remus_debug(LOG, "%s: option %" PRIu32 " refused: %s", c->peer, opt, msg);
	remus_wire_writer_init(&w, out);
	put_opt_reply(&w, opt, type, msg, (uint32_t)n);
	return remus_wire_writer_error(&w);
}

static void put_info_export(struct remus_wire_writer *w, uint32_t opt,
			    const struct remus_nbd_export *e)
{
	uint8_t b[12];

	remus_put_be16(b, REMUS_NBD_INFO_EXPORT);
	remus_put_be64(b + 2, e->size);
	remus_put_be16(b + 10, transmission_flags(e));
	put_opt_reply(w, opt, REMUS_NBD_REP_INFO, b, sizeof(b));
}

static void put_info_string(struct remus_wire_writer *w, uint32_t opt, uint16_t type,
			    const char *s)
{
	size_t len = strlen(s);

	remus_wire_put_be64(w, REMUS_NBD_REP_MAGIC);
	remus_wire_put_be32(w, opt);
	remus_wire_put_be32(w, REMUS_NBD_REP_INFO);
	remus_wire_put_be32(w, (uint32_t)(2 + len));
	remus_wire_put_be16(w, type);
	remus_wire_put_bytes(w, s, len);
}

static void put_info_block_size(struct remus_wire_writer *w, uint32_t opt)
{
	uint8_t b[14];

	remus_put_be16(b, REMUS_NBD_INFO_BLOCK_SIZE);
	remus_put_be32(b + 2, REMUS_NBD_MIN_BLOCK);
	remus_put_be32(b + 6, REMUS_NBD_PREF_BLOCK);
	remus_put_be32(b + 10, REMUS_NBD_MAX_PAYLOAD);
	put_opt_reply(w, opt, REMUS_NBD_REP_INFO, b, sizeof(b));
}

/* NBD_OPT_INFO and NBD_OPT_GO: be32 name length, name, be16 n, n x be16. */
static int opt_info_go(struct remus_nbd_conn *c, struct remus_buf *out, uint32_t opt,
		       const uint8_t *data, uint32_t len)
{
	const char *what = opt == REMUS_NBD_OPT_GO ? "NBD_OPT_GO" : "NBD_OPT_INFO";
	bool want_name = false, want_desc = false, want_bs = false;
	const struct remus_nbd_export *e;
	struct remus_wire_writer w;
	uint32_t namelen, i;
	uint64_t need;
	uint16_t nreq;
	char shown[80];
	int rc;

	if (len < 6)
		return opt_error(c, out, opt, REMUS_NBD_REP_ERR_INVALID,
				 "%s data of %" PRIu32 " bytes is shorter than 6", what, len);
	namelen = remus_get_be32(data);
	if (namelen > len - 6)
		return opt_error(c, out, opt, REMUS_NBD_REP_ERR_INVALID,
				 "%s name length %" PRIu32 " exceeds its data (%" PRIu32 " bytes)",
				 what, namelen, len);
	nreq = remus_get_be16(data + 4 + namelen);
	need = (uint64_t)4 + namelen + 2 + (uint64_t)2 * nreq;
	if (need != len)
		return opt_error(c, out, opt, REMUS_NBD_REP_ERR_INVALID,
				 "%s with %u information requests must be %" PRIu64
				 " bytes, not %" PRIu32,
				 what, nreq, need, len);
	e = remus_nbd_table_find(c->table, (const char *)data + 4, namelen);
	if (!e) {
		/* Usually a configuration mistake (export= of -blockdev): say
		 * so here too, not only to the client. */
		printable(shown, sizeof(shown), data + 4, namelen);
		remus_warn(LOG, "%s asked for export '%s', which is not served here", c->peer,
			   shown);
		return opt_error(c, out, opt, REMUS_NBD_REP_ERR_UNKNOWN,
				 "export '%s' is not served here", shown);
	}
	for (i = 0; i < nreq; i++) {
		/* Unknown requests are ignored, as the protocol requires. */
		switch (remus_get_be16(data + 4 + namelen + 2 + 2 * i)) {
		case REMUS_NBD_INFO_NAME:
			want_name = true;
			break;
		case REMUS_NBD_INFO_DESCRIPTION:
			want_desc = true;
			break;
		case REMUS_NBD_INFO_BLOCK_SIZE:
			want_bs = true;
			break;
		default:
			break;
		}
	}
	remus_wire_writer_init(&w, out);
	put_info_export(&w, opt, e);
	if (want_name)
		put_info_string(&w, opt, REMUS_NBD_INFO_NAME, e->name);
	if (want_desc && e->description)
		put_info_string(&w, opt, REMUS_NBD_INFO_DESCRIPTION, e->description);
	if (want_bs)
		put_info_block_size(&w, opt);
	put_opt_reply(&w, opt, REMUS_NBD_REP_ACK, NULL, 0);
	rc = remus_wire_writer_error(&w);
	if (rc < 0)
		return rc;
	if (opt == REMUS_NBD_OPT_GO) {
		c->exp = e;
		c->tflags = transmission_flags(e);
		c->state = REMUS_NBD_CONN_TRANSMISSION;
		remus_debug(LOG, "%s: serving export '%s' (%" PRIu64 " bytes, flags 0x%x)",
			    c->peer, e->name, e->size, c->tflags);
	}
	return 0;
}

static int opt_export_name(struct remus_nbd_conn *c, struct remus_buf *out,
			   const uint8_t *data, uint32_t len)
{
	static const uint8_t zeroes[124];
	const struct remus_nbd_export *e;
	struct remus_wire_writer w;
	char shown[80];
	int rc;

	e = remus_nbd_table_find(c->table, (const char *)data, len);
	if (!e)
		/* This option cannot carry an error: the protocol says close. */
		return set_state_error(c, -ENOENT,
				       "asked with NBD_OPT_EXPORT_NAME for export '%s', which is "
				       "not served here",
				       printable(shown, sizeof(shown), data, len));
	c->exp = e;
	c->tflags = transmission_flags(e);
	remus_wire_writer_init(&w, out);
	remus_wire_put_be64(&w, e->size);
	remus_wire_put_be16(&w, c->tflags);
	if (!c->no_zeroes)
		remus_wire_put_bytes(&w, zeroes, sizeof(zeroes));
	rc = remus_wire_writer_error(&w);
	if (rc < 0)
		return rc;
	c->state = REMUS_NBD_CONN_TRANSMISSION;
	return 0;
}

static int opt_list(struct remus_nbd_conn *c, struct remus_buf *out, uint32_t len)
{
	struct remus_wire_writer w;
	uint64_t total = OPT_REP_HDR;
	size_t i;

	if (len != 0)
		return opt_error(c, out, REMUS_NBD_OPT_LIST, REMUS_NBD_REP_ERR_INVALID,
				 "NBD_OPT_LIST takes no data, got %" PRIu32 " bytes", len);
	for (i = 0; i < c->table->n; i++) {
		const struct remus_nbd_export *e = c->table->v[i];

		total += OPT_REP_HDR + 4 + strlen(e->name) +
			 (e->description ? strlen(e->description) : 0);
	}
	/* Bounded so that the reply always fits the output buffer's slack. */
	if (total > REMUS_NBD_MAX_PAYLOAD)
		return opt_error(c, out, REMUS_NBD_OPT_LIST, REMUS_NBD_REP_ERR_TOO_BIG,
				 "the export list (%" PRIu64 " bytes) is too long to send", total);
	remus_wire_writer_init(&w, out);
	for (i = 0; i < c->table->n; i++) {
		const struct remus_nbd_export *e = c->table->v[i];
		size_t nl = strlen(e->name), dl = e->description ? strlen(e->description) : 0;

		remus_wire_put_be64(&w, REMUS_NBD_REP_MAGIC);
		remus_wire_put_be32(&w, REMUS_NBD_OPT_LIST);
		remus_wire_put_be32(&w, REMUS_NBD_REP_SERVER);
		remus_wire_put_be32(&w, (uint32_t)(4 + nl + dl));
		remus_wire_put_be32(&w, (uint32_t)nl);
		remus_wire_put_bytes(&w, e->name, nl);
		remus_wire_put_bytes(&w, e->description, dl);
	}
	put_opt_reply(&w, REMUS_NBD_OPT_LIST, REMUS_NBD_REP_ACK, NULL, 0);
	return remus_wire_writer_error(&w);
}

/* One complete option (header and data) at the front of @in. */
static int handle_option(struct remus_nbd_conn *c, struct remus_buf *out, uint32_t opt,
			 const uint8_t *data, uint32_t len)
{
	struct remus_wire_writer w;
	int rc;

	switch (opt) {
	case REMUS_NBD_OPT_EXPORT_NAME:
		return opt_export_name(c, out, data, len);
	case REMUS_NBD_OPT_ABORT:
		/* Data is ignored, as the protocol asks. */
		remus_wire_writer_init(&w, out);
		put_opt_reply(&w, opt, REMUS_NBD_REP_ACK, NULL, 0);
		rc = remus_wire_writer_error(&w);
		if (rc < 0)
			return rc;
		return set_state_error(c, REMUS_NBD_FEED_DONE, "client aborted the negotiation");
	case REMUS_NBD_OPT_LIST:
		return opt_list(c, out, len);
	case REMUS_NBD_OPT_INFO:
	case REMUS_NBD_OPT_GO:
		return opt_info_go(c, out, opt, data, len);
	case REMUS_NBD_OPT_STRUCTURED_REPLY:
	case REMUS_NBD_OPT_EXTENDED_HEADERS:
	case REMUS_NBD_OPT_LIST_META_CONTEXT:
	case REMUS_NBD_OPT_SET_META_CONTEXT:
		/* ERR_UNSUP (not POLICY or INVALID) is what makes QEMU fall
		 * back to simple replies instead of giving up. */
		return opt_error(c, out, opt, REMUS_NBD_REP_ERR_UNSUP,
				 "this server sends simple replies only");
	case REMUS_NBD_OPT_STARTTLS:
		return opt_error(c, out, opt, REMUS_NBD_REP_ERR_UNSUP,
				 "this server serves a local unix socket without TLS");
	default:
		return opt_error(c, out, opt, REMUS_NBD_REP_ERR_UNSUP,
				 "option %" PRIu32 " is not supported", opt);
	}
}

static uint32_t nbd_errno(int rc)
{
	switch (-rc) {
	case EPERM:
	case EROFS:
		return REMUS_NBD_EPERM;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return REMUS_NBD_ENOSPC;
	case EINVAL:
		return REMUS_NBD_EINVAL;
	case ENOMEM:
		return REMUS_NBD_ENOMEM;
	case EOVERFLOW:
		return REMUS_NBD_EOVERFLOW;
	case ENOTSUP:
		return REMUS_NBD_ENOTSUP;
	case ESHUTDOWN:
		return REMUS_NBD_ESHUTDOWN;
	default:
		return REMUS_NBD_EIO;
	}
}

static const char *cmd_name(uint16_t type)
{
	switch (type) {
	case REMUS_NBD_CMD_READ: return "READ";
	case REMUS_NBD_CMD_WRITE: return "WRITE";
	case REMUS_NBD_CMD_DISC: return "DISC";
	case REMUS_NBD_CMD_FLUSH: return "FLUSH";
	case REMUS_NBD_CMD_TRIM: return "TRIM";
	case REMUS_NBD_CMD_CACHE: return "CACHE";
	case REMUS_NBD_CMD_WRITE_ZEROES: return "WRITE_ZEROES";
	case REMUS_NBD_CMD_BLOCK_STATUS: return "BLOCK_STATUS";
	default: return "unknown command";
	}
}

static int put_simple_reply(struct remus_buf *out, uint32_t error, uint64_t cookie)
{
	uint8_t b[REPLY_HDR];

	remus_put_be32(b, REMUS_NBD_SIMPLE_REPLY_MAGIC);
	remus_put_be32(b + 4, error);
	remus_put_be64(b + 8, cookie);
	return remus_buf_append(out, b, sizeof(b));
}

/* An op failed: worth a warning (a failing disk), but not one per request. */
static void log_op_error(struct remus_nbd_conn *c, uint16_t type, uint64_t off, uint32_t len,
			 int rc)
{
	c->op_errors++;
	if (c->op_errors > 8 && (c->op_errors & (c->op_errors - 1)))
		return;
	remus_warn(LOG, "%s: %s of %" PRIu32 " bytes at %" PRIu64 " on export '%s' failed: %s"
		   " (%" PRIu64 " failures on this connection)",
		   c->peer, cmd_name(type), len, off, c->exp->name, strerror(-rc), c->op_errors);
}

/* Executes one complete request; @payload (borrowed) holds a WRITE's data. */
static int handle_request(struct remus_nbd_conn *c, struct remus_buf *out, uint16_t flags,
			  uint16_t type, uint64_t cookie, uint64_t off, uint32_t len,
			  const uint8_t *payload)
{
	const struct remus_nbd_export *e = c->exp;
	const struct remus_nbd_ops *ops = e->ops;
	uint16_t allowed = REMUS_NBD_CMD_FLAG_FUA;
	bool in_range = off <= e->size && len <= e->size - off;
	uint32_t err = 0;
	int rc;

	if (type == REMUS_NBD_CMD_WRITE_ZEROES)
		allowed |= REMUS_NBD_CMD_FLAG_NO_HOLE;
	if (flags & ~allowed) {
		err = REMUS_NBD_EINVAL;
		goto reply;
	}
	switch (type) {
	case REMUS_NBD_CMD_READ: {
		uint8_t *p;

		if (!in_range || len > REMUS_NBD_MAX_PAYLOAD) {
			err = REMUS_NBD_EINVAL;
			break;
		}
		/* Read straight into the output buffer behind the header. */
		rc = remus_buf_reserve(out, REPLY_HDR + (size_t)len);
		if (rc < 0)
			return rc;
		p = remus_buf_tail(out);
		rc = len ? ops->read(e->opaque, off, len, p + REPLY_HDR) : 0;
		if (rc < 0) {
			log_op_error(c, type, off, len, rc);
			err = nbd_errno(rc);
			break;
		}
		remus_put_be32(p, REMUS_NBD_SIMPLE_REPLY_MAGIC);
		remus_put_be32(p + 4, 0);
		remus_put_be64(p + 8, cookie);
		remus_buf_commit(out, REPLY_HDR + (size_t)len);
		if (c->stats) {
			c->stats->reads++;
			c->stats->bytes_read += len;
		}
		return 0;
	}
	case REMUS_NBD_CMD_WRITE:
		if (e->read_only) {
			err = REMUS_NBD_EPERM;
			break;
		}
		if (!in_range) {
			err = REMUS_NBD_ENOSPC; /* what the protocol asks past the end */
			break;
		}
		rc = len ? ops->write(e->opaque, off, len, payload, flags) : 0;
		if (rc < 0) {
			log_op_error(c, type, off, len, rc);
			err = nbd_errno(rc);
		} else if (c->stats) {
			c->stats->writes++;
			c->stats->bytes_written += len;
		}
		break;
	case REMUS_NBD_CMD_FLUSH:
		if (!ops->flush || off || len) {
			err = REMUS_NBD_EINVAL;
			break;
		}
		rc = ops->flush(e->opaque);
		if (rc < 0) {
			log_op_error(c, type, off, len, rc);
			err = nbd_errno(rc);
		} else if (c->stats) {
			c->stats->flushes++;
		}
		break;
	case REMUS_NBD_CMD_TRIM:
	case REMUS_NBD_CMD_WRITE_ZEROES: {
		bool zero = type == REMUS_NBD_CMD_WRITE_ZEROES;

		if (e->read_only) {
			err = REMUS_NBD_EPERM;
			break;
		}
		if (!(zero ? ops->write_zeroes : ops->trim)) {
			err = REMUS_NBD_EINVAL;
			break;
		}
		if (!in_range) {
			err = zero ? REMUS_NBD_ENOSPC : REMUS_NBD_EINVAL;
			break;
		}
		rc = !len ? 0 : zero ? ops->write_zeroes(e->opaque, off, len, flags)
				     : ops->trim(e->opaque, off, len, flags);
		if (rc < 0) {
			log_op_error(c, type, off, len, rc);
			err = nbd_errno(rc);
		} else if (c->stats) {
			if (zero)
				c->stats->zeroes++;
			else
				c->stats->trims++;
		}
		break;
	}
	default:
		/* CACHE, BLOCK_STATUS (needs structured replies) and unknown. */
		err = REMUS_NBD_EINVAL;
		break;
	}
reply:
	if (err && err != REMUS_NBD_EIO)
		remus_debug(LOG, "%s: %s (flags 0x%x) of %" PRIu32 " bytes at %" PRIu64
			    " refused with error %" PRIu32,
			    c->peer, cmd_name(type), flags, len, off, err);
	return put_simple_reply(out, err, cookie);
}

/* The message at the front of @in: returns its length once it is
 * complete, 0 while it is not, or -errno when it can never be valid. */
static int64_t message_length(struct remus_nbd_conn *c, const uint8_t *p, size_t avail)
{
	switch (c->state) {
	case REMUS_NBD_CONN_CLIENT_FLAGS:
		return avail >= 4 ? 4 : 0;
	case REMUS_NBD_CONN_OPTIONS: {
		uint64_t magic;
		uint32_t len;

		if (avail < OPT_HDR)
			return 0;
		magic = remus_get_be64(p);
		len = remus_get_be32(p + 12);
		if (magic != REMUS_NBD_OPTS_MAGIC)
			return set_state_error(c, -EPROTO,
					       "bad option magic 0x%016" PRIx64 " (IHAVEOPT expected)",
					       magic);
		if (len > REMUS_NBD_MAX_OPTION_DATA)
			return set_state_error(c, -EMSGSIZE,
					       "option %" PRIu32 " carries %" PRIu32
					       " bytes of data, more than the %u allowed",
					       remus_get_be32(p + 8), len, REMUS_NBD_MAX_OPTION_DATA);
		return avail >= OPT_HDR + (size_t)len ? (int64_t)(OPT_HDR + len) : 0;
	}
	case REMUS_NBD_CONN_TRANSMISSION: {
		uint32_t magic, len;

		if (avail < REQ_HDR)
			return 0;
		magic = remus_get_be32(p);
		len = remus_get_be32(p + 24);
		if (magic != REMUS_NBD_REQUEST_MAGIC)
			return set_state_error(c, -EPROTO,
					       "bad request magic 0x%08" PRIx32 " (0x%08x expected)",
					       magic, REMUS_NBD_REQUEST_MAGIC);
		if (remus_get_be16(p + 6) != REMUS_NBD_CMD_WRITE)
			return REQ_HDR;
		/* The payload must be read to stay in step; one this large
		 * is a denial of service, which the protocol lets us close. */
		if (len > REMUS_NBD_MAX_PAYLOAD)
			return set_state_error(c, -EMSGSIZE,
					       "WRITE of %" PRIu32 " bytes, more than the %u allowed",
					       len, REMUS_NBD_MAX_PAYLOAD);
		return avail >= REQ_HDR + (size_t)len ? (int64_t)(REQ_HDR + len) : 0;
	}
	default:
		return c->result;
	}
}

static int handle_message(struct remus_nbd_conn *c, struct remus_buf *out, const uint8_t *p)
{
	switch (c->state) {
	case REMUS_NBD_CONN_CLIENT_FLAGS: {
		uint32_t flags = remus_get_be32(p);
		uint32_t known = REMUS_NBD_FLAG_FIXED_NEWSTYLE | REMUS_NBD_FLAG_NO_ZEROES;

		/* The protocol says drop a client with flags we did not offer. */
		if (flags & ~known)
			return set_state_error(c, -EPROTO, "unknown client flags 0x%08" PRIx32,
					       flags);
		c->no_zeroes = flags & REMUS_NBD_FLAG_NO_ZEROES;
		c->state = REMUS_NBD_CONN_OPTIONS;
		return 0;
	}
	case REMUS_NBD_CONN_OPTIONS:
		return handle_option(c, out, remus_get_be32(p + 8), p + OPT_HDR,
				     remus_get_be32(p + 12));
	case REMUS_NBD_CONN_TRANSMISSION: {
		uint16_t flags = remus_get_be16(p + 4), type = remus_get_be16(p + 6);

		if (type == REMUS_NBD_CMD_DISC)
			return set_state_error(c, REMUS_NBD_FEED_DONE,
					       "client disconnected with NBD_CMD_DISC");
		return handle_request(c, out, flags, type, remus_get_be64(p + 8),
				      remus_get_be64(p + 16), remus_get_be32(p + 24),
				      p + REQ_HDR);
	}
	default:
		return c->result;
	}
}

int remus_nbd_conn_feed(struct remus_nbd_conn *c, struct remus_buf *in, struct remus_buf *out)
{
	int64_t n;
	int rc;

	for (;;) {
		if (c->state == REMUS_NBD_CONN_DONE || c->state == REMUS_NBD_CONN_FAILED)
			return c->result;
		n = message_length(c, remus_buf_data(in), remus_buf_len(in));
		if (n < 0)
			return (int)n;
		if (n == 0)
			return REMUS_NBD_FEED_MORE;
		/* Checked only once a message is complete, so that a bad
		 * header is reported even while held. */
		if (c->hold || remus_buf_len(out) >= c->out_high)
			return REMUS_NBD_FEED_BLOCKED;
		rc = handle_message(c, out, remus_buf_data(in));
		if (rc < 0 && c->state != REMUS_NBD_CONN_FAILED)
			return out_error(c, rc);
		remus_buf_consume(in, (size_t)n);
	}
}
