/* flow_table.c - the 4-tuple -> connection hash table.
 * Robin Hood open addressing over 8-byte slots: a slot is the record's
 * address, with its probe distance and a byte of its hash in the address's
 * unused top bits (slot_make). A lookup compares those within one slot line
 * and touches a connection only when both match (the key's home and a byte
 * of its hash: one in 256 of the others), a miss stops as soon as it passes
 * where the key would be, and a deletion shifts the run back instead of
 * leaving tombstones. 8 bytes a slot rather than 16 (hash and address) let
 * the table grow at half full instead of 80% for the same memory: at 80%
 * inserts and removals walked runs of about ten slots, and on the 20M
 * bench capture, whose 818k connections left a table of 2^20 slots 78%
 * full, a table twice as large (16-byte slots) ran 4-5% faster
 * (bench/ROUNDS.md, the nineteenth round). The full hash is in each record's
 * node, read when the table grows.
 * A slot holds a struct conn or a struct frozen_conn (whose key is packed:
 * it is compared only when the hash matches, so unpacking it is rare).
 * A chained table (uthash) costs a 56-byte handle in every connection and a
 * cache miss per chain link; at a million live connections the lookups were
 * most of the run time. A one-entry cache serves back-to-back packets of one
 * connection. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "bigmem.h"
#include "conn_pack.h"
#include "flow_table.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* A slot: 0 when empty, else
 *   bits  0..47  the record's address (records are 8-byte aligned, and user
 *                addresses on x86-64 and arm64 Linux fit in 48 bits unless a
 *                program asks mmap for higher ones), bit 0 set when the
 *                record is a struct frozen_conn;
 *   bits 48..55  its probe distance, how far it is from its home slot
 *                (hash & mask); DIST_FAR when 255 or more, the distance then
 *                taken from the record's hash (only a run made of keys with
 *                one home, which a hostile capture might make, is so long);
 *   bits 56..63  the hash's top byte. */
typedef uint64_t slot_t;

#define S_FROZEN ((slot_t)1)
#define S_ADDR (((slot_t)1 << 48) - 8)
#define S_DIST_SHIFT 48
#define S_TAG_SHIFT 56
#define DIST_FAR 255u
_Static_assert(sizeof(void *) == 8, "slots keep a 64-bit address");

static inline void *slot_rec(slot_t s)
{
	return (void *)(uintptr_t)(s & S_ADDR);
}

static inline unsigned slot_dist(slot_t s)
{
	return (unsigned)(s >> S_DIST_SHIFT) & 0xff;
}

/* The slot's top 16 bits for a key of this hash at distance d < DIST_FAR. */
static inline unsigned slot_top(uint32_t hash, unsigned d)
{
	return (hash >> 24) << 8 | d;
}

/* Whether rec can be kept in a slot: an address in 48 bits, 8-byte aligned. */
static inline bool slot_fits(const void *rec)
{
	return ((uintptr_t)rec & ~(uintptr_t)S_ADDR) == 0;
}

/* The slot of live record c, at distance 0 (slot_insert() sets it). */
static inline slot_t slot_make(const struct conn *c, uint32_t hash)
{
	return (slot_t)(uintptr_t)c | (slot_t)(hash >> 24) << S_TAG_SHIFT;
}

/* The same slot at distance d. */
static inline slot_t slot_at_dist(slot_t s, size_t d)
{
	return (s & ~((slot_t)0xff << S_DIST_SHIFT)) | (slot_t)(d < DIST_FAR ? d : DIST_FAR) << S_DIST_SHIFT;
}

/* The idle-list node of the slot's record, live or frozen. */
static inline const struct idle_node *slot_node(slot_t s)
{
	return s & S_FROZEN ? &((const struct frozen_conn *)slot_rec(s))->node
			    : &((const struct conn *)slot_rec(s))->node;
}

/* The full hash of the slot's key, kept in its record's node. */
static uint32_t slot_hash(slot_t s)
{
	return slot_node(s)->hash;
}

static struct flow_entry slot_entry(slot_t s)
{
	struct flow_entry e = { NULL, NULL };

	if (s & S_FROZEN)
		e.frozen = slot_rec(s);
	else
		e.conn = slot_rec(s);
	return e;
}

