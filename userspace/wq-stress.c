// SPDX-License-Identifier: GPL-2.0
/*
 * wq-stress - races the watch_queue paths against each other and checks
 * every record that comes out of them.
 *
 * For --seconds, threads run at once: posters do key operations on a shared
 * pool of keys and keyrings (update, link, unlink, revoke, invalidate, short
 * timeouts, setperm, clear) and replace the keys that die; readers own one
 * notification queue each, read it with random buffer sizes and close and
 * reopen it (with watches live, in varying order of the two ends); a watcher
 * adds and removes watches and changes filters; a victim thread destroys
 * watched keys so that the key GC removes their watches.  The debug kernel's
 * checkers (KASAN, lockdep, KFENCE, kmemleak) catch the memory and locking
 * bugs of those races; this program catches what user space can see:
 *   - a read() returns whole records only, never more than asked for;
 *   - each record has a known type and subtype, the exact length of its type
 *     and a watch id this queue used for that key;
 *   - every key id in a record is one this program created;
 *   - a control queue that can never overflow never reports a loss and gets
 *     exactly one record per successful update of its key;
 *   - the ioctls and keyctls fail only with their documented errnos;
 *   - a destroyed watched key yields a removal record.
 * Expectations follow Linux 6.12.  Output is KTAP; exit status 1 on any
 * failure.  --seed replays the random choices (scheduling aside).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wq.h"

#define NUSER		8	/* user keys in the pool */
#define NRING		3	/* keyrings in the pool */
#define NSLOT		(NUSER + NRING)
#define NREADER		3	/* stressed queues, one reader thread each */
#define MAX_POSTERS	8
#define MAX_THREADS	(MAX_POSTERS + NREADER + 4)
#define MAX_PAIRS	128	/* (key, watch id) pairs per queue generation */
#define CTL_NOTES	256	/* the control queue cannot fill ... */
#define CTL_BURST	32	/* ... with this many updates between drains */
#define CTL_WID		1	/* control queue: watch id of the control key */
#define VICTIM_WID	2	/* control queue: watch id of the victim key */
#define VICTIM_WAIT_S	20	/* for a destroyed key's removal record */
#define JOIN_GRACE_S	30
#define POLL_MS		50
#define MAX_DIAG	10	/* diagnostic lines per test */
#define KNOWN_BITS	20	/* key ids remembered: up to 3/4 of 2^20 */
#define MAX_PENDING	4096
#define RBUF		4096
#define KN_SIZE		sizeof(struct key_notification)
#define RM_SIZE		sizeof(struct watch_notification_removal)
/* Possessor view, search, setattr (no write, no link), user view. */
#define PERM_LIMITED	0x29010000

#define INC(x)		__atomic_add_fetch(&(x), 1, __ATOMIC_RELAXED)
#define LOAD(x)		__atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
#define U(x)		((unsigned long long)(x))

/* ---- results ------------------------------------------------------------ */

enum {
	T_FORM, T_READS, T_IDS, T_LOSS, T_CTL, T_SIZE, T_KEYOPS, T_WATCH,
	T_GC, T_THREADS, NTEST
};

static const char *const test_names[NTEST] = {
	"records_well_formed", "reads_whole_records", "key_ids_known",
	"no_loss_without_overflow", "control_count_exact",
	"set_size_set_filter_errnos", "key_operation_errnos",
	"watch_operation_errnos", "removal_on_gc", "threads_finished",
};

static struct {
	uint64_t	nfail;
	int		nlines;
	char		line[MAX_DIAG][320];
} res[NTEST];
static pthread_mutex_t diag_lock = PTHREAD_MUTEX_INITIALIZER;

static void __attribute__((format(printf, 2, 3))) bad(int test,
						      const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&diag_lock);
	if (res[test].nlines < MAX_DIAG) {
		va_start(ap, fmt);
		vsnprintf(res[test].line[res[test].nlines++],
			  sizeof(res[test].line[0]), fmt, ap);
		va_end(ap);
	}
	res[test].nfail++;
	pthread_mutex_unlock(&diag_lock);
}

/* The first 32 bytes of a record in hex, 4-byte groups. */
static const char *hex(char out[80], const unsigned char *p, size_t n)
{
	char *o = out;
	size_t i;

	for (i = 0; i < n && i < 32; i++)
		o += sprintf(o, "%s%02x", i && !(i % 4) ? " " : "", p[i]);
	*o = '\0';
	return out;
}

/* Throughput and classification counters (relaxed atomics). */
enum {
	OP_UPDATE, OP_LINK, OP_UNLINK, OP_SETPERM, OP_TIMEOUT, OP_REVOKE,
	OP_INVALIDATE, OP_CLEAR, NOPS
};
static const char *const op_names[NOPS] = {
	"update", "link", "unlink", "setperm", "set_timeout", "revoke",
	"invalidate", "clear",
};
static const char *const key_subtypes[8] = {
	"instantiated", "updated", "linked", "unlinked", "cleared", "revoked",
	"invalidated", "setattr",
};

static struct {
	uint64_t rec_key[8], rec_removal, rec_loss, rec_ctl;
	uint64_t reads, reads_data, reads_again, reads_nobufs, reads_eof;
	uint64_t op_ok[NOPS], op_err[NOPS];
	uint64_t keys_made, keys_replaced, keys_capped;
	uint64_t opened, closed[4];
	uint64_t watch_add, watch_add_err, watch_rm, watch_rm_err;
	uint64_t filters, filters_bad, size_ok, size_busy, setpipe_busy;
	uint64_t rm_unwatch, rm_gc, victims, victims_removed;
	uint64_t ids_checked, ctl_lag;
} st;

/* ---- threads, randomness ------------------------------------------------ */

struct thr {
	char		name[16];
	void		(*fn)(struct thr *t);
	pthread_t	tid;
	uint64_t	rng;
	int		idx;
	const char	*doing;		/* the call in progress (watchdog) */
	uint64_t	since;
};

static struct thr thr[MAX_THREADS];
static int nthr;
static int stop, ctl_stop;

static uint64_t rnd(struct thr *t)
{
	/* xorshift64* */
	t->rng ^= t->rng >> 12;
	t->rng ^= t->rng << 25;
	t->rng ^= t->rng >> 27;
	return t->rng * 0x2545f4914f6cdd1dull;
}

static unsigned int below(struct thr *t, unsigned int n)
{
	return (unsigned int)((rnd(t) >> 32) % n);
}

static void doing(struct thr *t, const char *what)
{
	if (!t)
		return;
	STORE(t->since, wq_now_ns());
	STORE(t->doing, what);
}

static int stopping(void)
{
	return LOAD(stop);
}

static void sleep_us(unsigned int us)
{
	if (us)
		usleep(us);
}

/* ---- key ids: created ones, and ones seen before their creator knew ---- */

static uint32_t known[1u << KNOWN_BITS];
static uint32_t nknown;

static uint32_t *known_slot(int32_t id)
{
	uint32_t i = ((uint32_t)id * 2654435761u) >> (32 - KNOWN_BITS);

	for (;; i = (i + 1) & ((1u << KNOWN_BITS) - 1)) {
		uint32_t v = LOAD(known[i]);

		if (!v || v == (uint32_t)id)
			return &known[i];
	}
}

static int known_has(int32_t id)
{
	return id > 0 && LOAD(*known_slot(id)) == (uint32_t)id;
}

