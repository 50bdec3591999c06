// SPDX-License-Identifier: GPL-2.0
/*
 * wq-keyctl-post - cost of a key notification as seen by the poster.
 *
 * The loop is keyctl(KEYCTL_SETPERM, KEY_SPEC_SESSION_KEYRING, perm): it
 * posts one NOTIFY_KEY_SETATTR record per call into every queue watching the
 * session keyring, and the special id avoids a key lookup.  Cases:
 *
 *   baseline  the same loop with no watch
 *   stream    1..N queues watch the keyring and a reader thread on another
 *             CPU drains them, with credit-based flow control: a post is
 *             only made while every queue has room (posted - delivered <
 *             queue size), else the poster sleeps until the reader has read.
 *             Every post is delivered, and that is checked: a lost record
 *             or a loss record makes the row "failed".  This is the cost of
 *             a delivered notification, the headline figure.
 *   overflow  the same queues and reader without flow control (open loop;
 *             "watched" is accepted as an old name).  The poster outruns
 *             the reader, so after the first queue-full of records nearly
 *             every post takes the queue-full (loss) path: this times that
 *             path, not delivery; delivered_ratio says how much got through.
 *   filtered  open loop, and every queue's filter rejects the record, so
 *             nothing is queued: the cost of the filter path.
 *
 * Under QEMU -icount both vCPUs advance one virtual clock, so the stream
 * figure includes the reader's work (the poster sleeps while the reader
 * reads); with KVM the two overlap.  In the overflow case the reader hardly
 * runs within the timed loop under icount (the poster's vCPU keeps the host
 * thread until the next timer event), so it delivers about one queue-full.
 *
 * The program joins a fresh anonymous session keyring first, so it never
 * touches the keyring of whoever started it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "wq.h"

/* The cases, in run order. */
static const char *const all_cases[] = {
	"baseline", "stream", "overflow", "filtered"
};

/* What --cases accepts: the cases and the old name of "overflow". */
static const char *const case_names[] = {
	"baseline", "stream", "overflow", "filtered", "watched"
};

static struct wq_opts opt = {
	.has = WQ_OPT_CASES | WQ_OPT_QUEUES | WQ_OPT_QUEUE_SIZE,
	.max_count = 100000000, .min_queue_size = 1,
	.case_names = case_names, .ncase_names = WQ_ARRAY_SIZE(case_names),
	.iterations = 20000, .warmup = 1000, .repeats = 3, .queue_size = 256,
	.queues = { 1, 2, 4 }, .nqueues = 3,
	.cases = "baseline,stream,overflow,filtered",
};

/* This program's own options. */
static struct {
	int poster_cpu, reader_cpu;
} xopt = { .poster_cpu = 0, .reader_cpu = 1 };

struct reader {
	pthread_t	thread;
	int		nq;
	int		fds[16];
	int		cpu;
	int		stop;			/* atomic */
	uint64_t	epoch;			/* atomic: loops completed */
	uint64_t	delivered[16];		/* atomic: key records */
	uint64_t	loss;			/* atomic: loss records */
	uint32_t	progress;		/* futex: bumped after reads */
	int		waiting;		/* atomic: poster sleeps on it */
	uint64_t	bad;
	int		err;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [options]\n"
		"Time keyctl(KEYCTL_SETPERM) on a watched session keyring and print one\n"
		"JSON record per measurement (bench/RECORDS.md).\n\n"
		"  --iterations N   timed keyctl calls per measurement (default 20000)\n"
		"  --warmup N       untimed calls before each measurement (default 1000)\n"
		"  --repeats N      measurements per configuration (default 3)\n"
		"  --cases LIST     baseline,stream,overflow,filtered (default all;\n"
		"                   watched = overflow)\n"
		"  --queues LIST    watching queues, 1..16 (default 1,2,4)\n"
		"  --queue-size N   notes per queue, 1..512 (default 256)\n"
		"  --poster-cpu N   CPU of the posting thread, -1: unpinned (default 0)\n"
		"  --reader-cpu N   CPU of the reader thread, -1: unpinned (default 1)\n"
		"  --help\n", wq_prog);
}

