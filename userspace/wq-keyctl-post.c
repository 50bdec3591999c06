// SPDX-License-Identifier: GPL-2.0
/*
 * wq-keyctl-post - cost of a key notification as seen by the poster.
 *
 * The loop is keyctl(KEYCTL_SETPERM, KEY_SPEC_SESSION_KEYRING, perm): it
 * posts one NOTIFY_KEY_SETATTR record per call into every queue watching the
 * session keyring, and the special id avoids a key lookup.  Cases:
 *
 *   baseline  the same loop with no watch
 *   watched   1..N queues watch the keyring, a reader thread on another
 *             CPU drains them; open loop (records may be lost)
 *   filtered  as watched, but every queue's filter rejects the record
 *   stream    as watched with credit-based flow control: a post is only
 *             made while every queue has room, so nothing is lost
 *
 * The program joins a fresh anonymous session keyring first, so it never
 * touches the keyring of whoever started it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wq.h"

#define PERM	(KEY_POS_ALL | KEY_USR_ALL)

static struct {
	long iterations, warmup, repeats, queue_size;
	long queues[WQ_MAX_LIST];
	int nqueues;
	const char *cases;
	int poster_cpu, reader_cpu;
} opt = {
	.iterations = 20000, .warmup = 1000, .repeats = 3, .queue_size = 256,
	.queues = { 1, 2, 4 }, .nqueues = 3,
	.cases = "baseline,watched,filtered,stream",
	.poster_cpu = 0, .reader_cpu = 1,
};

static const char *const all_cases[] = {
	"baseline", "watched", "filtered", "stream"
};

struct reader {
	pthread_t	thread;
	int		nq;
	int		fds[16];
	int		cpu;
	int		stop;			/* atomic */
	uint64_t	epoch;			/* atomic: loops completed */
	uint64_t	delivered[16];		/* atomic: key records */
	uint64_t	loss;			/* atomic: loss records */
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
		"  --cases LIST     baseline,watched,filtered,stream (default all)\n"
		"  --queues LIST    watching queues, 1..16 (default 1,2,4)\n"
		"  --queue-size N   notes per queue, 1..512 (default 256)\n"
		"  --poster-cpu N   CPU of the posting thread, -1: unpinned (default 0)\n"
		"  --reader-cpu N   CPU of the reader thread, -1: unpinned (default 1)\n"
		"  --help\n", wq_prog);
}

static void parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "iterations", required_argument, NULL, 'i' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "repeats", required_argument, NULL, 'r' },
		{ "cases", required_argument, NULL, 'c' },
		{ "queues", required_argument, NULL, 'q' },
		{ "queue-size", required_argument, NULL, 'Q' },
		{ "poster-cpu", required_argument, NULL, 'P' },
		{ "reader-cpu", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char *dup, *tok, *save = NULL;
	size_t i;
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
		case 'c':
			opt.cases = optarg;
			break;
		case 'q':
			opt.nqueues = wq_parse_list(optarg, opt.queues,
						    WQ_MAX_LIST, 1, 16);
			if (opt.nqueues <= 0) {
				fprintf(stderr, "%s: bad --queues\n", wq_prog);
				exit(WQ_EXIT_USAGE);
			}
			break;
		case 'Q':
			opt.queue_size = wq_parse_num("queue-size", optarg, 1,
						      WQ_MAX_NOTES);
			break;
		case 'P':
			opt.poster_cpu = (int)wq_parse_num("poster-cpu", optarg,
							   -1, 4095);
			break;
		case 'R':
			opt.reader_cpu = (int)wq_parse_num("reader-cpu", optarg,
							   -1, 4095);
			break;
		case 'h':
			usage(stdout);
			exit(WQ_EXIT_OK);
		default:
			usage(stderr);
			exit(WQ_EXIT_USAGE);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(WQ_EXIT_USAGE);
	}
	dup = strdup(opt.cases);
	for (tok = strtok_r(dup, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < WQ_ARRAY_SIZE(all_cases); i++)
			if (!strcmp(tok, all_cases[i]))
				break;
		if (i == WQ_ARRAY_SIZE(all_cases)) {
			fprintf(stderr, "%s: unknown case '%s'\n", wq_prog, tok);
			exit(WQ_EXIT_USAGE);
		}
	}
	free(dup);
}

/* ---- reader thread ------------------------------------------------------ */

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
		if (poll(pfd, (nfds_t)rd->nq, 5) > 0)
			for (i = 0; i < rd->nq; i++)
				if (pfd[i].revents & POLLIN)
					reader_drain(rd, i);
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

/* Wait until the pipes are empty and the reader has counted what it read. */
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
			sched_yield();
	} while (busy);
	e = __atomic_load_n(&rd->epoch, __ATOMIC_ACQUIRE);
	while (__atomic_load_n(&rd->epoch, __ATOMIC_ACQUIRE) < e + 2)
		sched_yield();
}

/* ---- measurement -------------------------------------------------------- */

static int post(void)
{
	return (int)wq_keyctl(KEYCTL_SETPERM,
			      (unsigned long)(long)KEY_SPEC_SESSION_KEYRING,
			      PERM, 0, 0);
}

