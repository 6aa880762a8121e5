/* tracker.c - the passive observer. For each segment it finds the
 * connection incarnation, feeds the sender a SEND event and the receiver a
 * RECV event through the table in tcp_fsm.c, and resolves the table's
 * action codes with the connection's history. The capture point is not the
 * endpoint: a retransmission proves that a segment the capture showed was
 * never accepted, and such transitions are undone and, the next time, held
 * back until the endpoint's own behaviour confirms them. */
#include <stdlib.h>
#include <string.h>

#include "bigmem.h"
#include "conn_pack.h"
#include "conn_pool.h"
#include "flow_table.h"
#include "tracker.h"

/* Every connection is on one idle list, chosen by the state of its endpoint
 * that may stay longest (both CLOSED: the CLOSED list), least recently active
 * first. A list's head is therefore the first of its connections to time out,
 * so expiry and eviction cost O(TS_COUNT) per packet. A connection idle for
 * TRACKER_FREEZE_NS is packed (conn_pack.h) where it stands on its list;
 * freeze_at walks each list behind the head, at the first node not yet
 * looked at. */
struct idle_list {
	struct idle_node *head, *tail;
	struct idle_node *freeze_at;
};

#define SYN_CHECK_NS (3 * 1000000000ULL)

/* Packets queued by tracker_push() before they are processed. At a million
 * live connections every slot, connection and idle-list neighbour a packet
 * needs is a cache miss, and waiting for them one after the other was most
 * of the run time. So they are fetched in stages while the packets ahead
 * are processed: the slot when a packet is queued, its connection
 * QUEUE_CONN packets before its turn (the slot has arrived and names it),
 * the connection's idle-list neighbours QUEUE_LINKS before (its links have
 * arrived). */
#define QUEUE_LEN 16
#define QUEUE_CONN 8
#define QUEUE_LINKS 4

struct queued {
	struct packet p;
	struct flow_key key;
	uint32_t hash;
	int side;
	struct flow_hint hint;   /* taken QUEUE_CONN packets before its turn */
	/* The hint checked QUEUE_LINKS packets before its turn: its
	 * connection, the table's entry for the key while the table's epoch
	 * stays at `epoch` (NULL: look it up) */
	struct conn *conn;
	uint64_t epoch;
};

struct tracker {
	struct tracker_config cfg;
	struct tracker_sink sink;
	struct flow_table *ft;
	struct conn_pool *pool;       /* where connection records come from */
	struct tracker_stats st;
	uint64_t next_id;
	uint64_t now_ns;
	struct idle_list idle[TS_COUNT];
	uint64_t check[TS_COUNT];     /* per idle class: look at the head this long after its activity */
	uint64_t expire[TS_COUNT];    /* per idle class: idle timeout; UINT64_MAX: never */
	uint64_t next_due;            /* no list head is due before this (a lower bound) */
	uint64_t next_freeze;         /* no node is to be frozen before this (a lower bound) */
	uint64_t live;                /* connections in the table not frozen */
	/* segment_wanted()'s test in one word: a segment's flags, with bit 8
	 * set, ANDed with this. 0: no segment() at all; bit 8: every segment
	 * (no segment_flags, or none passed yet: the first always goes);
	 * else segment_flags. */
	uint16_t seg_mask;
	/* Ring: packets pushed, not processed yet. Each entry padded to 256
	 * bytes, so that finding one is a shift: at its own 176 bytes each of
	 * a packet's half-dozen uses of its entry multiplied by 11 and by 16
	 * (three instructions): 0.85% of the 1M bench capture's instructions. */
	union queue_slot {
		struct queued q;
		uint8_t room[256];
	} queue[QUEUE_LEN];
	uint32_t q_in, q_out;         /* packets pushed and processed: queue[n % QUEUE_LEN] */
};

_Static_assert(sizeof(union queue_slot) == 256, "a queue entry outgrew its 256 bytes");

const char *anomaly_kind_name(enum anomaly_kind k)
{
	static const char *const names[AN_COUNT] = {
		[AN_BAD_FLAGS] = "bad_flags",
		[AN_UNEXPECTED] = "unexpected_segment",
		[AN_SYN_ON_ESTABLISHED] = "syn_on_established",
		[AN_RST_OUT_OF_WINDOW] = "rst_out_of_window",
		[AN_AFTER_CLOSE] = "segment_after_close",
		[AN_NOT_ACCEPTED] = "segment_not_accepted",
		[AN_ACK_UNSEEN] = "ack_for_unseen_data",
	};
	return (unsigned)k < AN_COUNT ? names[k] : "?";
}

/* tracker_config.zeek_upto when not given: Zeek's model for every connection. */
static const uint64_t zeek_all = UINT64_MAX;

struct tracker *tracker_create(const struct tracker_config *cfg, const struct tracker_sink *sink)
{
	struct tracker *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->cfg = *cfg;
	if (!t->cfg.zeek_upto)
		t->cfg.zeek_upto = &zeek_all;
	if (sink)
		t->sink = *sink;
	t->seg_mask = t->sink.segment ? 0x100 : 0;
	t->ft = flow_table_create();
	t->pool = conn_pool_create(cfg->keep_timeline ? CONN_TL_INLINE : 0);
	if (!t->ft || !t->pool) {
		flow_table_destroy(t->ft);
		conn_pool_release(t->pool);
		free(t);
		return NULL;
	}
	t->next_id = 1;
	for (int st = 0; st < TS_COUNT; st++)
		t->expire[st] = t->check[st] = cfg->idle_ns[st] ? cfg->idle_ns[st] : UINT64_MAX;
	/* A closed connection lingers for stray segments. A TIME_WAIT lasts
	 * 2 x MSL from its start, which is at or before the last activity, so
	 * when its list says it is due settle() always ends it. SYN_SENT and
	 * SYN_RECEIVED are looked at every few seconds: a SYN or SYN-ACK that
	 * is not retransmitted in time means nobody holds the state (see
	 * ctl_timeouts()), and a flood of them must not pile up. */
	t->check[TS_CLOSED] = t->expire[TS_CLOSED] = cfg->linger_ns ? cfg->linger_ns : 1;
	t->check[TS_TIME_WAIT] = t->expire[TS_TIME_WAIT] = cfg->time_wait_ns ? cfg->time_wait_ns : 1;
	for (int st = TS_SYN_SENT; st <= TS_SYN_RECEIVED; st++)
		if (t->check[st] > SYN_CHECK_NS)
			t->check[st] = SYN_CHECK_NS;
	return t;
}

void tracker_destroy(struct tracker *t)
{
	if (!t)
		return;
	flow_table_destroy(t->ft);
	conn_pool_release(t->pool);
	free(t);
}

const struct tracker_stats *tracker_stats(const struct tracker *t)
{
	return &t->st;
}

uint64_t tracker_open_count(const struct tracker *t)
{
	return flow_table_count(t->ft);
}

/* Set one of CF_UNCLEAN's flags, telling the sink the first time. */
static void flag_unclean(struct tracker *t, struct conn *c, uint32_t flag)
{
	if (!(c->flags & CF_UNCLEAN) && t->sink.unclean)
		t->sink.unclean(t->sink.ctx, c);
	c->flags |= flag;
}

static void note_anomaly(struct tracker *t, struct conn *c, const struct packet *p,
			 enum anomaly_kind k)
{
	t->st.anomalies[k]++;
	if (c) {
		c->anomalies++;
		if (k != AN_NOT_ACCEPTED && k != AN_RST_OUT_OF_WINDOW && k != AN_ACK_UNSEEN)
			flag_unclean(t, c, CF_ANOMALY);
	}
	if (t->sink.anomaly)
		t->sink.anomaly(t->sink.ctx, c, p, k);
}

static inline void transition_fill(struct transition *x, uint64_t ts, uint64_t packet, int role,
				   uint8_t from, uint8_t to, uint8_t tcp_flags, uint8_t cause)
{
	x->ts_ns = ts;
	x->packet = packet;
	x->side = (uint8_t)role;
	x->from = from;
	x->to = to;
	x->tcp_flags = tcp_flags;
	x->cause = cause;
}

static void set_state(struct tracker *t, struct conn *c, int role, uint8_t to, uint64_t ts,
		      uint64_t packet, uint8_t tcp_flags, uint8_t cause)
{
	struct peer *pe = &c->peer[role];
	struct transition local, *tr;
	uint8_t from = pe->state;
	bool tell;

	if (from == to)
		return;
	/* The sink reads a copy on the stack: reading the kept one back, just
	 * written to a line often still on its way, stalled the analyses'
	 * first load (a thirtieth of a JSON run's cycles). Only a change it
	 * asked for (state_mask) is made and handed over: the analyses look
	 * at about a third of them. */
	tell = t->sink.state_changed &&
	       (!t->sink.state_mask || ((1u << from | 1u << to) & t->sink.state_mask));
	if (tell)
		transition_fill(&local, ts, packet, role, from, to, tcp_flags, cause);
	/* The timeline's own is written in its place, field by field: built
	 * aside and copied, its wide loads waited for the narrow stores that
	 * built it. Written apart from the copy: through one pointer that
	 * could be either, the compiler stored every field twice. */
	if (t->cfg.keep_timeline) {
		if ((tr = conn_timeline_next(c)))
			transition_fill(tr, ts, packet, role, from, to, tcp_flags, cause);
		else
			t->st.oom++;
	}
	pe->prev_state = from;
	pe->state = to;
	pe->since_ns = ts;
	pe->since_bytes = pe->bytes;
	pe->last_flags = tcp_flags;
	if (tell)
		t->sink.state_changed(t->sink.ctx, c, &local);
}

