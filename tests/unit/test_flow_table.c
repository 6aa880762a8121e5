/* test_flow_table.c - canonical keys (both directions, one entry), lookups,
 * removal, a table of 200k connections (forces many expansions), look-ups
 * with hints gone stale, and records frozen and thawed in place, found by
 * the hash their node carries, and every entry taken at once. The key's
 * order is checked against memcmp(), hints in small tables too, and a run
 * of keys sharing one home longer than a slot's distance field holds. */
#include <stdlib.h>

#include "bigmem.h"
#include "conn_pack.h"
#include "conn_pool.h"
#include "flow_table.h"
#include "test.h"

static struct packet pkt4(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport)
{
	struct packet p;

	memset(&p, 0, sizeof(p));
	p.family = 4;
	for (int i = 0; i < 4; i++) {
		p.src[i] = (uint8_t)(src >> (24 - 8 * i));
		p.dst[i] = (uint8_t)(dst >> (24 - 8 * i));
	}
	p.sport = sport;
	p.dport = dport;
	return p;
}

static void test_canonical(void)
{
	struct packet a = pkt4(0x0a000001, 40000, 0x0a000002, 80);
	struct packet b = pkt4(0x0a000002, 80, 0x0a000001, 40000);
	struct flow_key ka, kb;
	int sa, sb;

	flow_key_make(&a, &ka, &sa);
	flow_key_make(&b, &kb, &sb);
	CHECK(memcmp(&ka, &kb, sizeof(ka)) == 0);
	CHECK(sa != sb);
	CHECK_EQ_INT(ka.port[sa], 40000);
	/* Same addresses, ports swapped: a different connection. */
	struct packet c = pkt4(0x0a000001, 80, 0x0a000002, 40000);
	struct flow_key kc;
	int sc;

	flow_key_make(&c, &kc, &sc);
	CHECK(memcmp(&ka, &kc, sizeof(ka)) != 0);
	/* IPv6 and IPv4 with the same leading bytes differ by family. */
	struct packet d = a;

	d.family = 6;
	struct flow_key kd;
	int sd;

	flow_key_make(&d, &kd, &sd);
	CHECK(memcmp(&ka, &kd, sizeof(ka)) != 0);
}

/* The order flow_key_make() must keep, written plainly: memcmp() of the
 * addresses, then the ports; the lower endpoint goes first. */
static int ref_side(const struct packet *p)
{
	int c = memcmp(p->src, p->dst, 16);

	return c > 0 || (c == 0 && p->sport > p->dport);
}

/* Random endpoints, often sharing leading bytes (IPv6 prefixes, one IPv4
 * address, one port), both directions: the key made without branches
 * (IPv4's by a path of its own) puts the same endpoint first as the plain
 * order does, whole, and flow_key_make_hash() returns its hash. */
static void test_canonical_order(void)
{
	uint64_t rs = 42;
	int agree = 0;
	enum { N = 20000 };

	for (int i = 0; i < N; i++) {
		struct packet p;
		struct flow_key k, kr;
		int side, rside;
		uint64_t r = test_rand(&rs);

		memset(&p, 0, sizeof(p));
		p.family = (r & 1) ? 6 : 4;
		for (int b = 0; b < (p.family == 6 ? 16 : 4); b++) {
			p.src[b] = (uint8_t)test_rand(&rs);
			/* the same byte as src most of the time: ties go deep */
			p.dst[b] = (test_rand(&rs) % 4) ? p.src[b] : (uint8_t)test_rand(&rs);
		}
		p.sport = (uint16_t)test_rand(&rs);
		p.dport = (r & 2) ? p.sport : (uint16_t)test_rand(&rs);
		flow_key_make(&p, &k, &side);
		rside = ref_side(&p);
		memset(&kr, 0, sizeof(kr));
		kr.family = p.family;
		memcpy(kr.addr[rside], p.src, 16);
		memcpy(kr.addr[!rside], p.dst, 16);
		kr.port[rside] = p.sport;
		kr.port[!rside] = p.dport;
		/* and the hash made with the key is the key's hash */
		if (side == rside && memcmp(&k, &kr, sizeof(k)) == 0 &&
		    flow_key_make_hash(&p, &k, &side) == flow_key_hash(&kr))
			agree++;
	}
	CHECK_EQ_INT(agree, N);
}

