// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * remusd: the remus-qemu daemon of one protected VM on one host.
 *
 *   remusd primary --qmp PATH --standby HOST:PORT [options]
 *   remusd standby --qmp PATH --incoming PATH --listen [HOST:]PORT [options]
 *   remusd ctl SOCKET REQUEST...
 *   remusd serve [--config FILE] [--KEY VALUE]...   (the host daemon: hostd/)
 *   remusd keygen FILE
 *   remusd ramfs --mount DIR [--socket PATH] [--allow-other]  (dirty/ramfs.h)
 *
 * main() parses the command line (options.c) and runs what it asks for:
 * a role (daemon.c, primary.c, standby.c) or one control request
 * (remusctl/remusctl.h).  Exit status: 0, 1 on failure, 2 for a command
 * line that cannot be used.
 */
#include <stdio.h>

#include "daemon/daemon.h"
#include "dirty/ramfs.h"
#include "hostd/hostd.h"
#include "remusctl/remusctl.h"
#include "tls/tls.h"

/* remusd keygen FILE: the key of one pair of hosts (tls/tls.h). */
static int keygen(const char *path)
{
	char err[512];

	if (remus_tls_keygen(path, err, sizeof(err)) < 0) {
		fprintf(stderr, "remusd keygen: %s\n", err);
		return 1;
	}
	printf("wrote a new pre-shared key to %s (mode 0600); copy it to the other host over "
	       "a channel you trust and give both remusd --tls-psk %s\n", path, path);
	return 0;
}

int main(int argc, char **argv)
{
	struct remusd_options o;
	int rc;

	if (remusd_options_parse(&o, argc, argv) < 0) {
		fprintf(stderr, "remusd: %s\n", o.error);
		rc = 2;
	} else if (o.mode == REMUSD_HELP) {
		remusd_usage(stdout);
		rc = 0;
	} else if (o.mode == REMUSD_KEYGEN) {
		rc = keygen(o.keygen_path);
	} else if (o.mode == REMUSD_SERVE) {
		rc = remus_hostd_serve_main(o.serve_argc, o.serve_argv);
	} else if (o.mode == REMUSD_RAMFS) {
		struct remus_ramfs_opts ro = { o.ramfs_mount, o.ramfs_socket,
					       o.ramfs_allow_other };

		if (o.log_level_given)
			remus_log_set_level(o.log_level);
		rc = remus_ramfs_serve(&ro) < 0 ? 1 : 0;
	} else if (o.mode == REMUSD_CTL) {
		rc = remus_cli_ctl("remusd ctl", o.ctl_socket, o.ctl_nwords, o.ctl_words,
				   stdout, stderr);
	} else {
		rc = remusd_run(&o);
	}
	remusd_options_release(&o);
	return rc;
}
