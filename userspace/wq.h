/* SPDX-License-Identifier: GPL-2.0 */
/*
 * wq.h - shared definitions for the watchbench userspace programs.
 *
 * glibc's <fcntl.h> and <linux/watch_queue.h> (which pulls <linux/fcntl.h>)
 * clash, so the few UAPI constants and structures needed here are defined
 * locally.  They were checked against include/uapi/linux/watch_queue.h and
 * include/uapi/linux/keyctl.h of Linux 6.12.
 *
 * Every benchmark prints one JSON object per line on stdout (the record format
 * of bench/RECORDS.md); human-readable progress goes to stderr.
 */
#ifndef WATCHBENCH_WQ_H
#define WATCHBENCH_WQ_H

#include <fcntl.h>
#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>

/* ---- include/uapi/linux/watch_queue.h ---------------------------------- */

#define O_NOTIFICATION_PIPE		O_EXCL
#define IOC_WATCH_QUEUE_SET_SIZE	_IO('W', 0x60)
#define IOC_WATCH_QUEUE_SET_FILTER	_IO('W', 0x61)

#define WATCH_TYPE_META			0
#define WATCH_TYPE_KEY_NOTIFY		1
#define WATCH_TYPE__NR			2

#define WATCH_META_REMOVAL_NOTIFICATION	0
#define WATCH_META_LOSS_NOTIFICATION	1

struct watch_notification {
	uint32_t	type:24;
	uint32_t	subtype:8;
	uint32_t	info;
};

#define WATCH_INFO_LENGTH		0x0000007f
#define WATCH_INFO_LENGTH__SHIFT	0
#define WATCH_INFO_ID			0x0000ff00
#define WATCH_INFO_ID__SHIFT		8
#define WATCH_INFO_TYPE_INFO		0xffff0000

struct watch_notification_type_filter {
	uint32_t	type;
	uint32_t	info_filter;
	uint32_t	info_mask;
	uint32_t	subtype_filter[8];
};

struct watch_notification_filter {
	uint32_t	nr_filters;
	uint32_t	__reserved;
	struct watch_notification_type_filter filters[];
};

struct watch_notification_removal {
	struct watch_notification watch;
	uint64_t	id;
};

#define NOTIFY_KEY_INSTANTIATED		0
#define NOTIFY_KEY_UPDATED		1
#define NOTIFY_KEY_LINKED		2
#define NOTIFY_KEY_UNLINKED		3
#define NOTIFY_KEY_CLEARED		4
#define NOTIFY_KEY_REVOKED		5
#define NOTIFY_KEY_INVALIDATED		6
#define NOTIFY_KEY_SETATTR		7

struct key_notification {
	struct watch_notification watch;
	uint32_t	key_id;
	uint32_t	aux;
};

/* Kernel limits (kernel/watch_queue.c) */
#define WQ_NOTE_SIZE			128	/* one slot per record */
#define WQ_MAX_NOTES			512	/* IOC_WATCH_QUEUE_SET_SIZE limit */
#define WQ_MAX_FILTERS			16

/* ---- include/uapi/linux/keyctl.h --------------------------------------- */

#define KEY_SPEC_THREAD_KEYRING		-1
#define KEY_SPEC_PROCESS_KEYRING	-2
#define KEY_SPEC_SESSION_KEYRING	-3

#define KEYCTL_GET_KEYRING_ID		0
#define KEYCTL_JOIN_SESSION_KEYRING	1
#define KEYCTL_UPDATE			2
#define KEYCTL_REVOKE			3
#define KEYCTL_CHOWN			4
#define KEYCTL_SETPERM			5
#define KEYCTL_DESCRIBE			6
#define KEYCTL_CLEAR			7
#define KEYCTL_LINK			8
#define KEYCTL_UNLINK			9
#define KEYCTL_SET_TIMEOUT		15
#define KEYCTL_INVALIDATE		21
#define KEYCTL_WATCH_KEY		32

#define KEY_POS_ALL			0x3f000000
#define KEY_USR_ALL			0x003f0000
#define WQ_KEY_PERM			(KEY_POS_ALL | KEY_USR_ALL)

