/* test_flow_table.c - canonical keys (both directions, one entry), lookups,
 * removal, and a table of 200k connections (forces many expansions). */
#include <stdlib.h>

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

int main(void)
{
	test_canonical();
	test_many();
	return test_done("flow_table");
}
