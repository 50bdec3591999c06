// SPDX-License-Identifier: GPL-2.0
/*
 * wq-conformance - watch_queue / key notification API conformance suite.
 *
 * Acts as a watcher that checks off every change it should see (the expected
 * NOTIFY_KEY_* record, key id, aux and watch id for each key operation, loss
 * and removal records, filtering) and the documented errors for bad input.
 * Expectations follow Linux 6.12 (kernel/watch_queue.c, fs/pipe.c,
 * fs/splice.c, security/keys/).  Output is KTAP; exit status 1 if any test
 * failed, 0 if all passed or the kernel lacks notification pipes (then the
 * whole plan is skipped with the reason).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "wq.h"

#define ANY		0xffffffffu
#define PERM		(KEY_POS_ALL | KEY_USR_ALL)

enum result { PASS, FAIL, SKIP };

static char diag[512];
static int gc_timeout_ms = 10000;
static int rec_timeout_ms = 2000;

/* Record a failure reason (first one wins) and return FAIL. */
static enum result fail(const char *fmt, ...)
{
	va_list ap;

	if (!diag[0]) {
		va_start(ap, fmt);
		vsnprintf(diag, sizeof(diag), fmt, ap);
		va_end(ap);
	}
	return FAIL;
}

#define CHECK(cond, ...) do { if (!(cond)) return fail(__VA_ARGS__); } while (0)

/* ---- queues with a record reader --------------------------------------- */

struct queue {
	int		rfd, wfd;
	unsigned char	buf[4096];
	size_t		len, off;
};

static struct queue queues[4];

static struct queue *qopen(int idx, unsigned int notes)
{
	struct queue *q = &queues[idx];
	int fds[2];
	char why[200];

	memset(q, 0, sizeof(*q));
	q->rfd = q->wfd = -1;
	if (wq_open_queue(fds, notes, 1, why, sizeof(why)) < 0) {
		fail("%s", why);
		return NULL;
	}
	q->rfd = fds[0];
	q->wfd = fds[1];
	return q;
}

static void qclose_all(void)
{
	size_t i;

	for (i = 0; i < WQ_ARRAY_SIZE(queues); i++) {
		if (queues[i].rfd > 0)
			close(queues[i].rfd);
		if (queues[i].wfd > 0)
			close(queues[i].wfd);
		queues[i].rfd = queues[i].wfd = -1;
	}
}

/* Next record into @rec (at most 128 bytes); 1 if one came, 0 on timeout. */
static int next_record(struct queue *q, unsigned char *rec, int timeout_ms)
{
	struct watch_notification n;
	size_t rlen;

	if (q->off >= q->len) {
		struct pollfd p = { .fd = q->rfd, .events = POLLIN };
		ssize_t got;

		q->off = q->len = 0;
		/*
		 * Read before polling: a pending loss record (pipe->note_loss)
		 * is only returned by read(); poll() does not report it once
		 * the pipe's buffers are empty.
		 */
		got = read(q->rfd, q->buf, sizeof(q->buf));
		if (got < 0 && errno == EAGAIN) {
			if (poll(&p, 1, timeout_ms) <= 0)
				return 0;
			got = read(q->rfd, q->buf, sizeof(q->buf));
		}
		if (got <= 0)
			return 0;
		q->len = (size_t)got;
	}
	memcpy(&n, q->buf + q->off, sizeof(n));
	rlen = n.info & WATCH_INFO_LENGTH;
	if (rlen < sizeof(n) || q->off + rlen > q->len) {
		fail("malformed record (length %zu at offset %zu of %zu)", rlen,
		     q->off, q->len);
		q->off = q->len;
		return 0;
	}
	memset(rec, 0, WQ_NOTE_SIZE);
	memcpy(rec, q->buf + q->off, rlen);
	q->off += rlen;
	return 1;
}

static const char *subtype_name(unsigned int type, unsigned int subtype)
{
	static const char *const key[] = {
		"INSTANTIATED", "UPDATED", "LINKED", "UNLINKED", "CLEARED",
		"REVOKED", "INVALIDATED", "SETATTR",
	};

	if (type == WATCH_TYPE_KEY_NOTIFY && subtype < WQ_ARRAY_SIZE(key))
		return key[subtype];
	if (type == WATCH_TYPE_META)
		return subtype == WATCH_META_LOSS_NOTIFICATION ? "LOSS" :
		       subtype == WATCH_META_REMOVAL_NOTIFICATION ? "REMOVAL" :
		       "META?";
	return "?";
}

