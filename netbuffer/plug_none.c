// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The plug backend in a build without libnl (-DREMUS_WITH_LIBNL=OFF):
 * every call fails with -ENOTSUP and says how to get the real one.  No
 * handle can exist, so the per-handle calls only guard against misuse.
 */
#include "netbuffer/plug.h"

#include <errno.h>

#include "common/log.h"

bool remus_netbuffer_plug_built(void)
{
	return false;
}

int remus_netbuffer_plug_ifb_name(const char *tap, char *out, size_t size)
{
	return -ENOTSUP;
}

int remus_netbuffer_plug_open(const char *tap, uint32_t limit_bytes,
			      struct remus_netbuffer_plug **out)
{
	if (out)
		*out = NULL;
	remus_err("netbuffer", "%s: the plug backend is not in this build: "
		  "rebuild with libnl-route-3-dev and -DREMUS_WITH_LIBNL=ON, or use "
		  "the qemu backend", tap ? tap : "?");
	return -ENOTSUP;
}

int remus_netbuffer_plug_barrier(struct remus_netbuffer_plug *p)
{
	return -ENOTSUP;
}

int remus_netbuffer_plug_commit(struct remus_netbuffer_plug *p)
{
	return -ENOTSUP;
}

int remus_netbuffer_plug_release_all(struct remus_netbuffer_plug *p)
{
	return -ENOTSUP;
}

int remus_netbuffer_plug_stats(struct remus_netbuffer_plug *p,
			       struct remus_netbuffer_plug_stats *st)
{
	return -ENOTSUP;
}

void remus_netbuffer_plug_free(struct remus_netbuffer_plug *p)
{
}
