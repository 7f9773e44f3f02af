// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Per-domain state files (see state.h).  The write is the classic
 * sequence, each step checked, the tmp removed on every failure:
 *
 *   open DOMAIN.json.tmp (O_CREAT|O_TRUNC, 0600) -> write all -> fsync
 *   -> close -> rename over DOMAIN.json -> fsync domains/
 *
 * A crash before the rename leaves the old record and a tmp (removed at
 * the next load_all); after it, the new record.  The reader trusts
 * nothing: the text is bounded, NUL-free, one JSON object with nothing
 * but blanks after it, and each key is checked for type and range.
 */
#include "hostd/state.h"
#include "hostd/field.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FORMAT "remus-domain-state"
#define VERSION 1

bool remus_hostd_domain_name_ok(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n >= REMUS_HOSTD_DOMAIN_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '+' || c == '-'))
			return false;
	}
	return true;
}

bool remus_hostd_uuid_ok(const char *u)
{
	size_t i;

	if (strlen(u) != REMUS_HOSTD_UUID_LEN)
		return false;
	for (i = 0; i < REMUS_HOSTD_UUID_LEN; i++) {
		char c = u[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return true;
}

const char *remus_hostd_role_name(enum remus_hostd_role r)
{
	return r == REMUS_HOSTD_ROLE_PRIMARY ? "primary" : "standby";
}

const char *remus_hostd_netbuffer_name(enum remus_hostd_netbuffer nb)
{
	return nb == REMUS_HOSTD_NB_QEMU ? "qemu" : nb == REMUS_HOSTD_NB_PLUG ? "plug" : "off";
}

const char *remus_hostd_reprotect_name(enum remus_hostd_reprotect r)
{
	return r == REMUS_HOSTD_REPROTECT_AUTO ? "auto" : "manual";
}

char *remus_hostd_state_format(const struct remus_hostd_dstate *s)
{
	struct json_object *o = json_object_new_object(), *disks, *d;
	char *text = NULL;
	unsigned i;

	if (!o)
		return NULL;
	json_object_object_add(o, "format", json_object_new_string(FORMAT));
	json_object_object_add(o, "version", json_object_new_int(VERSION));
	json_object_object_add(o, "domain", json_object_new_string(s->domain));
	json_object_object_add(o, "uuid", json_object_new_string(s->uuid));
	json_object_object_add(o, "role", json_object_new_string(remus_hostd_role_name(s->role)));
	json_object_object_add(o, "peer", json_object_new_string(s->peer));
	json_object_object_add(o, "peer_port", json_object_new_int(s->peer_port));
	json_object_object_add(o, "repl_port", json_object_new_int(s->repl_port));
	json_object_object_add(o, "interval_ms", json_object_new_int64(s->interval_ms));
	json_object_object_add(o, "pause_budget_ms", json_object_new_int64(s->pause_budget_ms));
	json_object_object_add(o, "netbuffer",
			       json_object_new_string(remus_hostd_netbuffer_name(s->netbuffer)));
	json_object_object_add(o, "reprotect",
			       json_object_new_string(remus_hostd_reprotect_name(s->reprotect)));
	json_object_object_add(o, "since_ms", json_object_new_int64((int64_t)s->since_ms));
	json_object_object_add(o, "owner", json_object_new_string(s->owner));
	json_object_object_add(o, "takeover", json_object_new_int64((int64_t)s->takeover));
	disks = json_object_new_array();
	for (i = 0; disks && i < s->ndisks; i++) {
		d = json_object_new_object();
		if (!d)
			break;
		json_object_object_add(d, "target", json_object_new_string(s->disks[i].target));
		json_object_object_add(d, "format", json_object_new_string(s->disks[i].format));
		json_object_object_add(d, "size", json_object_new_int64((int64_t)s->disks[i].size));
		json_object_object_add(d, "source", json_object_new_string(s->disks[i].source));
		json_object_array_add(disks, d);
	}
	json_object_object_add(o, "disks", disks);
	if (disks && json_object_array_length(disks) == s->ndisks)
		text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return text;
}

/* ---- reading ---------------------------------------------------------- */

static int parse_disk(struct json_object *d, struct remus_hostd_disk *disk, char *err,
		      size_t errlen)
{
	uint64_t v;
	int rc;

	if (!json_object_is_type(d, json_type_object))
		return remus_hostd_fail(err, errlen, "a disk is not an object");
	if ((rc = remus_hostd_json_str(d, "target", disk->target, sizeof(disk->target),
				       true, err, errlen)) ||
	    (rc = remus_hostd_json_str(d, "format", disk->format, sizeof(disk->format),
				       true, err, errlen)) ||
	    (rc = remus_hostd_json_str(d, "source", disk->source, sizeof(disk->source),
				       false, err, errlen)) ||
	    (rc = remus_hostd_json_u64(d, "size", 0, INT64_MAX, &v, err, errlen)))
		return rc;
	disk->size = v;
	return 0;
}

int remus_hostd_state_parse(const char *text, size_t len, struct remus_hostd_dstate *s,
			    char *err, size_t errlen)
{
	struct json_tokener *tok = NULL;
	struct json_object *o = NULL, *disks;
	char buf[64];
	uint64_t v;
	size_t i, end;
	int rc;

	memset(s, 0, sizeof(*s));
	if (len == 0)
		return remus_hostd_fail(err, errlen, "the file is empty (a write that never finished?)");
	if (len > REMUS_HOSTD_STATE_MAX_BYTES)
		return remus_hostd_fail(err, errlen, "longer than %u bytes: not a state file",
			    REMUS_HOSTD_STATE_MAX_BYTES);
	if (memchr(text, 0, len))
		return remus_hostd_fail(err, errlen, "has a NUL byte (blocks lost in a crash?)");
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success) {
		rc = remus_hostd_fail(err, errlen, "not a whole JSON object (%s; torn or not a state file)",
			  json_tokener_get_error(tok) == json_tokener_continue
			  ? "it ends early" : json_tokener_error_desc(json_tokener_get_error(tok)));
		goto out;
	}
	for (end = json_tokener_get_parse_end(tok); end < len; end++)
		if (text[end] != ' ' && text[end] != '\n' && text[end] != '\t' &&
		    text[end] != '\r') {
			rc = remus_hostd_fail(err, errlen, "has bytes after the JSON object");
			goto out;
		}
	if (!json_object_is_type(o, json_type_object)) {
		rc = remus_hostd_fail(err, errlen, "not a JSON object");
		goto out;
	}
	if ((rc = remus_hostd_json_str(o, "format", buf, sizeof(buf), true, err, errlen)))
		goto out;
	if (strcmp(buf, FORMAT) != 0) {
		rc = remus_hostd_fail(err, errlen, "\"format\" is '%s', not '" FORMAT "'", buf);
		goto out;
	}
	if ((rc = remus_hostd_json_u64(o, "version", 0, UINT32_MAX, &v, err, errlen)))
		goto out;
	if (v != VERSION) {
		rc = remus_hostd_fail(err, errlen, "version %llu; this remusd reads version %d (a newer "
			  "remusd wrote it?)", (unsigned long long)v, VERSION);
		goto out;
	}
	if ((rc = remus_hostd_json_str(o, "domain", s->domain, sizeof(s->domain),
				       true, err, errlen)))
		goto out;
	if (!remus_hostd_domain_name_ok(s->domain)) {
		rc = remus_hostd_fail(err, errlen, "\"domain\" '%s' is not a domain name remusd uses",
			  s->domain);
		goto out;
	}
	if ((rc = remus_hostd_json_str(o, "uuid", s->uuid, sizeof(s->uuid), true, err, errlen)))
		goto out;
	if (!remus_hostd_uuid_ok(s->uuid)) {
		rc = remus_hostd_fail(err, errlen, "\"uuid\" '%s' is not a UUID", s->uuid);
		goto out;
	}
	if ((rc = remus_hostd_json_str(o, "role", buf, sizeof(buf), true, err, errlen)))
		goto out;
	if (strcmp(buf, "primary") == 0) {
		s->role = REMUS_HOSTD_ROLE_PRIMARY;
	} else if (strcmp(buf, "standby") == 0) {
		s->role = REMUS_HOSTD_ROLE_STANDBY;
	} else {
		rc = remus_hostd_fail(err, errlen, "\"role\" '%s' is not primary or standby", buf);
		goto out;
	}
	if ((rc = remus_hostd_json_str(o, "peer", s->peer, sizeof(s->peer), true, err, errlen)))
		goto out;
	if ((rc = remus_hostd_json_u64(o, "peer_port", 1, 65535, &v, err, errlen)))
		goto out;
	s->peer_port = (uint16_t)v;
	if ((rc = remus_hostd_json_u64(o, "repl_port", 0, 65535, &v, err, errlen)))
		goto out;
	s->repl_port = (uint16_t)v;
	if ((rc = remus_hostd_json_u64(o, "interval_ms", 10, 3600000, &v, err, errlen)))
		goto out;
	s->interval_ms = (unsigned)v;
	if ((rc = remus_hostd_json_u64(o, "pause_budget_ms", 1, 60000, &v, err, errlen)))
		goto out;
	s->pause_budget_ms = (unsigned)v;
	if ((rc = remus_hostd_json_str(o, "netbuffer", buf, sizeof(buf), true, err, errlen)))
		goto out;
	if (strcmp(buf, "qemu") == 0) {
		s->netbuffer = REMUS_HOSTD_NB_QEMU;
	} else if (strcmp(buf, "plug") == 0) {
		s->netbuffer = REMUS_HOSTD_NB_PLUG;
	} else if (strcmp(buf, "off") == 0) {
		s->netbuffer = REMUS_HOSTD_NB_OFF;
	} else {
		rc = remus_hostd_fail(err, errlen, "\"netbuffer\" '%s' is not qemu, plug or off", buf);
		goto out;
	}
	if ((rc = remus_hostd_json_str(o, "reprotect", buf, sizeof(buf), true, err, errlen)))
		goto out;
	if (strcmp(buf, "auto") == 0) {
		s->reprotect = REMUS_HOSTD_REPROTECT_AUTO;
	} else if (strcmp(buf, "manual") == 0) {
		s->reprotect = REMUS_HOSTD_REPROTECT_MANUAL;
	} else {
		rc = remus_hostd_fail(err, errlen, "\"reprotect\" '%s' is not auto or manual", buf);
		goto out;
	}
	if ((rc = remus_hostd_json_u64(o, "since_ms", 0, INT64_MAX, &s->since_ms, err, errlen)))
		goto out;
	/* Optional: records written before issue 12 have no owner. */
	s->owner[0] = 0;
	if (json_object_object_get_ex(o, "owner", NULL) &&
	    (rc = remus_hostd_json_str(o, "owner", s->owner, sizeof(s->owner), false, err,
				       errlen)))
		goto out;
	/* Optional: records written before the fence rule (hostd/fence.h)
	 * have no takeover count: 0, as if none had happened. */
	s->takeover = 0;
	if (json_object_object_get_ex(o, "takeover", NULL) &&
	    (rc = remus_hostd_json_u64(o, "takeover", 0, INT64_MAX, &s->takeover, err, errlen)))
		goto out;
	if (!json_object_object_get_ex(o, "disks", &disks) ||
	    !json_object_is_type(disks, json_type_array)) {
		rc = remus_hostd_fail(err, errlen, "\"disks\" is missing or not an array");
		goto out;
	}
	if (json_object_array_length(disks) > REMUS_HOSTD_MAX_DISKS) {
		rc = remus_hostd_fail(err, errlen, "more than %d disks", REMUS_HOSTD_MAX_DISKS);
		goto out;
	}
	s->ndisks = (unsigned)json_object_array_length(disks);
	for (i = 0; i < s->ndisks; i++) {
		rc = parse_disk(json_object_array_get_idx(disks, i), &s->disks[i], err, errlen);
		if (rc)
			goto out;
	}
	rc = 0;
out:
	json_object_put(o);
	json_tokener_free(tok);
	return rc;
}

/* ---- files ------------------------------------------------------------- */

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int domains_dir(const char *state_dir, char *dir, size_t len, bool create, char *err,
		       size_t errlen)
{
	if ((size_t)snprintf(dir, len, "%s/domains", state_dir) >= len)
		return remus_hostd_fail(err, errlen, "state directory %s: path too long", state_dir);
	if (!create)
		return 0;
	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST) {
		int rc = -errno;

		snprintf(err, errlen, "cannot create the state directory %s: %s; create it or "
			 "set state_dir", state_dir, strerror(-rc));
		return rc;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int rc = -errno;

		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
		return rc;
	}
	return 0;
}