static void test_many(void)
{
	struct flow_table *ft = flow_table_create();
	enum { N = 200000 };
	int found = 0;

	CHECK(ft != NULL);
	for (uint32_t i = 0; i < N; i++) {
		struct packet p = pkt4(0x0a000000 + i / 50000, (uint16_t)(1024 + i % 50000),
				       0xc0000201, 443);
		struct conn *c = calloc(1, sizeof(*c));
		int side;

		flow_key_make(&p, &c->key, &side);
		c->id = i + 1;
		CHECK(flow_table_find(ft, &c->key) == NULL);
		if (!flow_table_add(ft, c))
			conn_destroy(c);
	}
	CHECK_EQ_INT(flow_table_count(ft), N);
	for (uint32_t i = 0; i < N; i += 7) {
		struct packet p = pkt4(0xc0000201, 443, 0x0a000000 + i / 50000,
				       (uint16_t)(1024 + i % 50000));
		struct flow_key k;
		int side;

		flow_key_make(&p, &k, &side);
		struct conn *c = flow_table_find(ft, &k);

		if (c && c->id == i + 1)
			found++;
	}
	CHECK_EQ_INT(found, (N + 6) / 7);
	/* Iteration sees each once; then remove every other one (the table
	 * must not change while it is iterated). */
	struct conn **odd = calloc(N, sizeof(*odd));
	size_t removed = 0, seen = 0, pos = 0;

	CHECK(odd != NULL);
	for (struct flow_entry e; flow_table_next(ft, &pos, &e);) {
		CHECK(e.conn && !e.frozen);
		seen++;
		if (e.conn && e.conn->id % 2)
			odd[removed++] = e.conn;
	}
	CHECK_EQ_INT(seen, N);
	for (size_t i = 0; i < removed; i++) {
		flow_table_remove(ft, odd[i]);
		conn_destroy(odd[i]);
	}
	free(odd);
	CHECK_EQ_INT(flow_table_count(ft), N - removed);
	/* The rest are all still found, the removed ones not. */
	found = 0;
	for (uint32_t i = 0; i < N; i++) {
		struct packet p = pkt4(0x0a000000 + i / 50000, (uint16_t)(1024 + i % 50000),
				       0xc0000201, 443);
		struct flow_key k;
		int side;

		flow_key_make(&p, &k, &side);
		struct conn *c = flow_table_find(ft, &k);

		if (c ? c->id == i + 1 && c->id % 2 == 0 : (i + 1) % 2 == 1)
			found++;
	}
	CHECK_EQ_INT(found, N);
	flow_table_destroy(ft);
	flow_table_destroy(NULL);
}

static struct flow_key key_of(uint32_t i)
{
	struct packet p = pkt4(0x0a000000 + i / 50000, (uint16_t)(1024 + i % 50000), 0xc0000201, 443);
	struct flow_key k;
	int side;

	flow_key_make(&p, &k, &side);
	return k;
}

/* A hint taken before the table changed (removals that shift runs back,
 * records freed and their memory reused, growth that moves every slot)
 * must give the same answer as a look-up without one; so must a hint that
 * names a record with another key, as one whose hash only collides does. */
/* A hint named rec, not key k's record: allowed only when rec's key has
 * the same home (in the smallest table, 1024 slots) and the same top byte
 * of its hash as k, all a slot keeps of a hash. */
static bool shares_home_and_top(const struct conn *rec, const struct flow_key *k)
{
	uint32_t a, b;

	if (!rec)
		return false;
	a = flow_key_hash(&rec->key);
	b = flow_key_hash(k);
	return memcmp(&rec->key, k, sizeof(*k)) != 0 && (a & 1023) == (b & 1023) &&
	       a >> 24 == b >> 24;
}