/* ---- idle lists: retirement, idle timeouts, eviction ---- */

static struct conn *node_conn(struct idle_node *n)
{
	return (struct conn *)((char *)n - offsetof(struct conn, node));
}

static const struct conn *node_conn_const(const struct idle_node *n)
{
	return (const struct conn *)((const char *)n - offsetof(struct conn, node));
}

static struct frozen_conn *node_frozen(struct idle_node *n)
{
	return (struct frozen_conn *)((char *)n - offsetof(struct frozen_conn, node));
}

/* Start fetching the record that holds n, live or frozen, without reading
 * n to learn which: the lines a live one spans from there cover either. */
static void node_prefetch(const struct idle_node *n)
{
	uintptr_t start = (uintptr_t)n - offsetof(struct conn, node);

	for (size_t off = 0; off < sizeof(struct conn); off += 64)
		__builtin_prefetch((const void *)(start + off));
}

/* Start fetching a frozen record: its usual few lines (its size is inside
 * it, and reading that would wait). */
static void frozen_prefetch(const void *rec)
{
	for (unsigned off = 0; off < 256; off += 64)
		__builtin_prefetch((const char *)rec + off);
}

/* A walk along a list (freezing, sweeping) is at node n, whose record was
 * fetched before: start fetching the slot of the node after it, whose
 * record arrived with the last call, and the record of the one after that. */
static void walk_prefetch(const struct tracker *t, const struct idle_node *n)
{
	const struct idle_node *m = n->next;

	if (!m)
		return;
	flow_table_prefetch(t->ft, m->hash);
	if (!m->frozen && node_conn_const(m)->tl)  /* its own allocation */
		__builtin_prefetch(node_conn_const(m)->tl);
	if (m->next)
		node_prefetch(m->next);
}

static uint64_t node_due(const struct tracker *t, const struct idle_node *n)
{
	return t->check[n->cls] == UINT64_MAX ? UINT64_MAX : n->since_ns + t->check[n->cls];
}

static void idle_unlink(struct tracker *t, struct idle_node *n)
{
	struct idle_list *l = &t->idle[n->cls];

	if (l->freeze_at == n)
		l->freeze_at = n->next;
	if (n->prev)
		n->prev->next = n->next;
	else if (l->head == n)
		l->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else if (l->tail == n)
		l->tail = n->prev;
	n->prev = n->next = NULL;
}

/* How long a connection on list cls stays idle before it is frozen. */
static uint64_t freeze_after(uint8_t cls)
{
	return cls == TS_TIME_WAIT || cls == TS_CLOSED ? TRACKER_FREEZE_CLOSED_NS : TRACKER_FREEZE_NS;
}

static void idle_append(struct tracker *t, struct idle_node *n, uint8_t cls, uint64_t from_ns)
{
	struct idle_list *l = &t->idle[cls];

	n->cls = cls;
	n->since_ns = from_ns;
	if (node_due(t, n) < t->next_due)
		t->next_due = node_due(t, n);
	n->prev = l->tail;
	n->next = NULL;
	if (l->tail)
		l->tail->next = n;
	else
		l->head = n;
	l->tail = n;
	if (!l->freeze_at) {
		l->freeze_at = n;
		if (from_ns + freeze_after(cls) < t->next_freeze)
			t->next_freeze = from_ns + freeze_after(cls);
	}
}

/* to takes from's place on its list (freezing and thawing). */
static void idle_replace(struct tracker *t, struct idle_node *from, struct idle_node *to)
{
	struct idle_list *l = &t->idle[from->cls];

	to->prev = from->prev;
	to->next = from->next;
	to->since_ns = from->since_ns;
	to->cls = from->cls;
	if (to->prev)
		to->prev->next = to;
	else
		l->head = to;
	if (to->next)
		to->next->prev = to;
	else
		l->tail = to;
	if (l->freeze_at == from)
		l->freeze_at = to;
	from->prev = from->next = NULL;
}

/* The idle class: both endpoints CLOSED -> CLOSED; otherwise the state of
 * the endpoint with the longer timeout (a CLOSED endpoint does not count). */
static uint8_t idle_class_of(const struct tracker *t, const struct conn *c)
{
	uint8_t a = c->peer[0].state, b = c->peer[1].state;

	if (a == TS_CLOSED)
		return b;
	if (b == TS_CLOSED)
		return a;
	return t->expire[a] >= t->expire[b] ? a : b;
}

/* After activity on c: to the tail of its (possibly new) list. Most
 * packets leave it on its list: then its later time cannot lower the
 * lists' next due time (next_due is a lower bound, and it was there with
 * an earlier one), and when it is the tail already (a connection's packets
 * back to back) nothing moves. */
static inline __attribute__((always_inline)) void idle_touch_to(struct tracker *t, struct conn *c, uint8_t cls)
{
	struct idle_node *n = &c->node;
	struct idle_list *l = &t->idle[cls];

	if (cls != n->cls || !l->tail) {
		idle_unlink(t, n);
		idle_append(t, n, cls, c->last_ns);
		return;
	}
	n->since_ns = c->last_ns;
	if (l->tail != n) {
		/* unlink: n has a next, as it is not the tail */
		if (l->freeze_at == n)
			l->freeze_at = n->next;
		if (n->prev)
			n->prev->next = n->next;
		else
			l->head = n->next;
		n->next->prev = n->prev;
		/* append: the list has a tail, as n's next is on it */
		n->prev = l->tail;
		n->next = NULL;
		l->tail->next = n;
		l->tail = n;
	}
	/* the freezing walk had passed every node: it comes back for this one */
	if (!l->freeze_at) {
		l->freeze_at = n;
		if (n->since_ns + freeze_after(cls) < t->next_freeze)
			t->next_freeze = n->since_ns + freeze_after(cls);
	}
}

static void idle_touch(struct tracker *t, struct conn *c)
{
	idle_touch_to(t, c, idle_class_of(t, c));
}

/* ---- frozen connections ---- */

/* c, idle, is packed in its place (list and table); its record is freed.
 * Connections with a rare part stay as they are (conn_freeze says no). */
static void freeze(struct tracker *t, struct conn *c)
{
	struct frozen_conn *f = conn_freeze(c, t->pool, t->now_ns);

	if (!f)
		return;
	f->node.frozen = 1;
	idle_replace(t, &c->node, &f->node);
	flow_table_freeze(t->ft, c, f);
	conn_destroy(c);
	t->st.frozen++;
	t->live--;
}

/* The live record of frozen f, put in its place; NULL on out of memory (f
 * stays). */
static struct conn *thaw(struct tracker *t, struct frozen_conn *f)
{
	struct conn *c = conn_pool_alloc(t->pool);

	if (!c || !conn_thaw(f, c)) {
		conn_destroy(c);
		t->st.oom++;
		return NULL;
	}
	c->node.frozen = 0;
	idle_replace(t, &f->node, &c->node);
	flow_table_thaw(t->ft, f, c);
	frozen_conn_destroy(f);
	t->st.thawed++;
	t->live++;
	return c;
}

/* The live connection on node n, thawed if need be (NULL: out of memory). */
static struct conn *node_live(struct tracker *t, struct idle_node *n)
{
	return n->frozen ? thaw(t, node_frozen(n)) : node_conn(n);
}

/* Freeze what has been idle TRACKER_FREEZE_NS: each list's nodes in order,
 * from where the walk stopped last time, at most once every
 * TRACKER_FREEZE_BATCH_NS (tracker.h says why). */
static void freeze_idle(struct tracker *t)
{
	if (t->now_ns >= t->next_freeze) {
		t->next_freeze = UINT64_MAX;
		for (uint8_t cls = 0; cls < TS_COUNT; cls++) {
			struct idle_list *l = &t->idle[cls];
			struct idle_node *n;

			while ((n = l->freeze_at) && n->since_ns + freeze_after(cls) <= t->now_ns) {
				l->freeze_at = n->next;
				walk_prefetch(t, n);
				if (!n->frozen)
					freeze(t, node_conn(n));
			}
			if (n && n->since_ns + freeze_after(cls) < t->next_freeze)
				t->next_freeze = n->since_ns + freeze_after(cls);
		}
		if (t->next_freeze < t->now_ns + TRACKER_FREEZE_BATCH_NS)
			t->next_freeze = t->now_ns + TRACKER_FREEZE_BATCH_NS;
	}
	/* Too many live: the longest idle of all lists, whatever its age, until
	 * a batch's worth is below the bound. */
	if (t->live <= TRACKER_LIVE_MAX)
		return;
	while (t->live > TRACKER_LIVE_MAX - TRACKER_LIVE_BATCH) {
		struct idle_list *oldest = NULL;

		for (uint8_t cls = 0; cls < TS_COUNT; cls++) {
			struct idle_node *n = t->idle[cls].freeze_at;

			if (n && (!oldest || n->since_ns < oldest->freeze_at->since_ns))
				oldest = &t->idle[cls];
		}
		if (!oldest)
			break;
		struct idle_node *n = oldest->freeze_at;

		oldest->freeze_at = n->next;
		walk_prefetch(t, n);
		if (!n->frozen)
			freeze(t, node_conn(n));
	}
}

