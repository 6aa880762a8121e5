/* flow_table.c - the 4-tuple -> connection hash table.
 * uthash with a fast multiply-xorshift hash of the 40-byte key (uthash's
 * default Jenkins hash costs more than the lookup itself) and a one-entry
 * cache, since consecutive packets often belong to the same connection. */
#include <stdlib.h>
#include <string.h>

#include "flow_table.h"

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

static unsigned flow_key_hash(const void *key)
{
	const uint8_t *b = key;
	uint64_t h = 0x9e3779b97f4a7c15ULL;

	for (size_t i = 0; i < sizeof(struct flow_key); i += 8)
		h = mix64(h ^ load64(b + i));
	return (unsigned)h;
}

/* With HASH_NONFATAL_OOM (meson.build) a failed add leaves the item out and
 * a failed bucket expansion just keeps the old buckets; flow_table_add()
 * tells the two apart by the count. */
#undef HASH_FUNCTION
#define HASH_FUNCTION(keyptr, keylen, hashv) ((hashv) = flow_key_hash(keyptr))
#include <uthash.h>

struct flow_table {
	struct conn *head;
	struct conn *last;   /* most recently found */
};

struct flow_table *flow_table_create(void)
{
	return calloc(1, sizeof(struct flow_table));
}

void flow_table_destroy(struct flow_table *ft)
{
	struct conn *c, *tmp;

	if (!ft)
		return;
	HASH_ITER(hh, ft->head, c, tmp) {
		HASH_DELETE(hh, ft->head, c);
		conn_destroy(c);
	}
	free(ft);
}

static int addr_cmp(const uint8_t *a, uint16_t pa, const uint8_t *b, uint16_t pb)
{
	int r = memcmp(a, b, 16);

	if (r)
		return r;
	return (pa > pb) - (pa < pb);
}

void flow_key_make(const struct packet *p, struct flow_key *k, int *src_side)
{
	memset(k, 0, sizeof(*k));
	k->family = p->family;
	if (addr_cmp(p->src, p->sport, p->dst, p->dport) <= 0) {
		memcpy(k->addr[0], p->src, 16);
		memcpy(k->addr[1], p->dst, 16);
		k->port[0] = p->sport;
		k->port[1] = p->dport;
		*src_side = 0;
	} else {
		memcpy(k->addr[0], p->dst, 16);
		memcpy(k->addr[1], p->src, 16);
		k->port[0] = p->dport;
		k->port[1] = p->sport;
		*src_side = 1;
	}
}

struct conn *flow_table_find(struct flow_table *ft, const struct flow_key *k)
{
	struct conn *c;

	if (ft->last && memcmp(&ft->last->key, k, sizeof(*k)) == 0)
		return ft->last;
	HASH_FIND(hh, ft->head, k, sizeof(*k), c);
	if (c)
		ft->last = c;
	return c;
}

bool flow_table_add(struct flow_table *ft, struct conn *c)
{
	unsigned before = HASH_COUNT(ft->head);

	HASH_ADD(hh, ft->head, key, sizeof(c->key), c);
	if (HASH_COUNT(ft->head) != before + 1)
		return false;
	ft->last = c;
	return true;
}

void flow_table_remove(struct flow_table *ft, struct conn *c)
{
	if (ft->last == c)
		ft->last = NULL;
	HASH_DELETE(hh, ft->head, c);
}

size_t flow_table_count(const struct flow_table *ft)
{
	return HASH_COUNT(ft->head);
}

struct conn *flow_table_first(const struct flow_table *ft)
{
	return ft->head;
}