static void test_hints(void)
{
	struct flow_table *ft = flow_table_create();
	enum { N = 20000, M = 60000 };
	struct flow_hint *hint = calloc(M, sizeof(*hint));
	struct conn **by_i = calloc(M, sizeof(*by_i));
	int agree = 0, via_hint = 0, shared = 0, crossed = 0;

	CHECK(ft != NULL && hint != NULL && by_i != NULL);
	for (uint32_t i = 0; i < N; i++) {
		by_i[i] = calloc(1, sizeof(struct conn));
		by_i[i]->key = key_of(i);
		by_i[i]->id = i + 1;
		CHECK(flow_table_add(ft, by_i[i]));
	}
	for (uint32_t i = 0; i < M; i++) {
		struct flow_key k = key_of(i);

		hint[i] = flow_table_hint(ft, flow_key_hash(&k));
	}
	/* Fresh hints name the record itself, or (about one key in 500 at
	 * this load) that of a key with the same home and top byte. */
	for (uint32_t i = 0; i < N; i++) {
		struct conn *named = flow_table_hint_conn(ft, &hint[i]);

		if (named == by_i[i])
			via_hint++;
		else if (named && shares_home_and_top(named, &by_i[i]->key))
			shared++;
	}
	CHECK_EQ_INT(via_hint + shared, N);
	CHECK(shared < N / 100);
	/* Remove every third: half of them are freed and new keys take their
	 * memory, half stay allocated, key intact, out of the table. */
	struct conn **gone = calloc(N, sizeof(*gone));
	size_t n_gone = 0;

	CHECK(gone != NULL);
	for (uint32_t i = 0; i < N; i += 3) {
		flow_table_remove(ft, by_i[i]);
		if (i % 2)
			conn_destroy(by_i[i]);
		else
			gone[n_gone++] = by_i[i];
		by_i[i] = NULL;
		struct conn *c = calloc(1, sizeof(struct conn));

		c->key = key_of(N + i);
		c->id = N + i + 1;
		by_i[N + i] = c;
		CHECK(flow_table_add(ft, c));
	}
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < M; i++) {
			struct flow_key k = key_of(i);
			uint32_t h = flow_key_hash(&k);
			struct flow_entry a = flow_table_lookup(ft, &k, h, &hint[i]);
			struct flow_entry b = flow_table_lookup(ft, &k, h, NULL);
			/* The hint of another key that is in the table: a collision. */
			struct flow_entry x = flow_table_lookup(ft, &k, h, &hint[(i + 1) % N]);

			if (a.conn == by_i[i] && b.conn == by_i[i] && x.conn == by_i[i])
				agree++;
			if (x.conn == by_i[(i + 1) % N] && by_i[(i + 1) % N])
				crossed++;
		}
		/* Growth: every slot moves, the old hints stay behind. */
		for (uint32_t i = 2 * N; pass == 0 && i < M; i++) {
			by_i[i] = calloc(1, sizeof(struct conn));
			by_i[i]->key = key_of(i);
			CHECK(flow_table_add(ft, by_i[i]));
		}
	}
	CHECK_EQ_INT(agree, 2 * M);
	CHECK_EQ_INT(crossed, 0);
	flow_table_destroy(ft);
	while (n_gone)
		conn_destroy(gone[--n_gone]);
	free(gone);
	free(hint);
	free(by_i);
}

/* Hints in small tables, where many keys' home slots are among the last
 * few and a run of probes wraps round to the start, through growth and
 * removals: a key in the table is named by its hint, and a key taken out is
 * not, whatever its emptied slot held; unless another key in the table has
 * the same home and top byte (shares_home_and_top), when the hint may name
 * that key's record. */
