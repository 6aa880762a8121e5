/* analyses.c - the troubleshooting reports built on the tracker's events.
 * Per service (addr:port) it keeps SYN-rate buckets, flood alerts and
 * listener counts; per host the TIME_WAIT count and its peak; from final
 * connections the stuck CLOSE_WAIT, half-open and TIME_WAIT findings. Memory
 * grows with services and hosts, and findings are capped (the cap is said
 * in the output), never with the number of connections. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The table keys are fixed-size and zero-padded, so uthash's default
 * (Jenkins, about 80 instructions for 20 bytes) buys nothing: one
 * multiply-xor round per 8 bytes, the high half folded down each round
 * because uthash takes the bucket from the low bits. Iteration order is
 * insertion order whatever the hash, so the reports do not depend on it. */
static inline unsigned key_hash(const void *key, size_t len)
{
	const uint8_t *p = key;
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ len, w;
	uint32_t x;

	for (; len >= 8; len -= 8, p += 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 32;
	}
	if (len >= 4) {
		memcpy(&x, p, 4);
		h ^= x;
		len -= 4;
		p += 4;
	}
	while (len--)
		h = (h ^ *p++) * 0x100000001b3ULL;
	h *= 0x94d049bb133111ebULL;
	return (unsigned)(h >> 32);
}
#define HASH_FUNCTION(keyptr, keylen, hashv) ((hashv) = key_hash((keyptr), (keylen)))

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
_Static_assert(sizeof(struct ep_key) == 20 && sizeof(struct host_key) == 20, "keys have no implicit padding");

/* Every byte of a key is written, the padding with zero. Its last 4 bytes
 * go in one store: hashing and comparing read them as one word, which then
 * comes straight from that store instead of waiting for several narrower
 * ones to reach the cache. */
static struct ep_key ep_of(const struct conn *c, int role)
{
	struct ep_key k;
	struct { uint16_t port; uint8_t family, pad; } tail = { conn_port(c, role), c->key.family, 0 };
	uint32_t w;

	_Static_assert(sizeof(tail) == 4 && offsetof(struct ep_key, port) == 16, "ep_key tail");
	memcpy(k.addr, conn_addr(c, role), 16);
	memcpy(&w, &tail, 4);
	memcpy((char *)&k + 16, &w, 4);
	return k;
}

static struct host_key host_of(const struct conn *c, int role)
{
	struct host_key k;
	struct { uint8_t family, pad[3]; } tail = { c->key.family, { 0, 0, 0 } };
	uint32_t w;

	_Static_assert(sizeof(tail) == 4 && offsetof(struct host_key, family) == 16, "host_key tail");
	memcpy(k.addr, conn_addr(c, role), 16);
	memcpy(&w, &tail, 4);
	memcpy((char *)&k + 16, &w, 4);
	return k;
}

#define FNV_PRIME 0x100000001b3ULL
#define FNV_PRIME_2 (FNV_PRIME * FNV_PRIME)      /* mod 2^64, as the hash computes */
#define FNV_PRIME_12 (FNV_PRIME_2 * FNV_PRIME_2 * FNV_PRIME_2 * FNV_PRIME_2 * FNV_PRIME_2 * FNV_PRIME_2)

/* An address's hash for the distinct-source estimate: FNV-1a over its 16
 * bytes, then a finalizer. An IPv4 address leaves 12 zero bytes, and each
 * zero byte only multiplies by the prime: one multiply by prime^12 gives
 * the same value as twelve rounds (the estimates must not change). */
static uint64_t hash_addr(const uint8_t b[16])
{
	uint64_t h = 0xcbf29ce484222325ULL, hi;
	uint32_t mid;
	size_t n = 16;

	memcpy(&mid, b + 4, 4);
	memcpy(&hi, b + 8, 8);
	if (!hi && !mid)
		n = 4;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * FNV_PRIME;
	if (n == 4)
		h *= FNV_PRIME_12;
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
	/* 1 + leading zeros of the remaining bits, 64 - HLL_BITS + 1 when all are zero */
	uint8_t rank = (uint8_t)(rest ? __builtin_clzll(rest) + 1 : 64 - HLL_BITS + 1);

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
	uint16_t tag[TOPK];            /* host_tag(&e[i].key), side by side for the scan */
	unsigned n;
	unsigned min1;                 /* 1 + the first smallest counter; 0: not known */
};

