// SPDX-License-Identifier: GPL-2.0
/*
 * wq-faults - every allocation of the watch_queue syscalls made to fail in turn.
 *
 * For each operation (opening a notification pipe, IOC_WATCH_QUEUE_SET_SIZE,
 * IOC_WATCH_QUEUE_SET_FILTER, KEYCTL_WATCH_KEY, and the key operations that
 * post: update, link, unlink) the n-th allocation the operation makes is
 * failed, for n = 1, 2, ... until the operation no longer reaches an n-th
 * allocation.  That is systematic fault injection through
 * /proc/thread-self/fail-nth (Documentation/fault-injection/
 * fault-injection.rst): only this thread's own syscall fails, nothing else in
 * the guest.  kmalloc (failslab) and page allocations (fail_page_alloc) both
 * count, including GFP_KERNEL ones (ignore-gfp-wait=N, min-order=0).
 *
 * After every injected failure the operation must have
 *   - returned -1 with its documented errno (ENOMEM; a pipe also ENFILE);
 *   - posted nothing (a failed key operation sends no record);
 *   - left the objects usable: the same operation without a fault succeeds
 *     and a post then arrives as one well-formed record.
 * Leaks on the error paths are for kmemleak, scanned after this program
 * (userspace/check/kmemleak.sh).  Output is KTAP; exit status 1 on a failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wq.h"

#define MAX_POINTS	256	/* allocations tried per operation, at most */
#define NOTES		32



static int nth_fd = -1;
static char diag[512];

static int fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(diag, sizeof(diag), fmt, ap);
	va_end(ap);
	return -1;
}

/* The set-up of one operation, made without faults; the operation itself. */
struct fixture {
	int q[2];
	int32_t key;
	int32_t ring;
	int fresh[2];	/* what op_pipe made */
	struct watch_notification_filter *filter;
};

static int write_knob(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, value, strlen(value));
	close(fd);
	return n < 0 ? -1 : 0;
}

/* Arm: the n-th allocation from here on fails. */
static int arm(unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	return pwrite(nth_fd, buf, len, 0) == len ? 0 : -1;
}

