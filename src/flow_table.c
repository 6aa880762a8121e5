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

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ULL;
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ULL;
	x ^= x >> 32;
	return x;
}

/* One multiply per word to gather the key, one full mix at the end to
 * spread it: every packet hashes its key, so this is kept short. */
uint32_t flow_key_hash(const struct flow_key *k)
{
	const uint8_t *b = (const uint8_t *)k;
	uint64_t h = 0x9e3779b97f4a7c15ULL;

	for (size_t i = 0; i < sizeof(struct flow_key); i += 8)
		h = (h ^ load64(b + i)) * 0xbf58476d1ce4e5b9ULL;
	return (uint32_t)mix64(h);
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
void flow_key_make(const struct packet *p, struct flow_key *k, int *src_side)
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

/* 1 if a == b, else 0, by arithmetic: the compiler turns comparisons
 * or'ed together back into branches. */
static inline unsigned hash_eq(uint32_t a, uint32_t b)
{
	return (unsigned)(((uint64_t)(a ^ b) - 1) >> 63);
}

/* The first slot with this hash among the four from its home, found
 * without a branch a slot: where the run of probes ends is data, and a loop
 * over them was mispredicted about once a packet. Slots with this hash
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
	if (home + 3 <= ft->mask &&
	    (found = hash_eq(s[0].hash, hash) | hash_eq(s[1].hash, hash) << 1 |
		     hash_eq(s[2].hash, hash) << 2 | hash_eq(s[3].hash, hash) << 3) &&
	    s[__builtin_ctz(found)].rec) {
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