static void parse_own(int val, const char *arg)
{
	if (val == 'P')
		xopt.poster_cpu = (int)wq_parse_num("poster-cpu", arg, -1,
						    4095);
	else
		xopt.reader_cpu = (int)wq_parse_num("reader-cpu", arg, -1,
						    4095);
}

static void parse_args(int argc, char **argv)
{
	static const struct option own[] = {
		{ "poster-cpu", required_argument, NULL, 'P' },
		{ "reader-cpu", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 }
	};

	wq_parse_opts(&opt, argc, argv, own, parse_own, usage);
}

/* ---- reader thread ------------------------------------------------------ */

static void futex_wait_ms(uint32_t *word, uint32_t val, long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

static void futex_wake_one(uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void reader_drain(struct reader *rd, int i)
{
	struct wq_tally t = { 0 };
	int err = wq_drain(rd->fds[i], &t);

	if (err && !rd->err)
		rd->err = -err;
	__atomic_fetch_add(&rd->delivered[i], t.key, __ATOMIC_RELEASE);
	__atomic_fetch_add(&rd->loss, t.loss, __ATOMIC_RELEASE);
	rd->bad += t.bad;
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct pollfd pfd[16];
	int i;

	wq_pin_cpu(rd->cpu);
	for (i = 0; i < rd->nq; i++) {
		pfd[i].fd = rd->fds[i];
		pfd[i].events = POLLIN;
	}
	while (!__atomic_load_n(&rd->stop, __ATOMIC_ACQUIRE)) {
		if (poll(pfd, (nfds_t)rd->nq, 5) > 0) {
			for (i = 0; i < rd->nq; i++)
				if (pfd[i].revents & POLLIN)
					reader_drain(rd, i);
			/* Pairs with the fence in wait_credit(). */
			__atomic_fetch_add(&rd->progress, 1, __ATOMIC_SEQ_CST);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (__atomic_load_n(&rd->waiting, __ATOMIC_SEQ_CST))
				futex_wake_one(&rd->progress);
		}
		__atomic_fetch_add(&rd->epoch, 1, __ATOMIC_RELEASE);
	}
	/* Everything posted is in the pipes by now: take it all. */
	for (i = 0; i < rd->nq; i++)
		reader_drain(rd, i);
	return NULL;
}

static uint64_t reader_sum(struct reader *rd)
{
	uint64_t s = 0;
	int i;

	for (i = 0; i < rd->nq; i++)
		s += __atomic_load_n(&rd->delivered[i], __ATOMIC_ACQUIRE);
	return s;
}

static uint64_t reader_min(struct reader *rd)
{
	uint64_t m = UINT64_MAX;
	int i;

	for (i = 0; i < rd->nq; i++) {
		uint64_t d = __atomic_load_n(&rd->delivered[i],
					     __ATOMIC_ACQUIRE);
		if (d < m)
			m = d;
	}
	return m;
}

/*
 * Wait until the pipes are empty and the reader has counted what it read.
 * Sleeps rather than spins: under icount a spinning vCPU keeps the host
 * thread until the next timer event and the reader's vCPU does not run.
 */
static void reader_settle(struct reader *rd)
{
	uint64_t e;
	int i, busy;

	do {
		busy = 0;
		for (i = 0; i < rd->nq; i++)
			if (wq_pipe_bytes(rd->fds[i]) > 0)
				busy = 1;
		if (busy)
			usleep(100);
	} while (busy);
	e = __atomic_load_n(&rd->epoch, __ATOMIC_ACQUIRE);
	while (__atomic_load_n(&rd->epoch, __ATOMIC_ACQUIRE) < e + 2)
		usleep(100);
}

/* ---- measurement -------------------------------------------------------- */

static int has_credit(struct reader *rd, uint64_t posted)
{
	return posted - reader_min(rd) < (uint64_t)opt.queue_size;
}

/*
 * Sleep until every queue has room again.  Blocking, not spinning: a
 * spinning poster would, under icount, hold off the reader's vCPU until the
 * next timer tick, and the figure would count ticks (38-56 us per post
 * were measured so), not posts.
 * The timeout only guards against a lost wake-up.
 */
static void wait_credit(struct reader *rd, uint64_t posted)
{
	while (!has_credit(rd, posted)) {
		uint32_t v = __atomic_load_n(&rd->progress, __ATOMIC_ACQUIRE);

		__atomic_store_n(&rd->waiting, 1, __ATOMIC_SEQ_CST);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (has_credit(rd, posted))
			break;
		futex_wait_ms(&rd->progress, v, 10);
	}
	__atomic_store_n(&rd->waiting, 0, __ATOMIC_SEQ_CST);
}

static int post_loop(long n, int credit, struct reader *rd,
		     uint64_t *posted_total)
{
	long i;

	for (i = 0; i < n; i++) {
		if (credit && !has_credit(rd, *posted_total))
			wait_credit(rd, *posted_total);
		if (wq_post_setperm() < 0)
			return -errno;
		(*posted_total)++;
	}
	return 0;
}

static void base_record(struct wq_record *r, const char *cs, int nq,
			const char *reader)
{
	wq_rec_init(r, "keyctl-post", "c");
	wq_param_str(r, "case", cs);
	wq_param_int(r, "queues", nq);
	wq_param_str(r, "filter", strcmp(cs, "filtered") ? "none" : "reject");
	wq_param_str(r, "reader", reader);
	wq_param_str(r, "flow", strcmp(cs, "stream") ? "open" : "credit");
	wq_param_int(r, "queue_size", nq ? opt.queue_size : 0);
	wq_param_int(r, "record_size", (long long)sizeof(struct key_notification));
}

static const char *reader_kind(const char *cs)
{
	if (!strcmp(cs, "baseline"))
		return "none";
	if (xopt.reader_cpu < 0 || xopt.poster_cpu < 0)
		return "unpinned";
	return xopt.reader_cpu == xopt.poster_cpu ? "same-cpu" : "other-cpu";
}

static void measure(const char *cs, int nq, int rep)
{
	struct reader rd;
	struct wq_record r;
	/* Accept only revocations: SETATTR is rejected. */
	static const struct watch_notification_type_filter reject = {
		.type = WATCH_TYPE_KEY_NOTIFY,
		.subtype_filter = { 1u << NOTIFY_KEY_REVOKED },
	};
	int q[16][2], opened = 0, i, err, started = 0;
	int filtered = !strcmp(cs, "filtered");
	int stream = !strcmp(cs, "stream");
	uint64_t t0, t1, posted_total = 0, d0 = 0, l0 = 0;
	long long offered, delivered;
	char why[256] = "";

	base_record(&r, cs, nq, reader_kind(cs));
	wq_rec_run(&r, &opt, rep);
	memset(&rd, 0, sizeof(rd));

	if (wq_open_queues(q, nq, (unsigned int)opt.queue_size,
			   filtered ? &reject : NULL, 1, why, sizeof(why)) < 0)
		goto fail;
	opened = nq;
	for (i = 0; i < nq; i++)
		rd.fds[i] = q[i][0];
	rd.nq = nq;
	rd.cpu = xopt.reader_cpu;
	if (nq) {
		err = pthread_create(&rd.thread, NULL, reader_main, &rd);
		if (err) {
			snprintf(why, sizeof(why), "pthread_create: %s",
				 wq_errname(err));
			goto fail;
		}
		started = 1;
	}

	wq_settle();
	err = post_loop(opt.warmup, stream, &rd, &posted_total);
	if (err)
		goto post_fail;
	if (nq) {
		reader_settle(&rd);
		d0 = reader_sum(&rd);
		l0 = __atomic_load_n(&rd.loss, __ATOMIC_ACQUIRE);
	}

	t0 = wq_now_ns();
	wq_roi_begin();
	err = post_loop(opt.iterations, stream, &rd, &posted_total);
	wq_roi_end();
	t1 = wq_now_ns();
	if (err)
		goto post_fail;

	if (started) {
		__atomic_store_n(&rd.stop, 1, __ATOMIC_RELEASE);
		pthread_join(rd.thread, NULL);
		started = 0;
		if (rd.err || rd.bad) {
			snprintf(why, sizeof(why),
				 "reader: %s, %llu malformed reads",
				 rd.err ? wq_errname(rd.err) : "ok",
				 (unsigned long long)rd.bad);
			goto fail;
		}
	}

	offered = (long long)opt.iterations * nq;
	delivered = (long long)(reader_sum(&rd) - d0);
	/* The stream figure is only the cost of delivery if all got through. */
	if (stream && (delivered != offered || rd.loss)) {
		snprintf(why, sizeof(why),
			 "stream: %lld of %lld records delivered, %llu loss records: not a delivery measurement",
			 delivered, offered, (unsigned long long)rd.loss);
		goto fail;
	}
	wq_rec_timing(&r, t1 - t0, (uint64_t)opt.iterations);
	wq_total(&r, "posts", opt.iterations);
	wq_total(&r, "loss_records", (long long)(rd.loss - l0));
	wq_rec_delivery(&r, offered, delivered, filtered);
	if (delivered > 0) {
		wq_metric(&r, "delivered_ratio", (double)delivered / offered,
			  "ratio", "higher");
		wq_metric(&r, "delivered_per_s",
			  (double)delivered * 1e9 / (double)(t1 - t0),
			  "record/s", "higher");
	}
	wq_rec_emit(&r);
	goto out;

post_fail:
	snprintf(why, sizeof(why), "keyctl(KEYCTL_SETPERM): %s",
		 wq_errname(-err));
fail:
	wq_rec_status(&r, "failed", why);
	wq_rec_emit(&r);
out:
	if (started) {
		__atomic_store_n(&rd.stop, 1, __ATOMIC_RELEASE);
		pthread_join(rd.thread, NULL);
	}
	wq_close_queues(q, opened);
}

static void for_each_config(const char *skip_reason)
{
	size_t c;
	int q, rep;

	for (c = 0; c < WQ_ARRAY_SIZE(all_cases); c++) {
		const char *cs = all_cases[c];

		if (!wq_list_has(opt.cases, cs) &&
		    !(!strcmp(cs, "overflow") &&
		      wq_list_has(opt.cases, "watched")))
			continue;
		for (q = 0; q < opt.nqueues; q++) {
			int nq = strcmp(cs, "baseline") ? (int)opt.queues[q] : 0;

			if (skip_reason) {
				struct wq_record r;

				base_record(&r, cs, nq, reader_kind(cs));
				wq_rec_run(&r, &opt, -1);
				wq_rec_status(&r, "skipped", skip_reason);
				wq_rec_emit(&r);
			} else {
				for (rep = 0; rep < opt.repeats; rep++)
					measure(cs, nq, rep);
				fprintf(stderr, "%s: %s queues=%d done\n",
					wq_prog, cs, nq);
			}
			if (!nq)
				break;	/* baseline has no queue dimension */
		}
	}
}

int main(int argc, char **argv)
{
	char why[256];

	wq_prog = "wq-keyctl-post";
	parse_args(argc, argv);
	if (xopt.reader_cpu >= wq_nr_cpus())
		xopt.reader_cpu = xopt.poster_cpu;

	/* Without notification pipes there is nothing to compare with. */
	if (wq_probe_session(why, sizeof(why)) < 0) {
		for_each_config(why);
		return WQ_EXIT_OK;
	}
	if (wq_pin_cpu(xopt.poster_cpu) < 0)
		fprintf(stderr, "%s: cannot pin to CPU %d\n", wq_prog,
			xopt.poster_cpu);
	for_each_config(NULL);
	return WQ_EXIT_OK;
}