static void hand_out(struct tracker *t, struct conn *c)
{
	t->live--;
	if (!(t->sink.retired && t->sink.retired(t->sink.ctx, c)))
		conn_destroy(c);
}

static void retire(struct tracker *t, struct conn *c)
{
	idle_unlink(t, &c->node);
	flow_table_remove(t->ft, c);
	t->st.retired++;
	hand_out(t, c);
}

static void apply_pending(struct tracker *t, struct conn *c, int r)
{
	struct pending pd = c->rare->pend[r];

	c->peer[r].pend_kind = PENDING_NONE;
	set_state(t, c, r, pd.to, pd.ts_ns, pd.packet, pd.tcp_flags, TC_CONFIRMED);
}

/* When endpoint r would send its SYN/FIN again, after its last copy, if
 * nothing stopped it: the next gap follows the observed pattern (a constant
 * RTO, or one that doubles, RFC 6298 5.5); one copy alone waits the initial
 * RTO of 1 s (RFC 6298 2.1, Linux TCP_TIMEOUT_INIT). */
static uint64_t next_rexmit_ns(const struct conn *c, int r)
{
	uint64_t g = c->rare ? c->rare->ctl_gap_ns[r] : 0;
	uint64_t prev = c->rare ? c->rare->ctl_gap_prev_ns[r] : 0;

	if (!g)
		return 1000000000ULL;
	if (prev && g < prev + prev / 2)
		return g;            /* constant gaps (linear SYN timeouts, a pinned RTO) */
	return 2 * g;
}

/* When a SYN or SYN-ACK sender holding state would have sent its next copy
 * at the latest: the next gap may double (RFC 6298 5.5), also right after
 * Linux's linear SYN timeouts, and after its last retry Linux waits about
 * twice the last gap before it gives up; 2.25 x the last gap covers both with
 * timer slack. One copy alone: twice the initial RTO of 1 s. */
static uint64_t ctl_deadline_ns(const struct conn *c, int r)
{
	uint64_t g = c->rare ? c->rare->ctl_gap_ns[r] : 0;

	return g ? g * 9 / 4 : 2000000000ULL;
}

/* A SYN or SYN-ACK that should have been sent again by now but was not:
 * the state that would retransmit it is gone. A SYN sender that never
 * acknowledged anything has no socket (a spoofed source, or it gave up
 * after tcp_syn_retries); a SYN-ACK never retransmitted was a SYN cookie or
 * the request was dropped (tcp_synack_retries). */
static void ctl_timeouts(struct tracker *t, struct conn *c, uint64_t now)
{
	struct peer *cl = &c->peer[ROLE_CLIENT], *sv = &c->peer[ROLE_SERVER];

	/* A held-back receipt of the SYN-ACK waits for the client's ACK, which a
	 * silent client never sends: it does not keep the client alive. */
	if ((cl->bits & PB_ISN) && !(cl->bits & PB_ACKED) && cl->pend_kind != PENDING_QUIET &&
	    (cl->state == TS_SYN_SENT || cl->state == TS_ESTABLISHED) &&
	    now > cl->ctl_tx_ns + ctl_deadline_ns(c, ROLE_CLIENT)) {
		cl->pend_kind = PENDING_NONE;
		set_state(t, c, ROLE_CLIENT, TS_CLOSED, cl->ctl_tx_ns + ctl_deadline_ns(c, ROLE_CLIENT),
			  0, 0, TC_TIMEOUT);
		c->flags |= CF_SILENT_SYN;
	}
	if (sv->state == TS_SYN_RECEIVED && (sv->bits & PB_SENT_SYNACK) &&
	    sv->pend_kind == PENDING_NONE && now > sv->ctl_tx_ns + ctl_deadline_ns(c, ROLE_SERVER)) {
		set_state(t, c, ROLE_SERVER, TS_CLOSED, sv->ctl_tx_ns + ctl_deadline_ns(c, ROLE_SERVER),
			  0, 0, TC_TIMEOUT);
		c->flags |= CF_SILENT_SYNACK;
	}
}

/* Bring c up to time now: held-back ACKs whose quiet period passed take
 * effect, TIME_WAITs older than 2 x MSL end. */
static void settle(struct tracker *t, struct conn *c, uint64_t now)
{
	for (int r = 0; r < 2; r++) {
		struct peer *pe = &c->peer[r];

		if (pe->pend_kind == PENDING_QUIET && now >= c->rare->pend[r].due_ns)
			apply_pending(t, c, r);
		if (pe->state == TS_TIME_WAIT && now >= pe->since_ns + t->cfg.time_wait_ns) {
			set_state(t, c, r, TS_CLOSED, pe->since_ns + t->cfg.time_wait_ns, 0, 0,
				  TC_TIMEOUT);
			c->flags |= CF_TW_EXPIRED;
		}
	}
	ctl_timeouts(t, c, now);
}

/* Look at the head of list cls if its time has come: a final connection
 * (both CLOSED) is retired, one idle past its state's timeout expires, any
 * other goes back to the tail to be looked at again later. Lists stay in
 * due order: every entry's due is its append time plus the list's check
 * interval. Returns false when nothing was due (or no memory to thaw it). */
static bool sweep_one(struct tracker *t, uint8_t cls)
{
	struct idle_node *n = t->idle[cls].head;
	struct conn *c;
	uint8_t now_cls;

	if (!n || node_due(t, n) > t->now_ns)
		return false;
	/* The next head is often due within a few packets too. */
	walk_prefetch(t, n);
	c = node_live(t, n);
	if (!c)
		return false;
	settle(t, c, t->now_ns);
	if (c->peer[0].state == TS_CLOSED && c->peer[1].state == TS_CLOSED) {
		retire(t, c);
		return true;
	}
	now_cls = idle_class_of(t, c);
	if (t->expire[now_cls] != UINT64_MAX && c->last_ns + t->expire[now_cls] <= t->now_ns) {
		c->flags |= CF_EXPIRED;
		t->st.expired++;
		retire(t, c);
		return true;
	}
	idle_unlink(t, &c->node);
	idle_append(t, &c->node, now_cls, t->now_ns);
	return true;
}

/* Every head that is due, class by class, then what is to be frozen. */
__attribute__((noinline))
static void sweep_due(struct tracker *t)
{
	if (t->now_ns >= t->next_due) {
		for (uint8_t cls = 0; cls < TS_COUNT; cls++)
			while (sweep_one(t, cls))
				;
		t->next_due = UINT64_MAX;
		for (uint8_t cls = 0; cls < TS_COUNT; cls++)
			if (t->idle[cls].head && node_due(t, t->idle[cls].head) < t->next_due)
				t->next_due = node_due(t, t->idle[cls].head);
	}
	freeze_idle(t);
}

/* Most packets find nothing due, and next_due, next_freeze and the live
 * count say so without reading a list: that test is inline, the work (and
 * the registers it saves and restores) out of line. */
static inline void sweep(struct tracker *t)
{
	if (t->now_ns >= t->next_due || t->now_ns >= t->next_freeze || t->live > TRACKER_LIVE_MAX)
		sweep_due(t);
}

static uint64_t node_last_ns(struct idle_node *n)
{
	return n->frozen ? frozen_conn_last_ns(node_frozen(n)) : node_conn(n)->last_ns;
}

/* Make room under max_connections: the longest idle connection goes. */
static void evict_one(struct tracker *t)
{
	struct idle_node *oldest = NULL;
	struct conn *c;

	for (int cls = 0; cls < TS_COUNT; cls++) {
		struct idle_node *h = t->idle[cls].head;

		if (h && (!oldest || node_last_ns(h) < node_last_ns(oldest)))
			oldest = h;
	}
	if (!oldest || !(c = node_live(t, oldest)))
		return;
	settle(t, c, t->now_ns);
	c->flags |= CF_EVICTED;
	t->st.evicted++;
	retire(t, c);
}

void tracker_tick(struct tracker *t, uint64_t now_ns)
{
	tracker_drain(t);
	if (now_ns > t->now_ns)
		t->now_ns = now_ns;
	sweep(t);
}

/* Frozen connections are shown unpacked into a scratch record. */
void tracker_foreach(struct tracker *t, void (*fn)(void *ctx, const struct conn *c), void *ctx)
{
	struct flow_entry e;
	size_t pos = 0;

	tracker_drain(t);
	while (flow_table_next(t->ft, &pos, &e)) {
		struct conn scratch = { 0 };

		if (e.conn) {
			fn(ctx, e.conn);
		} else if (conn_thaw(e.frozen, &scratch)) {
			fn(ctx, &scratch);
			conn_tl_free(&scratch, scratch.tl);
		} else {
			conn_tl_free(&scratch, scratch.tl);
			t->st.oom++;
		}
	}
}

