// SPDX-License-Identifier: GPL-2.0
/*
 * wq-kernel-post - drive the in-kernel post_watch_notification() benchmark
 * (CONFIG_WATCH_QUEUE_BENCH, patches/watch_queue-bench/) through
 * <debugfs>/watch_queue_bench/run and report its figures as "kernel-post"
 * records (source "kernel").
 *
 * Cases:
 *   free      the queues have room: posts go in batches of at most
 *             queue-size - 1 records and the queues are drained in between
 *   full      the kernel fills the queues first, every timed post is lost
 *   filtered  each queue has a filter that rejects the posted subtype
 *   none      the watch list has no watchers
 *
 * The primary figure is ns_per_record, the kernel time per record offered
 * (posts x queues): with several queues one post does the work once per
 * queue, so this is what compares across queue counts.  The "none" case
 * offers no record; its primary figure is ns_per_op.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wq.h"

#define DEFAULT_PATH	"/sys/kernel/debug/watch_queue_bench/run"

static const char *const all_cases[] = { "free", "full", "filtered", "none" };

static struct wq_opts opt = {
	.has = WQ_OPT_CASES | WQ_OPT_QUEUES | WQ_OPT_QUEUE_SIZE,
	.max_count = 10000000, .min_queue_size = 2,
	.case_names = all_cases, .ncase_names = WQ_ARRAY_SIZE(all_cases),
	.iterations = 10000, .warmup = 1000, .repeats = 3, .queue_size = 256,
	.queues = { 1, 2, 4 }, .nqueues = 3,
	.cases = "free,full,filtered,none",
};

/* This program's own options. */
static struct {
	long subtype;
	long lengths[WQ_MAX_LIST];
	int nlengths;
	const char *path;
} xopt = {
	.subtype = 7,
	.lengths = { 8, 16, 64, 127 }, .nlengths = 4,
	.path = DEFAULT_PATH,
};

struct kres {
	long long ns, posted, queues, offered, delivered, lost, prefilled;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [options]\n"
		"Drive the in-kernel watch_queue benchmark (CONFIG_WATCH_QUEUE_BENCH)\n"
		"and print one JSON record per measurement (bench/RECORDS.md).\n\n"
		"  --iterations N   timed posts per measurement (default 10000)\n"
		"  --warmup N       untimed posts before each measurement (default 1000)\n"
		"  --repeats N      measurements per configuration (default 3)\n"
		"  --cases LIST     free,full,filtered,none (default all)\n"
		"  --queues LIST    watching queues, 1..16 (default 1,2,4)\n"
		"  --lengths LIST   record lengths in bytes, 8..127 (default 8,16,64,127)\n"
		"  --queue-size N   notes per queue, 2..512 (default 256)\n"
		"  --subtype N      record subtype, 0..31 (default 7)\n"
		"  --debugfs PATH   control file (default " DEFAULT_PATH ")\n"
		"  --help\n", wq_prog);
}

static void parse_own(int val, const char *arg)
{
	switch (val) {
	case 'l':
		xopt.nlengths = wq_parse_list_arg("lengths", arg, xopt.lengths,
						  8, 127);
		break;
	case 's':
		xopt.subtype = wq_parse_num("subtype", arg, 0, 31);
		break;
	case 'p':
		xopt.path = arg;
		break;
	}
}

static void parse_args(int argc, char **argv)
{
	static const struct option own[] = {
		{ "lengths", required_argument, NULL, 'l' },
		{ "sizes", required_argument, NULL, 'l' },
		{ "subtype", required_argument, NULL, 's' },
		{ "debugfs", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 }
	};

	wq_parse_opts(&opt, argc, argv, own, parse_own, usage);
}

static void base_record(struct wq_record *r, const char *cs, int nq, int len)
{
	wq_rec_init(r, "kernel-post", "kernel");
	wq_param_str(r, "case", cs);
	wq_param_int(r, "queues", nq);
	wq_param_int(r, "len", len);
	wq_param_int(r, "subtype", xopt.subtype);
	wq_param_int(r, "queue_size", opt.queue_size);
	wq_param_str(r, "filter", strcmp(cs, "filtered") ? "none" : "reject");
}

