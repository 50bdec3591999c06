// SPDX-License-Identifier: GPL-2.0
/*
 * wq-pipe-read - cost of draining a notification queue with read().
 *
 * Each cycle fills a queue to capacity (keyctl(KEYCTL_SETPERM) on the watched
 * session keyring, one 16-byte record per call, untimed) and then times the
 * read() calls that drain it with a buffer of the given size.  The same is
 * done for an ordinary pipe that holds the same number of 16-byte records
 * (written one write() per record), and the notification record carries the
 * ratio of the two rates.  ns_per_record is the primary figure.
 *
 * Every measurement starts with wq_settle(): the output of the previous
 * record is carried to the serial port by the guest's other vCPU, and under
 * icount its ~1 ms of instructions used to land in one drain of the next
 * measurement now and then (+190 ns/record over 10 cycles of 512 records):
 * repeats came out bimodal.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wq.h"

#define RECORD_SIZE	((long)sizeof(struct key_notification))
#define MAX_READ	65536

static struct wq_opts opt = {
	.has = WQ_OPT_QUEUE_SIZE | WQ_OPT_CPU,
	.max_count = 10000000, .min_queue_size = 1,
	.iterations = 200, .warmup = 5, .repeats = 3, .queue_size = 512,
	.cpu = 0,
};

/* This program's own options. */
static struct {
	long sizes[WQ_MAX_LIST];
	int nsizes;
	const char *pipes;
} xopt = {
	.sizes = { 16, 64, 256, 1024, 4096, 8192 }, .nsizes = 6,
	.pipes = "plain,notification",
};

struct drain {
	uint64_t ns, records, bytes, reads;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [options]\n"
		"Time draining a full notification queue and an ordinary pipe with\n"
		"read() and print one JSON record per measurement (bench/RECORDS.md).\n\n"
		"  --iterations N   fill/drain cycles per measurement (default 200)\n"
		"  --warmup N       untimed cycles before each measurement (default 5)\n"
		"  --repeats N      measurements per configuration (default 3)\n"
		"  --sizes LIST     read buffer sizes in bytes, 16..65536\n"
		"                   (default 16,64,256,1024,4096,8192)\n"
		"  --queue-size N   records per fill, 1..512 (default 512)\n"
		"  --pipes LIST     plain,notification (default both)\n"
		"  --cpu N          pin to CPU N, -1: unpinned (default 0)\n"
		"  --help\n", wq_prog);
}

static void parse_own(int val, const char *arg)
{
	if (val == 's') {
		xopt.nsizes = wq_parse_list_arg("sizes", arg, xopt.sizes,
						RECORD_SIZE, MAX_READ);
		return;
	}
	xopt.pipes = arg;
	if (!wq_list_has(xopt.pipes, "plain") &&
	    !wq_list_has(xopt.pipes, "notification")) {
		fprintf(stderr, "%s: bad --pipes\n", wq_prog);
		exit(WQ_EXIT_USAGE);
	}
}

static void parse_args(int argc, char **argv)
{
	static const struct option own[] = {
		{ "sizes", required_argument, NULL, 's' },
		{ "pipes", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 }
	};

	wq_parse_opts(&opt, argc, argv, own, parse_own, usage);
}

static void base_record(struct wq_record *r, const char *pipe, long size)
{
	wq_rec_init(r, "pipe-read", "c");
	wq_param_str(r, "pipe", pipe);
	wq_param_int(r, "read_size", size);
	wq_param_int(r, "record_size", RECORD_SIZE);
	wq_param_int(r, "queue_size", opt.queue_size);
}

/* Time reads of @size until @want records (of RECORD_SIZE) came out. */
static int timed_drain(int fd, long size, long want, struct drain *d)
{
	static unsigned char buf[MAX_READ];
	uint64_t t0, t1, bytes = 0, reads = 0;
	ssize_t n = 1;

	t0 = wq_now_ns();
	wq_roi_begin();
	while (bytes < (uint64_t)(want * RECORD_SIZE)) {
		n = read(fd, buf, (size_t)size);
		if (n <= 0)
			break;
		bytes += (uint64_t)n;
		reads++;
	}
	wq_roi_end();
	if (n <= 0 && bytes < (uint64_t)(want * RECORD_SIZE))
		return n < 0 ? -errno : -EIO;
	t1 = wq_now_ns();
	if (bytes != (uint64_t)(want * RECORD_SIZE))
		return -EMSGSIZE;
	d->ns += t1 - t0;
	d->bytes += bytes;
	d->reads += reads;
	d->records += (uint64_t)want;
	return 0;
}

static int fill_notification(int fd, long *got)
{
	long i, bytes;

	for (i = 0; i < opt.queue_size; i++)
		if (wq_post_setperm() < 0)
			return -errno;
	bytes = wq_pipe_bytes(fd);
	if (bytes < 0)
		return -errno;
	*got = bytes / RECORD_SIZE;
	return 0;
}

static int fill_plain(int fd, long *got)
{
	struct key_notification n = {
		.watch = {
			.type = WATCH_TYPE_KEY_NOTIFY,
			.subtype = NOTIFY_KEY_SETATTR,
			.info = (uint32_t)RECORD_SIZE,
		},
	};
	long i;

	for (i = 0; i < opt.queue_size; i++)
		if (write(fd, &n, sizeof(n)) != (ssize_t)sizeof(n))
			return -errno;
	*got = opt.queue_size;
	return 0;
}

