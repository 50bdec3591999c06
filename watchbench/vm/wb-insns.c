// SPDX-License-Identifier: GPL-2.0
/*
 * wb-insns: a QEMU TCG plugin that counts the guest instructions executed
 * inside regions of interest, per translation block.
 *
 * Every translation block (TB) is counted by a call on its first instruction
 * (one call per block executed; a plain inline add could not tell vCPUs and
 * interrupts apart).  A TB that runs on past the start of a function
 * (symbols=PATH: the kernel's function start addresses, sorted, one hex
 * number a line) is cut there into pieces, each counted on its own, so that
 * every instruction is counted under the function it belongs to.  Pieces are
 * keyed by (start address, number of instructions): one retranslated with
 * another length (icount cuts a block short before an I/O access) is a piece
 * of its own.
 *
 * Inside a region each piece has three counters:
 *	count	executions on the vCPU that opened the region, outside interrupts:
 *		the operation measured;
 *	other	executions on the other vCPUs, outside interrupts (a reader
 *		thread, or an idle CPU waking up);
 *	async	executions inside an interrupt on any vCPU: from an interrupt
 *		entry (irq=PATH: their addresses) to the iretq that ends it, and
 *		inside softirq processing (softirq=PATH: the functions that run
 *		the pending softirqs, from their entry to their ret), which the
 *		kernel also runs in the task when bottom halves are enabled again.
 *
 * The guest opens and closes a region with marker instructions: a NOP with a
 * memory operand whose displacement is a magic number,
 *
 *	0f 1f 80 <disp32>	nopl disp32(%rax)
 *
 * which changes nothing on KVM or bare metal.  The plugin recognises them at
 * translation time and calls back only on them:
 *	WB_MARK_PROGRAM	a program started (wq.c runs it from a constructor);
 *	WB_MARK_BEGIN	zero every counter and count;
 *	WB_MARK_END	write every piece that ran, and stop counting.
 *
 * Output (out=PATH, appended to as regions end, so a guest that is killed
 * keeps the regions that finished), read by watchbench/results/profile.py:
 *	# wb-insns 1
 *	P				a program started
 *	R <pieces> <count> <other> <async>	a region ended (instruction
 *					totals); <pieces> lines follow:
 *	<vaddr hex> <n_insns> <count> <other> <async>	(executions)
 *	X				an end marker without a begin
 *	E <regions>			QEMU exited
 *
 * Counts are exact under -icount, where one thread runs every vCPU in turn;
 * under MTTCG the counters would race, so watchbench profiles under icount.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define WB_MARK_BASE	0x57420000u	/* "WB" */
#define WB_MARK_PROGRAM	(WB_MARK_BASE | 1)
#define WB_MARK_BEGIN	(WB_MARK_BASE | 2)
#define WB_MARK_END	(WB_MARK_BASE | 3)

struct block {
	uint64_t	count;		/* executions in the region on its vCPU */
	uint64_t	other;		/* ... on the other vCPUs */
	uint64_t	async;		/* ... in interrupts, on any vCPU */
	uint64_t	vaddr;
	uint32_t	n_insns;
	int		irq_entry;	/* the block starts an interrupt entry */
	int		irq_exit;	/* the block is an iretq: async, even when icount
					 * runs it again after its callback ran */
};

#define MAX_VCPUS	64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct block **table;	/* open addressing on (vaddr, n_insns) */
static size_t table_size;	/* a power of two */
static struct block **blocks;	/* every block, in creation order */
static size_t nblocks, blocks_cap;
static FILE *out;
static uint64_t *starts;	/* function start addresses, sorted */
static size_t nstarts;
static uint64_t *irq_entries;	/* interrupt entry addresses, sorted */
static size_t nirq_entries;
static uint64_t *soft;		/* softirq functions' start addresses, sorted */
static size_t nsoft;
static int in_region;
static unsigned int home;	/* the vCPU that opened the region */
static unsigned long regions;
static unsigned int depth[MAX_VCPUS];	/* interrupt nesting, per vCPU */

static size_t slot_of(uint64_t vaddr, uint32_t n, size_t size)
{
	uint64_t h = (vaddr ^ ((uint64_t)n << 48)) * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 20) & (size - 1);
}

static void die(const char *what)
{
	fprintf(stderr, "wb-insns: %s\n", what);
	abort();
}

static void grow(void)
{
	size_t size = table_size ? table_size * 2 : 1 << 16, i;
	struct block **t = calloc(size, sizeof(*t));

	if (!t)
		die("out of memory");
	for (i = 0; i < table_size; i++) {
		struct block *b = table[i];
		size_t s;

		if (!b)
			continue;
		for (s = slot_of(b->vaddr, b->n_insns, size); t[s]; s = (s + 1) & (size - 1))
			;
		t[s] = b;
	}
	free(table);
	table = t;
	table_size = size;
}