/* A key folded into 16 bits: equal keys have equal tags, so a search
 * compares all sixteen tags at once and only a matching tag's key. In a
 * flood every SYN searches both counters' lists. */
static uint16_t host_tag(const struct host_key *k)
{
	uint64_t a, b;
	uint32_t c;

	memcpy(&a, k->addr, 8);
	memcpy(&b, k->addr + 8, 8);
	memcpy(&c, (const uint8_t *)k + 16, 4);   /* family and pad */
	a = (a ^ (b << 1 | b >> 63) ^ (uint64_t)c << 32) * 0x9e3779b97f4a7c15ULL;
	return (uint16_t)(a >> 48);
}

/* Bit i set: tag[i] == want. */
static unsigned tag_matches(const uint16_t tag[TOPK], uint16_t want)
{
#ifdef __SSE2__
	_Static_assert(TOPK == 16, "two SSE2 registers of eight tags");
	__m128i w = _mm_set1_epi16((short)want);
	__m128i lo = _mm_cmpeq_epi16(_mm_loadu_si128((const __m128i *)tag), w);
	__m128i hi = _mm_cmpeq_epi16(_mm_loadu_si128((const __m128i *)(tag + 8)), w);

	return (unsigned)_mm_movemask_epi8(_mm_packs_epi16(lo, hi));
#else
	unsigned m = 0;

	for (unsigned i = 0; i < TOPK; i++)
		m |= (unsigned)(tag[i] == want) << i;
	return m;
#endif
}

static void topk_add(struct topk *t, const struct host_key *k, uint8_t plen)
{
	uint16_t tag = host_tag(k);
	unsigned min = 0;
	uint64_t min_count = UINT64_MAX; /* in a register: no load chained through min */

	for (unsigned m = tag_matches(t->tag, tag) & ((1u << t->n) - 1); m; m &= m - 1) {
		unsigned i = (unsigned)__builtin_ctz(m);

		if (memcmp(&t->e[i].key, k, sizeof(*k)) == 0) {
			if (t->min1 == i + 1)
				t->min1 = 0;
			t->e[i].count++;
			return;
		}
	}
	if (t->n < TOPK) {
		t->e[t->n].key = *k;
		t->e[t->n].plen = plen;
		t->e[t->n].count = 1;
		t->e[t->n].err = 0;
		t->tag[t->n] = tag;
		t->n++;
		t->min1 = 0;
		return;
	}
	if (t->min1) {
		min = t->min1 - 1;
		min_count = t->e[min].count;
	} else {
		for (unsigned i = 0; i < TOPK; i++)
			if (t->e[i].count < min_count) {
				min_count = t->e[i].count;
				min = i;
			}
	}
	t->e[min].key = *k; /* replaces the smallest, inheriting its count (space-saving) */
	t->e[min].plen = plen;
	t->e[min].err = t->e[min].count;
	t->e[min].count++;
	t->tag[min] = tag;
	/* The next smallest: another counter as small, after this one (those
	 * before it are larger), else not known until the next scan. In a flood
	 * of new sources the counters rise in turn, and the scan is rare. */
	t->min1 = 0;
	for (unsigned i = min + 1; i < TOPK; i++)
		if (t->e[i].count == min_count) {
			t->min1 = i + 1;
			break;
		}
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
			uint16_t tag = t->tag[j];

			t->e[j] = t->e[j - 1];
			t->e[j - 1] = tmp;
			t->tag[j] = t->tag[j - 1];
			t->tag[j - 1] = tag;
		}
	t->min1 = 0;
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

/* Records of the targets, hosts and pairs tables are laid out for lookups
 * by packets that have streamed the tables out of the cache: a chain walk
 * reads 24 bytes of each record's handle (hh_next, key, keylen, hashv), so
 * those sit in one cache line, with the key and the fields a hit updates
 * in the same line or the one next to it. Records come 64-byte aligned
 * from slab_alloc(); WALK_OK checks the placement. */
