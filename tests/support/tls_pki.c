// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Test certificates made with the GnuTLS API (no certtool needed): a
 * libvirt-layout PKI directory per case, so the TLS unit tests and the
 * security scripts (through the tls_pki tool) use the same material.
 *
 *   DIR/good       CA + server + client certificates for "localhost"
 *                  and 127.0.0.1, valid now
 *   DIR/otherca    the same names, signed by another CA (with that CA's
 *                  cacert.pem, so the holder believes in itself)
 *   DIR/expired    the good CA's cacert.pem; certificates that expired
 *                  a day ago
 *   DIR/wrongname  the good CA; certificates for "elsewhere.invalid"
 *
 * remus_test_pki_make_hosts makes a lab's instead: one new CA and, per
 * host NAME[=ADDR], DIR/NAME with certificates for NAME (CN=NAME, DNS
 * name NAME and ADDR's IP address), so that hosts of the libvirt lab
 * prove their own names to each other and a certificate's DN says
 * which host holds it.
 *
 * Each has cacert.pem, servercert.pem, clientcert.pem and
 * private/{server,client}key.pem (keys 0600).  ECDSA P-256 keys: fast
 * to make.
 */
#include "support/tls_pki.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

struct ca {
	gnutls_x509_crt_t crt;
	gnutls_x509_privkey_t key;
};

static int write_file(const char *dir, const char *name, const gnutls_datum_t *d, mode_t mode)
{
	char path[4096];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	if (write(fd, d->data, d->size) != (ssize_t)d->size)
		rc = -EIO;
	close(fd);
	return rc;
}

static int new_key(gnutls_x509_privkey_t *k)
{
	int r = gnutls_x509_privkey_init(k);

	if (r == 0)
		r = gnutls_x509_privkey_generate(*k, GNUTLS_PK_ECDSA,
						 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
	return r < 0 ? -EIO : 0;
}

static int serial(gnutls_x509_crt_t c)
{
	static unsigned n;
	unsigned char s[8];
	uint64_t v = ((uint64_t)time(NULL) << 16) ^ (uint64_t)getpid() << 8 ^ ++n;

	for (int i = 0; i < 8; i++)
		s[i] = (unsigned char)(v >> (56 - 8 * i));
	s[0] &= 0x7f;
	return gnutls_x509_crt_set_serial(c, s, sizeof(s));
}

static int make_ca(struct ca *ca, const char *cn)
{
	time_t now = time(NULL);
	int r;

	if (new_key(&ca->key) < 0 || gnutls_x509_crt_init(&ca->crt) < 0)
		return -EIO;
	r = gnutls_x509_crt_set_version(ca->crt, 3);
	r |= serial(ca->crt);
	r |= gnutls_x509_crt_set_dn_by_oid(ca->crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, strlen(cn));
	r |= gnutls_x509_crt_set_activation_time(ca->crt, now - 3600);
	r |= gnutls_x509_crt_set_expiration_time(ca->crt, now + 10 * 365 * 86400L);
	r |= gnutls_x509_crt_set_basic_constraints(ca->crt, 1, -1);
	r |= gnutls_x509_crt_set_key_usage(ca->crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN);
	r |= gnutls_x509_crt_set_key(ca->crt, ca->key);
	r |= gnutls_x509_crt_set_subject_key_id(ca->crt, "remusca", 7);
	if (r)
		return -EIO;
	return gnutls_x509_crt_sign2(ca->crt, ca->crt, ca->key, GNUTLS_DIG_SHA256, 0) < 0 ? -EIO : 0;
}

static void free_ca(struct ca *ca)
{
	if (ca->crt)
		gnutls_x509_crt_deinit(ca->crt);
	if (ca->key)
		gnutls_x509_privkey_deinit(ca->key);
}

/* A leaf for @name (and the IPv4 address @ip unless NULL), valid @from..@to, for
 * @server or client use, written as DIR/{server,client}cert.pem and
 * DIR/private/{...}key.pem. */
static int make_leaf(const struct ca *ca, const char *dir, bool server, const char *name,
		     const char *ip, time_t from, time_t to)
{
	gnutls_x509_crt_t crt = NULL;
	gnutls_x509_privkey_t key = NULL;
	gnutls_datum_t d = { 0 };
	char file[64];
	unsigned char lo[4];
	int r, rc = -EIO;

	if (new_key(&key) < 0 || gnutls_x509_crt_init(&crt) < 0)
		goto out;
	r = gnutls_x509_crt_set_version(crt, 3);
	r |= serial(crt);
	r |= gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, name, strlen(name));
	r |= gnutls_x509_crt_set_activation_time(crt, from);
	r |= gnutls_x509_crt_set_expiration_time(crt, to);
	r |= gnutls_x509_crt_set_basic_constraints(crt, 0, -1);
	r |= gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE |
					   GNUTLS_KEY_KEY_ENCIPHERMENT);
	r |= gnutls_x509_crt_set_key_purpose_oid(crt, server ? GNUTLS_KP_TLS_WWW_SERVER
							     : GNUTLS_KP_TLS_WWW_CLIENT, 0);
	r |= gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, name, strlen(name),
						  GNUTLS_FSAN_SET);
	if (ip) {
		if (inet_pton(AF_INET, ip, lo) != 1)
			goto out;
		r |= gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, lo, 4,
							  GNUTLS_FSAN_APPEND);
	}
	r |= gnutls_x509_crt_set_key(crt, key);
	if (r || gnutls_x509_crt_sign2(crt, ca->crt, ca->key, GNUTLS_DIG_SHA256, 0) < 0)
		goto out;
	if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d) < 0)
		goto out;
	snprintf(file, sizeof(file), "%scert.pem", server ? "server" : "client");
	rc = write_file(dir, file, &d, 0644);
	gnutls_free(d.data);
	d.data = NULL;
	if (rc < 0)
		goto out;
	rc = -EIO;
	if (gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &d) < 0)
		goto out;
	snprintf(file, sizeof(file), "private/%skey.pem", server ? "server" : "client");
	rc = write_file(dir, file, &d, 0600);