/* Expect the next record to be a key notification as given. */
static enum result expect_key(struct queue *q, unsigned int subtype,
			      int32_t key, uint32_t aux, int watch_id)
{
	unsigned char rec[WQ_NOTE_SIZE];
	struct key_notification kn;
	unsigned int len, wid;

	if (!next_record(q, rec, rec_timeout_ms))
		return fail("no record; expected %s on key %d",
			    subtype_name(WATCH_TYPE_KEY_NOTIFY, subtype), key);
	memcpy(&kn, rec, sizeof(kn));
	len = kn.watch.info & WATCH_INFO_LENGTH;
	wid = (kn.watch.info & WATCH_INFO_ID) >> WATCH_INFO_ID__SHIFT;
	CHECK(kn.watch.type == WATCH_TYPE_KEY_NOTIFY &&
	      kn.watch.subtype == subtype,
	      "got type %u %s, expected %s", kn.watch.type,
	      subtype_name(kn.watch.type, kn.watch.subtype),
	      subtype_name(WATCH_TYPE_KEY_NOTIFY, subtype));
	CHECK(len == sizeof(kn), "record length %u, expected %zu", len,
	      sizeof(kn));
	CHECK(kn.key_id == (uint32_t)key, "key_id %u, expected %d", kn.key_id,
	      key);
	CHECK(aux == ANY || kn.aux == aux, "aux %u, expected %u", kn.aux, aux);
	CHECK(wid == (unsigned int)watch_id, "watch id %u, expected %d", wid,
	      watch_id);
	return PASS;
}

/* Expect a removal record for @id from watch @watch_id within @ms. */
static enum result expect_removal(struct queue *q, int32_t id, int watch_id,
				  int ms)
{
	unsigned char rec[WQ_NOTE_SIZE];
	struct watch_notification_removal rm;
	unsigned int len;

	if (!next_record(q, rec, ms))
		return fail("no removal record for key %d within %d ms", id,
			    ms);
	memcpy(&rm, rec, sizeof(rm));
	len = rm.watch.info & WATCH_INFO_LENGTH;
	CHECK(rm.watch.type == WATCH_TYPE_META &&
	      rm.watch.subtype == WATCH_META_REMOVAL_NOTIFICATION,
	      "got type %u %s, expected REMOVAL", rm.watch.type,
	      subtype_name(rm.watch.type, rm.watch.subtype));
	CHECK(len == sizeof(rm), "removal record length %u, expected %zu",
	      len, sizeof(rm));
	CHECK(rm.id == (uint64_t)(uint32_t)id, "removal id %llu, expected %d",
	      (unsigned long long)rm.id, id);
	CHECK(((rm.watch.info & WATCH_INFO_ID) >> WATCH_INFO_ID__SHIFT) ==
	      (unsigned int)watch_id, "removal watch id %u, expected %d",
	      (rm.watch.info & WATCH_INFO_ID) >> WATCH_INFO_ID__SHIFT,
	      watch_id);
	return PASS;
}

static enum result expect_nothing(struct queue *q, int ms)
{
	unsigned char rec[WQ_NOTE_SIZE];

	if (next_record(q, rec, ms)) {
		struct watch_notification n;

		memcpy(&n, rec, sizeof(n));
		return fail("unexpected record type %u %s", n.type,
			    subtype_name(n.type, n.subtype));
	}
	return diag[0] ? FAIL : PASS;
}

/* ---- keys ---------------------------------------------------------------- */

static int key_seq;

static int32_t new_keyring(void)
{
	char desc[64];

	snprintf(desc, sizeof(desc), "wqc-ring-%d", ++key_seq);
	return wq_add_key("keyring", desc, NULL, 0, KEY_SPEC_SESSION_KEYRING);
}

static int32_t new_key(int32_t ring, const char *desc)
{
	return wq_add_key("user", desc, "payload", 7, ring);
}

#define CHECK_SYS(expr) \
	CHECK((expr) >= 0, "%s: %s", #expr, wq_errname(errno))

/* Expect @ret < 0 with errno @err. */
#define CHECK_ERR(expr, err) do {					\
	errno = 0;							\
	long __r = (long)(expr);					\
	CHECK(__r < 0 && errno == (err), "%s = %ld (%s), expected %s",	\
	      #expr, __r, __r < 0 ? wq_errname(errno) : "success",	\
	      wq_errname(err));						\
} while (0)

/* Key @key in ring @ring, with @q watching @watch_target as @watch_id. */
struct fixture {
	int32_t ring, key;
	struct queue *q;
};

static enum result setup(struct fixture *f, unsigned int notes)
{
	f->q = qopen(0, notes);
	if (!f->q)
		return FAIL;
	f->ring = new_keyring();
	CHECK(f->ring > 0, "add_key(keyring): %s", wq_errname(errno));
	f->key = new_key(f->ring, "wqc-key");
	CHECK(f->key > 0, "add_key(user): %s", wq_errname(errno));
	return PASS;
}

#define SETUP(f, notes) do {						\
	if (setup(f, notes) != PASS)					\
		return FAIL;						\
} while (0)

#define WATCH(q, key, id)						\
	CHECK(wq_watch_key(key, (q)->rfd, id) == 0,			\
	      "KEYCTL_WATCH_KEY(%d, id %d): %s", key, id, wq_errname(errno))