/* ---- helpers (wq.c) ----------------------------------------------------- */

#define WQ_ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define WQ_MAX_LIST		32

/* Exit codes shared by every program. */
#define WQ_EXIT_OK		0
#define WQ_EXIT_FAIL		1
#define WQ_EXIT_USAGE		2

extern const char *wq_prog;		/* program name for messages */

long wq_keyctl(int cmd, unsigned long a2, unsigned long a3,
	       unsigned long a4, unsigned long a5);
int32_t wq_add_key(const char *type, const char *desc, const void *payload,
		   size_t plen, int32_t keyring);
int wq_watch_key(int32_t key, int fd, int watch_id);

/*
 * The post of the key benchmarks: keyctl(KEYCTL_SETPERM) on the session
 * keyring posts one NOTIFY_KEY_SETATTR record to every queue watching it (the
 * special id avoids a key lookup).  Inline: it sits in the timed loops.
 */
static inline int wq_post_setperm(void)
{
	return (int)wq_keyctl(KEYCTL_SETPERM,
			      (unsigned long)(long)KEY_SPEC_SESSION_KEYRING,
			      WQ_KEY_PERM, 0, 0);
}

/* keyctl(2) with the three arguments most operations take, as the tests write them
 * (ids, pointers and lengths as long). */
static inline long wq_kctl(int cmd, long a2, long a3, long a4)
{
	return wq_keyctl(cmd, (unsigned long)a2, (unsigned long)a3,
			 (unsigned long)a4, 0);
}

/* Monotonic clock in nanoseconds. */
uint64_t wq_now_ns(void);

/* Pin the calling thread to @cpu; returns 0 or -errno. */
int wq_pin_cpu(int cpu);
/* Number of CPUs the process may run on. */
int wq_nr_cpus(void);

/*
 * Let the output of earlier records be carried away before a measurement.
 * In the guest, stdout and stderr are a pipe that a shell loop of the guest
 * init reads (a byte per read()) and copies to a serial port; the programs
 * pin themselves to CPU 0, so that loop runs on the other vCPU right after
 * each record.  Under QEMU -icount both vCPUs share one virtual clock, so its
 * ~1 ms of instructions per record lands in whatever timed loop runs then
 * (it made pipe-read repeats bimodal).  This waits, sleeping so that the
 * other CPU gets to run, until the pipe (or tty) has been read empty, then
 * sleeps WQ_SETTLE_US more for the tail (the write to the serial port).
 * Call it before the warm-up of every measurement.
 */
#define WQ_SETTLE_US		2000
#define WQ_SETTLE_POLL_US	200
#define WQ_SETTLE_POLLS		1000	/* give up after ~0.2 s */
void wq_settle(void);

/* "ENOPKG" style name of an errno value. */
const char *wq_errname(int err);

/*
 * Open a notification pipe of @nr_notes slots.  On failure returns -1 and
 * writes the reason ("pipe2(O_NOTIFICATION_PIPE): ENOPKG (...)") to @why.
 */
int wq_open_queue(int fds[2], unsigned int nr_notes, int nonblock,
		  char *why, size_t whylen);

/*
 * Check that the running kernel offers notification pipes and key watches.
 * Returns 0 if usable, otherwise -1 with the reason in @why.
 */
int wq_probe(int need_key_watch, char *why, size_t whylen);
/*
 * wq_probe(0), join a fresh anonymous session keyring (so the program never
 * touches its caller's), then wq_probe(1).  Returns 0 or -1 with @why.
 */
int wq_probe_session(char *why, size_t whylen);

/*
 * The start of a KTAP report on a line-buffered stdout: the version line and
 * the kernel, then wq_probe_session().  Returns 0, or -1 after printing a
 * '1..0 # SKIP' plan with the reason (the program then exits WQ_EXIT_OK).
 */
int wq_ktap_begin(void);

/*
 * Open @nq non-blocking queues of @notes slots into @q, each with the filter
 * @f (unless NULL) and, if @watch, watching the session keyring with its
 * index as watch id.  Returns 0, or -1 with the reason in @why and every
 * queue closed again.
 */
