/* flow_table.c - the 4-tuple -> connection hash table.
 * Robin Hood open addressing over 16-byte (hash, connection) slots: a lookup
 * compares hashes within one or two slot lines and touches a connection only
 * when its hash matches, a miss stops as soon as it passes where the key
 * would be, and a deletion shifts the run back instead of leaving tombstones.
 * A slot holds a struct conn or a struct frozen_conn (whose key is packed:
 * it is compared only when the hash matches, so unpacking it is rare).
 * A chained table (uthash) costs a 56-byte handle in every connection and a
 * cache miss per chain link; at a million live connections the lookups were
 * most of the run time. A one-entry cache serves back-to-back packets of one
 * connection. */
#include <stdlib.h>
#include <string.h>

#include "bigmem.h"
#include "conn_pack.h"
#include "flow_table.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

struct slot {
	uint32_t hash;
	uint32_t frozen;     /* rec is a struct frozen_conn, else a struct conn */
	void *rec;           /* NULL: empty */
};

static struct flow_entry slot_entry(const struct slot *s)
{
	struct flow_entry e = { NULL, NULL };

	if (s->frozen)
		e.frozen = s->rec;
	else
		e.conn = s->rec;
	return e;
}

struct flow_table {
	struct slot *slots;
	size_t mask;         /* slot count - 1; the count is a power of two */
	size_t count;
	struct conn *last;   /* most recently found */
	uint64_t epoch;      /* counts removals and freezings (flow_table_epoch) */
};

#define INITIAL_SLOTS 1024
/* Grow past 80% full: Robin Hood keeps probe runs short up to about there. */
#define MAX_LOAD_NUM 4
#define MAX_LOAD_DEN 5

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
 * products side by side, not a chain of multiplies. An IPv4 key's second
 * and fourth words are zero, so its middle product is a constant and
 * flow_key_make_hash() leaves it out of the work. */
static inline uint32_t hash_words(uint64_t w0, uint64_t w1, uint64_t w2, uint64_t w3, uint64_t w4)
{
	uint64_t h = mum(w0 ^ HASH_S0, w2 ^ HASH_S1) ^ mum(w1 ^ HASH_S2, w3 ^ HASH_S3) ^
		     mum(w4 ^ HASH_S4, HASH_S5);

	return (uint32_t)(h ^ h >> 32);
}