/* ---- creating connections ---- */

static bool port_is_service(uint16_t port)
{
	static const uint16_t known[] = {
		1080, 1433, 1521, 2049, 2181, 2379, 3000, 3128, 3306, 3389, 5000, 5432, 5672,
		5900, 6379, 6443, 8000, 8008, 8080, 8081, 8443, 8888, 9000, 9042, 9092, 9090,
		9200, 9300, 11211, 27017,
	};

	if (port < 1024)
		return true;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (known[i] == port)
			return true;
	return false;
}

/* Which key side is the server when no SYN or SYN-ACK tells: a well-known
 * service port wins; then a port outside the ephemeral ranges (Linux
 * 32768-60999, IANA 49152-65535); then the lower port. */
static int server_side_by_port(const struct flow_key *k)
{
	uint16_t a = k->port[0], b = k->port[1];
	bool sa = port_is_service(a), sb = port_is_service(b);
	bool ea = a >= 32768, eb = b >= 32768;

	if (sa != sb)
		return sa ? 0 : 1;
	if (ea != eb)
		return ea ? 1 : 0;
	return a <= b ? 0 : 1;
}

static struct conn *conn_new(struct tracker *t, const struct flow_key *k, int src_side,
			     enum fsm_event ev, const struct packet *p)
{
	struct conn *c;

	if (t->cfg.max_connections && flow_table_count(t->ft) >= t->cfg.max_connections)
		evict_one(t);
	c = conn_pool_alloc(t->pool);
	if (!c)
		return NULL;
	c->key = *k;
	c->id = t->next_id++;
	c->first_ns = c->last_ns = p->ts_ns;
	c->first_packet = p->number;
	if (ev == EV_SYN) {
		c->client_is_0 = src_side == 0;
	} else if (ev == EV_SYNACK) {
		c->client_is_0 = src_side != 0;
		c->flags |= CF_PICKED_UP | CF_ROLE_BY_SYNACK;
	} else {
		c->client_is_0 = server_side_by_port(k) != 0;
		c->flags |= CF_PICKED_UP | CF_ROLE_BY_PORT;
	}
	if (!flow_table_add(t->ft, c)) {
		conn_destroy(c);
		return NULL;
	}
	idle_append(t, &c->node, TS_CLOSED, p->ts_ns);
	t->live++;
	t->st.connections++;
	if (flow_table_count(t->ft) > t->st.peak_open)
		t->st.peak_open = flow_table_count(t->ft);

	/* Endpoints we join after their handshake start where the first segment
	 * says they are: a SYN-ACK implies a client in SYN_SENT; anything but a
	 * SYN, SYN-ACK or RST implies both synchronised. */
	if (ev == EV_SYNACK) {
		set_state(t, c, ROLE_CLIENT, TS_SYN_SENT, p->ts_ns, p->number, p->flags, TC_INFERRED);
	} else if (ev != EV_SYN && ev != EV_RST) {
		set_state(t, c, ROLE_CLIENT, TS_ESTABLISHED, p->ts_ns, p->number, p->flags, TC_PICKUP);
		set_state(t, c, ROLE_SERVER, TS_ESTABLISHED, p->ts_ns, p->number, p->flags, TC_PICKUP);
	} else if (ev == EV_RST) {
		c->flags |= CF_PICKED_UP;
	}
	return c;
}

/* A SYN that starts a new incarnation of c's 4-tuple: not a retransmission
 * (same ISN), not the crossing SYN of a simultaneous open, and from an
 * endpoint that holds no synchronised connection (CLOSED, TIME_WAIT, or a
 * SYN_SENT that gave up and came back with a new ISN). */
static bool is_new_incarnation(const struct conn *c, int s, const struct packet *p)
{
	const struct peer *ps = &c->peer[s], *pr = &c->peer[!s];

	if ((ps->bits & PB_ISN) && p->seq == ps->isn)
		return false;
	if (!(ps->bits & PB_ISN) && pr->state == TS_SYN_SENT && ps->state == TS_CLOSED &&
	    !(c->flags & CF_PICKED_UP))
		return false;
	return ps->state == TS_CLOSED || ps->state == TS_TIME_WAIT || ps->state == TS_SYN_SENT;
}

/* The old incarnation ends where the new SYN proves it: TIME_WAIT is
 * recycled (tcp_tw_reuse on the client, a higher ISN on the server) and a
 * SYN_SENT with another ISN is gone. */
static void supersede(struct tracker *t, struct conn *c, const struct packet *p)
{
	for (int r = 0; r < 2; r++) {
		uint8_t st = c->peer[r].state;

		c->peer[r].pend_kind = PENDING_NONE;
		if (st == TS_TIME_WAIT || st == TS_SYN_SENT)
			set_state(t, c, r, TS_CLOSED, p->ts_ns, p->number, p->flags, TC_REUSED);
	}
	c->flags |= CF_SUPERSEDED;
	retire(t, c);
}

/* ---- sequence-space checks ---- */

/* Does p acknowledge the receiver's outstanding SYN or FIN? Without its
 * sequence number (joined mid-stream) we take the ACK as covering it. */
static bool acks_outstanding(const struct peer *pr, const struct packet *p)
{
	if (!(p->flags & TH_ACK))
		return false;
	switch (pr->state) {
	case TS_SYN_SENT:
	case TS_SYN_RECEIVED:
		return (pr->bits & PB_ISN) ? seq_geq(p->ack, pr->isn + 1) : true;
	case TS_FIN_WAIT_1:
	case TS_CLOSING:
	case TS_LAST_ACK:
		return (pr->bits & PB_FIN) ? seq_geq(p->ack, pr->fin_seq + 1) : true;
	default:
		return false;
	}
}

/* Is an RST acceptable to its receiver pr (sent by ps)? RFC 793 3.4 and
 * RFC 5961 3.2 want
 *     RCV.NXT <= SEG.SEQ < RCV.NXT + RCV.WND
 * and, in SYN_SENT, an ACK of the SYN (SEG.ACK == ISS + 1). The observer
 * does not know RCV.NXT; it bounds it:
 *     L = the highest ACK the receiver sent      (RCV.NXT >= L)
 *     U = the sender's SND.NXT                   (RCV.NXT <= U)
 * and accepts L <= SEG.SEQ <= U + WND, WND being the receiver's largest
 * advertised window. What is unknown widens the range. */
static bool rst_acceptable(const struct peer *pr, const struct peer *ps, const struct packet *p)
{
	uint32_t wnd = pr->max_win ? pr->max_win : (1u << 30);

	if (pr->state == TS_SYN_SENT) {
		if (!(p->flags & TH_ACK))
			return false;
		return !(pr->bits & PB_ISN) || p->ack == pr->isn + 1;
	}
	if (pr->bits & PB_ACKED) {
		uint32_t upper = (ps->bits & PB_SEEN) && seq_gt(ps->snd_nxt, pr->max_ack) ?
					 ps->snd_nxt : pr->max_ack;

		return seq_geq(p->seq, pr->max_ack) && seq_leq(p->seq, upper + wnd);
	}
	if (ps->bits & PB_SEEN)
		return seq_geq(p->seq, ps->snd_nxt - wnd) && seq_leq(p->seq, ps->snd_nxt + wnd);
	return true;
}

static bool peer_acked(const struct peer *pe, uint32_t upto)
{
	return (pe->bits & PB_ACKED) && seq_geq(pe->max_ack, upto);
}

/* ---- the two halves of one segment ---- */

/* pe's own retransmission proved it never accepted the ACK behind its last
 * transition. Later ACKs of the same kind (on a FIN, or not) are held back:
 * drops tend to hit one kind of segment (a firewall rule, a dead path). */
static void distrust_acks(struct tracker *t, struct conn *c, struct peer *pe,
			  const struct packet *p)
{
	pe->bits |= PB_DISTRUST_ACK;
	if (pe->last_flags & TH_FIN)
		pe->bits |= PB_DISTRUST_ON_FIN;
	else
		pe->bits &= (uint16_t)~PB_DISTRUST_ON_FIN;
	c->flags |= CF_NOT_ACCEPTED;
	note_anomaly(t, c, p, AN_NOT_ACCEPTED);
}


/* The receiver's state before it took a FIN or SYN-ACK, for undoing a
 * receipt the sender's retransmission disproved. */
static int undo_receipt(uint8_t st)
{
	switch (st) {
	case TS_CLOSE_WAIT: return TS_ESTABLISHED;
	case TS_CLOSING: return TS_FIN_WAIT_1;
	case TS_TIME_WAIT: return TS_FIN_WAIT_2;
	case TS_ESTABLISHED: return TS_SYN_SENT;
	default: return -1;
	}
}

/* The sender retransmitted its SYN-ACK or FIN (ctl_end = its sequence number
 * + 1). If the receiver, whose segments we do see, never acknowledged it,
 * the first copy never reached it: undo what we assumed it did with it. */
