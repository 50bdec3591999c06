// SPDX-License-Identifier: GPL-2.0
/*
 * wq.c - shared helpers of the watchbench userspace programs: the keyctl
 * syscall wrappers (no libkeyutils), timing, CPU pinning, notification pipe
 * set-up, the options every benchmark shares and the JSON Lines record
 * writer of bench/RECORDS.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <termios.h>

#include "wq.h"

const char *wq_prog = "wq";

long wq_keyctl(int cmd, unsigned long a2, unsigned long a3,
	       unsigned long a4, unsigned long a5)
{
	return syscall(__NR_keyctl, cmd, a2, a3, a4, a5);
}

int32_t wq_add_key(const char *type, const char *desc, const void *payload,
		   size_t plen, int32_t keyring)
{
	return (int32_t)syscall(__NR_add_key, type, desc, payload, plen,
				keyring);
}

int wq_watch_key(int32_t key, int fd, int watch_id)
{
	return (int)wq_keyctl(KEYCTL_WATCH_KEY, (unsigned long)(long)key,
			      (unsigned long)fd, (unsigned long)(long)watch_id,
			      0);
}

uint64_t wq_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int wq_pin_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		return -errno;
	return 0;
}

int wq_nr_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 1;
	return CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1;
}

/* Bytes we wrote to @fd that its reader has not taken yet (pipe, tty). */
static long out_pending(int fd)
{
	struct stat st;
	int n = 0;

	if (fstat(fd, &st) < 0)
		return 0;
	if (S_ISFIFO(st.st_mode)) {
		if (ioctl(fd, FIONREAD, &n) < 0)
			return 0;
	} else if (isatty(fd)) {
		if (ioctl(fd, TIOCOUTQ, &n) < 0)
			return 0;
	}
	return n;
}

void wq_settle(void)
{
	int i;

	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < WQ_SETTLE_POLLS; i++) {
		if (out_pending(STDOUT_FILENO) <= 0 &&
		    out_pending(STDERR_FILENO) <= 0)
			break;
		usleep(WQ_SETTLE_POLL_US);
	}
	usleep(WQ_SETTLE_US);
}

const char *wq_errname(int err)
{
	const char *name = strerrorname_np(err);

	return name ? name : "E?";
}