static void test_hints_small(void)
{
	enum { N = 400, LATE = 1016 };
	struct conn *by_i[N];
	uint32_t which[N];
	int named = 0, unnamed = 0, shared = 0, checks = 0;
	struct flow_table *ft = flow_table_create();

	CHECK(ft != NULL);
	/* A quarter of the keys with homes in the last 8 of the first
	 * table's 1024 slots (hash & 1023), the rest as they come. */
	for (uint32_t n = 0, j = 0; n < N; j++) {
		struct flow_key k = key_of(j);

		if (n % 4 == 0 ? (flow_key_hash(&k) & 1023) >= LATE : (flow_key_hash(&k) & 1023) < LATE)
			which[n++] = j;
	}
	for (uint32_t n = 0; n < N; n++) {
		by_i[n] = calloc(1, sizeof(struct conn));
		by_i[n]->key = key_of(which[n]);
		by_i[n]->id = n + 1;
		CHECK(flow_table_add(ft, by_i[n]));
		/* every fifth taken out again at once */
		if (n % 5 == 4) {
			flow_table_remove(ft, by_i[n]);
			conn_destroy(by_i[n]);
			by_i[n] = NULL;
		}
		for (uint32_t i = 0; i <= n; i++) {
			struct flow_key k = key_of(which[i]);
			struct flow_hint h = flow_table_hint(ft, flow_key_hash(&k));

			checks++;
			if (by_i[i] && flow_table_hint_conn(ft, &h) == by_i[i])
				named++;
			else if (!by_i[i] && !h.rec)
				unnamed++;
			else if (shares_home_and_top(flow_table_hint_conn(ft, &h), &k))
				shared++;
		}
	}
	CHECK_EQ_INT(named + unnamed + shared, checks);
	CHECK(shared < checks / 100);
	CHECK(unnamed > 0);
	flow_table_destroy(ft);
}

/* n records (key_of(i), id i + 1) added to the table, every `every`-th frozen
 * as soon as it is in, while the table grows: live[i] or cold[i] is set.
 * Each node carries its key's hash, live or frozen. */
static void fill(struct flow_table *ft, struct conn_pool *pool, uint32_t n, uint32_t every,
		 struct conn **live, struct frozen_conn **cold)
{
	for (uint32_t i = 0; i < n; i++) {
		struct flow_key k = key_of(i);

		live[i] = conn_pool_alloc(pool);
		cold[i] = NULL;
		CHECK(live[i] != NULL);
		if (!live[i])
			continue;
		live[i]->key = k;
		live[i]->id = i + 1;
		CHECK(flow_table_add(ft, live[i]));
		CHECK_EQ_INT(live[i]->node.hash, flow_key_hash(&k));
		if (i % every == 0) {
			cold[i] = conn_freeze(live[i], pool, 0);
			CHECK(cold[i] != NULL);
			flow_table_freeze(ft, live[i], cold[i]);
			conn_destroy(live[i]);
			live[i] = NULL;
			CHECK_EQ_INT(cold[i]->node.hash, flow_key_hash(&k));
		}
	}
}

/* Freezing and thawing swap the record in a slot that is found from the
 * hash the node carries (not by hashing the key again): the hash must go
 * from the live record to the frozen one and back, through growth of the
 * table in between, or the slot keeps naming a freed record. */
static void test_frozen_in_place(void)
{
	struct flow_table *ft = flow_table_create();
	struct conn_pool *pool = conn_pool_create(0);
	enum { N = 3000 };
	static struct conn *live[N];
	static struct frozen_conn *cold[N];

	CHECK(ft != NULL && pool != NULL);
	fill(ft, pool, N, 3, live, cold);
	for (uint32_t i = 0; i < N; i += 3) {
		struct flow_key k = key_of(i);
		struct flow_entry e = flow_table_lookup(ft, &k, flow_key_hash(&k), NULL);

		CHECK(e.frozen == cold[i] && !e.conn);
		/* thawed into a new record, which the slot names from then on */
		live[i] = conn_pool_alloc(pool);
		CHECK(live[i] != NULL && conn_thaw(cold[i], live[i]));
		flow_table_thaw(ft, cold[i], live[i]);
		frozen_conn_destroy(cold[i]);
		CHECK_EQ_INT(live[i]->node.hash, flow_key_hash(&k));
		e = flow_table_lookup(ft, &k, flow_key_hash(&k), NULL);
		CHECK(e.conn == live[i] && !e.frozen);
		CHECK_EQ_INT(e.conn->id, i + 1);
	}
	/* and each is removed from its own slot */
	for (uint32_t i = 0; i < N; i++) {
		struct flow_key k = key_of(i);

		flow_table_remove(ft, live[i]);
		CHECK(flow_table_find(ft, &k) == NULL);
		conn_destroy(live[i]);
	}
	CHECK_EQ_INT(flow_table_count(ft), 0);
	flow_table_destroy(ft);
	conn_pool_release(pool);
}