/* Disarm; returns 1 if the armed failure was injected, 0 if not, -1. */
static int disarm(void)
{
	char buf[16] = "";
	ssize_t n = pread(nth_fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (pwrite(nth_fd, "0", 1, 0) != 1)
		return -1;
	return strtoul(buf, NULL, 10) == 0;
}

static int drain(int fd, unsigned char *buf, size_t len)
{
	ssize_t n = read(fd, buf, len);

	if (n < 0 && errno == EAGAIN)
		return 0;
	return (int)n;
}

/* Exactly one key record of @subtype for @key within @ms, else a diagnosis. */
static int expect_record(struct fixture *f, int subtype, int32_t key, int ms)
{
	unsigned char buf[WQ_NOTE_SIZE * 4];
	struct pollfd p = { .fd = f->q[0], .events = POLLIN };
	struct key_notification *k = (void *)buf;
	int n, len;

	if (poll(&p, 1, ms) <= 0)
		return fail("no record within %d ms", ms);
	n = drain(f->q[0], buf, sizeof(buf));
	if (n < (int)sizeof(*k))
		return fail("read returned %d (%s)", n, wq_errname(errno));
	len = k->watch.info & WATCH_INFO_LENGTH;
	if (len != (int)sizeof(*k) || n != len)
		return fail("read %d bytes, record length %d: expected one "
			    "%zu-byte record", n, len, sizeof(*k));
	if (k->watch.type != WATCH_TYPE_KEY_NOTIFY ||
	    k->watch.subtype != subtype || (int32_t)k->key_id != key)
		return fail("record type %u subtype %u key %d, expected key "
			    "subtype %d for %d", k->watch.type,
			    k->watch.subtype, k->key_id, subtype, key);
	return 0;
}

static int expect_nothing(struct fixture *f)
{
	unsigned char buf[WQ_NOTE_SIZE];
	int n = drain(f->q[0], buf, sizeof(buf));

	if (n > 0)
		return fail("%d bytes of records after a failed operation "
			    "(first word %#x)", n, *(uint32_t *)buf);
	return 0;
}

static int setup_queue(struct fixture *f, int sized)
{
	if (pipe2(f->q, O_NOTIFICATION_PIPE | O_NONBLOCK | O_CLOEXEC) < 0)
		return fail("pipe2(O_NOTIFICATION_PIPE): %s", wq_errname(errno));
	if (sized && ioctl(f->q[0], IOC_WATCH_QUEUE_SET_SIZE, NOTES) < 0)
		return fail("SET_SIZE: %s", wq_errname(errno));
	return 0;
}

static int setup_key(struct fixture *f)
{
	f->key = wq_add_key("user", "wq-faults", "x", 1,
			    KEY_SPEC_SESSION_KEYRING);
	f->ring = wq_add_key("keyring", "wq-faults-ring", NULL, 0,
			     KEY_SPEC_SESSION_KEYRING);
	if (f->key < 0 || f->ring < 0)
		return fail("add_key: %s", wq_errname(errno));
	return 0;
}

static int setup_sized(struct fixture *f)
{
	return setup_queue(f, 1) || setup_key(f);
}

static int setup_unsized(struct fixture *f)
{
	return setup_queue(f, 0) || setup_key(f);
}

static void teardown(struct fixture *f)
{
	free(f->filter);
	f->filter = NULL;
	if (f->q[0] >= 0) {
		close(f->q[0]);
		close(f->q[1]);
	}
	if (f->fresh[0] >= 0) {
		close(f->fresh[0]);
		close(f->fresh[1]);
	}
	if (f->key > 0)
		wq_keyctl(KEYCTL_UNLINK, f->key, KEY_SPEC_SESSION_KEYRING, 0, 0);
	if (f->ring > 0)
		wq_keyctl(KEYCTL_UNLINK, f->ring, KEY_SPEC_SESSION_KEYRING, 0,
			  0);
}

/* ---- the operations: each is one syscall, run armed -------------------- */

static long op_pipe(struct fixture *f)
{
	return pipe2(f->fresh, O_NOTIFICATION_PIPE | O_NONBLOCK);
}

static long op_set_size(struct fixture *f)
{
	return ioctl(f->q[0], IOC_WATCH_QUEUE_SET_SIZE, NOTES);
}

static long op_set_filter(struct fixture *f)
{
	return ioctl(f->q[0], IOC_WATCH_QUEUE_SET_FILTER, f->filter);
}

static long op_watch(struct fixture *f)
{
	return wq_watch_key(f->key, f->q[0], 1);
}

static long op_update(struct fixture *f)
{
	return wq_keyctl(KEYCTL_UPDATE, f->key, (unsigned long)"yy", 2, 0);
}

static long op_link(struct fixture *f)
{
	return wq_keyctl(KEYCTL_LINK, f->key, f->ring, 0, 0);
}

static long op_unlink(struct fixture *f)
{
	return wq_keyctl(KEYCTL_UNLINK, f->key, f->ring, 0, 0);
}

/* ---- what each operation needs before, and must give after ------------- */

static int setup_watched(struct fixture *f)
{
	if (setup_sized(f))
		return -1;
	if (op_watch(f) < 0 || wq_watch_key(f->ring, f->q[0], 2) < 0)
		return fail("KEYCTL_WATCH_KEY: %s", wq_errname(errno));
	return 0;
}

static int setup_pipe_op(struct fixture *f)
{
	(void)f;	/* pipe2 needs nothing */
	return 0;
}

static int after_pipe(struct fixture *f, int ok)
{
	if (!ok)
		return 0;
	/* The new pipe is a working notification pipe (teardown closes it). */
	if (ioctl(f->fresh[0], IOC_WATCH_QUEUE_SET_SIZE, NOTES) < 0)
		return fail("SET_SIZE on the new pipe: %s", wq_errname(errno));
	return 0;
}

static int after_set_size(struct fixture *f, int ok)
{
	if (!ok && op_set_size(f) < 0)
		return fail("SET_SIZE after the failed one: %s, expected "
			    "success (the queue must stay unconfigured)",
			    wq_errname(errno));
	if (op_watch(f) < 0)
		return fail("KEYCTL_WATCH_KEY: %s", wq_errname(errno));
	if (op_update(f) < 0)
		return fail("KEYCTL_UPDATE: %s", wq_errname(errno));
	return expect_record(f, NOTIFY_KEY_UPDATED, f->key, 2000);
}

static int setup_filter_op(struct fixture *f)
{
	struct watch_notification_filter *wf;

	if (setup_sized(f))
		return -1;
	wf = calloc(1, sizeof(*wf) + 2 * sizeof(wf->filters[0]));
	if (!wf)
		return fail("calloc");
	wf->nr_filters = 2;
	wf->filters[0].type = WATCH_TYPE_KEY_NOTIFY;
	wf->filters[0].subtype_filter[0] = 1U << NOTIFY_KEY_UPDATED;
	wf->filters[1].type = WATCH_TYPE_META;
	wf->filters[1].subtype_filter[0] = ~0U;
	f->filter = wf;
	if (op_watch(f) < 0)
		return fail("KEYCTL_WATCH_KEY: %s", wq_errname(errno));
	return 0;
}

static int after_set_filter(struct fixture *f, int ok)
{
	if (!ok && op_set_filter(f) < 0)
		return fail("SET_FILTER after the failed one: %s",
			    wq_errname(errno));
	/* The filter passes updates and holds back setattr. */
	if (wq_keyctl(KEYCTL_SETPERM, f->key, WQ_KEY_PERM, 0, 0) < 0 ||
	    op_update(f) < 0)
		return fail("SETPERM/UPDATE: %s", wq_errname(errno));
	return expect_record(f, NOTIFY_KEY_UPDATED, f->key, 2000);
}

static int after_watch(struct fixture *f, int ok)
{
	if (!ok) {
		if (op_update(f) < 0)
			return fail("KEYCTL_UPDATE: %s", wq_errname(errno));
		if (expect_nothing(f))
			return -1;	/* no watch was made */
		if (op_watch(f) < 0)
			return fail("KEYCTL_WATCH_KEY after the failed one: "
				    "%s", wq_errname(errno));
	}
	if (op_update(f) < 0)
		return fail("KEYCTL_UPDATE: %s", wq_errname(errno));
	return expect_record(f, NOTIFY_KEY_UPDATED, f->key, 2000);
}

static int after_post(struct fixture *f, int ok, long (*op)(struct fixture *),
		      int subtype, int32_t key)
{
	if (!ok) {
		if (expect_nothing(f))
			return -1;
		if (op(f) < 0)
			return fail("the operation after the failed one: %s",
				    wq_errname(errno));
	}
	return expect_record(f, subtype, key, 2000);
}

static int after_update(struct fixture *f, int ok)
{
	return after_post(f, ok, op_update, NOTIFY_KEY_UPDATED, f->key);
}

static int after_link(struct fixture *f, int ok)
{
	return after_post(f, ok, op_link, NOTIFY_KEY_LINKED, f->ring);
}

static int setup_linked(struct fixture *f)
{
	unsigned char buf[WQ_NOTE_SIZE * 4];

	if (setup_watched(f))
		return -1;
	if (op_link(f) < 0)
		return fail("KEYCTL_LINK: %s", wq_errname(errno));
	while (drain(f->q[0], buf, sizeof(buf)) > 0)
		;
	return 0;
}

static int after_unlink(struct fixture *f, int ok)
{
	return after_post(f, ok, op_unlink, NOTIFY_KEY_UNLINKED, f->ring);
}

struct test {
	const char *name;
	int (*setup)(struct fixture *f);
	long (*op)(struct fixture *f);
	int (*after)(struct fixture *f, int ok);
	int errs[3];	/* the documented errnos of an allocation failure */
};

static const struct test tests[] = {
	{ "pipe2_notification", setup_pipe_op, op_pipe, after_pipe,
	  { ENOMEM, ENFILE } },
	{ "set_size", setup_unsized, op_set_size, after_set_size, { ENOMEM } },
	{ "set_filter", setup_filter_op, op_set_filter, after_set_filter,
	  { ENOMEM } },
	{ "watch_key", setup_sized, op_watch, after_watch, { ENOMEM } },
	{ "update_posts", setup_watched, op_update, after_update, { ENOMEM } },
	{ "link_posts", setup_watched, op_link, after_link, { ENOMEM } },
	{ "unlink_posts", setup_linked, op_unlink, after_unlink, { ENOMEM } },
};

static int documented(const struct test *t, int err)
{
	size_t i;

	for (i = 0; i < WQ_ARRAY_SIZE(t->errs) && t->errs[i]; i++)
		if (t->errs[i] == err)
			return 1;
	return 0;
}

/* One operation, its n-th allocation failed for every n it reaches. */
static int run_test(const struct test *t, int *points, int *failed)
{
	unsigned int n;

	*points = *failed = 0;
	for (n = 1; n <= MAX_POINTS; n++) {
		struct fixture f = { .q = { -1, -1 }, .fresh = { -1, -1 } };
		int injected, err, ret;
		long r;

		if (t->setup(&f)) {
			teardown(&f);
			return -1;
		}
		if (arm(n) < 0) {
			teardown(&f);
			return fail("writing fail-nth: %s", wq_errname(errno));
		}
		r = t->op(&f);
		err = errno;
		injected = disarm();
		if (injected < 0) {
			teardown(&f);
			return fail("reading fail-nth: %s", wq_errname(errno));
		}
		ret = 0;
		if (r < 0 && !injected)
			ret = fail("without a fault it failed: %s",
				   wq_errname(err));
		else if (r < 0 && !documented(t, err))
			ret = fail("allocation %u failed: errno %s, not a "
				   "documented one", n, wq_errname(err));
		if (!ret)
			ret = t->after(&f, r >= 0);
		if (ret && r < 0 && injected) {
			char said[sizeof(diag)];

			memcpy(said, diag, sizeof(said));
			fail("after allocation %u failed (%s): %.400s", n,
			     wq_errname(err), said);
		}
		teardown(&f);
		if (ret)
			return -1;
		if (!injected)
			return 0;	/* no n-th allocation: all were tried */
		(*points)++;
		*failed += r < 0;
	}
	return fail("more than %d allocations", MAX_POINTS);
}

static const char *knobs[][2] = {
	{ "/sys/kernel/debug/failslab/ignore-gfp-wait", "N" },
	{ "/sys/kernel/debug/failslab/verbose", "0" },
	{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "N" },
	{ "/sys/kernel/debug/fail_page_alloc/min-order", "0" },
	{ "/sys/kernel/debug/fail_page_alloc/verbose", "0" },
};

int main(int argc, char **argv)
{
	size_t i;
	int nfail = 0;

	wq_prog = "wq-faults";
	if (argc > 1) {
		fprintf(argc == 2 && !strcmp(argv[1], "--help") ? stdout : stderr,
			"usage: %s\nFails each allocation of the watch_queue "
			"syscalls in turn (fail-nth); prints KTAP.\n", wq_prog);
		return argc == 2 && !strcmp(argv[1], "--help") ?
			WQ_EXIT_OK : WQ_EXIT_USAGE;
	}
	if (wq_ktap_begin() < 0)
		return WQ_EXIT_OK;
	nth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
	if (nth_fd < 0) {
		printf("1..0 # SKIP no /proc/thread-self/fail-nth (%s): kernel "
		       "built without CONFIG_FAULT_INJECTION\n",
		       wq_errname(errno));
		return WQ_EXIT_OK;
	}
	for (i = 0; i < WQ_ARRAY_SIZE(knobs); i++) {
		if (write_knob(knobs[i][0], knobs[i][1]) < 0) {
			printf("1..0 # SKIP cannot write %s (%s): needs "
			       "CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC, "
			       "CONFIG_FAULT_INJECTION_DEBUG_FS and debugfs\n",
			       knobs[i][0], wq_errname(errno));
			return WQ_EXIT_OK;
		}
	}
	printf("1..%zu\n", WQ_ARRAY_SIZE(tests));
	for (i = 0; i < WQ_ARRAY_SIZE(tests); i++) {
		int points, failed;

		diag[0] = '\0';
		if (run_test(&tests[i], &points, &failed) < 0) {
			printf("# %s: %s\n", tests[i].name, diag);
			printf("not ok %zu %s\n", i + 1, tests[i].name);
			nfail++;
			continue;
		}
		printf("ok %zu %s # %d allocations failed in turn, %d of them "
		       "failed the call\n", i + 1, tests[i].name, points,
		       failed);
	}
	printf("# totals: pass:%zu fail:%d skip:0\n",
	       WQ_ARRAY_SIZE(tests) - nfail, nfail);
	return nfail ? WQ_EXIT_FAIL : WQ_EXIT_OK;
}
