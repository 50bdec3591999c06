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
 *
 * The cache model (cache=on; off by default, and then the output is format 1
 * exactly as above) simulates, as Cachegrind does, a first-level instruction
 * cache (I1), a first-level data cache (D1) and a last-level cache (LL) that
 * sees the I1 and D1 misses, so that a region's memory cost can be counted
 * as deterministically as its instructions.  Each level is set-associative
 * with LRU replacement, write-allocate (a store is an access like a load;
 * nothing is written back), indexed by the low bits of the line number and
 * fed virtual addresses: guest-virtual, kernel and user alike, deterministic
 * under icount (physical ones would follow the page allocator).  An access
 * that straddles lines looks all of them up and is one miss at most, in
 * each level, as in Cachegrind.  Sizes (l1i=, l1d=, ll=SIZE:ASSOC:LINE, a
 * size in bytes or with K or M; sets must be a power of two) default to a
 * Skylake-class x86 part, the common CI runner:
 *	I1 32K:8:64	D1 32K:8:64	LL 8M:16:64
 * Cachegrind reads the host's CPUID instead; fixed sizes keep counts equal
 * from runner to runner.
 *
 * Instruction fetches are simulated a piece at a time when it starts: the
 * lines from its first to its last byte, in order (its first instruction is
 * one access, however many lines it spans; every later line one access),
 * which is what fetching it an instruction at a time would do, except that
 * LL sees the piece's fetch misses before its data misses.  Data accesses
 * are QEMU's memory callbacks, one per access QEMU makes (a 16-byte vector
 * load may be two), MMIO left out; each is counted under the piece that
 * the vCPU is running, in the same count/other/async slot as the piece's
 * instructions.  The caches start empty at the first marker (the boot
 * before it, most of what the model used to cost, no region counts), and
 * run from then on, regions or not, so that a region starts with them as
 * the guest, its warm-up included, left them.  Starting means translating
 * every block anew with the memory callbacks: the first marker asks QEMU
 * for a reset (the code cache flushed, our callbacks dropped and registered
 * again), which takes effect when the vCPU next leaves its translation
 * block.  A region opened by the very first marker would miss that block's
 * data accesses; the suite's and the validation's programs open none
 * there (their first marker is P).
 *
 * With the model on the file is format 2: format 1 with a configuration
 * line after the header and 15 more numbers on every R and piece line:
 *	# wb-insns 2
 *	C I1 <size> <assoc> <line> D1 <size> <assoc> <line> LL <size> <assoc> <line>
 *	R <pieces> <count> <other> <async> <events>
 *	<vaddr hex> <n_insns> <count> <other> <async> <events>
 * where <events> is, for each of
 *	dr	data references (loads and stores);
 *	i1	I1 misses;
 *	d1	D1 misses;
 *	lli	LL misses of instruction fetches;
 *	lld	LL misses of data references,
 * its count, other and async, so 15 numbers (dr count, dr other, dr async,
 * i1 count, ...), sums over the region on the R line.  Instruction
 * references are the instructions: n_insns times the executions.
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

/* The cache model's events, counted per piece and slot (count, other, async). */
enum event { EV_DR, EV_I1, EV_D1, EV_LLI, EV_LLD, N_EVENTS };
enum slot { SLOT_COUNT, SLOT_OTHER, SLOT_ASYNC, N_SLOTS };

struct block {
	uint64_t	count;		/* executions in the region on its vCPU */
	uint64_t	other;		/* ... on the other vCPUs */
	uint64_t	async;		/* ... in interrupts, on any vCPU */
	uint64_t	vaddr;
	uint32_t	n_insns;
	int		irq_entry;	/* the block starts an interrupt entry */
	int		irq_exit;	/* the block is an iretq: async, even when icount
					 * runs it again after its callback ran */
	uint64_t	first_end;	/* the end of its first instruction */
	uint64_t	end;		/* the end of its last instruction */
	uint64_t	ev[N_SLOTS][N_EVENTS];	/* the cache model's counts */
};

