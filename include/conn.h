/* conn.h - one connection incarnation: its two endpoints, their states,
 * counters and timeline. The tracker writes it, analyses and reporters read
 * it. Role index 0 is always the client, 1 the server. */
#ifndef TCPSTATE_CONN_H
#define TCPSTATE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tcp_fsm.h"
#include "zeek.h"

enum { ROLE_CLIENT = 0, ROLE_SERVER = 1 };

/* Canonical 4-tuple: the lower (addr, port) first, so both directions of a
 * connection hash to one entry. Zeroed before filling; no padding. */
struct flow_key {
	uint8_t addr[2][16];
	uint16_t port[2];
	uint8_t family;
	uint8_t pad[3];
};
_Static_assert(sizeof(struct flow_key) == 40, "flow_key must have no implicit padding");

/* Connection flags (the "flags" array of the output). Keep conn_flag_name() in step. */
enum conn_flag {
	CF_PICKED_UP       = 1u << 0,  /* first packet was not a SYN: joined mid-stream */
	CF_PORT_REUSED     = 1u << 1,  /* an earlier incarnation of this 4-tuple is in the capture */
	CF_ROLE_BY_PORT    = 1u << 2,  /* no SYN or SYN-ACK: client/server guessed from the ports */
	CF_ROLE_BY_SYNACK  = 1u << 3,  /* no SYN: the SYN-ACK's sender is the server */
	CF_RST_IGNORED     = 1u << 4,  /* an RST outside the receiver's window was seen and did not count */
	CF_NOT_ACCEPTED    = 1u << 5,  /* a retransmission proved a captured segment was not accepted */
	CF_SIM_OPEN        = 1u << 6,  /* simultaneous open */
	CF_SIM_CLOSE       = 1u << 7,  /* simultaneous close (CLOSING) */
	CF_REFUSED         = 1u << 8,  /* the SYN was answered by RST */
	CF_ANOMALY         = 1u << 9,  /* at least one segment the state machine did not expect */
	CF_TW_EXPIRED      = 1u << 10, /* a TIME_WAIT ran out before the reference time */
	CF_SUPERSEDED      = 1u << 11, /* a later incarnation of the 4-tuple took over */
	CF_SYN_ON_ESTAB    = 1u << 12, /* a SYN with a new ISN arrived on a synchronised connection */
	CF_RESET           = 1u << 13, /* an accepted RST ended it */
	CF_EXPIRED         = 1u << 14, /* idle longer than its state's timeout: no longer tracked */
	CF_EVICTED         = 1u << 15, /* dropped to stay under --max-connections */
	CF_SILENT_SYN      = 1u << 16, /* the SYN sender never retransmitted nor ACKed: no socket (spoofed, or gave up) */
	CF_SILENT_SYNACK   = 1u << 17, /* the SYN-ACK was never retransmitted: no request held (SYN cookie, or gave up) */
	CF_FLAG_COUNT_     = 18
};

/* Short name of one flag bit, e.g. "picked_up". */
const char *conn_flag_name(uint32_t bit);

/* Per-endpoint bits. */
enum peer_bit {
	PB_SEEN       = 1u << 0,  /* sent at least one segment */
	PB_ISN        = 1u << 1,  /* isn valid (its SYN was seen) */
	PB_ACKED      = 1u << 2,  /* max_ack valid */
	PB_FIN        = 1u << 3,  /* fin_seq valid */
	PB_WSCALE     = 1u << 4,  /* sent the window scale option on its SYN */
	PB_DISTRUST_ACK = 1u << 5, /* once ignored an ACK of its SYN/FIN: later ones wait for proof */
	PB_DISTRUST_CTL = 1u << 6, /* once ignored the peer's FIN/SYN-ACK: later ones wait for its ACK */
	PB_CTL_REXMIT = 1u << 7,  /* its last SYN/FIN was a retransmission */
	PB_SENT_SYNACK = 1u << 8, /* it sent a SYN-ACK */
	PB_DISTRUST_ON_FIN = 1u << 9, /* PB_DISTRUST_ACK concerns ACKs carried on FINs (else on non-FINs) */
};

/* A transition the observer holds back because the endpoint has ignored the
 * same kind of segment before: applied once evidence says it was accepted. */
enum pending_kind {
	PENDING_NONE,
	PENDING_QUIET,    /* an ACK of the endpoint's FIN/SYN: accepted if it stops retransmitting */
	PENDING_CONFIRM,  /* the peer's FIN/SYN-ACK: accepted once the endpoint acknowledges it */
};