/* Index of the first entry of @v (n sorted) above @x. */
static size_t upper(const uint64_t *v, size_t n, uint64_t x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] <= x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int in_sorted(const uint64_t *v, size_t n, uint64_t x)
{
	size_t i = upper(v, n, x);

	return i > 0 && v[i - 1] == x;
}

/* The block of (vaddr, n); created on first sight.  Called with the lock held. */
static struct block *block_of(uint64_t vaddr, uint32_t n)
{
	struct block *b;
	size_t s;

	if (nblocks * 2 >= table_size)
		grow();
	for (s = slot_of(vaddr, n, table_size); table[s]; s = (s + 1) & (table_size - 1))
		if (table[s]->vaddr == vaddr && table[s]->n_insns == n)
			return table[s];
	b = calloc(1, sizeof(*b));	/* never moved: QEMU holds its address */
	if (!b)
		die("out of memory");
	b->vaddr = vaddr;
	b->n_insns = n;
	b->irq_entry = in_sorted(irq_entries, nirq_entries, vaddr);
	table[s] = b;
	if (nblocks == blocks_cap) {
		blocks_cap = blocks_cap ? blocks_cap * 2 : 1 << 16;
		blocks = realloc(blocks, blocks_cap * sizeof(*blocks));
		if (!blocks)
			die("out of memory");
	}
	blocks[nblocks++] = b;
	return b;
}

static void begin_region(void)
{
	size_t i;

	for (i = 0; i < nblocks; i++)
		blocks[i]->count = blocks[i]->other = blocks[i]->async = 0;
	in_region = 1;
}

static void end_region(void)
{
	uint64_t insns = 0, other = 0, async = 0;
	size_t i, moved = 0;

	if (!in_region) {
		fputs("X\n", out);
		return;
	}
	for (i = 0; i < nblocks; i++) {
		const struct block *b = blocks[i];

		if (b->count || b->other || b->async) {
			moved++;
			insns += b->count * b->n_insns;
			other += b->other * b->n_insns;
			async += b->async * b->n_insns;
		}
	}
	fprintf(out, "R %zu %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", moved, insns, other,
		async);
	for (i = 0; i < nblocks; i++) {
		const struct block *b = blocks[i];

		if (b->count || b->other || b->async)
			fprintf(out, "%" PRIx64 " %u %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
				b->vaddr, b->n_insns, b->count, b->other, b->async);
	}
	fflush(out);
	in_region = 0;
	regions++;
}

/*
 * A block starts: count it, under "async" while its vCPU is in an interrupt
 * (entered at an interrupt entry, left at an iretq).  Under icount one thread
 * runs every vCPU, so no lock is needed.
 */
static void on_block(unsigned int vcpu, void *udata)
{
	struct block *b = udata;
	unsigned int v = vcpu < MAX_VCPUS ? vcpu : MAX_VCPUS - 1;

	if (b->irq_entry)
		depth[v]++;
	if (!in_region)
		return;
	if (depth[v] || b->irq_exit)
		b->async++;
	else if (v == home)
		b->count++;
	else
		b->other++;
}

static void on_iret(unsigned int vcpu, void *udata)
{
	unsigned int v = vcpu < MAX_VCPUS ? vcpu : MAX_VCPUS - 1;

	(void)udata;
	if (depth[v])	/* 0: an exception's return */
		depth[v]--;
}

static void on_marker(unsigned int vcpu_index, void *udata)
{
	uint32_t kind = (uint32_t)(uintptr_t)udata;

	pthread_mutex_lock(&lock);
	home = vcpu_index < MAX_VCPUS ? vcpu_index : MAX_VCPUS - 1;
	if (kind == WB_MARK_PROGRAM) {
		fputs("P\n", out);
		fflush(out);
		in_region = 0;
	} else if (kind == WB_MARK_BEGIN) {
		begin_region();
	} else {
		end_region();
	}
	pthread_mutex_unlock(&lock);
}

/* The magic of a marker instruction, or 0. */
static uint32_t marker_of(const struct qemu_plugin_insn *insn)
{
	const unsigned char *p = qemu_plugin_insn_data(insn);
	uint32_t disp;

	if (qemu_plugin_insn_size(insn) != 7 || p[0] != 0x0f || p[1] != 0x1f || p[2] != 0x80)
		return 0;
	memcpy(&disp, p + 3, sizeof(disp));	/* x86 is little-endian, like its hosts */
	if (disp != WB_MARK_PROGRAM && disp != WB_MARK_BEGIN && disp != WB_MARK_END)
		return 0;
	return disp;
}

/* The first function start above @vaddr, or UINT64_MAX. */
static uint64_t next_start(uint64_t vaddr)
{
	size_t i = upper(starts, nstarts, vaddr);

	return i < nstarts ? starts[i] : UINT64_MAX;
}

static int is_iret(const struct qemu_plugin_insn *insn)
{
	const unsigned char *p = qemu_plugin_insn_data(insn);

	return qemu_plugin_insn_size(insn) == 2 && p[0] == 0x48 && p[1] == 0xcf;
}