int wq_open_queue(int fds[2], unsigned int nr_notes, int nonblock,
		  char *why, size_t whylen)
{
	int flags = O_NOTIFICATION_PIPE | O_CLOEXEC;

	if (nonblock)
		flags |= O_NONBLOCK;
	if (pipe2(fds, flags) < 0) {
		int err = errno;

		snprintf(why, whylen, "pipe2(O_NOTIFICATION_PIPE): %s (%s)%s",
			 wq_errname(err), strerror(err),
			 err == ENOPKG ?
			 ": kernel built without CONFIG_WATCH_QUEUE" : "");
		return -1;
	}
	if (ioctl(fds[0], IOC_WATCH_QUEUE_SET_SIZE, nr_notes) < 0) {
		int err = errno;

		snprintf(why, whylen, "IOC_WATCH_QUEUE_SET_SIZE(%u): %s (%s)",
			 nr_notes, wq_errname(err), strerror(err));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	return 0;
}

int wq_probe(int need_key_watch, char *why, size_t whylen)
{
	int fds[2];
	int ret = 0;

	if (wq_open_queue(fds, 1, 1, why, whylen) < 0)
		return -1;
	if (need_key_watch) {
		/*
		 * Watch and unwatch the session keyring: tells apart a kernel
		 * without CONFIG_KEY_NOTIFICATIONS (EOPNOTSUPP) or without a
		 * session keyring from a usable one.
		 */
		if (wq_watch_key(KEY_SPEC_SESSION_KEYRING, fds[0], 0x7f) < 0) {
			int err = errno;

			snprintf(why, whylen,
				 "keyctl(KEYCTL_WATCH_KEY): %s (%s)%s",
				 wq_errname(err), strerror(err),
				 err == EOPNOTSUPP ?
				 ": kernel built without CONFIG_KEY_NOTIFICATIONS" :
				 "");
			ret = -1;
		} else {
			wq_watch_key(KEY_SPEC_SESSION_KEYRING, fds[0], -1);
		}
	}
	close(fds[0]);
	close(fds[1]);
	return ret;
}

int wq_probe_session(char *why, size_t whylen)
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

int wq_ktap_begin(void)
{
	struct utsname u;
	char why[256];

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("KTAP version 1\n");
	if (uname(&u) == 0)
		printf("# kernel %s %s\n", u.release, u.machine);
	if (wq_probe_session(why, sizeof(why)) < 0) {
		printf("1..0 # SKIP %s\n", why);
		return -1;
	}
	return 0;
}

int wq_open_queues(int (*q)[2], int nq, unsigned int notes,
		   const struct watch_notification_type_filter *f, int watch,
		   char *why, size_t whylen)
{
	int i;

	for (i = 0; i < nq; i++) {
		if (wq_open_queue(q[i], notes, 1, why, whylen) < 0)
			goto fail;
		if (f && wq_set_filter(q[i][0], f, 1) < 0) {
			snprintf(why, whylen, "IOC_WATCH_QUEUE_SET_FILTER: %s",
				 wq_errname(errno));
			i++;
			goto fail;
		}
		if (watch &&
		    wq_watch_key(KEY_SPEC_SESSION_KEYRING, q[i][0], i) < 0) {
			snprintf(why, whylen, "keyctl(KEYCTL_WATCH_KEY): %s",
				 wq_errname(errno));
			i++;
			goto fail;
		}
	}
	return 0;
fail:
	wq_close_queues(q, i);
	return -1;
}

void wq_close_queues(int (*q)[2], int nq)
{
	int i;

	for (i = 0; i < nq; i++) {
		close(q[i][0]);
		close(q[i][1]);
	}
}

int wq_set_filter(int fd, const struct watch_notification_type_filter *f,
		  unsigned int nr)
{
	struct watch_notification_filter *wf;
	size_t size = sizeof(*wf) + nr * sizeof(*f);
	int ret;

	if (!f)
		return ioctl(fd, IOC_WATCH_QUEUE_SET_FILTER, NULL);
	wf = calloc(1, size);
	if (!wf)
		return -1;
	wf->nr_filters = nr;
	memcpy(wf->filters, f, nr * sizeof(*f));
	ret = ioctl(fd, IOC_WATCH_QUEUE_SET_FILTER, wf);
	free(wf);
	return ret;
}

long wq_pipe_bytes(int fd)
{
	int n = 0;

	if (ioctl(fd, FIONREAD, &n) < 0)
		return -1;
	return n;
}

int wq_parse_list(const char *s, long *out, int max, long lo, long hi)
{
	int n = 0;
	const char *p = s;

	while (*p) {
		char *end;
		long v;

		errno = 0;
		v = strtol(p, &end, 0);
		if (errno || end == p || v < lo || v > hi || n >= max)
			return -1;
		out[n++] = v;
		if (*end == ',')
			end++;
		else if (*end)
			return -1;
		p = end;
	}
	return n;
}

long wq_parse_num(const char *opt, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "%s: --%s: '%s' is not a number in [%ld, %ld]\n",
			wq_prog, opt, s, lo, hi);
		exit(WQ_EXIT_USAGE);
	}
	return v;
}

int wq_parse_list_arg(const char *opt, const char *s, long *out, long lo,
		      long hi)
{
	int n = wq_parse_list(s, out, WQ_MAX_LIST, lo, hi);

	if (n <= 0) {
		fprintf(stderr,
			"%s: --%s: '%s' is not a list of up to %d numbers in [%ld, %ld]\n",
			wq_prog, opt, s, WQ_MAX_LIST, lo, hi);
		exit(WQ_EXIT_USAGE);
	}
	return n;
}

int wq_list_has(const char *list, const char *name)
{
	size_t len = strlen(name);
	const char *p = list;

	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (n == len && !strncmp(p, name, len))
			return 1;
		p = comma ? comma + 1 : NULL;
	}
	return 0;
}

/* ---- command line ------------------------------------------------------- */

enum {
	OPT_ITERATIONS = 256, OPT_WARMUP, OPT_REPEATS, OPT_CASES, OPT_QUEUES,
	OPT_QUEUE_SIZE, OPT_CPU,
};