/* One level of the cache model. */
struct cache {
	const char	*name;
	uint64_t	size;
	unsigned int	assoc;
	unsigned int	line;		/* bytes, a power of two */
	unsigned int	line_shift;
	uint64_t	set_mask;	/* sets - 1 */
	uint64_t	*tags;		/* per set, most recently used first:
					 * line number + 1, 0 for an empty way */
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
static int cache_on;
static int live;		/* the model runs: from the first marker on */
static int starting;		/* the model's start is asked for */
static qemu_plugin_id_t self;
static struct cache l1i = { "I1", 32 << 10, 8, 64, 0, 0, NULL };
static struct cache l1d = { "D1", 32 << 10, 8, 64, 0, 0, NULL };
static struct cache llc = { "LL", 8 << 20, 16, 64, 0, 0, NULL };
static uint64_t *cur[MAX_VCPUS];	/* the counts of the piece each vCPU runs
					 * in a region (a slot of its ev), or NULL */

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

/* The way of @c's set holding line @l, or -1: a look without a use. */
static inline int find(const struct cache *c, uint64_t l)
{
	const uint64_t *set = c->tags + (l & c->set_mask) * c->assoc;
	uint64_t key = l + 1;
	unsigned int way;

	for (way = 0; way < c->assoc; way++)
		if (set[way] == key)
			return (int)way;
	return -1;
}

/*
 * Make line @l the most recently used of its set in @c: moved up from @way,
 * or put in from outside (@way -1), the least recently used way dropped.
 */
static inline void use(struct cache *c, uint64_t l, int way)
{
	uint64_t *set = c->tags + (l & c->set_mask) * c->assoc;
	unsigned int from = way < 0 ? c->assoc - 1 : (unsigned int)way;

	memmove(set + 1, set, from * sizeof(*set));
	set[0] = l + 1;
}

/*
 * Look the lines @first..@last up in @c, making each the most recently used
 * of its set; 1 when any of them was absent (one access, one miss at most).
 * A line already the most recently used of its set (a run of accesses to
 * one line: most of them) is a hit without the walk.
 */
static int lookup(struct cache *c, uint64_t first, uint64_t last)
{
	int miss = 0;
	uint64_t l;

	for (l = first; l <= last; l++) {
		int way;

		if (c->tags[(l & c->set_mask) * c->assoc] == l + 1)
			continue;
		way = find(c, l);
		miss |= way < 0;
		use(c, l, way);
	}
	return miss;
}

/* An access to the bytes [@addr, @end) through @l1 and then LL; counted into @ev. */
static void access_bytes(struct cache *l1, uint64_t addr, uint64_t end, uint64_t *ev,
			 enum event l1_miss, enum event ll_miss)
{
	uint64_t first = addr >> l1->line_shift, last = (end - 1) >> l1->line_shift;

