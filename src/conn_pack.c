/* conn_pack.c - packing an idle connection into bytes and back. Every field
 * of struct conn, struct peer and struct zeek_conn is written, most as a
 * varint of its difference from a field it is usually close to: times from
 * the connection's last packet or the endpoint's own times, sequence numbers
 * from the endpoint's ISN, byte counts from each other; a time equal to
 * another (a state began with the peer's last segment) as a 2-bit reference,
 * counters that are zero as a bit. A TIME_WAIT record shrinks from 448 bytes
 * to about 104 (136 with its header, the idle node); last_sig is left out
 * once no copy of the endpoint's last segment can come (conn_pack.h). */
#include <stdlib.h>
#include <string.h>

#include "conn_pack.h"
#include "conn_pool.h"

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

/* v - base, which may be negative, zigzag-folded so that small ones of
 * either sign are small; and back. */
static uint64_t fold(uint64_t v, uint64_t base)
{
	int64_t d = (int64_t)(v - base);

	return ((uint64_t)d << 1) ^ (uint64_t)(d >> 63);
}

static uint64_t unfold(uint64_t z, uint64_t base)
{
	return base + ((z >> 1) ^ (uint64_t)-(int64_t)(z & 1));
}

/* A difference that may be negative, folded so small ones are short. */
static void put_delta(struct wr *w, uint64_t v, uint64_t base)
{
	put_uv(w, fold(v, base));
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
	uint64_t v;
	unsigned sh = 7;
	uint8_t b = *r->p++;

	/* Most values are small counters and deltas: one byte, no loop. */
	if (b < 0x80)
		return b;
	v = b & 0x7f;
	do {
		b = *r->p++;
		v |= (uint64_t)(b & 0x7f) << sh;
		sh += 7;
	} while (b & 0x80);
	return v;
}

static uint64_t get_delta(struct rdr *r, uint64_t base)
{
	return unfold(get_uv(r), base);
}

static uint32_t get_seq(struct rdr *r, uint32_t base)
{
	uint32_t z = (uint32_t)get_uv(r);

	return base + ((z >> 1) ^ (uint32_t)-(int32_t)(z & 1));
}

/* ---- one endpoint ---- */

/* What is in an endpoint's record: two bytes (one when P_ALL), low first.
 * Fields that are zero until something happens are left out; its times are
 * coded after both endpoints (pack_times) as a choice of where they come
 * from; its small fields take four bytes unless one is too large (P_RAW). */
enum {
	P_ALL = 1u << 0,       /* every field is zero (an endpoint never heard from) */
	P_LAST_NS = 1u << 1,
	P_SINCE = 3u << 2,     /* enum since_code */
	P_CTL = 3u << 4,       /* enum ctl_code */
	P_SND_NXT = 1u << 6,
	P_MAX_ACK = 1u << 7,
	P_FIN_SEQ = 1u << 8,
	P_SIG = 1u << 9,       /* last_sig kept (see conn_freeze) */
	P_RAW = 1u << 10,      /* the small fields as plain bytes */
	P_BITS_HI = 3u << 11,  /* bits 8-9 of bits, unless P_RAW */
	P_UNANS_SMALL = 1u << 13, /* unanswered is 0 or 1, P_UNANS_ONE says which (no varint) */
	P_UNANS_ONE = 1u << 14,
};
#define P_SINCE_SHIFT 2
#define P_CTL_SHIFT 4
#define P_BITS_SHIFT 11

/* When the current state began: usually with the peer's last segment
 * (which made it change), else near its own last segment. */
enum since_code { SINCE_ZERO, SINCE_PEER_LAST, SINCE_NEAR_LAST, SINCE_OWN_LAST };

/* When it last sent its SYN/FIN: usually its own last segment, or what
 * began the peer's state (the peer changed on receiving it). */
enum ctl_code { CTL_ZERO, CTL_OWN_LAST, CTL_PEER_SINCE, CTL_NEAR_SINCE };

/* Whether the n bytes at p (a multiple of 8) are all zero, word by word: a
 * flood packs a silent endpoint with every SYN, and a memcmp() call against
 * a zero record cost more than this. */
static bool words_zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t any = 0;

	for (size_t i = 0; i < n; i += 8) {
		uint64_t w;

		memcpy(&w, b + i, 8);
		any |= w;
	}
	return any == 0;
}

static bool peer_is_zero(const struct peer *pe)
{
	return words_zero(pe, sizeof(*pe));
}

/* Where the endpoint's next sequence number usually is: after its SYN and
 * the bytes it sent; its FIN is just before that (then the FIN's own octet). */
static uint32_t snd_nxt_guess(const struct peer *pe)
{
	return pe->isn + 1 + (uint32_t)pe->bytes;
}

static uint16_t peer_code(const struct conn *c, int r, bool keep_sig)
{
	const struct peer *pe = &c->peer[r], *o = &c->peer[!r];
	unsigned since, ctl;
	bool raw = (pe->bits >> 10) || pe->state > 15 || pe->prev_state > 15 ||
		   pe->wscale > 15 || pe->pend_kind > 15;

	if (peer_is_zero(pe))
		return P_ALL;
	since = !pe->since_ns ? SINCE_ZERO :
		pe->since_ns == o->last_ns ? SINCE_PEER_LAST :
		pe->since_ns == pe->last_ns ? SINCE_OWN_LAST : SINCE_NEAR_LAST;
	ctl = !pe->ctl_tx_ns ? CTL_ZERO :
	      pe->ctl_tx_ns == pe->last_ns ? CTL_OWN_LAST :
	      pe->ctl_tx_ns == o->since_ns ? CTL_PEER_SINCE : CTL_NEAR_SINCE;
	return (uint16_t)((pe->last_ns ? P_LAST_NS : 0) | since << P_SINCE_SHIFT |
			  ctl << P_CTL_SHIFT | (pe->snd_nxt ? P_SND_NXT : 0) |
			  (pe->max_ack ? P_MAX_ACK : 0) | (pe->fin_seq ? P_FIN_SEQ : 0) |
			  (pe->last_sig && keep_sig ? P_SIG : 0) |
			  (pe->unanswered <= 1 ? P_UNANS_SMALL | (pe->unanswered ? P_UNANS_ONE : 0) : 0) |
			  (raw ? P_RAW : (unsigned)(pe->bits >> 8) << P_BITS_SHIFT));
}