out:
	gnutls_free(d.data);
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (key)
		gnutls_x509_privkey_deinit(key);
	return rc;
}

/* DIR/@sub with @ca's cacert.pem and both leaves. */
static int make_set(const char *dir, const char *sub, const struct ca *ca, const char *name,
		    const char *ip, time_t from, time_t to)
{
	char d[2048], p[4096];
	gnutls_datum_t pem = { 0 };
	int rc;

	snprintf(d, sizeof(d), "%s/%s", dir, sub);
	snprintf(p, sizeof(p), "%s/private", d);
	if ((mkdir(d, 0755) < 0 && errno != EEXIST) || (mkdir(p, 0700) < 0 && errno != EEXIST))
		return -errno;
	if (gnutls_x509_crt_export2(ca->crt, GNUTLS_X509_FMT_PEM, &pem) < 0)
		return -EIO;
	rc = write_file(d, "cacert.pem", &pem, 0644);
	gnutls_free(pem.data);
	if (rc == 0)
		rc = make_leaf(ca, d, true, name, ip, from, to);
	if (rc == 0)
		rc = make_leaf(ca, d, false, name, ip, from, to);
	return rc;
}

int remus_test_pki_make(const char *dir)
{
	struct ca good = { 0 }, other = { 0 };
	time_t now = time(NULL);
	int rc;

	rc = make_ca(&good, "remus test CA");
	if (rc == 0)
		rc = make_ca(&other, "some other CA");
	if (rc == 0)
		rc = make_set(dir, "good", &good, "localhost", "127.0.0.1", now - 3600, now + 86400);
	if (rc == 0)
		rc = make_set(dir, "otherca", &other, "localhost", "127.0.0.1", now - 3600, now + 86400);
	if (rc == 0)
		rc = make_set(dir, "expired", &good, "localhost", "127.0.0.1", now - 10 * 86400,
			      now - 86400);
	if (rc == 0)
		rc = make_set(dir, "wrongname", &good, "elsewhere.invalid", NULL, now - 3600,
			      now + 86400);
	free_ca(&good);
	free_ca(&other);
	return rc;
}

int remus_test_pki_make_hosts(const char *dir, const char *ca_name, char *const *hosts, int n)
{
	struct ca ca = { 0 };
	time_t now = time(NULL);
	char name[256], *eq;
	int i, rc;

	rc = make_ca(&ca, ca_name);
	for (i = 0; rc == 0 && i < n; i++) {
		if (snprintf(name, sizeof(name), "%s", hosts[i]) >= (int)sizeof(name)) {
			rc = -ENAMETOOLONG;
			break;
		}
		eq = strchr(name, '=');
		if (eq)
			*eq++ = '\0';
		if (!*name || strchr(name, '/')) {
			rc = -EINVAL;
			break;
		}
		rc = make_set(dir, name, &ca, name, eq, now - 3600, now + 86400);
	}
	free_ca(&ca);
	return rc;
}
