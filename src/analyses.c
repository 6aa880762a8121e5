/* analyses.c - the troubleshooting reports built on the tracker's events.
 * Per service (addr:port) it keeps SYN-rate buckets, flood alerts and
 * listener counts; per host the TIME_WAIT count and its peak; from final
 * connections the stuck CLOSE_WAIT, half-open and TIME_WAIT findings. Memory
 * grows with services and hosts, and findings are capped (the cap is said
 * in the output), never with the number of connections. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include "analyses.h"

#define S_NS 1000000000ULL
#define MAX_RECORDS 100000   /* findings kept per kind; more are counted, not listed */
#define HLL_BITS 8
#define HLL_REGS (1u << HLL_BITS)
#define TOPK 16

/* ---- keys ---- */

struct ep_key {
	uint8_t addr[16];
	uint16_t port;
	uint8_t family;
	uint8_t pad;
};

struct host_key {
	uint8_t addr[16];
	uint8_t family;
	uint8_t pad[3];
};

static struct ep_key ep_of(const struct conn *c, int role)
{
	struct ep_key k;

	memset(&k, 0, sizeof(k));
	memcpy(k.addr, conn_addr(c, role), 16);
	k.port = conn_port(c, role);
	k.family = c->key.family;
	return k;
}

static struct host_key host_of(const struct conn *c, int role)
{
	struct host_key k;

	memset(&k, 0, sizeof(k));
	memcpy(k.addr, conn_addr(c, role), 16);
	k.family = c->key.family;
	return k;
}

static uint64_t hash_bytes(const uint8_t *b, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

/* ---- distinct-source estimate: HyperLogLog, 256 registers (~6.5 % error) ---- */

struct hll {
	uint8_t reg[HLL_REGS];
};

static void hll_add(struct hll *h, uint64_t x)
{
	uint32_t idx = (uint32_t)(x >> (64 - HLL_BITS));
	uint64_t rest = x << HLL_BITS;
	uint8_t rank = 1;

	while (rank <= 64 - HLL_BITS && !(rest & (1ULL << 63))) {
		rank++;
		rest <<= 1;
	}
	if (rank > h->reg[idx])
		h->reg[idx] = rank;
}

static uint64_t hll_count(const struct hll *h)
{
	double sum = 0, m = HLL_REGS, alpha = 0.7213 / (1 + 1.079 / m), e;
	unsigned zeros = 0;

	for (unsigned i = 0; i < HLL_REGS; i++) {
		sum += ldexp(1.0, -h->reg[i]);
		zeros += h->reg[i] == 0;
	}
	e = alpha * m * m / sum;
	if (e <= 2.5 * m && zeros)
		e = m * log(m / zeros); /* linear counting for small sets */
	return (uint64_t)(e + 0.5);
}

static void hll_merge(struct hll *into, const struct hll *from)
{
	for (unsigned i = 0; i < HLL_REGS; i++)
		if (from->reg[i] > into->reg[i])
			into->reg[i] = from->reg[i];
}

/* ---- heavy hitters: space-saving with TOPK counters ---- */

/* A newcomer replacing the smallest counter inherits its count (space-
 * saving), so count is an upper bound; count - err, what it added itself,
 * is certain and is what the reports show and rank by. */
struct topk {
	struct {
		struct host_key key;
		uint8_t plen;          /* prefix length, or 0 for a single address */
		uint64_t count;
		uint64_t err;          /* inherited from the key it replaced */
	} e[TOPK];
	unsigned n;
};

static void topk_add(struct topk *t, const struct host_key *k, uint8_t plen)
{
	unsigned min = 0;

	for (unsigned i = 0; i < t->n; i++) {
		if (memcmp(&t->e[i].key, k, sizeof(*k)) == 0) {
			t->e[i].count++;
			return;
		}
		if (t->e[i].count < t->e[min].count)
			min = i;
	}
	if (t->n < TOPK) {
		t->e[t->n].key = *k;
		t->e[t->n].plen = plen;
		t->e[t->n].count = 1;
		t->e[t->n].err = 0;
		t->n++;
		return;
	}
	t->e[min].key = *k; /* replaces the smallest, inheriting its count (space-saving) */
	t->e[min].plen = plen;
	t->e[min].err = t->e[min].count;
	t->e[min].count++;
}

/* What the key certainly sent (since tracking began). */
static uint64_t topk_certain(const struct topk *t, unsigned i)
{
	return t->e[i].count - t->e[i].err;
}

static void topk_sort(struct topk *t)
{
	for (unsigned i = 1; i < t->n; i++)
		for (unsigned j = i; j > 0 && topk_certain(t, j) > topk_certain(t, j - 1); j--) {
			__typeof__(t->e[0]) tmp = t->e[j];
			t->e[j] = t->e[j - 1];
			t->e[j - 1] = tmp;
		}
}

static struct host_key prefix_of(const uint8_t *addr, uint8_t family)
{
	struct host_key k;

	memset(&k, 0, sizeof(k));
	k.family = family;
	if (family == 6)
		memcpy(k.addr, addr, 8);   /* /64 */
	else
		memcpy(k.addr, addr, 3);   /* /24 */
	return k;
}

/* ---- SYN-flood indicators per service ---- */

struct bucket_rec {
	uint64_t start_ns;
	uint64_t syns, sources, synacks, completed, rsts;
	uint64_t unanswered;           /* SYNs of this bucket never answered (known when final) */
	int64_t half_open;
};

struct alert {
	struct ep_key target;
	uint64_t start_ns, end_ns;
	uint64_t syns, completed, synacks, synack_rexmit, rsts, unanswered;
	uint64_t peak_syns;            /* most SYNs in one bucket */
	int64_t half_open_peak;
	struct hll sources;
	struct topk top_src, top_pfx;
	struct bucket_rec *series;
	size_t nseries, capseries;
	bool open;
	struct alert *next;
};

struct target {
	struct ep_key key;
	UT_hash_handle hh;
	uint64_t bucket;               /* index of the current bucket */
	bool have_bucket;
	struct bucket_rec cur;
	uint64_t synack_rexmit;        /* in the current bucket */
	struct hll *hll;               /* current bucket's sources */
	struct alert *suspect;         /* built while buckets look like a flood */
	uint32_t streak;
	int64_t half_open;
	uint64_t syns_total, accepted, refused, unanswered;
	bool answered;                 /* sent a SYN-ACK or completed a handshake */
};

/* ---- TIME_WAIT per host, findings ---- */

struct host {
	struct host_key key;
	UT_hash_handle hh;
	int64_t tw_now, tw_peak;
	uint64_t peak_at;
	uint64_t tw_final;            /* endpoints in TIME_WAIT at the reference time */
};

struct tw_pair {
	struct {
		struct host_key host;
		struct ep_key service;
		uint8_t side;
		uint8_t pad[3];
	} key;
	UT_hash_handle hh;
	uint64_t count, reset;
};

struct cw_group {
	struct ep_key key;
	UT_hash_handle hh;
	uint64_t count, silent, peer_fw2, oldest_since;
	uint64_t ages[4];              /* <1m, 1-10m, 10m-1h, >1h */
};

enum half_kind { HO_SYN_UNANSWERED, HO_HANDSHAKE_INCOMPLETE, HO_PEER_VANISHED, HO_PEER_LOST_STATE,
		 HO_ONE_SIDE_CLOSED, HO_COUNT };
static const char *const half_names[HO_COUNT] = {
	"syn_unanswered", "handshake_incomplete", "peer_vanished", "peer_lost_state", "one_side_closed",
};

/* One finding about one endpoint (close_wait, fin_wait_2, half_open). */
struct finding {
	struct ep_key ep, peer;
	uint64_t conn_id, since_ns, first_packet, bytes_after, evidence_packet;
	uint32_t count;                /* e.g. SYNs sent, segments unanswered */
	uint8_t kind, peer_state;
};

struct findings {
	struct finding *v;
	size_t n, cap;
	uint64_t total;
};

struct anomaly_rec {
	uint64_t conn_id, packet, ts_ns;
	uint8_t kind;
};

struct analyses {
	struct analyses_config cfg;
	uint64_t origin_ns;
	bool have_origin;
	uint64_t ref_ns;
	struct target *targets;
	struct host *hosts;
	struct tw_pair *pairs;
	struct cw_group *cw_groups;
	struct alert *alerts, **alerts_tail;
	uint64_t nalerts;
	int64_t tw_now, tw_peak;
	uint64_t tw_peak_at, tw_final, reset_final;
	struct findings close_wait, fin_wait_2, half[HO_COUNT];
	struct anomaly_rec *anoms;
	size_t nanoms, capanoms;
	uint64_t anom_count[AN_COUNT];
	uint64_t missed_bytes;
};

struct analyses *analyses_create(const struct analyses_config *cfg)
{
	struct analyses *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->cfg = *cfg;
	if (!a->cfg.interval_ns)
		a->cfg.interval_ns = S_NS;
	a->alerts_tail = &a->alerts;
	return a;
}

void analyses_destroy(struct analyses *a)
{
	struct target *t, *tt;
	struct host *h, *ht;
	struct tw_pair *p, *pt;
	struct cw_group *g, *gt;

	if (!a)
		return;
	HASH_ITER(hh, a->targets, t, tt) {
		HASH_DEL(a->targets, t);
		free(t->hll);
		if (t->suspect && !t->suspect->open) {
			free(t->suspect->series);
			free(t->suspect);
		}
		free(t);
	}
	HASH_ITER(hh, a->hosts, h, ht) {
		HASH_DEL(a->hosts, h);
		free(h);
	}
	HASH_ITER(hh, a->pairs, p, pt) {
		HASH_DEL(a->pairs, p);
		free(p);
	}
	HASH_ITER(hh, a->cw_groups, g, gt) {
		HASH_DEL(a->cw_groups, g);
		free(g);
	}
	for (struct alert *al = a->alerts, *n; al; al = n) {
		n = al->next;
		free(al->series);
		free(al);
	}
	free(a->close_wait.v);
	free(a->fin_wait_2.v);
	for (int k = 0; k < HO_COUNT; k++)
		free(a->half[k].v);
	free(a->anoms);
	free(a);
}

static void findings_add(struct findings *f, const struct finding *x)
{
	f->total++;
	if (f->n == MAX_RECORDS)
		return;
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		struct finding *v = realloc(f->v, cap * sizeof(*v));

		if (!v)
			return;
		f->v = v;
		f->cap = cap;
	}
	f->v[f->n++] = *x;
}

