// SPDX-License-Identifier: GPL-2.0
/*
 * The cache model's smallest check (tests/unit/test_cache_model.py), three
 * regions of the instruction-count plugin:
 *	0: a line at a time over 256 KiB, eight times the default D1:
 *	   a D1 miss a line;
 *	1: a line at a time over 16 KiB, which the first walk evicted:
 *	   a D1 miss a line again;
 *	2: the same 16 KiB once more, now warm: no miss.
 */
#include <string.h>

#define MARK(magic)	__asm__ volatile("nopl " #magic "(%%rax)" ::: "memory")

static char big[256 << 10] __attribute__((aligned(4096)));
static char small[16 << 10] __attribute__((aligned(4096)));
static volatile unsigned long sink;

static void walk(const char *p, unsigned long len)
{
	unsigned long i, sum = 0;

	MARK(0x57420002);
	for (i = 0; i < len; i += 64)
		sum += (unsigned char)p[i];
	MARK(0x57420003);
	sink = sum;
}

int main(int argc, char **argv)
{
	(void)argv;
	MARK(0x57420001);
	memset(small, argc, sizeof(small));
	memset(big, argc, sizeof(big));
	walk(big, sizeof(big));
	walk(small, sizeof(small));
	walk(small, sizeof(small));
	return 0;
}