#define WALK_AT(type) (offsetof(type, hh) + offsetof(UT_hash_handle, hh_next))
#define WALK_OK(type) (WALK_AT(type) % 64 + offsetof(UT_hash_handle, hashv) + sizeof(unsigned) - \
		       offsetof(UT_hash_handle, hh_next) <= 64)

struct target {
	_Alignas(64) uint64_t accepted;
	uint64_t refused, unanswered;
	uint8_t pad[8];
	UT_hash_handle hh;             /* walked part in line 1, with key .. have_bucket */
	struct ep_key key;
	uint32_t streak;
	uint64_t bucket;               /* index of the current bucket */
	bool have_bucket;
	bool answered;                 /* sent a SYN-ACK or completed a handshake */
	struct bucket_rec cur;         /* line 2 */
	uint64_t synack_rexmit;        /* in the current bucket */
	uint64_t syns_total;
	struct hll *hll;               /* current bucket's sources */
	struct alert *suspect;         /* built while buckets look like a flood */
	int64_t half_open;
};
_Static_assert(WALK_OK(struct target) && WALK_AT(struct target) == 64 &&
	       offsetof(struct target, answered) < 128, "target layout");

/* ---- TIME_WAIT per host, findings ---- */

struct host {
	_Alignas(64) uint64_t peak_at;
	uint64_t tw_final;            /* endpoints in TIME_WAIT at the reference time */
	uint8_t pad[16];
	UT_hash_handle hh;            /* walked part in line 1, with the key and tw_now, tw_peak */
	struct host_key key;
	int64_t tw_now, tw_peak;
};
_Static_assert(WALK_OK(struct host) && WALK_AT(struct host) == 64 &&
	       offsetof(struct host, tw_peak) + sizeof(int64_t) <= 128, "host layout");

struct pair_key {
	struct host_key host;
	struct ep_key service;
	uint8_t side;
	uint8_t pad[3];
};
_Static_assert(sizeof(struct pair_key) == 44, "pair_key has no implicit padding");

/* The key is too long to share the walked line: it goes in line 0 with the
 * counters, the handle in line 1. */
struct tw_pair {
	_Alignas(64) struct pair_key key;
	uint64_t count, reset;
	UT_hash_handle hh;
	struct host *host;             /* key.host's record once it exists (never removed) */
};
_Static_assert(WALK_OK(struct tw_pair) && offsetof(struct tw_pair, reset) + sizeof(uint64_t) <= 64,
	       "tw_pair layout");

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

/* An update of the hosts or pairs table, held back a few events so that
 * its bucket and record are fetched from memory while other work runs
 * (each lookup otherwise waits for two or three cache misses). Updates are
 * applied in the order they came, so records are added, counted and peak
 * in the same order as without the delay; whatever reads the tables first
 * applies those still held. */
#define DEFER_N 8        /* updates held; a power of two */
#define DEFER_AHEAD 4    /* the one this many behind the newest gets its record prefetched */
#define DEFER_AHEAD2 6   /* and this many behind, the next record in the chain if needed */

enum { DEFER_HOST, DEFER_PAIR };

struct deferred {
	union {
		struct host_key host;  /* DEFER_HOST */
		struct pair_key pair;  /* DEFER_PAIR */
	} key;
	uint64_t ts_ns;                /* DEFER_HOST: when the endpoint entered or left TIME_WAIT */
	unsigned hv;                   /* the key's hash */
	uint8_t kind;
	int8_t d;                      /* DEFER_HOST: 1 entered TIME_WAIT, -1 left it */
	bool tw;                       /* DEFER_PAIR: ended in TIME_WAIT (else reset) */
};

/* target_find()'s cache: slots, a power of two. */
#define TARGET_CACHE_BITS 5
#define TARGET_CACHE (1u << TARGET_CACHE_BITS)