/* ---- ioctl / syscall error tests -------------------------------------- */

static enum result t_set_size_plain(void)
{
	int fds[2];
	enum result r = PASS;

	CHECK_SYS(pipe(fds));
	errno = 0;
	if (ioctl(fds[0], IOC_WATCH_QUEUE_SET_SIZE, 1) == 0 || errno != ENODEV)
		r = fail("SET_SIZE on a plain pipe: %s, expected ENODEV",
			 errno ? wq_errname(errno) : "success");
	close(fds[0]);
	close(fds[1]);
	return r;
}

static enum result t_set_filter_plain(void)
{
	struct watch_notification_type_filter f = {
		.type = WATCH_TYPE_KEY_NOTIFY, .subtype_filter = { ~0u },
	};
	int fds[2];
	enum result r = PASS;

	CHECK_SYS(pipe(fds));
	errno = 0;
	if (wq_set_filter(fds[0], &f, 1) == 0 || errno != ENODEV)
		r = fail("SET_FILTER on a plain pipe: %s, expected ENODEV",
			 errno ? wq_errname(errno) : "success");
	close(fds[0]);
	close(fds[1]);
	return r;
}

static enum result raw_pipe(int fds[2])
{
	CHECK_SYS(pipe2(fds, O_NOTIFICATION_PIPE | O_NONBLOCK | O_CLOEXEC));
	queues[1].rfd = fds[0];
	queues[1].wfd = fds[1];
	return PASS;
}

static enum result t_set_size_zero(void)
{
	int fds[2];

	if (raw_pipe(fds) != PASS)
		return FAIL;
	CHECK_ERR(ioctl(fds[0], IOC_WATCH_QUEUE_SET_SIZE, 0), EINVAL);
	return PASS;
}

static enum result t_set_size_513(void)
{
	int fds[2];

	if (raw_pipe(fds) != PASS)
		return FAIL;
	CHECK_ERR(ioctl(fds[0], IOC_WATCH_QUEUE_SET_SIZE, 513), EINVAL);
	CHECK_SYS(ioctl(fds[0], IOC_WATCH_QUEUE_SET_SIZE, 512));
	return PASS;
}

static enum result t_set_size_twice(void)
{
	int fds[2];

	if (raw_pipe(fds) != PASS)
		return FAIL;
	CHECK_SYS(ioctl(fds[0], IOC_WATCH_QUEUE_SET_SIZE, 1));
	CHECK_ERR(ioctl(fds[0], IOC_WATCH_QUEUE_SET_SIZE, 1), EBUSY);
	return PASS;
}

static enum result filter_errno(struct watch_notification_filter *wf,
				int want)
{
	struct queue *q = qopen(0, 1);

	if (!q)
		return FAIL;
	CHECK_ERR(ioctl(q->rfd, IOC_WATCH_QUEUE_SET_FILTER, wf), want);
	return PASS;
}

static struct watch_notification_filter *alloc_filter(unsigned int n,
						      unsigned int alloc)
{
	static union {
		struct watch_notification_filter f;
		unsigned char b[sizeof(struct watch_notification_filter) +
				20 * sizeof(struct watch_notification_type_filter)];
	} u;
	unsigned int i;

	memset(&u, 0, sizeof(u));
	u.f.nr_filters = n;
	for (i = 0; i < alloc; i++) {
		u.f.filters[i].type = WATCH_TYPE_KEY_NOTIFY;
		u.f.filters[i].subtype_filter[0] = ~0u;
	}
	return &u.f;
}

static enum result t_filter_zero(void)
{
	return filter_errno(alloc_filter(0, 1), EINVAL);
}

static enum result t_filter_17(void)
{
	return filter_errno(alloc_filter(17, 17), EINVAL);
}

static enum result t_filter_16_ok(void)
{
	struct queue *q = qopen(0, 1);

	if (!q)
		return FAIL;
	CHECK_SYS(ioctl(q->rfd, IOC_WATCH_QUEUE_SET_FILTER,
			alloc_filter(16, 16)));
	return PASS;
}

static enum result t_filter_reserved(void)
{
	struct watch_notification_filter *wf = alloc_filter(1, 1);

	wf->__reserved = 1;
	return filter_errno(wf, EINVAL);
}

static enum result t_filter_info_outside_mask(void)
{
	struct watch_notification_filter *wf = alloc_filter(1, 1);

	wf->filters[0].info_mask = WATCH_INFO_ID;
	wf->filters[0].info_filter = 0x00010000;	/* not in the mask */
	return filter_errno(wf, EINVAL);
}

static enum result t_filter_info_mask_length(void)
{
	struct watch_notification_filter *wf = alloc_filter(1, 1);

	wf->filters[0].info_mask = WATCH_INFO_LENGTH;
	return filter_errno(wf, EINVAL);
}