int remus_hostd_state_save(const char *state_dir, const struct remus_hostd_dstate *s,
			   char *err, size_t errlen)
{
	char dir[1100], path[1200], tmp[1210];
	char *text = NULL;
	const char *step = "open";
	size_t len, off = 0;
	ssize_t w;
	int fd = -1, rc;

	if (!remus_hostd_domain_name_ok(s->domain))
		return remus_hostd_fail(err, errlen, "cannot record domain '%s': not a name remusd uses",
			    s->domain);
	if ((rc = domains_dir(state_dir, dir, sizeof(dir), true, err, errlen)) < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/%s.json", dir, s->domain);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	text = remus_hostd_state_format(s);
	if (!text) {
		rc = -ENOMEM;
		step = "format";
		goto out;
	}
	len = strlen(text);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	step = "write";
	while (off < len) {
		w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = w < 0 ? -errno : -EIO;
			goto out;
		}
		off += (size_t)w;
	}
	step = "fsync";
	if (fsync(fd) < 0) {
		rc = -errno;
		goto out;
	}
	step = "close";
	rc = close(fd) < 0 ? -errno : 0;
	fd = -1;
	if (rc < 0)
		goto out;
	step = "rename";
	if (rename(tmp, path) < 0) {
		rc = -errno;
		goto out;
	}
	/* The rename is durable only once the directory is. */
	step = "fsync the directory of";
	rc = fsync_dir(dir);
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0 && strcmp(step, "fsync the directory of") != 0)
		unlink(tmp);
	if (rc < 0)
		snprintf(err, errlen, "cannot record domain %s: %s %s: %s (the previous record, "
			 "if any, is intact)", s->domain, step, strcmp(step, "rename") == 0 ||
			 strcmp(step, "fsync the directory of") == 0 ? path : tmp, strerror(-rc));
	free(text);
	return rc;
}