/* ---- SYN buckets ---- */

static struct target *target_get(struct analyses *a, const struct ep_key *k)
{
	struct target *t;

	HASH_FIND(hh, a->targets, k, sizeof(*k), t);
	if (t)
		return t;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->key = *k;
	HASH_ADD(hh, a->targets, key, sizeof(t->key), t);
	return t;
}

static bool bucket_suspicious(const struct analyses *a, const struct bucket_rec *b)
{
	double secs = (double)a->cfg.interval_ns / 1e9;

	if (!b->syns || (double)b->syns < (double)a->cfg.syn_rate * secs)
		return false;
	return 1.0 - (double)b->completed / (double)b->syns >= a->cfg.syn_incomplete;
}

static void alert_add_bucket(struct alert *al, const struct bucket_rec *b)
{
	if (al->nseries == al->capseries) {
		size_t cap = al->capseries ? al->capseries * 2 : 16;
		struct bucket_rec *n = realloc(al->series, cap * sizeof(*n));

		if (!n)
			return;
		al->series = n;
		al->capseries = cap;
	}
	al->series[al->nseries++] = *b;
}

/* Close target t's current bucket: extend, raise or end its alert. */
static void bucket_close(struct analyses *a, struct target *t)
{
	struct bucket_rec *b = &t->cur;
	uint64_t bucket_end = b->start_ns + a->cfg.interval_ns;

	if (!t->have_bucket)
		return;
	b->sources = t->hll ? hll_count(t->hll) : 0;
	b->half_open = t->half_open;
	if (bucket_suspicious(a, b)) {
		struct alert *al = t->suspect;

		if (!al) {
			al = calloc(1, sizeof(*al));
			if (!al)
				return;
			al->target = t->key;
			al->start_ns = b->start_ns;
			t->suspect = al;
		}
		t->streak++;
		al->end_ns = bucket_end;
		al->syns += b->syns;
		al->completed += b->completed;
		al->synacks += b->synacks;
		al->synack_rexmit += t->synack_rexmit;
		al->rsts += b->rsts;
		al->unanswered += b->unanswered;
		if (b->syns > al->peak_syns)
			al->peak_syns = b->syns;
		if (b->half_open > al->half_open_peak)
			al->half_open_peak = b->half_open;
		if (t->hll)
			hll_merge(&al->sources, t->hll);
		alert_add_bucket(al, b);
		if (!al->open && t->streak >= a->cfg.syn_buckets) {
			al->open = true;
			*a->alerts_tail = al;
			a->alerts_tail = &al->next;
			a->nalerts++;
		}
	} else {
		if (t->suspect && !t->suspect->open) {
			free(t->suspect->series);
			free(t->suspect);
		}
		t->suspect = NULL;
		t->streak = 0;
	}
	memset(b, 0, sizeof(*b));
	t->synack_rexmit = 0;
	if (t->hll)
		memset(t->hll, 0, sizeof(*t->hll));
	t->have_bucket = false;
}

/* Make ts's bucket current for t; buckets skipped without SYNs end a streak. */
static void bucket_roll(struct analyses *a, struct target *t, uint64_t ts)
{
	uint64_t idx = ts >= a->origin_ns ? (ts - a->origin_ns) / a->cfg.interval_ns : 0;

	if (t->have_bucket && idx == t->bucket)
		return;
	if (t->have_bucket) {
		bool gap = idx > t->bucket + 1;

		bucket_close(a, t);
		if (gap && t->suspect) {
			if (!t->suspect->open) {
				free(t->suspect->series);
				free(t->suspect);
			}
			t->suspect = NULL;
			t->streak = 0;
		}
	}
	t->bucket = idx;
	t->have_bucket = true;
	t->cur.start_ns = a->origin_ns + idx * a->cfg.interval_ns;
}