/*
 * Unknown types are accepted and ignored (the CVE-2022-0995 class: they
 * must not reach the type bitmap).  A filter of only unknown types rejects
 * everything; mixed with a key filter, key records still arrive.
 */
static enum result t_filter_unknown_types(void)
{
	static const uint32_t types[] = { 2, 64, 511, 0x7fffffff, 0xffffffff };
	struct fixture f;
	size_t i;

	SETUP(&f, 32);
	WATCH(f.q, f.key, 1);
	for (i = 0; i < WQ_ARRAY_SIZE(types); i++) {
		struct watch_notification_filter *wf = alloc_filter(1, 1);

		wf->filters[0].type = types[i];
		CHECK(ioctl(f.q->rfd, IOC_WATCH_QUEUE_SET_FILTER, wf) == 0,
		      "filter of type %#x: %s, expected success", types[i],
		      wq_errname(errno));
		CHECK_SYS(wq_kctl(KEYCTL_SETPERM, f.key, PERM, 0));
		if (expect_nothing(f.q, 50) != PASS)
			return fail("type %#x filter let a key record through: %s",
				    types[i], diag);
	}
	{
		struct watch_notification_filter *wf = alloc_filter(2, 2);

		wf->filters[0].type = 0x7fffffff;
		CHECK_SYS(ioctl(f.q->rfd, IOC_WATCH_QUEUE_SET_FILTER, wf));
		CHECK_SYS(wq_kctl(KEYCTL_SETPERM, f.key, PERM, 0));
		return expect_key(f.q, NOTIFY_KEY_SETATTR, f.key, 0, 1);
	}
}

/* A mapped page followed by an unmapped one. */
static unsigned char *guard_pages(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	unsigned char *p = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	munmap(p + pg, pg);
	return p;
}

static enum result t_filter_efault(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	unsigned char *p = guard_pages();
	struct watch_notification_filter hdr = { .nr_filters = 1 };
	struct queue *q = qopen(0, 1);

	if (!q)
		return FAIL;
	CHECK(p, "mmap: %s", wq_errname(errno));
	/* The header itself is unreadable. */
	CHECK_ERR(ioctl(q->rfd, IOC_WATCH_QUEUE_SET_FILTER, p + pg), EFAULT);
	/* The header is readable, the filter array is not. */
	memcpy(p + pg - sizeof(hdr), &hdr, sizeof(hdr));
	CHECK_ERR(ioctl(q->rfd, IOC_WATCH_QUEUE_SET_FILTER,
			p + pg - sizeof(hdr)), EFAULT);
	munmap(p, pg);
	return PASS;
}

static enum result t_write_exdev(void)
{
	int fds[2];

	if (raw_pipe(fds) != PASS)
		return FAIL;
	CHECK_ERR(write(fds[1], "x", 1), EXDEV);
	return PASS;
}

static enum result t_splice(void)
{
	int nfd[2], pfd[2];
	enum result r = PASS;

	if (raw_pipe(nfd) != PASS)
		return FAIL;
	CHECK_SYS(pipe2(pfd, O_NONBLOCK));
	queues[2].rfd = pfd[0];
	queues[2].wfd = pfd[1];
	CHECK_SYS(write(pfd[1], "0123456789abcdef", 16));
	/* Into a notification pipe: the pipe write path refuses it. */
	CHECK_ERR(splice(pfd[0], NULL, nfd[1], NULL, 16, SPLICE_F_NONBLOCK),
		  EXDEV);
	/* Out of one: notification pipes are no splice source. */
	CHECK_ERR(splice(nfd[0], NULL, pfd[1], NULL, 16, SPLICE_F_NONBLOCK),
		  EINVAL);
	return r;
}

static enum result t_tee(void)
{
	int nfd[2], pfd[2];

	if (raw_pipe(nfd) != PASS)
		return FAIL;
	CHECK_SYS(pipe2(pfd, O_NONBLOCK));
	queues[2].rfd = pfd[0];
	queues[2].wfd = pfd[1];
	CHECK_ERR(tee(nfd[0], pfd[1], 16, SPLICE_F_NONBLOCK), EINVAL);
	CHECK_SYS(write(pfd[1], "0123456789abcdef", 16));
	CHECK_ERR(tee(pfd[0], nfd[1], 16, SPLICE_F_NONBLOCK), EINVAL);
	return PASS;
}

static enum result t_vmsplice(void)
{
	char data[16] = "0123456789abcde";
	struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
	int nfd[2];

	if (raw_pipe(nfd) != PASS)
		return FAIL;
	CHECK_ERR(vmsplice(nfd[1], &iov, 1, SPLICE_F_NONBLOCK), EBADF);
	CHECK_ERR(vmsplice(nfd[0], &iov, 1, SPLICE_F_NONBLOCK), EBADF);
	return PASS;
}

static enum result t_setpipe_sz(void)
{
	struct queue *q = qopen(0, 1);