static void check_receipt(struct tracker *t, struct conn *c, int s, uint32_t ctl_end,
			  const struct packet *p)
{
	struct peer *pr = &c->peer[!s];
	int back;

	if (!(pr->bits & PB_SEEN) || peer_acked(pr, ctl_end))
		return;
	if (pr->pend_kind == PENDING_CONFIRM)
		return; /* already held back */
	back = undo_receipt(pr->state);
	if (back < 0)
		return;
	if (pr->state == TS_ESTABLISHED && !(p->flags & TH_SYN))
		return; /* only a SYN-ACK undoes ESTABLISHED */
	if (pr->state != TS_ESTABLISHED && !(p->flags & TH_FIN))
		return;
	set_state(t, c, !s, (uint8_t)back, p->ts_ns, p->number, p->flags, TC_REVERT);
	pr->bits |= PB_DISTRUST_CTL;
	c->flags |= CF_NOT_ACCEPTED;
	note_anomaly(t, c, p, AN_NOT_ACCEPTED);
}

/* How long after a segment passes the capture point the endpoint may still
 * send something that has not seen it: its round trip from the capture
 * point (measured on the handshake), with slack; 10 ms when unknown. */
static uint64_t crossing_window_ns(const struct peer *pe)
{
	return pe->rtt_us ? (uint64_t)pe->rtt_us * 1500 + 1000000ULL : 10000000ULL;
}

/* Record a SYN/FIN sent by pe; returns true when it is a retransmission. */
static bool note_ctl(struct tracker *t, struct conn *c, int r, uint32_t ctl_seq, bool syn,
		     const struct packet *p)
{
	struct peer *pe = &c->peer[r];
	bool known = syn ? (pe->bits & PB_ISN) : (pe->bits & PB_FIN);
	uint32_t have = syn ? pe->isn : pe->fin_seq;

	if (known && have == ctl_seq) {
		struct conn_rare *rare = conn_rare_get(c);

		if (rare) {
			rare->ctl_gap_prev_ns[r] = rare->ctl_gap_ns[r];
			rare->ctl_gap_ns[r] = p->ts_ns > pe->ctl_tx_ns ? p->ts_ns - pe->ctl_tx_ns : 0;
		} else {
			t->st.oom++;
		}
		pe->ctl_tx_ns = p->ts_ns;
		pe->bits |= PB_CTL_REXMIT;
		return true;
	}
	if (syn) {
		pe->isn = ctl_seq;
		pe->bits |= PB_ISN;
	} else {
		pe->fin_seq = ctl_seq;
		pe->bits |= PB_FIN;
	}
	pe->ctl_tx_ns = p->ts_ns;
	if (c->rare)
		c->rare->ctl_gap_ns[r] = c->rare->ctl_gap_prev_ns[r] = 0;
	pe->bits &= (uint16_t)~PB_CTL_REXMIT;
	return false;
}

static void process_send(struct tracker *t, struct conn *c, int s, enum fsm_event ev,
			 const struct packet *p, bool *anomalous)
{
	struct peer *ps = &c->peer[s];
	bool rexmit = false;
	uint8_t next;

	/* Its own ACK confirms a receipt we held back; so does an echo of the
	 * held segment's timestamp (RFC 7323: TS.Recent only advances on
	 * segments the endpoint accepted). */
	if (ps->pend_kind == PENDING_CONFIRM && (p->flags & TH_ACK) &&
	    seq_geq(p->ack, c->rare->pend[s].ack_needed))
		apply_pending(t, c, s);
	else if (ps->pend_kind != PENDING_NONE && c->rare->pend[s].has_ts &&
		 p->opt.has_timestamps && seq_geq(p->opt.ts_ecr, c->rare->pend[s].ts_val))
		apply_pending(t, c, s);

	if (ev == EV_SYNACK && ps->state == TS_ESTABLISHED && !(ps->bits & PB_SENT_SYNACK) &&
	    (ps->bits & PB_ISN) && p->seq == ps->isn) {
		/* Simultaneous open: its SYN-ACK crossed the peer's, which the
		 * capture showed first. It is no retransmission; nothing changes. */
		ps->bits |= PB_SENT_SYNACK;
		c->flags |= CF_SIM_OPEN;
		return;
	}
	if (ev == EV_FIN && ps->state == TS_CLOSE_WAIT && (p->flags & TH_ACK) &&
	    (c->peer[!s].bits & PB_FIN) && seq_lt(p->ack, c->peer[!s].fin_seq + 1)) {
		/* Its FIN does not acknowledge the peer's FIN, so it was sent
		 * before that FIN arrived: the FINs crossed (simultaneous close).
		 * Replay in the true order: ESTABLISHED, our FIN, then theirs. */
		set_state(t, c, s, TS_ESTABLISHED, p->ts_ns, p->number, p->flags, TC_CROSSED);
		note_ctl(t, c, s, p->seq + p->payload_len, false, p);
		set_state(t, c, s, TS_FIN_WAIT_1, p->ts_ns, p->number, p->flags, TC_PACKET);
		set_state(t, c, s, TS_CLOSING, p->ts_ns, p->number, p->flags, TC_CROSSED);
		c->flags |= CF_SIM_CLOSE;
		return;
	}
	if (ev == EV_SYN || ev == EV_SYNACK) {
		if (ev == EV_SYNACK)
			ps->bits |= PB_SENT_SYNACK;
		if ((ps->bits & PB_ISN) && p->seq != ps->isn && ps->state != TS_CLOSED) {
			/* A new ISN from an endpoint that still has a connection here. */
			c->flags |= CF_SYN_ON_ESTAB;
			note_anomaly(t, c, p, AN_SYN_ON_ESTABLISHED);
			*anomalous = true;
			return;
		}
		rexmit = note_ctl(t, c, s, p->seq, true, p);
		if (rexmit && ev == EV_SYNACK)
			check_receipt(t, c, s, p->seq + 1, p);
	} else if (ev == EV_FIN) {
		uint32_t fin = p->seq + p->payload_len;

		rexmit = note_ctl(t, c, s, fin, false, p);
		if (rexmit)
			check_receipt(t, c, s, fin + 1, p);
	}
	if (rexmit && ps->pend_kind == PENDING_QUIET) {
		struct pending *pd = &c->rare->pend[s];

		if (p->ts_ns <= pd->ts_ns + crossing_window_ns(ps)) {
			/* The retransmission left before the latest held copy could
			 * reach the endpoint: they crossed, and it proves nothing
			 * about that copy. Its quiet period restarts from here. */
			pd->due_ns = p->ts_ns + next_rexmit_ns(c, s) * 6 / 5;
		} else {
			/* It sent its SYN/FIN again: the ACK we were holding was lost too. */
			ps->pend_kind = PENDING_NONE;
			c->flags |= CF_NOT_ACCEPTED;
			note_anomaly(t, c, p, AN_NOT_ACCEPTED);
		}
	}

	next = tcp_fsm_next(FSM_SEND, ev, (enum tcp_state)ps->state);
	switch (next) {
	case FSM_STAY:
		break;
	case FSM_BAD:
		note_anomaly(t, c, p, AN_UNEXPECTED);
		*anomalous = true;
		break;
	case FSM_PICKUP:
		/* First segment from an endpoint whose handshake the capture
		 * missed while its peer is opening or open: it is synchronised.
		 * Otherwise it talks after its close (typically after an RST). */
		if (!(ps->bits & PB_SEEN) && c->peer[!s].state != TS_CLOSED) {
			set_state(t, c, s, TS_ESTABLISHED, p->ts_ns, p->number, p->flags, TC_INFERRED);
		} else {
			note_anomaly(t, c, p, AN_AFTER_CLOSE);
			*anomalous = true;
		}
		break;
	case FSM_FIN_CLOSED:
		/* LAST_ACK -> CLOSED by an ACK we saw, and now the same FIN again:
		 * that ACK was never accepted. */
		if (rexmit && ps->prev_state == TS_LAST_ACK) {
			uint8_t lf = ps->last_flags;

			set_state(t, c, s, TS_LAST_ACK, p->ts_ns, p->number, p->flags, TC_REVERT);
			ps->last_flags = lf;
			distrust_acks(t, c, ps, p);
		} else {
			note_anomaly(t, c, p, AN_AFTER_CLOSE);
			*anomalous = true;
		}
		break;
	default:
		if (next & FSM_REVERT) {
			uint8_t lf = ps->last_flags;

			set_state(t, c, s, next & ~FSM_REVERT, p->ts_ns, p->number, p->flags, TC_REVERT);
			ps->last_flags = lf;
			distrust_acks(t, c, ps, p);
		} else {
			bool missed_synack = ps->state == TS_SYN_SENT && next == TS_ESTABLISHED;

			if (ev == EV_SYNACK && ps->state == TS_SYN_SENT)
				c->flags |= CF_SIM_OPEN;
			set_state(t, c, s, next, p->ts_ns, p->number, p->flags, TC_PACKET);
			/* Its ACK answers a SYN-ACK the capture missed (one-sided
			 * capture): the peer must have sent it. */
			if (missed_synack && c->peer[!s].state == TS_CLOSED)
				set_state(t, c, !s, TS_SYN_RECEIVED, p->ts_ns, p->number, p->flags,
					  TC_INFERRED);
		}
		break;
	}
}