static void known_add(int32_t id)
{
	for (;;) {
		uint32_t *s = known_slot(id), zero = 0;

		if (__atomic_compare_exchange_n(s, &zero, (uint32_t)id, 0,
						__ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			INC(nknown);
			return;
		}
		if (zero == (uint32_t)id)
			return;
	}
}

/* Stop making keys well before the table fills (it is never emptied). */
static int known_full(void)
{
	return LOAD(nknown) >= (3u << KNOWN_BITS) / 4;
}

static struct pend {
	int32_t		id;
	char		where[40];
	unsigned char	rec[16];
} pend[MAX_PENDING];
static int npend, pend_lost;
static pthread_mutex_t pend_lock = PTHREAD_MUTEX_INITIALIZER;

/* An id not known yet: its add_key() may not have returned; check later. */
static void pend_add(int32_t id, const char *where, const unsigned char *rec)
{
	int i, j;

	pthread_mutex_lock(&pend_lock);
	if (npend == MAX_PENDING) {
		for (i = j = 0; i < npend; i++)
			if (!known_has(pend[i].id))
				pend[j++] = pend[i];
		npend = j;
	}
	if (npend < MAX_PENDING) {
		pend[npend].id = id;
		snprintf(pend[npend].where, sizeof(pend[0].where), "%s", where);
		memcpy(pend[npend].rec, rec, 16);
		npend++;
	} else {
		pend_lost++;
	}
	pthread_mutex_unlock(&pend_lock);
}

/* ---- the key pool ------------------------------------------------------- */

static struct slot {
	pthread_mutex_t	lock;		/* serialises replacing the key */
	int32_t		id;
} pool[NSLOT];				/* NUSER user keys, then NRING rings */

static int32_t session_id, gc_ring, ctl_key;
static uint32_t desc_seq;

static int32_t slot_id(int i)
{
	return LOAD(pool[i].id);
}

static int dead_err(int e)
{
	return e == ENOKEY || e == EKEYREVOKED || e == EKEYEXPIRED;
}

/* What any key operation may meet in this pool: dead keys, perms, memory. */
static int key_err_ok(int e)
{
	return dead_err(e) || e == EACCES || e == ENOMEM || e == EDQUOT;
}

static int op_err_ok(int op, int e)
{
	if (key_err_ok(e))
		return 1;
	if (op == OP_LINK)	/* cycles and nesting depth among the rings */
		return e == EDEADLK || e == ELOOP || e == ENFILE;
	return op == OP_UNLINK && e == ENOENT;
}

/* A new user key or keyring with a unique description, known before use. */
static int32_t make_key(struct thr *t, int ring, int32_t dest)
{
	char desc[32], payload[32];
	size_t len = t ? 1 + below(t, sizeof(payload)) : 8;
	int32_t id;

	if (known_full()) {
		INC(st.keys_capped);
		errno = EDQUOT;
		return -1;
	}
	snprintf(desc, sizeof(desc), "wqs-%u", INC(desc_seq));
	memset(payload, 'p', sizeof(payload));
	doing(t, "add_key");
	id = ring ? wq_add_key("keyring", desc, NULL, 0, dest) :
		    wq_add_key("user", desc, payload, len, dest);
	if (id > 0) {
		known_add(id);
		INC(st.keys_made);
		/* User perms too: usable when no longer possessed. */
		wq_kctl(KEYCTL_SETPERM, id, WQ_KEY_PERM, 0);
	}
	return id;
}

/* Unlink @key from every keyring it may be in, so the key GC destroys it. */
static void unlink_everywhere(struct thr *t, int32_t key)
{
	int i;

	doing(t, "KEYCTL_UNLINK");
	wq_kctl(KEYCTL_UNLINK, key, session_id, 0);
	for (i = NUSER; i < NSLOT; i++)
		wq_kctl(KEYCTL_UNLINK, key, slot_id(i), 0);
}

static void replace_slot(struct thr *t, int i, int32_t old)
{
	struct slot *s = &pool[i];
	int ring = i >= NUSER;
	int32_t dest = session_id, id;

	pthread_mutex_lock(&s->lock);
	if (s->id == old) {
		unlink_everywhere(t, old);
		if (!ring && below(t, 2))
			dest = slot_id(NUSER + below(t, NRING));
		id = make_key(t, ring, dest);
		if (id < 0 && dest != session_id && key_err_ok(errno))
			id = make_key(t, ring, session_id);
		if (id > 0) {
			STORE(s->id, id);
			INC(st.keys_replaced);
		} else if (!key_err_ok(errno)) {
			bad(T_KEYOPS, "%s: add_key(%s) into %d: %s", t->name,
			    ring ? "keyring" : "user", dest,
			    wq_errname(errno));
		}
	}
	pthread_mutex_unlock(&s->lock);
}

/*
 * After an expected error @err: replace the slot's key if it is dead, or if
 * it refuses us even a setperm (limited perms and not possessed, e.g. linked
 * only in an expired keyring).
 */
static void check_alive(struct thr *t, int i, int err)
{
	int32_t id = slot_id(i);

	doing(t, "KEYCTL_DESCRIBE");
	if (wq_kctl(KEYCTL_DESCRIBE, id, 0, 0) < 0 && dead_err(errno))
		replace_slot(t, i, id);
	else if (err == EACCES &&
		 wq_kctl(KEYCTL_SETPERM, id, WQ_KEY_PERM, 0) < 0 &&
		 errno == EACCES)
		replace_slot(t, i, id);
}

static void poster(struct thr *t)
{
	static const unsigned char weight[NOPS] = {
		24, 16, 16, 14, 8, 3, 3, 4,	/* sum 88 */
	};
	static const long timeouts[] = { 1, 1, 2, 0, 3600 };
	char payload[64];
	unsigned int ops = 0;

	memset(payload, 'u', sizeof(payload));
	while (!stopping()) {
		unsigned int w = below(t, 88), op;
		int k = below(t, NUSER), r = NUSER + below(t, NRING), k2 = -1;
		int32_t key, ring = slot_id(r), dest;
		long ret, arg = 0;

		for (op = 0; w >= weight[op]; op++)
			w -= weight[op];
		/* Sometimes the target is a keyring rather than a user key. */
		if (op != OP_UPDATE && op != OP_CLEAR && !below(t, 4))
			k = NUSER + below(t, NRING);
		key = slot_id(k);
		dest = ring;
		doing(t, op_names[op]);
		switch (op) {
		case OP_UPDATE:
			arg = 1 + below(t, sizeof(payload));
			ret = wq_kctl(KEYCTL_UPDATE, key, (long)payload, arg);
			break;
		case OP_LINK:
			ret = wq_kctl(KEYCTL_LINK, key, ring, 0);
			k2 = r;
			break;
		case OP_UNLINK:
			if (!below(t, 3))
				dest = session_id;
			else
				k2 = r;
			ret = wq_kctl(KEYCTL_UNLINK, key, dest, 0);
			break;
		case OP_SETPERM:
			/* Keyrings keep write: their dead links must go. */
			arg = k < NUSER && below(t, 3) ? PERM_LIMITED :
			      WQ_KEY_PERM;
			ret = wq_kctl(KEYCTL_SETPERM, key, arg, 0);
			break;
		case OP_TIMEOUT:
			arg = timeouts[below(t, WQ_ARRAY_SIZE(timeouts))];
			ret = wq_kctl(KEYCTL_SET_TIMEOUT, key, arg, 0);
			break;
		case OP_REVOKE:
			ret = wq_kctl(KEYCTL_REVOKE, key, 0, 0);
			break;
		case OP_INVALIDATE:
			ret = wq_kctl(KEYCTL_INVALIDATE, key, 0, 0);
			break;
		default:
			k = r;
			key = ring;
			ret = wq_kctl(KEYCTL_CLEAR, ring, 0, 0);
			break;
		}
		if (ret >= 0) {
			INC(st.op_ok[op]);
		} else {
			int err = errno;

			INC(st.op_err[op]);
			if (!op_err_ok(op, err))
				bad(T_KEYOPS, "%s: %s(key %d, ring %d, arg "
				    "%ld): %s", t->name, op_names[op], key,
				    dest, arg, wq_errname(err));
			check_alive(t, k, err);
			if (k2 >= 0)
				check_alive(t, k2, err);
		}
		if (!(++ops % 8))
			sleep_us(below(t, 1000));
	}
}

/* ---- stressed queues ---------------------------------------------------- */

struct pair {
	int32_t		key;
	uint8_t		wid;
	uint8_t		live;		/* a watch was made and not removed */
	uint16_t	unwatching;	/* removals asked for, not yet read */
};

/*
 * A reader's queue.  Only the reader opens and closes it, always under
 * @lock; other threads use the fds only under @lock and only if rfd >= 0,
 * so no fd is used after close or after its number was reused.
 */
static struct squeue {
	pthread_mutex_t	lock;
	int		rfd, wfd, zombie;	/* zombie: a write end kept */
	int		sized;
	unsigned int	gen;
	int		npairs;
	struct pair	pairs[MAX_PAIRS];
} sq[NREADER];

static int pair_find(struct squeue *q, int32_t key, unsigned int wid)
{
	int i;

	for (i = 0; i < q->npairs; i++)
		if (q->pairs[i].key == key && q->pairs[i].wid == wid)
			return i;
	return -1;
}

static void pairs_dead(struct squeue *q, int32_t key)
{
	int i;

	for (i = 0; i < q->npairs; i++)
		if (q->pairs[i].key == key)
			q->pairs[i].live = 0;
}

static int32_t pick_key(struct thr *t)
{
	unsigned int i = below(t, NSLOT + 2);

	return i < NSLOT ? slot_id(i) : i == NSLOT ? session_id : gc_ring;
}

/* Watch @key on @q as @wid; the caller holds q->lock. */
static void q_watch(struct thr *t, struct squeue *q, int qi, int32_t key,
		    int wid)
{
	int p = pair_find(q, key, wid), fd, err;

	if (p < 0 && q->npairs == MAX_PAIRS) {
		p = below(t, MAX_PAIRS);
		key = q->pairs[p].key;
		wid = q->pairs[p].wid;
	} else if (p < 0) {
		/* Registered before the call: a record may beat its return. */
		p = q->npairs++;
		q->pairs[p] = (struct pair){ .key = key, .wid = (uint8_t)wid };
	}
	/* Either end of a notification pipe names its queue. */
	fd = q->wfd >= 0 && !below(t, 4) ? q->wfd : q->rfd;
	doing(t, "KEYCTL_WATCH_KEY");
	if (wq_watch_key(key, fd, wid) == 0) {
		q->pairs[p].live = 1;
		INC(st.watch_add);
		return;
	}
	err = errno;
	INC(st.watch_add_err);
	if (!key_err_ok(err) && err != EBUSY && err != EAGAIN)
		bad(T_WATCH, "%s: q%d gen %u: KEYCTL_WATCH_KEY(%d, id %d): %s",
		    t->name, qi, q->gen, key, wid, wq_errname(err));
}

static void q_unwatch(struct thr *t, struct squeue *q, int qi)
{
	int i, p = -1, start, err;
	int32_t key;

	if (!q->npairs)
		return;
	start = below(t, q->npairs);
	for (i = 0; i < q->npairs && p < 0; i++)
		if (q->pairs[(start + i) % q->npairs].live)
			p = (start + i) % q->npairs;
	if (p < 0)
		p = start;		/* no live watch: expect EBADSLT */
	key = q->pairs[p].key;
	q->pairs[p].unwatching++;
	doing(t, "KEYCTL_WATCH_KEY(-1)");
	if (wq_watch_key(key, q->rfd, -1) == 0) {
		pairs_dead(q, key);
		INC(st.watch_rm);
		return;
	}
	err = errno;
	INC(st.watch_rm_err);
	if (q->pairs[p].unwatching)
		q->pairs[p].unwatching--;
	if (err == EBADSLT)
		pairs_dead(q, key);
	else if (!key_err_ok(err))
		bad(T_WATCH, "%s: q%d gen %u: KEYCTL_WATCH_KEY(%d, -1): %s",
		    t->name, qi, q->gen, key, wq_errname(err));
}

/*
 * A random filter: types include unknown ones (up to 511, 0x7fffffff) that
 * the kernel must accept and ignore; one in 16 is invalid (EINVAL); one in
 * eight valid ones is NULL (no filter).
 */
static void q_filter(struct thr *t, struct squeue *q, int qi)
{
	static const uint32_t masks[] = {
		0, WATCH_INFO_ID, WATCH_INFO_TYPE_INFO,
		WATCH_INFO_ID | WATCH_INFO_TYPE_INFO, 0x80,
	};
	union {
		struct watch_notification_filter f;
		unsigned char b[sizeof(struct watch_notification_filter) + 17 *
				sizeof(struct watch_notification_type_filter)];
	} u;
	unsigned int nr = below(t, 4) ? 1 + below(t, 4) : 1 + below(t, 16);
	unsigned int invalid = below(t, 16) ? 0 : 1 + below(t, 4), i, j;
	void *arg = &u.f;
	int err;

	memset(&u, 0, sizeof(u));
	u.f.nr_filters = nr;
	for (i = 0; i < nr; i++) {
		struct watch_notification_type_filter *f = &u.f.filters[i];

		switch (below(t, 6)) {
		case 0:
			f->type = WATCH_TYPE_META;
			break;
		case 1:
		case 2:
			f->type = WATCH_TYPE_KEY_NOTIFY;
			break;
		case 3:
			f->type = below(t, 512);
			break;
		case 4:
			f->type = 0x7fffffff;
			break;
		default:
			f->type = WATCH_TYPE__NR + below(t, 30);
		}
		for (j = 0; j < 8; j++)
			f->subtype_filter[j] = (uint32_t)rnd(t);
		if (below(t, 2))
			f->subtype_filter[0] = ~0u;
		f->info_mask = masks[below(t, WQ_ARRAY_SIZE(masks))];
		f->info_filter = (uint32_t)rnd(t) & f->info_mask;
		if ((f->info_mask & WATCH_INFO_ID) && q->npairs && below(t, 2))
			f->info_filter = (f->info_filter & ~WATCH_INFO_ID) |
				q->pairs[below(t, q->npairs)].wid << 8;
	}
	switch (invalid) {
	case 1:
		u.f.__reserved = 1;
		break;
	case 2:
		u.f.nr_filters = below(t, 2) ? 0 : 17;
		break;
	case 3:
		u.f.filters[0].info_mask |= 1 + below(t, WATCH_INFO_LENGTH);
		break;
	case 4:
		u.f.filters[0].info_mask = WATCH_INFO_ID;
		u.f.filters[0].info_filter = 0x10000;
		break;
	default:
		if (!below(t, 8))
			arg = NULL;
	}
	doing(t, "IOC_WATCH_QUEUE_SET_FILTER");
	err = ioctl(q->rfd, IOC_WATCH_QUEUE_SET_FILTER, arg) < 0 ? errno : 0;
	INC(st.filters);
	if (err == EINVAL && invalid)
		INC(st.filters_bad);
	else if (err != (invalid ? EINVAL : 0) && err != ENOMEM)
		bad(T_SIZE, "%s: q%d gen %u: SET_FILTER(%u filters%s): %s, "
		    "expected %s", t->name, qi, q->gen, u.f.nr_filters,
		    invalid ? ", invalid" : "",
		    err ? wq_errname(err) : "success",
		    invalid ? "EINVAL" : "success");
}

/* On a sized queue, SET_SIZE (of any size) and F_SETPIPE_SZ are EBUSY. */
static void q_resize(struct thr *t, struct squeue *q, int qi, int fcntl_too)
{
	static const unsigned int sizes[] = { 0, 1, 32, 512, 513 };
	unsigned int n = sizes[below(t, WQ_ARRAY_SIZE(sizes))];
	int err;

	if (fcntl_too && below(t, 2)) {
		doing(t, "F_SETPIPE_SZ");
		n = 4096u << below(t, 5);
		err = fcntl(q->rfd, F_SETPIPE_SZ, n) < 0 ? errno : 0;
		INC(st.setpipe_busy);
		if (err != EBUSY)
			bad(T_SIZE, "%s: q%d gen %u: F_SETPIPE_SZ(%u): %s, "
			    "expected EBUSY", t->name, qi, q->gen, n,
			    err ? wq_errname(err) : "success");
		return;
	}
	doing(t, "IOC_WATCH_QUEUE_SET_SIZE");
	err = ioctl(q->rfd, IOC_WATCH_QUEUE_SET_SIZE, n) < 0 ? errno : 0;
	INC(st.size_busy);
	if (err != EBUSY)
		bad(T_SIZE, "%s: q%d gen %u: SET_SIZE(%u) on a sized queue: "
		    "%s, expected EBUSY", t->name, qi, q->gen, n,
		    err ? wq_errname(err) : "success");
}

/*
 * Open a new generation of the queue: maybe a filter and some watches
 * before SET_SIZE (posts to an unsized queue are dropped), then SET_SIZE,
 * which must now be EBUSY.
 */
static int q_open(struct thr *t, struct squeue *q, int qi)
{
	unsigned int notes = 1 + below(t, 48), i, n;
	int fds[2], err;

	doing(t, "pipe2");
	if (pipe2(fds, O_NOTIFICATION_PIPE | O_NONBLOCK | O_CLOEXEC) < 0) {
		err = errno;
		if (err != ENOMEM && err != ENFILE)
			bad(T_SIZE, "%s: pipe2(O_NOTIFICATION_PIPE): %s",
			    t->name, wq_errname(err));
		sleep_us(10000);
		return -1;
	}
	pthread_mutex_lock(&q->lock);
	q->gen++;
	q->npairs = 0;
	q->rfd = fds[0];
	q->wfd = fds[1];
	q->sized = 0;
	if (!below(t, 3))
		q_filter(t, q, qi);
	pthread_mutex_unlock(&q->lock);
	for (i = 0, n = below(t, 2) ? below(t, 4) : 0; i < n; i++) {
		pthread_mutex_lock(&q->lock);
		q_watch(t, q, qi, pick_key(t), below(t, 256));
		pthread_mutex_unlock(&q->lock);
	}
	pthread_mutex_lock(&q->lock);
	doing(t, "IOC_WATCH_QUEUE_SET_SIZE");
	err = ioctl(q->rfd, IOC_WATCH_QUEUE_SET_SIZE, notes) < 0 ? errno : 0;
	if (!err) {
		q->sized = 1;
		INC(st.size_ok);
		q_resize(t, q, qi, 0);
	} else if (err != ENOMEM) {
		bad(T_SIZE, "%s: q%d gen %u: SET_SIZE(%u) on a new queue: %s",
		    t->name, qi, q->gen, notes, wq_errname(err));
	}
	pthread_mutex_unlock(&q->lock);
	INC(st.opened);
	return 0;
}

/*
 * Close the queue with its watches live: 0 both ends, read end first;
 * 1 write end first; 2 the write end only (the reader goes on to EOF);
 * 3 the read end, keeping the write end (and so the queue) until the next
 * close.
 */
static void q_close(struct thr *t, struct squeue *q, int mode)
{
	pthread_mutex_lock(&q->lock);
	doing(t, "close");
	INC(st.closed[mode]);
	if (q->zombie >= 0)
		close(q->zombie);
	q->zombie = -1;
	if (mode == 2) {
		close(q->wfd);
		q->wfd = -1;
		pthread_mutex_unlock(&q->lock);
		return;
	}
	if (mode == 1 && q->wfd >= 0)
		close(q->wfd);
	close(q->rfd);
	if (mode == 3)
		q->zombie = q->wfd;
	else if (mode == 0 && q->wfd >= 0)
		close(q->wfd);
	q->rfd = q->wfd = -1;
	pthread_mutex_unlock(&q->lock);
}

/* ---- the control queue -------------------------------------------------- */

static struct {
	pthread_mutex_t	lock;
	pthread_cond_t	cond;
	uint64_t	posted, seen;	/* updates of ctl_key, their records */
	int32_t		victim;		/* the watched key being destroyed */
	int		victim_removed;
} ctl = { .lock = PTHREAD_MUTEX_INITIALIZER };
static int ctl_fd[2] = { -1, -1 };

static void cond_wait_ms(int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += (long)ms * 1000000;
	ts.tv_sec += ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	pthread_cond_timedwait(&ctl.cond, &ctl.lock, &ts);
}

/* ---- reading and checking ----------------------------------------------- */

struct rctx {
	struct thr	*t;
	struct squeue	*q;		/* NULL: the control queue */
	char		where[40];
};

static void check_removal(struct rctx *rc, const unsigned char *rec,
			  unsigned int wid)
{
	struct watch_notification_removal rm;
	char h[80];
	int32_t key;
	int p;

	memcpy(&rm, rec, sizeof(rm));
	key = (int32_t)rm.id;
	INC(st.ids_checked);
	if (rm.id == 0 || rm.id > INT32_MAX || !known_has(key)) {
		bad(T_IDS, "%s: removal record for id %llu, not a key this "
		    "program created: %s", rc->where,
		    U(rm.id), hex(h, rec, RM_SIZE));
		return;
	}
	if (!rc->q) {
		if (key == ctl.victim && wid == VICTIM_WID &&
		    !ctl.victim_removed) {
			ctl.victim_removed = 1;
			pthread_cond_broadcast(&ctl.cond);
		} else {
			bad(T_FORM, "%s: removal record for key %d watch id "
			    "%u, expected only one for victim %d (id %d): %s",
			    rc->where, key, wid, ctl.victim, VICTIM_WID,
			    hex(h, rec, RM_SIZE));
		}
		return;
	}
	p = pair_find(rc->q, key, wid);
	if (p < 0) {
		bad(T_FORM, "%s: removal record for key %d watch id %u, which "
		    "this queue never used for that key: %s", rc->where, key,
		    wid, hex(h, rec, RM_SIZE));
		return;
	}
	/* Ours (KEYCTL_WATCH_KEY -1) or the key GC's, as far as we can tell. */
	if (rc->q->pairs[p].unwatching) {
		rc->q->pairs[p].unwatching--;
		INC(st.rm_unwatch);
	} else {
		INC(st.rm_gc);
	}
	pairs_dead(rc->q, key);
}

static void check_key_rec(struct rctx *rc, const unsigned char *rec,
			  unsigned int subtype, unsigned int wid)
{
	struct key_notification kn;
	int32_t key, aux;
	char h[80];

	memcpy(&kn, rec, sizeof(kn));
	key = (int32_t)kn.key_id;
	aux = (int32_t)kn.aux;
	INC(st.ids_checked);
	if (!known_has(key)) {
		bad(T_IDS, "%s: %s record for key %d, not one this program "
		    "created: %s", rc->where, key_subtypes[subtype], key,
		    hex(h, rec, KN_SIZE));
		return;
	}
	if (subtype == NOTIFY_KEY_LINKED || subtype == NOTIFY_KEY_UNLINKED) {
		INC(st.ids_checked);
		if (aux <= 0)
			bad(T_IDS, "%s: %s record with aux %u, not a key id: "
			    "%s", rc->where, key_subtypes[subtype], kn.aux,
			    hex(h, rec, KN_SIZE));
		else if (!known_has(aux))
			pend_add(aux, rc->where, rec);
	} else if (subtype != NOTIFY_KEY_INSTANTIATED && aux) {
		bad(T_FORM, "%s: %s record with aux %u, expected 0: %s",
		    rc->where, key_subtypes[subtype], kn.aux,
		    hex(h, rec, KN_SIZE));
	}
	if (!rc->q) {
		int ok = key == ctl_key ?
			 wid == CTL_WID && subtype == NOTIFY_KEY_UPDATED :
			 key == ctl.victim && wid == VICTIM_WID &&
			 (subtype == NOTIFY_KEY_SETATTR ||
			  subtype == NOTIFY_KEY_REVOKED ||
			  subtype == NOTIFY_KEY_INVALIDATED);

		if (!ok)
			bad(T_FORM, "%s: %s record for key %d watch id %u: the "
			    "control queue watches key %d (id %d, updates) and "
			    "victim %d (id %d): %s", rc->where,
			    key_subtypes[subtype], key, wid, ctl_key, CTL_WID,
			    ctl.victim, VICTIM_WID, hex(h, rec, KN_SIZE));
		else if (key == ctl_key)
			ctl.seen++;
		return;
	}
	INC(st.rec_key[subtype]);
	if (pair_find(rc->q, key, wid) < 0)
		bad(T_FORM, "%s: %s record for key %d watch id %u, which this "
		    "queue never used for that key: %s", rc->where,
		    key_subtypes[subtype], key, wid, hex(h, rec, KN_SIZE));
}

/* One record of @len bytes (the header's own length, already bounded). */
static void check_record(struct rctx *rc, const unsigned char *rec,
			 unsigned int len)
{
	struct watch_notification n;
	unsigned int wid, want;
	char h[80];

	memcpy(&n, rec, sizeof(n));
	wid = (n.info & WATCH_INFO_ID) >> WATCH_INFO_ID__SHIFT;
	if (n.info & ~(WATCH_INFO_LENGTH | WATCH_INFO_ID)) {
		bad(T_FORM, "%s: info %#x has bits beyond length and watch "
		    "id: %s", rc->where, n.info, hex(h, rec, len));
		return;
	}
	if (n.type == WATCH_TYPE_META &&
	    n.subtype == WATCH_META_LOSS_NOTIFICATION) {
		/* Made up by pipe_read(): a bare header, no watch id. */
		if (n.info != sizeof(n))
			bad(T_FORM, "%s: loss record info %#x, expected %#zx: "
			    "%s", rc->where, n.info, sizeof(n),
			    hex(h, rec, len));
		if (!rc->q)
			bad(T_LOSS, "%s: loss record, with at most %d of %d "
			    "notes in use: %s", rc->where, CTL_BURST + 4,
			    CTL_NOTES, hex(h, rec, len));
		else
			INC(st.rec_loss);
		return;
	}
	if (n.type == WATCH_TYPE_META &&
	    n.subtype == WATCH_META_REMOVAL_NOTIFICATION)
		want = RM_SIZE;		/* a key's serial is never id 0 */
	else if (n.type == WATCH_TYPE_KEY_NOTIFY &&
		 n.subtype <= NOTIFY_KEY_SETATTR)
		want = KN_SIZE;
	else
		want = 0;
	if (!want || len != want) {
		bad(T_FORM, "%s: type %u subtype %u length %u (%s): %s",
		    rc->where, n.type, n.subtype, len,
		    want ? "wrong for its type" : "unknown type",
		    hex(h, rec, len));
		return;
	}
	if (n.type == WATCH_TYPE_META) {
		if (rc->q)
			INC(st.rec_removal);
		check_removal(rc, rec, wid);
	} else {
		check_key_rec(rc, rec, n.subtype, wid);
	}
}

static const unsigned int rsizes[] = {
	1, 7, 8, 16, 63, 127, 128, 200, 256, 1000, 4096,
};

/*
 * One read() of @size bytes, checked: only whole records, at most @size
 * bytes and no byte written past what it returned; ENOBUFS only if the
 * buffer is smaller than a key record (16 bytes, the largest record here).
 * Returns read()'s value with errno kept.
 */
static ssize_t read_check(struct rctx *rc, int fd, size_t size)
{
	unsigned char buf[RBUF + 64];
	size_t guard = size + 64, off, i;
	ssize_t n;
	char h[80];
	int err;

	memset(buf, 0xa5, guard);
	doing(rc->t, "read");
	n = read(fd, buf, size);
	err = errno;
	INC(st.reads);
	for (i = n > 0 ? (size_t)n : 0; i < guard; i++) {
		if (buf[i] != 0xa5) {
			bad(T_READS, "%s: read(%zu) returned %zd but wrote "
			    "byte %zu", rc->where, size, n, i);
			break;
		}
	}
	if (n < 0) {
		if (err == EAGAIN) {
			INC(st.reads_again);
		} else if (err == ENOBUFS) {
			INC(st.reads_nobufs);
			if (size >= KN_SIZE)
				bad(T_READS, "%s: read(%zu): ENOBUFS, but no "
				    "record is longer than %zu", rc->where,
				    size, KN_SIZE);
		} else if (err != EINTR) {
			bad(T_READS, "%s: read(%zu): %s", rc->where, size,
			    wq_errname(err));
		}
		errno = err;
		return n;
	}
	if (!n) {
		INC(st.reads_eof);
		return 0;
	}
	INC(st.reads_data);
	if ((size_t)n > size) {
		bad(T_READS, "%s: read(%zu) returned %zd", rc->where, size, n);
		return n;
	}
	if (rc->q)
		pthread_mutex_lock(&rc->q->lock);
	else
		pthread_mutex_lock(&ctl.lock);
	for (off = 0; off < (size_t)n;) {
		struct watch_notification w;
		size_t len;

		if ((size_t)n - off < sizeof(w)) {
			bad(T_READS, "%s: read(%zu) returned %zd: a partial "
			    "header at offset %zu: %s", rc->where, size, n, off,
			    hex(h, buf + off, (size_t)n - off));
			break;
		}
		memcpy(&w, buf + off, sizeof(w));
		len = w.info & WATCH_INFO_LENGTH;
		if (len < sizeof(w) || off + len > (size_t)n) {
			bad(T_READS, "%s: read(%zu) returned %zd: record of "
			    "length %zu at offset %zu: %s", rc->where, size, n,
			    len, off, hex(h, buf + off, (size_t)n - off));
			break;
		}
		if (!rc->q)
			INC(st.rec_ctl);
		check_record(rc, buf + off, (unsigned int)len);
		off += len;
	}
	if (rc->q) {
		pthread_mutex_unlock(&rc->q->lock);
	} else {
		pthread_cond_broadcast(&ctl.cond);
		pthread_mutex_unlock(&ctl.lock);
	}
	return n;
}

static void wait_readable(struct thr *t, int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	doing(t, "poll");
	poll(&p, 1, POLL_MS);
}

static void reader(struct thr *t)
{
	struct squeue *q = &sq[t->idx];
	struct rctx rc = { .t = t, .q = q };
	uint64_t close_at = 0;
	int mode = 0;

	while (!stopping()) {
		uint64_t now = wq_now_ns();
		ssize_t n;

		if (q->rfd < 0) {
			if (q_open(t, q, t->idx) == 0) {
				close_at = now + (50 + below(t, 1450)) *
					   1000000ull;
				mode = below(t, 4);
			}
			snprintf(rc.where, sizeof(rc.where), "%s q%d gen %u",
				 t->name, t->idx, q->gen);
			continue;
		}
		if (now >= close_at) {
			q_close(t, q, mode);
			/* Mode 2 closed the write end only: read on to EOF. */
			close_at = now + 300 * 1000000ull;
			mode = 0;
			continue;
		}
		/* Now and then a nap: the queue fills and overflows, so loss
		 * records race with posts, reads and closes too. */
		if (!below(t, 64)) {
			doing(t, "napping");
			sleep_us(20000 + below(t, 180000));
		}
		n = read_check(&rc, q->rfd,
			       rsizes[below(t, WQ_ARRAY_SIZE(rsizes))]);
		if (n == 0 && q->wfd >= 0) {
			bad(T_READS, "%s: read() returned 0 (EOF) with the "
			    "write end open", rc.where);
			wait_readable(t, q->rfd);
		} else if (n == 0) {
			q_close(t, q, 0);
		} else if (n < 0 && errno != ENOBUFS) {
			wait_readable(t, q->rfd);	/* ENOBUFS: resize */
		}
	}
}

/* ---- the watcher, the control pair and the victims --------------------- */

static void watcher(struct thr *t)
{
	while (!stopping()) {
		int qi = below(t, NREADER);
		struct squeue *q = &sq[qi];
		unsigned int op = below(t, 16);

		pthread_mutex_lock(&q->lock);
		if (q->rfd >= 0) {
			if (op < 8)
				q_watch(t, q, qi, pick_key(t), below(t, 256));
			else if (op < 13)
				q_unwatch(t, q, qi);
			else if (op < 15)
				q_filter(t, q, qi);
			else if (q->sized)
				q_resize(t, q, qi, 1);
		}
		pthread_mutex_unlock(&q->lock);
		if (!below(t, 4))
			sleep_us(below(t, 2000));
	}
}

/* Bursts of updates, each read back before the next: the queue never fills. */
static void ctl_poster(struct thr *t)
{
	char payload[32];

	memset(payload, 'c', sizeof(payload));
	while (!stopping()) {
		unsigned int i, n = 1 + below(t, CTL_BURST);
		uint64_t start;

		for (i = 0; i < n; i++) {
			doing(t, "update");
			if (wq_kctl(KEYCTL_UPDATE, ctl_key, (long)payload,
				 1 + below(t, sizeof(payload))) == 0) {
				pthread_mutex_lock(&ctl.lock);
				ctl.posted++;
				pthread_mutex_unlock(&ctl.lock);
			} else if (errno != ENOMEM) {
				bad(T_KEYOPS, "%s: update(control key %d): %s",
				    t->name, ctl_key, wq_errname(errno));
			}
		}
		start = wq_now_ns();
		doing(t, "waiting for the control reader");
		pthread_mutex_lock(&ctl.lock);
		while (ctl.seen < ctl.posted && !stopping())
			cond_wait_ms(100);
		pthread_mutex_unlock(&ctl.lock);
		if (wq_now_ns() - start > 5000000000ull)
			INC(st.ctl_lag);
		sleep_us(below(t, 3000));
	}
}

static void ctl_reader(struct thr *t)
{
	struct rctx rc = { .t = t };

	snprintf(rc.where, sizeof(rc.where), "%s control queue", t->name);
	for (;;) {
		int fin = LOAD(ctl_stop);
		size_t size = fin ? RBUF :
			      rsizes[below(t, WQ_ARRAY_SIZE(rsizes))];
		ssize_t n = read_check(&rc, ctl_fd[0], size);

		if (n == 0)
			bad(T_READS, "%s: read() returned 0 (EOF) with the "
			    "write end open", rc.where);
		if (n < 0 && errno == ENOBUFS)
			continue;
		if (n <= 0 && fin)
			break;		/* everything posted has been read */
		if (n <= 0)
			wait_readable(t, ctl_fd[0]);
	}
}

static void victim_kill(struct thr *t, int32_t v, int mode)
{
	static const int ops[] = {
		-1, KEYCTL_REVOKE, KEYCTL_INVALIDATE, KEYCTL_SET_TIMEOUT,
		KEYCTL_CLEAR,
	};
	static const char *const what[] = {
		"unlink", "revoke", "invalidate", "set_timeout", "clear",
	};
	long ret = 0;
	int i;

	doing(t, what[mode]);
	if (mode == 4)
		ret = wq_kctl(KEYCTL_CLEAR, gc_ring, 0, 0);
	else if (mode)
		ret = wq_kctl(ops[mode], v, mode == 3 ? 1 : 0, 0);
	if (ret < 0 && errno != ENOMEM)
		bad(T_KEYOPS, "%s: %s(victim %d): %s", t->name, what[mode], v,
		    wq_errname(errno));
	if (mode == 2)
		return;		/* the GC unlinks invalidated keys itself */
	for (i = 0; mode == 3 && i < 12 && !stopping(); i++)
		usleep(100000);	/* until expired */
	/* Not linked there, or already gone (the other unlink was the last). */
	doing(t, "unlink");
	for (i = 0; i < 2; i++)
		if (wq_kctl(KEYCTL_UNLINK, v, i ? gc_ring : session_id, 0) < 0 &&
		    errno != ENOENT && errno != ENOKEY && errno != ENOMEM)
			bad(T_KEYOPS, "%s: unlink(victim %d, %s): %s", t->name,
			    v, i ? "gc ring" : "session", wq_errname(errno));
}

/*
 * A victim key, linked only where this thread knows, watched on the control
 * queue (which never drops a record) and maybe on a stressed queue, is
 * destroyed: its removal record must reach the control queue.
 */
static void victims(struct thr *t)
{
	static const char *const how[] = {
		"unlinked", "revoked and unlinked", "invalidated",
		"expired and unlinked", "cleared from its keyring",
	};

	while (!stopping()) {
		int in_ring = below(t, 2), mode = below(t, 5), qi, removed;
		int32_t v = make_key(t, 0, in_ring ? gc_ring : session_id);
		uint64_t deadline;

		if (v < 0) {
			if (!key_err_ok(errno))
				bad(T_KEYOPS, "%s: add_key(victim): %s",
				    t->name, wq_errname(errno));
			sleep_us(10000);
			continue;
		}
		doing(t, "link");
		if ((!below(t, 3) || (mode == 4 && !in_ring)) &&
		    wq_kctl(KEYCTL_LINK, v, in_ring ? session_id : gc_ring,
			 0) < 0 && errno != ENOMEM)
			bad(T_KEYOPS, "%s: link(victim %d): %s", t->name, v,
			    wq_errname(errno));
		pthread_mutex_lock(&ctl.lock);
		ctl.victim = v;
		ctl.victim_removed = 0;
		pthread_mutex_unlock(&ctl.lock);
		doing(t, "KEYCTL_WATCH_KEY");
		if (wq_watch_key(v, ctl_fd[0], VICTIM_WID) < 0) {
			if (errno != ENOMEM && errno != EAGAIN)
				bad(T_WATCH, "%s: KEYCTL_WATCH_KEY(victim %d, "
				    "control queue): %s", t->name, v,
				    wq_errname(errno));
			victim_kill(t, v, 0);
			sleep_us(10000);
			continue;
		}
		qi = below(t, NREADER);
		pthread_mutex_lock(&sq[qi].lock);
		if (sq[qi].rfd >= 0)
			q_watch(t, &sq[qi], qi, v, below(t, 256));
		pthread_mutex_unlock(&sq[qi].lock);
		sleep_us(below(t, 5000));
		victim_kill(t, v, mode);
		INC(st.victims);

		doing(t, "waiting for a removal record");
		deadline = wq_now_ns() + VICTIM_WAIT_S * 1000000000ull;
		pthread_mutex_lock(&ctl.lock);
		while (!ctl.victim_removed && wq_now_ns() < deadline)
			cond_wait_ms(100);
		removed = ctl.victim_removed;
		ctl.victim = 0;
		pthread_mutex_unlock(&ctl.lock);
		if (removed)
			INC(st.victims_removed);
		else
			bad(T_GC, "%s: key %d, watched on the control queue "
			    "as id %d, was %s but no removal record came in "
			    "%d s", t->name, v, VICTIM_WID, how[mode],
			    VICTIM_WAIT_S);
		sleep_us(below(t, 20000));
	}
}

/* ---- set-up, report, main ----------------------------------------------- */

static int setup(char *why, size_t len)
{
	struct watch_notification_type_filter f[3] = {
		{ .type = WATCH_TYPE_KEY_NOTIFY, .subtype_filter = { ~0u } },
		{ .type = 0x7fffffff, .subtype_filter = { ~0u } },
		{ .type = 300, .subtype_filter = { ~0u } },
	};
	int i;

	session_id = (int32_t)wq_kctl(KEYCTL_GET_KEYRING_ID,
				   KEY_SPEC_SESSION_KEYRING, 0, 0);
	if (session_id <= 0) {
		snprintf(why, len, "KEYCTL_GET_KEYRING_ID: %s",
			 wq_errname(errno));
		return -1;
	}
	known_add(session_id);
	gc_ring = make_key(NULL, 1, session_id);
	ctl_key = make_key(NULL, 0, session_id);
	for (i = NSLOT - 1; i >= 0; i--) {
		pthread_mutex_init(&pool[i].lock, NULL);
		pool[i].id = make_key(NULL, i >= NUSER,
				      i >= NUSER || i % 2 ? session_id :
				      pool[NUSER + i % NRING].id);
		if (pool[i].id < 0)
			break;
	}
	if (gc_ring < 0 || ctl_key < 0 || i >= 0) {
		snprintf(why, len, "add_key: %s", wq_errname(errno));
		return -1;
	}
	if (wq_open_queue(ctl_fd, CTL_NOTES, 1, why, len) < 0)
		return -1;
	/* Unknown types beside the key type: accepted, and drop nothing. */
	if (wq_set_filter(ctl_fd[0], f, 3) < 0 ||
	    wq_watch_key(ctl_key, ctl_fd[0], CTL_WID) < 0) {
		snprintf(why, len, "control queue filter or watch: %s",
			 wq_errname(errno));
		return -1;
	}
	for (i = 0; i < NREADER; i++) {
		pthread_mutex_init(&sq[i].lock, NULL);
		sq[i].rfd = sq[i].wfd = sq[i].zombie = -1;
	}
	return 0;
}

static void *thread_main(void *arg)
{
	struct thr *t = arg;

	t->fn(t);
	doing(t, "done");
	return NULL;
}

static void add_thread(const char *name, int idx, void (*fn)(struct thr *),
		       uint64_t seed)
{
	struct thr *t = &thr[nthr];
	uint64_t z = seed + 0x9e3779b97f4a7c15ull * (uint64_t)(nthr + 1);

	/* splitmix64 of seed and thread: distinct, never zero streams */
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	t->rng = (z ^ (z >> 31)) | 1;
	t->fn = fn;
	t->idx = idx;
	t->doing = "start";
	snprintf(t->name, sizeof(t->name), "%s", name);
	nthr++;
}

/* What each test that passed looked at. */
static void summary(int i, char *s, size_t n, int nthreads, double secs)
{
	uint64_t keys = 0, ok = 0, err = 0;
	int j;

	for (j = 0; j < 8; j++)
		keys += st.rec_key[j];
	for (j = 0; j < NOPS; j++) {
		ok += st.op_ok[j];
		err += st.op_err[j];
	}
	if (i == T_FORM)
		snprintf(s, n, "%llu key, %llu removal, %llu loss records on "
			 "stressed queues, %llu on the control queue", U(keys),
			 U(st.rec_removal), U(st.rec_loss), U(st.rec_ctl));
	else if (i == T_READS)
		snprintf(s, n, "%llu reads: %llu with records, %llu EAGAIN, "
			 "%llu ENOBUFS, %llu EOF", U(st.reads),
			 U(st.reads_data), U(st.reads_again),
			 U(st.reads_nobufs), U(st.reads_eof));
	else if (i == T_IDS)
		snprintf(s, n, "%llu ids checked, %d confirmed after the join",
			 U(st.ids_checked), npend);
	else if (i == T_LOSS)
		snprintf(s, n, "no loss in %llu control records; %llu loss "
			 "records on stressed queues", U(st.rec_ctl),
			 U(st.rec_loss));
	else if (i == T_CTL)
		snprintf(s, n, "%llu updates, %llu records", U(ctl.posted),
			 U(ctl.seen));
	else if (i == T_SIZE)
		snprintf(s, n, "%llu SET_SIZE, %llu EBUSY resizes, %llu "
			 "F_SETPIPE_SZ, %llu filters (%llu invalid)",
			 U(st.size_ok), U(st.size_busy), U(st.setpipe_busy),
			 U(st.filters), U(st.filters_bad));
	else if (i == T_KEYOPS)
		snprintf(s, n, "%llu operations, %llu failed as expected",
			 U(ok + err), U(err));
	else if (i == T_WATCH)
		snprintf(s, n, "%llu watches added (%llu refused), %llu "
			 "removed (%llu refused)", U(st.watch_add),
			 U(st.watch_add_err), U(st.watch_rm),
			 U(st.watch_rm_err));
	else if (i == T_GC)
		snprintf(s, n, "%llu watched keys destroyed, %llu removal "
			 "records; %llu GC removals on stressed queues",
			 U(st.victims), U(st.victims_removed), U(st.rm_gc));
	else
		snprintf(s, n, "%d threads joined after %.1f s", nthreads,
			 secs);
}

/* Prints the results; returns how many tests failed. */
static int report(double secs, int joined)
{
	int i, j, nfail = 0;
	char s[256];

	printf("# records read on stressed queues:");
	for (i = 0; i < 8; i++)
		printf(" %s %llu", key_subtypes[i], U(st.rec_key[i]));
	printf(", removal %llu (%llu unwatched, %llu by GC), loss %llu\n",
	       U(st.rec_removal), U(st.rm_unwatch), U(st.rm_gc),
	       U(st.rec_loss));
	printf("# posts (ok/failed):");
	for (i = 0; i < NOPS; i++)
		printf(" %s %llu/%llu", op_names[i], U(st.op_ok[i]),
		       U(st.op_err[i]));
	printf("\n# keys: %llu made, %llu replaced, %llu not made (id table "
	       "full); %llu victims destroyed\n", U(st.keys_made),
	       U(st.keys_replaced), U(st.keys_capped), U(st.victims));
	printf("# queues: %llu opened; closed %llu both ends, %llu write end "
	       "first, %llu write end then at EOF, %llu read end first\n",
	       U(st.opened), U(st.closed[0]), U(st.closed[1]),
	       U(st.closed[2]), U(st.closed[3]));
	printf("# watches: %llu added, %llu removed; control reader lagged "
	       "> 5 s %llu times\n", U(st.watch_add), U(st.watch_rm),
	       U(st.ctl_lag));
	if (!st.victims)
		printf("# removal_on_gc: no watched key was destroyed in the "
		       "time\n");
	for (i = 0; i < NTEST; i++) {
		if (!res[i].nfail) {
			summary(i, s, sizeof(s), joined, secs);
			printf("ok %d %s # %s\n", i + 1, test_names[i], s);
			continue;
		}
		for (j = 0; j < res[i].nlines; j++)
			printf("# %s: %s\n", test_names[i], res[i].line[j]);
		if (res[i].nfail > (uint64_t)res[i].nlines)
			printf("# %s: ... %llu failures in all\n",
			       test_names[i], U(res[i].nfail));
		printf("not ok %d %s\n", i + 1, test_names[i]);
		nfail++;
	}
	printf("# totals: pass:%d fail:%d skip:0\n", NTEST - nfail, nfail);
	fflush(stdout);
	if (nfail)
		fprintf(stderr, "%s: %d of %d tests FAILED\n", wq_prog, nfail,
			NTEST);
	return nfail;
}

static void on_alarm(int sig)
{
	static const char msg[] =
		"# watchdog: still running long after --seconds + 30 s\n";

	(void)sig;
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(WQ_EXIT_FAIL);
	_exit(WQ_EXIT_FAIL);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [--seconds N] [--seed S] [--threads T]\n"
		"Race stress of the watch_queue API: key operations, readers "
		"with random\nbuffer sizes, watches, filters, queues closed "
		"and reopened, watched keys\ndestroyed; checks every record.  "
		"Prints KTAP.  Exit status: 0 all passed\n(or skipped), 1 "
		"failures, 2 usage.\n\n"
		"  --seconds N   run time (default 20)\n"
		"  --seed S      random seed (default: from the clock)\n"
		"  --threads T   posting threads, 1..%d (default 2)\n"
		"  --help\n", wq_prog, MAX_POSTERS);
}

