// SPDX-License-Identifier: GPL-2.0
/*
 * Linked into the kernel tree's samples/watch_queue/watch_test (watchbench.guest.clients):
 * its stdout goes to a file, so without this its records would wait in a full stdio
 * buffer until it exits, and it is killed at the end instead.
 */
#include <stdio.h>

static void __attribute__((constructor)) wb_line_buffered(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
}