struct flow_table {
	slot_t *slots;
	size_t mask;         /* slot count - 1; the count is a power of two */
	size_t count;
	struct conn *last;   /* most recently found */
	uint64_t epoch;      /* counts removals and freezings (flow_table_epoch) */
};

#define INITIAL_SLOTS 1024
/* Grow past half full: then a look-up reads about two slots, an insertion
 * or removal moves about two, and flow_table_take() has room to hand the
 * entries over in place. */
#define MAX_LOAD_NUM 1
#define MAX_LOAD_DEN 2

static uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* The 128-bit product of two words, its halves folded together
 * (wyhash's "mum"): every bit of either word reaches every bit of the
 * result, in one multiply. */
static inline uint64_t mum(uint64_t a, uint64_t b)
{
	unsigned __int128 r = (unsigned __int128)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

#define HASH_S0 0xa0761d6478bd642fULL
#define HASH_S1 0xe7037ed1a0b428dbULL
#define HASH_S2 0x8ebc6af09c88c6e3ULL
#define HASH_S3 0x589965cc75374cc3ULL
#define HASH_S4 0x1d8e4e27c47d124fULL
#define HASH_S5 0x9e3779b97f4a7c15ULL

/* The hash of a key from its five words (flow_key's layout): three
 * products side by side, not a chain of multiplies. */
static inline uint32_t hash_words(uint64_t w0, uint64_t w1, uint64_t w2, uint64_t w3, uint64_t w4)
{
	uint64_t h = mum(w0 ^ HASH_S0, w2 ^ HASH_S1) ^ mum(w1 ^ HASH_S2, w3 ^ HASH_S3) ^
		     mum(w4 ^ HASH_S4, HASH_S5);

	return (uint32_t)(h ^ h >> 32);
}

/* An IPv4 key's: its two 4-byte addresses make one word and its last word
 * (ports, family) the other, so one product mixes them (wyhash's last
 * step); the rest of such a key is zero (packet.h). */
static inline uint32_t hash_v4(uint32_t lo, uint32_t hi, uint64_t w4)
{
	uint64_t h = mum(((uint64_t)hi << 32 | lo) ^ HASH_S0, w4 ^ HASH_S1);

	return (uint32_t)(h ^ h >> 32);
}

static uint32_t load32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

uint32_t flow_key_hash(const struct flow_key *k)
{
	const uint8_t *b = (const uint8_t *)k;

	if (k->family == 4)
		return hash_v4(load32(k->addr[0]), load32(k->addr[1]), load64(b + 32));
	return hash_words(load64(b), load64(b + 8), load64(b + 16), load64(b + 24), load64(b + 32));
}

static bool key_eq(const struct flow_key *a, const struct flow_key *b)
{
	const uint8_t *x = (const uint8_t *)a, *y = (const uint8_t *)b;
	uint64_t d = 0;

	for (size_t i = 0; i < sizeof(struct flow_key); i += 8)
		d |= load64(x + i) ^ load64(y + i);
	return d == 0;
}

/* Slot arrays are zeroed (all empty) and in huge pages (bigmem.h). */
static slot_t *slots_alloc(size_t n)
{
	return bigmem_alloc(n * sizeof(slot_t));
}

static void slots_free(slot_t *s, size_t n)
{
	bigmem_free(s, n * sizeof(slot_t));
}

/* How far the entry in slots[i] is from its home. */
static size_t probe_dist(const slot_t *slots, size_t mask, size_t i)
{
	unsigned d = slot_dist(slots[i]);

	return d < DIST_FAR ? d : (i - (slot_hash(slots[i]) & mask)) & mask;
}

/* Whether the entry in slots[i] is closer to its home than d, and whether
 * it is exactly d from it: without reading its record unless both are
 * DIST_FAR or more. */
static inline bool dist_below(const slot_t *slots, size_t mask, size_t i, size_t d)
{
	unsigned sd = slot_dist(slots[i]);

	return sd < DIST_FAR ? sd < d : d > DIST_FAR && probe_dist(slots, mask, i) < d;
}

static inline bool dist_is(const slot_t *slots, size_t mask, size_t i, size_t d)
{
	unsigned sd = slot_dist(slots[i]);

	return sd < DIST_FAR ? sd == d : d >= DIST_FAR && probe_dist(slots, mask, i) == d;
}

struct flow_table *flow_table_create(void)
{
	struct flow_table *ft = calloc(1, sizeof(*ft));

	if (!ft)
		return NULL;
	ft->slots = slots_alloc(INITIAL_SLOTS);
	if (!ft->slots) {
		free(ft);
		return NULL;
	}
	ft->mask = INITIAL_SLOTS - 1;
	return ft;
}

void flow_table_destroy(struct flow_table *ft)
{
	if (!ft)
		return;
	for (size_t i = 0; i <= ft->mask; i++) {
		if (!ft->slots[i])
			continue;
		if (ft->slots[i] & S_FROZEN)
			frozen_conn_destroy(slot_rec(ft->slots[i]));
		else
			conn_destroy(slot_rec(ft->slots[i]));
	}
	slots_free(ft->slots, ft->mask + 1);
	free(ft);
}

static void store64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* The lower endpoint first: memcmp() order of the addresses, then the
 * ports. Without a branch: which side sends is a coin toss packet by
 * packet, and a branch on it was mispredicted half the time. The key's
 * last word (ports, family, padding) is written by one store, as the
 * hash reads it. */
static void key_make_any(const struct packet *p, struct flow_key *k, int *src_side)
{
	uint64_t s0 = load64(p->src), s1 = load64(p->src + 8);
	uint64_t d0 = load64(p->dst), d1 = load64(p->dst + 8);
	uint64_t a0 = __builtin_bswap64(s0), b0 = __builtin_bswap64(d0);
	uint64_t a1 = __builtin_bswap64(s1), b1 = __builtin_bswap64(d1);
	unsigned swap = (a0 > b0) | ((a0 == b0) & ((a1 > b1) | ((a1 == b1) & (p->sport > p->dport))));
	uint64_t m = (uint64_t)0 - swap, x0 = (s0 ^ d0) & m, x1 = (s1 ^ d1) & m;
	uint64_t port0 = p->sport ^ ((p->sport ^ p->dport) & m), port1 = p->sport ^ p->dport ^ port0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint64_t w = port0 | port1 << 16 | (uint64_t)p->family << 32;
#else
	uint64_t w = port0 << 48 | port1 << 32 | (uint64_t)p->family << 24;
#endif

	_Static_assert(offsetof(struct flow_key, port) == 32 && offsetof(struct flow_key, family) == 36 &&
		       sizeof(struct flow_key) == 40, "flow_key's last word: port[2], family, pad[3]");
	store64(k->addr[0], s0 ^ x0);
	store64(k->addr[0] + 8, s1 ^ x1);
	store64(k->addr[1], d0 ^ x0);
	store64(k->addr[1] + 8, d1 ^ x1);
	store64((uint8_t *)k->port, w);
	*src_side = (int)swap;
}

/* Out of line, so that the IPv4 path needs no registers saved. */
static __attribute__((noinline, cold)) uint32_t key_make_hash_any(const struct packet *p,
								   struct flow_key *k, int *src_side)
{
	key_make_any(p, k, src_side);
	return flow_key_hash(k);
}

/* An IPv4 packet (nearly all of them): the same key in fewer steps, as
 * the address is 4 bytes and the other 12 are zero (packet.h). The order
 * of (address, port) pairs is that of one 48-bit number each. */
uint32_t flow_key_make_hash(const struct packet *p, struct flow_key *k, int *src_side)
{
	uint32_t s, d, lo, hi, m;
	uint64_t a, b, port0, port1, w;
	unsigned swap;

	if (__builtin_expect(p->family != 4, 0))
		return key_make_hash_any(p, k, src_side);
	s = load32(p->src);
	d = load32(p->dst);
	a = (uint64_t)__builtin_bswap32(s) << 16 | p->sport;
	b = (uint64_t)__builtin_bswap32(d) << 16 | p->dport;
	swap = a > b;
	m = 0u - swap;
	lo = s ^ ((s ^ d) & m);
	hi = s ^ d ^ lo;
	port0 = p->sport ^ ((p->sport ^ p->dport) & m);
	port1 = p->sport ^ p->dport ^ port0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	w = port0 | port1 << 16 | (uint64_t)4 << 32;
	store64(k->addr[0], lo);
	store64(k->addr[1], hi);
#else
	w = port0 << 48 | port1 << 32 | (uint64_t)4 << 24;
	store64(k->addr[0], (uint64_t)lo << 32);
	store64(k->addr[1], (uint64_t)hi << 32);
#endif
	store64(k->addr[0] + 8, 0);
	store64(k->addr[1] + 8, 0);
	store64((uint8_t *)k->port, w);
	*src_side = (int)swap;
	return hash_v4(lo, hi, w);
}

void flow_key_make(const struct packet *p, struct flow_key *k, int *src_side)
{
	(void)flow_key_make_hash(p, k, src_side);
}

/* Whether the entry in slots[i] may be key k's, found at distance d from
 * its home: the same distance (so the same home) and the same top byte. */
static inline bool slot_may_be(const slot_t *slots, size_t mask, size_t i, size_t d, uint32_t hash)
{
	return (slots[i] >> S_TAG_SHIFT) == hash >> 24 && dist_is(slots, mask, i, d);
}

/* The slot holding key k, or NULL. */
static slot_t *slot_find(const struct flow_table *ft, const struct flow_key *k, uint32_t hash)
{
	size_t i = hash & ft->mask;

	for (size_t d = 0;; d++, i = (i + 1) & ft->mask) {
		slot_t s = ft->slots[i];

		/* An empty slot, or one closer to its home than we are to ours:
		 * Robin Hood insertion would have put the key here. */
		if (!s || dist_below(ft->slots, ft->mask, i, d))
			return NULL;
		if (!slot_may_be(ft->slots, ft->mask, i, d, hash))
			continue;
		if (!(s & S_FROZEN) && key_eq(&((const struct conn *)slot_rec(s))->key, k))
			return &ft->slots[i];
		if (s & S_FROZEN) {
			struct flow_key fk;

			frozen_conn_key(slot_rec(s), &fk);
			if (key_eq(&fk, k))
				return &ft->slots[i];
		}
	}
}

struct conn *flow_table_hint_conn(const struct flow_table *ft, const struct flow_hint *hint)
{
	slot_t s;

	if (!hint->rec || hint->frozen || hint->slot > ft->mask)
		return NULL;
	s = ft->slots[hint->slot];
	return slot_rec(s) == hint->rec && !(s & S_FROZEN) ? hint->rec : NULL;
}

struct conn *flow_table_hint_check(const struct flow_table *ft, const struct flow_hint *hint,
				   const struct flow_key *k)
{
	struct conn *c = flow_table_hint_conn(ft, hint);

	return c && key_eq(&c->key, k) ? c : NULL;
}

uint64_t flow_table_epoch(const struct flow_table *ft)
{
	return ft->epoch;
}

struct flow_entry flow_table_lookup(struct flow_table *ft, const struct flow_key *k,
				    uint32_t hash, const struct flow_hint *hint)
{
	struct flow_entry e = { NULL, NULL };
	const slot_t *s;
	struct conn *c;

	/* A record in the table with this key is the one: keys are unique. */
	if (hint && (c = flow_table_hint_conn(ft, hint)) && key_eq(&c->key, k)) {
		ft->last = c;
		e.conn = c;
		return e;
	}
	if (ft->last && key_eq(&ft->last->key, k)) {
		e.conn = ft->last;
		return e;
	}
	s = slot_find(ft, k, hash);
	if (s) {
		e = slot_entry(*s);
		if (e.conn)
			ft->last = e.conn;
	}
	return e;
}

struct conn *flow_table_find(struct flow_table *ft, const struct flow_key *k)
{
	return flow_table_lookup(ft, k, flow_key_hash(k), NULL).conn;
}

/* The home slot's line, and the next when the home is late in its line:
 * at half full a look-up reads about two slots, and the hint four (the four
 * after them only when none of those matches). */
void flow_table_prefetch(const struct flow_table *ft, uint32_t hash)
{
	size_t i = hash & ft->mask;

	__builtin_prefetch(&ft->slots[i]);
	if (i + 4 <= ft->mask)
		__builtin_prefetch(&ft->slots[i + 4]);
}

/* Bit j set when s[j] (j < 4) holds an entry at distance from + j with
 * this hash's top byte, found without a branch a slot: where the run of
 * probes ends is data, and a loop over them was mispredicted about once a
 * packet. */
static inline unsigned top_match4(const slot_t *s, uint32_t hash, unsigned from)
{
#ifdef __SSE2__
	/* the slots' top 16 bits, each at the bottom of its 64-bit lane, the
	 * four gathered into the four 32-bit lanes */
	__m128i a = _mm_srli_epi64(_mm_loadu_si128((const __m128i *)(const void *)&s[0]), S_DIST_SHIFT);
	__m128i b = _mm_srli_epi64(_mm_loadu_si128((const __m128i *)(const void *)&s[2]), S_DIST_SHIFT);
	__m128 tops = _mm_shuffle_ps(_mm_castsi128_ps(a), _mm_castsi128_ps(b), _MM_SHUFFLE(2, 0, 2, 0));
	__m128i want = _mm_add_epi32(_mm_set1_epi32((int)slot_top(hash, from)), _mm_set_epi32(3, 2, 1, 0));

	return (unsigned)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(_mm_castps_si128(tops), want)));
#else
	unsigned found = 0;

	for (unsigned j = 0; j < 4; j++)
		found |= (unsigned)(((uint64_t)((unsigned)(s[j] >> S_DIST_SHIFT) ^ slot_top(hash, from + j)) - 1) >> 63)
			 << j;
	return found;
#endif
}