/* Reads a whole small file (owned text in *@out). */
static int read_small(const char *path, char **out, size_t *outlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t r;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > REMUS_HOSTD_STATE_MAX_BYTES) {
		rc = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	while (len < (size_t)st.st_size) {
		r = read(fd, buf + len, (size_t)st.st_size - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = 0;
	*out = buf;
	*outlen = len;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

static int load_path(const char *path, const char *domain, struct remus_hostd_dstate *s,
		     char *err, size_t errlen)
{
	char why[512];
	char *text = NULL;
	size_t len = 0;
	int rc = read_small(path, &text, &len);

	if (rc == -ENOENT)
		return rc;
	if (rc < 0) {
		snprintf(err, errlen, "cannot read the state file %s: %s", path,
			 rc == -EFBIG ? "too big for a state file" : rc == -EINVAL
			 ? "not a regular file" : strerror(-rc));
		return rc;
	}
	rc = remus_hostd_state_parse(text, len, s, why, sizeof(why));
	if (rc == 0 && strcmp(s->domain, domain) != 0)
		rc = remus_hostd_fail(why, sizeof(why), "records domain '%s', not '%s' of its name",
			  s->domain, domain);
	if (rc < 0)
		snprintf(err, errlen, "the state file %s is not usable: %s; remusd leaves it "
			 "alone: move it away, and protect the domain again", path, why);
	free(text);
	return rc;
}

int remus_hostd_state_load(const char *state_dir, const char *domain,
			   struct remus_hostd_dstate *s, char *err, size_t errlen)
{
	char dir[1100], path[1200];
	int rc;

	if (!remus_hostd_domain_name_ok(domain))
		return remus_hostd_fail(err, errlen, "'%s' is not a domain name remusd uses", domain);
	if ((rc = domains_dir(state_dir, dir, sizeof(dir), false, err, errlen)) < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/%s.json", dir, domain);
	return load_path(path, domain, s, err, errlen);
}

int remus_hostd_state_remove(const char *state_dir, const char *domain, char *err,
			     size_t errlen)
{
	char dir[1100], path[1200], tmp[1210];
	int rc;

	if (!remus_hostd_domain_name_ok(domain))
		return remus_hostd_fail(err, errlen, "'%s' is not a domain name remusd uses", domain);
	if ((rc = domains_dir(state_dir, dir, sizeof(dir), false, err, errlen)) < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/%s.json", dir, domain);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	if (unlink(path) < 0 && errno != ENOENT) {
		rc = -errno;
		snprintf(err, errlen, "cannot remove the state file %s: %s", path, strerror(-rc));
		return rc;
	}
	rc = fsync_dir(dir);
	if (rc < 0 && rc != -ENOENT) {
		snprintf(err, errlen, "cannot fsync %s: %s", dir, strerror(-rc));
		return rc;
	}
	return 0;
}

int remus_hostd_state_load_all(const char *state_dir, remus_hostd_state_each_cb *cb,
			       void *opaque, char *err, size_t errlen)
{
	struct remus_hostd_dstate *s = NULL;
	char dir[1100], path[1400], name[REMUS_HOSTD_DOMAIN_MAX], why[2048];
	struct dirent *de;
	DIR *d = NULL;
	size_t n;
	int rc, good = 0;

	if ((rc = domains_dir(state_dir, dir, sizeof(dir), false, err, errlen)) < 0)
		return rc;
	d = opendir(dir);
	if (!d) {
		rc = -errno;
		if (rc == -ENOENT)
			return 0;
		snprintf(err, errlen, "cannot read the state directory %s: %s", dir,
			 strerror(-rc));
		return rc;
	}
	s = malloc(sizeof(*s));
	if (!s) {
		closedir(d);
		return -ENOMEM;
	}
	while ((de = readdir(d))) {
		n = strlen(de->d_name);
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (n > 9 && strcmp(de->d_name + n - 9, ".json.tmp") == 0) {
			/* A write a crash cut: the record it was replacing,
			 * if any, is intact next to it. */
			unlink(path);
			continue;
		}
		if (n <= 5 || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		if (n - 5 >= sizeof(name)) {
			snprintf(why, sizeof(why), "the state file %s is not usable: its name is "
				 "not a domain name remusd uses; remusd leaves it alone", path);
			cb(opaque, NULL, why);
			continue;
		}
		memcpy(name, de->d_name, n - 5);
		name[n - 5] = 0;
		if (!remus_hostd_domain_name_ok(name)) {
			snprintf(why, sizeof(why), "the state file %s is not usable: its name is "
				 "not a domain name remusd uses; remusd leaves it alone", path);
			cb(opaque, NULL, why);
			continue;
		}
		rc = load_path(path, name, s, why, sizeof(why));
		if (rc == -ENOENT)
			continue;
		if (rc < 0) {
			cb(opaque, NULL, why);
			continue;
		}
		good++;
		cb(opaque, s, NULL);
	}
	free(s);
	closedir(d);
	return good;
}

int remus_hostd_release_target(const char *state_dir, const char *domain,
			       const struct remus_hostd_disk *k, char *path, size_t plen,
			       char *format, size_t flen)
{
	size_t sl = strlen(state_dir);
	bool ours = strncmp(k->source, state_dir, sl) == 0 &&
		    (k->source[sl] == '/' || k->source[sl] == 0);
	bool known = strcmp(k->format, "raw") == 0 || strcmp(k->format, "qcow2") == 0;
	int n;

	if (k->source[0] == '/' && !ours && known && !strstr(k->source, "/../") &&
	    !strstr(k->source, "/./")) {
		n = snprintf(path, plen, "%s", k->source);
		snprintf(format, flen, "%s", k->format);
		return n < 0 || (size_t)n >= plen ? -ENAMETOOLONG : 1;
	}
	n = snprintf(path, plen, "%s/%s/%s.released.raw", state_dir, domain, k->target);
	snprintf(format, flen, "raw");
	return n < 0 || (size_t)n >= plen ? -ENAMETOOLONG : 0;
}