/* Loop over the configurations; @fn(case, queues, len, arg). */
static void for_each_config(void (*fn)(const char *, int, int, void *),
			    void *arg)
{
	size_t c;
	int q, l;

	for (c = 0; c < WQ_ARRAY_SIZE(all_cases); c++) {
		const char *cs = all_cases[c];

		if (!wq_list_has(opt.cases, cs))
			continue;
		for (q = 0; q < opt.nqueues; q++) {
			int nq = strcmp(cs, "none") ? (int)opt.queues[q] : 0;

			for (l = 0; l < xopt.nlengths; l++)
				fn(cs, nq, (int)xopt.lengths[l], arg);
			if (!nq)
				break;	/* "none" has no queue dimension */
		}
	}
}

static void emit_skipped(const char *cs, int nq, int len, void *why)
{
	struct wq_record r;

	base_record(&r, cs, nq, len);
	wq_rec_run(&r, &opt, -1);
	wq_rec_status(&r, "skipped", why);
	wq_rec_emit(&r);
}

static int parse_result(const char *s, struct kres *k)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
		{ "ns", offsetof(struct kres, ns) },
		{ "posted", offsetof(struct kres, posted) },
		{ "queues", offsetof(struct kres, queues) },
		{ "offered", offsetof(struct kres, offered) },
		{ "delivered", offsetof(struct kres, delivered) },
		{ "lost", offsetof(struct kres, lost) },
		{ "prefilled", offsetof(struct kres, prefilled) },
	};
	int seen = 0;
	size_t i;

	memset(k, 0, sizeof(*k));
	for (i = 0; i < WQ_ARRAY_SIZE(keys); i++) {
		char pat[32];
		const char *p;

		snprintf(pat, sizeof(pat), " %s=", keys[i].key);
		p = strstr(s, pat);
		if (!p)
			continue;
		*(long long *)((char *)k + keys[i].off) =
			strtoll(p + strlen(pat), NULL, 10);
		seen++;
	}
	return seen == (int)WQ_ARRAY_SIZE(keys) ? 0 : -1;
}

/* One write()+read() of the control file. */
static int kernel_run(int dfd, const int *fds, int nq, long iters, int len,
		      int prefill, struct kres *k, char *why, size_t whylen)
{
	char cmd[256], res[512];
	int off = 0, i;
	ssize_t n;

	if (nq) {
		off += snprintf(cmd + off, sizeof(cmd) - off, "fds=");
		for (i = 0; i < nq; i++)
			off += snprintf(cmd + off, sizeof(cmd) - off, "%s%d",
					i ? "," : "", fds[i]);
		off += snprintf(cmd + off, sizeof(cmd) - off, " ");
	}
	snprintf(cmd + off, sizeof(cmd) - off,
		 "iterations=%ld len=%d type=%d subtype=%ld prefill=%d\n",
		 iters, len, WATCH_TYPE_KEY_NOTIFY, xopt.subtype, prefill);
	if (write(dfd, cmd, strlen(cmd)) < 0) {
		snprintf(why, whylen, "write(%s, \"%.*s\"): %s", xopt.path,
			 (int)strlen(cmd) - 1, cmd, wq_errname(errno));
		return -1;
	}
	/* The timed loop ran between the in-kernel benchmark's own markers. */
	wq_roi_closed_elsewhere();
	n = read(dfd, res, sizeof(res) - 2);
	if (n <= 0) {
		snprintf(why, whylen, "read(%s): %s", xopt.path,
			 n < 0 ? wq_errname(errno) : "no result");
		return -1;
	}
	memmove(res + 1, res, (size_t)n);
	res[0] = ' ';
	res[n + 1] = '\0';
	if (parse_result(res, k) < 0) {
		snprintf(why, whylen, "unparsable result: %.200s", res + 1);
		return -1;
	}
	return 0;
}

struct run_totals {
	long long ns, kdelivered, prefilled;
	struct wq_tally tally;
};

static int drain_all(const int (*q)[2], int nq, struct wq_tally *t,
		     char *why, size_t whylen)
{
	int i, err;

	for (i = 0; i < nq; i++) {
		err = wq_drain(q[i][0], t);
		if (err) {
			snprintf(why, whylen, "read(queue): %s",
				 wq_errname(-err));
			return -1;
		}
	}
	return 0;
}

