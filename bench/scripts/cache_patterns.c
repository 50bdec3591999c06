// SPDX-License-Identifier: GPL-2.0
/*
 * Memory access patterns whose cache misses are known, for checking the
 * cache model of watchbench/vm/wb-insns.c against Cachegrind
 * (bench/scripts/cache_model_vs_cachegrind.py, tests/unit/test_cache_model.py).
 *
 *	cache_patterns PATTERN
 *
 * runs one pattern's measure_<pattern>() once, after setting its data up
 * (which leaves it in the last-level cache when it fits there).  Each
 * measure_ function is the measured part twice over: between the plugin's
 * begin and end markers, and, for Cachegrind, the function itself (its own
 * counts, nothing is called from it).  The arrays are static, so their
 * addresses, and the cache sets they fall in, are the same under both tools.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MARK(magic)	__asm__ volatile("nopl " #magic "(%%rax)" ::: "memory")
#define MARK_PROGRAM()	MARK(0x57420001)
#define MARK_BEGIN()	MARK(0x57420002)
#define MARK_END()	MARK(0x57420003)

#define LINE		64
#define BIG		(16 << 20)	/* twice the default LL */
#define SMALL		(8 << 10)	/* a quarter of the default D1 */
#define NODES		(BIG / LINE)

struct node {
	struct node	*next;
	char		pad[LINE - sizeof(struct node *)];
};

static char big[BIG] __attribute__((aligned(4096)));
static char small[SMALL] __attribute__((aligned(4096)));
static struct node nodes[NODES] __attribute__((aligned(4096)));
static volatile uint64_t sink;

#define NOINLINE	__attribute__((noinline))

/* Every 8 bytes of an array twice LL's size: a miss per line in D1 and LL. */
static NOINLINE uint64_t measure_seq(void)
{
	const uint64_t *p = (const uint64_t *)big;
	uint64_t sum = 0;
	size_t i;

	MARK_BEGIN();
	for (i = 0; i < BIG / sizeof(*p); i++)
		sum += p[i];
	MARK_END();
	return sum;
}

/* Every 256th byte, twice over: a miss per access in D1 and, the array being twice LL, in LL. */
static NOINLINE uint64_t measure_stride(void)
{
	uint64_t sum = 0;
	size_t i;
	int r;

	MARK_BEGIN();
	for (r = 0; r < 2; r++)
		for (i = 0; i < BIG; i += 256)
			sum += (unsigned char)big[i];
	MARK_END();
	return sum;
}

/* One node a line, visited in a random order: a D1 and an LL miss per node. */
static NOINLINE uint64_t measure_chase(void)
{
	const struct node *n = &nodes[0];
	size_t i;

	MARK_BEGIN();
	for (i = 0; i < NODES; i++)
		n = n->next;
	MARK_END();
	return (uint64_t)(uintptr_t)n;
}

/* A small array, walked a line at a time 1000 times: misses only on the first pass. */
static NOINLINE uint64_t measure_hot(void)
{
	uint64_t sum = 0;
	size_t i;
	int r;

	MARK_BEGIN();
	for (r = 0; r < 1000; r++)
		for (i = 0; i < SMALL; i += LINE)
			sum += (unsigned char)small[i];
	MARK_END();
	return sum;
}

/* 96 KiB of straight-line code, run 20 times: three times I1, so an I1 miss a line. */
static NOINLINE uint64_t measure_code(void)
{
	uint64_t sum = 0;
	int r;

	MARK_BEGIN();
	for (r = 0; r < 20; r++)
		__asm__ volatile(".rept 24576\n\taddl $1, %k0\n\t.endr" : "+r"(sum));
	MARK_END();
	return sum;
}

/* A random cycle through every node (Sattolo's shuffle, a fixed xorshift seed). */
static void link_nodes(void)
{
	static uint32_t order[NODES];
	uint64_t x = 88172645463325252ull;
	size_t i;

	for (i = 0; i < NODES; i++)
		order[i] = (uint32_t)i;
	for (i = NODES - 1; i > 0; i--) {
		size_t j;
		uint32_t t;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		j = (size_t)(x % i);
		t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (i = 0; i < NODES; i++)
		nodes[order[i]].next = &nodes[order[(i + 1) % NODES]];
}

static const struct pattern {
	const char	*name;
	uint64_t	(*measure)(void);
} patterns[] = {
	{ "seq", measure_seq },
	{ "stride", measure_stride },
	{ "chase", measure_chase },
	{ "hot", measure_hot },
	{ "code", measure_code },
};

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	size_t i;

	MARK_PROGRAM();
	memset(big, 1, sizeof(big));
	memset(small, 2, sizeof(small));
	for (i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
		if (strcmp(what, patterns[i].name))
			continue;
		if (patterns[i].measure == measure_chase)
			link_nodes();
		sink = patterns[i].measure();
		return 0;
	}
	fprintf(stderr, "usage: %s seq|stride|chase|hot|code\n", argv[0]);
	return 2;
}
