#define _GNU_SOURCE
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "CPosix.h"

int cposix_accept_cloexec(int fd) { return accept4(fd, NULL, NULL, SOCK_CLOEXEC); }

int cposix_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int cposix_peer_credentials(int fd, int *pid, unsigned *uid, unsigned *gid) {
    struct ucred cred;
    socklen_t length = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) return -1;
    *pid = cred.pid;
    *uid = cred.uid;
    *gid = cred.gid;
    return 0;
}

int cposix_peer_groups(int fd, unsigned *groups, int *count) {
    socklen_t length = (socklen_t)(*count > 0 ? *count : 0) * sizeof(gid_t);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &length) != 0) return -1;
    *count = (int)(length / sizeof(gid_t));
    return 0;
}

int cposix_set_mmap_threshold(int bytes) {
#ifdef __GLIBC__
    return mallopt(M_MMAP_THRESHOLD, bytes);
#else
    (void)bytes;
    return 0;
#endif
}

int cposix_udp6_probe(const unsigned char source[16], const unsigned char target[16], int ifindex) {
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    struct sockaddr_in6 from = {.sin6_family = AF_INET6};
    memcpy(&from.sin6_addr, source, 16);
    struct sockaddr_in6 to = {.sin6_family = AF_INET6, .sin6_port = htons(9)};
    memcpy(&to.sin6_addr, target, 16);
    /* IPV6_UNICAST_IF takes the index in network byte order. */
    int index = (int)htonl((uint32_t)ifindex);
    int rc = bind(fd, (struct sockaddr *)&from, sizeof from);
    if (rc == 0) rc = setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_IF, &index, sizeof index);
    if (rc == 0 && sendto(fd, "", 0, 0, (struct sockaddr *)&to, sizeof to) < 0) rc = -1;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}
