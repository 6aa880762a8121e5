/* run.c - the pipeline of a file run. Reads the -r files in order as one
 * capture, stops at -c or at the --at reference time, keeps going past a
 * damaged or unreadable file (after saying so) so nothing readable is lost,
 * and always writes the report of what it could read. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "analyses.h"
#include "capture.h"
#include "report.h"
#include "run.h"
#include "tracker.h"

/* How long a fully closed connection (both endpoints CLOSED) stays in the
 * table to absorb stray segments (late retransmissions, RSTs) before it is
 * reported and freed. */
#define LINGER_NS (5 * 1000000000ULL)

/* The tracker's sink: every event goes to the analyses, every final
 * connection to the analyses and then the report. */
static bool pipeline_retired(void *ctx, struct conn *c)
{
	struct pipeline *pl = ctx;

	analyses_conn_final(pl->an, c, pl->ref_ns ? pl->ref_ns : c->last_ns);
	return report_take(pl->rep, c);
}

static void pipeline_segment(void *ctx, const struct conn *c, int s, const struct packet *p)
{
	analyses_segment(((struct pipeline *)ctx)->an, c, s, p);
}

static void pipeline_state(void *ctx, const struct conn *c, const struct transition *t)
{
	analyses_state(((struct pipeline *)ctx)->an, c, t);
}

static void pipeline_unclean(void *ctx, const struct conn *c)
{
	report_unclean(((struct pipeline *)ctx)->rep, c->id);
}

static void pipeline_anomaly(void *ctx, const struct conn *c, const struct packet *p,
			     enum anomaly_kind k)
{
	analyses_anomaly(((struct pipeline *)ctx)->an, c, p, k);
}

bool pipeline_init(struct pipeline *pl, const struct options *o, int out_fd)
{
	struct analyses_config ac = {
		.close_wait_after_ns = o->close_wait_after_ns,
		.vanished_after_ns = o->vanished_after_ns,
		.interval_ns = o->interval_ns,
		.syn_rate = o->syn_rate,
		.syn_incomplete = o->syn_incomplete,
		.syn_buckets = (uint32_t)o->syn_buckets,
		.tw_warn = o->tw_warn,
	};
	struct tracker_config tc = {
		.time_wait_ns = o->time_wait_ns,
		.linger_ns = LINGER_NS,
		.keep_timeline = o->format == FMT_JSON || o->timeline,
		.max_connections = o->max_connections,
	};
	struct tracker_sink sink = {
		.ctx = pl, .retired = pipeline_retired, .segment = pipeline_segment,
		.segment_flags = ANALYSES_SEGMENT_FLAGS,
		.state_changed = pipeline_state, .state_mask = ANALYSES_STATE_MASK,
		.anomaly = pipeline_anomaly,
		.unclean = pipeline_unclean,
	};

	memset(pl, 0, sizeof(*pl));
	memcpy(tc.idle_ns, o->idle_ns, sizeof(tc.idle_ns));
	pl->sum.files = o->files;
	pl->sum.nfiles = o->nfiles;
	pl->out = out_create(out_fd);
	pl->rep = pl->out ? report_create(o, pl->out) : NULL;
	pl->an = analyses_create(&ac);
	if (pl->rep)
		tc.zeek_upto = report_zeek_upto(pl->rep);
	pl->trk = pl->rep && pl->an ? tracker_create(&tc, &sink) : NULL;
	if (!pl->trk) {
		pipeline_destroy(pl);
		return false;
	}
	report_set_analyses(pl->rep, pl->an);
	return true;
}

bool pipeline_finish(struct pipeline *pl, uint64_t ref_ns, bool ref_is_at)
{
	pl->sum.ref_ns = ref_ns;
	pl->sum.ref_is_at = ref_is_at;
	report_set_reference(pl->rep, ref_ns);
	pl->ref_ns = ref_ns;
	tracker_finish(pl->trk, ref_ns);
	analyses_finish(pl->an, ref_ns);
	pl->sum.tracker = tracker_stats(pl->trk);
	report_finish(pl->rep, &pl->sum);
	return out_flush(pl->out);
}