struct analyses {
	struct analyses_config cfg;
	uint64_t origin_ns;
	bool have_origin;
	uint64_t ref_ns;
	struct target *targets;
	struct host *hosts;
	struct tw_pair *pairs;
	struct cw_group *cw_groups;
	/* target_find()'s recent answers, each with its key: a hit reads no
	 * record. Never stale: targets are not removed while the analyses run. */
	struct target_cache {
		struct ep_key key;
		struct target *t;
	} tcache[TARGET_CACHE];
	struct alert *alerts, **alerts_tail;
	uint64_t nalerts;
	int64_t tw_now, tw_peak;
	uint64_t tw_peak_at, tw_final, reset_final;
	struct findings close_wait, fin_wait_2, half[HO_COUNT];
	struct anomaly_rec *anoms;
	size_t nanoms, capanoms;
	uint64_t anom_count[AN_COUNT];
	uint64_t missed_bytes;
	void *slabs;                   /* records of targets, hosts, pairs; freed together */
	char *slab_next;
	size_t slab_left;
	struct deferred defer[DEFER_N];
	uint64_t defer_in, defer_out;  /* pushed and applied so far */
};

#define SLAB_BYTES 16384

/* A zeroed, 64-byte aligned record of size bytes (a multiple of 64, with
 * room for the link to the next slab). Records are freed only with the
 * analyses: the tables never delete before then. */
static void *slab_alloc(struct analyses *a, size_t size)
{
	void *r;

	if (size > SLAB_BYTES - 64)
		return NULL;
	if (a->slab_left < size) {
		char *s = aligned_alloc(64, SLAB_BYTES);

		if (!s)
			return NULL;
		memset(s, 0, SLAB_BYTES);
		*(void **)s = a->slabs;
		a->slabs = s;
		a->slab_next = s + 64;
		a->slab_left = SLAB_BYTES - 64;
	}
	r = a->slab_next;
	a->slab_next += size;
	a->slab_left -= size;
	return r;
}

/* uthash doubles the buckets only when one chain reaches 10 records, which
 * leaves 2.5 to 5 records a bucket, each a cache miss to walk past. Add
 * with the hash already computed, and keep at most one record a bucket on
 * average (16 bytes a bucket). */