/* Count the piece of @n instructions that starts with @first. */
static void count_piece(struct qemu_plugin_insn *first, size_t n)
{
	struct block *b;

	pthread_mutex_lock(&lock);
	b = block_of(qemu_plugin_insn_vaddr(first), (uint32_t)n);
	b->irq_exit = n == 1 && is_iret(first);
	pthread_mutex_unlock(&lock);
	qemu_plugin_register_vcpu_insn_exec_cb(first, on_block, QEMU_PLUGIN_CB_NO_REGS, b);
}

/* A softirq function starts, or one returns (its ret): async like an interrupt. */
static void on_soft_enter(unsigned int vcpu, void *udata)
{
	(void)udata;
	depth[vcpu < MAX_VCPUS ? vcpu : MAX_VCPUS - 1]++;
}

static int is_ret(const struct qemu_plugin_insn *insn)
{
	const unsigned char *p = qemu_plugin_insn_data(insn);

	return (qemu_plugin_insn_size(insn) == 1 && p[0] == 0xc3) ||
	       (qemu_plugin_insn_size(insn) == 3 && p[0] == 0xc2);
}

/* Is @insn a return of a softirq function? */
static int soft_return(const struct qemu_plugin_insn *insn)
{
	uint64_t vaddr = qemu_plugin_insn_vaddr(insn);
	size_t i = upper(starts, nstarts, vaddr);

	return nsoft && i > 0 && is_ret(insn) && in_sorted(soft, nsoft, starts[i - 1]);
}


static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb), i, first = 0;
	uint64_t boundary;

	(void)id;
	if (!n)
		return;
	boundary = next_start(qemu_plugin_tb_vaddr(tb));
	for (i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		uint32_t kind = marker_of(insn);

		if (i > first && qemu_plugin_insn_vaddr(insn) >= boundary) {
			count_piece(qemu_plugin_tb_get_insn(tb, first), i - first);
			first = i;
			boundary = next_start(qemu_plugin_insn_vaddr(insn));
		}
		if (in_sorted(soft, nsoft, qemu_plugin_insn_vaddr(insn)))
			qemu_plugin_register_vcpu_insn_exec_cb(insn, on_soft_enter,
							       QEMU_PLUGIN_CB_NO_REGS, NULL);
		if (is_iret(insn) || soft_return(insn))
			qemu_plugin_register_vcpu_insn_exec_cb(insn, on_iret,
							       QEMU_PLUGIN_CB_NO_REGS, NULL);
		if (kind)
			qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker,
							       QEMU_PLUGIN_CB_NO_REGS,
							       (void *)(uintptr_t)kind);
	}
	count_piece(qemu_plugin_tb_get_insn(tb, first), n - first);
}

static int load_sorted(const char *path, uint64_t **vec, size_t *nvec)
{
	FILE *f = fopen(path, "r");
	size_t cap = 0;
	uint64_t v;

	if (!f) {
		perror(path);
		return -1;
	}
	while (fscanf(f, "%" SCNx64, &v) == 1) {
		if (*nvec == cap) {
			cap = cap ? cap * 2 : 1 << 14;
			*vec = realloc(*vec, cap * sizeof(**vec));
			if (!*vec)
				die("out of memory");
		}
		if (*nvec && v <= (*vec)[*nvec - 1]) {
			fprintf(stderr, "wb-insns: %s is not sorted\n", path);
			fclose(f);
			return -1;
		}
		(*vec)[(*nvec)++] = v;
	}
	fclose(f);
	return 0;
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
	(void)id;
	(void)udata;
	pthread_mutex_lock(&lock);
	fprintf(out, "E %lu\n", regions);
	fclose(out);
	out = NULL;
	pthread_mutex_unlock(&lock);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
					   int argc, char **argv)
{
	const char *path = NULL;
	int i;

	for (i = 0; i < argc; i++)
		if (!strncmp(argv[i], "out=", 4))
			path = argv[i] + 4;
		else if (!strncmp(argv[i], "symbols=", 8) &&
			 load_sorted(argv[i] + 8, &starts, &nstarts))
			return -1;
		else if (!strncmp(argv[i], "irq=", 4) &&
			 load_sorted(argv[i] + 4, &irq_entries, &nirq_entries))
			return -1;
		else if (!strncmp(argv[i], "softirq=", 8) &&
			 load_sorted(argv[i] + 8, &soft, &nsoft))
			return -1;
	if (!path) {
		fprintf(stderr, "wb-insns: usage: -plugin FILE,out=PATH[,symbols=PATH][,irq=PATH][,softirq=PATH]\n");
		return -1;
	}
	if (strcmp(info->target_name, "x86_64")) {
		fprintf(stderr, "wb-insns: markers are x86-64 instructions; target is %s\n",
			info->target_name);
		return -1;
	}
	out = fopen(path, "w");
	if (!out) {
		perror(path);
		return -1;
	}
	fputs("# wb-insns 1\n", out);
	fflush(out);
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
