/* test_conn_pack.c - a packed connection unpacks to the same bytes: random
 * values in every field (zero, small, huge, wrapped sequence numbers), with
 * and without a timeline, and the plain-byte escape of odd transitions. */
#include <stdlib.h>

#include "conn_pack.h"
#include "test.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Mostly realistic (zero, small, or near a base), sometimes anything. */
static uint64_t val(uint64_t base)
{
	switch (rnd() % 5) {
	case 0: return 0;
	case 1: return rnd() % 300;
	case 2: return base + rnd() % 100000000 - 50000000;
	case 3: return UINT64_MAX - rnd() % 3;
	default: return rnd();
	}
}

static void fill_peer(struct peer *pe, uint64_t t0)
{
	pe->packets = val(0);
	pe->bytes = val(0);
	pe->last_ns = val(t0);
	pe->last_sig = rnd();
	pe->snd_nxt = (uint32_t)val(0);
	pe->max_ack = (uint32_t)val(0);
	pe->max_win = (uint32_t)val(0);
	pe->unanswered = (uint32_t)val(0);
	pe->isn = (uint32_t)rnd();
	pe->fin_seq = (uint32_t)val(pe->isn);
	pe->rtt_us = (uint32_t)val(0);
	pe->bits = (uint16_t)rnd();
	pe->state = (uint8_t)rnd();
	pe->wscale = (uint8_t)rnd();
	pe->prev_state = (uint8_t)rnd();
	pe->last_flags = (uint8_t)rnd();
	pe->pend_kind = (uint8_t)rnd();
	pe->since_ns = val(t0);
	pe->since_bytes = val(pe->bytes);
	pe->ctl_tx_ns = val(t0);
}

static void fill_zeek(struct zeek_conn *z)
{
	for (int r = 0; r < 2; r++) {
		z->start_seq[r] = (uint32_t)rnd();
		z->last_seq[r] = (uint32_t)val(z->start_seq[r]);
		z->rcv_seq[r] = (uint32_t)val(z->start_seq[r]);
		z->hdr_bytes[r] = (uint32_t)val(0);
		z->rxmt[r] = (uint16_t)val(0);
		z->rst_seq[r] = (uint16_t)rnd();
		z->copies[r] = (uint16_t)val(0);
		z->win0[r] = (uint8_t)rnd();
		z->gaps[r] = (uint8_t)rnd();
		z->ep[r] = (uint8_t)rnd();
		for (int k = 0; k < ZFC_COUNT; k++)
			z->nflags[r][k] = (uint8_t)rnd();
	}
	z->missed_bytes = (uint32_t)val(0);
	z->last_time = (uint32_t)val(0);
	z->seen = (uint16_t)rnd();
	for (size_t i = 0; i < sizeof(z->hist); i++)
		z->hist[i] = (uint8_t)rnd();
}

static void fill(struct conn *c, int round)
{
	uint64_t t0 = 1700000000000000000ULL + rnd() % 1000000000000ULL;

	memset(c, 0, sizeof(*c));
	c->key.family = rnd() % 2 ? 4 : 6;
	for (size_t i = 0; i < sizeof(c->key.addr[0]); i++) {
		bool used = c->key.family == 6 || i < 4 || round % 11 == 0;

		c->key.addr[0][i] = used ? (uint8_t)rnd() : 0;
		c->key.addr[1][i] = used ? (uint8_t)rnd() : 0;
	}
	c->key.port[0] = (uint16_t)rnd();
	c->key.port[1] = (uint16_t)rnd();
	if (round % 13 == 0)
		c->key.pad[1] = 1;
	c->last_ns = val(t0);
	c->first_ns = round % 7 == 0 ? rnd() : t0;
	c->id = val(0);
	c->first_packet = val(0);
	c->missed_bytes = val(0);
	c->flags = (uint32_t)rnd();
	c->anomalies = (uint32_t)val(0);
	c->client_is_0 = (uint8_t)rnd();
	fill_peer(&c->peer[0], t0);
	if (round % 4)   /* else the server was never heard from */
		fill_peer(&c->peer[1], t0);
	fill_zeek(&c->zeek);
	if (round % 3) {
		c->tl_len = (uint32_t)(rnd() % 20);
		c->tl_cap = c->tl_len + (uint32_t)(rnd() % 4);
		c->tl = calloc(c->tl_cap ? c->tl_cap : 1, sizeof(*c->tl));
		for (uint32_t i = 0; i < c->tl_len; i++) {
			struct transition *t = &c->tl[i];
			bool odd = rnd() % 10 == 0;

			t->ts_ns = val(t0);
			t->packet = val(c->first_packet);
			t->side = odd ? (uint8_t)rnd() : (uint8_t)(rnd() % 2);
			t->from = odd ? (uint8_t)rnd() : (uint8_t)(rnd() % TS_COUNT);
			t->to = odd ? (uint8_t)rnd() : (uint8_t)(rnd() % TS_COUNT);
			t->tcp_flags = (uint8_t)rnd();
			t->cause = odd ? (uint8_t)rnd() : (uint8_t)(rnd() % 8);
		}
	}
}

static void test_round_trips(void)
{
	for (int round = 0; round < 20000; round++) {
		struct conn a, b;
		struct frozen_conn *f;

		fill(&a, round);
		f = conn_freeze(&a);
		CHECK(f != NULL);
		if (!f) {
			free(a.tl);
			continue;
		}
		struct flow_key k;

		frozen_conn_key(f, &k);
		CHECK(memcmp(&k, &a.key, sizeof(a.key)) == 0);
		CHECK(f->last_ns == a.last_ns);
		CHECK(frozen_conn_id(f) == a.id);
		memset(&b, 0, sizeof(b));
		CHECK(conn_thaw(f, &b));
		CHECK_EQ_INT(b.tl_len, a.tl_len);
		CHECK_EQ_INT(b.tl_cap, a.tl_cap);
		CHECK((a.tl == NULL) == (b.tl == NULL));
		if (a.tl && b.tl)
			CHECK(memcmp(a.tl, b.tl, a.tl_len * sizeof(*a.tl)) == 0);
		free(b.tl);
		b.tl = a.tl;
		if (memcmp(&a, &b, sizeof(a)) != 0) {
			CHECK(memcmp(&a, &b, sizeof(a)) == 0);
			for (size_t i = 0; i < sizeof(a); i++)
				if (((uint8_t *)&a)[i] != ((uint8_t *)&b)[i]) {
					fprintf(stderr, "round %d: first difference at byte %zu\n", round, i);
					break;
				}
			break;
		}
		free(a.tl);
		frozen_conn_destroy(f);
	}
}

/* A connection with a held-back transition is not frozen. */
static void test_rare_stays(void)
{
	struct conn c;
	struct conn_rare rare;

	memset(&c, 0, sizeof(c));
	memset(&rare, 0, sizeof(rare));
	c.rare = &rare;
	CHECK(conn_freeze(&c) == NULL);
	frozen_conn_destroy(NULL);
}

int main(void)
{
	test_round_trips();
	test_rare_stays();
	return test_done("conn_pack");
}
