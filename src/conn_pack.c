/* conn_pack.c - packing an idle connection into bytes and back. Every field
 * of struct conn, struct peer and struct zeek_conn is written, most as a
 * varint of its difference from a field it is usually close to: times from
 * the connection's last packet or the endpoint's own times, sequence numbers
 * from the endpoint's ISN, byte counts from each other. A TIME_WAIT record
 * shrinks from 448 bytes to about 150; a flood's lone SYN to about 60. */
#include <stdlib.h>
#include <string.h>

#include "conn_pack.h"

/* A field added to these structs must be packed here too; these fail the
 * build until it is (then update the sizes). */
_Static_assert(sizeof(struct peer) == 96, "struct peer changed: update conn_pack.c");
_Static_assert(sizeof(struct zeek_conn) == 80, "struct zeek_conn changed: update conn_pack.c");
_Static_assert(sizeof(struct transition) == 24, "struct transition changed: update conn_pack.c");
_Static_assert(sizeof(struct conn) == 424, "struct conn changed: update conn_pack.c");
_Static_assert(sizeof(struct flow_key) == 40, "struct flow_key changed: update conn_pack.c");

/* Upper bounds of the packed size: the fixed part, and one transition. */
#define FIXED_MAX 512
#define TRANSITION_MAX 32

/* ---- writing ---- */

struct wr {
	uint8_t *p;
};

static void put_u8(struct wr *w, uint8_t v)
{
	*w->p++ = v;
}

static void put_raw(struct wr *w, const void *v, size_t n)
{
	memcpy(w->p, v, n);
	w->p += n;
}