void analyses_segment(void *ctx, const struct conn *c, int s, const struct packet *p)
{
	struct analyses *a = ctx;
	uint8_t f = p->flags;
	struct target *t;
	struct ep_key k;

	if (!a->have_origin) {
		a->origin_ns = p->ts_ns;
		a->have_origin = true;
	}
	if ((f & (TH_SYN | TH_ACK | TH_RST)) == TH_SYN) {
		/* a SYN to the receiver's service */
		k = ep_of(c, !s);
		t = target_get(a, &k);
		if (!t)
			return;
		bucket_roll(a, t, p->ts_ns);
		t->cur.syns++;
		t->syns_total++;
		if (!t->hll && (t->cur.syns >= 4 || t->streak))
			t->hll = calloc(1, sizeof(*t->hll));
		uint64_t hsrc = hash_bytes(p->src, 16);

		if (t->hll)
			hll_add(t->hll, hsrc);
		if (t->streak || t->cur.syns * 2 >= a->cfg.syn_rate) {
			if (!t->suspect) {
				t->suspect = calloc(1, sizeof(*t->suspect));
				if (t->suspect) {
					t->suspect->target = t->key;
					t->suspect->start_ns = t->cur.start_ns;
				}
			}
			if (t->suspect) {
				struct host_key hk, pk;

				memset(&hk, 0, sizeof(hk));
				memcpy(hk.addr, p->src, 16);
				hk.family = p->family;
				pk = prefix_of(p->src, p->family);
				topk_add(&t->suspect->top_src, &hk, 0);
				topk_add(&t->suspect->top_pfx, &pk, p->family == 6 ? 64 : 24);
			}
		}
		return;
	}
	if ((f & (TH_SYN | TH_ACK)) == (TH_SYN | TH_ACK)) {
		k = ep_of(c, s);
		HASH_FIND(hh, a->targets, &k, sizeof(k), t);
		if (!t)
			return;
		bucket_roll(a, t, p->ts_ns);
		t->answered = true;
		if (c->peer[s].bits & PB_CTL_REXMIT)
			t->synack_rexmit++;
		else
			t->cur.synacks++;
		return;
	}
	if (f & TH_RST) {
		k = ep_of(c, ROLE_SERVER);
		HASH_FIND(hh, a->targets, &k, sizeof(k), t);
		if (t) {
			bucket_roll(a, t, p->ts_ns);
			t->cur.rsts++;
		}
		/* An RST without ACK is the kernel's answer to a segment for which
		 * it has no socket (RFC 793 3.4): on a connection that was
		 * established, the sender lost its state (reboot, dropped socket).
		 * Only the RST that closed the sender counts (later ones answer
		 * retransmissions); the peer's state is the one before this RST
		 * if it took it, else its current one (an RST out of its window). */
		const struct peer *ps = &c->peer[s], *pr = &c->peer[!s];

		if (!(f & TH_ACK) && ps->state == TS_CLOSED && ps->since_ns == p->ts_ns &&
		    ps->prev_state >= TS_ESTABLISHED) {
			bool took = pr->state == TS_CLOSED && pr->since_ns == p->ts_ns;
			struct finding x = {
				.ep = ep_of(c, s), .peer = ep_of(c, !s), .conn_id = c->id,
				.since_ns = p->ts_ns, .evidence_packet = p->number,
				.first_packet = c->first_packet, .kind = HO_PEER_LOST_STATE,
				.peer_state = took ? pr->prev_state : pr->state,
			};
			findings_add(&a->half[HO_PEER_LOST_STATE], &x);
		}
	}
}

/* Take one half-open connection back from the buckets of an alert that
 * closed after `from`. */
static void series_unsay(struct analyses *a, struct alert *al, uint64_t from)
{
	al->half_open_peak = 0;
	for (size_t i = 0; i < al->nseries; i++) {
		struct bucket_rec *b = &al->series[i];

		if (b->start_ns + a->cfg.interval_ns > from && b->half_open > 0)
			b->half_open--;
		if (b->half_open > al->half_open_peak)
			al->half_open_peak = b->half_open;
	}
}

/* Take back a completion counted in the bucket at ts of an alert. */
static void series_uncomplete(struct analyses *a, struct alert *al, uint64_t ts)
{
	for (size_t i = 0; i < al->nseries; i++) {
		struct bucket_rec *b = &al->series[i];

		if (ts >= b->start_ns && ts < b->start_ns + a->cfg.interval_ns && b->completed) {
			b->completed--;
			al->completed--;
		}
	}
}

/* Apply fn to the alerts of t that hold closed buckets: those raised, and
 * the streak being built. */
static void target_alerts(struct analyses *a, struct target *t,
			  void (*fn)(struct analyses *, struct alert *, uint64_t), uint64_t ts)
{
	for (struct alert *al = a->alerts; al; al = al->next)
		if (!memcmp(&al->target, &t->key, sizeof(t->key)))
			fn(a, al, ts);
	if (t->suspect && !t->suspect->open)
		fn(a, t->suspect, ts);
}

void analyses_state(void *ctx, const struct conn *c, const struct transition *tr)
{
	struct analyses *a = ctx;

	if (tr->side == ROLE_SERVER && (tr->to == TS_SYN_RECEIVED || tr->from == TS_SYN_RECEIVED)) {
		struct ep_key k = ep_of(c, ROLE_SERVER);
		struct target *t;

		HASH_FIND(hh, a->targets, &k, sizeof(k), t);
		if (t) {
			t->half_open += tr->to == TS_SYN_RECEIVED ? 1 : -1;
			/* A SYN-ACK that was never retransmitted and then given up
			 * on held no request (a SYN cookie): it was never half-open.
			 * The tracker knows only seconds later, after the buckets
			 * counted it among the SYN_RECEIVED. */
			if (tr->to == TS_CLOSED && tr->cause == TC_TIMEOUT &&
			    !(c->peer[ROLE_SERVER].bits & PB_CTL_REXMIT))
				target_alerts(a, t, series_unsay, c->peer[ROLE_SERVER].ctl_tx_ns);
			if (tr->from == TS_SYN_RECEIVED && tr->to == TS_ESTABLISHED) {
				/* A completion confirmed late (a held-back ACK) is dated
				 * in the past: it counts in the current bucket, as
				 * rolling back would close buckets out of order. */
				if (a->have_origin && (!t->have_bucket || tr->ts_ns >= t->cur.start_ns))
					bucket_roll(a, t, tr->ts_ns);
				t->cur.completed++;
				t->accepted++;
				t->answered = true;
			} else if (tr->from == TS_ESTABLISHED && tr->to == TS_SYN_RECEIVED) {
				/* The SYN-ACK was sent again: the ACK that completed the
				 * handshake never reached the server. Not accepted; the
				 * completion was counted in the bucket of the handshake. */
				if (t->accepted)
					t->accepted--;
				if (t->have_bucket && c->first_ns >= t->cur.start_ns) {
					if (t->cur.completed)
						t->cur.completed--;
				} else {
					target_alerts(a, t, series_uncomplete, c->first_ns);
				}
			}
		}
	}
	if (tr->to == TS_TIME_WAIT || tr->from == TS_TIME_WAIT) {
		int d = tr->to == TS_TIME_WAIT ? 1 : -1;
		struct host_key k = host_of(c, tr->side);
		struct host *h;

		HASH_FIND(hh, a->hosts, &k, sizeof(k), h);
		if (!h && d > 0) {
			h = calloc(1, sizeof(*h));
			if (h) {
				h->key = k;
				HASH_ADD(hh, a->hosts, key, sizeof(h->key), h);
			}
		}
		if (h) {
			h->tw_now += d;
			if (h->tw_now > h->tw_peak) {
				h->tw_peak = h->tw_now;
				h->peak_at = tr->ts_ns;
			}
		}
		a->tw_now += d;
		if (a->tw_now > a->tw_peak) {
			a->tw_peak = a->tw_now;
			a->tw_peak_at = tr->ts_ns;
		}
	}
}

void analyses_anomaly(void *ctx, const struct conn *c, const struct packet *p, enum anomaly_kind k)
{
	struct analyses *a = ctx;

	a->anom_count[k]++;
	if (a->nanoms == MAX_RECORDS / 10)
		return;
	if (a->nanoms == a->capanoms) {
		size_t cap = a->capanoms ? a->capanoms * 2 : 64;
		struct anomaly_rec *n = realloc(a->anoms, cap * sizeof(*n));

		if (!n)
			return;
		a->anoms = n;
		a->capanoms = cap;
	}
	a->anoms[a->nanoms++] = (struct anomaly_rec){
		.conn_id = c ? c->id : 0, .packet = p->number, .ts_ns = p->ts_ns, .kind = (uint8_t)k,
	};
}

