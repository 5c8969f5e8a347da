// POSIX/Linux calls that need _GNU_SOURCE, which Glibc's Swift module does not export:
// accept4(2), pipe2(2), SO_PEERCRED's struct ucred, SO_PEERGROUPS and glibc's mallopt(3). Thin
// wrappers keep the feature macros out of Swift (and the one datagram a neighbour probe may
// need, IPV6_UNICAST_IF included, out of the reconciler).
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
/// Sends one empty UDP datagram from `source` to `target`'s discard port (9) out of link
/// `ifindex` (IPv6 addresses, 16 bytes each): the kernel queues it while it resolves `target`
/// and solicits from `source`. 0 on success, -1 with errno.
int cposix_udp6_probe(const unsigned char source[16], const unsigned char target[16], int ifindex);
#endif