int wq_open_queues(int (*q)[2], int nq, unsigned int notes,
		   const struct watch_notification_type_filter *f, int watch,
		   char *why, size_t whylen);
void wq_close_queues(int (*q)[2], int nq);

/* Install a filter of @nr entries (NULL removes the filter). */
int wq_set_filter(int fd, const struct watch_notification_type_filter *f,
		  unsigned int nr);

/* Number of bytes currently queued in a pipe (FIONREAD). */
long wq_pipe_bytes(int fd);

/* Parse "1,2,4" into @out (at most @max values, each in [lo, hi]). */
int wq_parse_list(const char *s, long *out, int max, long lo, long hi);
/* Parse a number in [lo, hi]; exits with WQ_EXIT_USAGE on error. */
long wq_parse_num(const char *opt, const char *s, long lo, long hi);
/* wq_parse_list() of option --@opt (up to WQ_MAX_LIST); exits on error. */
int wq_parse_list_arg(const char *opt, const char *s, long *out, long lo,
		      long hi);
/* Is @name in the comma separated @list? */
int wq_list_has(const char *list, const char *name);

/* ---- command line of the benchmark programs ----------------------------- */

/*
 * Every benchmark takes --iterations N, --warmup N, --repeats N and --help;
 * those in wq_opts.has also take:
 */
#define WQ_OPT_CASES		0x1	/* --cases LIST, names in case_names */
#define WQ_OPT_QUEUES		0x2	/* --queues LIST, 1..16 */
#define WQ_OPT_QUEUE_SIZE	0x4	/* --queue-size N, min_queue_size.. */
#define WQ_OPT_CPU		0x8	/* --cpu N, -1 (unpinned)..4095 */

struct wq_opts {
	/* What the program takes */
	unsigned int	has;			/* WQ_OPT_* */
	long		max_count;		/* of --iterations, --warmup */
	long		min_queue_size;
	const char *const *case_names;		/* every accepted --cases name */
	size_t		ncase_names;
	/* Defaults, then the values given */
	long		iterations, warmup, repeats, queue_size;
	long		queues[WQ_MAX_LIST];
	int		nqueues;
	const char	*cases;
	int		cpu;
};

/*
 * Parse the command line into @o; a program's own options are in @extra
 * (terminated by a zeroed entry; val a character, the shared ones use
 * values from 256) and go to @parse_extra(val, optarg).  --help prints
 * @usage on stdout and exits WQ_EXIT_OK; bad options, values and stray
 * arguments exit WQ_EXIT_USAGE.
 */
void wq_parse_opts(struct wq_opts *o, int argc, char **argv,
		   const struct option *extra,
		   void (*parse_extra)(int val, const char *arg),
		   void (*usage)(FILE *f));

/* Classification of the records read from a notification pipe. */
struct wq_tally {
	uint64_t	records;	/* all records */
	uint64_t	key;		/* WATCH_TYPE_KEY_NOTIFY records */
	uint64_t	loss;		/* meta loss records */
	uint64_t	removal;	/* meta removal records */
	uint64_t	other;
	uint64_t	bytes;
	uint64_t	reads;		/* read() calls that returned data */
	uint64_t	bad;		/* malformed lengths */
};

/* Walk the records in @buf (as returned by one read()). */
void wq_tally_buf(const unsigned char *buf, size_t len, struct wq_tally *t);
/* Read the non-blocking @fd until EAGAIN; returns 0 or -errno. */
int wq_drain(int fd, struct wq_tally *t);

/* ---- regions of interest of the instruction-count plugin ---------------- */

/*
 * watchbench's TCG plugin (watchbench/vm/wb-insns.c) counts the instructions
 * executed between a begin and an end marker: a NOP with a memory operand
 * whose displacement is a magic number (nopl 0x5742000N(%rax)).  It does
 * nothing on KVM or bare metal, and costs one instruction under -icount.
 * Each program start runs the program marker (a constructor in wq.c), so the
 * plugin can tell whose regions are whose.  Put the begin/end pair tightly
 * around a timed loop, inside its clock reads.
 */