/* The held-back transition itself; its kind is peer.pend_kind. */
struct pending {
	uint64_t ts_ns;
	uint64_t packet;
	uint64_t due_ns;     /* PENDING_QUIET: applied if nothing contradicts it by then */
	uint32_t ack_needed; /* PENDING_CONFIRM: the endpoint's ACK must reach this */
	uint32_t ts_val;     /* the held segment's TSval: an echo of it confirms */
	uint8_t to;
	uint8_t tcp_flags;
	uint8_t has_ts;
};

/* What few connections need: held-back transitions and the gaps between
 * retransmitted SYNs/FINs. Allocated the first time one is, so the common
 * record stays small (conn.rare, NULL until then). */
struct conn_rare {
	struct pending pend[2];      /* by role, valid while peer[role].pend_kind says so */
	uint64_t ctl_gap_ns[2];      /* gap between an endpoint's last two copies of its SYN/FIN */
	uint64_t ctl_gap_prev_ns[2]; /* the gap before that (constant or doubling: the RTO's pattern) */
};

/* Per endpoint, the fields every segment reads first. */
struct peer {
	uint64_t packets;
	uint64_t bytes;            /* TCP payload bytes sent */
	uint64_t last_ns;          /* its last segment */
	uint64_t last_sig;         /* that segment's header fields, hashed (tracker.c is_duplicate) */
	uint32_t snd_nxt;          /* highest seq + len (+SYN/FIN) sent */
	uint32_t max_ack;          /* highest acknowledgment number sent */
	uint32_t max_win;          /* largest window advertised, scaled when known */
	uint32_t unanswered;       /* segments sent since the peer last sent one */
	uint32_t isn;
	uint32_t fin_seq;          /* sequence number of its FIN */
	uint32_t rtt_us;           /* capture point -> endpoint -> capture point, from the handshake (0: unknown) */
	uint16_t bits;             /* enum peer_bit */
	uint8_t state;             /* enum tcp_state, as of the last packet processed */
	uint8_t wscale;
	uint8_t prev_state;        /* the state before the last change */
	uint8_t last_flags;        /* TCP flags of the segment behind the last change */
	uint8_t pend_kind;         /* enum pending_kind; the details are in conn.rare */
	uint64_t since_ns;         /* when the current state began */
	uint64_t since_bytes;      /* bytes it had sent when the current state began */
	uint64_t ctl_tx_ns;        /* when it last sent its SYN/FIN (for retransmission gaps) */
};

/* One state change of one side. */
struct transition {
	uint64_t ts_ns;
	uint64_t packet;           /* 0: not caused by a packet (TIME_WAIT expiry, reuse) */
	uint8_t side;              /* ROLE_* */
	uint8_t from, to;
	uint8_t tcp_flags;
	uint8_t cause;             /* enum transition_cause */
};

enum transition_cause {
	TC_PACKET,        /* the segment in `packet` */
	TC_PICKUP,        /* mid-stream pickup: assumed ESTABLISHED */
	TC_REVERT,        /* a retransmission proved an earlier segment was not accepted */
	TC_CONFIRMED,     /* a held-back transition was confirmed (packet = the held segment) */
	TC_TIMEOUT,       /* TIME_WAIT ran out (2 x MSL) */
	TC_REUSED,        /* a new incarnation of the 4-tuple ended this one */
	TC_INFERRED,      /* implied by the other side's segment (one-sided capture) */
	TC_CROSSED,       /* the segments crossed: the endpoint sent before it received */
};

const char *transition_cause_name(uint8_t cause);

/* A connection's place on its idle list (tracker.c). Frozen connections
 * (conn_pack.h) sit on the same lists, so the node says which kind holds it. */
struct idle_node {
	struct idle_node *prev, *next;  /* least recently active first */
	uint64_t since_ns;   /* when it joined the list: due = since + the list's check interval */
	uint8_t cls;         /* which list: a tcp_state */
	uint8_t frozen;      /* the node is in a struct frozen_conn, not in a struct conn */
	/* The flow table's hash of the key (flow_table.c keeps it): the record's
	 * slot is found without hashing the key again, and a walk of a list
	 * can fetch the slot of the node it will come to next. */
	uint32_t hash;
};
_Static_assert(sizeof(struct idle_node) == 32, "idle_node: the hash fills what was padding");

/* Laid out in the order a packet needs the fields: the first five cache
 * lines (records are 64-byte aligned, conn_pool.c) hold the key, the id
 * and flags, the idle-list node and both endpoints, everything the packet
 * path reads and writes unless Zeek's view is kept (CONN_HOT_BYTES); what
 * only state changes and reports read follows, and Zeek's fields come last,
 * so a connection the text report cannot list is fetched in five lines, not
 * seven (conn_prefetch). Records come from conn_pool.c; an idle one is
 * packed into a struct frozen_conn (conn_pack.h) until needed. */
