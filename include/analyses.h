/* analyses.h - the troubleshooting reports: stuck CLOSE_WAIT, half-open
 * connections, SYN-flood indicators, TIME_WAIT pressure, anomalies and
 * inferred listeners. Fed by the tracker's events and by every final
 * connection; memory is bounded by services and hosts, not connections. */
#ifndef TCPSTATE_ANALYSES_H
#define TCPSTATE_ANALYSES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "output.h"
#include "packet.h"
#include "tracker.h"

/* Report sections (--report). */
enum report_section {
	SEC_STATES      = 1u << 0,
	SEC_CONNECTIONS = 1u << 1,
	SEC_CLOSE_WAIT  = 1u << 2,
	SEC_HALF_OPEN   = 1u << 3,
	SEC_SYN_FLOOD   = 1u << 4,
	SEC_TIME_WAIT   = 1u << 5,
	SEC_ANOMALIES   = 1u << 6,
	SEC_LISTENERS   = 1u << 7,
	SEC_ALL         = 0xff,
};

/* Parse "close_wait,half_open" or "all" into a mask; false on an unknown name. */
bool report_sections_parse(const char *list, unsigned *mask);

struct analyses_config {
	uint64_t close_wait_after_ns;  /* CLOSE_WAIT (and FIN_WAIT_2) older than this is stuck */
	uint64_t vanished_after_ns;    /* one side silent this long while the other retransmits */
	uint64_t interval_ns;          /* SYN-rate bucket */
	uint64_t syn_rate;             /* SYNs per second to one service that may be a flood */
	double syn_incomplete;         /* share of SYNs that never complete a handshake */
	uint32_t syn_buckets;          /* consecutive buckets both thresholds must hold */
	double tw_warn;                /* share of the ephemeral port range in TIME_WAIT that warns */
};

/* Defaults; README and man page give the reasons. */
#define DEFAULT_CLOSE_WAIT_AFTER_S 60
#define DEFAULT_VANISHED_AFTER_S 30
#define DEFAULT_SYN_RATE 100
#define DEFAULT_SYN_INCOMPLETE 0.8
#define DEFAULT_SYN_BUCKETS 3
#define DEFAULT_TW_WARN 0.5
/* Linux's default net.ipv4.ip_local_port_range is 32768-60999. */
#define EPHEMERAL_PORTS (60999 - 32768 + 1)

struct analyses;

struct analyses *analyses_create(const struct analyses_config *cfg);
void analyses_destroy(struct analyses *a);

/* Tracker events (tracker_sink callbacks take void *ctx = the analyses). */
void analyses_segment(void *ctx, const struct conn *c, int sender_role, const struct packet *p);
/* The segments analyses_segment() needs after the first: it passes over the rest. */
#define ANALYSES_SEGMENT_FLAGS (TH_SYN | TH_RST)
void analyses_state(void *ctx, const struct conn *c, const struct transition *t);
/* The states whose changes analyses_state() looks at (tracker_sink.state_mask):
 * a server's SYN_RECEIVED, and TIME_WAIT. It passes over every other change. */
#define ANALYSES_STATE_MASK ((1u << TS_SYN_RECEIVED) | (1u << TS_TIME_WAIT))
void analyses_anomaly(void *ctx, const struct conn *c, const struct packet *p, enum anomaly_kind k);

/* A connection whose states are final as of ref_ns (retired, or at the end). */
void analyses_conn_final(struct analyses *a, const struct conn *c, uint64_t ref_ns);

/* Close open buckets and alerts at the reference time. */
void analyses_finish(struct analyses *a, uint64_t ref_ns);

/* The sections in mask as text (each finding with a hint), or as JSON Lines.
 * With only_findings, text sections without findings are left out. */
void analyses_write_text(struct analyses *a, struct out *o, unsigned mask, bool only_findings);
void analyses_write_json(struct analyses *a, struct out *o, unsigned mask);

/* Counts for the live tick: stuck CLOSE_WAIT now, half-open now, alerts so far. */
struct analyses_counts {
	uint64_t close_wait_stuck;
	uint64_t half_open;
	uint64_t syn_alerts;
	uint64_t time_wait_peak;
	uint64_t time_wait_now;
};
void analyses_counts(const struct analyses *a, struct analyses_counts *out);

/* Live: syn_flood records ("ongoing") for the alerts raised since the first
 * `first`; returns the number of alerts so far. */
size_t analyses_write_alerts_since(struct analyses *a, struct out *o, size_t first);

#endif