	if (!q)
		return FAIL;
	CHECK_ERR(fcntl(q->rfd, F_SETPIPE_SZ, 65536), EBUSY);
	return PASS;
}

static enum result t_watch_duplicate(void)
{
	struct fixture f;

	SETUP(&f, 32);
	WATCH(f.q, f.key, 1);
	CHECK_ERR(wq_watch_key(f.key, f.q->rfd, 2), EBUSY);
	return PASS;
}

static enum result t_unwatch_missing(void)
{
	struct fixture f;
	struct queue *other;

	SETUP(&f, 32);
	/* Key without any watch list ... */
	CHECK_ERR(wq_watch_key(f.key, f.q->rfd, -1), EBADSLT);
	/* ... and key watched through another queue only. */
	other = qopen(1, 32);
	if (!other)
		return FAIL;
	WATCH(other, f.key, 1);
	CHECK_ERR(wq_watch_key(f.key, f.q->rfd, -1), EBADSLT);
	return PASS;
}

static enum result t_watch_bad_id(void)
{
	struct fixture f;

	SETUP(&f, 32);
	CHECK_ERR(wq_watch_key(f.key, f.q->rfd, 256), EINVAL);
	CHECK_ERR(wq_watch_key(f.key, f.q->rfd, -2), EINVAL);
	return PASS;
}

static enum result t_watch_plain_pipe(void)
{
	struct fixture f;
	int fds[2];

	SETUP(&f, 32);
	CHECK_SYS(pipe2(fds, O_CLOEXEC));
	queues[2].rfd = fds[0];
	queues[2].wfd = fds[1];
	CHECK_ERR(wq_watch_key(f.key, fds[0], 1), EINVAL);
	return PASS;
}

/* ---- key notifications ------------------------------------------------- */

static enum result t_notify_add_linked(void)
{
	struct fixture f;
	int32_t k;

	SETUP(&f, 32);
	WATCH(f.q, f.ring, 3);
	k = new_key(f.ring, "wqc-new");
	CHECK(k > 0, "add_key: %s", wq_errname(errno));
	return expect_key(f.q, NOTIFY_KEY_LINKED, f.ring, (uint32_t)k, 3);
}

static enum result t_notify_update(void)
{
	struct fixture f;

	SETUP(&f, 32);
	WATCH(f.q, f.key, 4);
	CHECK_SYS(wq_kctl(KEYCTL_UPDATE, f.key, (long)"new", 3));
	return expect_key(f.q, NOTIFY_KEY_UPDATED, f.key, 0, 4);
}

static enum result t_notify_add_existing(void)
{
	struct fixture f;
	int32_t k;

	SETUP(&f, 32);
	WATCH(f.q, f.key, 5);
	k = new_key(f.ring, "wqc-key");		/* same description */
	CHECK(k == f.key, "add_key returned %d, expected the existing %d", k,
	      f.key);
	return expect_key(f.q, NOTIFY_KEY_UPDATED, f.key, 0, 5);
}

static enum result t_notify_link(void)
{
	struct fixture f;
	int32_t k;

	SETUP(&f, 32);
	k = new_key(KEY_SPEC_SESSION_KEYRING, "wqc-loose");
	CHECK(k > 0, "add_key: %s", wq_errname(errno));
	WATCH(f.q, f.ring, 6);
	CHECK_SYS(wq_kctl(KEYCTL_LINK, k, f.ring, 0));
	return expect_key(f.q, NOTIFY_KEY_LINKED, f.ring, (uint32_t)k, 6);
}

static enum result t_notify_unlink(void)
{
	struct fixture f;

	SETUP(&f, 32);
	WATCH(f.q, f.ring, 7);
	CHECK_SYS(wq_kctl(KEYCTL_LINK, f.key, KEY_SPEC_SESSION_KEYRING, 0));
	CHECK_SYS(wq_kctl(KEYCTL_UNLINK, f.key, f.ring, 0));
	return expect_key(f.q, NOTIFY_KEY_UNLINKED, f.ring, (uint32_t)f.key,
			  7);
}

static enum result t_notify_clear(void)
{
	struct fixture f;

	SETUP(&f, 32);
	WATCH(f.q, f.ring, 8);
	CHECK_SYS(wq_kctl(KEYCTL_CLEAR, f.ring, 0, 0));
	return expect_key(f.q, NOTIFY_KEY_CLEARED, f.ring, 0, 8);
}

static enum result t_notify_revoke(void)
{
	struct fixture f;

	SETUP(&f, 32);
	WATCH(f.q, f.key, 9);
	CHECK_SYS(wq_kctl(KEYCTL_REVOKE, f.key, 0, 0));
	return expect_key(f.q, NOTIFY_KEY_REVOKED, f.key, 0, 9);
}

static enum result t_notify_invalidate(void)
{
	struct fixture f;