static long parse_args(int argc, char **argv, long *seconds, long *nposters)
{
	static const struct option lo[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'r' },
		{ "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	long seed = -1;
	int c;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == 's') {
			*seconds = wq_parse_num("seconds", optarg, 1, 86400);
		} else if (c == 'r') {
			seed = wq_parse_num("seed", optarg, 0, 0x7fffffffL);
		} else if (c == 't') {
			*nposters = wq_parse_num("threads", optarg, 1,
						 MAX_POSTERS);
		} else if (c == 'h') {
			usage(stdout);
			exit(WQ_EXIT_OK);
		} else {
			usage(stderr);
			exit(WQ_EXIT_USAGE);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", wq_prog,
			argv[optind]);
		usage(stderr);
		exit(WQ_EXIT_USAGE);
	}
	if (seed < 0)
		seed = (long)((wq_now_ns() ^ (uint64_t)time(NULL) ^
			       ((uint64_t)getpid() << 16)) & 0x7fffffff);
	return seed;
}

/* Run the threads for @seconds; returns how many were joined in time. */
static int run(long seconds, long nposters, long seed)
{
	pthread_condattr_t ca;
	struct timespec deadline, now;
	char name[24];
	uint64_t end;
	int i, joined = 0;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ctl.cond, &ca);
	for (i = 0; i < nposters; i++) {
		snprintf(name, sizeof(name), "wqs-poster%d", i);
		add_thread(name, i, poster, (uint64_t)seed);
	}
	for (i = 0; i < NREADER; i++) {
		snprintf(name, sizeof(name), "wqs-reader%d", i);
		add_thread(name, i, reader, (uint64_t)seed);
	}
	add_thread("wqs-watcher", 0, watcher, (uint64_t)seed);
	add_thread("wqs-victims", 0, victims, (uint64_t)seed);
	add_thread("wqs-ctl-poster", 0, ctl_poster, (uint64_t)seed);
	add_thread("wqs-ctl-reader", 0, ctl_reader, (uint64_t)seed);

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += seconds + JOIN_GRACE_S;
	end = wq_now_ns() + (uint64_t)seconds * 1000000000ull;
	for (i = 0; i < nthr; i++) {
		int err = pthread_create(&thr[i].tid, NULL, thread_main,
					 &thr[i]);

		if (err) {
			printf("# %s: pthread_create: %s\n", thr[i].name,
			       wq_errname(err));
			STORE(stop, 1);
			STORE(ctl_stop, 1);
			nthr = i;
			break;
		}
		/* The kernel's reports (lockdep, KASAN) name the thread. */
		pthread_setname_np(thr[i].tid, thr[i].name);
	}
	while (!LOAD(stop) && wq_now_ns() < end)
		usleep(100000);
	STORE(stop, 1);

	for (i = 0; i < nthr; i++) {
		struct thr *t = &thr[i];

		if (i == nthr - 1) {
			/*
			 * The control reader, last: it reads what the others
			 * posted.  A few seconds even if they ran out the
			 * clock.
			 */
			STORE(ctl_stop, 1);
			clock_gettime(CLOCK_REALTIME, &now);
			if (now.tv_sec + 2 > deadline.tv_sec)
				deadline.tv_sec = now.tv_sec + 2;
		}
		if (pthread_timedjoin_np(t->tid, NULL, &deadline) == 0) {
			joined++;
			continue;
		}
		bad(T_THREADS, "%s did not finish %d s after the end: in %s "
		    "for %.1f s", t->name, JOIN_GRACE_S, LOAD(t->doing),
		    (double)(wq_now_ns() - LOAD(t->since)) / 1e9);
	}
	return joined;
}