static const struct {
	struct option	lo;
	unsigned int	need;		/* WQ_OPT_* bit, 0: always */
} shared_opts[] = {
	{ { "iterations", required_argument, NULL, OPT_ITERATIONS }, 0 },
	{ { "warmup", required_argument, NULL, OPT_WARMUP }, 0 },
	{ { "repeats", required_argument, NULL, OPT_REPEATS }, 0 },
	{ { "cases", required_argument, NULL, OPT_CASES }, WQ_OPT_CASES },
	{ { "queues", required_argument, NULL, OPT_QUEUES }, WQ_OPT_QUEUES },
	{ { "queue-size", required_argument, NULL, OPT_QUEUE_SIZE },
	  WQ_OPT_QUEUE_SIZE },
	{ { "cpu", required_argument, NULL, OPT_CPU }, WQ_OPT_CPU },
	{ { "help", no_argument, NULL, 'h' }, 0 },
};

/* Reject unknown case names instead of silently measuring less. */
static void check_cases(const struct wq_opts *o)
{
	char *dup = strdup(o->cases), *save = NULL, *tok;
	size_t i;

	for (tok = strtok_r(dup, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < o->ncase_names; i++)
			if (!strcmp(tok, o->case_names[i]))
				break;
		if (i == o->ncase_names) {
			fprintf(stderr, "%s: unknown case '%s'\n", wq_prog, tok);
			exit(WQ_EXIT_USAGE);
		}
	}
	free(dup);
}

void wq_parse_opts(struct wq_opts *o, int argc, char **argv,
		   const struct option *extra,
		   void (*parse_extra)(int val, const char *arg),
		   void (*usage)(FILE *f))
{
	struct option lo[WQ_ARRAY_SIZE(shared_opts) + 16];
	size_t n = 0, i;
	int c;

	for (i = 0; i < WQ_ARRAY_SIZE(shared_opts); i++)
		if ((o->has & shared_opts[i].need) == shared_opts[i].need)
			lo[n++] = shared_opts[i].lo;
	for (; extra && extra->name; extra++) {
		if (n >= WQ_ARRAY_SIZE(lo) - 1)
			abort();
		lo[n++] = *extra;
	}
	memset(&lo[n], 0, sizeof(lo[n]));

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case OPT_ITERATIONS:
			o->iterations = wq_parse_num("iterations", optarg, 1,
						     o->max_count);
			break;
		case OPT_WARMUP:
			o->warmup = wq_parse_num("warmup", optarg, 0,
						 o->max_count);
			break;
		case OPT_REPEATS:
			o->repeats = wq_parse_num("repeats", optarg, 1, 1000);
			break;
		case OPT_CASES:
			o->cases = optarg;
			break;
		case OPT_QUEUES:
			o->nqueues = wq_parse_list_arg("queues", optarg,
						       o->queues, 1, 16);
			break;
		case OPT_QUEUE_SIZE:
			o->queue_size = wq_parse_num("queue-size", optarg,
						     o->min_queue_size,
						     WQ_MAX_NOTES);
			break;
		case OPT_CPU:
			o->cpu = (int)wq_parse_num("cpu", optarg, -1, 4095);
			break;
		case 'h':
			usage(stdout);
			exit(WQ_EXIT_OK);
		case '?':
			usage(stderr);
			exit(WQ_EXIT_USAGE);
		default:
			parse_extra(c, optarg);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", wq_prog,
			argv[optind]);
		usage(stderr);
		exit(WQ_EXIT_USAGE);
	}
	if (o->has & WQ_OPT_CASES)
		check_cases(o);
}

void wq_tally_buf(const unsigned char *buf, size_t len, struct wq_tally *t)
{
	size_t off = 0;

	t->bytes += len;
	t->reads++;
	while (off + sizeof(struct watch_notification) <= len) {
		struct watch_notification n;
		size_t rlen;

		memcpy(&n, buf + off, sizeof(n));
		rlen = n.info & WATCH_INFO_LENGTH;
		if (rlen < sizeof(n) || off + rlen > len) {
			t->bad++;
			return;
		}
		t->records++;
		if (n.type == WATCH_TYPE_KEY_NOTIFY)
			t->key++;
		else if (n.type == WATCH_TYPE_META &&
			 n.subtype == WATCH_META_LOSS_NOTIFICATION)
			t->loss++;
		else if (n.type == WATCH_TYPE_META &&
			 n.subtype == WATCH_META_REMOVAL_NOTIFICATION)
			t->removal++;
		else
			t->other++;
		off += rlen;
	}
	if (off != len)
		t->bad++;
}

