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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wq.h"

#define PERM	(KEY_POS_ALL | KEY_USR_ALL)

static struct {
	long iterations, warmup, repeats;
	long sizes[WQ_MAX_LIST];
	int nsizes;
	long queues[WQ_MAX_LIST];
	int nqueues;
	int cpu;
} opt = {
	.iterations = 10000, .warmup = 100, .repeats = 3,
	.sizes = { 32, 256, 512 }, .nsizes = 3,
	.queues = { 1 }, .nqueues = 1,
	.cpu = 0,
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

static void parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "iterations", required_argument, NULL, 'i' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "repeats", required_argument, NULL, 'r' },
		{ "queue-sizes", required_argument, NULL, 's' },
		{ "sizes", required_argument, NULL, 's' },
		{ "queues", required_argument, NULL, 'q' },
		{ "cpu", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'i':
			opt.iterations = wq_parse_num("iterations", optarg, 1,
						      100000000);
			break;
		case 'w':
			opt.warmup = wq_parse_num("warmup", optarg, 0,
						  100000000);
			break;
		case 'r':
			opt.repeats = wq_parse_num("repeats", optarg, 1, 1000);
			break;
		case 's':
			opt.nsizes = wq_parse_list(optarg, opt.sizes,
						   WQ_MAX_LIST, 1, WQ_MAX_NOTES);
			if (opt.nsizes <= 0)
				goto bad;
			break;
		case 'q':
			opt.nqueues = wq_parse_list(optarg, opt.queues,
						    WQ_MAX_LIST, 1, 16);
			if (opt.nqueues <= 0)
				goto bad;
			break;
		case 'C':
			opt.cpu = (int)wq_parse_num("cpu", optarg, -1, 4095);
			break;
		case 'h':
			usage(stdout);
			exit(WQ_EXIT_OK);
		default:
			usage(stderr);
			exit(WQ_EXIT_USAGE);
		}
	}
	if (optind == argc)
		return;
bad:
	fprintf(stderr, "%s: bad arguments\n", wq_prog);
	usage(stderr);
	exit(WQ_EXIT_USAGE);
}

static void base_record(struct wq_record *r, long size, int nq)
{
	wq_rec_init(r, "overflow", "c");
	wq_param_str(r, "case", "full");
	wq_param_int(r, "queue_size", size);
	wq_param_int(r, "queues", nq);
	wq_param_int(r, "record_size", (long long)sizeof(struct key_notification));
}

static int post(void)
{
	return (int)wq_keyctl(KEYCTL_SETPERM,
			      (unsigned long)(long)KEY_SPEC_SESSION_KEYRING,
			      PERM, 0, 0);
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
	int q[16][2], opened, i, err;
	long fill = 0, before, after, capacity;
	uint64_t t0, t1;
	long long posts, posted, delivered;
	char why[256] = "";

	base_record(&r, size, nq);
	r.repeat = rep;
	r.iterations = opt.iterations;
	r.warmup = opt.warmup;

	for (opened = 0; opened < nq; opened++) {
		if (wq_open_queue(q[opened], (unsigned int)size, 1, why,
				  sizeof(why)) < 0)
			goto fail;
		if (wq_watch_key(KEY_SPEC_SESSION_KEYRING, q[opened][0],
				 opened) < 0) {
			snprintf(why, sizeof(why), "keyctl(KEYCTL_WATCH_KEY): %s",
				 wq_errname(errno));
			opened++;
			goto fail;
		}
	}

	/* Fill: post until a post no longer adds a record anywhere. */
	before = queued_records((const int (*)[2])q, nq);
	for (;;) {
		if (post() < 0)
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

	for (i = 0; i < opt.warmup; i++)
		if (post() < 0)
			goto post_fail;
	t0 = wq_now_ns();
	for (i = 0; i < opt.iterations; i++)
		if (post() < 0)
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
	wq_count(&r, "posted", posted);
	wq_count(&r, "delivered", delivered);
	wq_count(&r, "lost", posted - delivered);
	wq_rec_emit(&r);
	goto out;

post_fail:
	snprintf(why, sizeof(why), "keyctl(KEYCTL_SETPERM): %s",
		 wq_errname(errno));
fail:
	wq_rec_status(&r, "failed", why);
	wq_rec_emit(&r);
out:
	for (i = 0; i < opened; i++) {
		close(q[i][0]);
		close(q[i][1]);
	}
}

static int probe(char *why, size_t whylen)
{
	if (wq_probe(0, why, whylen) < 0)
		return -1;
	if (wq_keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0, 0) < 0) {
		snprintf(why, whylen, "keyctl(KEYCTL_JOIN_SESSION_KEYRING): %s",
			 wq_errname(errno));
		return -1;
	}
	return wq_probe(1, why, whylen);
}

int main(int argc, char **argv)
{
	char why[256];
	int s, q, rep;

	wq_prog = "wq-overflow";
	parse_args(argc, argv);
	if (probe(why, sizeof(why)) < 0) {
		for (s = 0; s < opt.nsizes; s++)
			for (q = 0; q < opt.nqueues; q++) {
				struct wq_record r;

				base_record(&r, opt.sizes[s], (int)opt.queues[q]);
				r.iterations = opt.iterations;
				r.warmup = opt.warmup;
				wq_rec_status(&r, "skipped", why);
				wq_rec_emit(&r);
			}
		return WQ_EXIT_OK;
	}
	wq_pin_cpu(opt.cpu);
	for (s = 0; s < opt.nsizes; s++)
		for (q = 0; q < opt.nqueues; q++) {
			for (rep = 0; rep < opt.repeats; rep++)
				measure(opt.sizes[s], (int)opt.queues[q], rep);
			fprintf(stderr, "%s: queue_size=%ld queues=%ld done\n",
				wq_prog, opt.sizes[s], opt.queues[q]);
		}
	return WQ_EXIT_OK;
}
