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

#endif