	SETUP(&f, 32);
	WATCH(f.q, f.key, 10);
	CHECK_SYS(wq_kctl(KEYCTL_INVALIDATE, f.key, 0, 0));
	return expect_key(f.q, NOTIFY_KEY_INVALIDATED, f.key, 0, 10);
}

static enum result t_notify_setperm(void)
{
	struct fixture f;

	SETUP(&f, 32);
	WATCH(f.q, f.key, 11);
	CHECK_SYS(wq_kctl(KEYCTL_SETPERM, f.key, PERM, 0));
	return expect_key(f.q, NOTIFY_KEY_SETATTR, f.key, 0, 11);
}

static enum result t_notify_chown(void)
{
	struct fixture f;

	SETUP(&f, 32);
	WATCH(f.q, f.key, 12);
	CHECK_SYS(wq_kctl(KEYCTL_CHOWN, f.key, -1, (long)getgid()));
	return expect_key(f.q, NOTIFY_KEY_SETATTR, f.key, 0, 12);
}

static enum result t_notify_set_timeout(void)
{
	struct fixture f;

	SETUP(&f, 32);
	WATCH(f.q, f.key, 13);
	CHECK_SYS(wq_kctl(KEYCTL_SET_TIMEOUT, f.key, 3600, 0));
	return expect_key(f.q, NOTIFY_KEY_SETATTR, f.key, 0, 13);
}

static enum result t_notify_instantiate(void)
{
	/*
	 * NOTIFY_KEY_INSTANTIATED goes to the watchers of the key being
	 * constructed, and a key can only be watched once constructed
	 * (KEYCTL_WATCH_KEY waits for construction); observing it needs a
	 * request-key upcall helper, which the guest does not have.  Adding
	 * a key is covered by the LINKED record on its keyring.
	 */
	snprintf(diag, sizeof(diag),
		 "needs a request-key upcall to watch a key under construction");
	return SKIP;
}

static enum result t_notify_two_queues(void)
{
	struct fixture f;
	struct queue *q2;

	SETUP(&f, 32);
	q2 = qopen(1, 32);
	if (!q2)
		return FAIL;
	WATCH(f.q, f.key, 21);
	WATCH(q2, f.key, 22);
	CHECK_SYS(wq_kctl(KEYCTL_SETPERM, f.key, PERM, 0));
	if (expect_key(f.q, NOTIFY_KEY_SETATTR, f.key, 0, 21) != PASS)
		return FAIL;
	return expect_key(q2, NOTIFY_KEY_SETATTR, f.key, 0, 22);
}

/* ---- removal and loss -------------------------------------------------- */

static enum result t_removal_unwatch(void)
{
	struct fixture f;

	SETUP(&f, 32);
	WATCH(f.q, f.key, 14);
	CHECK_SYS(wq_watch_key(f.key, f.q->rfd, -1));
	if (expect_removal(f.q, f.key, 14, rec_timeout_ms) != PASS)
		return FAIL;
	/* Nothing more arrives once the watch is gone. */
	CHECK_SYS(wq_kctl(KEYCTL_SETPERM, f.key, PERM, 0));
	return expect_nothing(f.q, 100);
}

static enum result t_removal_destroyed(void)
{
	struct fixture f;

	SETUP(&f, 32);
	WATCH(f.q, f.key, 15);
	/* The keyring holds the only reference: unlinking destroys the key. */
	CHECK_SYS(wq_kctl(KEYCTL_UNLINK, f.key, f.ring, 0));
	return expect_removal(f.q, f.key, 15, gc_timeout_ms);
}

static enum result t_loss(void)
{
	struct fixture f;
	unsigned char rec[WQ_NOTE_SIZE];
	int i, keyrecs = 0, loss = 0, other = 0;

	SETUP(&f, 1);		/* rounds up to one page: 32 notes */
	WATCH(f.q, f.key, 16);
	for (i = 0; i < 40; i++)
		CHECK_SYS(wq_kctl(KEYCTL_SETPERM, f.key, PERM, 0));
	while (next_record(f.q, rec, 100)) {
		struct watch_notification n;

		memcpy(&n, rec, sizeof(n));
		if (n.type == WATCH_TYPE_KEY_NOTIFY)
			keyrecs++;
		else if (n.type == WATCH_TYPE_META &&
			 n.subtype == WATCH_META_LOSS_NOTIFICATION)
			loss++;
		else
			other++;
	}
	CHECK(!diag[0], "%s", diag);
	CHECK(keyrecs == 32, "%d key records delivered, expected 32", keyrecs);
	CHECK(loss >= 1, "no loss record after 8 lost records");
	CHECK(other == 0, "%d unexpected records", other);
	/* Room again: records flow after the drain, without a new loss. */
	CHECK_SYS(wq_kctl(KEYCTL_SETPERM, f.key, PERM, 0));
	return expect_key(f.q, NOTIFY_KEY_SETATTR, f.key, 0, 16);
}

