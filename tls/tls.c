// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Credentials, key files and sessions (see tls.h); the acceptor is
 * acceptor.c.
 *
 * A session is a GnuTLS session in non-blocking mode on the caller's fd
 * (gnutls_transport_set_int).  The peer is checked inside the handshake
 * (gnutls_session_set_verify_cert: CA chain, validity, name), so a
 * handshake that completes has an authenticated peer and nothing needs
 * checking afterwards.  A refused certificate is put in words with
 * GnuTLS' own status printer ("The certificate issuer is unknown."),
 * which is what an operator needs to fix it.
 *
 * Writes: gnutls_record_send() takes at most one record (16 KiB) per
 * call and, when the socket is full, keeps the record it already built
 * and wants to be called again with the same front of the data; the
 * data stays at the front of the caller's buffer until it is reported
 * written, so calling with the buffer's front is exactly that.  Many
 * records go per call, up to WRITE_BURST, so a big epoch does not cost a
 * loop iteration per 16 KiB.
 */
#include "tls/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "common/buf.h"
#include "common/loop.h"

#define RECORD_MAX 16384u
#define WRITE_BURST (1u << 20)
#define PSK_KEY_MAX 64u /* bytes */
#define PSK_KEY_MIN 16u
#define PSK_IDENTITY_DEFAULT "remus"

/* TLS 1.3 only; PSK with (EC)DHE only, so a stolen key does not open
 * recorded sessions.  An external PSK binds the session to SHA-256, and
 * GnuTLS' default order then picks ChaCha20 before AES-128-GCM: on a CPU
 * with AES instructions that cost 3x the standby's CPU per epoch
 * (bench/tls), hence AES-GCM first. */