/* Run warm-up + timed cycles on one pipe kind; 0 or -errno in @why. */
static int run_cycles(int notification, long size, struct drain *d,
		      char *why, size_t whylen)
{
	int fds[2], err = 0;
	long cyc, got = 0;
	const char *step = "";

	memset(d, 0, sizeof(*d));
	if (notification) {
		if (wq_open_queue(fds, (unsigned int)opt.queue_size, 1, why,
				  whylen) < 0)
			return -1;
		if (wq_watch_key(KEY_SPEC_SESSION_KEYRING, fds[0], 1) < 0) {
			snprintf(why, whylen, "keyctl(KEYCTL_WATCH_KEY): %s",
				 wq_errname(errno));
			err = -1;
			goto out;
		}
	} else if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
		snprintf(why, whylen, "pipe2: %s", wq_errname(errno));
		return -1;
	}

	wq_settle();
	for (cyc = 0; cyc < opt.warmup + opt.iterations; cyc++) {
		struct drain scratch = { 0 };
		struct drain *into = cyc < opt.warmup ? &scratch : d;

		if (cyc == opt.warmup)
			(void)wq_roi_take();	/* the warm-up's regions */

		step = "fill";
		err = notification ? fill_notification(fds[0], &got) :
				     fill_plain(fds[1], &got);
		if (!err && got != opt.queue_size) {
			snprintf(why, whylen,
				 "queue took %ld of %ld records", got,
				 opt.queue_size);
			err = -1;
			goto out;
		}
		step = "drain";
		if (!err)
			err = timed_drain(fds[0], size, got, into);
		if (err) {
			snprintf(why, whylen, "%s: %s", step, wq_errname(-err));
			err = -1;
			goto out;
		}
	}
out:
	close(fds[0]);
	close(fds[1]);
	return err;
}

static void emit(const char *pipe, long size, int rep, const struct drain *d,
		 double ratio)
{
	struct wq_record r;

	base_record(&r, pipe, size);
	wq_rec_run(&r, &opt, rep);
	wq_total(&r, "ns", (long long)d->ns);
	wq_total(&r, "records", (long long)d->records);
	wq_total(&r, "bytes", (long long)d->bytes);
	wq_total(&r, "reads", (long long)d->reads);
	wq_metric(&r, "records_per_s", (double)d->records * 1e9 / d->ns,
		  "record/s", "higher");
	wq_metric(&r, "bytes_per_s", (double)d->bytes * 1e9 / d->ns, "B/s",
		  "higher");
	wq_metric(&r, "records_per_read", (double)d->records / d->reads,
		  "record", "higher");
	wq_metric(&r, "ns_per_record", (double)d->ns / d->records, "ns",
		  "lower");
	if (ratio > 0)
		wq_metric(&r, "rate_vs_plain", ratio, "x", "higher");
	wq_primary(&r, "ns_per_record");
	wq_rec_roi(&r, wq_roi_take(), d->records);
	wq_rec_emit(&r);
}

static void emit_status(const char *pipe, long size, int rep,
			const char *status, const char *why)
{
	struct wq_record r;

	base_record(&r, pipe, size);
	wq_rec_run(&r, &opt, rep);
	wq_rec_status(&r, status, why);
	wq_rec_emit(&r);
}

int main(int argc, char **argv)
{
	int do_plain, do_notif, s, rep;
	char why[256];

	wq_prog = "wq-pipe-read";
	parse_args(argc, argv);
	do_plain = wq_list_has(xopt.pipes, "plain");
	do_notif = wq_list_has(xopt.pipes, "notification");

	/*
	 * Probe first: without notification pipes the plain figures have
	 * nothing to be compared with, so every row is skipped (unless only
	 * the plain pipe was asked for).
	 */
	if (do_notif && wq_probe_session(why, sizeof(why)) < 0) {
		for (s = 0; s < xopt.nsizes; s++) {
			if (do_plain)
				emit_status("plain", xopt.sizes[s], -1,
					    "skipped", why);
			if (do_notif)
				emit_status("notification", xopt.sizes[s], -1,
					    "skipped", why);
		}
		return WQ_EXIT_OK;
	}
	wq_pin_cpu(opt.cpu);

	for (s = 0; s < xopt.nsizes; s++) {
		long size = xopt.sizes[s];

		for (rep = 0; rep < opt.repeats; rep++) {
			struct drain plain = { 0 }, notif = { 0 };
			int plain_ok = 0;

			if (do_plain) {
				if (run_cycles(0, size, &plain, why,
					       sizeof(why)) < 0) {
					emit_status("plain", size, rep,
						    "failed", why);
				} else {
					emit("plain", size, rep, &plain, 0);
					plain_ok = 1;
				}
			}
			if (do_notif) {
				if (run_cycles(1, size, &notif, why,
					       sizeof(why)) < 0) {
					emit_status("notification", size, rep,
						    "failed", why);
				} else {
					double ratio = 0;

					if (plain_ok)
						ratio = ((double)notif.records /
							 notif.ns) /
							((double)plain.records /
							 plain.ns);
					emit("notification", size, rep, &notif,
					     ratio);
				}
			}
		}
		fprintf(stderr, "%s: read size %ld done\n", wq_prog, size);
	}
	return WQ_EXIT_OK;
}