/* The checks that need every thread done. */
static void final_checks(void)
{
	char h[80];
	int i;

	if (ctl.posted != ctl.seen)
		bad(T_CTL, "%llu updates of control key %d succeeded, the "
		    "control queue got %llu UPDATED records", U(ctl.posted),
		    ctl_key, U(ctl.seen));
	for (i = 0; i < npend; i++)
		if (!known_has(pend[i].id))
			bad(T_IDS, "%s: record names key %d, which this "
			    "program never created (checked after the "
			    "join): %s", pend[i].where, pend[i].id,
			    hex(h, pend[i].rec, 16));
	if (pend_lost)
		bad(T_IDS, "%d unconfirmed ids could not be kept to check",
		    pend_lost);
}

/* Let the key GC take everything before a kmemleak scan follows. */
static void cleanup(void)
{
	int i;

	for (i = 0; i < NREADER; i++) {
		if (sq[i].rfd >= 0)
			close(sq[i].rfd);
		if (sq[i].wfd >= 0)
			close(sq[i].wfd);
		if (sq[i].zombie >= 0)
			close(sq[i].zombie);
	}
	close(ctl_fd[0]);
	close(ctl_fd[1]);
	for (i = NUSER; i < NSLOT; i++)
		wq_kctl(KEYCTL_CLEAR, slot_id(i), 0, 0);
	wq_kctl(KEYCTL_CLEAR, gc_ring, 0, 0);
	wq_kctl(KEYCTL_CLEAR, session_id, 0, 0);
}

