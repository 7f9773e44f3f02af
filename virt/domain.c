// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The pure half of virt/domain.h: a domain's live XML read into a struct,
 * checked, and rewritten into the standby's XML; QEMU's version and
 * migration status read from its JSON replies.
 *
 * The XML comes from libvirt on this host or from a peer (create-standby),
 * so it is untrusted: it is parsed with libxml2 without network access,
 * DTDs or entity substitution, bounded in size, and every lookup copes
 * with an element or attribute that is missing or repeated.  The
 * derivation edits the parsed tree in place (so whatever libvirt wrote
 * that this file does not know survives to the standby) and serialises it
 * again.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "virt/domain.h"

/* A domain XML is a few KiB; a peer message is at most 1 MiB. */
#define XML_MAX (4u << 20)
#define JSON_MAX (64u << 10)

static const char QEMU_NS[] = "http://libvirt.org/schemas/domain/qemu/1.0";

int remus_virt_error_set(struct remus_virt_error *err, int rc, const char *code,
			 const char *fmt, ...)
{
	va_list ap;

	if (!err || err->code[0])
		return rc;
	snprintf(err->code, sizeof(err->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return rc;
}

/* --- small libxml2 helpers ----------------------------------------------------- */

static bool is_elem(const xmlNode *n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && !n->ns &&
	       strcmp((const char *)n->name, name) == 0;
}

/* The first child element @name of @parent (no namespace), or NULL. */
static xmlNode *child(const xmlNode *parent, const char *name)
{
	for (xmlNode *n = parent ? parent->children : NULL; n; n = n->next)
		if (is_elem(n, name))
			return n;
	return NULL;
}

/* Attribute @name of @n copied with malloc (NULL if absent); sets *@oom on
 * allocation failure. */
static char *attr(const xmlNode *n, const char *name, bool *oom)
{
	xmlChar *v;
	char *s;

	if (!n)
		return NULL;
	v = xmlGetNoNsProp(n, (const xmlChar *)name);
	if (!v)
		return NULL;
	s = strdup((const char *)v);
	xmlFree(v);
	if (!s)
		*oom = true;
	return s;
}

static bool has_attr_value(const xmlNode *n, const char *name, const char *value)
{
	xmlChar *v = n ? xmlGetNoNsProp(n, (const xmlChar *)name) : NULL;
	bool eq = v && strcmp((const char *)v, value) == 0;

	xmlFree(v);
	return eq;
}

/* The text of @n copied with malloc (NULL if @n is NULL). */
static char *text(const xmlNode *n, bool *oom)
{
	xmlChar *v;
	char *s;

	if (!n)
		return NULL;
	v = xmlNodeGetContent(n);
	s = strdup(v ? (const char *)v : "");
	xmlFree(v);
	if (!s)
		*oom = true;
	return s;
}

static xmlDoc *parse_doc(const char *xml, size_t len)
{
	xmlParserCtxt *ctxt;
	xmlDoc *doc;

	xmlInitParser();
	if (len > XML_MAX)
		return NULL;
	ctxt = xmlNewParserCtxt();
	if (!ctxt)
		return NULL;
	/* No XML_PARSE_NOENT or DTDLOAD: entities stay unexpanded, nothing is
	 * fetched.  Errors are ours to report, not libxml2's to print. */
	doc = xmlCtxtReadMemory(ctxt, xml, (int)len, "domain.xml", NULL,
				XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	/* A namespace error (an undeclared prefix, `xmlns:a:b`) is not fatal
	 * to libxml2, but such a document would not say the same thing once
	 * written back: <qemu:arg> could lose its namespace.  libvirt never
	 * writes one; refuse it. */
	if (doc && !ctxt->nsWellFormed) {
		xmlFreeDoc(doc);
		doc = NULL;
	}
	xmlFreeParserCtxt(ctxt);
	return doc;
}

/* True if @n (or its absence) holds text only: no element inside. */
static bool text_only(const xmlNode *n)
{
	for (const xmlNode *c = n ? n->children : NULL; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			return false;
	return true;
}

/*
 * The <domain> element of @doc, or NULL.  A <name> or <uuid> with elements
 * inside is refused too: libvirt never writes one, and its text would be
 * that of everything inside, which the standby's rewrite of devices below
 * it changes (fuzz_domain_xml: a standby that read back under another
 * name).
 */
static xmlNode *domain_root(xmlDoc *doc)
{
	xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;

	if (!is_elem(root, "domain") || !text_only(child(root, "name")) ||
	    !text_only(child(root, "uuid")))
		return NULL;
	return root;
}

/* --- inspection ------------------------------------------------------------------ */

void remus_virt_domain_init(struct remus_virt_domain *d)
{
	memset(d, 0, sizeof(*d));
	d->id = -1;
}

void remus_virt_domain_release(struct remus_virt_domain *d)
{
	for (size_t i = 0; i < d->ndisks; i++) {
		struct remus_virt_disk *k = &d->disks[i];

		free(k->target), free(k->bus), free(k->device), free(k->type);
		free(k->format), free(k->source), free(k->protocol);
	}
	for (size_t i = 0; i < d->nnics; i++) {
		struct remus_virt_nic *k = &d->nics[i];

		free(k->type), free(k->source), free(k->mac), free(k->model);
		free(k->target_dev);
	}
	for (size_t i = 0; i < d->nqemu_args; i++)
		free(d->qemu_args[i]);
	free(d->qemu_args);
	free(d->disks);
	free(d->nics);
	free(d->name);
	free(d->emulator);
	remus_virt_domain_init(d);
}

/* <memory unit=U>N</memory> in KiB; 0 when absent or unreadable. */
static uint64_t memory_kib(const xmlNode *n)
{
	static const struct {
		const char *unit;
		uint64_t bytes;
	} units[] = {
		{ "b", 1 }, { "bytes", 1 }, { "KB", 1000 }, { "k", 1024 }, { "KiB", 1024 },
		{ "MB", 1000000 }, { "M", 1u << 20 }, { "MiB", 1u << 20 },
		{ "GB", 1000000000 }, { "G", 1u << 30 }, { "GiB", 1u << 30 },
		{ "TB", 1000000000000ull }, { "T", 1ull << 40 }, { "TiB", 1ull << 40 },
	};
	bool oom = false;
	char *t = text(n, &oom), *u = attr(n, "unit", &oom), *end;
	uint64_t v = 0, mul = 1024;
	unsigned long long x;

	if (!t)
		goto out;
	if (u) {
		mul = 0;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strcmp(u, units[i].unit) == 0)
				mul = units[i].bytes;
	}
	errno = 0;
	x = strtoull(t, &end, 10);
	if (errno || end == t || *end || !mul || x > UINT64_MAX / mul)
		goto out;
	v = x * mul / 1024;
out:
	free(t);
	free(u);
	return v;
}

/* The source of a disk whatever its type: file, dev, name, dir or
 * pool/volume. */
static char *disk_source(const xmlNode *src, bool *oom)
{
	static const char *const keys[] = { "file", "dev", "name", "dir", "volume" };

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char *v = attr(src, keys[i], oom);

		if (v || *oom)
			return v;
	}
	return NULL;
}

static int parse_disk(const xmlNode *n, struct remus_virt_disk *k)
{
	bool oom = false;
	const xmlNode *src = child(n, "source"), *tgt = child(n, "target");

	k->type = attr(n, "type", &oom);
	if (!k->type && !oom)
		k->type = strdup("file"), oom = !k->type;
	k->device = attr(n, "device", &oom);
	if (!k->device && !oom)
		k->device = strdup("disk"), oom = !k->device;
	k->target = attr(tgt, "dev", &oom);
	k->bus = attr(tgt, "bus", &oom);
	k->format = attr(child(n, "driver"), "type", &oom);
	k->source = disk_source(src, &oom);
	k->protocol = attr(src, "protocol", &oom);
	k->readonly = child(n, "readonly") != NULL;
	k->shareable = child(n, "shareable") != NULL;
	k->transient = child(n, "transient") != NULL;
	return oom ? -ENOMEM : 0;
}

/* A NIC defined on a libvirt network names it in <source network=>, but
 * its live XML shows the type of the port the network gave it: 'network'
 * only for a bridge libvirt made (nat, route, isolated), 'bridge' under
 * <forward mode='bridge'/> over a host bridge, 'direct' for macvtap
 * (measured with libvirt 11.3: tests/integration/libvirt/
 * libvirt-network.sh).  Any of these is a network NIC to us: the network
 * is what the standby's host must have.  A 'hostdev' one keeps its type,
 * which remus_virt_domain_check refuses. */
static bool is_network_nic(const xmlNode *n)
{
	return child(n, "source") && xmlHasProp(child(n, "source"), (const xmlChar *)"network") &&
	       (has_attr_value(n, "type", "network") || has_attr_value(n, "type", "bridge") ||
		has_attr_value(n, "type", "direct"));
}

static int parse_nic(const xmlNode *n, struct remus_virt_nic *k)
{
	bool oom = false;
	const xmlNode *src = child(n, "source");

	if (is_network_nic(n)) {
		k->type = strdup("network");
		oom = !k->type;
		k->source = attr(src, "network", &oom);
	} else {
		k->type = attr(n, "type", &oom);
	}
	if (!k->source && !oom)
		k->source = attr(src, "bridge", &oom);
	if (!k->source && !oom)
		k->source = attr(src, "network", &oom);
	if (!k->source && !oom)
		k->source = attr(src, "dev", &oom);
	k->mac = attr(child(n, "mac"), "address", &oom);
	k->model = attr(child(n, "model"), "type", &oom);
	k->target_dev = attr(child(n, "target"), "dev", &oom);
	return oom ? -ENOMEM : 0;
}

static bool is_qemu_elem(const xmlNode *n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
	       strcmp((const char *)n->ns->href, QEMU_NS) == 0 &&
	       strcmp((const char *)n->name, name) == 0;
}

/* Appends @v (taken) to the growing array *@arr of *@n. */
static int push_str(char ***arr, size_t *n, char *v)
{
	char **a = realloc(*arr, (*n + 1) * sizeof(**arr));

	if (!a)
		return free(v), -ENOMEM;
	a[(*n)++] = v;
	*arr = a;
	return 0;
}

static size_t count_children(const xmlNode *parent, const char *name)
{
	size_t c = 0;

	for (xmlNode *n = parent ? parent->children : NULL; n; n = n->next)
		c += is_elem(n, name);
	return c;
}

static int parse_tree(xmlNode *root, struct remus_virt_domain *d)
{
	bool oom = false;
	const xmlNode *devs = child(root, "devices");
	char *s;
	int rc;

	d->name = text(child(root, "name"), &oom);
	s = text(child(root, "uuid"), &oom);
	if (s && strlen(s) < sizeof(d->uuid))
		strcpy(d->uuid, s);
	free(s);
	s = attr(root, "id", &oom);
	if (s) {
		char *end;
		long v = strtol(s, &end, 10);

		d->id = (!*end && end != s && v >= 0 && v <= INT_MAX) ? (int)v : -1;
		free(s);
	}
	d->memory_kib = memory_kib(child(root, "memory"));
	s = text(child(root, "vcpu"), &oom);
	if (s) {
		char *end;
		unsigned long v = strtoul(s, &end, 10);

		d->vcpus = (!*end && end != s && v <= UINT_MAX) ? (unsigned)v : 0;
		free(s);
	}
	d->emulator = text(child(devs, "emulator"), &oom);
	if (oom)
		return -ENOMEM;

	d->disks = calloc(count_children(devs, "disk") + 1, sizeof(*d->disks));
	d->nics = calloc(count_children(devs, "interface") + 1, sizeof(*d->nics));
	if (!d->disks || !d->nics)
		return -ENOMEM;
	for (xmlNode *n = devs ? devs->children : NULL; n; n = n->next) {
		if (is_elem(n, "disk")) {
			/* counted before: the array has room */
			if ((rc = parse_disk(n, &d->disks[d->ndisks++])) < 0)
				return rc;
		} else if (is_elem(n, "interface")) {
			if ((rc = parse_nic(n, &d->nics[d->nnics++])) < 0)
				return rc;
		} else if (is_elem(n, "hostdev")) {
			d->nhostdevs++;
		}
	}
	for (xmlNode *c = root->children; c; c = c->next) {
		if (!is_qemu_elem(c, "commandline"))
			continue;
		for (xmlNode *a = c->children; a; a = a->next) {
			xmlChar *v;

			if (!is_qemu_elem(a, "arg"))
				continue;
			v = xmlGetNoNsProp(a, (const xmlChar *)"value");
			s = strdup(v ? (const char *)v : "");
			xmlFree(v);
			if (!s || (rc = push_str(&d->qemu_args, &d->nqemu_args, s)) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

int remus_virt_domain_parse(const char *xml, size_t len, struct remus_virt_domain *d,
			    struct remus_virt_error *err)
{
	xmlDoc *doc = NULL;
	xmlNode *root;
	int rc;

	remus_virt_domain_init(d);
	doc = parse_doc(xml, len);
	root = domain_root(doc);
	if (!root) {
		rc = remus_virt_error_set(err, -EINVAL, "bad-request",
					  "the domain XML (%zu bytes) is not a well-formed <domain> "
					  "document of at most %u bytes; pass the output of "
					  "virDomainGetXMLDesc",
					  len, XML_MAX);
		goto out;
	}
	rc = parse_tree(root, d);
	if (rc == 0 && (!d->name || !d->name[0]))
		rc = remus_virt_error_set(err, -EINVAL, "bad-request",
					  "the domain XML has no <name>; pass the output of "
					  "virDomainGetXMLDesc");
	if (rc == -ENOMEM)
		remus_virt_error_set(err, rc, "internal", "out of memory reading a domain XML");
	if (rc < 0)
		remus_virt_domain_release(d);
out:
	xmlFreeDoc(doc);
	return rc;
}

/* --- validation -------------------------------------------------------------------- */

static bool eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static int check_disk(const char *dom, const struct remus_virt_disk *k,
		      struct remus_virt_error *err)
{
	const char *t = k->target ? k->target : "(no target)";

	if (!k->target || !k->target[0])
		return remus_virt_error_set(err, -EINVAL, "bad-disk",
					    "a disk of domain %s has no <target dev>: the "
					    "standby cannot name it; fix the domain XML",
					    dom);
	if (eq(k->device, "cdrom") || eq(k->device, "floppy")) {
		if (!k->source)
			return 0; /* an empty drive: nothing to copy */
		return remus_virt_error_set(err, -EINVAL, "bad-disk",
					    "%s %s of domain %s holds media %s: only writable "
					    "disks are replicated; eject it (virsh change-media "
					    "%s %s --eject) and retry",
					    k->device, t, dom, k->source, dom, t);
	}
	if (!eq(k->device, "disk"))
		return remus_virt_error_set(err, -EINVAL, "bad-disk",
					    "disk %s of domain %s is a '%s' device: only "
					    "device='disk' can be protected; detach it and retry",
					    t, dom, k->device ? k->device : "?");
	if (!eq(k->type, "file"))
		return remus_virt_error_set(err, -EINVAL, "bad-disk",
					    "disk %s of domain %s is a %s disk (%s): only file "
					    "disks (raw or qcow2) can be protected; copy it to a "
					    "file (virsh blockcopy) and retry",
					    t, dom, k->type ? k->type : "?",
					    k->source ? k->source : "no source");
	if (!k->source || !k->source[0])
		return remus_virt_error_set(err, -EINVAL, "bad-disk",
					    "disk %s of domain %s has no source file; give it "
					    "one or detach it",
					    t, dom);
	if (k->format && !eq(k->format, "raw") && !eq(k->format, "qcow2"))
		return remus_virt_error_set(err, -EINVAL, "bad-disk",
					    "disk %s of domain %s (%s) is in format %s: only raw "
					    "and qcow2 can be protected; convert it (qemu-img "
					    "convert -O qcow2) and retry",
					    t, dom, k->source, k->format);
	if (k->readonly)
		return remus_virt_error_set(err, -EINVAL, "bad-disk",
					    "disk %s of domain %s (%s) is read-only: only "
					    "writable disks are replicated; detach it or make it "
					    "writable",
					    t, dom, k->source);
	if (k->shareable)
		return remus_virt_error_set(err, -EINVAL, "bad-disk",
					    "disk %s of domain %s (%s) is shareable: a disk "
					    "another domain writes cannot be replicated; detach it "
					    "or make it private",
					    t, dom, k->source);
	if (k->transient)
		return remus_virt_error_set(err, -EINVAL, "bad-disk",
					    "disk %s of domain %s (%s) is transient (its writes "
					    "are thrown away): detach it or drop <transient/>",
					    t, dom, k->source);
	return 0;
}

int remus_virt_domain_check(const struct remus_virt_domain *d, struct remus_virt_error *err)
{
	const char *dom = d->name ? d->name : "(unnamed)";
	int rc;

	if (!d->name || !d->name[0] || !d->uuid[0])
		return remus_virt_error_set(err, -EINVAL, "bad-request",
					    "domain %s has no %s in its XML; pass the output of "
					    "virDomainGetXMLDesc",
					    dom, d->uuid[0] ? "<name>" : "<uuid>");
	if (d->nhostdevs)
		return remus_virt_error_set(err, -EINVAL, "bad-request",
					    "domain %s has %zu host device(s) (<hostdev>): QEMU "
					    "cannot migrate them; detach them (virsh "
					    "detach-device) and retry",
					    dom, d->nhostdevs);
	for (size_t i = 0; i < d->nnics; i++)
		if (eq(d->nics[i].type, "hostdev") || eq(d->nics[i].type, "vhostuser"))
			return remus_virt_error_set(err, -EINVAL, "bad-request",
						    "interface %s of domain %s is type %s: QEMU "
						    "cannot checkpoint it; use a bridge or network "
						    "interface",
						    d->nics[i].mac ? d->nics[i].mac : "?", dom,
						    d->nics[i].type);
	for (size_t i = 0; i < d->ndisks; i++)
		if ((rc = check_disk(dom, &d->disks[i], err)) < 0)
			return rc;
	return 0;
}

/* --- versions and QEMU replies --------------------------------------------------- */

int remus_virt_check_libvirt_version(unsigned long version, struct remus_virt_error *err)
{
	if (version >= 8002000)
		return 0;
	return remus_virt_error_set(err, -ENOTSUP, "libvirt-too-old",
				    "libvirt %lu.%lu.%lu is too old: remus needs libvirt >= "
				    "8.2.0 (virDomainQemuMonitorCommandWithFiles); upgrade "
				    "libvirt on this host",
				    version / 1000000, version / 1000 % 1000, version % 1000);
}

/* Parses @json (@len bytes) and returns its "return" member if it has one,
 * else itself, with *@owner to put; NULL if it is not a JSON object. */
static struct json_object *reply_value(const char *json, size_t len,
				       struct json_object **owner)
{
	struct json_tokener *tok;
	struct json_object *o, *ret;

	*owner = NULL;
	if (len > JSON_MAX || !(tok = json_tokener_new()))
		return NULL;
	o = json_tokener_parse_ex(tok, json, (int)len);
	json_tokener_free(tok);
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	*owner = o;
	if (json_object_object_get_ex(o, "return", &ret))
		return json_object_is_type(ret, json_type_object) ? ret : NULL;
	return o;
}

static bool get_int(struct json_object *o, const char *key, int *v)
{
	struct json_object *x;

	if (!json_object_object_get_ex(o, key, &x) || !json_object_is_type(x, json_type_int))
		return false;
	int64_t i = json_object_get_int64(x);
	if (i < 0 || i > INT_MAX)
		return false;
	*v = (int)i;
	return true;
}

int remus_virt_check_qemu_version(const char *json, size_t len, int *major, int *minor,
				  int *micro, struct remus_virt_error *err)
{
	struct json_object *owner, *v = reply_value(json, len, &owner), *q;
	int ma, mi, mc, rc;

	if (!v || !json_object_object_get_ex(v, "qemu", &q) ||
	    !json_object_is_type(q, json_type_object) || !get_int(q, "major", &ma) ||
	    !get_int(q, "minor", &mi) || !get_int(q, "micro", &mc)) {
		rc = remus_virt_error_set(err, -EINVAL, "internal",
					  "QEMU's query-version reply has no qemu "
					  "{major, minor, micro}: cannot tell whether it has "
					  "switchover-ack (QEMU >= 8.1)");
		goto out;
	}
	if (major)
		*major = ma;
	if (minor)
		*minor = mi;
	if (micro)
		*micro = mc;
	rc = 0;
	if (ma < 8 || (ma == 8 && mi < 1))
		rc = remus_virt_error_set(err, -ENOTSUP, "qemu-too-old",
					  "QEMU %d.%d.%d is too old: remus needs QEMU >= 8.1 "
					  "(the switchover-ack migration capability); upgrade QEMU "
					  "on this host",
					  ma, mi, mc);
out:
	json_object_put(owner);
	return rc;
}

int remus_virt_migrate_status(const char *json, size_t len, char *status, size_t size)
{
	struct json_object *owner, *v = reply_value(json, len, &owner), *s;
	const char *str = "none";
	int rc = 0;

	if (!v) {
		rc = -EINVAL;
		goto out;
	}
	if (json_object_object_get_ex(v, "status", &s)) {
		if (!json_object_is_type(s, json_type_string)) {
			rc = -EINVAL;
			goto out;
		}
		str = json_object_get_string(s);
	}
	if (size)
		snprintf(status, size, "%s", str);
out:
	json_object_put(owner);
	return rc;
}

/* --- derivation -------------------------------------------------------------------- */

static void drop(xmlNode *n)
{
	xmlUnlinkNode(n);
	xmlFreeNode(n);
}

/* Drops every child element @name of @parent. */
static void drop_children(xmlNode *parent, const char *name)
{
	xmlNode *n = parent->children, *next;

	for (; n; n = next) {
		next = n->next;
		if (is_elem(n, name))
			drop(n);
	}
}

static bool attr_has_prefix(const xmlNode *n, const char *name, const char *prefix)
{
	xmlChar *v = n ? xmlGetNoNsProp(n, (const xmlChar *)name) : NULL;
	bool yes = v && strncmp((const char *)v, prefix, strlen(prefix)) == 0;

	xmlFree(v);
	return yes;
}

static bool attr_contains(const xmlNode *n, const char *name, const char *needle)
{
	xmlChar *v = n ? xmlGetNoNsProp(n, (const xmlChar *)name) : NULL;
	bool yes = v && strstr((const char *)v, needle);

	xmlFree(v);
	return yes;
}

/* What only the running primary has, anywhere in the tree: device aliases
 * libvirt made up (its own names come back the same when it starts the
 * standby; user aliases, "ua-", are the user's), dynamic seclabels'
 * generated labels. */
static void drop_live_only(xmlNode *parent)
{
	xmlNode *n = parent->children, *next;

	for (; n; n = next) {
		next = n->next;
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (is_elem(n, "alias") && !attr_has_prefix(n, "name", "ua-")) {
			drop(n);
			continue;
		}
		if (is_elem(n, "seclabel") && has_attr_value(n, "type", "dynamic")) {
			drop_children(n, "label");
			drop_children(n, "imagelabel");
		}
		drop_live_only(n);
	}
}

/* Character devices: a pty's path is this host's (/dev/pts/N); a unix
 * channel under libvirt's per-run directory (.../domain-ID-NAME/...) is
 * generated again when the path is left out. */
static void fix_chardev(xmlNode *n)
{
	xmlNode *src = child(n, "source");

	if (has_attr_value(n, "type", "pty")) {
		xmlUnsetProp(n, (const xmlChar *)"tty");
		if (src)
			xmlUnsetProp(src, (const xmlChar *)"path");
	} else if (has_attr_value(n, "type", "unix") && src &&
		   has_attr_value(src, "mode", "bind") && attr_contains(src, "path", "/domain-")) {
		xmlUnsetProp(src, (const xmlChar *)"path");
	}
}

/* A NIC keeps MAC, model and source; a tap name libvirt generated
 * (vnet*, macvtap*, macvlan*) is made again on the standby's host.  A
 * network NIC (is_network_nic, whatever type its live XML shows) goes
 * back to type 'network' with only its network and portgroup: its port
 * (portid), bridge, device and mode are the primary host's, the standby's
 * network gives its own.  Left as 'bridge' with the primary's bridge, the
 * standby would sit on a bridge of that name, whatever the network is
 * there, or on none. */
static int fix_nic(xmlNode *n)
{
	xmlNode *t = child(n, "target"), *src = child(n, "source");

	if (is_network_nic(n)) {
		xmlAttr *a, *next;

		if (!xmlSetProp(n, (const xmlChar *)"type", (const xmlChar *)"network"))
			return -ENOMEM;
		for (a = src->properties; a; a = next) {
			next = a->next;
			if (a->ns || (strcmp((const char *)a->name, "network") != 0 &&
				      strcmp((const char *)a->name, "portgroup") != 0))
				xmlRemoveProp(a);
		}
	}

	if (t && (attr_has_prefix(t, "dev", "vnet") || attr_has_prefix(t, "dev", "macvtap") ||
		  attr_has_prefix(t, "dev", "macvlan"))) {
		xmlUnsetProp(t, (const xmlChar *)"dev");
		if (!t->properties && !t->children)
			drop(t);
	}
	return 0;
}

static void fix_graphics(xmlNode *n)
{
	if (!has_attr_value(n, "autoport", "yes"))
		return;
	xmlUnsetProp(n, (const xmlChar *)"port");
	xmlUnsetProp(n, (const xmlChar *)"tlsPort");
	xmlUnsetProp(n, (const xmlChar *)"websocket");
}

static const struct remus_virt_nbd *spec_disk(const struct remus_virt_standby_spec *spec,
					      const char *target)
{
	for (size_t i = 0; i < spec->ndisks; i++)
		if (target && eq(spec->disks[i].target, target))
			return &spec->disks[i];
	return NULL;
}

static bool set_prop(xmlNode *n, const char *name, const char *value)
{
	return xmlSetProp(n, (const xmlChar *)name, (const xmlChar *)value) != NULL;
}

/* Builds <source protocol='nbd' name=EXPORT><host transport='unix'
 * socket=PATH/></source> as a child of @parent. */
static int add_nbd_source(xmlNode *parent, const char *socket, const char *export)
{
	xmlNode *src = xmlNewChild(parent, NULL, (const xmlChar *)"source", NULL), *host;

	if (!src || !set_prop(src, "protocol", "nbd") || !set_prop(src, "name", export))
		return -ENOMEM;
	host = xmlNewChild(src, NULL, (const xmlChar *)"host", NULL);
	if (!host || !set_prop(host, "transport", "unix") || !set_prop(host, "socket", socket))
		return -ENOMEM;
	return 0;
}

/* A file disk becomes a raw NBD disk: its <driver> keeps cache, discard
 * and the like but not io (aio=native is for host files). */
static int fix_disk(xmlNode *n, const char *dom, const struct remus_virt_standby_spec *spec,
		    struct remus_virt_error *err)
{
	bool oom = false;
	char *target = attr(child(n, "target"), "dev", &oom);
	char *device = attr(n, "device", &oom);
	const struct remus_virt_nbd *nbd;
	xmlNode *drv;
	int rc;

	if (oom) {
		rc = -ENOMEM;
		goto out;
	}
	if ((eq(device, "cdrom") || eq(device, "floppy")) && !child(n, "source")) {
		rc = 0; /* an empty drive stays empty */
		goto out;
	}
	nbd = spec_disk(spec, target);
	if (!nbd || !nbd->socket || !nbd->export) {
		rc = remus_virt_error_set(err, -EINVAL, "bad-disk",
					  "disk %s of domain %s has no NBD export for the "
					  "standby: every disk must be replicated; detach it or "
					  "replicate it",
					  target ? target : "(no target)", dom);
		goto out;
	}
	drop_children(n, "source");
	drop_children(n, "backingStore");
	drop_children(n, "mirror");
	if (!set_prop(n, "type", "network")) {
		rc = -ENOMEM;
		goto out;
	}
	drv = child(n, "driver");
	if (!drv)
		drv = xmlNewChild(n, NULL, (const xmlChar *)"driver", NULL);
	if (!drv || !set_prop(drv, "name", "qemu") || !set_prop(drv, "type", "raw")) {
		rc = -ENOMEM;
		goto out;
	}
	xmlUnsetProp(drv, (const xmlChar *)"io");
	rc = add_nbd_source(n, nbd->socket, nbd->export);
out:
	free(target);
	free(device);
	return rc;
}

/* Drops every `-incoming VALUE` pair of one <qemu:commandline>. */
static void drop_incoming(xmlNode *cl)
{
	xmlNode *a, *next;

	for (a = cl->children; a; a = next) {
		next = a->next;
		if (!is_qemu_elem(a, "arg") || !has_attr_value(a, "value", "-incoming"))
			continue;
		/* the value after it goes too */
		while (next && !is_qemu_elem(next, "arg"))
			next = next->next;
		if (next) {
			xmlNode *v = next;

			next = next->next;
			drop(v);
		}
		drop(a);
	}
}

/*
 * One `-incoming VALUE` in <qemu:commandline>, whatever was there.  A
 * domain may have several <qemu:commandline> elements (libvirt joins their
 * args in order and writes them back as one): every one is scrubbed, and
 * the new pair goes at the end of the last, so that it is QEMU's last
 * -incoming whichever way the args are joined.
 */
static int set_incoming(xmlNode *root, const char *incoming)
{
	xmlNs *ns = xmlSearchNsByHref(root->doc, root, (const xmlChar *)QEMU_NS);
	xmlNode *cl = NULL, *arg;

	if (!ns && !(ns = xmlNewNs(root, (const xmlChar *)QEMU_NS, (const xmlChar *)"qemu")))
		return -ENOMEM;
	for (xmlNode *c = root->children; c; c = c->next) {
		if (!is_qemu_elem(c, "commandline"))
			continue;
		drop_incoming(c);
		cl = c;
	}
	if (!cl && !(cl = xmlNewChild(root, ns, (const xmlChar *)"commandline", NULL)))
		return -ENOMEM;
	arg = xmlNewChild(cl, ns, (const xmlChar *)"arg", NULL);
	if (!arg || !set_prop(arg, "value", "-incoming"))
		return -ENOMEM;
	arg = xmlNewChild(cl, ns, (const xmlChar *)"arg", NULL);
	if (!arg || !set_prop(arg, "value", incoming))
		return -ENOMEM;
	return 0;
}

static int dump_doc(xmlDoc *doc, char **out)
{
	xmlChar *buf = NULL;
	int n = 0;

	xmlDocDumpMemory(doc, &buf, &n);
	if (!buf)
		return -ENOMEM;
	*out = strndup((const char *)buf, (size_t)n);
	xmlFree(buf);
	return *out ? 0 : -ENOMEM;
}

int remus_virt_standby_xml(const char *xml, size_t len,
			   const struct remus_virt_standby_spec *spec, char **out,
			   struct remus_virt_error *err)
{
	xmlDoc *doc = NULL;
	xmlNode *root, *devs;
	char *name = NULL;
	bool oom = false;
	int rc;

	*out = NULL;
	doc = parse_doc(xml, len);
	root = domain_root(doc);
	if (!root || !(name = text(child(root, "name"), &oom)) || !name[0] ||
	    !child(root, "uuid")) {
		rc = oom ? -ENOMEM
			 : remus_virt_error_set(err, -EINVAL, "bad-request",
						"the primary's domain XML (%zu bytes) is not a "
						"<domain> with a name and a UUID",
						len);
		goto out;
	}
	if (!spec->incoming || !spec->incoming[0]) {
		rc = remus_virt_error_set(err, -EINVAL, "bad-request",
					  "no -incoming value for the standby of domain %s", name);
		goto out;
	}
	xmlUnsetProp(root, (const xmlChar *)"id");
	drop_live_only(root);
	devs = child(root, "devices");
	for (xmlNode *n = devs ? devs->children : NULL; n; n = n->next) {
		rc = 0;
		if (is_elem(n, "disk"))
			rc = fix_disk(n, name, spec, err);
		else if (is_elem(n, "interface"))
			rc = fix_nic(n);
		else if (is_elem(n, "serial") || is_elem(n, "console") ||
			 is_elem(n, "channel") || is_elem(n, "parallel"))
			fix_chardev(n);
		else if (is_elem(n, "graphics"))
			fix_graphics(n);
		if (rc < 0)
			goto out;
	}
	if ((rc = set_incoming(root, spec->incoming)) < 0)
		goto out;
	rc = dump_doc(doc, out);
out:
	if (rc == -ENOMEM)
		remus_virt_error_set(err, rc, "internal", "out of memory deriving a standby XML");
	free(name);
	xmlFreeDoc(doc);
	return rc;
}

/* Serialises element @n alone (no XML declaration). */
static int dump_node(xmlDoc *doc, xmlNode *n, char **out)
{
	xmlBuffer *b = xmlBufferCreate();
	int rc = -ENOMEM;

	if (b && xmlNodeDump(b, doc, n, 0, 0) >= 0) {
		*out = strdup((const char *)xmlBufferContent(b));
		rc = *out ? 0 : -ENOMEM;
	}
	xmlBufferFree(b);
	return rc;
}

/* A new document with a <disk type=TYPE device='disk'> root and its
 * <driver name='qemu' type=FORMAT/>. */
static xmlNode *new_disk(xmlDoc **doc, const char *type, const char *format)
{
	xmlNode *disk, *drv;

	xmlInitParser();
	*doc = xmlNewDoc((const xmlChar *)"1.0");
	if (!*doc)
		return NULL;
	disk = xmlNewNode(NULL, (const xmlChar *)"disk");
	if (!disk)
		return NULL;
	xmlDocSetRootElement(*doc, disk);
	if (!set_prop(disk, "type", type) || !set_prop(disk, "device", "disk"))
		return NULL;
	drv = xmlNewChild(disk, NULL, (const xmlChar *)"driver", NULL);
	if (!drv || !set_prop(drv, "name", "qemu") || !set_prop(drv, "type", format))
		return NULL;
	return disk;
}

int remus_virt_nbd_disk_xml(const char *socket, const char *export, char **out)
{
	xmlDoc *doc = NULL;
	xmlNode *disk = new_disk(&doc, "network", "raw");
	int rc = -ENOMEM;

	*out = NULL;
	if (disk && add_nbd_source(disk, socket, export) == 0)
		rc = dump_node(doc, disk, out);
	xmlFreeDoc(doc);
	return rc;
}

int remus_virt_file_disk_xml(const char *path, const char *format, char **out)
{
	xmlDoc *doc = NULL;
	xmlNode *disk, *src;
	int rc = -ENOMEM;

	*out = NULL;
	if (!eq(format, "raw") && !eq(format, "qcow2"))
		return -EINVAL;
	disk = new_disk(&doc, "file", format);
	if (disk && (src = xmlNewChild(disk, NULL, (const xmlChar *)"source", NULL)) &&
	    set_prop(src, "file", path))
		rc = dump_node(doc, disk, out);
	xmlFreeDoc(doc);
	return rc;
}

const struct remus_virt_disk *remus_virt_disk_of(const struct remus_virt_domain *d,
						 const char *target)
{
	for (size_t i = 0; i < d->ndisks; i++)
		if (eq(d->disks[i].target, target))
			return &d->disks[i];
	return NULL;
}

int remus_virt_disks_on_files(const struct remus_virt_domain *d, const char *name,
			      const char *const *targets, unsigned n,
			      struct remus_virt_error *err)
{
	for (unsigned i = 0; i < n; i++) {
		const struct remus_virt_disk *k = remus_virt_disk_of(d, targets[i]);

		if (!k)
			return remus_virt_error_set(err, -ENOENT, "bad-disk", "domain %s has no "
						    "disk %s any more (detached?)", name, targets[i]);
		if (eq(k->type, "file"))
			continue;
		return remus_virt_error_set(err, -EBUSY, "bad-disk", "domain %s: disk %s is "
					    "still on %s %s (%s) after its copy back; remusd "
					    "keeps serving it: run remusctl unprotect %s again",
					    name, targets[i], k->type ? k->type : "an unknown",
					    k->protocol ? k->protocol : "source",
					    k->source ? k->source : "?", name);
	}
	return 0;
}

/* --- a domain already defined where a standby is to be made -------------------- */

int remus_virt_standby_over(const struct remus_virt_existing *e, const char *name,
			    const char *uuid, bool recorded, struct remus_virt_error *err)
{
	const char *ename = e->name ? e->name : "?", *euuid = e->uuid ? e->uuid : "?";
	const char *state = e->state ? e->state : "in no known state";
	bool same_name = e->name && name && strcmp(e->name, name) == 0;
	bool same_uuid = e->uuid && uuid && uuid[0] && strcasecmp(e->uuid, uuid) == 0;

	if (!same_uuid)
		return remus_virt_error_set(err, -EEXIST, "exists", "this host already has a "
					    "domain named %s with another UUID (%s, %s; the "
					    "primary's is %s): it is another domain; undefine or "
					    "rename it (virsh undefine %s) before protecting onto "
					    "this host", ename, euuid, state, uuid ? uuid : "?",
					    ename);
	if (!same_name)
		return remus_virt_error_set(err, -EEXIST, "exists", "this host already has "
					    "domain %s with the UUID of %s (%s, %s): undefine it "
					    "(virsh undefine %s) or give one of them a new UUID "
					    "before protecting onto this host", ename,
					    name ? name : "the primary", euuid, state, ename);
	if (e->active)
		return remus_virt_error_set(err, -EEXIST, "exists", "domain %s (UUID %s) is %s "
					    "on this host: a running copy cannot become the "
					    "standby; if it is a stale copy, stop it (virsh "
					    "destroy %s) and retry", ename, euuid, state, ename);
	if (!recorded && !e->remus_standby)
		return remus_virt_error_set(err, -EEXIST, "exists", "this host already has "
					    "domain %s (UUID %s, %s), which remusd here never "
					    "protected: if it is an old copy of the primary's, "
					    "undefine it (virsh undefine %s) and retry", ename,
					    euuid, state, ename);
	return 0;
}
