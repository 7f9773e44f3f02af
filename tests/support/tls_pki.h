/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Test certificates in libvirt's layout (tls_pki.c says which cases).
 */
#ifndef REMUS_TESTS_SUPPORT_TLS_PKI_H
#define REMUS_TESTS_SUPPORT_TLS_PKI_H

#include <stdbool.h>

/* Makes DIR/good, DIR/otherca, DIR/expired and DIR/wrongname under the
 * existing directory @dir.  Returns 0 or -errno. */
int remus_test_pki_make(const char *dir);

/* Makes a new CA named @ca_name (its CN) and, for each of the @n
 * entries "NAME" or "NAME=IPV4" of @hosts (borrowed), DIR/NAME in
 * libvirt's layout with that CA's cacert.pem and server and client
 * certificates for CN=NAME (DNS name NAME, and the address if given),
 * valid for a day, under the existing directory @dir.  Returns 0 or
 * -errno (-EINVAL for an empty name, a name with '/' or a bad
 * address). */
int remus_test_pki_make_hosts(const char *dir, const char *ca_name, char *const *hosts, int n);

#endif