void pipeline_destroy(struct pipeline *pl)
{
	tracker_destroy(pl->trk);
	report_destroy(pl->rep);
	analyses_destroy(pl->an);
	out_destroy(pl->out);
	memset(pl, 0, sizeof(*pl));
}

int run_files(const struct options *o, int out_fd)
{
	struct pipeline pl;
	struct run_summary *sum = &pl.sum;
	uint64_t at_ns = o->at_ns, limit, stop_ns, frames, segments, last_ns;
	bool at_known = o->at_set && !o->at_relative, stop = false;
	int status = 0;

	if (!pipeline_init(&pl, o, out_fd)) {
		fprintf(stderr, "tcpstate: out of memory\n");
		return 1;
	}
	/* The per-frame counters live in locals while reading: pl escapes to
	 * the tracker's sink, so sum's fields would be reloaded and stored
	 * around every tracker_push(). Nothing reads them before the end. */
	frames = sum->frames;
	segments = sum->segments;
	last_ns = sum->last_ns;
	/* -c and --at as plain bounds, one comparison a frame each: no -c is
	 * the largest count, an --at not known (yet) the largest time. */
	limit = o->count ? o->count : UINT64_MAX;
	stop_ns = at_known ? at_ns : UINT64_MAX;
	for (size_t f = 0; f < o->nfiles && !stop; f++) {
		char err[512];
		bool usage;
		struct capture *cap = capture_open_file(o->files[f], o->filter, err, sizeof(err),
							&usage);

		if (!cap) {
			fprintf(stderr, "tcpstate: %s: %s\n", o->files[f], err);
			if (usage) {
				status = 2;
				stop = true;
				break;
			}
			sum->input_errors++;
			status = 1;
			continue;
		}
		for (;;) {
			struct packet *p;
			enum decode_status why = DECODE_OK;
			enum capture_status cs;

			if (frames >= limit) {
				stop = true;
				break;
			}
			/* decoded in its place in the tracker's queue (tracker_slot) */
			p = tracker_slot(pl.trk);
			cs = capture_next(cap, p, &why);
			if (cs != CAP_PACKET && cs != CAP_SKIPPED) {
				if (cs == CAP_DAMAGED) {
					fprintf(stderr, "tcpstate: %s: %s\n", o->files[f],
						capture_error(cap));
					sum->input_errors++;
					status = 1;
				}
				break;
			}
			if (!frames) {
				sum->first_ns = p->ts_ns;
				if (o->at_set && o->at_relative) {
					at_ns = p->ts_ns + o->at_ns;
					at_known = true;
					stop_ns = at_ns;
				}
			}
			if (p->ts_ns > stop_ns) {
				stop = true; /* past the reference time: the rest cannot matter */
				break;
			}
			frames++;
			if (p->ts_ns > last_ns)
				last_ns = p->ts_ns;
			if (cs == CAP_SKIPPED) {
				sum->decode[why]++;
				continue;
			}
			/* Numbers run on across rotated files, so the timeline's
			 * packet numbers stay unique within the run. */
			p->number = frames;
			segments++;
			tracker_push_slot(pl.trk);
		}
		capture_close(cap);
	}
	sum->frames = frames;
	sum->segments = segments;
	sum->last_ns = last_ns;

	/* A usage error (a filter expression the link type cannot take) gets no
	 * report: the command was wrong, and an empty report reads as "no traffic". */
	if (status != 2 &&
	    !pipeline_finish(&pl, o->at_set ? (at_known ? at_ns : o->at_ns) : sum->last_ns, o->at_set) &&
	    status == 0) {
		fprintf(stderr, "tcpstate: cannot write the report: %s\n", strerror(errno));
		status = 1;
	}
	pipeline_destroy(&pl);
	return status;
}
