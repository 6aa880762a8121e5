/* report.h - what the user sees. Connections arrive one at a time as the
 * tracker retires them; the report counts every one, streams JSON records at
 * once, and keeps only the --limit worst ones for the text listing, so memory
 * follows the open connections, not the length of the capture. */
#ifndef TCPSTATE_REPORT_H
#define TCPSTATE_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "analyses.h"
#include "conn.h"
#include "decode.h"
#include "options.h"
#include "output.h"
#include "tracker.h"

/* Totals of a run, for the summary. */
struct run_summary {
	const char *const *files;
	size_t nfiles;
	uint64_t frames;                          /* frames read */
	uint64_t segments;                        /* TCP segments used */
	uint64_t decode[DECODE_STATUS_COUNT];     /* frames not used, by reason */
	uint64_t first_ns, last_ns;               /* first and last frame read */
	uint64_t ref_ns;                          /* the reference time */
	bool ref_is_at;                           /* --at given */
	const char *iface;                        /* live capture: the interface */
	const char *ref_kind;                     /* live: "stop" or "snapshot"; NULL: from ref_is_at */
	unsigned input_errors;                    /* files unreadable or damaged */
	const struct tracker_stats *tracker;
};

struct report;

/* NULL on out of memory. o and out must outlive the report. */
struct report *report_create(const struct options *o, struct out *out);

/* tracker_sink.retired: takes (or frees) a final connection. JSON records
 * and conn.log rows are written REPORT_BATCH at a time (report_flush). */
bool report_take(void *ctx, struct conn *c);

/* Write the records held back for a batch now (before output is flushed
 * for a reader waiting on it, and before a fork). */
void report_flush(struct report *r);

/* For tracker_config.zeek_upto: the largest connection id whose Zeek fields
 * the report may still show. In text, a connection that can no longer make
 * the --limit listing needs none, nor any without the listing (--report);
 * JSON and conn.log show every connection's. */
const uint64_t *report_zeek_upto(const struct report *r);

/* tracker_sink.unclean: connection id will not be closed cleanly. In text,
 * once --limit such ids are known, no larger id can make the listing. */
void report_unclean(struct report *r, uint64_t id);

/* The analyses whose sections the report writes (may be NULL). */
void report_set_analyses(struct report *r, struct analyses *an);

/* The sections to write: --report, else the default for the format. */
unsigned report_mask(const struct report *r);

/* Reference time is known only at the end (last packet) unless --at. */
void report_set_reference(struct report *r, uint64_t ref_ns);

/* Write what is still to be written: the text report, or the JSON summary. */
void report_finish(struct report *r, const struct run_summary *s);

void report_destroy(struct report *r);

/* ---- shared by report_json.c and report_text.c ---- */

#define REPORT_BATCH 32

struct report {
	const struct options *opt;
	struct out *out;
	uint64_t ref_ns;
	uint64_t first_ns;
	uint64_t state_count[2][TS_COUNT];
	uint64_t connections;
	uint64_t unclean;
	/* text: the connections to list, a max-heap on list order while
	 * collecting (worst kept entry on top), sorted at the end */
	struct conn **kept;
	size_t nkept, capkept;
	uint64_t dropped;          /* connections not kept for the listing */
	uint64_t zeek_upto;        /* report_zeek_upto() */
	/* text: the smallest ids of connections known to end unclean before
	 * they are retired (report_unclean), a max-heap of up to --limit */
	uint64_t *unclean_ids;
	size_t n_unclean_ids, cap_unclean_ids;
	bool zeek_header_done;
	struct analyses *an;
	/* JSON and conn.log: connections retired, their records not yet
	 * written. Written in batches, the writer's code is fetched once a
	 * batch, not once a record between packets that push it out of the
	 * instruction cache. */
	struct conn *batch[REPORT_BATCH];
	size_t nbatch;
};

void report_json_connection(struct report *r, const struct conn *c);
void report_json_summary(struct report *r, const struct run_summary *s);
void report_text(struct report *r, const struct run_summary *s);
/* --format zeek (report_zeek.c): one row per connection (the header with
 * the first), then #close (and the header, if there was no row). */
void report_zeek_connection(struct report *r, const struct conn *c);
void report_zeek_footer(struct report *r, const struct run_summary *s);

#endif