uint32_t flow_key_hash(const struct flow_key *k)
{
	const uint8_t *b = (const uint8_t *)k;

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
static struct slot *slots_alloc(size_t n)
{
	return bigmem_alloc(n * sizeof(struct slot));
}

static void slots_free(struct slot *s, size_t n)
{
	bigmem_free(s, n * sizeof(struct slot));
}

/* How far slot i is from where its hash wanted it. */
static size_t probe_dist(const struct flow_table *ft, size_t i)
{
	return (i - (ft->slots[i].hash & ft->mask)) & ft->mask;
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
		if (ft->slots[i].frozen)
			frozen_conn_destroy(ft->slots[i].rec);
		else
			conn_destroy(ft->slots[i].rec);
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

static uint32_t load32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* An IPv4 packet (nearly all of them): the same key in fewer steps, as
 * the address is 4 bytes and the other 12 are zero (packet.h). The order
 * of (address, port) pairs is that of one 48-bit number each. */
uint32_t flow_key_make_hash(const struct packet *p, struct flow_key *k, int *src_side)
{
	uint32_t s, d;
	uint64_t a, b, m, lo, hi, port0, port1, w;
	unsigned swap;

	if (__builtin_expect(p->family != 4, 0))
		return key_make_hash_any(p, k, src_side);
	s = load32(p->src);
	d = load32(p->dst);
	a = (uint64_t)__builtin_bswap32(s) << 16 | p->sport;
	b = (uint64_t)__builtin_bswap32(d) << 16 | p->dport;
	swap = a > b;
	m = (uint64_t)0 - swap;
	lo = s ^ ((s ^ d) & m);
	hi = s ^ d ^ lo;
	port0 = p->sport ^ ((p->sport ^ p->dport) & m);
	port1 = p->sport ^ p->dport ^ port0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	w = port0 | port1 << 16 | (uint64_t)4 << 32;
#else
	w = port0 << 48 | port1 << 32 | (uint64_t)4 << 24;
	lo <<= 32;
	hi <<= 32;
#endif
	store64(k->addr[0], lo);
	store64(k->addr[0] + 8, 0);
	store64(k->addr[1], hi);
	store64(k->addr[1] + 8, 0);
	store64((uint8_t *)k->port, w);
	*src_side = (int)swap;
	return hash_words(lo, 0, hi, 0, w);
}

void flow_key_make(const struct packet *p, struct flow_key *k, int *src_side)
{
	(void)flow_key_make_hash(p, k, src_side);
}

/* The slot holding key k, or NULL. */
static struct slot *slot_find(const struct flow_table *ft, const struct flow_key *k, uint32_t hash)
{
	size_t i = hash & ft->mask;

	for (size_t d = 0;; d++, i = (i + 1) & ft->mask) {
		struct slot *s = &ft->slots[i];

		/* An empty slot, or one closer to its home than we are to ours:
		 * Robin Hood insertion would have put the key here. */
		if (!s->rec || probe_dist(ft, i) < d)
			return NULL;
		if (s->hash != hash)
			continue;
		if (!s->frozen && key_eq(&((const struct conn *)s->rec)->key, k))
			return s;
		if (s->frozen) {
			struct flow_key fk;

			frozen_conn_key(s->rec, &fk);
			if (key_eq(&fk, k))
				return s;
		}
	}
}

struct conn *flow_table_hint_conn(const struct flow_table *ft, const struct flow_hint *hint)
{
	const struct slot *s;

	if (!hint->rec || hint->frozen || hint->slot > ft->mask)
		return NULL;
	s = &ft->slots[hint->slot];
	return s->rec == hint->rec && !s->frozen ? s->rec : NULL;
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
	const struct slot *s;
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
		e = slot_entry(s);
		if (e.conn)
			ft->last = e.conn;
	}
	return e;
}

struct conn *flow_table_find(struct flow_table *ft, const struct flow_key *k)
{
	return flow_table_lookup(ft, k, flow_key_hash(k), NULL).conn;
}

/* The home slot's line and the next: at the load the table grows at, a
 * look-up reads about three slots, and a run that starts in the second half
 * of a line (four slots) goes on into the next. Fetching that line only when
 * the home slot is late in its line saved less than fetching it always (on
 * the 20M bench capture, 2 lines halved the look-ups' waits on memory). */
void flow_table_prefetch(const struct flow_table *ft, uint32_t hash)
{
	size_t i = hash & ft->mask;

	__builtin_prefetch(&ft->slots[i]);
	if (i + 4 <= ft->mask)
		__builtin_prefetch(&ft->slots[i + 4]);
}

/* Bit j set when slot s[j] (j < 4) has this hash, found without a branch
 * a slot: where the run of probes ends is data, and a loop over them was
 * mispredicted about once a packet. */
static inline unsigned hash_match4(const struct slot *s, uint32_t hash)
{
#ifdef __SSE2__
	_Static_assert(sizeof(struct slot) == 16 && offsetof(struct slot, hash) == 0,
		       "a slot is one SSE2 register, its hash in the first lane");
	__m128i ab = _mm_unpacklo_epi32(_mm_loadu_si128((const __m128i *)(const void *)&s[0]),
					_mm_loadu_si128((const __m128i *)(const void *)&s[1]));
	__m128i cd = _mm_unpacklo_epi32(_mm_loadu_si128((const __m128i *)(const void *)&s[2]),
					_mm_loadu_si128((const __m128i *)(const void *)&s[3]));
	__m128i eq = _mm_cmpeq_epi32(_mm_unpacklo_epi64(ab, cd), _mm_set1_epi32((int)hash));

	return (unsigned)_mm_movemask_ps(_mm_castsi128_ps(eq));
#else
	unsigned found = 0;

	/* 1 if equal, else 0, by arithmetic: the compiler turns comparisons
	 * or'ed together back into branches */
	for (unsigned j = 0; j < 4; j++)
		found |= (unsigned)(((uint64_t)(s[j].hash ^ hash) - 1) >> 63) << j;
	return found;
#endif
}

/* The first slot with this hash among the four from its home
 * (hash_match4). Slots with this hash
 * have this home, and the probes from it meet no empty slot before them
 * (Robin Hood), so the first such slot is the one the loop finds. The loop
 * runs from the home when none of the four matches, when the home is among
 * the table's last three slots, or when the match is an empty slot (all
 * zero: a key whose hash is 0). */
struct flow_hint flow_table_hint(const struct flow_table *ft, uint32_t hash)
{
	struct flow_hint h = { NULL, 0, 0 };
	size_t home = hash & ft->mask, i = home;
	const struct slot *s = &ft->slots[home];
	unsigned found;

	/* an empty slot may keep an old hash: the one found must hold a record */
	if (home + 3 <= ft->mask && (found = hash_match4(s, hash)) && s[__builtin_ctz(found)].rec) {
		i = home + (unsigned)__builtin_ctz(found);
	} else {
		for (size_t d = 0;; d++, i = (i + 1) & ft->mask) {
			if (!ft->slots[i].rec || probe_dist(ft, i) < d)
				return h;
			if (ft->slots[i].hash == hash)
				break;
		}
	}
	h.rec = ft->slots[i].rec;
	h.slot = (uint32_t)i;
	h.frozen = ft->slots[i].frozen;
	return h;
}

/* Robin Hood insertion of a key known to be absent: whoever is closer to
 * home gives up its slot and moves on. */
static void slot_insert(struct slot *slots, size_t mask, struct slot in)
{
	size_t i = in.hash & mask;

	for (size_t d = 0;; d++, i = (i + 1) & mask) {
		struct slot *s = &slots[i];
		size_t sd;

		if (!s->rec) {
			*s = in;
			return;
		}
		sd = (i - (s->hash & mask)) & mask;
		if (sd < d) {
			struct slot tmp = *s;

			*s = in;
			in = tmp;
			d = sd;
		}
	}
}

/* Double the slots. If that memory is not there the table stays as it is:
 * it still works, only with longer probes, until it is full. */
static bool grow(struct flow_table *ft)
{
	size_t n = (ft->mask + 1) * 2;
	struct slot *ns = slots_alloc(n);

	if (!ns)
		return false;
	for (size_t i = 0; i <= ft->mask; i++)
		if (ft->slots[i].rec)
			slot_insert(ns, n - 1, ft->slots[i]);
	slots_free(ft->slots, ft->mask + 1);
	ft->slots = ns;
	ft->mask = n - 1;
	return true;
}

bool flow_table_add(struct flow_table *ft, struct conn *c)
{
	size_t slots = ft->mask + 1;

	if ((ft->count + 1) * MAX_LOAD_DEN > slots * MAX_LOAD_NUM && !grow(ft) &&
	    ft->count + 1 >= slots)
		return false;
	c->node.hash = flow_key_hash(&c->key);
	slot_insert(ft->slots, ft->mask, (struct slot){ .hash = c->node.hash, .rec = c });
	ft->count++;
	ft->last = c;
	return true;
}

/* The slot holding record rec, whose key hashes to hash (its node.hash). */
static struct slot *slot_of(const struct flow_table *ft, uint32_t hash, const void *rec)
{
	size_t i = hash & ft->mask;

	while (ft->slots[i].rec != rec) {
		if (!ft->slots[i].rec)
			return NULL; /* not in the table */
		i = (i + 1) & ft->mask;
	}
	return &ft->slots[i];
}

void flow_table_remove(struct flow_table *ft, struct conn *c)
{
	struct slot *s = slot_of(ft, c->node.hash, c);
	size_t i, next;

	if (ft->last == c)
		ft->last = NULL;
	ft->epoch++;
	if (!s)
		return;
	/* Backward shift: the rest of the run moves one closer to home. */
	i = (size_t)(s - ft->slots);
	for (next = (i + 1) & ft->mask; ft->slots[next].rec && probe_dist(ft, next) > 0;
	     i = next, next = (next + 1) & ft->mask)
		ft->slots[i] = ft->slots[next];
	ft->slots[i] = (struct slot){ 0 };
	ft->count--;
}

void flow_table_freeze(struct flow_table *ft, struct conn *c, struct frozen_conn *f)
{
	struct slot *s = slot_of(ft, c->node.hash, c);

	f->node.hash = c->node.hash;
	if (ft->last == c)
		ft->last = NULL;
	ft->epoch++;
	if (s) {
		s->rec = f;
		s->frozen = 1;
	}
}

void flow_table_thaw(struct flow_table *ft, struct frozen_conn *f, struct conn *c)
{
	struct slot *s = slot_of(ft, f->node.hash, f);

	c->node.hash = f->node.hash;
	if (s) {
		s->rec = c;
		s->frozen = 0;
	}
}

struct flow_entry *flow_table_take(struct flow_table *ft, size_t *n, size_t *bytes)
{
	_Static_assert(sizeof(struct flow_entry) <= sizeof(struct slot), "an entry fits in its slot");
	struct slot *fresh = slots_alloc(INITIAL_SLOTS);
	struct flow_entry *out = (struct flow_entry *)(void *)ft->slots;
	size_t k = 0;

	if (!fresh)
		return NULL;
	/* Entry k goes where slot k was, which has been read: k <= i. */
	for (size_t i = 0; i <= ft->mask; i++) {
		struct slot s = ft->slots[i];

		if (s.rec)
			out[k++] = slot_entry(&s);
	}
	*n = k;
	*bytes = (ft->mask + 1) * sizeof(struct slot);
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
		const struct slot *s = &ft->slots[(*pos)++];

		if (s->rec) {
			*e = slot_entry(s);
			return true;
		}
	}
	return false;
}
