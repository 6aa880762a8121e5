/* run.h - one run of tcpstate over its inputs: capture -> decode ->
 * tracker -> report, with the exit status the user sees. */
#ifndef TCPSTATE_RUN_H
#define TCPSTATE_RUN_H

#include "options.h"

/* Read the -r files in order as one capture and write the report to out_fd.
 * Diagnostics go to stderr. Returns the exit status: 0 ok, 1 input problem,
 * 2 usage error (a bad filter expression). */
int run_files(const struct options *o, int out_fd);

struct analyses;
/* The analyses configured from the command line; NULL on out of memory. */
struct analyses *analyses_from_options(const struct options *o);

#endif