/* ---- final connections ---- */

static void age_bucket(uint64_t age_ns, uint64_t *ages)
{
	uint64_t s = age_ns / S_NS;

	ages[s < 60 ? 0 : s < 600 ? 1 : s < 3600 ? 2 : 3]++;
}

static void final_stuck(struct analyses *a, const struct conn *c, int r, uint64_t ref)
{
	const struct peer *pe = &c->peer[r], *po = &c->peer[!r];
	uint64_t age = ref > pe->since_ns ? ref - pe->since_ns : 0;
	struct finding x;

	if (age < a->cfg.close_wait_after_ns)
		return;
	memset(&x, 0, sizeof(x));
	x.ep = ep_of(c, r);
	x.peer = ep_of(c, !r);
	x.conn_id = c->id;
	x.since_ns = pe->since_ns;
	x.bytes_after = pe->bytes - pe->since_bytes;
	x.peer_state = po->state;
	x.first_packet = c->first_packet;
	if (pe->state == TS_FIN_WAIT_2) {
		findings_add(&a->fin_wait_2, &x);
		return;
	}
	findings_add(&a->close_wait, &x);

	struct cw_group *g;

	HASH_FIND(hh, a->cw_groups, &x.ep, sizeof(x.ep), g);
	if (!g) {
		g = calloc(1, sizeof(*g));
		if (!g)
			return;
		g->key = x.ep;
		g->oldest_since = pe->since_ns;
		HASH_ADD(hh, a->cw_groups, key, sizeof(g->key), g);
	}
	g->count++;
	if (!x.bytes_after)
		g->silent++;
	if (po->state == TS_FIN_WAIT_2)
		g->peer_fw2++;
	if (pe->since_ns < g->oldest_since)
		g->oldest_since = pe->since_ns;
	age_bucket(age, g->ages);
}

/* Synchronised and not yet closing down for good. */
static bool is_open(uint8_t st)
{
	return st != TS_CLOSED && st != TS_SYN_SENT && st != TS_SYN_RECEIVED && st != TS_TIME_WAIT;
}

static void final_half_open(struct analyses *a, const struct conn *c, uint64_t ref)
{
	const struct peer *cl = &c->peer[ROLE_CLIENT], *sv = &c->peer[ROLE_SERVER];
	struct finding x;
	int kind = -1, who = ROLE_CLIENT;

	memset(&x, 0, sizeof(x));
	if (cl->state == TS_SYN_SENT && sv->state == TS_CLOSED) {
		kind = HO_SYN_UNANSWERED;
		x.count = (uint32_t)cl->packets;
		x.since_ns = c->first_ns;
	} else if (sv->state == TS_SYN_RECEIVED) {
		/* Since the SYN: its since_ns restarts when the tracker undoes an
		 * ESTABLISHED its SYN-ACK retransmission disproved. */
		kind = HO_HANDSHAKE_INCOMPLETE;
		who = ROLE_SERVER;
		x.count = (uint32_t)sv->packets;
		x.since_ns = c->first_ns;
	} else if (is_open(cl->state) && is_open(sv->state)) {
		/* One side keeps sending (retransmissions, keep-alive probes)
		 * and the other has been silent for longer than vanished_after. */
		for (int r = 0; r < 2 && kind < 0; r++) {
			const struct peer *me = &c->peer[r], *other = &c->peer[!r];

			if (me->unanswered >= 2 && other->last_ns &&
			    me->last_ns > other->last_ns &&
			    ref - other->last_ns >= a->cfg.vanished_after_ns) {
				kind = HO_PEER_VANISHED;
				who = r;
				x.count = me->unanswered;
				x.since_ns = other->last_ns;
			}
		}
	} else if ((cl->state == TS_CLOSED) != (sv->state == TS_CLOSED)) {
		/* One side is gone (reset, or closed) and the other kept sending after. */
		int closed = cl->state == TS_CLOSED ? ROLE_CLIENT : ROLE_SERVER;
		const struct peer *pc = &c->peer[closed], *po = &c->peer[!closed];

		if (po->last_ns > pc->since_ns && po->state != TS_TIME_WAIT) {
			kind = HO_ONE_SIDE_CLOSED;
			who = !closed;
			x.since_ns = pc->since_ns;
			x.count = po->unanswered;
		}
	}
	if (kind < 0)
		return;
	x.ep = ep_of(c, who);
	x.peer = ep_of(c, !who);
	x.conn_id = c->id;
	x.kind = (uint8_t)kind;
	x.first_packet = c->first_packet;
	x.peer_state = c->peer[!who].state;
	findings_add(&a->half[kind], &x);
}

static void final_time_wait(struct analyses *a, const struct conn *c)
{
	for (int r = 0; r < 2; r++) {
		struct tw_pair key, *p;
		bool tw = c->peer[r].state == TS_TIME_WAIT;
		bool reset = (c->flags & CF_RESET) && r == ROLE_CLIENT;

		if (!tw && !reset)
			continue;
		memset(&key, 0, sizeof(key));
		key.key.host = host_of(c, r);
		key.key.service = ep_of(c, ROLE_SERVER);
		key.key.side = (uint8_t)r;
		HASH_FIND(hh, a->pairs, &key.key, sizeof(key.key), p);
		if (!p) {
			p = calloc(1, sizeof(*p));
			if (!p)
				return;
			p->key = key.key;
			HASH_ADD(hh, a->pairs, key, sizeof(p->key), p);
		}
		if (tw) {
			struct host *h;
			struct host_key hk = host_of(c, r);

			p->count++;
			a->tw_final++;
			HASH_FIND(hh, a->hosts, &hk, sizeof(hk), h);
			if (h)
				h->tw_final++;
		} else {
			p->reset++;
			a->reset_final++;
		}
	}
}

/* The client sent a SYN and nothing came back: no SYN-ACK, no RST, nothing
 * the client acknowledged. Whether the client is still in SYN_SENT does not
 * matter: a spoofed or given-up sender is CLOSED (syn_sender_silent). */
static bool syn_unanswered(const struct conn *c)
{
	const struct peer *cl = &c->peer[ROLE_CLIENT], *sv = &c->peer[ROLE_SERVER];

	return (cl->bits & PB_ISN) && !(cl->bits & PB_ACKED) && !(sv->bits & PB_SEEN);
}

/* An unanswered SYN at ts goes to the alert whose buckets cover ts. A
 * connection is final long after its SYN, often before the alert is raised
 * (at the end of the capture): the bucket still open, or the streak being
 * built, keeps the count until then. */
static void count_unanswered(struct analyses *a, struct target *t, uint64_t ts)
{
	if (t->have_bucket && ts >= t->cur.start_ns) {
		t->cur.unanswered++;
		return;
	}
	for (struct alert *al = a->alerts; al; al = al->next)
		if (!memcmp(&al->target, &t->key, sizeof(t->key)) && ts >= al->start_ns && ts < al->end_ns) {
			al->unanswered++;
			return;
		}
	if (t->suspect && !t->suspect->open && ts >= t->suspect->start_ns && ts < t->suspect->end_ns)
		t->suspect->unanswered++;
}

void analyses_conn_final(struct analyses *a, const struct conn *c, uint64_t ref)
{
	struct ep_key k = ep_of(c, ROLE_SERVER);
	struct target *t;

	a->ref_ns = ref;
	a->missed_bytes += c->missed_bytes;
	for (int r = 0; r < 2; r++)
		if (c->peer[r].state == TS_CLOSE_WAIT || c->peer[r].state == TS_FIN_WAIT_2)
			final_stuck(a, c, r, ref);
	final_half_open(a, c, ref);
	final_time_wait(a, c);

	HASH_FIND(hh, a->targets, &k, sizeof(k), t);
	if (!t)
		return;
	if (c->flags & CF_REFUSED)
		t->refused++;
	else if (syn_unanswered(c)) {
		t->unanswered++;
		count_unanswered(a, t, c->first_ns);
	}
}