int wq_drain(int fd, struct wq_tally *t)
{
	unsigned char buf[8192];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n > 0) {
			wq_tally_buf(buf, (size_t)n, t);
			continue;
		}
		if (n == 0)
			return 0;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN ? 0 : -errno;
	}
}

/* ---- JSON records ------------------------------------------------------- */

void wq_rec_init(struct wq_record *r, const char *benchmark,
		 const char *source)
{
	memset(r, 0, sizeof(*r));
	r->benchmark = benchmark;
	r->source = source;
	r->repeat = -1;
	r->iterations = -1;
	r->warmup = -1;
	r->status = "ok";
}

static struct wq_kv *kv_slot(struct wq_kv *arr, int *n, const char *key)
{
	int i;

	for (i = 0; i < *n; i++)
		if (!strcmp(arr[i].key, key))
			return &arr[i];
	if (*n >= WQ_REC_MAX) {
		fprintf(stderr, "%s: too many record fields (%s)\n", wq_prog,
			key);
		abort();
	}
	memset(&arr[*n], 0, sizeof(arr[*n]));
	arr[*n].key = key;
	return &arr[(*n)++];
}

void wq_param_str(struct wq_record *r, const char *key, const char *val)
{
	struct wq_kv *kv = kv_slot(r->params, &r->nparams, key);

	kv->kind = WQ_V_STR;
	snprintf(kv->str, sizeof(kv->str), "%s", val);
}

void wq_param_int(struct wq_record *r, const char *key, long long val)
{
	struct wq_kv *kv = kv_slot(r->params, &r->nparams, key);

	kv->kind = WQ_V_INT;
	kv->i = val;
}

void wq_param_bool(struct wq_record *r, const char *key, int val)
{
	struct wq_kv *kv = kv_slot(r->params, &r->nparams, key);

	kv->kind = WQ_V_BOOL;
	kv->i = !!val;
}

void wq_total(struct wq_record *r, const char *key, long long val)
{
	struct wq_kv *kv = kv_slot(r->totals, &r->ntotals, key);

	kv->kind = WQ_V_INT;
	kv->i = val;
}

void wq_count(struct wq_record *r, const char *key, long long val)
{
	struct wq_kv *kv = kv_slot(r->counts, &r->ncounts, key);

	kv->kind = WQ_V_INT;
	kv->i = val;
}

void wq_metric(struct wq_record *r, const char *key, double value,
	       const char *unit, const char *direction)
{
	struct wq_metric *m;

	if (r->nmetrics >= WQ_REC_MAX) {
		fprintf(stderr, "%s: too many metrics (%s)\n", wq_prog, key);
		abort();
	}
	m = &r->metrics[r->nmetrics++];
	m->key = key;
	m->value = value;
	m->unit = unit;
	m->direction = direction;
	m->primary = 0;
}

void wq_primary(struct wq_record *r, const char *key)
{
	int i, found = 0;

	for (i = 0; i < r->nmetrics; i++)
		found |= !strcmp(r->metrics[i].key, key);
	if (!found)
		return;
	for (i = 0; i < r->nmetrics; i++)
		r->metrics[i].primary = !strcmp(r->metrics[i].key, key);
}

void wq_rec_run(struct wq_record *r, const struct wq_opts *o, int rep)
{
	if (rep >= 0)
		r->repeat = rep;
	r->iterations = o->iterations;
	r->warmup = o->warmup;
}

void wq_rec_delivery(struct wq_record *r, long long posted,
		     long long delivered, int filtered)
{
	wq_count(r, "posted", posted);
	wq_count(r, "delivered", delivered);
	wq_count(r, "lost", filtered ? 0 : posted - delivered);
	if (filtered)
		wq_count(r, "filtered", posted - delivered);
}

