/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Small socket helpers (after Redis' anet): unix and TCP sockets,
 * always close-on-exec, optionally non-blocking, and passing fds with
 * SCM_RIGHTS.  Every function returns an fd (owned by the caller) or
 * -errno, and leaks nothing on failure.
 */
#ifndef REMUS_COMMON_SOCK_H
#define REMUS_COMMON_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

int remus_fd_set_nonblock(int fd, bool nonblock);
/* Bytes received on socket @fd and not read yet (FIONREAD); 0 on error.
 * A liveness check asks this before declaring a peer silent: if this
 * process was busy, the peer's words may be waiting unread. */
size_t remus_sock_pending(int fd);
/* Connects to the unix stream socket @path.  -ENAMETOOLONG if the path does
 * not fit sockaddr_un.  With @nonblock a connect in progress is success. */
int remus_unix_connect(const char *path, bool nonblock);
/* Binds and listens on @path, replacing a stale socket file there; the
 * socket file is mode 0600 whatever the umask, before the listen. */
int remus_unix_listen(const char *path, int backlog);
/* Connects a TCP socket to @host (name or address; getaddrinfo may block
 * on DNS for a name) and @port, trying each address in turn; TCP_NODELAY
 * is set.  With @nonblock a connect in progress is success (watch for
 * writable, then read SO_ERROR).  -EHOSTUNREACH if @host does not resolve. */
int remus_tcp_connect(const char *host, uint16_t port, bool nonblock);
/* Binds a non-blocking TCP listening socket to @host (NULL: any address)
 * and @port (0: any free port) with SO_REUSEADDR; the port actually bound
 * is stored in *@bound.  -EADDRNOTAVAIL if @host does not resolve. */
int remus_tcp_listen(const char *host, uint16_t port, int backlog, uint16_t *bound);
/* Sends @len bytes of @data with @fd attached (SCM_RIGHTS; @fd borrowed).
 * Returns bytes sent (the fd travels with the first byte) or -errno. */
ssize_t remus_send_with_fd(int sock, const void *data, size_t len, int fd);
/* Writes all of @len bytes to a blocking fd, retrying on EINTR.
 * Returns 0 or -errno.  For tools and tests, never for the loop. */
int remus_write_all(int fd, const void *data, size_t len);

#endif
