/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to the qemu backend's two files: its state, shared by qemu.c
 * (the QMP setup and teardown) and qemu_nic.c (the frame data path), and
 * the data path's calls that the QMP steps make.  Nothing else includes
 * this; netbuffer.c sees the backend through qemu.h.
 */
#ifndef REMUS_NETBUFFER_QEMU_NIC_H
#define REMUS_NETBUFFER_QEMU_NIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/loop.h"
#include "netbuffer/frame.h"
#include "netbuffer/qemu.h"

/* Bound of the setup and teardown messages. */
#define REMUS_NBQEMU_MSG_LEN 768

struct nic {
	struct remus_nbqemu *b;  /* back pointer */
	unsigned index;
	char *netdev;            /* owned */
	char *id_filter, *id_out, *id_in; /* owned: object/chardev/fd names */
	/* The data path (qemu_nic.c). */
	int out_fd, in_fd;       /* our ends, owned, -1 */
	int qemu_out_fd, qemu_in_fd; /* QEMU's ends until handed to getfd */
	bool out_watched, in_watched;
	bool out_dead, in_dead;  /* EOF or error: stop reading / writing */
	struct remus_nbf_reader rd;
	uint64_t malformed_logged;
	int64_t vnet_hdr_len;    /* of the last frame read, -1 before any */
	struct remus_buf wbuf;   /* released bytes not yet taken by the socket */
	/* What exists in QEMU (what teardown must remove; qemu.c). */
	bool fd_out_passed, fd_in_passed; /* getfd done, not consumed yet */
	bool chr_out_added, chr_in_added, filter_added, filter_off;
	unsigned step;           /* setup progress, enum step */
};

/* Setup of one NIC, in this order. */
enum step { STEP_GETFD_OUT, STEP_GETFD_IN, STEP_CHARDEV_OUT, STEP_CHARDEV_IN, STEP_FILTER,
	    STEP_DONE };

/* Short names of enum remus_nbqemu_state (qemu.h) inside the backend. */
#define Q_NEW REMUS_NBQEMU_NEW
#define Q_DISCOVER REMUS_NBQEMU_DISCOVER
#define Q_SCAN REMUS_NBQEMU_SCAN
#define Q_SETUP REMUS_NBQEMU_SETUP
#define Q_READY REMUS_NBQEMU_READY
#define Q_TEARDOWN REMUS_NBQEMU_TEARDOWN
#define Q_DONE REMUS_NBQEMU_DONE

struct qop;

struct remus_nbqemu {
	struct remus_loop *loop; /* borrowed */
	struct remus_qmp *qmp;   /* borrowed */
	struct remus_nbq *q;     /* borrowed */
	enum remus_nbqemu_state state; /* qemu.c's set_state() changes it */
	struct nic *nics;        /* owned array */
	size_t nnics;
	bool discover;
	struct qop *ops;         /* owned list of commands in flight */
	/* Discovery: device paths still to ask for their netdev. */
	char **cand;             /* owned */
	size_t ncand, cand_next;
	unsigned lists_left;     /* qom-list replies outstanding */
	/* Leftovers of an earlier run to remove before setup. */
	struct leftover *left;   /* owned array */
	size_t nleft, left_next;
	/* Setup. */
	remus_nbqemu_done_cb *setup_done;
	void *setup_opaque;
	size_t step_nic;
	bool cancel;             /* teardown requested during setup */
	int setup_rc;
	char setup_msg[REMUS_NBQEMU_MSG_LEN];
	/* Teardown. */
	remus_nbqemu_done_cb *td_done;
	void *td_opaque;
	bool td_release;
	bool td_flushing;        /* waiting for QEMU to read indev */
	uint64_t td_flush_deadline_ms;
	struct remus_timer td_timer; /* next look at the flush */
	int td_rc;
	char td_msg[REMUS_NBQEMU_MSG_LEN];
	/* Stats. */
	uint64_t dropped_io;
	bool overflow_logged;
};

/* ---- The data path (qemu_nic.c), in the order setup and teardown use it */

/* Makes @n NIC @index of @b for @netdev (borrowed, copied) and names its
 * QEMU objects; opens nothing.  Returns 0 or -ENOMEM, and @n can be
 * released either way. */
int remus_nbqemu_nic_init(struct nic *n, struct remus_nbqemu *b, unsigned index,
			  const char *netdev);
/* Creates both socketpairs of @n, sizes QEMU's send buffers, starts
 * reading outdev.  Returns 0 or -errno; what was made is closed by
 * remus_nbqemu_nic_close(). */
int remus_nbqemu_nic_open(struct remus_nbqemu *b, struct nic *n);
/* QEMU's end of outdev (@out) or of indev was handed to getfd, whose QMP
 * client holds its own dup until it is sent: closes ours. */
void remus_nbqemu_nic_gave_fd(struct nic *n, bool out);
/* Teardown's wait: drains every outdev into the queue, pushes buffered
 * bytes to indev and asks the kernel how much of it QEMU has not read
 * yet.  Returns the bytes still pending. */
size_t remus_nbqemu_flush_pending(struct remus_nbqemu *b);
/* Stops reading outdev for good: QEMU is about to close its end, and the
 * EOF is no error then. */
void remus_nbqemu_nic_stop_reading(struct remus_nbqemu *b, struct nic *n);
/* Stops watching and closes our ends; QEMU's objects are not touched. */
void remus_nbqemu_nic_close(struct remus_nbqemu *b, struct nic *n);
/* Closes, then frees the names and the frame reader. */
void remus_nbqemu_nic_release(struct remus_nbqemu *b, struct nic *n);

#endif