void analyses_finish(struct analyses *a, uint64_t ref)
{
	struct target *t, *tmp;

	a->ref_ns = ref;
	HASH_ITER(hh, a->targets, t, tmp)
		bucket_close(a, t);
}

void analyses_counts(const struct analyses *a, struct analyses_counts *out)
{
	memset(out, 0, sizeof(*out));
	out->close_wait_stuck = a->close_wait.total;
	for (int k = 0; k < HO_COUNT; k++)
		out->half_open += a->half[k].total;
	out->syn_alerts = a->nalerts;
	out->time_wait_peak = (uint64_t)a->tw_peak;
	out->time_wait_now = a->tw_now > 0 ? (uint64_t)a->tw_now : 0;
}

bool report_sections_parse(const char *list, unsigned *mask)
{
	static const struct { const char *name; unsigned bit; } names[] = {
		{ "states", SEC_STATES }, { "connections", SEC_CONNECTIONS },
		{ "close_wait", SEC_CLOSE_WAIT }, { "half_open", SEC_HALF_OPEN },
		{ "syn_flood", SEC_SYN_FLOOD }, { "time_wait", SEC_TIME_WAIT },
		{ "anomalies", SEC_ANOMALIES }, { "listeners", SEC_LISTENERS }, { "all", SEC_ALL },
	};
	const char *p = list;

	*mask = 0;
	while (*p) {
		size_t n = strcspn(p, ",");
		bool found = false;

		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i].name) == n && !strncmp(p, names[i].name, n)) {
				*mask |= names[i].bit;
				found = true;
			}
		if (!found)
			return false;
		p += n;
		if (*p == ',')
			p++;
	}
	return *mask != 0;
}


/* ---- writing ---- */

static const char *ep_text(const struct ep_key *k, char *buf, size_t len)
{
	return endpoint_str(k->family, k->addr, k->port, buf, len);
}

static void json_ep(struct out *o, const struct ep_key *k)
{
	char a[64];

	out_str(o, "{\"addr\":\"");
	out_str(o, addr_str(k->family, k->addr, a, sizeof(a)));
	out_str(o, "\",\"port\":");
	out_u64(o, k->port);
	out_char(o, '}');
}

static void json_host(struct out *o, const struct host_key *k)
{
	char a[64];

	out_char(o, '"');
	out_str(o, addr_str(k->family, k->addr, a, sizeof(a)));
	out_char(o, '"');
}

static uint64_t age_of(const struct analyses *a, uint64_t since)
{
	return a->ref_ns > since ? a->ref_ns - since : 0;
}

static int cw_group_cmp(const void *x, const void *y)
{
	const struct cw_group *g = *(const struct cw_group *const *)x;
	const struct cw_group *h = *(const struct cw_group *const *)y;

	if (g->count != h->count)
		return g->count > h->count ? -1 : 1;
	return g->oldest_since < h->oldest_since ? -1 : g->oldest_since > h->oldest_since;
}

static struct cw_group **sorted_groups(struct analyses *a, size_t *n)
{
	struct cw_group **v, *g;
	size_t i = 0;

	*n = HASH_COUNT(a->cw_groups);
	v = calloc(*n + 1, sizeof(*v));
	if (!v) {
		*n = 0;
		return NULL;
	}
	for (g = a->cw_groups; g; g = g->hh.next)
		v[i++] = g;
	qsort(v, *n, sizeof(*v), cw_group_cmp);
	return v;
}

static void text_close_wait(struct analyses *a, struct out *o)
{
	size_t n;
	struct cw_group **v = sorted_groups(a, &n);
	char ep[64], d[32];

	out_fmt(o, "STUCK CLOSE_WAIT (in CLOSE_WAIT for more than %s at the reference time)\n",
		duration_str(a->cfg.close_wait_after_ns, d, sizeof(d)));
	if (!n)
		out_str(o, "  none\n");
	for (size_t i = 0; i < n && i < 20; i++) {
		struct cw_group *g = v[i];

		ep_text(&g->key, ep, sizeof(ep));
		out_fmt(o, "  %s holds %llu connection%s in CLOSE_WAIT, oldest %s, %llu silent since the peer's FIN\n",
			ep, (unsigned long long)g->count, g->count == 1 ? "" : "s",
			duration_str(age_of(a, g->oldest_since), d, sizeof(d)),
			(unsigned long long)g->silent);
		out_fmt(o, "    ages: <1m %llu, 1-10m %llu, 10m-1h %llu, >1h %llu; still sending after the FIN: %llu; peers in FIN_WAIT_2: %llu\n",
			(unsigned long long)g->ages[0], (unsigned long long)g->ages[1],
			(unsigned long long)g->ages[2], (unsigned long long)g->ages[3],
			(unsigned long long)(g->count - g->silent), (unsigned long long)g->peer_fw2);
		out_fmt(o, "    hint: %s; confirm on the host: ss -tanp state close-wait '( sport = :%u )'\n",
			g->silent == g->count ?
				"the application received the peer's FIN and never called close() (a socket leak)" :
				"some still send after the peer's FIN (a half-close in use, probably fine); the silent ones look leaked",
			g->key.port);
	}
	if (n > 20)
		out_fmt(o, "  ... %zu more services (--format json lists every one)\n", n - 20);
	if (a->fin_wait_2.total) {
		out_fmt(o, "  also %llu endpoint%s stuck in FIN_WAIT_2 (closed, waiting for the peer's FIN for more than %s)\n",
			(unsigned long long)a->fin_wait_2.total, a->fin_wait_2.total == 1 ? "" : "s",
			duration_str(a->cfg.close_wait_after_ns, d, sizeof(d)));
		out_str(o, "    hint: the peer application never closes; Linux drops orphaned FIN_WAIT_2 after net.ipv4.tcp_fin_timeout, sockets kept after shutdown() stay: ss -tan state fin-wait-2\n");
	}
	out_char(o, '\n');
	free(v);
}

static const char *const half_hints[HO_COUNT] = {
	"no SYN-ACK came back: the service is down, filtered, or its accept queue is full; check ss -tln and nstat -az TcpExtListenOverflows TcpExtListenDrops on the server",
	"the client's handshake ACK never arrived (or was dropped); check the path and on the server: ss -tan state syn-recv, net.ipv4.tcp_synack_retries",
	"one side retransmits or probes and nothing comes back: the peer or the path is gone; the sender gives up after net.ipv4.tcp_retries2 (about 15 min); check ss -tanoi for retransmission timers",
	"an RST answered a segment of an established connection: the RST's sender has no socket any more (reboot, killed process, conntrack/NAT state lost); the other side stays open until it sends",
	"one side is gone and the other kept sending; look for resets by middleboxes (idle timeouts in firewalls, load balancers)",
};

