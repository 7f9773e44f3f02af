// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Where the guest's RAM is, from QMP (qmp.h: remus_qmp_ram_backend_find).
 *
 * Three qom-gets in a row, each submitted from the previous one's reply.
 * A step QEMU refuses (-EREMOTEIO) is an answer, not a failure: the
 * machine has no single memory-backend (a NUMA guest), the backend has no
 * mem-path (memory-backend-ram, -memfd), or share cannot be read.  Only a
 * QMP that fails (closed, timed out) sets rc.  The state lives in the
 * caller's struct, so a cancelled chain leaks nothing.
 */
#include "qmp/qmp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

int remus_qmp_ram_backend_id(const char *prop, char *id, size_t idlen)
{
	const char *p = prop ? prop : "";

	if (strncmp(p, "/objects/", 9) == 0)
		p += 9;
	if (!*p || strchr(p, '/') || strlen(p) >= idlen)
		return -EINVAL;
	memcpy(id, p, strlen(p) + 1);
	return 0;
}

static void finish(struct remus_qmp_ram_backend *b, int rc, const char *err)
{
	b->rc = rc;
	if (err)
		snprintf(b->err, sizeof(b->err), "%s", err);
	b->done_(b, b->opaque_);
}

/* Submits qom-get /objects/ID @prop; on failure finishes with it. */
static void ask(struct remus_qmp_ram_backend *b, const char *prop, remus_qmp_reply_cb *cb)
{
	char path[160];
	struct json_object *args = json_object_new_object();
	int rc;

	snprintf(path, sizeof(path), "/objects/%s", b->id);
	json_object_object_add(args, "path", json_object_new_string(path));
	json_object_object_add(args, "property", json_object_new_string(prop));
	rc = remus_qmp_execute_owned(b->q_, b->owner_, "qom-get", args, -1, 0, cb, b);
	if (rc < 0) {
		const char *why = remus_qmp_last_error(b->q_);

		finish(b, rc, why ? why : "cannot submit qom-get");
	}
}

static void on_share(struct remus_qmp *q, int rc, struct json_object *ret,
		     const char *err, void *opaque)
{
	struct remus_qmp_ram_backend *b = opaque;

	if (rc < 0 && rc != -EREMOTEIO) {
		finish(b, rc, err);
		return;
	}
	b->share = rc == 0 && json_object_get_boolean(ret);
	finish(b, 0, rc < 0 ? err : NULL);
}

static void on_path(struct remus_qmp *q, int rc, struct json_object *ret,
		    const char *err, void *opaque)
{
	struct remus_qmp_ram_backend *b = opaque;
	const char *path = rc == 0 && json_object_is_type(ret, json_type_string) ?
			   json_object_get_string(ret) : NULL;

	if (rc < 0 && rc != -EREMOTEIO) {
		finish(b, rc, err);
		return;
	}
	if (!path || !*path) {
		finish(b, 0, err ? err : "empty mem-path");
		return;
	}
	if (strlen(path) >= sizeof(b->mem_path)) {
		finish(b, 0, "mem-path too long");
		return;
	}
	snprintf(b->mem_path, sizeof(b->mem_path), "%s", path);
	ask(b, "share", on_share);
}

static void on_backend(struct remus_qmp *q, int rc, struct json_object *ret,
		       const char *err, void *opaque)
{
	struct remus_qmp_ram_backend *b = opaque;
	const char *prop = rc == 0 && json_object_is_type(ret, json_type_string) ?
			   json_object_get_string(ret) : NULL;

	if (rc < 0 && rc != -EREMOTEIO) {
		finish(b, rc, err);
		return;
	}
	if (remus_qmp_ram_backend_id(prop, b->id, sizeof(b->id)) < 0) {
		b->id[0] = '\0';
		finish(b, 0, prop ? prop : err ? err : "not a string");
		return;
	}
	ask(b, "mem-path", on_path);
}

int remus_qmp_ram_backend_find(struct remus_qmp *q, const void *owner,
			       struct remus_qmp_ram_backend *b,
			       void (*done)(struct remus_qmp_ram_backend *b, void *opaque),
			       void *opaque)
{
	struct json_object *args = json_object_new_object();

	memset(b, 0, sizeof(*b));
	b->q_ = q;
	b->owner_ = owner;
	b->done_ = done;
	b->opaque_ = opaque;
	json_object_object_add(args, "path", json_object_new_string("/machine"));
	json_object_object_add(args, "property", json_object_new_string("memory-backend"));
	return remus_qmp_execute_owned(q, owner, "qom-get", args, -1, 0, on_backend, b);
}
