// POSIX/Linux calls that need _GNU_SOURCE, which Glibc's Swift module does not export:
// accept4(2), pipe2(2), SO_PEERCRED's struct ucred, SO_PEERGROUPS and glibc's mallopt(3). Thin
// wrappers keep the feature macros out of Swift.
#ifndef NICROUTE_CPOSIX_H
#define NICROUTE_CPOSIX_H
#include <sys/types.h>

/// accept4(fd, NULL, NULL, SOCK_CLOEXEC).
int cposix_accept_cloexec(int fd);
/// pipe2(fds, O_CLOEXEC).
int cposix_pipe_cloexec(int fds[2]);
/// SO_PEERCRED of a connected Unix socket; 0 on success, -1 with errno.
int cposix_peer_credentials(int fd, int *pid, unsigned *uid, unsigned *gid);
/// SO_PEERGROUPS (Linux 4.13) of a connected Unix socket: at most `*count` supplementary
/// groups into `groups`, their number into `*count`; 0 on success, -1 with errno.
int cposix_peer_groups(int fd, unsigned *groups, int *count);
/// mallopt(M_MMAP_THRESHOLD, bytes) on glibc: allocations of at least `bytes` get their own
/// mapping, returned to the kernel when freed (this also fixes glibc's otherwise sliding
/// threshold). 1 on success; 0 on failure or without glibc.
int cposix_set_mmap_threshold(int bytes);
#endif