static void text_half_open(struct analyses *a, struct out *o)
{
	char ep[64], pe[64], d[32], tm[40];
	uint64_t total = 0;

	for (int k = 0; k < HO_COUNT; k++)
		total += a->half[k].total;
	out_fmt(o, "HALF-OPEN CONNECTIONS (%llu)\n", (unsigned long long)total);
	if (!total)
		out_str(o, "  none\n");
	for (int k = 0; k < HO_COUNT; k++) {
		const struct findings *f = &a->half[k];

		if (!f->total)
			continue;
		out_fmt(o, "  %s: %llu\n", half_names[k], (unsigned long long)f->total);
		for (size_t i = 0; i < f->n && i < 5; i++) {
			const struct finding *x = &f->v[i];

			out_fmt(o, "    %s -> %s since %s (%s ago), connection %llu, first packet %llu",
				ep_text(&x->ep, ep, sizeof(ep)), ep_text(&x->peer, pe, sizeof(pe)),
				time_str(x->since_ns, tm, sizeof(tm)) + 11,
				duration_str(age_of(a, x->since_ns), d, sizeof(d)),
				(unsigned long long)x->conn_id, (unsigned long long)x->first_packet);
			if (x->evidence_packet)
				out_fmt(o, ", RST in packet %llu", (unsigned long long)x->evidence_packet);
			if (x->count && k != HO_PEER_LOST_STATE)
				out_fmt(o, ", %u segment%s", x->count, x->count == 1 ? "" : "s");
			out_char(o, '\n');
		}
		if (f->total > 5)
			out_fmt(o, "    ... %llu more\n", (unsigned long long)(f->total - 5));
		out_fmt(o, "    hint: %s\n", half_hints[k]);
	}
	out_char(o, '\n');
}

static void text_topk(struct out *o, const char *label, struct topk *t)
{
	char a[64];

	topk_sort(t);
	out_fmt(o, "    %s:", label);
	for (unsigned i = 0; i < t->n && i < 5; i++) {
		addr_str(t->e[i].key.family, t->e[i].key.addr, a, sizeof(a));
		if (t->e[i].plen)
			out_fmt(o, " %s/%u (%llu)", a, t->e[i].plen, (unsigned long long)topk_certain(t, i));
		else
			out_fmt(o, " %s (%llu)", a, (unsigned long long)topk_certain(t, i));
	}
	out_char(o, '\n');
}

/* SYN cookies: SYN-ACKs that are never retransmitted while some are (the
 * requests held in the backlog), over an alert long enough for SYN-ACK
 * retransmissions (1 s) to show. Full backlog: SYNs with no answer while
 * the service answers others. */
static bool alert_cookies(const struct alert *al)
{
	return al->synacks >= 20 && al->end_ns - al->start_ns >= 2 * S_NS &&
	       al->synack_rexmit * 10 < al->synacks;
}

static void text_syn_flood(struct analyses *a, struct out *o)
{
	char ep[64], d[32], t1[40], t2[40];

	out_fmt(o, "SYN FLOOD ALERTS (%llu; a service gets >= %llu SYNs/s and >= %.0f%% never complete, %u buckets of %s in a row)\n",
		(unsigned long long)a->nalerts, (unsigned long long)a->cfg.syn_rate,
		a->cfg.syn_incomplete * 100, a->cfg.syn_buckets,
		duration_str(a->cfg.interval_ns, d, sizeof(d)));
	if (!a->nalerts)
		out_str(o, "  none\n");
	for (struct alert *al = a->alerts; al; al = al->next) {
		double secs = (double)a->cfg.interval_ns / 1e9;

		out_fmt(o, "  %s from %s to %s (%s): %llu SYNs, peak %.0f/s, ~%llu sources, %.1f%% completed\n",
			ep_text(&al->target, ep, sizeof(ep)), time_str(al->start_ns, t1, sizeof(t1)) + 11,
			time_str(al->end_ns, t2, sizeof(t2)) + 11,
			duration_str(al->end_ns - al->start_ns, d, sizeof(d)), (unsigned long long)al->syns,
			(double)al->peak_syns / secs, (unsigned long long)hll_count(&al->sources),
			al->syns ? 100.0 * (double)al->completed / (double)al->syns : 0.0);
		out_fmt(o, "    SYN-ACKs %llu (%llu retransmitted), RSTs %llu, half-open peak %lld, unanswered SYNs %llu\n",
			(unsigned long long)al->synacks, (unsigned long long)al->synack_rexmit,
			(unsigned long long)al->rsts, (long long)al->half_open_peak,
			(unsigned long long)al->unanswered);
		text_topk(o, "top sources", &al->top_src);
		text_topk(o, "top prefixes", &al->top_pfx);
		if (alert_cookies(al))
			out_str(o, "    SYN cookies: likely (SYN-ACKs are not retransmitted, except for the few requests in the backlog)\n");
		if (al->unanswered && al->synacks)
			out_str(o, "    backlog full: some SYNs got no SYN-ACK while the service answered others\n");
		out_str(o, "    hint: confirm on the server: nstat -az TcpExtSyncookiesSent TcpExtListenOverflows TcpExtListenDrops; "
			   "sysctl net.ipv4.tcp_syncookies net.ipv4.tcp_max_syn_backlog net.core.somaxconn\n");
	}
	out_char(o, '\n');
}

static int pair_cmp(const void *x, const void *y)
{
	const struct tw_pair *p = *(const struct tw_pair *const *)x, *q = *(const struct tw_pair *const *)y;

	return p->count != q->count ? (p->count > q->count ? -1 : 1) : 0;
}

static int host_cmp(const void *x, const void *y)
{
	const struct host *p = *(const struct host *const *)x, *q = *(const struct host *const *)y;

	return p->tw_final != q->tw_final ? (p->tw_final > q->tw_final ? -1 : 1) :
	       (p->tw_peak > q->tw_peak ? -1 : p->tw_peak < q->tw_peak);
}

static void text_time_wait(struct analyses *a, struct out *o)
{
	size_t nh = HASH_COUNT(a->hosts), np = HASH_COUNT(a->pairs), i = 0;
	struct host **hv = calloc(nh + 1, sizeof(*hv));
	struct tw_pair **pv = calloc(np + 1, sizeof(*pv));
	char h[64], ep[64], tm[40];

	if (!hv || !pv) {
		free(hv);
		free(pv);
		return;
	}
	for (struct host *x = a->hosts; x; x = x->hh.next)
		hv[i++] = x;
	i = 0;
	for (struct tw_pair *x = a->pairs; x; x = x->hh.next)
		pv[i++] = x;
	qsort(hv, nh, sizeof(*hv), host_cmp);
	qsort(pv, np, sizeof(*pv), pair_cmp);
	out_fmt(o, "TIME_WAIT (%llu endpoints at the reference time; peak %lld at %s)\n",
		(unsigned long long)a->tw_final, (long long)a->tw_peak,
		a->tw_peak ? time_str(a->tw_peak_at, tm, sizeof(tm)) + 11 : "-");
	for (i = 0; i < nh && i < 10; i++) {
		out_fmt(o, "  %s holds %llu in TIME_WAIT (peak %lld at %s)\n",
			addr_str(hv[i]->key.family, hv[i]->key.addr, h, sizeof(h)),
			(unsigned long long)hv[i]->tw_final, (long long)hv[i]->tw_peak,
			time_str(hv[i]->peak_at, tm, sizeof(tm)) + 11);
	}
	for (i = 0; i < np && i < 10; i++) {
		struct tw_pair *p = pv[i];
		double share = (double)p->count / EPHEMERAL_PORTS;

		if (!p->count)
			continue;
		addr_str(p->key.host.family, p->key.host.addr, h, sizeof(h));
		ep_text(&p->key.service, ep, sizeof(ep));
		if (p->key.side == ROLE_CLIENT)
			out_fmt(o, "  %s -> %s: %llu client ports in TIME_WAIT, %.1f%% of the ephemeral range 32768-60999%s\n",
				h, ep, (unsigned long long)p->count, share * 100,
				share >= a->cfg.tw_warn ? "  WARNING: ephemeral port exhaustion ahead" : "");
		else
			out_fmt(o, "  %s (server side, it closed first): %llu in TIME_WAIT\n", ep,
				(unsigned long long)p->count);
	}
	if (a->reset_final)
		out_fmt(o, "  %llu connections ended by RST (no TIME_WAIT) are not counted above\n",
			(unsigned long long)a->reset_final);
	out_str(o, "  hint: the side that closes first holds TIME_WAIT for 60 s; reuse connections (keep-alive, pooling); "
		   "check: ss -tan state time-wait | wc -l; sysctl net.ipv4.ip_local_port_range net.ipv4.tcp_tw_reuse "
		   "(never tcp_tw_recycle: removed in Linux 4.12)\n\n");
	free(hv);
	free(pv);
}