static void pack_peer(struct wr *w, const struct conn *c, int r, uint16_t code)
{
	const struct peer *pe = &c->peer[r];

	put_u8(w, (uint8_t)code);
	if (code & P_ALL)
		return;
	put_u8(w, (uint8_t)(code >> 8));
	put_uv(w, pe->packets);
	put_uv(w, pe->bytes);
	put_delta(w, pe->since_bytes, pe->bytes);
	if (code & P_SIG)
		put_raw(w, &pe->last_sig, sizeof(pe->last_sig));
	if (code & P_SND_NXT)
		put_seq(w, pe->snd_nxt, snd_nxt_guess(pe));
	if (code & P_FIN_SEQ)
		put_seq(w, pe->fin_seq, pe->snd_nxt - 1);
	put_uv(w, pe->max_win);
	if (!(code & P_UNANS_SMALL))
		put_uv(w, pe->unanswered);
	put_uv(w, pe->rtt_us);
	if (code & P_RAW) {
		uint8_t b[7] = { (uint8_t)pe->bits, (uint8_t)(pe->bits >> 8), pe->state,
				 pe->prev_state, pe->wscale, pe->pend_kind, pe->last_flags };

		put_raw(w, b, sizeof(b));
	} else {
		uint8_t b[4] = { (uint8_t)pe->bits, (uint8_t)(pe->state | pe->prev_state << 4),
				 (uint8_t)(pe->wscale | pe->pend_kind << 4), pe->last_flags };

		put_raw(w, b, sizeof(b));
	}
}

/* The peer's fields but its times and max_ack; its code is returned. */
static uint16_t unpack_peer(struct rdr *rd, struct conn *c, int r)
{
	struct peer *pe = &c->peer[r];
	uint16_t code = get_u8(rd);

	if (code & P_ALL)
		return code; /* the record is zeroed */
	code |= (uint16_t)(get_u8(rd) << 8);
	pe->packets = get_uv(rd);
	pe->bytes = get_uv(rd);
	pe->since_bytes = get_delta(rd, pe->bytes);
	if (code & P_SIG)
		get_raw(rd, &pe->last_sig, sizeof(pe->last_sig));
	if (code & P_SND_NXT)
		pe->snd_nxt = get_seq(rd, snd_nxt_guess(pe));
	if (code & P_FIN_SEQ)
		pe->fin_seq = get_seq(rd, pe->snd_nxt - 1);
	pe->max_win = (uint32_t)get_uv(rd);
	pe->unanswered = (code & P_UNANS_SMALL) ? (code & P_UNANS_ONE) != 0 : (uint32_t)get_uv(rd);
	pe->rtt_us = (uint32_t)get_uv(rd);
	if (code & P_RAW) {
		uint8_t b[7];

		get_raw(rd, b, sizeof(b));
		pe->bits = (uint16_t)(b[0] | b[1] << 8);
		pe->state = b[2];
		pe->prev_state = b[3];
		pe->wscale = b[4];
		pe->pend_kind = b[5];
		pe->last_flags = b[6];
	} else {
		uint8_t b[4];

		get_raw(rd, b, sizeof(b));
		pe->bits = (uint16_t)(b[0] | ((code & P_BITS_HI) >> P_BITS_SHIFT) << 8);
		pe->state = b[1] & 15;
		pe->prev_state = b[1] >> 4;
		pe->wscale = b[2] & 15;
		pe->pend_kind = b[2] >> 4;
		pe->last_flags = b[3];
	}
	return code;
}

/* Both endpoints' times and acknowledgments, which refer to each other:
 * last segments from the connection's, then when their states began, then
 * their SYN/FIN times, then max_ack from the peer's snd_nxt. */
static void pack_times(struct wr *w, const struct conn *c, const uint16_t code[2])
{
	for (int r = 0; r < 2; r++)
		if (code[r] & P_LAST_NS)
			put_delta(w, c->peer[r].last_ns, c->last_ns);
	for (int r = 0; r < 2; r++)
		if (!(code[r] & P_ALL) && (code[r] & P_SINCE) >> P_SINCE_SHIFT == SINCE_NEAR_LAST)
			put_delta(w, c->peer[r].since_ns, c->peer[r].last_ns);
	for (int r = 0; r < 2; r++)
		if (!(code[r] & P_ALL) && (code[r] & P_CTL) >> P_CTL_SHIFT == CTL_NEAR_SINCE)
			put_delta(w, c->peer[r].ctl_tx_ns, c->peer[r].since_ns);
	for (int r = 0; r < 2; r++)
		if (code[r] & P_MAX_ACK)
			put_seq(w, c->peer[r].max_ack, c->peer[!r].snd_nxt);
}

static void unpack_times(struct rdr *rd, struct conn *c, const uint16_t code[2])
{
	for (int r = 0; r < 2; r++)
		if (code[r] & P_LAST_NS)
			c->peer[r].last_ns = get_delta(rd, c->last_ns);
	for (int r = 0; r < 2; r++) {
		struct peer *pe = &c->peer[r];

		if (code[r] & P_ALL)
			continue;
		switch ((code[r] & P_SINCE) >> P_SINCE_SHIFT) {
		case SINCE_PEER_LAST: pe->since_ns = c->peer[!r].last_ns; break;
		case SINCE_NEAR_LAST: pe->since_ns = get_delta(rd, pe->last_ns); break;
		case SINCE_OWN_LAST: pe->since_ns = pe->last_ns; break;
		default: break;
		}
	}
	for (int r = 0; r < 2; r++) {
		struct peer *pe = &c->peer[r];

		if (code[r] & P_ALL)
			continue;
		switch ((code[r] & P_CTL) >> P_CTL_SHIFT) {
		case CTL_OWN_LAST: pe->ctl_tx_ns = pe->last_ns; break;
		case CTL_PEER_SINCE: pe->ctl_tx_ns = c->peer[!r].since_ns; break;
		case CTL_NEAR_SINCE: pe->ctl_tx_ns = get_delta(rd, pe->since_ns); break;
		default: break;
		}
	}
	for (int r = 0; r < 2; r++)
		if (code[r] & P_MAX_ACK)
			c->peer[r].max_ack = get_seq(rd, c->peer[!r].snd_nxt);
}

/* ---- Zeek's model: sequence numbers from the endpoint's ISN ---- */

/* Per side, which counters are not zero; side 0 also says which time
 * last_time is near, side 1 whether missed_bytes is there. */
enum {
	ZM_RXMT = 1u << 0, ZM_RST_SEQ = 1u << 1, ZM_COPIES = 1u << 2, ZM_WIN0 = 1u << 3,
	ZM_GAPS = 1u << 4,
	ZM_TIME = 3u << 5,     /* side 0: enum time_base */
	ZM_MISSED = 1u << 5,   /* side 1 */
};
#define ZM_TIME_SHIFT 5

/* Zeek's last_time stops at the segment that closed both endpoints, often
 * before the connection's last: it is one of these times, as set_last_time()
 * in zeek.c writes it. */
enum time_base { TB_CONN_LAST, TB_LAST_0, TB_LAST_1, TB_CTL_1, TB_COUNT };