/* Hold a transition of endpoint r back (see process_recv). Without memory
 * for it, it is applied at once, as if trusted: false. */
static bool hold_back(struct tracker *t, struct conn *c, int r, enum pending_kind kind,
		      const struct pending *pd)
{
	struct conn_rare *rare = conn_rare_get(c);

	if (!rare) {
		t->st.oom++;
		return false;
	}
	rare->pend[r] = *pd;
	c->peer[r].pend_kind = (uint8_t)kind;
	return true;
}

static void process_recv(struct tracker *t, struct conn *c, int r, enum fsm_event ev,
			 const struct packet *p, bool *anomalous)
{
	struct peer *pr = &c->peer[r];
	uint8_t next;

	if (ev == EV_RST) {
		if (!rst_acceptable(pr, &c->peer[!r], p)) {
			c->flags |= CF_RST_IGNORED;
			note_anomaly(t, c, p, AN_RST_OUT_OF_WINDOW);
			*anomalous = true;
			return;
		}
		if (pr->state == TS_SYN_SENT)
			flag_unclean(t, c, CF_REFUSED);
		else if (pr->state != TS_CLOSED)
			flag_unclean(t, c, CF_RESET);
	} else if (ev == EV_SYNACK && pr->state == TS_SYN_SENT && (pr->bits & PB_ISN) &&
		   p->ack != pr->isn + 1) {
		note_anomaly(t, c, p, AN_UNEXPECTED); /* does not answer our SYN */
		*anomalous = true;
		return;
	} else if (ev == EV_FIN && acks_outstanding(pr, p)) {
		ev = EV_FIN_OURS;
	} else if (ev == EV_ACK && acks_outstanding(pr, p)) {
		ev = EV_ACK_OURS;
	}

	next = tcp_fsm_next(FSM_RECV, ev, (enum tcp_state)pr->state);
	if (next == FSM_STAY) {
		if (pr->state == TS_CLOSED && (pr->bits & PB_SEEN) && p->payload_len && !*anomalous)
			note_anomaly(t, c, p, AN_AFTER_CLOSE); /* data to an endpoint that closed */
		return;
	}
	if (next == FSM_BAD) {
		if (!*anomalous)
			note_anomaly(t, c, p, AN_UNEXPECTED);
		return;
	}
	next &= (uint8_t)~FSM_REVERT;
	if (next >= TS_COUNT)
		return;

	/* The endpoint ignored this kind of segment before: hold the
	 * transition back until its behaviour confirms it. Another copy of a
	 * held segment becomes the one the timeline names; the first copy's
	 * TSval stays, as an echo of any copy confirms the same ACK. */
	if (pr->pend_kind != PENDING_NONE && c->rare->pend[r].to == next) {
		struct pending *pd = &c->rare->pend[r];

		pd->ts_ns = p->ts_ns;
		pd->packet = p->number;
		pd->tcp_flags = p->flags;
		return;
	}
	if (((ev == EV_ACK_OURS && !(pr->bits & PB_DISTRUST_ON_FIN)) ||
	     (ev == EV_FIN_OURS && (pr->bits & PB_DISTRUST_ON_FIN))) &&
	    (pr->bits & PB_DISTRUST_ACK) &&
	    hold_back(t, c, r, PENDING_QUIET, &(struct pending){ .to = next, .ts_ns = p->ts_ns,
			.packet = p->number, .tcp_flags = p->flags,
			.due_ns = pr->ctl_tx_ns + next_rexmit_ns(c, r) * 6 / 5,
			.ts_val = p->opt.ts_val, .has_ts = p->opt.has_timestamps }))
		return;
	if ((ev == EV_FIN || ev == EV_FIN_OURS || ev == EV_SYNACK) &&
	    (pr->bits & PB_DISTRUST_CTL) &&
	    hold_back(t, c, r, PENDING_CONFIRM, &(struct pending){ .to = next, .ts_ns = p->ts_ns,
			.packet = p->number, .tcp_flags = p->flags,
			.ack_needed = ev == EV_SYNACK ? p->seq + 1 : p->seq + p->payload_len + 1,
			.ts_val = p->opt.ts_val, .has_ts = p->opt.has_timestamps }))
		return;
	set_state(t, c, r, next, p->ts_ns, p->number, p->flags, TC_PACKET);
	if (next == TS_CLOSING)
		c->flags |= CF_SIM_CLOSE;
}

/* Sequence bookkeeping of the sender after the state machine ran. Of the
 * segment's flags it reads those in `flags` (p->flags, or a constant that
 * a caller knows they match, for which the tests fold away). */
static inline __attribute__((always_inline)) void track_sequence(struct conn *c, int s,
								 const struct packet *p, uint8_t flags)
{
	struct peer *ps = &c->peer[s];
	uint32_t end = p->seq + p->payload_len + ((flags & TH_SYN) ? 1 : 0) +
		       ((flags & TH_FIN) ? 1 : 0);
	uint32_t win = p->window;

	if (flags & TH_RST)
		return;
	if (!(ps->bits & PB_SEEN) || seq_gt(end, ps->snd_nxt))
		ps->snd_nxt = end;
	if (flags & TH_ACK) {
		if (!(ps->bits & PB_ACKED) || seq_gt(p->ack, ps->max_ack))
			ps->max_ack = p->ack;
		ps->bits |= PB_ACKED;
	}
	if (flags & TH_SYN) {
		if (p->opt.has_wscale) {
			ps->bits |= PB_WSCALE;
			ps->wscale = p->opt.wscale > 14 ? 14 : p->opt.wscale;
		}
	} else if ((ps->bits & PB_WSCALE) && (c->peer[!s].bits & PB_WSCALE)) {
		win <<= ps->wscale;
	}
	if (win > ps->max_win)
		ps->max_win = win;
}

/* Round trips from the capture point, on the first handshake: the server's
 * is SYN -> SYN-ACK, the client's SYN-ACK -> its first ACK. */
static void measure_rtt(struct conn *c, int s, const struct packet *p)
{
	struct peer *ps = &c->peer[s], *pr = &c->peer[!s];
	uint64_t d;

	if (ps->rtt_us || !(pr->bits & PB_ISN) || (p->flags & TH_RST))
		return;
	if ((p->flags & (TH_SYN | TH_ACK)) == (TH_SYN | TH_ACK) && !(ps->bits & PB_CTL_REXMIT) &&
	    !(pr->bits & PB_CTL_REXMIT))
		d = p->ts_ns - pr->ctl_tx_ns;
	else if (!(p->flags & TH_SYN) && (p->flags & TH_ACK) && (pr->bits & PB_SENT_SYNACK) &&
		 !(ps->bits & PB_ACKED) && p->ack == pr->isn + 1)
		d = p->ts_ns - pr->ctl_tx_ns;
	else
		return;
	if (p->ts_ns < pr->ctl_tx_ns)
		return;
	d /= 1000;
	ps->rtt_us = d ? (d > UINT32_MAX ? UINT32_MAX : (uint32_t)d) : 1;
}

/* An ACK beyond everything the peer was seen to send acknowledges data the
 * capture missed (loss at the capture point, or a snaplen/filter gap).
 * `flags` as for track_sequence(). */
static inline __attribute__((always_inline)) void check_unseen(struct tracker *t, struct conn *c, int s,
								const struct packet *p, uint8_t flags)
{
	struct peer *pr = &c->peer[!s];

	if (!(flags & TH_ACK) || (flags & TH_RST) || !(pr->bits & PB_SEEN))
		return;
	if (seq_gt(p->ack, pr->snd_nxt)) {
		uint32_t gap = p->ack - pr->snd_nxt;

		c->missed_bytes += gap;
		pr->snd_nxt = p->ack;
		note_anomaly(t, c, p, AN_ACK_UNSEEN);
	}
}

/* A segment captured twice: SPAN and mirror ports copy each packet on the
 * way in and on the way out, microseconds apart. Fed twice, the copy would
 * read as a retransmission proving the first was never accepted. A copy
 * repeats every header field of the sender's previous segment within
 * DUPLICATE_NS; a real retransmission cannot come that soon (RFC 6298's RTO
 * is at least 1 s, Linux's 200 ms, its tail-loss probe 10 ms) and its
 * timestamp option usually differs. */
#define DUPLICATE_NS 1000000ULL

static uint64_t segment_sig(const struct packet *p)
{
	uint64_t a = (uint64_t)p->seq << 32 | p->ack;
	uint64_t b = (uint64_t)p->window << 48 | (uint64_t)p->flags << 40 |
		     (uint64_t)p->opt.sack_blocks << 32 | p->payload_len;
	uint64_t c = (uint64_t)p->opt.has_timestamps << 32 | p->opt.ts_val;
	/* Each word multiplied by its own odd constant, side by side, then
	 * XORed: for the same other words the result is one-to-one in each
	 * word (and so is the final fold), so segments that differ in one word
	 * never share a signature. Multiplying first keeps fields of
	 * different words from cancelling (XORing a and b first let the top
	 * of seq and the window cancel out). */
	uint64_t h = a * 0x9e3779b97f4a7c15ULL ^ b * 0xbf58476d1ce4e5b9ULL ^ c * 0x94d049bb133111ebULL;

	return h ^ h >> 32;
}