void wq_rec_status(struct wq_record *r, const char *status,
		   const char *reason)
{
	r->status = status;
	snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "");
	r->roi.count = 0;
	(void)wq_roi_take();	/* a failed measurement's regions are nobody's */
	r->nmetrics = 0;
	r->ntotals = 0;
	r->ncounts = 0;
}

int wq_roi_closed;
static int roi_taken;

/* Tell the plugin that a program of ours starts: its regions follow. */
static void __attribute__((constructor)) wq_roi_program(void)
{
	WQ_MARK_PROGRAM();
}

struct wq_roi wq_roi_take(void)
{
	struct wq_roi span = { roi_taken, wq_roi_closed - roi_taken };

	roi_taken = wq_roi_closed;
	return span;
}

void wq_rec_roi(struct wq_record *r, struct wq_roi span, uint64_t ops)
{
	r->roi = span;
	r->roi_ops = (long long)ops;
}

void wq_rec_timing(struct wq_record *r, uint64_t ns, uint64_t ops)
{
	wq_rec_roi(r, wq_roi_take(), ops);
	wq_total(r, "ns", (long long)ns);
	if (!ops || !ns)
		return;
	wq_metric(r, "ns_per_op", (double)ns / (double)ops, "ns", "lower");
	wq_metric(r, "ops_per_s", (double)ops * 1e9 / (double)ns, "op/s",
		  "higher");
	wq_primary(r, "ns_per_op");
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.15g", v);
	else
		fputs("null", f);	/* JSON has no NaN/inf */
}

static void json_kvs(FILE *f, const char *name, const struct wq_kv *kv,
		     int n)
{
	int i;

	fprintf(f, ", \"%s\": {", name);
	for (i = 0; i < n; i++) {
		fprintf(f, "%s", i ? ", " : "");
		json_str(f, kv[i].key);
		fputs(": ", f);
		switch (kv[i].kind) {
		case WQ_V_STR:
			json_str(f, kv[i].str);
			break;
		case WQ_V_INT:
			fprintf(f, "%lld", kv[i].i);
			break;
		case WQ_V_BOOL:
			fputs(kv[i].i ? "true" : "false", f);
			break;
		case WQ_V_NUM:
			json_num(f, kv[i].num);
			break;
		}
	}
	fputc('}', f);
}

void wq_rec_emit(const struct wq_record *r)
{
	FILE *f = stdout;
	int i;

	fprintf(f, "{\"schema\": 1, \"benchmark\": ");
	json_str(f, r->benchmark);
	fputs(", \"source\": ", f);
	json_str(f, r->source);
	json_kvs(f, "params", r->params, r->nparams);
	if (r->repeat >= 0)
		fprintf(f, ", \"repeat\": %d", r->repeat);
	if (r->iterations >= 0)
		fprintf(f, ", \"iterations\": %lld", r->iterations);
	if (r->warmup >= 0)
		fprintf(f, ", \"warmup\": %lld", r->warmup);
	if (!strcmp(r->status, "ok")) {
		json_kvs(f, "totals", r->totals, r->ntotals);
		fputs(", \"metrics\": {", f);
		for (i = 0; i < r->nmetrics; i++) {
			const struct wq_metric *m = &r->metrics[i];

			fprintf(f, "%s", i ? ", " : "");
			json_str(f, m->key);
			fputs(": {\"value\": ", f);
			json_num(f, m->value);
			fputs(", \"unit\": ", f);
			json_str(f, m->unit);
			fputs(", \"direction\": ", f);
			json_str(f, m->direction);
			if (m->primary)
				fputs(", \"primary\": true", f);
			fputc('}', f);
		}
		fputc('}', f);
		json_kvs(f, "counts", r->counts, r->ncounts);
		if (r->roi.count > 0)
			fprintf(f, ", \"roi\": {\"first\": %d, \"count\": %d, \"ops\": %lld}",
				r->roi.first, r->roi.count, r->roi_ops);
	}
	fputs(", \"status\": ", f);
	json_str(f, r->status);
	if (strcmp(r->status, "ok")) {
		fputs(", \"reason\": ", f);
		json_str(f, r->reason);
	}
	fputs("}\n", f);
	fflush(f);
}
