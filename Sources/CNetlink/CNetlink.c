#define _GNU_SOURCE
#include <sched.h>
#include <sys/eventfd.h>
#include "CNetlink.h"

int cnl_setns(int fd, int nstype) { return setns(fd, nstype); }
int cnl_eventfd_cloexec(void) { return eventfd(0, EFD_CLOEXEC); }
