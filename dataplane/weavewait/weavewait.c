/*
 * The waiter the Docker API proxy puts in front of a container's entrypoint
 * (user-surface spec §7.3.6): it blocks until the weave interface `ethwe` is
 * up with an IPv4 address and, in the multicast build, the 224.0.0.0/4 route
 * exists, then execs its arguments. Built static so it runs in any image,
 * with or without a shell or libc; mounted read-only at /w.
 *
 * Built three times from this file (Makefile): WAIT_MODE 2 = interface and
 * multicast route (/w/w), 1 = interface only (/w-nomcast/w), 0 = no wait
 * (/w-noop/w, for containers the proxy leaves alone).
 *
 * Waiting is event-driven: a rtnetlink socket subscribed to link, address
 * and route changes is opened before the first check, so no change can slip
 * between a check and the wait for the next notification.
 */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef WAIT_MODE
#define WAIT_MODE 2
#endif

#define WEAVE_IFNAME "ethwe"
/* 224.0.0.0/4 as /proc/net/route prints it: hex of the address in host (little-endian) byte order. */
#define MCAST_DEST "000000E0"
#define MCAST_MASK "000000F0"

static int interface_ready(void) {
	struct ifreq ifr;
	int ok = 0;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) return 0;
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, WEAVE_IFNAME, IFNAMSIZ - 1);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP)) {
		/* The address matters as much as the link: the process may bind or connect at once. */
		ok = ioctl(fd, SIOCGIFADDR, &ifr) == 0;
	}
	close(fd);
	return ok;
}

static int multicast_route_ready(void) {
	char line[512], iface[IFNAMSIZ + 1], dest[16], gw[16], mask[16];
	unsigned flags, refcnt, use, metric;
	int found = 0;
	FILE *f = fopen("/proc/net/route", "re");
	if (f == NULL) return 0;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%16s %15s %15s %x %u %u %u %15s", iface, dest, gw, &flags, &refcnt, &use, &metric, mask) == 8 &&
		    strcmp(dest, MCAST_DEST) == 0 && strcmp(mask, MCAST_MASK) == 0) {
			found = 1;
		}
	}
	fclose(f);
	return found;
}

static int network_ready(void) {
	if (WAIT_MODE >= 1 && !interface_ready()) return 0;
	if (WAIT_MODE >= 2 && !multicast_route_ready()) return 0;
	return 1;
}

static void wait_for_network(void) {
	struct sockaddr_nl sa;
	char buf[8192];
	int fd;
	if (WAIT_MODE == 0) return;
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0) {
		perror("weavewait: netlink socket");
		_exit(1);
	}
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("weavewait: netlink bind");
		_exit(1);
	}
	while (!network_ready()) {
		/* Any notification (or an overrun, ENOBUFS) is a reason to look again. */
		if (recv(fd, buf, sizeof(buf), 0) < 0 && errno != ENOBUFS && errno != EINTR) {
			perror("weavewait: netlink recv");
			_exit(1);
		}
	}
	close(fd);
}

int main(int argc, char **argv) {
	if (argc < 2) {
		fputs("No command specified\n", stderr);
		return 1;
	}
	wait_for_network();
	execvp(argv[1], argv + 1);
	if (errno == ENOENT) fprintf(stderr, "exec: \"%s\": executable file not found in $PATH\n", argv[1]);
	else fprintf(stderr, "exec: \"%s\": %s\n", argv[1], strerror(errno));
	return 1;
}