static const char *const anomaly_hints[AN_COUNT] = {
	"flag combinations no TCP stack sends: scans (nmap -sX/-sN) or crafted traffic",
	"segments the endpoint's state does not allow (SYN on a synchronised connection, ...): restarts, middleboxes, or capture holes",
	"a new SYN on an open connection: the client lost its state and reconnects from the same port (Linux answers with a challenge ACK)",
	"an RST outside the receiver's window was ignored: blind-reset attempts, or a middlebox with stale state",
	"data or FIN from an endpoint after it closed or was reset",
	"the capture saw a segment its receiver never accepted (dropped after the capture point, e.g. by a firewall or a full queue)",
	"ACKs for data the capture never saw: the capture itself has holes (drops at the capture point, snaplen, filter); states may be off",
};

static void text_anomalies(struct analyses *a, struct out *o)
{
	bool any = false;

	out_str(o, "ANOMALIES\n");
	for (int k = 0; k < AN_COUNT; k++) {
		if (!a->anom_count[k])
			continue;
		any = true;
		out_fmt(o, "  %-22s %8llu", anomaly_kind_name((enum anomaly_kind)k),
			(unsigned long long)a->anom_count[k]);
		unsigned shown = 0;

		for (size_t i = 0; i < a->nanoms && shown < 3; i++)
			if (a->anoms[i].kind == k) {
				out_fmt(o, "%s connection %llu packet %llu", shown ? "," : "  e.g.",
					(unsigned long long)a->anoms[i].conn_id,
					(unsigned long long)a->anoms[i].packet);
				shown++;
			}
		out_char(o, '\n');
		out_fmt(o, "    hint: %s\n", anomaly_hints[k]);
	}
	if (a->missed_bytes)
		out_fmt(o, "  the capture missed %llu bytes that endpoints acknowledged\n",
			(unsigned long long)a->missed_bytes);
	if (!any)
		out_str(o, "  none\n");
	out_char(o, '\n');
}

static int target_cmp(const void *x, const void *y)
{
	const struct target *p = *(const struct target *const *)x, *q = *(const struct target *const *)y;

	return p->syns_total != q->syns_total ? (p->syns_total > q->syns_total ? -1 : 1) : 0;
}

static struct target **sorted_targets(struct analyses *a, size_t *n)
{
	struct target **v;
	size_t i = 0;

	*n = HASH_COUNT(a->targets);
	v = calloc(*n + 1, sizeof(*v));
	if (!v) {
		*n = 0;
		return NULL;
	}
	for (struct target *t = a->targets; t; t = t->hh.next)
		v[i++] = t;
	qsort(v, *n, sizeof(*v), target_cmp);
	return v;
}

static void text_listeners(struct analyses *a, struct out *o)
{
	size_t n;
	struct target **v = sorted_targets(a, &n);
	char ep[64];

	out_str(o, "LISTENERS (inferred from the wire: what ss -tln would have shown)\n");
	out_fmt(o, "  %-46s %9s %9s %9s %10s  %s\n", "SERVICE", "ACCEPTED", "REFUSED", "UNANSWERED",
		"SYNS", "LISTENING");
	for (size_t i = 0; i < n; i++) {
		struct target *t = v[i];

		out_fmt(o, "  %-46s %9llu %9llu %9llu %10llu  %s\n", ep_text(&t->key, ep, sizeof(ep)),
			(unsigned long long)t->accepted, (unsigned long long)t->refused,
			(unsigned long long)t->unanswered, (unsigned long long)t->syns_total,
			t->answered ? "yes" : (t->refused ? "no (refused)" : "unknown"));
	}
	if (!n)
		out_str(o, "  none (no SYNs in the capture)\n");
	out_str(o, "  hint: compare with ss -tln on the server; a service with only refused SYNs has no listener\n\n");
	free(v);
}

void analyses_write_text(struct analyses *a, struct out *o, unsigned mask, bool only_findings)
{
	uint64_t half = 0, anoms = 0;

	for (int k = 0; k < HO_COUNT; k++)
		half += a->half[k].total;
	for (int k = 0; k < AN_COUNT; k++)
		anoms += a->anom_count[k];
	if ((mask & SEC_CLOSE_WAIT) && (!only_findings || a->close_wait.total || a->fin_wait_2.total))
		text_close_wait(a, o);
	if ((mask & SEC_HALF_OPEN) && (!only_findings || half))
		text_half_open(a, o);
	if ((mask & SEC_SYN_FLOOD) && (!only_findings || a->nalerts))
		text_syn_flood(a, o);
	if ((mask & SEC_TIME_WAIT) && (!only_findings || a->tw_final))
		text_time_wait(a, o);
	if ((mask & SEC_ANOMALIES) && (!only_findings || anoms))
		text_anomalies(a, o);
	if ((mask & SEC_LISTENERS) && !only_findings)
		text_listeners(a, o);
}

static void json_finding(struct analyses *a, struct out *o, const char *type, const struct finding *x,
			 const char *kind)
{
	out_str(o, "{\"type\":\"");
	out_str(o, type);
	out_char(o, '"');
	if (kind) {
		out_str(o, ",\"kind\":\"");
		out_str(o, kind);
		out_char(o, '"');
	}
	out_str(o, ",\"endpoint\":");
	json_ep(o, &x->ep);
	out_str(o, ",\"peer\":");
	json_ep(o, &x->peer);
	out_str(o, ",\"peer_state\":\"");
	out_str(o, tcp_state_name((enum tcp_state)x->peer_state));
	out_str(o, "\",\"since\":");
	out_ts(o, x->since_ns);
	out_str(o, ",\"age\":");
	out_secs(o, age_of(a, x->since_ns));
	out_str(o, ",\"connection\":");
	out_u64(o, x->conn_id);
	if (!kind) {
		out_str(o, ",\"bytes_after_fin\":");
		out_u64(o, x->bytes_after);
	} else {
		out_str(o, ",\"evidence\":{\"first_packet\":");
		out_u64(o, x->first_packet);
		if (x->evidence_packet) {
			out_str(o, ",\"rst_packet\":");
			out_u64(o, x->evidence_packet);
		}
		out_str(o, ",\"segments\":");
		out_u64(o, x->count);
		out_char(o, '}');
	}
	out_str(o, "}\n");
}

static void json_topk(struct out *o, const char *name, struct topk *t)
{
	char a[64];

	topk_sort(t);
	out_str(o, ",\"");
	out_str(o, name);
	out_str(o, "\":[");
	for (unsigned i = 0; i < t->n; i++) {
		if (i)
			out_char(o, ',');
		addr_str(t->e[i].key.family, t->e[i].key.addr, a, sizeof(a));
		if (t->e[i].plen)
			out_fmt(o, "{\"prefix\":\"%s/%u\",\"count\":%llu}", a, t->e[i].plen,
				(unsigned long long)topk_certain(t, i));
		else
			out_fmt(o, "{\"addr\":\"%s\",\"count\":%llu}", a,
				(unsigned long long)topk_certain(t, i));
	}
	out_char(o, ']');
}

