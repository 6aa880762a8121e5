/* test_conn_pack.c - a packed connection unpacks to the same bytes: random
 * values in every field (zero, small, huge, wrapped sequence numbers), with
 * and without a timeline, and the plain-byte escapes of odd values. The one
 * exception: an endpoint's last_sig, left out when the connection is packed
 * CONN_PACK_SIG_NS or more after that endpoint's last segment (no copy of it
 * can come any more), unpacks as 0. */
#include <stddef.h>
#include <stdlib.h>

#include "conn_pack.h"
#include "conn_pool.h"
#include "test.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	return test_rand(&rng_state);
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

/* Times that equal other times, as the real ones often do (the packer
 * codes those as references). */
static void link_times(struct conn *c)
{
	for (int r = 0; r < 2; r++) {
		struct peer *pe = &c->peer[r], *o = &c->peer[!r];

		switch (rnd() % 4) {
		case 0: pe->since_ns = o->last_ns; break;
		case 1: pe->since_ns = pe->last_ns; break;
		default: break;
		}
		switch (rnd() % 4) {
		case 0: pe->ctl_tx_ns = pe->last_ns; break;
		case 1: pe->ctl_tx_ns = o->since_ns; break;
		default: break;
		}
	}
}

/* Changes every clean connection makes (side, from, to, flags, cause). */
static const struct transition common_changes[] = {
	{ .side = ROLE_CLIENT, .from = TS_CLOSED, .to = TS_SYN_SENT, .tcp_flags = TH_SYN },
	{ .side = ROLE_SERVER, .from = TS_CLOSED, .to = TS_SYN_RECEIVED, .tcp_flags = TH_SYN | TH_ACK },
	{ .side = ROLE_CLIENT, .from = TS_SYN_SENT, .to = TS_ESTABLISHED, .tcp_flags = TH_SYN | TH_ACK },
	{ .side = ROLE_SERVER, .from = TS_SYN_RECEIVED, .to = TS_ESTABLISHED, .tcp_flags = TH_ACK },
	{ .side = ROLE_CLIENT, .from = TS_ESTABLISHED, .to = TS_FIN_WAIT_1, .tcp_flags = TH_FIN | TH_ACK },
	{ .side = ROLE_SERVER, .from = TS_ESTABLISHED, .to = TS_CLOSE_WAIT, .tcp_flags = TH_FIN | TH_ACK },
	{ .side = ROLE_CLIENT, .from = TS_FIN_WAIT_1, .to = TS_FIN_WAIT_2, .tcp_flags = TH_ACK },
	{ .side = ROLE_SERVER, .from = TS_CLOSE_WAIT, .to = TS_LAST_ACK, .tcp_flags = TH_FIN | TH_ACK },
	{ .side = ROLE_CLIENT, .from = TS_FIN_WAIT_2, .to = TS_TIME_WAIT, .tcp_flags = TH_FIN | TH_ACK },
	{ .side = ROLE_SERVER, .from = TS_LAST_ACK, .to = TS_CLOSED, .tcp_flags = TH_ACK },
};
#define N_COMMON (sizeof(common_changes) / sizeof(common_changes[0]))