struct conn {
	struct flow_key key;
	uint64_t id;
	uint32_t flags;                      /* enum conn_flag */
	uint32_t tl_len;
	struct idle_node node;
	uint64_t last_ns;
	struct transition *tl;               /* timeline, NULL unless recorded */
	struct peer peer[2];                 /* [ROLE_CLIENT], [ROLE_SERVER] */
	struct conn_rare *rare;              /* NULL unless needed */
	uint8_t client_is_0;                 /* key.addr[0]/port[0] is the client */
	uint8_t pooled;                      /* from conn_pool.c: conn_destroy() gives it back */
	uint8_t tl_inline;                   /* room for this many changes after the struct (conn_pool.c) */
	uint32_t tl_cap;
	uint64_t first_ns;
	uint64_t first_packet;
	uint64_t missed_bytes;               /* bytes acknowledged that the capture never showed */
	uint32_t anomalies;
	struct zeek_conn zeek;               /* Zeek's view (zeek.c) */
};

#define CONN_HOT_BYTES offsetof(struct conn, first_ns)
_Static_assert(offsetof(struct conn, first_ns) <= 5 * 64, "the packet path's fields fit in five lines");

/* The endpoint role of the sender of a segment whose source is key side `from0` ? 0 : 1. */
static inline int conn_role_of_side(const struct conn *c, int key_side)
{
	/* ROLE_CLIENT when (key_side == 0) == (c->client_is_0 != 0), as one
	 * XOR of two bits: the packet path asks it several times a segment */
	_Static_assert(ROLE_CLIENT == 0 && ROLE_SERVER == 1, "roles are 0 and 1");
	return (key_side != 0) ^ (c->client_is_0 == 0);
}

/* Address/port of an endpoint by role. */
static inline const uint8_t *conn_addr(const struct conn *c, int role)
{
	return c->key.addr[(role == ROLE_CLIENT) == (c->client_is_0 != 0) ? 0 : 1];
}
static inline uint16_t conn_port(const struct conn *c, int role)
{
	return c->key.port[(role == ROLE_CLIENT) == (c->client_is_0 != 0) ? 0 : 1];
}

/* True when both sides ended with the FIN handshake (each CLOSED or in
 * TIME_WAIT, no RST, no anomaly); the text listing puts these last. */
bool conn_closed_cleanly(const struct conn *c);

/* Flags that make conn_closed_cleanly() false whatever comes after (flags
 * are never cleared). */
#define CF_UNCLEAN (CF_RESET | CF_REFUSED | CF_ANOMALY)

/* Hint that c is about to be read and written (the packet path prefetches
 * a connection a few packets before it gets there). */
static inline void conn_prefetch(const struct conn *c)
{
	for (size_t off = 0; off < CONN_HOT_BYTES; off += 64)
		__builtin_prefetch((const char *)c + off, 1);
}

/* The rest: Zeek's fields, the first time and packet, the rare counts. */
static inline void conn_prefetch_rest(const struct conn *c)
{
	for (size_t off = CONN_HOT_BYTES & ~(size_t)63; off < sizeof(*c); off += 64)
		__builtin_prefetch((const char *)c + off, 1);
	__builtin_prefetch((const char *)c + sizeof(*c) - 1, 1);
}

/* The place for one more transition at the end of the timeline (grows
 * it; NULL on out of memory): the caller writes it there. */
struct transition *conn_timeline_next(struct conn *c);

/* A timeline's room: for the handshake's 4 changes (as most live
 * connections have made), then 10 (a clean close makes 9 or 10), then twice
 * as many each time. A record from a pool made for timelines has room for
 * CONN_TL_INLINE changes right after it (c->tl_inline), which its timeline
 * takes first: in the record's own lines and pages, the look-ahead fetches
 * it with the record, and writing a change waited for a separate array
 * (a sixth of a JSON run's cycles went to reaching those arrays). A clean
 * close retired after TIME_WAIT makes 11 changes. */
#define CONN_TL_SMALL 4
#define CONN_TL_USUAL 10
#define CONN_TL_INLINE 11

/* Where c's own room for changes is (c->tl_inline of them). */
static inline struct transition *conn_tl_own(const struct conn *c)
{
	return (struct transition *)((char *)(uintptr_t)c + sizeof(struct conn));
}

/* A timeline array with room for cap changes for c (its own room when it
 * has that, is not using it and cap fits, else malloc'd), and giving one
 * of c's back (tl may be NULL; its own room is not freed). */
struct transition *conn_tl_alloc(const struct conn *c, uint32_t cap);
void conn_tl_free(const struct conn *c, struct transition *tl);

/* c->rare, allocated (zeroed) if it was not yet; NULL on out of memory. */
struct conn_rare *conn_rare_get(struct conn *c);

/* Free what a conn owns (timeline, rare part) and the conn itself; NULL is a no-op. */
void conn_destroy(struct conn *c);

#endif