/* The first slot whose entry is at its distance from this hash's home and
 * has its top byte, among the four from the home, or the four after them
 * when none matched (top_match4): such an entry has this home, and the
 * probes from it meet no empty slot before it (Robin Hood), so it is the
 * one the loop finds. The loop runs from the home when none of the eight
 * matches, when the home is among the table's last seven slots, or when the
 * match is an empty slot (all zero: distance 0 and a hash whose top byte
 * is 0). */
struct flow_hint flow_table_hint(const struct flow_table *ft, uint32_t hash)
{
	struct flow_hint h = { NULL, 0, 0 };
	size_t home = hash & ft->mask, i = home;
	const slot_t *s = &ft->slots[home];
	unsigned found;

	if (home + 7 <= ft->mask &&
	    ((found = top_match4(s, hash, 0)) || (found = top_match4(s + 4, hash, 4) << 4)) &&
	    s[__builtin_ctz(found)]) {
		i = home + (unsigned)__builtin_ctz(found);
	} else {
		for (size_t d = 0;; d++, i = (i + 1) & ft->mask) {
			if (!ft->slots[i] || dist_below(ft->slots, ft->mask, i, d))
				return h;
			if (slot_may_be(ft->slots, ft->mask, i, d, hash))
				break;
		}
	}
	h.rec = slot_rec(ft->slots[i]);
	h.slot = (uint32_t)i;
	h.frozen = (uint32_t)(ft->slots[i] & S_FROZEN);
	return h;
}

