/* tracker.h - turns TCP segments into connection incarnations and the
 * states of both endpoints. Owns the flow table; hands every connection to
 * the sink exactly once, when its states can no longer change (retired) or at
 * tracker_finish(). Analyses subscribe to its events. */
#ifndef TCPSTATE_TRACKER_H
#define TCPSTATE_TRACKER_H

#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "packet.h"

/* Things the state machine saw that should not happen. Keep
 * anomaly_kind_name() in step. */
enum anomaly_kind {
	AN_BAD_FLAGS,          /* impossible flag combination (SYN+FIN, no ACK, ...) */
	AN_UNEXPECTED,         /* a segment the endpoint's state does not allow */
	AN_SYN_ON_ESTABLISHED, /* a SYN with a new ISN on a synchronised connection */
	AN_RST_OUT_OF_WINDOW,  /* an RST outside the receiver's window (ignored) */
	AN_AFTER_CLOSE,        /* data/FIN from an endpoint that had closed or been reset */
	AN_NOT_ACCEPTED,       /* a retransmission proves a captured segment was not accepted */
	AN_ACK_UNSEEN,         /* an ACK for data the capture never showed (capture loss) */
	AN_COUNT
};

const char *anomaly_kind_name(enum anomaly_kind k);

/* Idle this long, a connection is frozen (packed, conn_pack.h): most that
 * are wait for a timer (TIME_WAIT's minute, a SYN's check), and a live
 * record costs three times a frozen one. Unpacking one that wakes up costs
 * about as much as a packet. The walk that freezes them runs at most once
 * every TRACKER_FREEZE_BATCH_NS, so a connection is frozen up to that much
 * later: packing one at a time between packets pushed the packet path's
 * code out of the instruction cache (half the misses of a run). With more
 * than TRACKER_LIVE_MAX live records (a flood makes a million in a second),
 * the longest idle are frozen sooner, TRACKER_LIVE_BATCH more at a time:
 * memory stays bounded by the connections, at a live record's size for
 * only TRACKER_LIVE_MAX of them. A connection that only waits out
 * TIME_WAIT or its linger (the TIME_WAIT and CLOSED lists) is frozen after
 * TRACKER_FREEZE_CLOSED_NS: stray segments after a close are rare, and
 * closed connections were a fifth of the live records at the 20M bench
 * capture's peak. Freezing changes no output. */
#define TRACKER_FREEZE_NS (1000000000ULL)
#define TRACKER_FREEZE_CLOSED_NS (100000000ULL)
#define TRACKER_FREEZE_BATCH_NS (16000000ULL)
#define TRACKER_LIVE_MAX (1u << 17)
#define TRACKER_LIVE_BATCH (TRACKER_LIVE_MAX / 64)

/* Subscriptions. Every callback may be NULL. */
struct tracker_sink {
	void *ctx;
	/* A connection is final (as of the reference time). Return true to take
	 * ownership of c (free it later with conn_destroy); false and the
	 * tracker frees it. */
	bool (*retired)(void *ctx, struct conn *c);
	/* Every segment, after the state machine ran; with segment_flags set,
	 * only the first and those that carry one of those TCP flags. */
	void (*segment)(void *ctx, const struct conn *c, int sender_role, const struct packet *p);
	uint8_t segment_flags;
	/* Every state change; with state_mask set, only those from or to a
	 * state whose bit (1 << enum tcp_state) is in it. */
	void (*state_changed)(void *ctx, const struct conn *c, const struct transition *t);
	uint16_t state_mask;
	void (*anomaly)(void *ctx, const struct conn *c, const struct packet *p, enum anomaly_kind k);
	/* c has just got its first CF_UNCLEAN flag: it will not be closed
	 * cleanly, whatever comes. */
	void (*unclean)(void *ctx, const struct conn *c);
};

struct tracker_config {
	uint64_t time_wait_ns;   /* TIME_WAIT length (2 x MSL): Linux uses 60 s (TCP_TIMEWAIT_LEN) */
	uint64_t linger_ns;      /* how long a fully closed connection stays to absorb stray segments */
	/* Idle timeout per state (0: never): a connection idle longer than the
	 * timeout of its longest-lived endpoint state is handed out flagged
	 * "expired". CLOSED and TIME_WAIT are governed by linger/time_wait. */
	uint64_t idle_ns[TS_COUNT];
	uint64_t max_connections; /* 0: no cap; else evict the longest idle first */
	bool keep_timeline;      /* record every transition in conn->tl */
	/* Zeek's model (zeek.c) is kept only for connections whose id is at
	 * most *zeek_upto, read at every segment: the report will not show the
	 * others' Zeek fields (report_zeek_upto()), which stay as they were
	 * (zero for one above the bound from its first segment). It may only
	 * go down. NULL: for every connection. */
	const uint64_t *zeek_upto;
};

struct tracker_stats {
	uint64_t segments;           /* TCP segments processed */
	uint64_t connections;        /* incarnations created */
	uint64_t retired;            /* handed to the sink before the end */
	uint64_t oom;                /* segments dropped because memory ran out */
	uint64_t expired;            /* handed out after an idle timeout */
	uint64_t evicted;            /* handed out early to respect max_connections */
	uint64_t duplicates;         /* segments captured twice (SPAN ports), ignored */
	uint64_t anomalies[AN_COUNT];
	uint64_t peak_open;          /* most connections in the table at once */
	uint64_t frozen, thawed;     /* connections packed while idle, and unpacked again */
};

struct tracker;

/* NULL on out of memory. The config and sink are copied. */
struct tracker *tracker_create(const struct tracker_config *cfg, const struct tracker_sink *sink);

/* Frees everything, including connections not yet handed out; NULL is a no-op. */
void tracker_destroy(struct tracker *t);

/* Process one segment (time order expected; small steps back are tolerated). */
void tracker_packet(struct tracker *t, const struct packet *p);

/* The same, queued: the segment is processed a few segments later, its
 * connection fetched from memory meanwhile (file runs). tracker_packet,
 * _tick, _foreach and _finish process what is queued first; read the stats
 * after one of them. */
void tracker_push(struct tracker *t, const struct packet *p);

/* tracker_push() without the copy: tracker_slot() returns where the next
 * segment goes (processing the oldest queued one if the queue is full);
 * decode into it, then tracker_push_slot() queues it. A slot not pushed is
 * handed out again by the next tracker_slot(). */
struct packet *tracker_slot(struct tracker *t);
void tracker_push_slot(struct tracker *t);

/* Process every queued segment now. */
void tracker_drain(struct tracker *t);

/* Settle every connection at reference time ref_ns (held-back transitions,
 * TIME_WAIT expiry) and hand them all to the sink. */
void tracker_finish(struct tracker *t, uint64_t ref_ns);

const struct tracker_stats *tracker_stats(const struct tracker *t);

/* Connections currently in the table. */
uint64_t tracker_open_count(const struct tracker *t);

/* Advance the clock without a packet (live mode): applies timeouts. */
void tracker_tick(struct tracker *t, uint64_t now_ns);

/* Call fn for every connection in the table (live reports). */
void tracker_foreach(struct tracker *t, void (*fn)(void *ctx, const struct conn *c), void *ctx);

/* Modulo-2^32 sequence comparisons (RFC 1982). */
static inline bool seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool seq_leq(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }
static inline bool seq_gt(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }
static inline bool seq_geq(uint32_t a, uint32_t b) { return (int32_t)(a - b) >= 0; }

#endif