void analyses_write_json(struct analyses *a, struct out *o, unsigned mask)
{
	if (mask & SEC_CLOSE_WAIT) {
		size_t n;
		struct cw_group **v = sorted_groups(a, &n);

		for (size_t i = 0; i < a->close_wait.n; i++)
			json_finding(a, o, "close_wait", &a->close_wait.v[i], NULL);
		for (size_t i = 0; i < a->fin_wait_2.n; i++)
			json_finding(a, o, "fin_wait_2", &a->fin_wait_2.v[i], NULL);
		for (size_t i = 0; i < n; i++) {
			struct cw_group *g = v[i];

			out_str(o, "{\"type\":\"close_wait_group\",\"service\":");
			json_ep(o, &g->key);
			out_fmt(o, ",\"count\":%llu,\"silent\":%llu,\"sending\":%llu,\"peer_fin_wait_2\":%llu,",
				(unsigned long long)g->count, (unsigned long long)g->silent,
				(unsigned long long)(g->count - g->silent), (unsigned long long)g->peer_fw2);
			out_str(o, "\"oldest_since\":");
			out_ts(o, g->oldest_since);
			out_str(o, ",\"oldest_age\":");
			out_secs(o, age_of(a, g->oldest_since));
			out_fmt(o, ",\"ages\":{\"lt_1m\":%llu,\"1m_10m\":%llu,\"10m_1h\":%llu,\"gt_1h\":%llu}}\n",
				(unsigned long long)g->ages[0], (unsigned long long)g->ages[1],
				(unsigned long long)g->ages[2], (unsigned long long)g->ages[3]);
		}
		free(v);
	}
	if (mask & SEC_HALF_OPEN)
		for (int k = 0; k < HO_COUNT; k++)
			for (size_t i = 0; i < a->half[k].n; i++)
				json_finding(a, o, "half_open", &a->half[k].v[i], half_names[k]);
	if (mask & SEC_SYN_FLOOD) {
		for (struct alert *al = a->alerts; al; al = al->next) {
			double secs = (double)a->cfg.interval_ns / 1e9;

			for (size_t i = 0; i < al->nseries; i++) {
				const struct bucket_rec *b = &al->series[i];

				out_str(o, "{\"type\":\"syn_rate\",\"target\":");
				json_ep(o, &al->target);
				out_str(o, ",\"ts\":");
				out_ts(o, b->start_ns);
				out_str(o, ",\"interval\":");
				out_secs(o, a->cfg.interval_ns);
				out_fmt(o, ",\"syns\":%llu,\"sources\":%llu,\"synacks\":%llu,\"completed\":%llu,\"rsts\":%llu,\"half_open\":%lld}\n",
					(unsigned long long)b->syns, (unsigned long long)b->sources,
					(unsigned long long)b->synacks, (unsigned long long)b->completed,
					(unsigned long long)b->rsts, (long long)b->half_open);
			}
			out_str(o, "{\"type\":\"syn_flood\",\"target\":");
			json_ep(o, &al->target);
			out_str(o, ",\"start\":");
			out_ts(o, al->start_ns);
			out_str(o, ",\"end\":");
			out_ts(o, al->end_ns);
			out_fmt(o, ",\"syns\":%llu,\"sources\":%llu,\"completed\":%llu,\"completion_ratio\":%.4f,"
				"\"peak_rate\":%.1f,\"synacks\":%llu,\"synacks_retransmitted\":%llu,\"rsts\":%llu,"
				"\"half_open_peak\":%lld,\"unanswered\":%llu,\"syn_cookies\":%s,\"backlog_full\":%s",
				(unsigned long long)al->syns, (unsigned long long)hll_count(&al->sources),
				(unsigned long long)al->completed,
				al->syns ? (double)al->completed / (double)al->syns : 0.0,
				(double)al->peak_syns / secs, (unsigned long long)al->synacks,
				(unsigned long long)al->synack_rexmit, (unsigned long long)al->rsts,
				(long long)al->half_open_peak, (unsigned long long)al->unanswered,
				alert_cookies(al) ? "true" : "false",
				al->unanswered && al->synacks ? "true" : "false");
			json_topk(o, "top_sources", &al->top_src);
			json_topk(o, "top_prefixes", &al->top_pfx);
			out_str(o, "}\n");
		}
	}
	if (mask & SEC_TIME_WAIT) {
		for (struct host *h = a->hosts; h; h = h->hh.next) {
			out_str(o, "{\"type\":\"time_wait\",\"host\":");
			json_host(o, &h->key);
			out_fmt(o, ",\"count\":%llu,\"peak\":%lld,\"peak_at\":", (unsigned long long)h->tw_final,
				(long long)h->tw_peak);
			out_ts(o, h->peak_at);
			out_str(o, "}\n");
		}
		for (struct tw_pair *p = a->pairs; p; p = p->hh.next) {
			double share = (double)p->count / EPHEMERAL_PORTS;

			out_str(o, "{\"type\":\"time_wait_pair\",\"host\":");
			json_host(o, &p->key.host);
			out_fmt(o, ",\"side\":\"%s\",\"service\":", p->key.side == ROLE_CLIENT ? "client" : "server");
			json_ep(o, &p->key.service);
			out_fmt(o, ",\"count\":%llu,\"reset\":%llu,\"ephemeral_share\":%.4f,\"warning\":%s}\n",
				(unsigned long long)p->count, (unsigned long long)p->reset,
				p->key.side == ROLE_CLIENT ? share : 0.0,
				p->key.side == ROLE_CLIENT && share >= a->cfg.tw_warn ? "true" : "false");
		}
	}
	if (mask & SEC_ANOMALIES)
		for (size_t i = 0; i < a->nanoms; i++) {
			out_str(o, "{\"type\":\"anomaly\",\"kind\":\"");
			out_str(o, anomaly_kind_name((enum anomaly_kind)a->anoms[i].kind));
			out_fmt(o, "\",\"connection\":%llu,\"packet\":%llu,\"ts\":",
				(unsigned long long)a->anoms[i].conn_id, (unsigned long long)a->anoms[i].packet);
			out_ts(o, a->anoms[i].ts_ns);
			out_str(o, "}\n");
		}
	if (mask & SEC_LISTENERS) {
		size_t n;
		struct target **v = sorted_targets(a, &n);

		for (size_t i = 0; i < n; i++) {
			out_str(o, "{\"type\":\"listener\",\"endpoint\":");
			json_ep(o, &v[i]->key);
			out_fmt(o, ",\"accepted\":%llu,\"refused\":%llu,\"unanswered\":%llu,\"syns\":%llu,\"listening\":%s}\n",
				(unsigned long long)v[i]->accepted, (unsigned long long)v[i]->refused,
				(unsigned long long)v[i]->unanswered, (unsigned long long)v[i]->syns_total,
				v[i]->answered ? "true" : "false");
		}
		free(v);
	}
}

size_t analyses_write_alerts_since(struct analyses *a, struct out *o, size_t first)
{
	size_t i = 0;

	for (struct alert *al = a->alerts; al; al = al->next, i++) {
		if (i < first)
			continue;
		out_str(o, "{\"type\":\"syn_flood\",\"ongoing\":true,\"target\":");
		json_ep(o, &al->target);
		out_str(o, ",\"start\":");
		out_ts(o, al->start_ns);
		out_str(o, ",\"end\":");
		out_ts(o, al->end_ns);
		out_fmt(o, ",\"syns\":%llu,\"sources\":%llu,\"completed\":%llu,\"peak_rate\":%.1f}\n",
			(unsigned long long)al->syns, (unsigned long long)hll_count(&al->sources),
			(unsigned long long)al->completed,
			(double)al->peak_syns / ((double)a->cfg.interval_ns / 1e9));
	}
	return i;
}