/* Robin Hood insertion of an entry (its slot at distance 0, and its hash)
 * whose key is known to be absent: whoever is closer to home gives up its
 * slot and moves on. */
static void slot_insert(slot_t *slots, size_t mask, slot_t in, uint32_t hash)
{
	size_t i = hash & mask;

	for (size_t d = 0;; d++, i = (i + 1) & mask) {
		size_t sd;

		if (!slots[i]) {
			slots[i] = slot_at_dist(in, d);
			return;
		}
		if (!dist_below(slots, mask, i, d))
			continue;
		sd = probe_dist(slots, mask, i);
		slot_t out = slots[i];

		slots[i] = slot_at_dist(in, d);
		in = out;
		d = sd;
	}
}

/* Records are fetched this many slots ahead when the table grows. */
#define GROW_AHEAD 16

/* Double the slots. Each entry's hash is read from its record. If that
 * memory is not there the table stays as it is: it still works, only with
 * longer probes, until it is full. */
static bool grow(struct flow_table *ft)
{
	size_t n = (ft->mask + 1) * 2;
	slot_t *ns = slots_alloc(n);

	if (!ns)
		return false;
	for (size_t i = 0; i <= ft->mask; i++) {
		slot_t s = ft->slots[i];

		if (i + GROW_AHEAD <= ft->mask && ft->slots[i + GROW_AHEAD])
			__builtin_prefetch(&slot_node(ft->slots[i + GROW_AHEAD])->hash);
		if (s)
			slot_insert(ns, n - 1, slot_at_dist(s, 0), slot_hash(s));
	}
	slots_free(ft->slots, ft->mask + 1);
	ft->slots = ns;
	ft->mask = n - 1;
	return true;
}