/* ---- filters ----------------------------------------------------------- */

static int set_filter1(struct queue *q, uint32_t type, uint32_t subtypes,
		       uint32_t info_filter, uint32_t info_mask)
{
	struct watch_notification_type_filter f = {
		.type = type, .info_filter = info_filter,
		.info_mask = info_mask, .subtype_filter = { subtypes },
	};

	return wq_set_filter(q->rfd, &f, 1);
}

static enum result t_filter_include_subtype(void)
{
	struct fixture f;

	SETUP(&f, 32);
	CHECK_SYS(set_filter1(f.q, WATCH_TYPE_KEY_NOTIFY,
			      1u << NOTIFY_KEY_SETATTR, 0, 0));
	WATCH(f.q, f.key, 17);
	CHECK_SYS(wq_kctl(KEYCTL_UPDATE, f.key, (long)"new", 3));
	CHECK_SYS(wq_kctl(KEYCTL_SETPERM, f.key, PERM, 0));
	/* UPDATED was filtered out: the first record is SETATTR. */
	if (expect_key(f.q, NOTIFY_KEY_SETATTR, f.key, 0, 17) != PASS)
		return FAIL;
	return expect_nothing(f.q, 50);
}

static enum result t_filter_exclude_subtype(void)
{
	struct fixture f;

	SETUP(&f, 32);
	CHECK_SYS(set_filter1(f.q, WATCH_TYPE_KEY_NOTIFY,
			      ~(1u << NOTIFY_KEY_SETATTR), 0, 0));
	WATCH(f.q, f.key, 18);
	CHECK_SYS(wq_kctl(KEYCTL_SETPERM, f.key, PERM, 0));
	CHECK_SYS(wq_kctl(KEYCTL_UPDATE, f.key, (long)"new", 3));
	return expect_key(f.q, NOTIFY_KEY_UPDATED, f.key, 0, 18);
}

static enum result t_filter_exclude_type(void)
{
	struct fixture f;

	SETUP(&f, 32);
	/* Only meta records pass: key records are excluded by type. */
	CHECK_SYS(set_filter1(f.q, WATCH_TYPE_META, ~0u, 0, 0));
	WATCH(f.q, f.key, 19);
	CHECK_SYS(wq_kctl(KEYCTL_SETPERM, f.key, PERM, 0));
	CHECK_SYS(wq_kctl(KEYCTL_UPDATE, f.key, (long)"new", 3));
	return expect_nothing(f.q, 100);
}

static enum result t_filter_info_id(void)
{
	struct fixture f;
	int32_t k2;

	SETUP(&f, 32);
	k2 = new_key(f.ring, "wqc-key2");
	CHECK(k2 > 0, "add_key: %s", wq_errname(errno));
	/* Pass only records whose watch id is 20. */
	CHECK_SYS(set_filter1(f.q, WATCH_TYPE_KEY_NOTIFY, ~0u,
			      20 << WATCH_INFO_ID__SHIFT, WATCH_INFO_ID));
	WATCH(f.q, f.key, 20);
	WATCH(f.q, k2, 30);
	CHECK_SYS(wq_kctl(KEYCTL_SETPERM, k2, PERM, 0));
	CHECK_SYS(wq_kctl(KEYCTL_SETPERM, f.key, PERM, 0));
	if (expect_key(f.q, NOTIFY_KEY_SETATTR, f.key, 0, 20) != PASS)
		return FAIL;
	return expect_nothing(f.q, 50);
}

static enum result t_filter_remove(void)
{
	struct fixture f;

	SETUP(&f, 32);
	CHECK_SYS(set_filter1(f.q, WATCH_TYPE_META, ~0u, 0, 0));
	WATCH(f.q, f.key, 23);
	CHECK_SYS(wq_kctl(KEYCTL_SETPERM, f.key, PERM, 0));
	if (expect_nothing(f.q, 50) != PASS)
		return FAIL;
	/* A NULL filter removes the filter: everything passes again. */
	CHECK_SYS(ioctl(f.q->rfd, IOC_WATCH_QUEUE_SET_FILTER, NULL));
	CHECK_SYS(wq_kctl(KEYCTL_SETPERM, f.key, PERM, 0));
	return expect_key(f.q, NOTIFY_KEY_SETATTR, f.key, 0, 23);
}

/* ---- driver ------------------------------------------------------------ */