/* LEB128: 7 bits a byte, low first. */
static void put_uv(struct wr *w, uint64_t v)
{
	while (v >= 0x80) {
		*w->p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*w->p++ = (uint8_t)v;
}

/* A difference that may be negative, zigzag-folded so small ones are short. */
static void put_delta(struct wr *w, uint64_t v, uint64_t base)
{
	int64_t d = (int64_t)(v - base);

	put_uv(w, ((uint64_t)d << 1) ^ (uint64_t)(d >> 63));
}

/* The same for 32-bit sequence numbers (modulo 2^32). */
static void put_seq(struct wr *w, uint32_t v, uint32_t base)
{
	int32_t d = (int32_t)(v - base);

	put_uv(w, ((uint32_t)d << 1) ^ (uint32_t)(d >> 31));
}

/* ---- reading: the bytes are our own, written above, so no bounds ---- */

struct rdr {
	const uint8_t *p;
};

static uint8_t get_u8(struct rdr *r)
{
	return *r->p++;
}

static void get_raw(struct rdr *r, void *v, size_t n)
{
	memcpy(v, r->p, n);
	r->p += n;
}

static uint64_t get_uv(struct rdr *r)
{
	uint64_t v = 0;
	unsigned sh = 0;
	uint8_t b;

	do {
		b = *r->p++;
		v |= (uint64_t)(b & 0x7f) << sh;
		sh += 7;
	} while (b & 0x80);
	return v;
}

static uint64_t get_delta(struct rdr *r, uint64_t base)
{
	uint64_t z = get_uv(r);

	return base + ((z >> 1) ^ (uint64_t)-(int64_t)(z & 1));
}

static uint32_t get_seq(struct rdr *r, uint32_t base)
{
	uint32_t z = (uint32_t)get_uv(r);

	return base + ((z >> 1) ^ (uint32_t)-(int32_t)(z & 1));
}

/* ---- one endpoint ---- */

/* Fields that are zero until something happens are left out, a bit each. */
enum {
	Z_LAST_NS = 1u << 0, Z_SINCE_NS = 1u << 1, Z_CTL_TX_NS = 1u << 2,
	Z_SND_NXT = 1u << 3, Z_MAX_ACK = 1u << 4, Z_FIN_SEQ = 1u << 5,
	Z_LAST_SIG = 1u << 6,
	Z_ALL = 1u << 7,     /* every field is zero (an endpoint never heard from) */
};

static bool peer_is_zero(const struct peer *pe)
{
	static const struct peer zero;

	return memcmp(pe, &zero, sizeof(zero)) == 0;
}

/* Where the endpoint's next sequence number usually is: after its SYN and
 * the bytes it sent; its FIN is just before that (then the FIN's own octet). */
static uint32_t snd_nxt_guess(const struct peer *pe)
{
	return pe->isn + 1 + (uint32_t)pe->bytes;
}

static void pack_peer(struct wr *w, const struct conn *c, int r)
{
	const struct peer *pe = &c->peer[r];
	uint8_t z = (uint8_t)((pe->last_ns ? 0 : Z_LAST_NS) | (pe->since_ns ? 0 : Z_SINCE_NS) |
			      (pe->ctl_tx_ns ? 0 : Z_CTL_TX_NS) | (pe->snd_nxt ? 0 : Z_SND_NXT) |
			      (pe->max_ack ? 0 : Z_MAX_ACK) | (pe->fin_seq ? 0 : Z_FIN_SEQ) |
			      (pe->last_sig ? 0 : Z_LAST_SIG));
	uint8_t small[6] = { (uint8_t)(pe->bits >> 8), pe->state, pe->wscale, pe->prev_state,
			     pe->last_flags, pe->pend_kind };

	if (peer_is_zero(pe)) {
		put_u8(w, Z_ALL);
		return;
	}
	put_u8(w, z);
	put_uv(w, pe->packets);
	put_uv(w, pe->bytes);
	put_delta(w, pe->since_bytes, pe->bytes);
	if (pe->last_ns)
		put_delta(w, pe->last_ns, c->last_ns);
	if (pe->since_ns)
		put_delta(w, pe->since_ns, pe->last_ns);
	if (pe->ctl_tx_ns)
		put_delta(w, pe->ctl_tx_ns, pe->since_ns);
	if (pe->last_sig)
		put_raw(w, &pe->last_sig, sizeof(pe->last_sig));
	if (pe->snd_nxt)
		put_seq(w, pe->snd_nxt, snd_nxt_guess(pe));
	if (pe->fin_seq)
		put_seq(w, pe->fin_seq, pe->snd_nxt - 1);
	put_uv(w, pe->max_win);
	put_uv(w, pe->unanswered);
	put_uv(w, pe->rtt_us);
	put_u8(w, (uint8_t)pe->bits);
	put_raw(w, small, sizeof(small));
}

static void unpack_peer(struct rdr *rd, struct conn *c, int r)
{
	struct peer *pe = &c->peer[r];
	uint8_t z = get_u8(rd), small[6];

	if (z & Z_ALL)
		return; /* the record is zeroed */
	pe->packets = get_uv(rd);
	pe->bytes = get_uv(rd);
	pe->since_bytes = get_delta(rd, pe->bytes);
	pe->last_ns = (z & Z_LAST_NS) ? 0 : get_delta(rd, c->last_ns);
	pe->since_ns = (z & Z_SINCE_NS) ? 0 : get_delta(rd, pe->last_ns);
	pe->ctl_tx_ns = (z & Z_CTL_TX_NS) ? 0 : get_delta(rd, pe->since_ns);
	if (!(z & Z_LAST_SIG))
		get_raw(rd, &pe->last_sig, sizeof(pe->last_sig));
	pe->snd_nxt = (z & Z_SND_NXT) ? 0 : get_seq(rd, snd_nxt_guess(pe));
	pe->fin_seq = (z & Z_FIN_SEQ) ? 0 : get_seq(rd, pe->snd_nxt - 1);
	/* max_ack comes after both endpoints: it is near the peer's snd_nxt */
	if (!(z & Z_MAX_ACK))
		pe->max_ack = 1;
	pe->max_win = (uint32_t)get_uv(rd);
	pe->unanswered = (uint32_t)get_uv(rd);
	pe->rtt_us = (uint32_t)get_uv(rd);
	pe->bits = get_u8(rd);
	get_raw(rd, small, sizeof(small));
	pe->bits |= (uint16_t)(small[0] << 8);
	pe->state = small[1];
	pe->wscale = small[2];
	pe->prev_state = small[3];
	pe->last_flags = small[4];
	pe->pend_kind = small[5];
}

/* ---- Zeek's model: sequence numbers from the endpoint's ISN ---- */

/* Zeek's last_time is microseconds after the first packet, usually the
 * connection's own last packet. */
static uint32_t last_time_guess(const struct conn *c)
{
	return (uint32_t)((c->last_ns - c->first_ns) / 1000);
}

static void pack_zeek(struct wr *w, const struct conn *c)
{
	const struct zeek_conn *z = &c->zeek;

	uint8_t nz = 0;
	unsigned hist_n = 0;

	for (int r = 0; r < 2; r++) {
		put_seq(w, z->start_seq[r], c->peer[r].isn);
		put_seq(w, z->last_seq[r], c->peer[r].snd_nxt);
		put_seq(w, z->rcv_seq[r], z->last_seq[r]);
		put_seq(w, z->hdr_bytes[r], 52 * (uint32_t)c->peer[r].packets); /* IPv4 + TCP with timestamps */
		put_uv(w, z->rxmt[r]);
		put_uv(w, z->rst_seq[r]);
		put_uv(w, z->copies[r]);
		put_u8(w, z->win0[r]);
		put_u8(w, z->gaps[r]);
		put_u8(w, z->ep[r]);
	}
	/* flag counts: which of the eight are not zero, then those */
	for (int i = 0; i < 2 * ZFC_COUNT; i++)
		if (z->nflags[i / ZFC_COUNT][i % ZFC_COUNT])
			nz |= (uint8_t)(1u << i);
	put_u8(w, nz);
	for (int i = 0; i < 2 * ZFC_COUNT; i++)
		if (nz & (1u << i))
			put_u8(w, z->nflags[i / ZFC_COUNT][i % ZFC_COUNT]);
	put_uv(w, z->missed_bytes);
	put_seq(w, z->last_time, last_time_guess(c));
	put_uv(w, z->seen);
	/* the history: its bytes up to the last one in use, then the last byte */
	for (unsigned i = 0; i + 1 < sizeof(z->hist); i++)
		if (z->hist[i])
			hist_n = i + 1;
	put_u8(w, (uint8_t)hist_n);
	put_raw(w, z->hist, hist_n);
	put_u8(w, z->hist[sizeof(z->hist) - 1]);
}

static void unpack_zeek(struct rdr *rd, struct conn *c)
{
	struct zeek_conn *z = &c->zeek;

	uint8_t nz;
	unsigned hist_n;

	for (int r = 0; r < 2; r++) {
		z->start_seq[r] = get_seq(rd, c->peer[r].isn);
		z->last_seq[r] = get_seq(rd, c->peer[r].snd_nxt);
		z->rcv_seq[r] = get_seq(rd, z->last_seq[r]);
		z->hdr_bytes[r] = get_seq(rd, 52 * (uint32_t)c->peer[r].packets);
		z->rxmt[r] = (uint16_t)get_uv(rd);
		z->rst_seq[r] = (uint16_t)get_uv(rd);
		z->copies[r] = (uint16_t)get_uv(rd);
		z->win0[r] = get_u8(rd);
		z->gaps[r] = get_u8(rd);
		z->ep[r] = get_u8(rd);
	}
	nz = get_u8(rd);
	for (int i = 0; i < 2 * ZFC_COUNT; i++)
		if (nz & (1u << i))
			z->nflags[i / ZFC_COUNT][i % ZFC_COUNT] = get_u8(rd);
	z->missed_bytes = (uint32_t)get_uv(rd);
	z->last_time = get_seq(rd, last_time_guess(c));
	z->seen = (uint16_t)get_uv(rd);
	hist_n = get_u8(rd);
	get_raw(rd, z->hist, hist_n);
	z->hist[sizeof(z->hist) - 1] = get_u8(rd);
}

/* ---- the timeline: each change from the one before ---- */

/* First byte of a transition: who, whether it has a packet, and whether the
 * rest is plain bytes (values too large for the short form). */
enum { T_SERVER = 1u << 0, T_NO_PACKET = 1u << 1, T_PLAIN = 1u << 2 };

static void pack_timeline(struct wr *w, const struct conn *c)
{
	uint64_t prev_ts = c->first_ns;

	put_uv(w, c->tl ? (uint64_t)c->tl_cap + 1 : 0);
	if (!c->tl)
		return;
	put_uv(w, c->tl_len);
	for (uint32_t i = 0; i < c->tl_len; i++) {
		const struct transition *t = &c->tl[i];
		bool plain = t->side > 1 || t->from > 15 || t->to > 15 || t->cause > 31;
		uint8_t k = (uint8_t)((t->side == 1 ? T_SERVER : 0) | (t->packet ? 0 : T_NO_PACKET) |
				      (plain ? T_PLAIN : 0) | (plain ? 0 : t->cause << 3));

		put_u8(w, k);
		if (plain) {
			uint8_t b[4] = { t->side, t->from, t->to, t->cause };

			put_raw(w, b, sizeof(b));
		} else {
			put_u8(w, (uint8_t)(t->from | t->to << 4));
		}
		put_u8(w, t->tcp_flags);
		put_delta(w, t->ts_ns, prev_ts);
		if (t->packet)
			put_delta(w, t->packet, c->first_packet);
		prev_ts = t->ts_ns;
	}
}

static bool unpack_timeline(struct rdr *rd, struct conn *c)
{
	uint64_t cap1 = get_uv(rd), prev_ts = c->first_ns;

	if (!cap1)
		return true;
	c->tl_cap = (uint32_t)(cap1 - 1);
	c->tl_len = (uint32_t)get_uv(rd);
	c->tl = malloc((c->tl_cap ? c->tl_cap : 1) * sizeof(*c->tl));
	if (!c->tl)
		return false;
	for (uint32_t i = 0; i < c->tl_len; i++) {
		struct transition *t = &c->tl[i];
		uint8_t k = get_u8(rd);

		memset(t, 0, sizeof(*t));
		if (k & T_PLAIN) {
			uint8_t b[4];

			get_raw(rd, b, sizeof(b));
			t->side = b[0];
			t->from = b[1];
			t->to = b[2];
			t->cause = b[3];
		} else {
			uint8_t ft = get_u8(rd);

			t->side = (k & T_SERVER) ? 1 : 0;
			t->from = ft & 15;
			t->to = ft >> 4;
			t->cause = k >> 3;
		}
		t->tcp_flags = get_u8(rd);
		t->ts_ns = get_delta(rd, prev_ts);
		t->packet = (k & T_NO_PACKET) ? 0 : get_delta(rd, c->first_packet);
		prev_ts = t->ts_ns;
	}
	return true;
}

/* ---- the key: an IPv4 one in 13 bytes instead of 40 ---- */

enum { KEY_V4 = 4, KEY_PLAIN = 0xff };

static void pack_key(struct wr *w, const struct flow_key *k)
{
	static const uint8_t zero[12];
	bool v4 = k->family == 4 && !memcmp(k->addr[0] + 4, zero, 12) &&
		  !memcmp(k->addr[1] + 4, zero, 12) && !memcmp(k->pad, zero, sizeof(k->pad));

	if (!v4) {
		put_u8(w, KEY_PLAIN);
		put_raw(w, k, sizeof(*k));
		return;
	}
	put_u8(w, KEY_V4);
	put_raw(w, k->addr[0], 4);
	put_raw(w, k->addr[1], 4);
	put_raw(w, k->port, sizeof(k->port));
}

static void unpack_key(struct rdr *rd, struct flow_key *k)
{
	if (get_u8(rd) == KEY_PLAIN) {
		get_raw(rd, k, sizeof(*k));
		return;
	}
	memset(k, 0, sizeof(*k));
	k->family = 4;
	get_raw(rd, k->addr[0], 4);
	get_raw(rd, k->addr[1], 4);
	get_raw(rd, k->port, sizeof(k->port));
}

/* ---- the whole connection ---- */

/* Pack into a buffer first and allocate the exact size after: allocating
 * the upper bound and shrinking it would leave a hole behind every record
 * that the next one, asking for the bound again, cannot use. */
#define STACK_TRANSITIONS 64

struct frozen_conn *conn_freeze(const struct conn *c)
{
	uint32_t tl_len = c->tl ? c->tl_len : 0;
	size_t bound = FIXED_MAX + (size_t)tl_len * TRANSITION_MAX;
	uint8_t stack_buf[FIXED_MAX + STACK_TRANSITIONS * TRANSITION_MAX];
	uint8_t *buf = stack_buf;
	struct frozen_conn *f = NULL;
	struct wr w;

	if (c->rare)
		return NULL;
	if (bound > sizeof(stack_buf) && !(buf = malloc(bound)))
		return NULL;
	w.p = buf;
	pack_key(&w, &c->key);      /* first the key, then the id: read without the rest */
	put_uv(&w, c->id);
	put_delta(&w, c->first_ns, c->last_ns);
	put_uv(&w, c->first_packet);
	put_uv(&w, c->flags);
	put_uv(&w, c->anomalies);
	put_uv(&w, c->missed_bytes);
	put_u8(&w, c->client_is_0);
	put_raw(&w, &c->peer[0].isn, sizeof(uint32_t));
	put_raw(&w, &c->peer[1].isn, sizeof(uint32_t));
	pack_peer(&w, c, 0);
	pack_peer(&w, c, 1);
	for (int r = 0; r < 2; r++)
		if (c->peer[r].max_ack)
			put_seq(&w, c->peer[r].max_ack, c->peer[!r].snd_nxt);
	pack_zeek(&w, c);
	pack_timeline(&w, c);
	f = malloc(sizeof(*f) + (size_t)(w.p - buf));
	if (f) {
		f->last_ns = c->last_ns;
		memcpy(f->data, buf, (size_t)(w.p - buf));
	}
	if (buf != stack_buf)
		free(buf);
	return f;
}

bool conn_thaw(const struct frozen_conn *f, struct conn *c)
{
	struct rdr rd = { f->data };

	unpack_key(&rd, &c->key);
	c->last_ns = f->last_ns;
	c->id = get_uv(&rd);
	c->first_ns = get_delta(&rd, c->last_ns);
	c->first_packet = get_uv(&rd);
	c->flags = (uint32_t)get_uv(&rd);
	c->anomalies = (uint32_t)get_uv(&rd);
	c->missed_bytes = get_uv(&rd);
	c->client_is_0 = get_u8(&rd);
	get_raw(&rd, &c->peer[0].isn, sizeof(uint32_t));
	get_raw(&rd, &c->peer[1].isn, sizeof(uint32_t));
	unpack_peer(&rd, c, 0);
	unpack_peer(&rd, c, 1);
	for (int r = 0; r < 2; r++)
		if (c->peer[r].max_ack) /* 1: present, see unpack_peer() */
			c->peer[r].max_ack = get_seq(&rd, c->peer[!r].snd_nxt);
	unpack_zeek(&rd, c);
	return unpack_timeline(&rd, c);
}

void frozen_conn_key(const struct frozen_conn *f, struct flow_key *k)
{
	struct rdr rd = { f->data };

	unpack_key(&rd, k);
}

uint64_t frozen_conn_id(const struct frozen_conn *f)
{
	struct rdr rd = { f->data };
	struct flow_key k;

	unpack_key(&rd, &k);
	return get_uv(&rd);
}

void frozen_conn_destroy(struct frozen_conn *f)
{
	free(f);
}