bool flow_table_add(struct flow_table *ft, struct conn *c)
{
	size_t slots = ft->mask + 1;

	if (!slot_fits(c))
		return false;
	if ((ft->count + 1) * MAX_LOAD_DEN > slots * MAX_LOAD_NUM && !grow(ft) &&
	    ft->count + 1 >= slots)
		return false;
	c->node.hash = flow_key_hash(&c->key);
	slot_insert(ft->slots, ft->mask, slot_make(c, c->node.hash), c->node.hash);
	ft->count++;
	ft->last = c;
	return true;
}

/* The slot holding record rec, whose key hashes to hash (its node.hash). */
static slot_t *slot_of(const struct flow_table *ft, uint32_t hash, const void *rec)
{
	size_t i = hash & ft->mask;

	while (slot_rec(ft->slots[i]) != rec) {
		if (!ft->slots[i])
			return NULL; /* not in the table */
		i = (i + 1) & ft->mask;
	}
	return &ft->slots[i];
}

void flow_table_remove(struct flow_table *ft, struct conn *c)
{
	slot_t *s = slot_of(ft, c->node.hash, c);
	size_t i, next, d;

	if (ft->last == c)
		ft->last = NULL;
	ft->epoch++;
	if (!s)
		return;
	/* Backward shift: the rest of the run moves one closer to home. */
	i = (size_t)(s - ft->slots);
	for (next = (i + 1) & ft->mask; ft->slots[next] && (d = probe_dist(ft->slots, ft->mask, next)) > 0;
	     i = next, next = (next + 1) & ft->mask)
		ft->slots[i] = slot_at_dist(ft->slots[next], d - 1);
	ft->slots[i] = 0;
	ft->count--;
}