#define TABLE_ADD(head, field, hv, rec) do {							\
	HASH_ADD_BYHASHVALUE(hh, head, field, sizeof((rec)->field), hv, rec);			\
	UT_hash_table *tbl_ = (head)->hh.tbl;							\
	if (tbl_->num_items > tbl_->num_buckets && !tbl_->noexpand) {				\
		unsigned oomed_ = 0;								\
		HASH_EXPAND_BUCKETS(&(rec)->hh, tbl_, oomed_);					\
		(void)oomed_;									\
	}											\
} while (0)

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
	struct cw_group *g, *gt;

	if (!a)
		return;
	HASH_ITER(hh, a->targets, t, tt) {
		free(t->hll);
		if (t->suspect && !t->suspect->open) {
			free(t->suspect->series);
			free(t->suspect);
		}
	}
	HASH_CLEAR(hh, a->targets);
	HASH_CLEAR(hh, a->hosts);
	HASH_CLEAR(hh, a->pairs);
	for (void *s = a->slabs, *n; s; s = n) {
		n = *(void **)s;
		free(s);
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

/* ---- deferred updates of hosts and pairs ---- */

/* One endpoint entered or left TIME_WAIT: its host's count and peak. */
static void apply_host(struct analyses *a, const struct deferred *x)
{
	struct host *h;

	HASH_FIND_BYHASHVALUE(hh, a->hosts, &x->key.host, sizeof(x->key.host), x->hv, h);
	if (!h && x->d > 0) {
		h = slab_alloc(a, sizeof(*h));
		if (h) {
			h->key = x->key.host;
			TABLE_ADD(a->hosts, key, x->hv, h);
		}
	}
	if (h) {
		h->tw_now += x->d;
		if (h->tw_now > h->tw_peak) {
			h->tw_peak = h->tw_now;
			h->peak_at = x->ts_ns;
		}
	}
}

/* One endpoint of a final connection is in TIME_WAIT or was reset. */
static void apply_pair(struct analyses *a, const struct deferred *x)
{
	struct tw_pair *p;

	HASH_FIND_BYHASHVALUE(hh, a->pairs, &x->key.pair, sizeof(x->key.pair), x->hv, p);
	if (!p) {
		p = slab_alloc(a, sizeof(*p));
		if (!p)
			return;
		p->key = x->key.pair;
		TABLE_ADD(a->pairs, key, x->hv, p);
	}
	if (x->tw) {
		p->count++;
		a->tw_final++;
		/* The host's record is made when an endpoint enters TIME_WAIT
		 * (an update applied before this one) and never removed: looked
		 * up once per pair. */
		if (!p->host)
			HASH_FIND(hh, a->hosts, &p->key.host, sizeof(p->key.host), p->host);
		if (p->host)
			p->host->tw_final++;
	} else {
		p->reset++;
		a->reset_final++;
	}
}

static UT_hash_table *defer_table(const struct analyses *a, uint8_t kind)
{
	if (kind == DEFER_HOST)
		return a->hosts ? a->hosts->hh.tbl : NULL;
	return a->pairs ? a->pairs->hh.tbl : NULL;
}

static void defer_apply_oldest(struct analyses *a)
{
	const struct deferred *x = &a->defer[a->defer_out++ & (DEFER_N - 1)];

	if (x->kind == DEFER_HOST)
		apply_host(a, x);
	else
		apply_pair(a, x);
}

/* Prefetch what a lookup reads of record e: the walked part of its handle,
 * and for a pair the key and counts in the line before it. */
static void prefetch_record(UT_hash_table *tbl, const UT_hash_handle *e, uint8_t kind)
{
	__builtin_prefetch(&e->hh_next);
	if (kind == DEFER_PAIR)
		__builtin_prefetch(ELMT_FROM_HH(tbl, e));
}

/* The first record in the bucket of the update `behind` places behind the
 * newest (*y), in table *tbl; NULL if none. */
static UT_hash_handle *defer_head(const struct analyses *a, unsigned behind, const struct deferred **y,
				  UT_hash_table **tbl)
{
	*y = &a->defer[(a->defer_in - 1 - behind) & (DEFER_N - 1)];
	*tbl = defer_table(a, (*y)->kind);
	return *tbl ? (*tbl)->buckets[(*y)->hv & ((*tbl)->num_buckets - 1)].hh_head : NULL;
}

/* Queue x (applying the oldest when the queue is full) and move the held
 * updates' data closer: x's bucket now, DEFER_AHEAD updates later the first
 * record of that bucket (which has arrived), DEFER_AHEAD2 later the next
 * record if the first is not the one. */
static void defer_push(struct analyses *a, const struct deferred *x)
{
	const struct deferred *y;
	UT_hash_table *tbl;
	UT_hash_handle *e;
	uint64_t held;

	if (a->defer_in - a->defer_out == DEFER_N)
		defer_apply_oldest(a);
	a->defer[a->defer_in++ & (DEFER_N - 1)] = *x;
	held = a->defer_in - a->defer_out;
	tbl = defer_table(a, x->kind);
	if (tbl)
		__builtin_prefetch(&tbl->buckets[x->hv & (tbl->num_buckets - 1)]);
	if (held > DEFER_AHEAD && (e = defer_head(a, DEFER_AHEAD, &y, &tbl)))
		prefetch_record(tbl, e, y->kind);
	if (held > DEFER_AHEAD2 && (e = defer_head(a, DEFER_AHEAD2, &y, &tbl)) && e->hashv != y->hv &&
	    e->hh_next)
		prefetch_record(tbl, e->hh_next, y->kind);
}

/* Apply every update held back: before anything reads hosts or pairs. */
static void defer_flush(struct analyses *a)
{
	while (a->defer_out != a->defer_in)
		defer_apply_oldest(a);
}

/* ---- SYN buckets ---- */

/* Key k's slot in target_find()'s cache: its port and its address's first
 * and last words, mixed. */
static unsigned target_slot(const struct ep_key *k)
{
	uint32_t a, b;

	memcpy(&a, k->addr, 4);
	memcpy(&b, k->addr + 12, 4);
	return (uint32_t)((a ^ b ^ k->port) * 0x9e3779b1u) >> (32 - TARGET_CACHE_BITS);
}

/* The service's record, or NULL when it never got a SYN. Those found lately
 * are tried first, each in its slot of a small cache: a flood keeps hitting
 * one service, and a server's few services take its SYNs in turn (with only
 * the last one kept, 8 services interleaved missed 7 times in 8: a hash and
 * a table walk, 0.5% of the bench capture's instructions). */
static struct target *target_find(struct analyses *a, const struct ep_key *k)
{
	struct target_cache *e = &a->tcache[target_slot(k)];
	struct target *t;
	unsigned hv;

	if (e->t && !memcmp(&e->key, k, sizeof(*k)))
		return e->t;
	HASH_VALUE(k, sizeof(*k), hv);
	HASH_FIND_BYHASHVALUE(hh, a->targets, k, sizeof(*k), hv, t);
	if (t)
		*e = (struct target_cache){ *k, t };
	return t;
}

/* The service's record, created on its first SYN (NULL: out of memory). */
static struct target *target_get(struct analyses *a, const struct ep_key *k)
{
	struct target *t = target_find(a, k);
	unsigned hv;

	if (t)
		return t;
	t = slab_alloc(a, sizeof(*t));
	if (!t)
		return NULL;
	t->key = *k;
	HASH_VALUE(k, sizeof(*k), hv);
	TABLE_ADD(a->targets, key, hv, t);
	a->tcache[target_slot(k)] = (struct target_cache){ *k, t };
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
	uint64_t idx;

	/* Still in the current bucket, nearly always: known without a 64-bit
	 * division (the same answer: the bucket is [start, start + interval)) */
	if (t->have_bucket && ts >= t->cur.start_ns && ts - t->cur.start_ns < a->cfg.interval_ns)
		return;
	idx = ts >= a->origin_ns ? (ts - a->origin_ns) / a->cfg.interval_ns : 0;
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

/* A SYN, SYN-ACK or RST: SYN buckets of the service, lost peers. Not
 * inlined, so that analyses_segment() stays a test and a return for the
 * other segments. */
__attribute__((noinline))
static void segment_control(struct analyses *a, const struct conn *c, int s, const struct packet *p)
{
	uint8_t f = p->flags;
	struct target *t;
	struct ep_key k;

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
		if (t->hll)
			hll_add(t->hll, hash_addr(p->src));
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
		t = target_find(a, &k);
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
		t = target_find(a, &k);
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

/* Called for every segment: most carry neither SYN nor RST and return at once. */
void analyses_segment(void *ctx, const struct conn *c, int s, const struct packet *p)
{
	struct analyses *a = ctx;

	if (__builtin_expect(!a->have_origin, 0)) {
		a->origin_ns = p->ts_ns;
		a->have_origin = true;
	}
	if (p->flags & ANALYSES_SEGMENT_FLAGS)
		segment_control(a, c, s, p);
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

/* The server entered or left SYN_RECEIVED: half-open counts and completed
 * handshakes of its service. Not inlined, for the same reason as
 * segment_control(). */
__attribute__((noinline))
static void state_syn_received(struct analyses *a, const struct conn *c, const struct transition *tr)
{
	struct ep_key k = ep_of(c, ROLE_SERVER);
	struct target *t = target_find(a, &k);

	if (!t)
		return;
	/* The tracker reports a state change before the segment that made it
	 * reaches segment_control(), which rolls the buckets too: a bucket that
	 * ended before this change must close without it. A change dated in the
	 * past (a completion confirmed late, by a held-back ACK) counts in the
	 * current bucket, as rolling back would close buckets out of order. */
	if (a->have_origin && (!t->have_bucket || tr->ts_ns >= t->cur.start_ns))
		bucket_roll(a, t, tr->ts_ns);
	t->half_open += tr->to == TS_SYN_RECEIVED ? 1 : -1;
	/* A SYN-ACK that was never retransmitted and then given up
	 * on held no request (a SYN cookie): it was never half-open.
	 * The tracker knows only seconds later, after the buckets
	 * counted it among the SYN_RECEIVED. */
	if (tr->to == TS_CLOSED && tr->cause == TC_TIMEOUT &&
	    !(c->peer[ROLE_SERVER].bits & PB_CTL_REXMIT))
		target_alerts(a, t, series_unsay, c->peer[ROLE_SERVER].ctl_tx_ns);
	if (tr->from == TS_SYN_RECEIVED && tr->to == TS_ESTABLISHED) {
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

/* One endpoint entered (d = 1) or left (d = -1) TIME_WAIT: its host's count
 * and peak, and the capture's. */
static void state_time_wait(struct analyses *a, const struct conn *c, const struct transition *tr, int d)
{
	struct deferred x = { .key.host = host_of(c, tr->side), .ts_ns = tr->ts_ns, .kind = DEFER_HOST,
			      .d = (int8_t)d };

	HASH_VALUE(&x.key.host, sizeof(x.key.host), x.hv);
	defer_push(a, &x);
	a->tw_now += d;
	if (a->tw_now > a->tw_peak) {
		a->tw_peak = a->tw_now;
		a->tw_peak_at = tr->ts_ns;
	}
}

/* Called for state changes of endpoints; only two kinds matter (the
 * pipeline asks the tracker for those alone: ANALYSES_STATE_MASK). */
void analyses_state(void *ctx, const struct conn *c, const struct transition *tr)
{
	struct analyses *a = ctx;

	/* one branch, not three: the side is a coin toss */
	if ((tr->side == ROLE_SERVER) & ((tr->to == TS_SYN_RECEIVED) | (tr->from == TS_SYN_RECEIVED)))
		state_syn_received(a, c, tr);
	if (tr->to == TS_TIME_WAIT)
		state_time_wait(a, c, tr, 1);
	else if (tr->from == TS_TIME_WAIT)
		state_time_wait(a, c, tr, -1);
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
	unsigned hv;

	HASH_VALUE(&x.ep, sizeof(x.ep), hv);
	HASH_FIND_BYHASHVALUE(hh, a->cw_groups, &x.ep, sizeof(x.ep), hv, g);
	if (!g) {
		g = calloc(1, sizeof(*g));
		if (!g)
			return;
		g->key = x.ep;
		g->oldest_since = pe->since_ns;
		HASH_ADD_BYHASHVALUE(hh, a->cw_groups, key, sizeof(g->key), hv, g);
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
	uint64_t since = 0;
	uint32_t count = 0;
	int kind = -1, who = ROLE_CLIENT;

	if (cl->state == TS_SYN_SENT && sv->state == TS_CLOSED) {
		kind = HO_SYN_UNANSWERED;
		count = (uint32_t)cl->packets;
		since = c->first_ns;
	} else if (sv->state == TS_SYN_RECEIVED) {
		/* Since the SYN: its since_ns restarts when the tracker undoes an
		 * ESTABLISHED its SYN-ACK retransmission disproved. */
		kind = HO_HANDSHAKE_INCOMPLETE;
		who = ROLE_SERVER;
		count = (uint32_t)sv->packets;
		since = c->first_ns;
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
				count = me->unanswered;
				since = other->last_ns;
			}
		}
	} else if ((cl->state == TS_CLOSED) != (sv->state == TS_CLOSED)) {
		/* One side is gone (reset, or closed) and the other kept sending after. */
		int closed = cl->state == TS_CLOSED ? ROLE_CLIENT : ROLE_SERVER;
		const struct peer *pc = &c->peer[closed], *po = &c->peer[!closed];

		if (po->last_ns > pc->since_ns && po->state != TS_TIME_WAIT) {
			kind = HO_ONE_SIDE_CLOSED;
			who = !closed;
			since = pc->since_ns;
			count = po->unanswered;
		}
	}
	if (kind < 0)
		return;

	struct finding x = {
		.ep = ep_of(c, who), .peer = ep_of(c, !who), .conn_id = c->id, .since_ns = since,
		.first_packet = c->first_packet, .count = count, .kind = (uint8_t)kind,
		.peer_state = c->peer[!who].state,
	};
	findings_add(&a->half[kind], &x);
}

static void final_time_wait(struct analyses *a, const struct conn *c)
{
	for (int r = 0; r < 2; r++) {
		struct deferred x;
		bool tw = c->peer[r].state == TS_TIME_WAIT;
		bool reset = (c->flags & CF_RESET) && r == ROLE_CLIENT;

		if (!tw && !reset)
			continue;
		memset(&x, 0, sizeof(x));
		x.key.pair.host = host_of(c, r);
		x.key.pair.service = ep_of(c, ROLE_SERVER);
		x.key.pair.side = (uint8_t)r;
		x.kind = DEFER_PAIR;
		x.tw = tw;
		HASH_VALUE(&x.key.pair, sizeof(x.key.pair), x.hv);
		defer_push(a, &x);
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
	struct ep_key k;
	struct target *t;

	a->ref_ns = ref;
	a->missed_bytes += c->missed_bytes;
	for (int r = 0; r < 2; r++)
		if (c->peer[r].state == TS_CLOSE_WAIT || c->peer[r].state == TS_FIN_WAIT_2)
			final_stuck(a, c, r, ref);
	final_half_open(a, c, ref);
	final_time_wait(a, c);

	k = ep_of(c, ROLE_SERVER);
	t = target_find(a, &k);
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
	defer_flush(a);
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

/* {"addr":"...","port":N} */
#define EP_ROOM (32 + OUT_ADDR_MAX + OUT_U64_MAX)
static char *put_ep(char *p, const struct ep_key *k)
{
	OUT_PUT_LIT(p, "{\"addr\":\"");
	p = out_put_addr(p, k->family, k->addr);
	OUT_PUT_LIT(p, "\",\"port\":");
	p = out_put_u64(p, k->port);
	*p++ = '}';
	return p;
}

static void json_ep(struct out *o, const struct ep_key *k)
{
	out_commit(o, put_ep(out_reserve(o, EP_ROOM), k));
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

	defer_flush(a);
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

/* s, not escaped (the names of states, kinds and types), at p. */
static char *put_name(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return p + n;
}

#define FINDING_ROOM (256 + 2 * EP_ROOM + OUT_TS_MAX + OUT_SECS_MAX + 4 * OUT_U64_MAX)

/* One finding's line. A SYN flood leaves one a spoofed SYN, millions of
 * them: written straight into the buffer (report_json.c does the same). */
static void json_finding(struct analyses *a, struct out *o, const char *type, const struct finding *x,
			 const char *kind)
{
	const char *state = tcp_state_name((enum tcp_state)x->peer_state);
	char *p = out_reserve(o, FINDING_ROOM + strlen(type) + (kind ? strlen(kind) : 0) +
				 strlen(state));

	OUT_PUT_LIT(p, "{\"type\":\"");
	p = put_name(p, type);
	*p++ = '"';
	if (kind) {
		OUT_PUT_LIT(p, ",\"kind\":\"");
		p = put_name(p, kind);
		*p++ = '"';
	}
	OUT_PUT_LIT(p, ",\"endpoint\":");
	p = put_ep(p, &x->ep);
	OUT_PUT_LIT(p, ",\"peer\":");
	p = put_ep(p, &x->peer);
	OUT_PUT_LIT(p, ",\"peer_state\":\"");
	p = put_name(p, state);
	OUT_PUT_LIT(p, "\",\"since\":");
	p = out_put_ts(o, p, x->since_ns);
	OUT_PUT_LIT(p, ",\"age\":");
	p = out_put_secs(p, age_of(a, x->since_ns));
	OUT_PUT_LIT(p, ",\"connection\":");
	p = out_put_u64(p, x->conn_id);
	if (!kind) {
		OUT_PUT_LIT(p, ",\"bytes_after_fin\":");
		p = out_put_u64(p, x->bytes_after);
	} else {
		OUT_PUT_LIT(p, ",\"evidence\":{\"first_packet\":");
		p = out_put_u64(p, x->first_packet);
		if (x->evidence_packet) {
			OUT_PUT_LIT(p, ",\"rst_packet\":");
			p = out_put_u64(p, x->evidence_packet);
		}
		OUT_PUT_LIT(p, ",\"segments\":");
		p = out_put_u64(p, x->count);
		*p++ = '}';
	}
	OUT_PUT_LIT(p, "}\n");
	out_commit(o, p);
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
	defer_flush(a);
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