int main(int argc, char **argv)
{
	long seconds = 20, nposters = 2, seed;
	uint64_t start;
	char why[256];
	int joined, failed;

	wq_prog = "wq-stress";
	seed = parse_args(argc, argv, &seconds, &nposters);
	if (wq_ktap_begin() < 0)
		return WQ_EXIT_OK;
	printf("# seed %ld\n# replay: %s --seconds %ld --seed %ld --threads "
	       "%ld\n", seed, wq_prog, seconds, seed, nposters);
	if (setup(why, sizeof(why)) < 0) {
		printf("1..1\n# setup: %s\nnot ok 1 setup\n", why);
		return WQ_EXIT_FAIL;
	}
	printf("1..%d\n", NTEST);

	signal(SIGALRM, on_alarm);
	alarm((unsigned int)(seconds + JOIN_GRACE_S + 30));
	start = wq_now_ns();
	joined = run(seconds, nposters, seed);
	if (joined < nthr) {
		/* Stuck threads: report what is known, then leave them. */
		report((double)(wq_now_ns() - start) / 1e9, joined);
		_exit(WQ_EXIT_FAIL);
	}
	final_checks();
	cleanup();
	failed = report((double)(wq_now_ns() - start) / 1e9, joined);
	alarm(0);
	return failed ? WQ_EXIT_FAIL : WQ_EXIT_OK;
}
