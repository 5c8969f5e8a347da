// Kernel rtnetlink definitions for Swift.
//
// The constants and structs are taken from the kernel's UAPI headers rather than retyped by
// hand. Glibc's module does not export these headers (nor NETLINK_ROUTE), so this small target
// does. <linux/if.h> is deliberately not included: it collides with Glibc's <net/if.h>, which
// already provides IFF_UP and friends.
#ifndef NICROUTE_CNETLINK_H
#define NICROUTE_CNETLINK_H

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netfilter/nfnetlink.h>  // NFNLGRP_NFTABLES (nicrouted watches nftables changes)

// Socket options at SOL_NETLINK that older libc headers may lack.
static const int CNL_SOL_NETLINK = 270;          // SOL_NETLINK
static const int CNL_NETLINK_ADD_MEMBERSHIP = NETLINK_ADD_MEMBERSHIP;
static const int CNL_NETLINK_EXT_ACK = NETLINK_EXT_ACK;
static const int CNL_NETLINK_CAP_ACK = NETLINK_CAP_ACK;
static const int CNL_NETLINK_GET_STRICT_CHK = NETLINK_GET_STRICT_CHK;

// Network namespace clone flag, for setns(2).
static const int CNL_CLONE_NEWNET = 0x40000000;  // CLONE_NEWNET

// setns(2) needs _GNU_SOURCE, which Glibc's module does not export to Swift; a thin wrapper
// keeps the feature macro out of Swift.
int cnl_setns(int fd, int nstype);

// Sizes of the fixed headers, as the kernel lays them out.
static const int CNL_NLMSGHDR_SIZE = sizeof(struct nlmsghdr);
static const int CNL_IFINFOMSG_SIZE = sizeof(struct ifinfomsg);
static const int CNL_IFADDRMSG_SIZE = sizeof(struct ifaddrmsg);
static const int CNL_RTMSG_SIZE = sizeof(struct rtmsg);
static const int CNL_FIB_RULE_HDR_SIZE = sizeof(struct fib_rule_hdr);
static const int CNL_NDMSG_SIZE = sizeof(struct ndmsg);
static const int CNL_RTATTR_SIZE = sizeof(struct rtattr);
static const int CNL_NLMSGERR_SIZE = sizeof(struct nlmsgerr);
static const int CNL_IFA_CACHEINFO_SIZE = sizeof(struct ifa_cacheinfo);
// One path of RTA_MULTIPATH (its attributes follow it), and RTA_VIA's header (the address follows).
static const int CNL_RTNEXTHOP_SIZE = sizeof(struct rtnexthop);
static const int CNL_RTVIA_SIZE = sizeof(struct rtvia);

#endif