static const struct test {
	const char *name;
	enum result (*fn)(void);
} tests[] = {
	{ "set_size_plain_pipe_enodev", t_set_size_plain },
	{ "set_filter_plain_pipe_enodev", t_set_filter_plain },
	{ "set_size_zero_einval", t_set_size_zero },
	{ "set_size_513_einval", t_set_size_513 },
	{ "set_size_twice_ebusy", t_set_size_twice },
	{ "set_filter_zero_filters_einval", t_filter_zero },
	{ "set_filter_17_filters_einval", t_filter_17 },
	{ "set_filter_16_filters_ok", t_filter_16_ok },
	{ "set_filter_reserved_einval", t_filter_reserved },
	{ "set_filter_info_filter_outside_mask_einval",
	  t_filter_info_outside_mask },
	{ "set_filter_info_mask_length_einval", t_filter_info_mask_length },
	{ "set_filter_unknown_types_ignored", t_filter_unknown_types },
	{ "set_filter_bad_pointer_efault", t_filter_efault },
	{ "write_exdev", t_write_exdev },
	{ "splice_exdev_einval", t_splice },
	{ "tee_einval", t_tee },
	{ "vmsplice_ebadf", t_vmsplice },
	{ "f_setpipe_sz_ebusy", t_setpipe_sz },
	{ "watch_key_duplicate_ebusy", t_watch_duplicate },
	{ "watch_key_remove_missing_ebadslt", t_unwatch_missing },
	{ "watch_key_bad_watch_id_einval", t_watch_bad_id },
	{ "watch_key_plain_pipe_einval", t_watch_plain_pipe },
	{ "notify_add_key_linked", t_notify_add_linked },
	{ "notify_update", t_notify_update },
	{ "notify_add_existing_updated", t_notify_add_existing },
	{ "notify_link", t_notify_link },
	{ "notify_unlink", t_notify_unlink },
	{ "notify_clear", t_notify_clear },
	{ "notify_revoke", t_notify_revoke },
	{ "notify_invalidate", t_notify_invalidate },
	{ "notify_setperm_setattr", t_notify_setperm },
	{ "notify_chown_setattr", t_notify_chown },
	{ "notify_set_timeout_setattr", t_notify_set_timeout },
	{ "notify_instantiated", t_notify_instantiate },
	{ "notify_two_queues", t_notify_two_queues },
	{ "removal_on_unwatch", t_removal_unwatch },
	{ "removal_on_key_destroyed", t_removal_destroyed },
	{ "loss_record_after_overflow", t_loss },
	{ "filter_include_subtype", t_filter_include_subtype },
	{ "filter_exclude_subtype", t_filter_exclude_subtype },
	{ "filter_exclude_type", t_filter_exclude_type },
	{ "filter_info_watch_id", t_filter_info_id },
	{ "filter_remove_null", t_filter_remove },
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [options]\n"
		"watch_queue API conformance suite; prints a KTAP report.\n"
		"Exit status: 0 all passed (or whole plan skipped), 1 failures, 2 usage.\n\n"
		"  --gc-timeout MS      wait for key destruction (default 10000)\n"
		"  --record-timeout MS  wait for an expected record (default 2000)\n"
		"  --list               list the test names\n"
		"  --help\n", wq_prog);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "gc-timeout", required_argument, NULL, 'g' },
		{ "record-timeout", required_argument, NULL, 't' },
		{ "list", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int pass = 0, nfail = 0, skip = 0, c;
	size_t i;

	wq_prog = "wq-conformance";
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'g':
			gc_timeout_ms = (int)wq_parse_num("gc-timeout", optarg,
							  1, 600000);
			break;
		case 't':
			rec_timeout_ms = (int)wq_parse_num("record-timeout",
							   optarg, 1, 600000);
			break;
		case 'l':
			for (i = 0; i < WQ_ARRAY_SIZE(tests); i++)
				printf("%s\n", tests[i].name);
			return WQ_EXIT_OK;
		case 'h':
			usage(stdout);
			return WQ_EXIT_OK;
		default:
			usage(stderr);
			return WQ_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return WQ_EXIT_USAGE;
	}
	if (wq_ktap_begin() < 0)
		return WQ_EXIT_OK;

	printf("1..%zu\n", WQ_ARRAY_SIZE(tests));
	for (i = 0; i < WQ_ARRAY_SIZE(tests); i++) {
		enum result r;

		diag[0] = '\0';
		r = tests[i].fn();
		qclose_all();
		if (r == PASS && diag[0])
			r = FAIL;	/* a helper failed without saying so */
		switch (r) {
		case PASS:
			printf("ok %zu %s\n", i + 1, tests[i].name);
			pass++;
			break;
		case SKIP:
			printf("ok %zu %s # SKIP %s\n", i + 1, tests[i].name,
			       diag);
			skip++;
			break;
		case FAIL:
			printf("# %s: %s\n", tests[i].name, diag);
			printf("not ok %zu %s\n", i + 1, tests[i].name);
			nfail++;
			break;
		}
	}
	printf("# totals: pass:%d fail:%d skip:%d\n", pass, nfail, skip);
	if (nfail)
		fprintf(stderr, "%s: %d of %zu tests FAILED\n", wq_prog, nfail,
			WQ_ARRAY_SIZE(tests));
	return nfail ? WQ_EXIT_FAIL : WQ_EXIT_OK;
}