static bool is_duplicate(const struct peer *pe, uint64_t sig, uint64_t ts)
{
	uint64_t gap;

	if (__builtin_expect(pe->last_sig != sig, 1))  /* nearly always */
		return false;
	gap = ts >= pe->last_ns ? ts - pe->last_ns : pe->last_ns - ts;
	return (pe->bits & PB_SEEN) && gap <= DUPLICATE_NS;
}

/* Most segments are ACKs, with or without data, between two synchronised
 * endpoints: both ESTABLISHED, nothing held back, the client's SYN
 * acknowledged (so no SYN timer runs). For those settle(), process_send()
 * and process_recv() find nothing to do: no timer is due, and the table
 * keeps ESTABLISHED on sending and receiving an ACK (tcp_fsm.c). */
static bool steady(const struct conn *c, enum fsm_event ev)
{
	const struct peer *cl = &c->peer[ROLE_CLIENT], *sv = &c->peer[ROLE_SERVER];

	return ev == EV_ACK && cl->state == TS_ESTABLISHED && sv->state == TS_ESTABLISHED &&
	       cl->pend_kind == PENDING_NONE && sv->pend_kind == PENDING_NONE &&
	       ((cl->bits & PB_ACKED) || !(cl->bits & PB_ISN));
}

/* What the sink's segment() is called for: every segment, or after the
 * first only those with one of its flags. */
static bool segment_wanted(const struct tracker *t, uint8_t tcp_flags)
{
	return ((unsigned)tcp_flags | 0x100) & t->seg_mask;
}

/* What every segment begins with, once its sender s is known: its count
 * and the connection's last activity. */
static inline __attribute__((always_inline)) void segment_count(struct conn *c, int s,
								const struct packet *p)
{
	c->peer[s].packets++;
	c->peer[s].bytes += p->payload_len;
	if (p->ts_ns > c->last_ns)
		c->last_ns = p->ts_ns;
}

/* What every segment ends with, once its sender's sequence is tracked:
 * its mark on the sender, then Zeek's view and the sink. */
static inline __attribute__((always_inline)) void segment_done(struct tracker *t, struct conn *c, int s,
							       const struct packet *p, uint64_t sig)
{
	c->peer[s].bits |= PB_SEEN;
	c->peer[s].last_ns = p->ts_ns;
	c->peer[s].last_sig = sig;
	c->peer[s].unanswered++;
	c->peer[!s].unanswered = 0;
	if (c->id <= *t->cfg.zeek_upto)
		zeek_segment(c, s, p);
	if (segment_wanted(t, p->flags)) {
		if (t->sink.segment_flags)
			t->seg_mask = t->sink.segment_flags;
		t->sink.segment(t->sink.ctx, c, s, p);
	}
}

/* A steady segment (steady()): an ACK, with or without data, and no SYN,
 * FIN or RST, between two ESTABLISHED endpoints. process() does the same
 * with it, but this path knows its flags and both states in advance: the
 * state machine has nothing to do, the round trip is measured only until
 * it is known, and the connection stays on the ESTABLISHED list. */
static void steady_segment(struct tracker *t, struct conn *c, int s, const struct packet *p,
			   uint64_t sig)
{
	segment_count(c, s, p);
	if (!c->peer[s].rtt_us)
		measure_rtt(c, s, p);
	/* of SYN, FIN, RST and ACK, only ACK */
	check_unseen(t, c, s, p, TH_ACK);
	track_sequence(c, s, p, TH_ACK);
	segment_done(t, c, s, p, sig);
	/* idle_class_of() of two ESTABLISHED endpoints */
	idle_touch_to(t, c, TS_ESTABLISHED);
}

/* One segment, its key and hash already computed (tracker_push). */
static void process(struct tracker *t, const struct queued *q)
{
	const struct packet *p = &q->p;
	const struct flow_key *kp = &q->key;
	enum fsm_event ev = EV_ACK;
	bool valid = tcp_fsm_classify(p->flags, &ev);
	bool anomalous = false;
	struct flow_entry e;
	struct conn *c;
	uint64_t sig;
	int side = q->side, s;

	t->st.segments++;
	if (p->ts_ns > t->now_ns)
		t->now_ns = p->ts_ns;
	sweep(t);

	if (q->conn && q->epoch == flow_table_epoch(t->ft)) {
		e.conn = q->conn;
		e.frozen = NULL;
	} else {
		e = flow_table_lookup(t->ft, kp, q->hash, &q->hint);
	}
	c = e.frozen ? thaw(t, e.frozen) : e.conn;
	if (e.frozen && !c)
		return; /* no memory to thaw it: counted */
	sig = segment_sig(p);
	if (c && is_duplicate(&c->peer[conn_role_of_side(c, side)], sig, p->ts_ns)) {
		t->st.duplicates++;
		if (c->id <= *t->cfg.zeek_upto)  /* Zeek and tshark count the copy */
			zeek_copy(c, conn_role_of_side(c, side), p);
		return;
	}
	if (c && valid && steady(c, ev)) {
		steady_segment(t, c, conn_role_of_side(c, side), p, sig);
		return;
	}
	if (c) {
		settle(t, c, p->ts_ns);
		if (valid && ev == EV_SYN &&
		    is_new_incarnation(c, conn_role_of_side(c, side), p)) {
			supersede(t, c, p);
			c = conn_new(t, kp, side, ev, p);
			if (c)
				c->flags |= CF_PORT_REUSED;
		}
	} else if (valid) {
		c = conn_new(t, kp, side, ev, p);
	} else {
		/* Impossible flags (a NULL or Xmas scan) say nothing about either
		 * endpoint: no connection is made up from them, the anomaly counts it. */
		note_anomaly(t, NULL, p, AN_BAD_FLAGS);
		return;
	}
	if (!c) {
		t->st.oom++;
		return;
	}

	s = conn_role_of_side(c, side);
	segment_count(c, s, p);

	if (!valid) {
		note_anomaly(t, c, p, AN_BAD_FLAGS);
		measure_rtt(c, s, p);
	} else {
		process_send(t, c, s, ev, p, &anomalous);
		process_recv(t, c, !s, ev, p, &anomalous);
		/* before track_sequence(), which marks this ACK as seen */
		measure_rtt(c, s, p);
		check_unseen(t, c, s, p, p->flags);
		track_sequence(c, s, p, p->flags);
	}
	segment_done(t, c, s, p, sig);
	idle_touch(t, c);
}

static void queue_fill(struct queued *q)
{
	q->hash = flow_key_make_hash(&q->p, &q->key, &q->side);
	q->hint.rec = NULL;
	q->conn = NULL;
}

void tracker_packet(struct tracker *t, const struct packet *p)
{
	struct queued q;

	tracker_drain(t);
	q.p = *p;
	queue_fill(&q);
	process(t, &q);
}

/* The queued packet that a full queue processes `turns` pushes from now. */
static struct queued *queued_due_in(struct tracker *t, unsigned turns)
{
	uint32_t n = t->q_in - 1 - (QUEUE_LEN - turns); /* its number */

	if ((int32_t)(n - t->q_out) < 0)
		return NULL;
	return &t->queue[n % QUEUE_LEN].q;
}

struct packet *tracker_slot(struct tracker *t)
{
	if (t->q_in - t->q_out == QUEUE_LEN)
		process(t, &t->queue[t->q_out++ % QUEUE_LEN].q);
	return &t->queue[t->q_in % QUEUE_LEN].q.p;
}

void tracker_push(struct tracker *t, const struct packet *p)
{
	*tracker_slot(t) = *p;
	tracker_push_slot(t);
}

/* The packet was decoded in its place: the decoder's narrow stores are
 * still in flight when the key is made, and a copy of the packet would
 * read them with wide loads, which wait for them (no store forwarding). */
void tracker_push_slot(struct tracker *t)
{
	struct queued *q = &t->queue[t->q_in++ % QUEUE_LEN].q;
	struct conn *c;

	queue_fill(q);
	flow_table_prefetch(t->ft, q->hash);
	/* Look-ups ahead only read the table, which holds live records. A
	 * frozen one is fetched too: it will be unpacked. */
	if ((q = queued_due_in(t, QUEUE_CONN))) {
		q->hint = flow_table_hint(t->ft, q->hash);
		if (q->hint.rec && !q->hint.frozen)
			conn_prefetch(q->hint.rec);
		else if (q->hint.rec)
			frozen_prefetch(q->hint.rec);
	}
	/* The guess, checked now that its slot and connection have arrived:
	 * at its turn the packet takes the connection without a look-up,
	 * unless a connection left the table meanwhile (the epoch). */
	if ((q = queued_due_in(t, QUEUE_LINKS)) && (c = flow_table_hint_check(t->ft, &q->hint, &q->key))) {
		q->conn = c;
		q->epoch = flow_table_epoch(t->ft);
		/* Zeek's view only for the connections that keep it: in text
		 * most do not, and their last two lines stay where they are */
		if (c->id <= *t->cfg.zeek_upto)
			conn_prefetch_rest(c);
		if (c->node.prev)
			__builtin_prefetch(&c->node.prev->next, 1);
		if (c->node.next)
			__builtin_prefetch(&c->node.next->prev, 1);
		/* where its timeline's next change goes, its own allocation:
		 * waiting for that line was a tenth of a JSON run */
		if (c->tl)
			__builtin_prefetch(&c->tl[c->tl_len], 1);
	}
}

