/* conn_pack.h - a connection packed into a few bytes while it is idle. Most
 * tracked connections are waiting: in TIME_WAIT for a minute, or a flood's
 * lone SYN for its check. Packed, such a record takes about a third of a live
 * one; the tracker unpacks it when a segment or a timer needs it. Packing is
 * lossless but for one field, which nothing can read any more when it goes:
 * a connection unpacked is the connection that was packed. */
#ifndef TCPSTATE_CONN_PACK_H
#define TCPSTATE_CONN_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"

struct conn_pool;

/* An endpoint's last_sig only serves to spot a copy of its last segment
 * arriving within the tracker's DUPLICATE_NS (1 ms) of it. Packed this long
 * after that segment (the idle rule freezes a connection after 1 s, a
 * closed one after TRACKER_FREEZE_CLOSED_NS), a copy would need the
 * capture's time to step back almost as far, so last_sig is left out and
 * unpacks as 0 (no copy matches it). A connection frozen sooner, as a
 * flood's are to keep LIVE_MAX, keeps it. */
#define CONN_PACK_SIG_NS (100000000ULL)

/* The flow table and the idle lists hold either kind of record; node.frozen
 * says which. */
struct frozen_conn {
	struct idle_node node;
	uint8_t data[];      /* the key, then the rest of the connection, packed (conn_pack.c) */
};

/* c packed into a new frozen record from pool; now_ns is the capture's time
 * (see CONN_PACK_SIG_NS). The record's node.since_ns is c's, which its
 * last_ns is packed against, so it must not change while frozen (a node
 * only moves on its list once thawed); the rest of the node is the caller's
 * to set. NULL when c cannot be packed (it has a rare part, which few
 * connections need) or memory ran out. */
struct frozen_conn *conn_freeze(const struct conn *c, struct conn_pool *pool, uint64_t now_ns);

/* The key of f. */
void frozen_conn_key(const struct frozen_conn *f, struct flow_key *k);

/* Unpack f into c, which must be zeroed (c->pooled and c->node are left as
 * they are). false if memory for the timeline ran out. */
bool conn_thaw(const struct frozen_conn *f, struct conn *c);

/* The connection's last activity (c->last_ns), without unpacking the rest. */
uint64_t frozen_conn_last_ns(const struct frozen_conn *f);

/* The connection id of f, without unpacking the rest. */
uint64_t frozen_conn_id(const struct frozen_conn *f);

/* The bytes f takes: its header and its packed data (found by unpacking
 * it; for tests and measurements). 0 if memory ran out meanwhile. */
size_t frozen_conn_size(const struct frozen_conn *f);

/* Whether f took the short form of a lone SYN (one SYN, nothing else:
 * a flood's connections), for the tests. */
bool frozen_conn_is_lone(const struct frozen_conn *f);

/* Free f (back to its pool); NULL is a no-op. */
void frozen_conn_destroy(struct frozen_conn *f);

#endif