/* The record in slot s, whatever its kind, becomes rec. */
static void slot_set_rec(slot_t *s, const void *rec, bool frozen)
{
	assert(slot_fits(rec));
	*s = (*s & ~(S_ADDR | S_FROZEN)) | (slot_t)(uintptr_t)rec | (frozen ? S_FROZEN : 0);
}

void flow_table_freeze(struct flow_table *ft, struct conn *c, struct frozen_conn *f)
{
	slot_t *s = slot_of(ft, c->node.hash, c);

	f->node.hash = c->node.hash;
	if (ft->last == c)
		ft->last = NULL;
	ft->epoch++;
	if (s)
		slot_set_rec(s, f, true);
}

void flow_table_thaw(struct flow_table *ft, struct frozen_conn *f, struct conn *c)
{
	slot_t *s = slot_of(ft, f->node.hash, f);

	c->node.hash = f->node.hash;
	if (s)
		slot_set_rec(s, c, false);
}

struct flow_entry *flow_table_take(struct flow_table *ft, size_t *n, size_t *bytes)
{
	_Static_assert(sizeof(struct flow_entry) == 2 * sizeof(slot_t), "an entry fills two slots");
	size_t slots = ft->mask + 1, k = 0;
	struct flow_entry *out = (struct flow_entry *)(void *)ft->slots;
	slot_t *fresh;

	/* Entries take two slots each: they fit while the table is at most
	 * half full, as it is unless growing it failed. */
	if (ft->count > slots / 2 || !(fresh = slots_alloc(INITIAL_SLOTS)))
		return NULL;
	/* The occupied slots to the front (slot k is written after slot i
	 * was read: k <= i), then each widened into its entry from the last
	 * (entry k covers slots 2k and 2k + 1, read already or k itself). */
	for (size_t i = 0; i < slots; i++)
		if (ft->slots[i])
			ft->slots[k++] = ft->slots[i];
	for (size_t j = k; j-- > 0;)
		out[j] = slot_entry(ft->slots[j]);
	*n = k;
	*bytes = slots * sizeof(slot_t);
	ft->slots = fresh;
	ft->mask = INITIAL_SLOTS - 1;
	ft->count = 0;
	ft->last = NULL;
	ft->epoch++;
	return out;
}

size_t flow_table_count(const struct flow_table *ft)
{
	return ft->count;
}

bool flow_table_next(const struct flow_table *ft, size_t *pos, struct flow_entry *e)
{
	while (*pos <= ft->mask) {
		slot_t s = ft->slots[(*pos)++];

		if (s) {
			*e = slot_entry(s);
			return true;
		}
	}
	return false;
}