#define WQ_MARK(magic)	__asm__ volatile("nopl " #magic "(%%rax)" ::: "memory")
#define WQ_MARK_PROGRAM()	WQ_MARK(0x57420001)
#define WQ_MARK_BEGIN()		WQ_MARK(0x57420002)
#define WQ_MARK_END()		WQ_MARK(0x57420003)

extern int wq_roi_closed;	/* regions this process has closed */

static inline void wq_roi_begin(void)
{
	WQ_MARK_BEGIN();
}

static inline void wq_roi_end(void)
{
	WQ_MARK_END();
	wq_roi_closed++;
}

/* A region was closed by other code (the in-kernel benchmark's own markers). */
static inline void wq_roi_closed_elsewhere(void)
{
	wq_roi_closed++;
}

/* The regions closed since the last take: the span a record claims. */
struct wq_roi {
	int	first, count;
};
struct wq_roi wq_roi_take(void);

/* ---- JSON record (bench/RECORDS.md, schema 1) ---------------------------- */

#define WQ_REC_MAX	16

enum wq_val_kind { WQ_V_STR, WQ_V_INT, WQ_V_BOOL, WQ_V_NUM };

struct wq_kv {
	const char	*key;
	enum wq_val_kind kind;
	char		str[64];
	long long	i;
	double		num;
};

struct wq_metric {
	const char	*key;
	double		value;
	const char	*unit;
	const char	*direction;	/* "lower" or "higher" */
	int		primary;	/* the one gated metric of the record */
};

struct wq_record {
	const char	*benchmark;
	const char	*source;
	struct wq_kv	params[WQ_REC_MAX];
	int		nparams;
	int		repeat;			/* -1: omitted */
	long long	iterations;		/* -1: omitted */
	long long	warmup;			/* -1: omitted */
	struct wq_kv	totals[WQ_REC_MAX];
	int		ntotals;
	struct wq_metric metrics[WQ_REC_MAX];
	int		nmetrics;
	struct wq_kv	counts[WQ_REC_MAX];
	int		ncounts;
	const char	*status;		/* "ok", "skipped", "failed" */
	char		reason[256];
	struct wq_roi	roi;			/* count 0: omitted */
	long long	roi_ops;
};

void wq_rec_init(struct wq_record *r, const char *benchmark,
		 const char *source);
void wq_param_str(struct wq_record *r, const char *key, const char *val);
void wq_param_int(struct wq_record *r, const char *key, long long val);
void wq_param_bool(struct wq_record *r, const char *key, int val);
void wq_total(struct wq_record *r, const char *key, long long val);
void wq_count(struct wq_record *r, const char *key, long long val);
void wq_metric(struct wq_record *r, const char *key, double value,
	       const char *unit, const char *direction);
/*
 * Mark metric @key (added before) as the record's primary one: the one
 * figure of this measurement that the CI gate tests; the others derive from
 * the same measurement and are display only.  Emitted as "primary": true;
 * it moves the mark from any other metric, so an ok record has exactly one.
 * Nothing changes if @r has no metric @key.
 */
void wq_primary(struct wq_record *r, const char *key);
/*
 * The record measured the regions @span over @ops operations (emitted as
 * "roi"); wq_rec_timing() does this with wq_roi_take() itself.
 */
void wq_rec_roi(struct wq_record *r, struct wq_roi span, uint64_t ops);
/* Set repeat (unless @rep < 0), iterations and warmup from @o. */
void wq_rec_run(struct wq_record *r, const struct wq_opts *o, int rep);
/*
 * counts.posted, delivered and lost; if @filtered, what was not delivered
 * was filtered (counts.filtered) and lost is 0.
 */
void wq_rec_delivery(struct wq_record *r, long long posted,
		     long long delivered, int filtered);
/* Mark skipped/failed (clears metrics, totals and counts). */
void wq_rec_status(struct wq_record *r, const char *status,
		   const char *reason);
/* Print as one JSON line on stdout and flush. */
void wq_rec_emit(const struct wq_record *r);

/*
 * Add the usual timing metrics from @ns over @ops operations:
 * ns_per_op (ns, lower, primary) and ops_per_s (op/s, higher).
 */
void wq_rec_timing(struct wq_record *r, uint64_t ns, uint64_t ops);

#endif /* WATCHBENCH_WQ_H */
