// SPDX-License-Identifier: GPL-2.0
/*
 * wq-overflow - posting into a full notification queue.
 *
 * A queue watching the session keyring is filled with keyctl(KEYCTL_SETPERM)
 * records (untimed, until a post no longer grows the pipe), then the timed
 * posts all take the loss path.  Afterwards the queue is drained and the key
 * records are counted: loss records coalesce (one per run of lost records,
 * at most one per read), so the figures that matter are posted vs delivered,
 * and the loss records are only reported as a total.
 *
 * The primary figure is ns_per_op, the cost of a post that finds every
 * queue full: that path is what this benchmark exists for.  delivered_ratio
 * is fixed by construction (capacity over all posts) and only shows that the
 * queues really were full.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wq.h"

static struct wq_opts opt = {
	.has = WQ_OPT_QUEUES | WQ_OPT_CPU,
	.max_count = 100000000,
	.iterations = 10000, .warmup = 100, .repeats = 3,
	.queues = { 1 }, .nqueues = 1,
	.cpu = 0,
};

/* This program's own option: the queue sizes. */
static struct {
	long sizes[WQ_MAX_LIST];
	int nsizes;
} xopt = {
	.sizes = { 32, 256, 512 }, .nsizes = 3,
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [options]\n"
		"Time keyctl(KEYCTL_SETPERM) posts into full notification queues and\n"
		"print one JSON record per measurement (bench/RECORDS.md).\n\n"
		"  --iterations N    timed posts into the full queues (default 10000)\n"
		"  --warmup N        untimed posts into the full queues (default 100)\n"
		"  --repeats N       measurements per configuration (default 3)\n"
		"  --queue-sizes L   notes per queue, 1..512 (default 32,256,512)\n"
		"  --queues LIST     watching queues, 1..16 (default 1)\n"
		"  --cpu N           pin to CPU N, -1: unpinned (default 0)\n"
		"  --help\n", wq_prog);
}

static void parse_own(int val, const char *arg)
{
	(void)val;	/* 's' */
	xopt.nsizes = wq_parse_list_arg("queue-sizes", arg, xopt.sizes, 1,
					WQ_MAX_NOTES);
}

static void parse_args(int argc, char **argv)
{
	static const struct option own[] = {
		{ "queue-sizes", required_argument, NULL, 's' },
		{ "sizes", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 }
	};

	wq_parse_opts(&opt, argc, argv, own, parse_own, usage);
}

static void base_record(struct wq_record *r, long size, int nq)
{
	wq_rec_init(r, "overflow", "c");
	wq_param_str(r, "case", "full");
	wq_param_int(r, "queue_size", size);
	wq_param_int(r, "queues", nq);
	wq_param_int(r, "record_size", (long long)sizeof(struct key_notification));
}

static long queued_records(const int (*q)[2], int nq)
{
	long sum = 0;
	int i;

	for (i = 0; i < nq; i++)
		sum += wq_pipe_bytes(q[i][0]) /
		       (long)sizeof(struct key_notification);
	return sum;
}

static void measure(long size, int nq, int rep)
{
	struct wq_record r;
	struct wq_tally t = { 0 };
	int q[16][2], opened = 0, i, err;
	long fill = 0, before, after, capacity;
	uint64_t t0, t1;
	long long posts, posted, delivered;
	char why[256] = "";

	base_record(&r, size, nq);
	wq_rec_run(&r, &opt, rep);

	if (wq_open_queues(q, nq, (unsigned int)size, NULL, 1, why,
			   sizeof(why)) < 0)
		goto fail;
	opened = nq;

	/* Fill: post until a post no longer adds a record anywhere. */
	before = queued_records((const int (*)[2])q, nq);
	for (;;) {
		if (wq_post_setperm() < 0)
			goto post_fail;
		fill++;
		after = queued_records((const int (*)[2])q, nq);
		if (after == before)
			break;
		before = after;
		if (fill > WQ_MAX_NOTES * 2) {
			snprintf(why, sizeof(why),
				 "queue did not fill after %ld posts", fill);
			goto fail;
		}
	}
	capacity = after / nq;

	wq_settle();
	for (i = 0; i < opt.warmup; i++)
		if (wq_post_setperm() < 0)
			goto post_fail;
	t0 = wq_now_ns();
	wq_roi_begin();
	for (i = 0; i < opt.iterations; i++)
		if (wq_post_setperm() < 0)
			break;
	wq_roi_end();
	if (i < opt.iterations)
		goto post_fail;
	t1 = wq_now_ns();

	for (i = 0; i < nq; i++) {
		err = wq_drain(q[i][0], &t);
		if (err) {
			snprintf(why, sizeof(why), "read: %s", wq_errname(-err));
			goto fail;
		}
	}
	posts = fill + opt.warmup + opt.iterations;
	posted = posts * nq;
	delivered = (long long)t.key;
	if (delivered != after || t.bad) {
		snprintf(why, sizeof(why),
			 "queues held %ld records but %lld were read (%llu malformed)",
			 after, delivered, (unsigned long long)t.bad);
		goto fail;
	}
	if (!t.loss) {
		snprintf(why, sizeof(why),
			 "%lld records lost but no loss record was read",
			 posted - delivered);
		goto fail;
	}
	wq_rec_timing(&r, t1 - t0, (uint64_t)opt.iterations);
	wq_total(&r, "posts", posts);
	wq_total(&r, "capacity", capacity);
	wq_total(&r, "loss_records", (long long)t.loss);
	wq_metric(&r, "delivered_ratio", (double)delivered / posted, "ratio",
		  "higher");
	wq_rec_delivery(&r, posted, delivered, 0);
	wq_rec_emit(&r);
	goto out;

post_fail:
	snprintf(why, sizeof(why), "keyctl(KEYCTL_SETPERM): %s",
		 wq_errname(errno));
fail:
	wq_rec_status(&r, "failed", why);
	wq_rec_emit(&r);
out:
	wq_close_queues(q, opened);
}

int main(int argc, char **argv)
{
	char why[256];
	int s, q, rep;

	wq_prog = "wq-overflow";
	parse_args(argc, argv);
	if (wq_probe_session(why, sizeof(why)) < 0) {
		for (s = 0; s < xopt.nsizes; s++)
			for (q = 0; q < opt.nqueues; q++) {
				struct wq_record r;

				base_record(&r, xopt.sizes[s],
					    (int)opt.queues[q]);
				wq_rec_run(&r, &opt, -1);
				wq_rec_status(&r, "skipped", why);
				wq_rec_emit(&r);
			}
		return WQ_EXIT_OK;
	}
	wq_pin_cpu(opt.cpu);
	for (s = 0; s < xopt.nsizes; s++)
		for (q = 0; q < opt.nqueues; q++) {
			for (rep = 0; rep < opt.repeats; rep++)
				measure(xopt.sizes[s], (int)opt.queues[q], rep);
			fprintf(stderr, "%s: queue_size=%ld queues=%ld done\n",
				wq_prog, xopt.sizes[s], opt.queues[q]);
		}
	return WQ_EXIT_OK;
}
