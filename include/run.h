/* run.h - one run of tcpstate: capture -> decode -> tracker -> analyses ->
 * report, with the exit status the user sees. run.c reads files, live.c
 * watches an interface; both build the same pipeline. */
#ifndef TCPSTATE_RUN_H
#define TCPSTATE_RUN_H

#include "analyses.h"
#include "options.h"
#include "report.h"
#include "tracker.h"

/* Read the -r files in order as one capture and write the report to out_fd.
 * Diagnostics go to stderr. Returns the exit status: 0 ok, 1 input problem,
 * 2 usage error (a bad filter expression). */
int run_files(const struct options *o, int out_fd);

/* Watch o->iface until -c, --duration, SIGINT or SIGTERM (live.c). */
int run_live(const struct options *o, int out_fd);

/* -D: list the interfaces live capture can open (live.c). */
int list_interfaces(void);

/* The objects of one run, wired together. */
struct pipeline {
	struct out *out;
	struct report *rep;
	struct analyses *an;
	struct tracker *trk;
	uint64_t ref_ns;          /* reference for connections handed out now (0: their last packet) */
	struct run_summary sum;
};

/* Build the pipeline for o writing to out_fd; false on out of memory. */
bool pipeline_init(struct pipeline *pl, const struct options *o, int out_fd);

/* Settle everything at ref_ns and write the final report; false if the
 * report could not be written. */
bool pipeline_finish(struct pipeline *pl, uint64_t ref_ns, bool ref_is_at);

void pipeline_destroy(struct pipeline *pl);

#endif