static uint32_t last_time_guess(const struct conn *c, unsigned base)
{
	uint64_t ts = base == TB_LAST_0 ? c->peer[0].last_ns :
		      base == TB_LAST_1 ? c->peer[1].last_ns :
		      base == TB_CTL_1 ? c->peer[1].ctl_tx_ns : c->last_ns;
	uint64_t d = ts > c->first_ns ? ts - c->first_ns : 0;

	return d / 1000 < (1ULL << 31) ? (uint32_t)(d / 1000) :
	       (uint32_t)((1ULL << 31) | (d / 1000000 < (1ULL << 31) ? d / 1000000 : (1ULL << 31) - 1));
}

static unsigned uv_len(uint64_t v)
{
	unsigned n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static unsigned seq_len(uint32_t v, uint32_t base)
{
	int32_t d = (int32_t)(v - base);

	return uv_len(((uint32_t)d << 1) ^ (uint32_t)(d >> 31));
}

/* The history's last byte: 0x80 (its "started" bit) or 0, else plain. */
enum { H_STARTED = 0x10, H_ZERO = 0x20 };

/* Zeek's fields are all zero when the tracker never modelled them for this
 * connection (tracker_config.zeek_upto): a text run's connections that the
 * listing cannot show. One bit then stands for all of them. */
static bool zeek_is_zero(const struct zeek_conn *z)
{
	return words_zero(z, sizeof(*z));
}

static void pack_zeek(struct wr *w, const struct conn *c)
{
	const struct zeek_conn *z = &c->zeek;
	const uint8_t (*nf)[ZFC_COUNT] = z->nflags;
	unsigned hist_n = 0, base = TB_CONN_LAST, best;
	uint8_t codes[2] = { 0, 0 }, hl = z->hist[sizeof(z->hist) - 1];
	uint8_t odd[2 * ZFC_COUNT];
	unsigned n_odd = 0;
	uint64_t nfw;

	best = seq_len(z->last_time, last_time_guess(c, base));
	for (unsigned b = 1; b < TB_COUNT; b++) {
		unsigned len = seq_len(z->last_time, last_time_guess(c, b));

		if (len < best) {
			best = len;
			base = b;
		}
	}
	for (int r = 0; r < 2; r++) {
		uint8_t m = (uint8_t)((z->rxmt[r] ? ZM_RXMT : 0) | (z->rst_seq[r] ? ZM_RST_SEQ : 0) |
				      (z->copies[r] ? ZM_COPIES : 0) | (z->win0[r] ? ZM_WIN0 : 0) |
				      (z->gaps[r] ? ZM_GAPS : 0));

		if (r == 0)
			m |= (uint8_t)(base << ZM_TIME_SHIFT);
		else if (z->missed_bytes)
			m |= ZM_MISSED;
		put_u8(w, m);
		put_seq(w, z->start_seq[r], c->peer[r].isn);
		put_seq(w, z->last_seq[r], c->peer[r].snd_nxt);
		put_seq(w, z->rcv_seq[r], z->last_seq[r]);
		put_seq(w, z->hdr_bytes[r], 52 * (uint32_t)c->peer[r].packets); /* IPv4 + TCP with timestamps */
		if (m & ZM_RXMT)
			put_uv(w, z->rxmt[r]);
		if (m & ZM_RST_SEQ)
			put_uv(w, z->rst_seq[r]);
		if (m & ZM_COPIES)
			put_uv(w, z->copies[r]);
		if (m & ZM_WIN0)
			put_u8(w, z->win0[r]);
		if (m & ZM_GAPS)
			put_u8(w, z->gaps[r]);
		put_u8(w, z->ep[r]);
	}
	if (z->missed_bytes)
		put_uv(w, z->missed_bytes);
	/* flag counts, 2 bits each: 0, 1 or 2, or 3 and the count in a byte
	 * after. Usually every count is under 3 (no byte has bits above the
	 * lowest two, nor both of those): no loop then. */
	_Static_assert(sizeof(z->nflags) == 8, "nflags: eight counts");
	memcpy(&nfw, z->nflags, sizeof(nfw));
	if (!(nfw & 0xfcfcfcfcfcfcfcfcULL) && !(nfw & nfw >> 1 & 0x0101010101010101ULL)) {
		codes[0] = (uint8_t)(nf[0][0] | nf[0][1] << 2 | nf[0][2] << 4 | nf[0][3] << 6);
		codes[1] = (uint8_t)(nf[1][0] | nf[1][1] << 2 | nf[1][2] << 4 | nf[1][3] << 6);
	} else {
		for (int i = 0; i < 2 * ZFC_COUNT; i++) {
			uint8_t v = nf[i / ZFC_COUNT][i % ZFC_COUNT];

			if (v > 2)
				odd[n_odd++] = v;
			codes[i / 4] |= (uint8_t)((v > 2 ? 3 : v) << (2 * (i % 4)));
		}
	}
	put_raw(w, codes, sizeof(codes));
	put_raw(w, odd, n_odd);
	put_seq(w, z->last_time, last_time_guess(c, base));
	put_uv(w, z->seen);
	/* the history: its bytes up to the last one in use, then the last byte */
	for (unsigned i = 0; i + 1 < sizeof(z->hist); i++)
		if (z->hist[i])
			hist_n = i + 1;
	put_u8(w, (uint8_t)(hist_n | (hl == 0x80 ? H_STARTED : hl == 0 ? H_ZERO : 0)));
	put_raw(w, z->hist, hist_n);
	if (hl != 0x80 && hl != 0)
		put_u8(w, hl);
}

static void unpack_zeek(struct rdr *rd, struct conn *c)
{
	struct zeek_conn *z = &c->zeek;
	uint8_t (*nf)[ZFC_COUNT] = z->nflags;
	uint8_t m[2], codes[2], hb;
	unsigned hist_n;

	for (int r = 0; r < 2; r++) {
		m[r] = get_u8(rd);
		z->start_seq[r] = get_seq(rd, c->peer[r].isn);
		z->last_seq[r] = get_seq(rd, c->peer[r].snd_nxt);
		z->rcv_seq[r] = get_seq(rd, z->last_seq[r]);
		z->hdr_bytes[r] = get_seq(rd, 52 * (uint32_t)c->peer[r].packets);
		if (m[r] & ZM_RXMT)
			z->rxmt[r] = (uint16_t)get_uv(rd);
		if (m[r] & ZM_RST_SEQ)
			z->rst_seq[r] = (uint16_t)get_uv(rd);
		if (m[r] & ZM_COPIES)
			z->copies[r] = (uint16_t)get_uv(rd);
		if (m[r] & ZM_WIN0)
			z->win0[r] = get_u8(rd);
		if (m[r] & ZM_GAPS)
			z->gaps[r] = get_u8(rd);
		z->ep[r] = get_u8(rd);
	}
	if (m[1] & ZM_MISSED)
		z->missed_bytes = (uint32_t)get_uv(rd);
	get_raw(rd, codes, sizeof(codes));
	for (int r = 0; r < 2; r++)
		for (int k = 0; k < ZFC_COUNT; k++)
			nf[r][k] = (codes[r] >> (2 * k)) & 3;
	if ((codes[0] & codes[0] >> 1 & 0x55) | (codes[1] & codes[1] >> 1 & 0x55))
		for (int r = 0; r < 2; r++)   /* the large counts, in order */
			for (int k = 0; k < ZFC_COUNT; k++)
				if (nf[r][k] == 3)
					nf[r][k] = get_u8(rd);
	z->last_time = get_seq(rd, last_time_guess(c, (m[0] & ZM_TIME) >> ZM_TIME_SHIFT));
	z->seen = (uint16_t)get_uv(rd);
	hb = get_u8(rd);
	hist_n = hb & 15;
	get_raw(rd, z->hist, hist_n);
	z->hist[sizeof(z->hist) - 1] = (hb & H_STARTED) ? 0x80 : (hb & H_ZERO) ? 0 : get_u8(rd);
}

/* ---- the timeline: each change from the one before ---- */

/* The changes connections make most, each written as its index here in one
 * byte: the 87 (side, from, to, flags, cause, with a packet or not) that the
 * project's test and bench captures and the public corpus (tests/corpus)
 * produce, most frequent first (the share of each capture's changes, summed
 * over the captures). Any other change is written out after TL_ESCAPE. */
struct tl_common {
	uint8_t side, from, to, tcp_flags, cause, has_packet;
};

static const struct tl_common tl_common[] = {
	{ ROLE_CLIENT, TS_CLOSED, TS_SYN_SENT, TH_SYN, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_CLOSED, TS_SYN_RECEIVED, TH_SYN | TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_SYN_SENT, TS_ESTABLISHED, TH_SYN | TH_ACK, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_SYN_RECEIVED, TS_ESTABLISHED, TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_CLOSED, TS_ESTABLISHED, TH_PSH | TH_ACK, TC_PICKUP, 1 },
	{ ROLE_SERVER, TS_CLOSED, TS_ESTABLISHED, TH_PSH | TH_ACK, TC_PICKUP, 1 },
	{ ROLE_CLIENT, TS_ESTABLISHED, TS_FIN_WAIT_1, TH_FIN | TH_ACK, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_ESTABLISHED, TS_CLOSE_WAIT, TH_FIN | TH_ACK, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_LAST_ACK, TS_CLOSED, TH_ACK, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_CLOSE_WAIT, TS_LAST_ACK, TH_FIN | TH_ACK, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_ESTABLISHED, TS_FIN_WAIT_1, TH_FIN | TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_FIN_WAIT_1, TS_TIME_WAIT, TH_FIN | TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_ESTABLISHED, TS_CLOSE_WAIT, TH_FIN | TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_CLOSED, TS_ESTABLISHED, TH_ACK, TC_PICKUP, 1 },
	{ ROLE_SERVER, TS_CLOSED, TS_ESTABLISHED, TH_ACK, TC_PICKUP, 1 },
	{ ROLE_CLIENT, TS_CLOSE_WAIT, TS_LAST_ACK, TH_FIN | TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_LAST_ACK, TS_CLOSED, TH_ACK, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_FIN_WAIT_1, TS_FIN_WAIT_2, TH_ACK, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_FIN_WAIT_2, TS_TIME_WAIT, TH_FIN | TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_FIN_WAIT_1, TS_FIN_WAIT_2, TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_SYN_SENT, TS_CLOSED, TH_RST, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_CLOSED, TS_SYN_SENT, TH_SYN | TH_ACK, TC_INFERRED, 1 },
	{ ROLE_CLIENT, TS_FIN_WAIT_2, TS_TIME_WAIT, TH_FIN | TH_ACK, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_ESTABLISHED, TS_CLOSED, TH_RST | TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_ESTABLISHED, TS_CLOSED, TH_RST | TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_SYN_SENT, TS_CLOSED, 0, TC_TIMEOUT, 0 },
	{ ROLE_CLIENT, TS_CLOSED, TS_SYN_SENT, TH_SYN | TH_ECE | TH_CWR, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_SYN_SENT, TS_CLOSED, TH_RST | TH_ACK, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_FIN_WAIT_1, TS_TIME_WAIT, TH_FIN | TH_ACK, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_ESTABLISHED, TS_CLOSED, TH_RST, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_CLOSED, TS_ESTABLISHED, TH_ACK, TC_INFERRED, 1 },
	{ ROLE_SERVER, TS_SYN_RECEIVED, TS_ESTABLISHED, TH_PSH | TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_SYN_SENT, TS_ESTABLISHED, TH_ACK, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_CLOSED, TS_SYN_RECEIVED, TH_SYN | TH_ACK | TH_ECE, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_SYN_SENT, TS_ESTABLISHED, TH_SYN | TH_ACK | TH_ECE, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_CLOSE_WAIT, TS_ESTABLISHED, TH_FIN | TH_ACK, TC_CROSSED, 1 },
	{ ROLE_SERVER, TS_FIN_WAIT_1, TS_CLOSING, TH_FIN | TH_ACK, TC_CROSSED, 1 },
	{ ROLE_CLIENT, TS_FIN_WAIT_1, TS_CLOSING, TH_FIN | TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_ESTABLISHED, TS_CLOSED, TH_RST, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_ESTABLISHED, TS_FIN_WAIT_1, TH_FIN | TH_PSH | TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_ESTABLISHED, TS_CLOSE_WAIT, TH_FIN | TH_PSH | TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_FIN_WAIT_1, TS_FIN_WAIT_2, TH_PSH | TH_ACK, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_SYN_RECEIVED, TS_CLOSED, 0, TC_TIMEOUT, 0 },
	{ ROLE_SERVER, TS_CLOSED, TS_SYN_RECEIVED, TH_SYN | TH_ACK | TH_CWR, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_SYN_SENT, TS_ESTABLISHED, TH_SYN | TH_ACK | TH_CWR, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_SYN_RECEIVED, TS_ESTABLISHED, TH_ACK | TH_CWR, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_SYN_RECEIVED, TS_CLOSED, TH_RST, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_CLOSED, TS_SYN_RECEIVED, TH_ACK, TC_INFERRED, 1 },
	{ ROLE_CLIENT, TS_TIME_WAIT, TS_CLOSED, 0, TC_TIMEOUT, 0 },
	{ ROLE_SERVER, TS_TIME_WAIT, TS_CLOSED, 0, TC_TIMEOUT, 0 },
	{ ROLE_SERVER, TS_SYN_RECEIVED, TS_CLOSE_WAIT, TH_FIN | TH_ACK, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_CLOSE_WAIT, TS_CLOSED, TH_RST, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_FIN_WAIT_1, TS_CLOSED, TH_RST, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_ESTABLISHED, TS_FIN_WAIT_1, TH_FIN | TH_PSH | TH_ACK, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_ESTABLISHED, TS_CLOSE_WAIT, TH_FIN | TH_PSH | TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_CLOSING, TS_TIME_WAIT, TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_CLOSE_WAIT, TS_ESTABLISHED, TH_FIN | TH_PSH | TH_ACK, TC_REVERT, 1 },
	{ ROLE_SERVER, TS_FIN_WAIT_1, TS_CLOSED, TH_RST, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_CLOSED, TS_ESTABLISHED, TH_FIN | TH_ACK, TC_PICKUP, 1 },
	{ ROLE_SERVER, TS_CLOSED, TS_ESTABLISHED, TH_FIN | TH_ACK, TC_PICKUP, 1 },
	{ ROLE_SERVER, TS_CLOSE_WAIT, TS_LAST_ACK, TH_FIN | TH_PSH | TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_FIN_WAIT_2, TS_TIME_WAIT, TH_FIN | TH_PSH | TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_ESTABLISHED, TS_SYN_SENT, TH_SYN, TC_REVERT, 1 },
	{ ROLE_SERVER, TS_TIME_WAIT, TS_CLOSED, TH_RST, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_LAST_ACK, TS_CLOSED, TH_RST, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_CLOSED, TS_LAST_ACK, TH_FIN | TH_ACK, TC_REVERT, 1 },
	{ ROLE_CLIENT, TS_CLOSING, TS_FIN_WAIT_1, TH_FIN | TH_PSH | TH_ACK, TC_REVERT, 1 },
	{ ROLE_SERVER, TS_CLOSING, TS_CLOSED, TH_RST, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_CLOSING, TS_CLOSED, TH_RST, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_CLOSE_WAIT, TS_ESTABLISHED, TH_FIN | TH_PSH | TH_ACK, TC_REVERT, 1 },
	{ ROLE_SERVER, TS_ESTABLISHED, TS_CLOSE_WAIT, TH_FIN | TH_PSH | TH_ACK, TC_CONFIRMED, 1 },
	{ ROLE_SERVER, TS_CLOSING, TS_TIME_WAIT, TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_TIME_WAIT, TS_CLOSING, TH_FIN | TH_ACK, TC_REVERT, 1 },
	{ ROLE_SERVER, TS_FIN_WAIT_1, TS_FIN_WAIT_2, TH_PSH | TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_CLOSING, TS_FIN_WAIT_1, TH_FIN | TH_ACK, TC_REVERT, 1 },
	{ ROLE_CLIENT, TS_FIN_WAIT_1, TS_TIME_WAIT, TH_FIN | TH_ACK, TC_CONFIRMED, 1 },
	{ ROLE_SERVER, TS_CLOSING, TS_TIME_WAIT, TH_FIN | TH_ACK, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_TIME_WAIT, TS_CLOSING, TH_FIN | TH_ACK, TC_REVERT, 1 },
	{ ROLE_CLIENT, TS_CLOSE_WAIT, TS_CLOSED, TH_RST | TH_ACK, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_FIN_WAIT_2, TS_CLOSED, TH_RST | TH_ACK, TC_PACKET, 1 },
	{ ROLE_SERVER, TS_TIME_WAIT, TS_CLOSED, TH_RST | TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_TIME_WAIT, TS_CLOSED, TH_SYN, TC_REUSED, 1 },
	{ ROLE_SERVER, TS_TIME_WAIT, TS_CLOSED, TH_SYN, TC_REUSED, 1 },
	{ ROLE_SERVER, TS_CLOSING, TS_FIN_WAIT_1, TH_FIN | TH_ACK, TC_REVERT, 1 },
	{ ROLE_SERVER, TS_FIN_WAIT_1, TS_TIME_WAIT, TH_FIN | TH_ACK, TC_CONFIRMED, 1 },
	{ ROLE_SERVER, TS_CLOSE_WAIT, TS_CLOSED, TH_RST | TH_ACK, TC_PACKET, 1 },
	{ ROLE_CLIENT, TS_FIN_WAIT_1, TS_CLOSED, TH_RST | TH_ACK, TC_PACKET, 1 },
};

#define TL_ESCAPE 0x7f   /* the change follows in full (T_* below) */
#define TL_SAME 0x80     /* at the time and packet of the change before: one
			  * segment changed both sides, or the first change
			  * came with the connection's first packet */
_Static_assert(sizeof(tl_common) / sizeof(tl_common[0]) < TL_ESCAPE, "tl_common: one byte each");

/* A change written out: a byte of who, whether it has a packet, and whether
 * the rest is plain bytes (values too large for the short form). */
enum { T_SERVER = 1u << 0, T_NO_PACKET = 1u << 1, T_PLAIN = 1u << 2 };

/* tl_common by value: an open-addressed table of 256 (key + 1, index)
 * pairs, built at the first use (the tracker is single-threaded). */
static uint32_t tl_slot_key[256];
static uint8_t tl_slot_code[256];

static uint32_t tl_key(unsigned side, unsigned from, unsigned to, unsigned flags, unsigned cause,
		       unsigned has_packet)
{
	return (uint32_t)(side | from << 1 | to << 5 | cause << 9 | has_packet << 14 | flags << 15) + 1;
}

static unsigned tl_slot(uint32_t key)
{
	return (key * 0x9e3779b1u) >> 24;
}

static void tl_build(void)
{
	for (unsigned i = 0; i < sizeof(tl_common) / sizeof(tl_common[0]); i++) {
		const struct tl_common *e = &tl_common[i];
		uint32_t key = tl_key(e->side, e->from, e->to, e->tcp_flags, e->cause, e->has_packet);
		unsigned h = tl_slot(key);

		while (tl_slot_key[h])
			h = (h + 1) & 255;
		tl_slot_key[h] = key;
		tl_slot_code[h] = (uint8_t)i;
	}
}

/* Values too large for the short forms: written out as plain bytes. */
static bool tl_plain(const struct transition *t)
{
	return t->side > 1 || t->from > 15 || t->to > 15 || t->cause > 31;
}

/* t's index in tl_common, or TL_ESCAPE. */
static unsigned tl_code(const struct transition *t)
{
	static bool built;
	uint32_t key;
	unsigned h;

	if (!built) {
		tl_build();
		built = true;
	}
	if (tl_plain(t))
		return TL_ESCAPE;
	key = tl_key(t->side, t->from, t->to, t->tcp_flags, t->cause, t->packet != 0);
	for (h = tl_slot(key); tl_slot_key[h]; h = (h + 1) & 255)
		if (tl_slot_key[h] == key)
			return tl_slot_code[h];
	return TL_ESCAPE;
}

/* A change's time when it is not its segment's: most often where one
 * endpoint's state began (each endpoint's last change is), which the record
 * holds already; else a difference from the change before, most often
 * small. One varint: TLT_SINCE + role for the former, TLT_NEAR + the folded
 * difference for a small one; TLT_FAR and the difference after it for any
 * other, so that no difference is too large. */
enum { TLT_SINCE = 0, TLT_FAR = 2, TLT_NEAR = 3 };

static void put_tl_ts(struct wr *w, const struct conn *c, uint64_t ts, uint64_t prev)
{
	uint64_t z = fold(ts, prev);

	if (ts == c->peer[0].since_ns || ts == c->peer[1].since_ns) {
		put_u8(w, (uint8_t)(TLT_SINCE + (ts == c->peer[0].since_ns ? 0 : 1)));
	} else if (z < (uint64_t)1 << 62) {
		put_uv(w, TLT_NEAR + z);
	} else {
		put_u8(w, TLT_FAR);
		put_uv(w, z);
	}
}

static uint64_t get_tl_ts(struct rdr *rd, const struct conn *c, uint64_t prev)
{
	uint64_t v = get_uv(rd);

	if (v < TLT_FAR)
		return c->peer[v].since_ns;
	if (v == TLT_FAR)
		return get_delta(rd, prev);
	return unfold(v - TLT_NEAR, prev);
}

static void pack_timeline(struct wr *w, const struct conn *c)
{
	uint64_t prev_ts = c->first_ns, prev_packet = c->first_packet;

	if (!c->tl)
		return; /* K_TIMELINE says so */
	put_uv(w, c->tl_cap);
	put_uv(w, c->tl_len);
	for (uint32_t i = 0; i < c->tl_len; i++) {
		const struct transition *t = &c->tl[i];
		unsigned code = tl_code(t);
		bool same = t->ts_ns == prev_ts && (!t->packet || t->packet == prev_packet);

		put_u8(w, (uint8_t)(code | (same ? TL_SAME : 0)));
		if (code == TL_ESCAPE) {
			bool plain = tl_plain(t);

			put_u8(w, (uint8_t)((t->side == 1 ? T_SERVER : 0) | (t->packet ? 0 : T_NO_PACKET) |
					    (plain ? T_PLAIN : 0) | (plain ? 0 : t->cause << 3)));
			if (plain)
				put_raw(w, (uint8_t[]){ t->side, t->from, t->to, t->cause }, 4);
			else
				put_u8(w, (uint8_t)(t->from | t->to << 4));
			put_u8(w, t->tcp_flags);
		}
		if (!same) {
			put_tl_ts(w, c, t->ts_ns, prev_ts);
			if (t->packet)
				put_delta(w, t->packet, prev_packet);
		}
		prev_ts = t->ts_ns;
		if (t->packet)
			prev_packet = t->packet;
	}
}

static bool unpack_timeline(struct rdr *rd, struct conn *c)
{
	uint64_t prev_ts = c->first_ns, prev_packet = c->first_packet;

	c->tl_cap = (uint32_t)get_uv(rd);
	c->tl_len = (uint32_t)get_uv(rd);
	c->tl = conn_tl_alloc(c, c->tl_cap);
	if (!c->tl)
		return false;
	for (uint32_t i = 0; i < c->tl_len; i++) {
		struct transition *t = &c->tl[i];
		uint8_t code = get_u8(rd);
		bool has_packet;

		memset(t, 0, sizeof(*t));
		if ((code & ~TL_SAME) != TL_ESCAPE) {
			const struct tl_common *e = &tl_common[code & ~TL_SAME];

			t->side = e->side;
			t->from = e->from;
			t->to = e->to;
			t->tcp_flags = e->tcp_flags;
			t->cause = e->cause;
			has_packet = e->has_packet;
		} else {
			uint8_t k = get_u8(rd);

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
			has_packet = !(k & T_NO_PACKET);
		}
		if (code & TL_SAME) {
			t->ts_ns = prev_ts;
			t->packet = has_packet ? prev_packet : 0;
		} else {
			t->ts_ns = get_tl_ts(rd, c, prev_ts);
			t->packet = has_packet ? get_delta(rd, prev_packet) : 0;
		}
		prev_ts = t->ts_ns;
		if (t->packet)
			prev_packet = t->packet;
	}
	return true;
}

/* ---- the key: an IPv4 one in 13 bytes instead of 40 ---- */

/* The first byte: the key's form, and what of the connection's own fields
 * is there or short. */
enum {
	K_V4 = 1u << 0,          /* the key is IPv4: 12 bytes follow, else all 40 */
	K_CLIENT_0 = 1u << 1,    /* client_is_0 is 1 (else 0, or plain: K_CLIENT_RAW) */
	K_CLIENT_RAW = 1u << 2,
	K_ANOMALIES = 1u << 3,
	K_MISSED = 1u << 4,
	K_TIMELINE = 1u << 5,
	K_LONE = 1u << 6,        /* a lone SYN, packed short (below) */
	K_LONE_SIG = 1u << 7,    /* with its last_sig */
	K_NO_ZEEK = 1u << 7,     /* not K_LONE: Zeek's fields are all zero (not modelled) */
};

static bool key_is_v4(const struct flow_key *k)
{
	uint64_t a8, b8;
	uint32_t a4, b4, pad = 0;

	/* bytes 4-15 of each address, and the padding, all zero */
	memcpy(&a4, k->addr[0] + 4, 4);
	memcpy(&a8, k->addr[0] + 8, 8);
	memcpy(&b4, k->addr[1] + 4, 4);
	memcpy(&b8, k->addr[1] + 8, 8);
	memcpy(&pad, k->pad, sizeof(k->pad));
	return k->family == 4 && !(a4 | b4 | pad | a8 | b8);
}

static void pack_key(struct wr *w, const struct flow_key *k, uint8_t first)
{
	put_u8(w, first);
	if (!(first & K_V4)) {
		put_raw(w, k, sizeof(*k));
		return;
	}
	put_raw(w, k->addr[0], 4);
	put_raw(w, k->addr[1], 4);
	put_raw(w, k->port, sizeof(k->port));
}

static uint8_t unpack_key(struct rdr *rd, struct flow_key *k)
{
	uint8_t first = get_u8(rd);

	if (!(first & K_V4)) {
		get_raw(rd, k, sizeof(*k));
		return first;
	}
	memset(k, 0, sizeof(*k));
	k->family = 4;
	get_raw(rd, k->addr[0], 4);
	get_raw(rd, k->addr[1], 4);
	get_raw(rd, k->port, sizeof(k->port));
	return first;
}

/* last_ns from the node's since_ns, which is when the connection joined its
 * idle list: its last activity, or later (a sweep looked at it then), so
 * usually one byte. The record's header is the node and nothing else. */
static void put_last(struct wr *w, const struct conn *c)
{
	put_delta(w, c->last_ns, c->node.since_ns);
}

static uint64_t get_last(struct rdr *rd, const struct frozen_conn *f)
{
	return get_delta(rd, f->node.since_ns);
}

/* ---- a lone SYN: a flood's millions, in a third of the bytes ---- */

/* What varies between connections that are one SYN and nothing else: the
 * rest of the record follows from these (lone_fill). Whether a connection
 * is one is not decided from its fields one by one: the record lone_fill
 * makes from these values is compared with the connection, whole, and only
 * an exact match is packed short. So a field that the tracker or Zeek's
 * model sets differently one day only sends such connections the long way. */
struct lone {
	uint64_t ts, id, first_packet, sig;
	uint32_t flags, isn, max_win, tl_cap;
	uint8_t client_is_0, bits, wscale, tcp_flags, hdr_bytes, ep, seen, hist;
};

/* c zeroed but its key: the lone SYN v describes. */
static void lone_fill(struct conn *c, const struct lone *v)
{
	struct peer *pe = &c->peer[ROLE_CLIENT];
	struct zeek_conn *z = &c->zeek;

	c->last_ns = c->first_ns = pe->last_ns = pe->since_ns = pe->ctl_tx_ns = v->ts;
	c->id = v->id;
	c->first_packet = v->first_packet;
	c->flags = v->flags;
	c->client_is_0 = v->client_is_0;
	pe->packets = 1;
	pe->unanswered = 1;
	pe->last_sig = v->sig;
	pe->isn = v->isn;
	pe->snd_nxt = v->isn + 1;
	pe->max_win = v->max_win;
	pe->bits = v->bits;
	pe->state = TS_SYN_SENT;
	pe->wscale = v->wscale;
	pe->last_flags = v->tcp_flags;
	/* A modelled SYN has its letter in Zeek's history: without one, Zeek's
	 * fields were not modelled and are all zero (zeek_is_zero). */
	if (!v->hist)
		return;
	z->start_seq[ROLE_CLIENT] = v->isn;
	z->last_seq[ROLE_CLIENT] = z->rcv_seq[ROLE_CLIENT] = v->isn + 1;
	z->hdr_bytes[ROLE_CLIENT] = v->hdr_bytes;
	z->seen = v->seen;
	z->ep[ROLE_CLIENT] = v->ep;
	z->nflags[ROLE_CLIENT][ZFC_SYN] = 1;
	z->hist[0] = v->hist;
	z->hist[sizeof(z->hist) - 1] = 0x80;
}

/* The timeline of a lone SYN: its one change. */
static struct transition lone_change(const struct lone *v)
{
	return (struct transition){ .ts_ns = v->ts, .packet = v->first_packet, .side = ROLE_CLIENT,
				    .from = TS_CLOSED, .to = TS_SYN_SENT, .tcp_flags = v->tcp_flags,
				    .cause = TC_PACKET };
}

static bool same_change(const struct transition *a, const struct transition *b)
{
	return a->ts_ns == b->ts_ns && a->packet == b->packet && a->side == b->side &&
	       a->from == b->from && a->to == b->to && a->tcp_flags == b->tcp_flags &&
	       a->cause == b->cause;
}

/* Whether c is a lone SYN, its values then in *v. keep_sig: as for
 * peer_code(); a last_sig left out does not count as a difference. */
static bool lone_match(const struct conn *c, bool keep_sig, struct lone *v)
{
	const struct peer *pe = &c->peer[ROLE_CLIENT];
	const struct zeek_conn *z = &c->zeek;
	struct conn g;

	if (pe->packets != 1 || c->peer[ROLE_SERVER].packets || c->client_is_0 > 1 ||
	    pe->bits > 0xff || z->hdr_bytes[ROLE_CLIENT] > 0xff || z->seen > 0xff ||
	    (c->tl && c->tl_len != 1))
		return false;
	*v = (struct lone){
		.ts = c->last_ns, .id = c->id, .first_packet = c->first_packet,
		.sig = keep_sig ? pe->last_sig : 0, .flags = c->flags, .isn = pe->isn,
		.max_win = pe->max_win, .tl_cap = c->tl ? c->tl_cap : 0,
		.client_is_0 = c->client_is_0, .bits = (uint8_t)pe->bits, .wscale = pe->wscale,
		.tcp_flags = pe->last_flags, .hdr_bytes = (uint8_t)z->hdr_bytes[ROLE_CLIENT],
		.ep = z->ep[ROLE_CLIENT], .seen = (uint8_t)z->seen, .hist = z->hist[0],
	};
	if (c->tl) {
		struct transition t = lone_change(v);

		if (!same_change(&c->tl[0], &t))
			return false;
	}
	memset(&g, 0, sizeof(g));
	g.key = c->key;
	lone_fill(&g, v);
	/* what conn_thaw() leaves to the caller, and what is not packed */
	g.node = c->node;
	g.pooled = c->pooled;
	g.tl_inline = c->tl_inline;
	g.tl = c->tl;
	g.tl_len = c->tl_len;
	g.tl_cap = c->tl_cap;
	g.peer[ROLE_CLIENT].last_sig = pe->last_sig;
	return memcmp(&g, c, sizeof(g)) == 0;
}

static void pack_lone(struct wr *w, const struct conn *c, const struct lone *v)
{
	pack_key(w, &c->key, (uint8_t)((key_is_v4(&c->key) ? K_V4 : 0) | K_LONE |
					(v->client_is_0 ? K_CLIENT_0 : 0) | (v->sig ? K_LONE_SIG : 0) |
					(c->tl ? K_TIMELINE : 0)));
	put_last(w, c);
	put_uv(w, v->id);
	put_uv(w, v->first_packet);
	put_uv(w, v->flags);
	put_raw(w, &v->isn, sizeof(v->isn));
	put_uv(w, v->max_win);
	put_raw(w, (uint8_t[]){ v->bits, v->wscale, v->tcp_flags, v->hdr_bytes, v->ep, v->seen,
				v->hist }, 7);
	if (v->sig)
		put_raw(w, &v->sig, sizeof(v->sig));
	if (c->tl)
		put_uv(w, v->tl_cap);
}

static bool thaw_lone(struct rdr *rd, uint8_t first, uint64_t last_ns, struct conn *c)
{
	struct lone v = { .ts = last_ns, .client_is_0 = (first & K_CLIENT_0) ? 1 : 0 };
	uint8_t b[7];

	v.id = get_uv(rd);
	v.first_packet = get_uv(rd);
	v.flags = (uint32_t)get_uv(rd);
	get_raw(rd, &v.isn, sizeof(v.isn));
	v.max_win = (uint32_t)get_uv(rd);
	get_raw(rd, b, sizeof(b));
	v.bits = b[0];
	v.wscale = b[1];
	v.tcp_flags = b[2];
	v.hdr_bytes = b[3];
	v.ep = b[4];
	v.seen = b[5];
	v.hist = b[6];
	if (first & K_LONE_SIG)
		get_raw(rd, &v.sig, sizeof(v.sig));
	lone_fill(c, &v);
	if (!(first & K_TIMELINE))
		return true;
	c->tl_cap = (uint32_t)get_uv(rd);
	if (!(c->tl = conn_tl_alloc(c, c->tl_cap)))
		return false;
	c->tl_len = 1;
	c->tl[0] = lone_change(&v);
	return true;
}

/* ---- the whole connection ---- */

/* Pack into a buffer first and allocate the exact size after: allocating
 * the upper bound and shrinking it would leave a hole behind every record
 * that the next one, asking for the bound again, cannot use. */
#define STACK_TRANSITIONS 64

struct frozen_conn *conn_freeze(const struct conn *c, struct conn_pool *pool, uint64_t now_ns)
{
	uint32_t tl_len = c->tl ? c->tl_len : 0;
	size_t bound = FIXED_MAX + (size_t)tl_len * TRANSITION_MAX;
	uint8_t stack_buf[FIXED_MAX + STACK_TRANSITIONS * TRANSITION_MAX];
	uint8_t *buf = stack_buf;
	struct frozen_conn *f = NULL;
	uint16_t code[2];
	uint8_t first;
	bool keep_sig[2];
	struct lone lone;
	struct wr w;

	if (c->rare)
		return NULL;
	for (int r = 0; r < 2; r++) {
		uint64_t last = c->peer[r].last_ns;

		keep_sig[r] = !(now_ns > last && now_ns - last >= CONN_PACK_SIG_NS);
	}
	if (lone_match(c, keep_sig[ROLE_CLIENT], &lone)) {
		w.p = buf;   /* under FIXED_MAX */
		pack_lone(&w, c, &lone);
		goto copy;
	}
	if (bound > sizeof(stack_buf) && !(buf = malloc(bound)))
		return NULL;
	for (int r = 0; r < 2; r++)
		code[r] = peer_code(c, r, keep_sig[r]);
	first = (uint8_t)((key_is_v4(&c->key) ? K_V4 : 0) |
			  (c->client_is_0 == 1 ? K_CLIENT_0 : c->client_is_0 ? K_CLIENT_RAW : 0) |
			  (c->anomalies ? K_ANOMALIES : 0) | (c->missed_bytes ? K_MISSED : 0) |
			  (c->tl ? K_TIMELINE : 0) | (zeek_is_zero(&c->zeek) ? K_NO_ZEEK : 0));
	w.p = buf;
	pack_key(&w, &c->key, first); /* the key, last_ns, the id: read without the rest */
	put_last(&w, c);
	put_uv(&w, c->id);
	put_delta(&w, c->first_ns, c->last_ns);
	put_uv(&w, c->first_packet);
	put_uv(&w, c->flags);
	if (first & K_ANOMALIES)
		put_uv(&w, c->anomalies);
	if (first & K_MISSED)
		put_uv(&w, c->missed_bytes);
	if (first & K_CLIENT_RAW)
		put_u8(&w, c->client_is_0);
	put_raw(&w, &c->peer[0].isn, sizeof(uint32_t));
	put_raw(&w, &c->peer[1].isn, sizeof(uint32_t));
	pack_peer(&w, c, 0, code[0]);
	pack_peer(&w, c, 1, code[1]);
	pack_times(&w, c, code);
	if (!(first & K_NO_ZEEK))
		pack_zeek(&w, c);
	pack_timeline(&w, c);
copy:
	f = conn_pool_alloc_packed(pool, sizeof(*f) + (size_t)(w.p - buf));
	if (f) {
		f->node.since_ns = c->node.since_ns;
		memcpy(f->data, buf, (size_t)(w.p - buf));
	}
	if (buf != stack_buf)
		free(buf);
	return f;
}

/* conn_thaw(), leaving rd after the record's last byte. */
static bool thaw_from(const struct frozen_conn *f, struct conn *c, struct rdr *rd)
{
	uint16_t code[2];
	uint8_t first = unpack_key(rd, &c->key);
	uint64_t last_ns = get_last(rd, f);

	if (first & K_LONE)
		return thaw_lone(rd, first, last_ns, c);
	c->last_ns = last_ns;
	c->id = get_uv(rd);
	c->first_ns = get_delta(rd, c->last_ns);
	c->first_packet = get_uv(rd);
	c->flags = (uint32_t)get_uv(rd);
	if (first & K_ANOMALIES)
		c->anomalies = (uint32_t)get_uv(rd);
	if (first & K_MISSED)
		c->missed_bytes = get_uv(rd);
	c->client_is_0 = (first & K_CLIENT_RAW) ? get_u8(rd) : (first & K_CLIENT_0) ? 1 : 0;
	get_raw(rd, &c->peer[0].isn, sizeof(uint32_t));
	get_raw(rd, &c->peer[1].isn, sizeof(uint32_t));
	code[0] = unpack_peer(rd, c, 0);
	code[1] = unpack_peer(rd, c, 1);
	unpack_times(rd, c, code);
	if (!(first & K_NO_ZEEK))
		unpack_zeek(rd, c);
	return (first & K_TIMELINE) ? unpack_timeline(rd, c) : true;
}

bool conn_thaw(const struct frozen_conn *f, struct conn *c)
{
	struct rdr rd = { f->data };

	return thaw_from(f, c, &rd);
}

size_t frozen_conn_size(const struct frozen_conn *f)
{
	struct rdr rd = { f->data };
	struct conn c;
	bool ok;

	memset(&c, 0, sizeof(c));
	ok = thaw_from(f, &c, &rd);
	conn_tl_free(&c, c.tl);
	return ok ? sizeof(*f) + (size_t)(rd.p - f->data) : 0;
}

void frozen_conn_key(const struct frozen_conn *f, struct flow_key *k)
{
	struct rdr rd = { f->data };

	unpack_key(&rd, k);
}

uint64_t frozen_conn_last_ns(const struct frozen_conn *f)
{
	struct rdr rd = { f->data };
	struct flow_key k;

	unpack_key(&rd, &k);
	return get_last(&rd, f);
}

uint64_t frozen_conn_id(const struct frozen_conn *f)
{
	struct rdr rd = { f->data };
	struct flow_key k;

	unpack_key(&rd, &k);
	(void)get_uv(&rd);   /* last_ns */
	return get_uv(&rd);
}

bool frozen_conn_is_lone(const struct frozen_conn *f)
{
	return (f->data[0] & K_LONE) != 0;
}

void frozen_conn_destroy(struct frozen_conn *f)
{
	conn_pool_free_packed(f);
}