static void common_change(struct transition *t)
{
	const struct transition *k = &common_changes[rnd() % N_COMMON];

	t->side = k->side;
	t->from = k->from;
	t->to = k->to;
	t->tcp_flags = k->tcp_flags;
	t->cause = TC_PACKET;
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
	if (round % 2)
		link_times(c);
	fill_zeek(&c->zeek);
	if (round % 9 == 4)   /* not modelled (tracker_config.zeek_upto): all zero */
		memset(&c->zeek, 0, sizeof(c->zeek));
	if (round % 5 == 0) { /* Zeek's clock stopped at an endpoint's segment */
		uint64_t ts = c->peer[rnd() % 2].last_ns;

		c->zeek.last_time = ts > c->first_ns ? (uint32_t)((ts - c->first_ns) / 1000) : 0;
	}
	if (round % 8 == 1)   /* the usual small fields: the short form */
		for (int r = 0; r < 2; r++) {
			c->peer[r].bits &= 0x3ff;
			c->peer[r].state %= TS_COUNT;
			c->peer[r].prev_state %= TS_COUNT;
			c->peer[r].wscale %= 15;
			c->peer[r].pend_kind %= 3;
			for (int k = 0; k < ZFC_COUNT; k++)
				c->zeek.nflags[r][k] %= 4;
		}
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
			if (rnd() % 2)   /* a change connections often make: one byte */
				common_change(t);
			if (rnd() % 6 == 0)  /* where an endpoint's state began */
				t->ts_ns = c->peer[rnd() % 2].since_ns;
			if (rnd() % 3 == 0)  /* the same segment as the change before */
				t->ts_ns = i ? t[-1].ts_ns : c->first_ns;
			if (rnd() % 3 == 0)
				t->packet = i ? t[-1].packet : c->first_packet;
			if (rnd() % 8 == 0)  /* no packet (a timeout) */
				t->packet = 0;
		}
	}
}

/* Packed at now_ns, endpoint r's last_sig is kept when its last segment is
 * less than CONN_PACK_SIG_NS before (or after: the capture's time went back). */
static bool sig_kept(const struct conn *c, int r, uint64_t now_ns)
{
	uint64_t last = c->peer[r].last_ns;

	return !(now_ns > last && now_ns - last >= CONN_PACK_SIG_NS);
}