	if (!lookup(l1, first, last))
		return;
	if (ev)
		ev[l1_miss]++;
	if (lookup(&llc, addr >> llc.line_shift, (end - 1) >> llc.line_shift) && ev)
		ev[ll_miss]++;
}

/* Fetch the piece @b: its first instruction, then each further line it spans. */
static void fetch(const struct block *b, uint64_t *ev)
{
	uint64_t line = (uint64_t)1 << l1i.line_shift;
	uint64_t next = ((b->first_end - 1) | (line - 1)) + 1;	/* the line after it */

	access_bytes(&l1i, b->vaddr, b->first_end, ev, EV_I1, EV_LLI);
	for (; next < b->end; next += line)
		access_bytes(&l1i, next, next + 1, ev, EV_I1, EV_LLI);
}

/*
 * A data access: counted under the piece its vCPU runs; MMIO is not cached.
 * Asking QEMU whether an access is MMIO (a TLB walk of its own) costs about
 * as much as the model, so an access within one line that hits D1 is taken
 * as RAM without asking: MMIO never enters the caches, so a line found there
 * was RAM when it was put in (its virtual address remapped to MMIO since
 * would be the exception).  Only a miss, or an access across lines, asks.
 */
static void on_mem(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *udata)
{
	uint64_t *ev = cur[vcpu < MAX_VCPUS ? vcpu : MAX_VCPUS - 1];
	uint64_t end = vaddr + (1u << qemu_plugin_mem_size_shift(info));
	uint64_t line = vaddr >> l1d.line_shift;
	struct qemu_plugin_hwaddr *hw;
	int way;

	(void)udata;
	if (line == (end - 1) >> l1d.line_shift) {
		if (l1d.tags[(line & l1d.set_mask) * l1d.assoc] == line + 1)
			way = 0;	/* the most recently used: nothing moves */
		else if ((way = find(&l1d, line)) >= 0)
			use(&l1d, line, way);
		if (way >= 0) {
			if (ev)
				ev[EV_DR]++;
			return;
		}
	}
	hw = qemu_plugin_get_hwaddr(info, vaddr);
	if (hw && qemu_plugin_hwaddr_is_io(hw))
		return;
	if (ev)
		ev[EV_DR]++;
	access_bytes(&l1d, vaddr, end, ev, EV_D1, EV_LLD);
}

static void begin_region(void)
{
	size_t i;

	for (i = 0; i < nblocks; i++) {
		blocks[i]->count = blocks[i]->other = blocks[i]->async = 0;
		memset(blocks[i]->ev, 0, sizeof(blocks[i]->ev));
	}
	memset(cur, 0, sizeof(cur));	/* until each vCPU starts a piece */
	in_region = 1;
}

static int moved(const struct block *b)
{
	const uint64_t *ev = &b->ev[0][0];
	size_t i;

	if (b->count || b->other || b->async)
		return 1;
	for (i = 0; i < N_SLOTS * N_EVENTS; i++)
		if (ev[i])
			return 1;
	return 0;
}

/* The 15 numbers of format 2: per event, its count, other and async. */
static void put_events(const uint64_t ev[N_SLOTS][N_EVENTS])
{
	int e, s;

	for (e = 0; e < N_EVENTS; e++)
		for (s = 0; s < N_SLOTS; s++)
			fprintf(out, " %" PRIu64, ev[s][e]);
}

static void end_region(void)
{
	uint64_t insns = 0, other = 0, async = 0, ev[N_SLOTS][N_EVENTS] = { { 0 } };
	size_t i, pieces = 0;
	int e, s;

	if (!in_region) {
		fputs("X\n", out);
		return;
	}
	for (i = 0; i < nblocks; i++) {
		const struct block *b = blocks[i];

		if (moved(b)) {
			pieces++;
			insns += b->count * b->n_insns;
			other += b->other * b->n_insns;
			async += b->async * b->n_insns;
			for (s = 0; s < N_SLOTS; s++)
				for (e = 0; e < N_EVENTS; e++)
					ev[s][e] += b->ev[s][e];
		}
	}
	fprintf(out, "R %zu %" PRIu64 " %" PRIu64 " %" PRIu64, pieces, insns, other, async);
	if (cache_on)
		put_events(ev);
	fputc('\n', out);
	for (i = 0; i < nblocks; i++) {
		const struct block *b = blocks[i];

		if (!moved(b))
			continue;
		fprintf(out, "%" PRIx64 " %u %" PRIu64 " %" PRIu64 " %" PRIu64, b->vaddr,
			b->n_insns, b->count, b->other, b->async);
		if (cache_on)
			put_events(b->ev);
		fputc('\n', out);
	}
	fflush(out);
	memset(cur, 0, sizeof(cur));
	in_region = 0;
	regions++;
}

/*
 * A block starts: count it, under "async" while its vCPU is in an interrupt
 * (entered at an interrupt entry, left at an iretq), and fetch it through the
 * cache model; its data accesses are counted in the same slot.  Under icount
 * one thread runs every vCPU, so no lock is needed.
 */
static void on_block(unsigned int vcpu, void *udata)
{
	struct block *b = udata;
	unsigned int v = vcpu < MAX_VCPUS ? vcpu : MAX_VCPUS - 1;
	enum slot slot;

	if (b->irq_entry)
		depth[v]++;
	if (!in_region) {
		if (live)
			fetch(b, NULL);
		return;
	}
	if (depth[v] || b->irq_exit) {
		b->async++;
		slot = SLOT_ASYNC;
	} else if (v == home) {
		b->count++;
		slot = SLOT_COUNT;
	} else {
		b->other++;
		slot = SLOT_OTHER;
	}
	if (live) {
		cur[v] = b->ev[slot];
		fetch(b, cur[v]);
	}
}

static void on_iret(unsigned int vcpu, void *udata)
{
	unsigned int v = vcpu < MAX_VCPUS ? vcpu : MAX_VCPUS - 1;

	(void)udata;
	if (depth[v])	/* 0: an exception's return */
		depth[v]--;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
static void at_exit(qemu_plugin_id_t id, void *udata);

/*
 * The code cache is flushed (every vCPU stopped): from now on every block is
 * translated anew with the model's memory callbacks, and the caches, empty,
 * start taking accesses.  A reset drops all of our callbacks: ours again.
 */
static void on_reset(qemu_plugin_id_t id)
{
	live = 1;
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
}

static void on_marker(unsigned int vcpu_index, void *udata)
{
	uint32_t kind = (uint32_t)(uintptr_t)udata;

	pthread_mutex_lock(&lock);
	if (cache_on && !starting) {	/* the first marker: start the model */
		starting = 1;
		qemu_plugin_reset(self, on_reset);
	}
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

static uint64_t insn_end(const struct qemu_plugin_insn *insn)
{
	return qemu_plugin_insn_vaddr(insn) + qemu_plugin_insn_size(insn);
}

/* Count the piece of @n instructions of @tb that starts with its @at-th. */
static void count_piece(struct qemu_plugin_tb *tb, size_t at, size_t n)
{
	struct qemu_plugin_insn *first = qemu_plugin_tb_get_insn(tb, at);
	struct block *b;

	pthread_mutex_lock(&lock);
	b = block_of(qemu_plugin_insn_vaddr(first), (uint32_t)n);
	b->irq_exit = n == 1 && is_iret(first);
	b->first_end = insn_end(first);
	b->end = insn_end(qemu_plugin_tb_get_insn(tb, at + n - 1));
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
			count_piece(tb, first, i - first);
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
		if (live)
			qemu_plugin_register_vcpu_mem_cb(insn, on_mem, QEMU_PLUGIN_CB_NO_REGS,
							 QEMU_PLUGIN_MEM_RW, NULL);
	}
	count_piece(tb, first, n - first);
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

/* A size in bytes, with an optional K or M; 0 when it is not one. */
static uint64_t parse_size(const char *s, char **end)
{
	uint64_t v = strtoull(s, end, 10);

	if (*end == s)
		return 0;
	if (**end == 'K' || **end == 'k') {
		v <<= 10;
		(*end)++;
	} else if (**end == 'M' || **end == 'm') {
		v <<= 20;
		(*end)++;
	}
	return v;
}

static int power_of_two(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* SIZE:ASSOC:LINE into @c; sets and lines must be powers of two. */
static int parse_cache(struct cache *c, const char *arg)
{
	char *end;
	uint64_t size = parse_size(arg, &end), assoc = 0, line = 0;

	if (*end == ':')
		assoc = parse_size(end + 1, &end);
	if (*end == ':')
		line = parse_size(end + 1, &end);
	/* bounded first, so that ASSOC * LINE can neither wrap nor be 0 */
	if (*end || !size || size > (1ULL << 32) || !assoc || assoc > 1024 ||
	    line < 4 || line > 4096 || !power_of_two(line) ||
	    size % (assoc * line) || !power_of_two(size / (assoc * line))) {
		fprintf(stderr, "wb-insns: %s=%s: want SIZE:ASSOC:LINE (SIZE <= 4G,\n"
			"  ASSOC <= 1024, LINE 4..4096), LINE and SIZE / (ASSOC * LINE)\n"
			"  powers of two\n", c->name, arg);
		return -1;
	}
	c->size = size;
	c->assoc = (unsigned int)assoc;
	c->line = (unsigned int)line;
	return 0;
}

static void setup_cache(struct cache *c)
{
	uint64_t sets = c->size / ((uint64_t)c->assoc * c->line);

	for (c->line_shift = 0; (1u << c->line_shift) < c->line; c->line_shift++)
		;
	c->set_mask = sets - 1;
	c->tags = calloc(sets * c->assoc, sizeof(*c->tags));
	if (!c->tags)
		die("out of memory");
}

static void put_cache(const struct cache *c)
{
	fprintf(out, " %s %" PRIu64 " %u %u", c->name, c->size, c->assoc, c->line);
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
		else if (!strcmp(argv[i], "cache=on"))
			cache_on = 1;
		else if (!strcmp(argv[i], "cache=off"))
			cache_on = 0;
		else if ((!strncmp(argv[i], "l1i=", 4) && parse_cache(&l1i, argv[i] + 4)) ||
			 (!strncmp(argv[i], "l1d=", 4) && parse_cache(&l1d, argv[i] + 4)) ||
			 (!strncmp(argv[i], "ll=", 3) && parse_cache(&llc, argv[i] + 3)))
			return -1;
		else if (strncmp(argv[i], "out=", 4) && strncmp(argv[i], "symbols=", 8) &&
			 strncmp(argv[i], "irq=", 4) && strncmp(argv[i], "softirq=", 8) &&
			 strncmp(argv[i], "l1i=", 4) && strncmp(argv[i], "l1d=", 4) &&
			 strncmp(argv[i], "ll=", 3)) {
			/* a typo (cache=yes) must not leave the model silently off */
			fprintf(stderr, "wb-insns: unknown argument %s\n", argv[i]);
			return -1;
		}
	if (!path) {
		fprintf(stderr, "wb-insns: usage: -plugin FILE,out=PATH[,symbols=PATH]\n"
			"  [,irq=PATH][,softirq=PATH]\n"
			"  [,cache=on[,l1i=SIZE:ASSOC:LINE][,l1d=...][,ll=...]]\n");
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
	if (cache_on) {
		setup_cache(&l1i);
		setup_cache(&l1d);
		setup_cache(&llc);
		fputs("# wb-insns 2\nC", out);
		put_cache(&l1i);
		put_cache(&l1d);
		put_cache(&llc);
		fputc('\n', out);
	} else {
		fputs("# wb-insns 1\n", out);
	}
	fflush(out);
	self = id;
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
