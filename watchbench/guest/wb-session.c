// SPDX-License-Identifier: GPL-2.0
/*
 * wb-session: join a fresh anonymous session keyring, then exec argv[1..].
 * PID 1 starts with no session keyring; key notification tests and the
 * keyctl-post benchmark need one that every later process inherits.
 */
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>

#define KEYCTL_JOIN_SESSION_KEYRING 1

int main(int argc, char **argv)
{
	long id;

	if (argc < 2) {
		fprintf(stderr, "usage: wb-session PROGRAM [ARGS...]\n");
		return 2;
	}
	id = syscall(__NR_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL);
	if (id < 0)
		fprintf(stderr, "wb-session: keyctl(JOIN_SESSION_KEYRING): %s\n",
			strerror(errno));
	execv(argv[1], argv + 1);
	fprintf(stderr, "wb-session: exec %s: %s\n", argv[1], strerror(errno));
	return 127;
}