static const char PRIO_X509[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3";
static const char PRIO_PSK[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:-KX-ALL:+ECDHE-PSK:+DHE-PSK:"
			       "-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305";

struct remus_tls_creds {
	enum remus_tls_role role;
	bool psk;
	gnutls_psk_server_credentials_t psk_srv;
	gnutls_psk_client_credentials_t psk_cli;
	char identity[64];
	uint8_t key[PSK_KEY_MAX];
	size_t keylen;
	gnutls_certificate_credentials_t x509;
	char *peer_name;            /* owned; NULL: none configured */
	gnutls_priority_t prio;
	char describe[1024];
};

struct remus_tls {
	struct remus_tls_creds *c;  /* borrowed */
	gnutls_session_t s;
	int fd;                     /* borrowed */
	char *check_name;           /* owned: the name the peer's certificate must carry */
	char label[96];
	bool done;                  /* handshake complete */
	ssize_t sticky;             /* an end (0) or error met after data; 1: none */
	uint64_t bytes_in;
	char err[512];
	char ident[512];
};

static int say(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int say(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int remus_tls_psk_parse(const char *text, size_t len, char *identity, size_t idlen,
			uint8_t *key, size_t keymax, size_t *keylen)
{
	const char *colon = memchr(text, ':', len);
	const char *h;
	size_t n, hexlen;

	if (!colon || colon == text || (size_t)(colon - text) >= idlen)
		return -EINVAL;
	for (const char *p = text; p < colon; p++)
		if (*p < 0x21 || *p > 0x7e)
			return -EINVAL;
	h = colon + 1;
	hexlen = len - (size_t)(h - text);
	while (hexlen && (h[hexlen - 1] == '\n' || h[hexlen - 1] == '\r'))
		hexlen--;
	if (hexlen % 2 || hexlen / 2 < PSK_KEY_MIN || hexlen / 2 > keymax)
		return -EINVAL;
	for (n = 0; n < hexlen / 2; n++) {
		int hi = hexval((unsigned char)h[2 * n]), lo = hexval((unsigned char)h[2 * n + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		key[n] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(identity, text, (size_t)(colon - text));
	identity[colon - text] = '\0';
	*keylen = n;
	return 0;
}

/* Reads the key file: a regular file only its owner can read. */
static int load_psk(struct remus_tls_creds *c, const char *path, char *err, size_t errlen)
{
	char text[512];
	struct stat st;
	ssize_t r;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return say(err, errlen, -errno, "cannot open the pre-shared key file %s (--tls-psk): "
			   "%s; write one with 'remusctl keygen %s' (or 'remusd keygen %s') and copy "
			   "it to the other host", path, strerror(errno), path, path);
	if (fstat(fd, &st) < 0) {
		rc = say(err, errlen, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = say(err, errlen, -EINVAL, "the pre-shared key file %s (--tls-psk) is no "
			 "regular file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		rc = say(err, errlen, -EPERM, "the pre-shared key file %s (--tls-psk) can be read "
			 "by others (mode %04o): chmod 600 %s, and consider the key leaked",
			 path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	r = read(fd, text, sizeof(text));
	if (r < 0) {
		rc = say(err, errlen, -errno, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	rc = remus_tls_psk_parse(text, (size_t)r, c->identity, sizeof(c->identity), c->key,
				 sizeof(c->key), &c->keylen);
	explicit_bzero(text, sizeof(text));
	if (rc < 0) {
		rc = say(err, errlen, rc, "%s (--tls-psk) is not a pre-shared key file: expected "
			 "one line IDENTITY:HEX with %u to %u bytes of key (remusctl keygen writes "
			 "one)", path, PSK_KEY_MIN, PSK_KEY_MAX);
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

/* The PSK server's key lookup: our one key, for our one identity. */
static int psk_server_key(gnutls_session_t s, const char *username, gnutls_datum_t *key)
{
	struct remus_tls *t = gnutls_session_get_ptr(s);
	struct remus_tls_creds *c = t->c;

	if (strcmp(username, c->identity) != 0) {
		snprintf(t->err, sizeof(t->err), "the peer offered PSK identity '%.64s', not '%s'",
			 username, c->identity);
		return -1;
	}
	key->data = gnutls_malloc(c->keylen);
	if (!key->data)
		return -1;
	memcpy(key->data, c->key, c->keylen);
	key->size = (unsigned)c->keylen;
	return 0;
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static int load_x509(struct remus_tls_creds *c, const struct remus_tls_config *cfg,
		     char *err, size_t errlen)
{
	const char *dir = cfg->x509_dir, *who = c->role == REMUS_TLS_SERVER ? "server" : "client";
	char ca[4096], cert[4096], key[4096], crl[4096];
	int r;

	if (cfg->ca_file)
		snprintf(ca, sizeof(ca), "%s", cfg->ca_file);
	else if (snprintf(ca, sizeof(ca), "%s/cacert.pem", dir) > 0 && !exists(ca))
		snprintf(ca, sizeof(ca), "%s", REMUS_TLS_CA_DEFAULT);
	if (cfg->cert_file)
		snprintf(cert, sizeof(cert), "%s", cfg->cert_file);
	else
		snprintf(cert, sizeof(cert), "%s/%scert.pem", dir, who);
	if (cfg->key_file)
		snprintf(key, sizeof(key), "%s", cfg->key_file);
	else if (snprintf(key, sizeof(key), "%s/private/%skey.pem", dir, who) > 0 && !exists(key))
		snprintf(key, sizeof(key), "%s/%skey.pem", dir, who);
	if (gnutls_certificate_allocate_credentials(&c->x509) < 0)
		return say(err, errlen, -ENOMEM, "out of memory");
	if (access(ca, R_OK) < 0)
		return say(err, errlen, -errno, "cannot read the CA certificate %s: %s; give "
			   "libvirt's CA (/etc/pki/CA/cacert.pem), or --tls-ca FILE", ca,
			   strerror(errno));
	r = gnutls_certificate_set_x509_trust_file(c->x509, ca, GNUTLS_X509_FMT_PEM);
	if (r <= 0)
		return say(err, errlen, -EINVAL, "the CA file %s holds no usable certificate: %s",
			   ca, r < 0 ? gnutls_strerror(r) : "none found");
	/* A revocation list next to the CA, as libvirt has it, if there is one. */
	snprintf(crl, sizeof(crl), "%s", ca);
	if (strlen(crl) > 10 && strcmp(crl + strlen(crl) - 10, "cacert.pem") == 0) {
		strcpy(crl + strlen(crl) - 10, "cacrl.pem");
		if (exists(crl) &&
		    (r = gnutls_certificate_set_x509_crl_file(c->x509, crl, GNUTLS_X509_FMT_PEM)) < 0)
			return say(err, errlen, -EINVAL, "the revocation list %s: %s", crl,
				   gnutls_strerror(r));
	}
	if (access(cert, R_OK) < 0)
		return say(err, errlen, -errno, "cannot read the %s certificate %s: %s; the "
			   "libvirt layout has it in %s (see libvirt's TLS setup), or give "
			   "--tls-x509-dir DIR", who, cert, strerror(errno), dir);
	if (access(key, R_OK) < 0)
		return say(err, errlen, -errno, "cannot read the %s key %s: %s", who, key,
			   strerror(errno));
	r = gnutls_certificate_set_x509_key_file(c->x509, cert, key, GNUTLS_X509_FMT_PEM);
	if (r < 0)
		return say(err, errlen, -EINVAL, "cannot use the %s certificate %s with key %s: %s",
			   who, cert, key, gnutls_strerror(r));
	snprintf(c->describe, sizeof(c->describe), "x509 certificate %.400s, CA %.400s%s%.100s", cert, ca,
		 cfg->peer_name ? ", peer name " : "", cfg->peer_name ? cfg->peer_name : "");
	return 0;
}

int remus_tls_creds_new(const struct remus_tls_config *cfg, enum remus_tls_role role,
			struct remus_tls_creds **out, char *err, size_t errlen)
{
	struct remus_tls_creds *c;
	const char *pos;
	int rc, r;

	if (!cfg->psk_file == !cfg->x509_dir)
		return say(err, errlen, -EINVAL, "give either a pre-shared key file or an x509 "
			   "directory, not %s", cfg->psk_file ? "both" : "neither");
	c = calloc(1, sizeof(*c));
	if (!c)
		return say(err, errlen, -ENOMEM, "out of memory");
	c->role = role;
	c->psk = cfg->psk_file != NULL;
	if (cfg->peer_name && !(c->peer_name = strdup(cfg->peer_name))) {
		rc = say(err, errlen, -ENOMEM, "out of memory");
		goto fail;
	}
	if (c->psk) {
		rc = load_psk(c, cfg->psk_file, err, errlen);
		if (rc < 0)
			goto fail;
		if (role == REMUS_TLS_SERVER) {
			r = gnutls_psk_allocate_server_credentials(&c->psk_srv);
			if (r == 0)
				gnutls_psk_set_server_credentials_function(c->psk_srv, psk_server_key);
		} else {
			gnutls_datum_t k = { .data = c->key, .size = (unsigned)c->keylen };

			r = gnutls_psk_allocate_client_credentials(&c->psk_cli);
			if (r == 0)
				r = gnutls_psk_set_client_credentials(c->psk_cli, c->identity, &k,
								      GNUTLS_PSK_KEY_RAW);
		}
		if (r < 0) {
			rc = say(err, errlen, -ENOMEM, "PSK credentials: %s", gnutls_strerror(r));
			goto fail;
		}
		snprintf(c->describe, sizeof(c->describe), "PSK file %.900s (identity %s)",
			 cfg->psk_file, c->identity);
	} else {
		rc = load_x509(c, cfg, err, errlen);
		if (rc < 0)
			goto fail;
	}
	r = gnutls_priority_init(&c->prio, c->psk ? PRIO_PSK : PRIO_X509, &pos);
	if (r < 0) {
		rc = say(err, errlen, -EINVAL, "TLS priorities: %s", gnutls_strerror(r));
		goto fail;
	}
	*out = c;
	return 0;
fail:
	remus_tls_creds_free(c);
	return rc;
}

void remus_tls_creds_free(struct remus_tls_creds *c)
{
	if (!c)
		return;
	if (c->psk_srv)
		gnutls_psk_free_server_credentials(c->psk_srv);
	if (c->psk_cli)
		gnutls_psk_free_client_credentials(c->psk_cli);
	if (c->x509)
		gnutls_certificate_free_credentials(c->x509);
	if (c->prio)
		gnutls_priority_deinit(c->prio);
	explicit_bzero(c->key, sizeof(c->key));
	free(c->peer_name);
	free(c);
}

const char *remus_tls_creds_describe(const struct remus_tls_creds *c)
{
	return c->describe;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Why @path could not be created (or named), in words that say what to do. */
static int create_error(const char *path, const char *dir, int rc, char *err, size_t errlen)
{
	switch (-rc) {
	case EEXIST:
		return say(err, errlen, rc, "%s exists: refusing to overwrite it (it may be the "
			   "key the other host holds a copy of); pick another path, or remove it "
			   "first if you mean to replace that key", path);
	case ENOENT:
		return say(err, errlen, rc, "cannot create %s: the directory %s does not exist; "
			   "create it first (install -d -m 0700 %s) or pick another path", path,
			   dir, dir);
	case EACCES:
	case EPERM:
		return say(err, errlen, rc, "cannot create %s: %s in %s; run as root (or as the "
			   "directory's owner) or pick a directory you may write", path,
			   strerror(-rc), dir);
	default:
		return say(err, errlen, rc, "cannot create %s: %s", path, strerror(-rc));
	}
}

/*
 * Creates @path with the @n bytes of @line, all or nothing, readable by
 * its owner only from the first instant.  Where the filesystem can, the
 * file is written unnamed (O_TMPFILE) and only then linked under @path:
 * linkat() never replaces an existing name, and a crash or a full disk
 * leaves no empty or half-written key behind that would then block a
 * second try ("exists") and fail to load.  Without O_TMPFILE (or /proc
 * to link it through) it is created under its name with O_EXCL, and
 * removed again if writing fails.  Either way the mode is 0600 at
 * creation (a umask can take bits away, never add any) and made exact
 * with fchmod before the key is written.
 */
static int create_key_file(const char *path, const char *line, size_t n, char *err,
			   size_t errlen)
{
	const char *slash = strrchr(path, '/');
	char dir[4096], proc[64];
	bool anon = true, named = false;
	int fd = -1, dfd, rc;

	if (strlen(path) >= sizeof(dir))
		return say(err, errlen, -ENAMETOOLONG, "cannot create %.200s...: the path is too "
			   "long", path);
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	fd = open(dir, O_WRONLY | O_TMPFILE | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL))
		anon = false;
	else if (fd < 0) {
		rc = create_error(path, dir, -errno, err, errlen);
		goto out;
	}
retry:
	if (!anon) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			rc = create_error(path, dir, -errno, err, errlen);
			goto out;
		}
		named = true;
	}
	rc = fchmod(fd, 0600) < 0 ? -errno : write_all(fd, line, n);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (rc < 0) {
		say(err, errlen, rc, "cannot write %s: %s", path, strerror(-rc));
		goto out;
	}
	if (anon) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0) {
			/* The directory was there for O_TMPFILE: ENOENT here
			 * means no /proc.  Start again the other way. */
			if (errno == ENOENT && access("/proc/self/fd", F_OK) < 0) {
				close(fd);
				fd = -1;
				anon = false;
				goto retry;
			}
			rc = create_error(path, dir, -errno, err, errlen);
			goto out;
		}
		named = true;
	}
	rc = close(fd) < 0 ? -errno : 0;
	fd = -1;
	if (rc < 0) {
		say(err, errlen, rc, "cannot write %s: %s", path, strerror(-rc));
		goto out;
	}
	/* The new name is on disk too (best effort: not every filesystem
	 * lets a directory be fsynced). */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	named = false;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (named)
		unlink(path);
	return rc;
}

int remus_tls_keygen(const char *path, char *err, size_t errlen)
{
	uint8_t key[32];
	char line[128];
	size_t n;
	int r, rc;

	r = gnutls_rnd(GNUTLS_RND_KEY, key, sizeof(key));
	if (r < 0)
		return say(err, errlen, -EIO, "no random key: %s", gnutls_strerror(r));
	n = (size_t)snprintf(line, sizeof(line), "%s:", PSK_IDENTITY_DEFAULT);
	for (size_t i = 0; i < sizeof(key); i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%02x", key[i]);
	line[n++] = '\n';
	explicit_bzero(key, sizeof(key));
	rc = create_key_file(path, line, n, err, errlen);
	explicit_bzero(line, sizeof(line));
	return rc;
}

/* ---- sessions ------------------------------------------------------------ */

static ssize_t pull(gnutls_transport_ptr_t p, void *buf, size_t n)
{
	struct remus_tls *t = p;
	ssize_t r = recv(t->fd, buf, n, 0);

	if (r > 0 && !t->done)
		t->bytes_in += (uint64_t)r;
	return r;
}

static ssize_t push(gnutls_transport_ptr_t p, const void *buf, size_t n)
{
	struct remus_tls *t = p;

	return send(t->fd, buf, n, MSG_NOSIGNAL);
}

static ssize_t pushv(gnutls_transport_ptr_t p, const giovec_t *iov, int n)
{
	struct remus_tls *t = p;
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };

	return sendmsg(t->fd, &m, MSG_NOSIGNAL);
}

int remus_tls_new(struct remus_tls_creds *c, int fd, const char *peer_host, const char *label,
		  struct remus_tls **out)
{
	unsigned flags = (c->role == REMUS_TLS_SERVER ? GNUTLS_SERVER : GNUTLS_CLIENT) |
			 GNUTLS_NONBLOCK | GNUTLS_NO_TICKETS;
	struct remus_tls *t;
	const char *name;
	int r;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->c = c;
	t->fd = fd;
	t->sticky = 1;
	snprintf(t->label, sizeof(t->label), "%s", label ? label : "peer");
	name = c->peer_name ? c->peer_name : c->role == REMUS_TLS_CLIENT ? peer_host : NULL;
	if (name && !c->psk && !(t->check_name = strdup(name)))
		goto nomem;
	r = gnutls_init(&t->s, flags);
	if (r < 0) {
		t->s = NULL;
		goto nomem;
	}
	gnutls_session_set_ptr(t->s, t);
	gnutls_transport_set_ptr(t->s, t);
	gnutls_transport_set_pull_function(t->s, pull);
	gnutls_transport_set_push_function(t->s, push);
	gnutls_transport_set_vec_push_function(t->s, pushv);
	/* Our own deadline runs on the loop (the acceptor, the link). */
	gnutls_handshake_set_timeout(t->s, 0);
	r = gnutls_priority_set(t->s, c->prio);
	if (r >= 0 && c->psk)
		r = gnutls_credentials_set(t->s, GNUTLS_CRD_PSK,
					   c->role == REMUS_TLS_SERVER ? (void *)c->psk_srv
								       : (void *)c->psk_cli);
	if (r >= 0 && !c->psk) {
		r = gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, c->x509);
		if (c->role == REMUS_TLS_SERVER) {
			gnutls_certificate_server_set_request(t->s, GNUTLS_CERT_REQUIRE);
			/* No CA names in the request: a client holding another
			 * CA's certificate sends it anyway, and the refusal can
			 * say "issuer unknown" instead of "no certificate". */
			gnutls_certificate_send_x509_rdn_sequence(t->s, 1);
		}
		/* Chain, validity and (if any) name, checked inside the
		 * handshake: a completed handshake is an authenticated peer. */
		gnutls_session_set_verify_cert(t->s, t->check_name, 0);
		if (r >= 0 && t->check_name && c->role == REMUS_TLS_CLIENT)
			r = gnutls_server_name_set(t->s, GNUTLS_NAME_DNS, t->check_name,
						   strlen(t->check_name));
	}
	if (r < 0) {
		remus_tls_free(t);
		return -EINVAL;
	}
	*out = t;
	return 0;
nomem:
	remus_tls_free(t);
	return -ENOMEM;
}

void remus_tls_free(struct remus_tls *t)
{
	if (!t)
		return;
	if (t->s)
		gnutls_deinit(t->s);
	free(t->check_name);
	free(t);
}

/* A fatal GnuTLS error in words and as -errno. */
static int fatal(struct remus_tls *t, int r, const char *doing)
{
	const char *hint = "";
	int rc = -EPROTO;

	switch (r) {
	case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR: {
		gnutls_datum_t txt = { 0 };
		unsigned st = gnutls_session_get_verify_cert_status(t->s);

		rc = -EACCES;
		if (gnutls_certificate_verification_status_print(st, GNUTLS_CRT_X509, &txt, 0) == 0) {
			snprintf(t->err, sizeof(t->err), "%s: %s: certificate refused: %s%s", t->label,
				 doing, (const char *)txt.data,
				 st & GNUTLS_CERT_SIGNER_NOT_FOUND ? " (not signed by our CA)" : "");
			gnutls_free(txt.data);
			return rc;
		}
		break;
	}
	case GNUTLS_E_NO_CERTIFICATE_FOUND:
	case GNUTLS_E_CERTIFICATE_ERROR:
	case GNUTLS_E_CERTIFICATE_REQUIRED:
		rc = -EACCES;
		hint = " (the peer sent no usable certificate)";
		break;
	case GNUTLS_E_WARNING_ALERT_RECEIVED:
	case GNUTLS_E_FATAL_ALERT_RECEIVED: {
		gnutls_alert_description_t a = gnutls_alert_get(t->s);

		rc = a == GNUTLS_A_BAD_CERTIFICATE || a == GNUTLS_A_UNKNOWN_CA ||
		     a == GNUTLS_A_CERTIFICATE_EXPIRED || a == GNUTLS_A_DECRYPT_ERROR ||
		     a == GNUTLS_A_ACCESS_DENIED || a == GNUTLS_A_CERTIFICATE_REQUIRED ||
		     a == GNUTLS_A_UNKNOWN_PSK_IDENTITY || a == GNUTLS_A_CERTIFICATE_UNKNOWN ||
		     a == GNUTLS_A_HANDSHAKE_FAILURE || a == GNUTLS_A_ILLEGAL_PARAMETER ?
		     -EACCES : -EPROTO;
		snprintf(t->err, sizeof(t->err), "%s: %s: %s refused us (alert: %s)%s", t->label,
			 doing, t->label, gnutls_alert_get_name(a),
			 t->c->psk ? "; do both hosts have the same key file?" :
			 "; is our certificate signed by the CA the peer trusts, and valid?");
		return rc;
	}
	case GNUTLS_E_DECRYPTION_FAILED:
	case GNUTLS_E_ERROR_IN_FINISHED_PACKET:
	case GNUTLS_E_KEY_USAGE_VIOLATION:
	case GNUTLS_E_INSUFFICIENT_CREDENTIALS:
	case GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER:
		rc = -EACCES;
		if (t->c->psk)
			hint = " (do both hosts have the same key file?)";
		break;
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_PUSH_ERROR:
	case GNUTLS_E_PULL_ERROR:
		rc = errno ? -errno : -ECONNRESET;
		if (rc == -EAGAIN)
			rc = -ECONNRESET;
		break;
	case GNUTLS_E_MEMORY_ERROR:
		rc = -ENOMEM;
		break;
	case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
	case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
	case GNUTLS_E_UNEXPECTED_PACKET:
		hint = " (is the peer speaking TLS? it may run with --insecure)";
		break;
	}
	if (!*t->err || t->done)
		snprintf(t->err, sizeof(t->err), "%s: %s: %s%s", t->label, doing,
			 gnutls_strerror(r), hint);
	else {
		/* The PSK lookup said why; keep it and add the library's word. */
		char why[sizeof(t->err)];

		snprintf(why, sizeof(why), "%s", t->err);
		snprintf(t->err, sizeof(t->err), "%s: %s: %.300s (%s)", t->label, doing, why,
			 gnutls_strerror(r));
	}
	return rc;
}

int remus_tls_handshake(struct remus_tls *t)
{
	int r;

	if (t->done)
		return 0;
	errno = 0;
	do {
		r = gnutls_handshake(t->s);
	} while (r == GNUTLS_E_INTERRUPTED);
	if (r == GNUTLS_E_AGAIN)
		return -EAGAIN;
	if (r < 0 && !gnutls_error_is_fatal(r) && r != GNUTLS_E_WARNING_ALERT_RECEIVED)
		return -EAGAIN;
	if (r < 0) {
		/* GnuTLS leaves the alert to us: the peer learns why at once
		 * (best effort: the socket is non-blocking). */
		if (r != GNUTLS_E_FATAL_ALERT_RECEIVED && r != GNUTLS_E_PREMATURE_TERMINATION &&
		    r != GNUTLS_E_PUSH_ERROR && r != GNUTLS_E_PULL_ERROR)
			gnutls_alert_send_appropriate(t->s, r);
		return fatal(t, r, "TLS handshake");
	}
	t->done = true;
	t->err[0] = '\0';
	return 0;
}

unsigned remus_tls_wants(const struct remus_tls *t)
{
	return gnutls_record_get_direction(t->s) ? REMUS_EV_WRITE : REMUS_EV_READ;
}

ssize_t remus_tls_read(struct remus_tls *t, struct remus_buf *b, size_t max)
{
	size_t got = 0;
	ssize_t r;

	if (t->sticky <= 0) {
		r = t->sticky;
		t->sticky = 1;
		return r;
	}
	while (got < max) {
		size_t want = max - got;
		int rc;

		if (want > RECORD_MAX)
			want = RECORD_MAX;
		rc = remus_buf_reserve(b, want);
		if (rc == -EMSGSIZE) {
			want = b->limit - remus_buf_len(b);
			if (!want)
				return got ? (ssize_t)got : -EMSGSIZE;
			rc = remus_buf_reserve(b, want);
		}
		if (rc < 0)
			return got ? (ssize_t)got : rc;
		errno = 0;
		do {
			r = gnutls_record_recv(t->s, remus_buf_tail(b), want);
		} while (r == GNUTLS_E_INTERRUPTED);
		if (r > 0) {
			remus_buf_commit(b, (size_t)r);
			got += (size_t)r;
			continue;
		}
		if (r == GNUTLS_E_AGAIN)
			r = -EAGAIN;
		else if (r == 0 || r == GNUTLS_E_PREMATURE_TERMINATION)
			r = 0; /* the link protocol has its own goodbye: an end is an end */
		else if (r == GNUTLS_E_REHANDSHAKE || !gnutls_error_is_fatal((int)r))
			continue; /* TLS 1.3 has no renegotiation; a warning is noise */
		else
			r = fatal(t, (int)r, "TLS read");
		if (!got)
			return r;
		if (r != -EAGAIN)
			t->sticky = r;
		return (ssize_t)got;
	}
	return (ssize_t)got;
}

ssize_t remus_tls_write(struct remus_tls *t, struct remus_buf *b)
{
	size_t done = 0;

	while (remus_buf_len(b) && done < WRITE_BURST) {
		size_t n = remus_buf_len(b);
		ssize_t r;

		errno = 0;
		do {
			r = gnutls_record_send(t->s, remus_buf_data(b), n);
		} while (r == GNUTLS_E_INTERRUPTED);
		if (r == GNUTLS_E_AGAIN)
			return done ? (ssize_t)done : -EAGAIN;
		if (r < 0) {
			int rc = fatal(t, (int)r, "TLS write");

			return done ? (ssize_t)done : rc;
		}
		remus_buf_consume(b, (size_t)r);
		done += (size_t)r;
	}
	return (ssize_t)done;
}

bool remus_tls_has_input(const struct remus_tls *t)
{
	return t->sticky <= 0 || gnutls_record_check_pending(t->s) > 0;
}

const char *remus_tls_error(const struct remus_tls *t)
{
	return t->err;
}

const char *remus_tls_peer_identity(const struct remus_tls *t)
{
	struct remus_tls *m = (struct remus_tls *)t;

	if (!t->done)
		return "";
	if (t->c->psk) {
		const char *id = t->c->role == REMUS_TLS_SERVER ? gnutls_psk_server_get_username(t->s)
								 : t->c->identity;

		snprintf(m->ident, sizeof(m->ident), "PSK identity %s (%s)", id ? id : "?",
			 gnutls_cipher_get_name(gnutls_cipher_get(t->s)));
	} else {
		unsigned n = 0;
		const gnutls_datum_t *certs = gnutls_certificate_get_peers(t->s, &n);
		gnutls_x509_crt_t crt;
		size_t len = sizeof(m->ident);

		snprintf(m->ident, sizeof(m->ident), "?");
		if (certs && n && gnutls_x509_crt_init(&crt) == 0) {
			if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0)
				gnutls_x509_crt_get_dn(crt, m->ident, &len);
			gnutls_x509_crt_deinit(crt);
		}
	}
	return m->ident;
}

uint64_t remus_tls_bytes_in(const struct remus_tls *t)
{
	return t->bytes_in;
}

int remus_tls_send_all_blocking(struct remus_tls *t, struct remus_buf *b)
{
	while (remus_buf_len(b)) {
		ssize_t r = remus_tls_write(t, b);

		if (r == -EAGAIN)
			return -EAGAIN; /* the caller made the fd blocking: a timeout */
		if (r < 0)
			return (int)r;
	}
	return 0;
}