static int post_loop(long n, int credit, struct reader *rd,
		     uint64_t *posted_total)
{
	long i;

	for (i = 0; i < n; i++) {
		if (credit)
			while (*posted_total - reader_min(rd) >=
			       (uint64_t)opt.queue_size)
				sched_yield();
		if (post() < 0)
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
	if (opt.reader_cpu < 0 || opt.poster_cpu < 0)
		return "unpinned";
	return opt.reader_cpu == opt.poster_cpu ? "same-cpu" : "other-cpu";
}

static void measure(const char *cs, int nq, int rep)
{
	struct reader rd;
	struct wq_record r;
	int q[16][2], opened = 0, i, err, started = 0;
	uint64_t t0, t1, posted_total = 0, d0 = 0, l0 = 0;
	long long offered, delivered;
	char why[256] = "";

	base_record(&r, cs, nq, reader_kind(cs));
	r.repeat = rep;
	r.iterations = opt.iterations;
	r.warmup = opt.warmup;
	memset(&rd, 0, sizeof(rd));

	for (opened = 0; opened < nq; opened++) {
		if (wq_open_queue(q[opened], (unsigned int)opt.queue_size, 1,
				  why, sizeof(why)) < 0)
			goto fail;
		rd.fds[opened] = q[opened][0];
		if (!strcmp(cs, "filtered")) {
			/* Accept only revocations: SETATTR is rejected. */
			struct watch_notification_type_filter f = {
				.type = WATCH_TYPE_KEY_NOTIFY,
				.subtype_filter = { 1u << NOTIFY_KEY_REVOKED },
			};

			if (wq_set_filter(q[opened][0], &f, 1) < 0) {
				snprintf(why, sizeof(why),
					 "IOC_WATCH_QUEUE_SET_FILTER: %s",
					 wq_errname(errno));
				opened++;
				goto fail;
			}
		}
		if (wq_watch_key(KEY_SPEC_SESSION_KEYRING, q[opened][0],
				 opened) < 0) {
			snprintf(why, sizeof(why), "keyctl(KEYCTL_WATCH_KEY): %s",
				 wq_errname(errno));
			opened++;
			goto fail;
		}
	}
	rd.nq = nq;
	rd.cpu = opt.reader_cpu;
	if (nq) {
		err = pthread_create(&rd.thread, NULL, reader_main, &rd);
		if (err) {
			snprintf(why, sizeof(why), "pthread_create: %s",
				 wq_errname(err));
			goto fail;
		}
		started = 1;
	}

	err = post_loop(opt.warmup, !strcmp(cs, "stream"), &rd, &posted_total);
	if (err)
		goto post_fail;
	if (nq) {
		reader_settle(&rd);
		d0 = reader_sum(&rd);
		l0 = __atomic_load_n(&rd.loss, __ATOMIC_ACQUIRE);
	}

	t0 = wq_now_ns();
	err = post_loop(opt.iterations, !strcmp(cs, "stream"), &rd,
			&posted_total);
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
	wq_rec_timing(&r, t1 - t0, (uint64_t)opt.iterations);
	wq_total(&r, "posts", opt.iterations);
	wq_total(&r, "loss_records", (long long)(rd.loss - l0));
	wq_count(&r, "posted", offered);
	wq_count(&r, "delivered", delivered);
	if (!strcmp(cs, "filtered")) {
		wq_count(&r, "lost", 0);
		wq_count(&r, "filtered", offered - delivered);
	} else {
		wq_count(&r, "lost", offered - delivered);
	}
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
	for (i = 0; i < opened; i++) {
		close(q[i][0]);
		close(q[i][1]);
	}
}

static void for_each_config(const char *skip_reason)
{
	size_t c;
	int q, rep;

	for (c = 0; c < WQ_ARRAY_SIZE(all_cases); c++) {
		const char *cs = all_cases[c];

		if (!wq_list_has(opt.cases, cs))
			continue;
		for (q = 0; q < opt.nqueues; q++) {
			int nq = strcmp(cs, "baseline") ? (int)opt.queues[q] : 0;

			if (skip_reason) {
				struct wq_record r;

				base_record(&r, cs, nq, reader_kind(cs));
				r.iterations = opt.iterations;
				r.warmup = opt.warmup;
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
	if (opt.reader_cpu >= wq_nr_cpus())
		opt.reader_cpu = opt.poster_cpu;

	/* Without notification pipes there is nothing to compare with. */
	if (wq_probe(0, why, sizeof(why)) < 0) {
		for_each_config(why);
		return WQ_EXIT_OK;
	}
	if (wq_keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0, 0) < 0) {
		snprintf(why, sizeof(why),
			 "keyctl(KEYCTL_JOIN_SESSION_KEYRING): %s",
			 wq_errname(errno));
		for_each_config(why);
		return WQ_EXIT_OK;
	}
	if (wq_probe(1, why, sizeof(why)) < 0) {
		for_each_config(why);
		return WQ_EXIT_OK;
	}
	if (wq_pin_cpu(opt.poster_cpu) < 0)
		fprintf(stderr, "%s: cannot pin to CPU %d\n", wq_prog,
			opt.poster_cpu);
	for_each_config(NULL);
	return WQ_EXIT_OK;
}