void tracker_drain(struct tracker *t)
{
	while (t->q_out != t->q_in)
		process(t, &t->queue[t->q_out++ % QUEUE_LEN].q);
}

struct by_id {
	uint64_t id;
	struct idle_node *node;
};

static int cmp_id(const void *a, const void *b)
{
	const struct by_id *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

static void finish_one(struct tracker *t, struct conn *c, uint64_t ref_ns)
{
	settle(t, c, ref_ns);
	idle_unlink(t, &c->node);
	flow_table_remove(t->ft, c);
	hand_out(t, c);
}

/* sort_by_id() cuts the id range into this many buckets, and fetches a
 * bucket's next places this many ahead. */
#define SORT_BUCKETS 256
#define SORT_AHEAD 8

static size_t bucket_of(uint64_t id, uint64_t lo, unsigned shift)
{
	return (size_t)((id - lo) >> shift);
}

/* Put all[0..n) in id order, in place, with little more memory: the end
 * must not need much more than the run. Ids are unique and those still open
 * mostly recent, so they usually fill a range not much wider than their
 * number. Then a pass moves each to its bucket (a slice of the range) in
 * place, swapping (American flag sort), and each bucket, a slice too narrow
 * to hold many, is copied out and put back in order through a table with a
 * place for each of its ids: (range / SORT_BUCKETS) times 20 bytes in all,
 * about 0.1 byte a connection. A range too wide for that, or no memory for
 * it: qsort. */
static void sort_by_id(struct by_id *all, size_t n)
{
	size_t start[SORT_BUCKETS + 1] = { 0 }, next[SORT_BUCKETS];
	uint64_t lo = UINT64_MAX, hi = 0, width;
	unsigned shift = 0;
	struct by_id *tmp = NULL;
	uint32_t *at = NULL;

	for (size_t i = 0; i < n; i++) {
		lo = all[i].id < lo ? all[i].id : lo;
		hi = all[i].id > hi ? all[i].id : hi;
	}
	if (n < 2)
		return;
	while ((hi - lo) >> shift >= SORT_BUCKETS)
		shift++;
	width = (uint64_t)1 << shift;
	if (hi - lo >= 4 * (uint64_t)n || width >= UINT32_MAX ||
	    !(tmp = malloc(width * sizeof(*tmp))) || !(at = calloc(width, sizeof(*at)))) {
		free(tmp);
		qsort(all, n, sizeof(*all), cmp_id);
		return;
	}
	for (size_t i = 0; i < n; i++)
		start[bucket_of(all[i].id, lo, shift) + 1]++;
	for (size_t b = 0; b < SORT_BUCKETS; b++) {
		start[b + 1] += start[b];
		next[b] = start[b];
	}
	for (size_t b = 0; b < SORT_BUCKETS; b++)
		while (next[b] < start[b + 1]) {
			struct by_id x = all[next[b]];
			size_t d;

			while ((d = bucket_of(x.id, lo, shift)) != b) {
				struct by_id y = all[next[d]];

				all[next[d]++] = x;
				x = y;
				/* each bucket fills in order: fetch where it goes on */
				if (next[d] + SORT_AHEAD < n)
					__builtin_prefetch(&all[next[d] + SORT_AHEAD], 1);
			}
			all[next[b]++] = x;
		}
	for (size_t b = 0; b < SORT_BUCKETS; b++) {
		size_t m = start[b + 1] - start[b], k = start[b];
		uint64_t base = lo + ((uint64_t)b << shift);

		if (m < 2)
			continue;
		memcpy(tmp, all + start[b], m * sizeof(*tmp));
		for (size_t j = 0; j < m; j++)
			at[tmp[j].id - base] = (uint32_t)j + 1;
		for (size_t j = 0; j < width; j++)
			if (at[j]) {
				all[k++] = tmp[at[j] - 1];
				at[j] = 0;
			}
	}
	free(at);
	free(tmp);
}

/* The id of the connection on node n, live or frozen. */
static uint64_t node_id(struct idle_node *n)
{
	return n->frozen ? frozen_conn_id(node_frozen(n)) : node_conn(n)->id;
}

/* At the end: the live connection on node n, unpacked into a record of its
 * own if frozen (not put back on the list or in the table, which are about
 * to be emptied). NULL on out of memory. The frozen record is left where it
 * is: tracker_finish() gives them all back at once. */
static struct conn *finish_live(struct tracker *t, struct idle_node *n)
{
	struct frozen_conn *f;
	struct conn *c;

	if (!n->frozen)
		return node_conn(n);
	f = node_frozen(n);
	c = conn_pool_alloc(t->pool);
	if (!c || !conn_thaw(f, c)) {
		conn_destroy(c);
		c = NULL;
		t->st.oom++;
	} else {
		t->live++;
	}
	return c;
}

/* Records are fetched this many ahead: in id order they lie all over memory. */
#define FINISH_AHEAD 8

/* Start fetching what node_id() reads of the record on n: its node and id
 * (a live one), or its first two lines, where the key and id are packed (a
 * frozen one). Only those lines: the whole record comes later, and asking
 * for more than is needed here only queues behind it. */
static void id_prefetch(const struct idle_node *n, bool frozen)
{
	__builtin_prefetch(n);
	if (frozen)
		__builtin_prefetch((const char *)n + 63);
	else
		__builtin_prefetch(&node_conn_const(n)->id);
}

/* The same for what finish_live() unpacks: a live record whole, a frozen
 * one's usual few lines. */
static void record_prefetch(const struct idle_node *n, bool frozen)
{
	if (frozen)
		frozen_prefetch(n);
	else
		node_prefetch(n);
}

/* Connections go out in the order they were made, as they always have, each
 * settled at the reference time; frozen ones are unpacked one at a time into
 * a record handed out at once, so memory does not grow, and their packed
 * records are all given back together at the end. All of them go, so the
 * table and the lists are emptied at once at the start rather than one
 * connection at a time; the table hands over its entries in its own memory,
 * where they are put in order, so the end needs hardly more memory than the
 * run. Every connection in the table is on an idle list, found there by its
 * node. */
void tracker_finish(struct tracker *t, uint64_t ref_ns)
{
	size_t n, bytes, pos = 0;
	struct flow_entry *taken, e;
	struct by_id *all;
	struct conn *c;

	tracker_drain(t);
	taken = flow_table_take(t->ft, &n, &bytes);
	if (!taken) {
		/* No memory even for that: table order. Removing a connection
		 * shifts the next one of its run into its slot: look again. */
		while (flow_table_next(t->ft, &pos, &e)) {
			c = e.frozen ? thaw(t, e.frozen) : e.conn;
			if (c)
				finish_one(t, c, ref_ns);
			pos--;
		}
		return;
	}
	for (int cls = 0; cls < TS_COUNT; cls++)
		t->idle[cls] = (struct idle_list){ NULL, NULL, NULL };
	/* Each entry becomes a struct by_id in its place: its node, and whether
	 * it is frozen held in .id until its id is read, so that only the lines
	 * needed are fetched. */
	_Static_assert(sizeof(struct by_id) == sizeof(struct flow_entry), "in place");
	all = (struct by_id *)(void *)taken;
	for (size_t i = 0; i < n; i++) {
		e = taken[i];
		all[i].node = e.frozen ? &e.frozen->node : &e.conn->node;
		all[i].id = e.frozen != NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (i + FINISH_AHEAD < n)
			id_prefetch(all[i + FINISH_AHEAD].node, all[i + FINISH_AHEAD].id);
		all[i].id = node_id(all[i].node);
	}
	sort_by_id(all, n);
	for (size_t i = 0; i < n; i++) {
		/* the node first, which says what else to fetch when its turn to
		 * be fetched comes */
		if (i + 2 * FINISH_AHEAD < n)
			__builtin_prefetch(all[i + 2 * FINISH_AHEAD].node);
		if (i + FINISH_AHEAD < n)
			record_prefetch(all[i + FINISH_AHEAD].node, all[i + FINISH_AHEAD].node->frozen);
		if ((c = finish_live(t, all[i].node))) {
			settle(t, c, ref_ns);
			hand_out(t, c);
		}
	}
	/* Every frozen record has been unpacked and nothing refers to them:
	 * their memory goes at once, not record by record (a slab header, a
	 * cache miss, each: 4.6% of the 20M capture's run in text). */
	conn_pool_drop_packed(t->pool);
	bigmem_free(all, bytes);
}