/* Taking every entry: each once, live or frozen as it was, in the table's
 * own memory; the table is empty and works again afterwards. */
static void test_take(void)
{
	struct flow_table *ft = flow_table_create();
	struct conn_pool *pool = conn_pool_create(0);
	enum { N = 5000 };
	static struct conn *live[N];
	static struct frozen_conn *cold[N];
	static unsigned char seen[N];
	struct flow_entry *all;
	size_t n = 0, bytes = 0, bad = 0;

	CHECK(ft != NULL && pool != NULL);
	fill(ft, pool, N, 4, live, cold);
	all = flow_table_take(ft, &n, &bytes);
	CHECK(all != NULL);
	CHECK_EQ_INT(n, N);
	CHECK(bytes >= N * sizeof(*all));
	CHECK_EQ_INT(flow_table_count(ft), 0);
	for (size_t j = 0; all && j < n; j++) {
		uint64_t id = all[j].frozen ? frozen_conn_id(all[j].frozen) : all[j].conn->id;
		uint32_t i = (uint32_t)(id - 1);

		if (id < 1 || id > N || seen[i]++ || (all[j].conn != NULL) == (all[j].frozen != NULL) ||
		    (i % 4 == 0 ? all[j].frozen != cold[i] : all[j].conn != live[i]))
			bad++;
	}
	CHECK_EQ_INT(bad, 0);
	for (uint32_t i = 0; i < N; i++) {
		struct flow_key k = key_of(i);

		CHECK(flow_table_lookup(ft, &k, flow_key_hash(&k), NULL).conn == NULL);
		if (i % 4 == 0)
			frozen_conn_destroy(cold[i]);
		else
			conn_destroy(live[i]);
	}
	bigmem_free(all, bytes);
	/* empty, and in use again */
	live[0] = conn_pool_alloc(pool);
	CHECK(live[0] != NULL);
	live[0]->key = key_of(7);
	CHECK(flow_table_add(ft, live[0]));
	CHECK(flow_table_find(ft, &live[0]->key) == live[0]);
	flow_table_remove(ft, live[0]);
	conn_destroy(live[0]);
	flow_table_destroy(ft);
	conn_pool_release(pool);
}

/* Runs longer than a slot's distance field holds (255, slot_t in
 * flow_table.c), which keys sharing one home make (a hostile capture can
 * pick them): 400 keys whose hashes share their low 12 bits, one home in
 * tables up to 4096 slots, added among 1600 others, so that the table grows
 * twice (1024 -> 4096 slots) with the run in it, and its last keys sit 400
 * slots from their home. Every key is found with and without a hint
 * through freezing, removal and thawing in the run; taking the table hands
 * each record over once. */