/* Post @iters records the way case @cs needs; sum into @t. */
static int do_posts(int dfd, const char *cs, const int (*q)[2], int nq,
		    long iters, int len, struct run_totals *t, char *why,
		    size_t whylen)
{
	int fds[16], i;
	struct kres k;

	for (i = 0; i < nq; i++)
		fds[i] = q[i][0];
	memset(t, 0, sizeof(*t));
	if (!strcmp(cs, "free")) {
		/* Leave a slot for the removal record of each run. */
		long batch = opt.queue_size - 1;

		while (iters > 0) {
			long b = iters < batch ? iters : batch;

			if (kernel_run(dfd, fds, nq, b, len, 0, &k, why,
				       whylen) < 0)
				return -1;
			t->ns += k.ns;
			t->kdelivered += k.delivered;
			iters -= b;
			if (drain_all(q, nq, &t->tally, why, whylen) < 0)
				return -1;
		}
		return 0;
	}
	if (kernel_run(dfd, fds, nq, iters, len, !strcmp(cs, "full"), &k,
		       why, whylen) < 0)
		return -1;
	t->ns = k.ns;
	t->kdelivered = k.delivered;
	t->prefilled = k.prefilled;
	return drain_all(q, nq, &t->tally, why, whylen);
}

static void measure(const char *cs, int nq, int len, void *arg)
{
	int dfd = *(int *)arg;
	int filtered = !strcmp(cs, "filtered");
	struct watch_notification_type_filter f = {
		.type = WATCH_TYPE_KEY_NOTIFY,
		.subtype_filter = { 1u << ((xopt.subtype + 1) % 32) },
	};
	int q[16][2], opened, rep;
	char why[256] = "";

	for (rep = 0; rep < opt.repeats; rep++) {
		struct wq_record r;
		struct run_totals t;
		long long offered, delivered;

		base_record(&r, cs, nq, len);
		wq_rec_run(&r, &opt, rep);

		opened = 0;
		if (wq_open_queues(q, nq, (unsigned int)opt.queue_size,
				   filtered ? &f : NULL, 0, why,
				   sizeof(why)) < 0)
			goto fail;
		opened = nq;
		wq_settle();
		if (opt.warmup &&
		    do_posts(dfd, cs, (const int (*)[2])q, nq, opt.warmup, len,
			     &t, why, sizeof(why)) < 0)
			goto fail;
		(void)wq_roi_take();	/* the warm-up's regions */
		if (do_posts(dfd, cs, (const int (*)[2])q, nq, opt.iterations,
			     len, &t, why, sizeof(why)) < 0)
			goto fail;

		offered = (long long)opt.iterations * nq;
		/* Records read back, less those that prefilled the queues. */
		delivered = (long long)t.tally.key - t.prefilled;
		if (delivered != t.kdelivered || t.tally.bad) {
			snprintf(why, sizeof(why),
				 "kernel counted %lld delivered records, the queues gave back %lld (%llu malformed)",
				 t.kdelivered, delivered,
				 (unsigned long long)t.tally.bad);
			goto fail;
		}
		wq_rec_timing(&r, (uint64_t)t.ns, (uint64_t)opt.iterations);
		wq_total(&r, "posts", opt.iterations);
		wq_total(&r, "records", (long long)t.tally.records);
		wq_total(&r, "loss_records", (long long)t.tally.loss);
		wq_total(&r, "removal_records", (long long)t.tally.removal);
		wq_total(&r, "prefilled", t.prefilled);
		if (nq && offered) {
			wq_metric(&r, "ns_per_record", (double)t.ns / offered,
				  "ns", "lower");
			wq_primary(&r, "ns_per_record");
		}
		if (delivered > 0)
			wq_metric(&r, "delivered_ratio",
				  (double)delivered / offered, "ratio",
				  "higher");
		wq_rec_delivery(&r, offered, delivered, filtered);
		wq_rec_emit(&r);
		wq_close_queues(q, opened);
		continue;
fail:
		wq_rec_status(&r, "failed", why);
		wq_rec_emit(&r);
		wq_close_queues(q, opened);
	}
	fprintf(stderr, "%s: %s queues=%d len=%d done\n", wq_prog, cs, nq, len);
}

int main(int argc, char **argv)
{
	char why[256];
	int dfd;

	wq_prog = "wq-kernel-post";
	parse_args(argc, argv);

	if (wq_probe(0, why, sizeof(why)) < 0) {
		for_each_config(emit_skipped, why);
		return WQ_EXIT_OK;
	}
	dfd = open(xopt.path, O_RDWR | O_CLOEXEC);
	if (dfd < 0) {
		int err = errno;

		snprintf(why, sizeof(why), "open(%s): %s%s", xopt.path,
			 wq_errname(err),
			 err == ENOENT ?
			 ": kernel built without CONFIG_WATCH_QUEUE_BENCH, or debugfs not mounted" :
			 "");
		for_each_config(emit_skipped, why);
		return WQ_EXIT_OK;
	}
	for_each_config(measure, &dfd);
	close(dfd);
	return WQ_EXIT_OK;
}