static void test_round_trips(void)
{
	struct conn_pool *pool = conn_pool_create(0);

	CHECK(pool != NULL);
	for (int round = 0; round < 20000 && pool; round++) {
		struct conn a, b;
		struct frozen_conn *f;
		uint64_t now_ns;

		fill(&a, round);
		switch (round % 4) {  /* packed soon after, long after, at, or before its last segment */
		case 0: now_ns = a.peer[rnd() % 2].last_ns + rnd() % CONN_PACK_SIG_NS; break;
		case 1: now_ns = a.last_ns + CONN_PACK_SIG_NS + rnd() % 100000000000ULL; break;
		case 2: now_ns = a.peer[rnd() % 2].last_ns + CONN_PACK_SIG_NS - rnd() % 2; break;
		default: now_ns = val(a.last_ns); break;
		}
		f = conn_freeze(&a, pool, now_ns);
		CHECK(f != NULL);
		if (!f) {
			free(a.tl);
			continue;
		}
		struct flow_key k;

		frozen_conn_key(f, &k);
		CHECK(memcmp(&k, &a.key, sizeof(a.key)) == 0);
		CHECK(frozen_conn_last_ns(f) == a.last_ns);
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
		/* last_sig: kept, or 0 when no copy of that segment can come */
		for (int r = 0; r < 2; r++) {
			CHECK(b.peer[r].last_sig == (sig_kept(&a, r, now_ns) ? a.peer[r].last_sig : 0));
			b.peer[r].last_sig = a.peer[r].last_sig;
		}
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
	conn_pool_release(pool);
}

/* c packed and unpacked equals c (last_sig kept: packed at time 0). */
static bool round_trip(struct conn_pool *pool, const struct conn *c)
{
	struct frozen_conn *f = conn_freeze(c, pool, 0);
	struct conn b;
	bool same;

	if (!f)
		return false;
	memset(&b, 0, sizeof(b));
	same = conn_thaw(f, &b) && memcmp(c, &b, sizeof(b)) == 0;
	frozen_conn_destroy(f);
	return same;
}

/* Records with one odd byte, which random fills almost never make: an
 * IPv4 key with one byte set beyond its addresses' first four or in its
 * padding (it must not take the 12-byte form), and an endpoint whose only
 * non-zero byte is any one of its fields' (it must not pass for silent). */
static void test_one_byte(void)
{
	struct conn_pool *pool = conn_pool_create(0);
	size_t pad_from = offsetof(struct peer, pend_kind) + 1, pad_to = offsetof(struct peer, since_ns);
	int ok = 0, n = 0;

	CHECK(pool != NULL);
	for (size_t i = 4; i < 2 * 16 + sizeof(((struct flow_key *)0)->pad) + 4 && pool; i++) {
		struct conn c;
		uint8_t *k = (uint8_t *)&c.key;

		if (i >= 16 && i < 20)
			continue;   /* addr[1]'s first four bytes are an IPv4 address's */
		memset(&c, 0, sizeof(c));
		c.key.family = 4;
		c.key.addr[0][0] = 10;
		c.key.addr[1][0] = 172;
		if (i < 32)
			k[i] = 0x5a;                        /* addr[0][4..15], addr[1][4..15] */
		else if (i >= 36)
			c.key.pad[i - 36] = 0x5a;           /* the padding */
		else
			continue;
		n++;
		ok += round_trip(pool, &c);
	}
	for (size_t i = 0; i < sizeof(struct peer) && pool; i++) {
		struct conn c;

		if (i >= pad_from && i < pad_to)
			continue;
		for (int r = 0; r < 2; r++) {
			memset(&c, 0, sizeof(c));
			c.key.family = 4;
			((uint8_t *)&c.peer[r])[i] = 0x5a;
			n++;
			ok += round_trip(pool, &c);
		}
	}
	CHECK_EQ_INT(ok, n);
	conn_pool_release(pool);
}

/* A flood's SYN as the tracker leaves it (values from a real one): the
 * short form, and back. */
static void lone_syn(struct conn *c, struct transition *tl)
{
	memset(c, 0, sizeof(*c));
	c->key.family = 4;
	memcpy(c->key.addr[0], "\x8c\x36\x13\x28", 4);
	memcpy(c->key.addr[1], "\xac\x10\x00\x0a", 4);
	c->key.port[0] = 46060;
	c->key.port[1] = 443;
	c->last_ns = c->first_ns = 1700000000349943000ULL;
	c->id = 105855;
	c->first_packet = 187410;
	c->client_is_0 = 1;
	c->pooled = 1;
	c->peer[0] = (struct peer){
		.packets = 1, .last_ns = c->last_ns, .last_sig = 840808751563069180ULL,
		.snd_nxt = 2209730330u, .max_win = 22865, .unanswered = 1, .isn = 2209730329u,
		.bits = 3, .state = TS_SYN_SENT, .last_flags = 0x02, .since_ns = c->last_ns,
		.ctl_tx_ns = c->last_ns,
	};
	c->zeek.start_seq[0] = 2209730329u;
	c->zeek.last_seq[0] = c->zeek.rcv_seq[0] = 2209730330u;
	c->zeek.hdr_bytes[0] = 44;
	c->zeek.seen = 1;
	c->zeek.ep[0] = 1;
	c->zeek.nflags[0][ZFC_SYN] = 1;
	c->zeek.hist[0] = 1;
	c->zeek.hist[11] = 0x80;
	if (tl) {
		*tl = (struct transition){ .ts_ns = c->first_ns, .packet = c->first_packet,
					   .to = TS_SYN_SENT, .tcp_flags = 0x02 };
		c->tl = tl;
		c->tl_len = 1;
		c->tl_cap = 10;
	}
}

/* Field by field: a transition made as a compound literal has padding of
 * any value. */
static bool same_transitions(const struct transition *a, const struct transition *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (a[i].ts_ns != b[i].ts_ns || a[i].packet != b[i].packet || a[i].side != b[i].side ||
		    a[i].from != b[i].from || a[i].to != b[i].to || a[i].tcp_flags != b[i].tcp_flags ||
		    a[i].cause != b[i].cause)
			return false;
	return true;
}

/* c packed and unpacked equals c, timeline too; *lone: it took the short form. */
static bool round_trip_tl(struct conn_pool *pool, const struct conn *c, uint64_t now_ns,
			  bool *lone)
{
	struct frozen_conn *f = conn_freeze(c, pool, now_ns);
	struct conn b;
	bool same;

	if (!f)
		return false;
	*lone = frozen_conn_is_lone(f);
	memset(&b, 0, sizeof(b));
	b.node = c->node;
	same = conn_thaw(f, &b);   /* into a record of the stack: not pooled */
	b.pooled = c->pooled;
	if (same && c->tl) {
		same = b.tl && b.tl_len == c->tl_len && b.tl_cap == c->tl_cap &&
		       same_transitions(b.tl, c->tl, c->tl_len);
		free(b.tl);
		b.tl = c->tl;
	}
	for (int r = 0; r < 2; r++)
		if (!sig_kept(c, r, now_ns)) {
			same = same && b.peer[r].last_sig == 0;
			b.peer[r].last_sig = c->peer[r].last_sig;
		}
	same = same && memcmp(c, &b, sizeof(b)) == 0;
	frozen_conn_destroy(f);
	return same;
}

/* Every byte of a lone SYN changed in turn (but the node, the pointers, the
 * timeline's length and the padding: not packed, or not on their own): the record still comes back whole,
 * through the short form when the change is in a value it keeps, the long
 * one when the rest no longer follows from those. */
static void test_lone(void)
{
	struct conn_pool *pool = conn_pool_create(0);
	struct transition tl, tl2;
	struct conn c;
	size_t skip[][2] = {
		{ offsetof(struct conn, node), offsetof(struct conn, node) + sizeof(c.node) },
		{ offsetof(struct conn, tl), offsetof(struct conn, tl) + sizeof(c.tl) },
		{ offsetof(struct conn, rare), offsetof(struct conn, rare) + sizeof(c.rare) },
		/* go with tl */
		{ offsetof(struct conn, tl_len), offsetof(struct conn, tl_len) + sizeof(c.tl_len) },
		{ offsetof(struct conn, tl_cap), offsetof(struct conn, tl_cap) + sizeof(c.tl_cap) },
		/* pooled, and the padding after it and at the end */
		{ offsetof(struct conn, pooled), offsetof(struct conn, tl_cap) },
		{ offsetof(struct conn, zeek) + sizeof(c.zeek), sizeof(struct conn) },
		{ offsetof(struct conn, peer[0].pend_kind) + 1, offsetof(struct conn, peer[0].since_ns) },
		{ offsetof(struct conn, peer[1].pend_kind) + 1, offsetof(struct conn, peer[1].since_ns) },
	};
	int n = 0, ok = 0, short_form = 0, server_short = 0;
	bool lone;

	CHECK(pool != NULL);
	if (!pool)
		return;
	for (int with_tl = 0; with_tl < 2; with_tl++) {
		lone_syn(&c, with_tl ? &tl : NULL);
		CHECK(round_trip_tl(pool, &c, c.last_ns + 100000000, &lone));
		CHECK(lone);
		/* packed a second later: its last_sig is left out, still short */
		CHECK(round_trip_tl(pool, &c, c.last_ns + CONN_PACK_SIG_NS, &lone));
		CHECK(lone);
		/* from IPv6 addresses: the whole key, still short */
		c.key.family = 6;
		memcpy(c.key.addr[0], "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07", 16);
		memcpy(c.key.addr[1], "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01", 16);
		CHECK(round_trip_tl(pool, &c, c.last_ns + 100000000, &lone));
		CHECK(lone);
	}
	for (size_t i = 0; i < sizeof(struct conn); i++) {
		bool skipped = false;

		for (size_t k = 0; k < sizeof(skip) / sizeof(skip[0]); k++)
			skipped |= i >= skip[k][0] && i < skip[k][1];
		if (skipped)
			continue;
		for (int with_tl = 0; with_tl < 2; with_tl++) {
			lone_syn(&c, with_tl ? &tl : NULL);
			((uint8_t *)&c)[i] ^= 0x5a;
			n++;
			if (round_trip_tl(pool, &c, c.last_ns, &lone))
				ok++;
			else
				fprintf(stderr, "lone SYN, byte %zu changed%s: not the same after\n", i,
					with_tl ? " (with its timeline)" : "");
			short_form += lone;
			if (i >= offsetof(struct conn, peer[1]) && i < offsetof(struct conn, peer[1]) + sizeof(struct peer))
				server_short += lone;   /* the server spoke: not a lone SYN */
		}
	}
	/* and each byte of its one transition */
	for (size_t i = 0; i < offsetof(struct transition, cause) + 1; i++) {
		lone_syn(&c, &tl);
		tl2 = tl;
		((uint8_t *)&tl2)[i] ^= 0x5a;
		c.tl = &tl2;
		n++;
		if (round_trip_tl(pool, &c, c.last_ns, &lone))
			ok++;
		CHECK(!lone);
	}
	CHECK_EQ_INT(ok, n);
	CHECK_EQ_INT(server_short, 0);
	/* the values it keeps: the key (12 bytes), id, first packet, flags,
	 * client_is_0, isn, window, bits, wscale, flags of the SYN, header
	 * bytes, three of Zeek's bytes, last_sig: about a third of the bytes */
	CHECK(short_form > 60 && short_form < 2 * 120);
	printf("conn_pack: %d of %d one-byte changes of a lone SYN kept the short form\n",
	       short_form, n);
	conn_pool_release(pool);
}

/* A connection with a held-back transition is not frozen. */
static void test_rare_stays(void)
{
	struct conn c;
	struct conn_rare rare;

	memset(&c, 0, sizeof(c));
	memset(&rare, 0, sizeof(rare));
	c.rare = &rare;
	CHECK(conn_freeze(&c, NULL, 0) == NULL);
	frozen_conn_destroy(NULL);
}

/* A clean connection's ten changes, five segments of them, pack in a byte
 * each plus the times and packet numbers of those five segments (each a
 * few milliseconds and a few hundred packets after the one before); the
 * full form (three bytes a change, each packet number from the first) took
 * about twice that. */
static void test_timeline_short(void)
{
	struct conn_pool *pool = conn_pool_create(0);
	struct transition tl[N_COMMON];
	struct frozen_conn *with, *without;
	struct conn c;
	uint64_t ts = 1700000000123456789ULL, packet = 1000;
	bool lone;

	CHECK(pool != NULL);
	memset(&c, 0, sizeof(c));
	c.key.family = 4;
	c.key.port[0] = 40000;
	c.key.port[1] = 443;
	c.first_ns = ts;
	c.first_packet = packet;
	c.id = 7;
	for (size_t i = 0; i < N_COMMON; i++) {
		/* a new segment, else the one before changed both sides: the
		 * SYN-ACK, the handshake's ACK, a FIN, its ACK, the other FIN,
		 * the last ACK (the SYN is the connection's first packet) */
		if (i == 1 || i == 3 || i == 4 || i == 6 || i == 7 || i == 9) {
			ts += 1000000 + rnd() % 5000000;
			packet += 100 + rnd() % 900;
		}
		tl[i] = common_changes[i];
		tl[i].ts_ns = ts;
		tl[i].packet = packet;
	}
	c.last_ns = ts;
	/* each endpoint's state began with its last change */
	c.peer[ROLE_CLIENT].since_ns = tl[8].ts_ns;
	c.peer[ROLE_SERVER].since_ns = tl[9].ts_ns;
	c.tl = tl;
	c.tl_len = c.tl_cap = N_COMMON;
	CHECK(round_trip_tl(pool, &c, c.last_ns, &lone));
	with = conn_freeze(&c, pool, c.last_ns);
	c.tl = NULL;
	c.tl_len = c.tl_cap = 0;
	without = conn_freeze(&c, pool, c.last_ns);
	CHECK(with && without);
	if (with && without) {
		size_t cost = frozen_conn_size(with) - frozen_conn_size(without);

		/* cap and length, a byte a change, 4 + 2 bytes for each of the
		 * segments after the first but the two that began an endpoint's
		 * last state, 1 + 2 for those */
		if (cost > 2 + N_COMMON + 4 * 6 + 2 * 3)
			fprintf(stderr, "a clean timeline packs in %zu bytes\n", cost);
		CHECK(cost <= 2 + N_COMMON + 4 * 6 + 2 * 3);
	}
	frozen_conn_destroy(with);
	frozen_conn_destroy(without);
	conn_pool_release(pool);
}

/* Zeek's fields not modelled (all zero, tracker_config.zeek_upto) take no
 * byte of their own; a record with any one byte of them set does not pass
 * for that and comes back whole. */
static void test_no_zeek(void)
{
	struct conn_pool *pool = conn_pool_create(0);
	struct frozen_conn *f;
	size_t with = 0, without = 0;
	struct conn c;
	int ok = 0, n = 0;

	CHECK(pool != NULL);
	if (!pool)
		return;
	fill(&c, 1);
	free(c.tl);
	c.tl = NULL;
	c.tl_len = c.tl_cap = 0;
	if ((f = conn_freeze(&c, pool, 0))) {
		with = frozen_conn_size(f);
		frozen_conn_destroy(f);
	}
	memset(&c.zeek, 0, sizeof(c.zeek));
	CHECK(round_trip(pool, &c));
	if ((f = conn_freeze(&c, pool, 0))) {
		without = frozen_conn_size(f);
		frozen_conn_destroy(f);
	}
	/* at least the eight sequence numbers, the two endpoint bytes and
	 * masks, the flag counts, the time, what was seen, the history */
	CHECK(without > 0 && without + 16 <= with);
	printf("conn_pack: %zu bytes with Zeek's fields, %zu without\n", with, without);
	for (size_t i = 0; i < sizeof(c.zeek); i++) {
		memset(&c.zeek, 0, sizeof(c.zeek));
		((uint8_t *)&c.zeek)[i] = 0x5a;
		n++;
		if (round_trip(pool, &c))
			ok++;
		else
			fprintf(stderr, "Zeek's byte %zu alone set: not the same after\n", i);
	}
	CHECK_EQ_INT(ok, n);
	conn_pool_release(pool);
}

/* An endpoint's count of segments the peer has not answered is 0 or 1 in
 * most records: written as a bit of its code, not a byte. Every value comes
 * back, and 0 or 1 packs a byte shorter than 2. */
static void test_unanswered(void)
{
	static const uint32_t vals[] = { 0, 1, 2, 127, 128, 300, UINT32_MAX };
	struct conn_pool *pool = conn_pool_create(0);
	size_t size[7] = { 0 };
	int ok = 0, n = 0;
	struct conn c;
	bool lone;

	CHECK(pool != NULL);
	if (!pool)
		return;
	for (int r = 0; r < 2; r++)
		for (size_t i = 0; i < 7; i++) {
			lone_syn(&c, NULL);
			c.peer[0].packets = 2;   /* not a lone SYN: the long form */
			c.peer[1] = c.peer[0];
			c.peer[1].state = TS_SYN_RECEIVED;
			c.peer[r].unanswered = vals[i];
			n++;
			if (round_trip_tl(pool, &c, c.last_ns, &lone) && !lone)
				ok++;
			if (r == 0) {
				struct frozen_conn *f = conn_freeze(&c, pool, c.last_ns);

				CHECK(f != NULL);
				size[i] = f ? frozen_conn_size(f) : 0;
				if (f)
					frozen_conn_destroy(f);
			}
		}
	CHECK_EQ_INT(ok, n);
	CHECK_EQ_INT(size[0], size[1]);
	CHECK_EQ_INT(size[2], size[0] + 1);
	conn_pool_release(pool);
}

int main(void)
{
	test_round_trips();
	test_timeline_short();
	test_one_byte();
	test_lone();
	test_rare_stays();
	test_no_zeek();
	test_unanswered();
	return test_done("conn_pack");
}