static void test_long_run(void)
{
	enum { RUN = 400, OTHERS = 1600, ALL = RUN + OTHERS };
	struct flow_table *ft = flow_table_create();
	struct conn_pool *pool = conn_pool_create(0);
	static uint32_t which[ALL];
	static struct conn *live[ALL];
	static struct frozen_conn *cold[ALL];
	static unsigned char gone[ALL], seen[ALL];
	uint32_t home = 0;
	int found, bad = 0;

	CHECK(ft != NULL && pool != NULL);
	if (!ft || !pool)
		return;
	/* which[0..RUN) share key_of(0)'s home, the others have other homes */
	for (uint32_t j = 0, r = 0, o = 0; r < RUN || o < OTHERS; j++) {
		struct flow_key k = key_of(j);
		uint32_t h = flow_key_hash(&k) & 4095;

		if (j == 0)
			home = h;
		if (h == home && r < RUN)
			which[r++] = j;
		else if (h != home && o < OTHERS)
			which[RUN + o++] = j;
	}
	/* a run key, then four others */
	for (uint32_t n = 0; n < ALL; n++) {
		uint32_t i = n % 5 == 0 ? n / 5 : RUN + n - n / 5 - 1;

		live[i] = conn_pool_alloc(pool);
		CHECK(live[i] != NULL);
		if (!live[i])
			return;
		live[i]->key = key_of(which[i]);
		live[i]->id = i + 1;
		CHECK(flow_table_add(ft, live[i]));
	}
	CHECK_EQ_INT(flow_table_count(ft), ALL);
	for (int round = 0; round < 4; round++) {
		if (round == 1) {
			/* freeze every third key of the run */
			for (uint32_t i = 0; i < RUN; i += 3) {
				cold[i] = conn_freeze(live[i], pool, 0);
				CHECK(cold[i] != NULL);
				flow_table_freeze(ft, live[i], cold[i]);
				conn_destroy(live[i]);
				live[i] = NULL;
			}
		} else if (round == 2) {
			/* remove every fourth live one of the run, from its end */
			for (uint32_t i = RUN; i-- > 0;)
				if (live[i] && i % 4 == 1) {
					flow_table_remove(ft, live[i]);
					conn_destroy(live[i]);
					live[i] = NULL;
					gone[i] = 1;
				}
		} else if (round == 3) {
			/* and thaw the frozen ones */
			for (uint32_t i = 0; i < RUN; i++)
				if (cold[i]) {
					live[i] = conn_pool_alloc(pool);
					CHECK(live[i] && conn_thaw(cold[i], live[i]));
					flow_table_thaw(ft, cold[i], live[i]);
					frozen_conn_destroy(cold[i]);
					cold[i] = NULL;
				}
		}
		found = 0;
		for (uint32_t i = 0; i < ALL; i++) {
			struct flow_key k = key_of(which[i]);
			uint32_t h = flow_key_hash(&k);
			struct flow_hint hint = flow_table_hint(ft, h);
			struct flow_entry a = flow_table_lookup(ft, &k, h, NULL);
			struct flow_entry b = flow_table_lookup(ft, &k, h, &hint);

			if (a.conn == live[i] && a.frozen == cold[i] && b.conn == a.conn && b.frozen == a.frozen &&
			    (a.conn || a.frozen || gone[i]))
				found++;
		}
		CHECK_EQ_INT(found, ALL);
	}
	CHECK_EQ_INT(flow_table_count(ft), ALL - RUN / 4 + RUN / 3 / 4);
	/* every record handed over once */
	size_t n = 0, bytes = 0;
	struct flow_entry *all = flow_table_take(ft, &n, &bytes);

	CHECK(all != NULL);
	for (size_t j = 0; all && j < n; j++) {
		uint32_t i = all[j].conn ? (uint32_t)(all[j].conn->id - 1) : ALL;

		if (i >= ALL || seen[i]++ || all[j].conn != live[i])
			bad++;
		else
			conn_destroy(live[i]);
	}
	CHECK_EQ_INT(n, ALL - RUN / 4 + RUN / 3 / 4);
	CHECK_EQ_INT(bad, 0);
	bigmem_free(all, bytes);
	flow_table_destroy(ft);
	conn_pool_release(pool);
}

int main(void)
{
	test_canonical();
	test_canonical_order();
	test_many();
	test_hints();
	test_hints_small();
	test_frozen_in_place();
	test_take();
	test_long_run();
	return test_done("flow_table");
}
