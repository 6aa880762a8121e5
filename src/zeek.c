/* zeek.c - Zeek's view of a connection, alongside tcpstate's own. Zeek keeps
 * per-endpoint states of its own (INACTIVE, SYN_SENT, ..., RESET), letters
 * in a history string and its own idea of who originated the connection;
 * conn.log users read those. This module replays each segment through a
 * model of Zeek's TCP analyzer so tcpstate can speak that vocabulary. */
#include <string.h>

#include "conn.h"
#include "tracker.h"
#include "zeek.h"

/*
 * Sources (zeek/zeek; ideas taken, no code copied):
 *   TCPS  src/packet_analysis/protocol/tcp/TCPSessionAdapter.cc (and the
 *         older TCP.cc): init_endpoint, update_history, update_window,
 *         update_last_seq, UpdateStateMachine and its Update*State helpers.
 *   TCPA  src/packet_analysis/protocol/tcp/TCP.cc: WantConnection (flip of
 *         a connection that starts without a SYN).
 *   EP    src/analyzer/protocol/tcp/TCP_Endpoint.{h,cc}: Size(),
 *         NoDataAcked(), CheckHistory (responder letters in lower case).
 *   SESS  src/session/Session.{h,cc}: CheckHistory (a letter once per
 *         hist_seen bit), ScaledHistoryEntry (again at 10, 100, ...).
 *   CONN  src/Conn.cc: FlipRoles appends '^'.
 *   REAS  src/analyzer/protocol/tcp/TCP_Reassembler.cc: AckReceived, Gap,
 *         Undelivered (content gaps, 'G', missed_bytes).
 *   MAIN  scripts/base/protocols/conn/main.zeek: conn_state(), and which
 *         columns are set when.
 *   #2191 zeek/zeek pull request 2191 and docs "Connection Handling":
 *         a connection that starts with a SYN-ACK is flipped on the second
 *         packet when that is an ACK or data; the baselines
 *         (core.conn-size-flip, core.tcp.missing-syn) show the history
 *         then reads '^' followed by the earlier letters in the other case.
 */

/* Zeek's endpoint states, numbered as Zeek numbers them (EP). */
enum zstate {
	ZS_INACTIVE, ZS_SYN_SENT, ZS_SYN_ACK_SENT, ZS_PARTIAL, ZS_ESTABLISHED, ZS_CLOSED, ZS_RESET,
};

/* struct zeek_conn.ep: state, previous state, FIN sent, data above a hole */
#define EP_STATE(b)   ((b) & 7u)
#define EP_PREV(b)    (((b) >> 3) & 7u)
#define EP_FIN        0x40u
#define EP_OOO        0x80u

/* hist_seen bits (SESS; values as Zeek's HIST_* for one side). The
 * responder's are shifted by 8 here (Zeek shifts by 16 in 32 bits). */
enum {
	HS_SYN = 0x01, HS_FIN = 0x02, HS_RST = 0x04, HS_FIN_RST = 0x08,
	HS_DATA = 0x10, HS_ACK = 0x20, HS_MULTI = 0x40,
};
#define SEEN_ORIG_IS_SERVER 0x0080u   /* Zeek's originator is tcpstate's server */
#define SEEN_HIST_OVERFLOW  0x8000u   /* more letters than hist[] holds */
_Static_assert(SEEN_ORIG_IS_SERVER == 1u << 7 && ROLE_SERVER == 1, "seen_bits() shifts the flag to a role");

/* History codes, 5 bits: 1..12 originator, 13..24 responder, 25 '^'. */
static const char letters[] = "SHADFRCTWGIQ";
#define NLETTERS 12
#define CODE_FLIP 25
#define HIST_SLOTS 19                 /* 19 x 5 bits in hist[12] */
#define HIST_STARTED_BYTE 11          /* its spare 96th bit: a segment was seen */
#define HIST_STARTED 0x80u

/* Sequence-number limit of update_last_seq for SYN/RST jumps (TCPS). */
#define TOO_LARGE_SEQ_DELTA 1048576

static unsigned ep_state(const struct zeek_conn *z, int r) { return EP_STATE(z->ep[r]); }

/* Endpoint::SetState: remember the previous state only on a change. */
static void set_state(struct zeek_conn *z, int r, unsigned st)
{
	unsigned cur = EP_STATE(z->ep[r]);

	if (cur == st)
		return;
	z->ep[r] = (uint8_t)((z->ep[r] & (EP_FIN | EP_OOO)) | (cur << 3) | st);
}

/* The role of Zeek's originator; static so the per-packet path inlines it
 * (the library is position-independent, so the exported one is a call). */
static int orig_role(const struct zeek_conn *z)
{
	return (z->seen & SEEN_ORIG_IS_SERVER) ? ROLE_SERVER : ROLE_CLIENT;
}

int zeek_orig_role(const struct conn *c)
{
	return orig_role(&c->zeek);
}

bool zeek_flipped(const struct conn *c)
{
	return orig_role(&c->zeek) == ROLE_SERVER;
}

/* ---- the history string ---- */

static unsigned hist_get(const struct zeek_conn *z, unsigned i)
{
	unsigned bit = i * 5, byte = bit / 8, sh = bit % 8;
	unsigned v = z->hist[byte] >> sh;

	if (sh > 3 && byte + 1 < sizeof(z->hist))
		v |= (unsigned)z->hist[byte + 1] << (8 - sh);
	return v & 31u;
}

/* Into slot i, which must be empty (all callers append to zeroed slots). */
static void hist_put(struct zeek_conn *z, unsigned i, unsigned code)
{
	unsigned bit = i * 5, byte = bit / 8, w = code << (bit % 8);

	z->hist[byte] |= (uint8_t)w;
	if (w >> 8)   /* never for the last slot, whose byte is the last */
		z->hist[byte + 1] |= (uint8_t)(w >> 8);
}

/* Letters in use. Codes are never 0 and fill the slots from the first, so
 * the last letter holds the highest bit set below HIST_STARTED. */
static unsigned hist_len(const struct zeek_conn *z)
{
	uint64_t lo;
	uint32_t hi;

	memcpy(&lo, z->hist, sizeof(lo));
	memcpy(&hi, z->hist + sizeof(lo), sizeof(hi));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	lo = __builtin_bswap64(lo);
	hi = __builtin_bswap32(hi);
#endif
	hi &= ~((uint32_t)HIST_STARTED << 8 * (HIST_STARTED_BYTE - sizeof(lo)));
	if (hi)
		return (unsigned)(95 - __builtin_clz(hi)) / 5 + 1;
	if (lo)
		return (unsigned)(63 - __builtin_clzll(lo)) / 5 + 1;
	return 0;
}

static void hist_add_code(struct zeek_conn *z, unsigned code)
{
	unsigned n = hist_len(z);

	if (n == HIST_SLOTS) {
		z->seen |= SEEN_HIST_OVERFLOW;
		return;
	}
	hist_put(z, n, code);
}

/* The hist_seen bits `mask` (HS_*) of endpoint r, at Zeek's orig or resp
 * position. */
static uint16_t seen_bits(const struct zeek_conn *z, int r, unsigned mask)
{
	/* r is Zeek's responder when it differs from the originator's role bit */
	return (uint16_t)(mask << (8 * (((z->seen >> 7) ^ (unsigned)r) & 1u)));
}

/* Connection::AddHistory for endpoint r: lower case for Zeek's responder. */
static void hist_add(struct conn *c, int r, unsigned letter)
{
	hist_add_code(&c->zeek, letter + 1 + (r == orig_role(&c->zeek) ? 0 : NLETTERS));
}

enum { L_S, L_H, L_A, L_D, L_F, L_R, L_C, L_T, L_W, L_G, L_I, L_Q };

/* Session::CheckHistory: the letter the first time its bit is seen for
 * that side; returns true when it had been seen before. The bits belong to
 * Zeek's orig/resp positions, so a flip does not move them (CONN). */
static bool hist_check(struct conn *c, int r, unsigned mask, unsigned letter)
{
	uint16_t m = seen_bits(&c->zeek, r, mask);

	if (c->zeek.seen & m)
		return true;
	c->zeek.seen |= m;
	hist_add(c, r, letter);
	return false;
}

/* Session::ScaledHistoryEntry with base 10: the letter at the 1st, 10th,
 * 100th ... occurrence. Counters saturate; the letters stay exact while
 * the counter can still reach the next power of ten. */
static bool is_power_of_ten(unsigned n)
{
	return n == 1 || n == 10 || n == 100 || n == 1000 || n == 10000; /* counters end at 65535 */
}

/* One more occurrence; true when its letter is due. */
static bool count16(uint16_t *cnt)
{
	return *cnt != UINT16_MAX && is_power_of_ten(++*cnt);
}

static bool count8(uint8_t *cnt)
{
	return *cnt != UINT8_MAX && is_power_of_ten(++*cnt);
}

static void scaled16(struct conn *c, int r, uint16_t *cnt, unsigned letter)
{
	if (count16(cnt))
		hist_add(c, r, letter);
}

static void scaled8(struct conn *c, int r, uint8_t *cnt, unsigned letter)
{
	if (count8(cnt))
		hist_add(c, r, letter);
}

/* Connection::FlipRoles: the other endpoint becomes the originator, '^'
 * goes to the end of the history (CONN). */
static void flip(struct conn *c)
{
	c->zeek.seen ^= SEEN_ORIG_IS_SERVER;
	hist_add_code(&c->zeek, CODE_FLIP);
}

/* The flip on the second packet (#2191): the letters so far change case
 * and '^' comes first, as the baselines show. */
static void flip_second_packet(struct conn *c)
{
	struct zeek_conn *z = &c->zeek;
	unsigned n = hist_len(z), codes[HIST_SLOTS];

	for (unsigned i = 0; i < n; i++) {
		unsigned k = hist_get(z, i);

		codes[i] = k == CODE_FLIP ? k : k > NLETTERS ? k - NLETTERS : k + NLETTERS;
	}
	memset(z->hist, 0, sizeof(z->hist));
	z->hist[HIST_STARTED_BYTE] = HIST_STARTED;
	hist_put(z, 0, CODE_FLIP);
	for (unsigned i = 0; i < n && i + 1 < HIST_SLOTS; i++)
		hist_put(z, i + 1, codes[i]);
	if (n + 1 > HIST_SLOTS)
		z->seen |= SEEN_HIST_OVERFLOW;
	z->seen ^= SEEN_ORIG_IS_SERVER;
}

size_t zeek_history(const struct conn *c, char *buf, size_t len)
{
	const struct zeek_conn *z = &c->zeek;
	size_t n = 0;

	if (!len)
		return 0;
	for (unsigned i = 0; i < HIST_SLOTS && n + 1 < len; i++) {
		unsigned k = hist_get(z, i);

		if (!k)
			break;
		buf[n++] = k == CODE_FLIP ? '^' : k > NLETTERS ? (char)(letters[k - 1 - NLETTERS] | 0x20) :
			letters[k - 1];
	}
	if ((z->seen & SEEN_HIST_OVERFLOW) && n + 1 < len)
		buf[n++] = '+';
	buf[n] = 0;
	return n;
}

/* ---- orientation of a new connection ---- */

/* likely_server_ports as Zeek's default scripts fill it: each protocol's
 * main.zeek adds its well-known TCP ports ("redef likely_server_ports +=").
 * Zeek run with -b loads fewer scripts and has fewer of these. */
static bool likely_server_port(uint16_t port)
{
	static const uint16_t ports[] = {
		21, 22, 25, 53, 80, 81, 88, 110, 135, 139, 143, 389, 443, 445, 502, 563, 585,
		587, 614, 631, 636, 989, 990, 992, 993, 995, 1080, 1434, 2811, 3128, 3268,
		3306, 3389, 5222, 5223, 5269, 6666, 6667, 6668, 6669, 8000, 8080, 8888, 20000,
	};

	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++)
		if (ports[i] == port)
			return true;
	return false;
}

/* TCPA WantConnection: a connection whose first packet is not a plain SYN
 * is partial; Zeek makes the endpoint on a likely server port the
 * responder, and when both ports are likely ones the higher port, unless
 * the packet is a SYN-ACK (a stealth scan must keep its direction). */
static bool flip_at_start(const struct packet *p)
{
	bool syn = p->flags & TH_SYN, ack = p->flags & TH_ACK;

	if (syn && !ack)
		return false;
	if (!likely_server_port(p->sport))
		return false;
	if (likely_server_port(p->dport))
		return !syn && p->sport < p->dport;
	return true;
}

/* ---- the per-packet model of Zeek's TCP analyzer (TCPS) ---- */

static void init_seq(struct zeek_conn *z, int r, uint32_t start, uint32_t last)
{
	z->start_seq[r] = start;
	z->last_seq[r] = last;
	z->rcv_seq[r] = start + 1;
	z->ep[r] &= (uint8_t)~EP_OOO;
}

/* init_endpoint: where the endpoint's sequence space starts. Without a
 * SYN, Zeek starts it one before the first segment, as if a SYN had been
 * there; a SYN later (re)starts it. */
static void init_endpoint(struct zeek_conn *z, int e, const struct packet *p, uint32_t end)
{
	bool syn = p->flags & TH_SYN;

	switch (ep_state(z, e)) {
	case ZS_INACTIVE:
		if (syn)
			init_seq(z, e, p->seq, end);
		else
			init_seq(z, e, p->seq - 1, p->seq);
		break;
	case ZS_SYN_SENT:
	case ZS_SYN_ACK_SENT:
		if (syn && p->seq != z->start_seq[e])
			init_seq(z, e, p->seq, end);
		break;
	case ZS_ESTABLISHED:
	case ZS_PARTIAL:
		if (syn)
			init_seq(z, e, p->seq, end);
		break;
	case ZS_RESET:
		if (syn && EP_PREV(z->ep[e]) == ZS_INACTIVE)
			init_seq(z, e, p->seq, end);
		break;
	default:
		break;
	}
}

/* update_history: S H A D F R, I (FIN+RST) and Q (other multi-flag). S, H,
 * F and R come again when their sequence number differs from the last one
 * of the same kind. Approximations, to keep the record small: the last
 * SYN is taken to sit at the start of the sequence space (true unless a
 * SYN arrives after a close), the last FIN at last_seq - 1 (true unless
 * data went past it), and the last RST is compared on 16 bits. */
static void update_history(struct conn *c, int e, const struct packet *p)
{
	struct zeek_conn *z = &c->zeek;
	bool syn = p->flags & TH_SYN, fin = p->flags & TH_FIN, rst = p->flags & TH_RST;
	int bits = syn + fin + rst;

	if (bits > 1) {
		if (fin && rst)
			hist_check(c, e, HS_FIN_RST, L_I);
		else
			hist_check(c, e, HS_MULTI, L_Q);
	} else if (syn) {
		unsigned l = (p->flags & TH_ACK) ? L_H : L_S;

		if (hist_check(c, e, HS_SYN, l) && p->seq != z->start_seq[e])
			hist_add(c, e, l);
	} else if (fin) {
		bool again = (z->ep[e] & EP_FIN) && p->seq + p->payload_len + 1 == z->last_seq[e];

		if (hist_check(c, e, HS_FIN, L_F) && !again)
			hist_add(c, e, L_F);
	} else if (rst) {
		if (hist_check(c, e, HS_RST, L_R) && (uint16_t)p->seq != z->rst_seq[e])
			hist_add(c, e, L_R);
		z->rst_seq[e] = (uint16_t)p->seq;
	} else if (p->payload_len) {
		hist_check(c, e, HS_DATA, L_D);
	} else if (p->flags & TH_ACK) {
		hist_check(c, e, HS_ACK, L_A);
	}
}

/* update_last_seq: the highest sequence number sent; data that does not
 * pass it is a retransmission ('T'). */
static void update_last_seq(struct conn *c, int e, const struct packet *p, uint32_t end)
{
	struct zeek_conn *z = &c->zeek;
	int32_t delta = (int32_t)(end - z->last_seq[e]);
	bool syn = p->flags & TH_SYN, fin = p->flags & TH_FIN, rst = p->flags & TH_RST;

	if ((syn || rst) && (delta > TOO_LARGE_SEQ_DELTA || delta < -TOO_LARGE_SEQ_DELTA))
		return; /* an outlandish SYN/RST number is not trusted */
	if (fin && z->last_seq[e] == z->start_seq[e] + 1)
		z->last_seq[e] = end; /* only the SYN and the FIN seen (> 2 GB connections) */
	else if (ep_state(z, e) == ZS_RESET)
		return; /* nothing after a RST is trusted */
	else if (delta > 0)
		z->last_seq[e] = end;
	else if (p->payload_len)
		scaled16(c, e, &z->rxmt[e], L_T);
}

/* UpdateStateMachine: Zeek's transitions for the sender e (peer q). */
static void state_machine(struct conn *c, int e, const struct packet *p, bool is_orig)
{
	struct zeek_conn *z = &c->zeek;
	int q = !e;
	bool syn = p->flags & TH_SYN, fin = p->flags & TH_FIN, rst = p->flags & TH_RST,
	     ack = p->flags & TH_ACK;

	switch (ep_state(z, e)) {
	case ZS_INACTIVE:
		if (syn) {
			if (is_orig) {
				set_state(z, e, ack ? ZS_SYN_ACK_SENT : ZS_SYN_SENT);
			} else {
				/* A responder's SYN answering the originator's SYN-ACK
				 * with the same ISN: the two were captured reversed. */
				if (!ack && ep_state(z, q) == ZS_SYN_ACK_SENT && p->seq == z->start_seq[e]) {
					flip(c);
					set_state(z, q, ZS_ESTABLISHED);
				}
				if (ep_state(z, q) == ZS_SYN_SENT)
					set_state(z, q, ZS_ESTABLISHED);
				set_state(z, e, ZS_ESTABLISHED);
			}
		}
		if (fin)
			set_state(z, e, ZS_CLOSED);
		if (rst)
			set_state(z, e, ZS_RESET);
		if (ep_state(z, e) == ZS_INACTIVE) {
			int o = orig_role(z);

			if (!is_orig && !p->payload_len && ep_state(z, o) == ZS_SYN_SENT)
				; /* an ACK of the SYN before the SYN-ACK: not partial yet */
			else if (ack && ep_state(z, q) == ZS_ESTABLISHED)
				set_state(z, e, ZS_ESTABLISHED); /* we missed only the SYN */
			else
				set_state(z, e, ZS_PARTIAL);
		}
		break;
	case ZS_SYN_SENT:
	case ZS_SYN_ACK_SENT:
		if (fin)
			set_state(z, e, ZS_CLOSED);
		if (rst)
			set_state(z, e, ZS_RESET);
		break;
	case ZS_ESTABLISHED:
	case ZS_PARTIAL:
		if (syn && ep_state(z, e) == ZS_PARTIAL && ep_state(z, q) == ZS_INACTIVE && !ack)
			set_state(z, e, ZS_SYN_SENT);
		if (fin && !rst) {
			set_state(z, e, ZS_CLOSED);
			/* the peer's FIN then RST was a normal close after all */
			if (ep_state(z, q) == ZS_RESET && EP_PREV(z->ep[q]) == ZS_CLOSED)
				set_state(z, q, ZS_CLOSED);
		}
		if (rst)
			set_state(z, e, ZS_RESET);
		break;
	case ZS_CLOSED:
		/* after a FIN exchange a RST changes nothing */
		if (rst && ep_state(z, q) != ZS_CLOSED)
			set_state(z, e, ZS_RESET);
		break;
	default:
		break;
	}
}

static bool is_clean(const struct zeek_conn *z, int r)
{
	unsigned st = ep_state(z, r);

	return st == ZS_ESTABLISHED || (st == ZS_CLOSED && EP_PREV(z->ep[r]) == ZS_ESTABLISHED);
}

/* REAS AckReceived for endpoint d, whose data the peer acknowledges up to
 * ack: acknowledged data the capture never showed is a content gap. It
 * counts ('G', missed_bytes) only while both endpoints are established or
 * closed cleanly. tcpstate keeps no segments, so the model assumes at
 * most one hole: data seen above it is taken to be contiguous. Returns
 * true when d's 'G' is due; the caller adds it (plain_segment() later).
 * Inline everywhere: the ACK path must not pay for a call. */
static inline __attribute__((always_inline)) bool ack_received(struct zeek_conn *z, int d,
								uint32_t ack)
{
	uint32_t gap;
	bool letter = false;

	if ((z->ep[d] & EP_FIN) && seq_geq(ack, z->last_seq[d]))
		ack = z->last_seq[d] - 1; /* the FIN is no data */
	if (!seq_gt(ack, z->rcv_seq[d]))
		return false;
	gap = ack - z->rcv_seq[d];
	/* ack <= 2 in a partial connection is its first ACK: not a gap (REAS Undelivered) */
	if ((uint32_t)(ack - z->start_seq[d]) > 2 && is_clean(z, d) && is_clean(z, !d)) {
		letter = count8(&z->gaps[d]);
		if (gap > UINT32_MAX - z->missed_bytes)
			gap = UINT32_MAX - z->missed_bytes;
		z->missed_bytes += gap;
	}
	z->rcv_seq[d] = ack;
	z->ep[d] &= (uint8_t)~EP_OOO;
	return letter;
}

/* REAS DataSent: in-order data moves rcv_seq; data beyond it waits above a
 * hole until the hole fills (or an ACK declares it a gap). */
static void data_sent(struct zeek_conn *z, int e, uint32_t from, uint32_t len)
{
	uint32_t to = from + len;

	if (seq_gt(from, z->rcv_seq[e])) {
		z->ep[e] |= EP_OOO;
		return;
	}
	if (!seq_gt(to, z->rcv_seq[e]))
		return; /* old data */
	z->rcv_seq[e] = to;
	if (z->ep[e] & EP_OOO) {
		uint32_t top = z->last_seq[e] - ((z->ep[e] & EP_FIN) ? 1 : 0);

		if (seq_gt(top, z->rcv_seq[e]))
			z->rcv_seq[e] = top;
		z->ep[e] &= (uint8_t)~EP_OOO;
	}
}

static bool closed_or_reset(const struct zeek_conn *z, int r)
{
	unsigned st = ep_state(z, r);

	return st == ZS_CLOSED || st == ZS_RESET;
}

/* last_time as an offset from the first packet: microseconds up to 35
 * minutes, milliseconds (bit 31 set) beyond. */
static void set_last_time(struct conn *c, uint64_t ts)
{
	uint64_t d = ts > c->first_ns ? ts - c->first_ns : 0;

	if (d < 1000ULL << 31)   /* d / 1000 < 2^31, without dividing twice */
		c->zeek.last_time = (uint32_t)(d / 1000);
	else
		c->zeek.last_time = (uint32_t)((1ULL << 31) |
					       (d / 1000000 < (1ULL << 31) ? d / 1000000 : (1ULL << 31) - 1));
}

uint64_t zeek_duration_ns(const struct conn *c)
{
	uint32_t v = c->zeek.last_time;

	return (v & (1u << 31)) ? (uint64_t)(v & ~(1u << 31)) * 1000000 : (uint64_t)v * 1000;
}

/* ip bytes = the tracker's payload sum + hdr_bytes (saturating) */
static void add_hdr_bytes(struct zeek_conn *z, int s, uint32_t h)
{
	uint32_t v;

	z->hdr_bytes[s] = __builtin_add_overflow(z->hdr_bytes[s], h, &v) ? UINT32_MAX : v;
}

/* Segments by kind, as tshark's flag fields count them: a SYN without ACK,
 * a SYN with ACK, any FIN, any RST. */
static void count_flags(struct zeek_conn *z, int s, const struct packet *p)
{
	bool kind[ZFC_COUNT] = {
		[ZFC_SYN] = (p->flags & TH_SYN) && !(p->flags & TH_ACK),
		[ZFC_SYNACK] = (p->flags & TH_SYN) && (p->flags & TH_ACK),
		[ZFC_FIN] = p->flags & TH_FIN,
		[ZFC_RST] = p->flags & TH_RST,
	};

	for (int k = 0; k < ZFC_COUNT; k++)
		if (kind[k] && z->nflags[s][k] < UINT8_MAX)
			z->nflags[s][k]++;
}

/* One segment through the model, in the order of TCPS Process(): start of
 * the sequence space, history letters, zero window, the clock, the peer's
 * numbering, last_seq (retransmissions), the state machine, then the ACK
 * for the peer's data (gaps) and this segment's data. copy: a capture copy
 * the tracker kept out of its own counts. */
static void model_segment(struct conn *c, int s, const struct packet *p, bool copy)
{
	struct zeek_conn *z = &c->zeek;
	int e = s, q = !s;
	bool syn = p->flags & TH_SYN, fin = p->flags & TH_FIN, rst = p->flags & TH_RST,
	     ack = p->flags & TH_ACK;
	uint32_t len = p->payload_len;
	uint32_t end = p->seq + len + (syn ? 1 : 0) + (fin ? 1 : 0) - (rst ? len : 0);
	bool is_orig;

	if (syn || fin || rst)
		count_flags(z, s, p);
	/* a copy is not in the tracker's payload sum: all of its IP length goes here */
	if (copy)
		add_hdr_bytes(z, s, p->ip_len);
	else if (p->ip_len > len)
		add_hdr_bytes(z, s, p->ip_len - len);
	if (copy && z->copies[s] < UINT16_MAX)
		z->copies[s]++;

	if (!(z->hist[HIST_STARTED_BYTE] & HIST_STARTED)) {
		z->hist[HIST_STARTED_BYTE] |= HIST_STARTED;
		/* A new connection: the sender originates it unless its port says
		 * it is the server (TCPA); FlipRoles then leads the history. */
		if (s == ROLE_SERVER)
			z->seen |= SEEN_ORIG_IS_SERVER;
		if (flip_at_start(p))
			flip(c);
	} else if (ep_state(z, orig_role(z)) == ZS_SYN_ACK_SENT &&
		   ep_state(z, !orig_role(z)) == ZS_INACTIVE && !syn && !fin && !rst &&
		   (ack || len)) {
		flip_second_packet(c); /* #2191 */
	}
	is_orig = e == orig_role(z);

	init_endpoint(z, e, p, end);
	update_history(c, e, p);
	/* update_window: a zero window, unless it comes with or after an RST or
	 * after the peer's FIN ('W') */
	if (p->window == 0 && !rst && ep_state(z, q) != ZS_CLOSED && ep_state(z, e) != ZS_RESET)
		scaled8(c, e, &z->win0[e], L_W);
	/* Zeek stops the clock once both sides closed: trailing ACKs do not count */
	if (!(closed_or_reset(z, e) && closed_or_reset(z, q)))
		set_last_time(c, p->ts_ns);
	if (fin)
		z->ep[e] |= EP_FIN;
	/* init_peer: an ACK to an endpoint not heard from starts its numbering */
	if (ack && ep_state(z, q) == ZS_INACTIVE)
		init_seq(z, q, p->ack - 1, p->ack - 1);
	update_last_seq(c, e, p, end);
	{
		bool peer_was_inactive = ep_state(z, q) == ZS_INACTIVE;

		state_machine(c, e, p, is_orig);
		if (ack && !peer_was_inactive && ack_received(z, q, p->ack))
			hist_add(c, q, L_G);
	}
	if (len && !rst && !seq_lt(p->seq, z->start_seq[e]))
		data_sent(z, e, p->seq + syn, len);
}

/* (sender state, peer state) pairs, as bit 8 * sender + peer of a mask. */
#define PAIR(se, sq)      (1ULL << (8 * (se) + (sq)))
#define SENDER(se)        (0xffULL << 8 * (se))
#define PEER_HEARD        0x7e7e7e7e7e7e7e7eULL   /* the peer is not INACTIVE */

/* Pairs in which an ACK without SYN, FIN or RST changes nothing in
 * init_endpoint and state_machine: any sender state but INACTIVE (that
 * starts the endpoint) and RESET (after which last_seq stays). */
#define PLAIN_PAIRS ((SENDER(ZS_SYN_SENT) | SENDER(ZS_SYN_ACK_SENT) | SENDER(ZS_PARTIAL) | \
		      SENDER(ZS_ESTABLISHED) | SENDER(ZS_CLOSED)) & PEER_HEARD)
/* Pairs in which an ACK with FIN only closes the sender (state_machine). */
#define FIN_PAIRS ((SENDER(ZS_PARTIAL) | SENDER(ZS_ESTABLISHED)) & PEER_HEARD)
/* Of those, the ones in which Zeek's clock has stopped (both closed or reset). */
#define CLOCK_STOPPED (PAIR(ZS_CLOSED, ZS_CLOSED) | PAIR(ZS_CLOSED, ZS_RESET))

/* plain_segment()'s answer when the segment is not one of its own. */
#define NOT_PLAIN UINT32_MAX
_Static_assert(HS_DATA == 1 << 4 && HS_ACK == 1 << 5, "plain_segment() shifts by their bits");

/* The letters plain_segment() found due for a segment from e: each
 * letter + 1 in 4 bits, the first in the highest. All are e's but the
 * peer's G, in the other case. */
static __attribute__((noinline)) void hist_add_due(struct conn *c, int e, uint32_t due)
{
	struct zeek_conn *z = &c->zeek;
	unsigned off = e == orig_role(z) ? 0 : NLETTERS;
	int sh = 0;

	if (due < 16) {   /* the usual one letter */
		hist_add_code(z, due + (due == L_G + 1 ? NLETTERS - off : off));
		return;
	}
	while (due >> sh >> 4)
		sh += 4;
	for (; sh >= 0; sh -= 4) {
		unsigned v = (due >> sh) & 15u;

		hist_add_code(z, v + (v == L_G + 1 ? NLETTERS - off : off));
	}
}

/* The common segment: an ACK with or without data, no SYN or RST, once
 * both endpoints have been heard from; with a FIN, only from a PARTIAL or
 * ESTABLISHED sender. Of model_segment, only the counters, the clock,
 * last_seq, the FIN's state change, the peer's acknowledged data and this
 * segment's data can move, and letters; each test below is what makes a
 * step skipped here do nothing there:
 *   count_flags       no SYN or RST
 *   the two flips     neither endpoint is INACTIVE (one that is not has
 *                     been through model_segment, which begins the history)
 *   init_endpoint     no SYN; the sender is not INACTIVE
 *   init_peer         the peer is not INACTIVE
 *   update_last_seq   no SYN or RST; the sender is not RESET
 *   state_machine     no SYN or RST; the sender is not INACTIVE, and with a
 *                     FIN, PARTIAL or ESTABLISHED
 * The steps kept (update_history, update_window, the clock,
 * update_last_seq, the FIN's state change, ack_received, data_sent) run in
 * model_segment's order. Their letters (A, D or F, W, T, then the peer's
 * G) come in that order too, but are returned, 4 bits each, for
 * hist_add_due(): nothing here calls a function, which keeps the
 * common case short. Returns NOT_PLAIN, having changed nothing, for any
 * other segment. */
static inline __attribute__((always_inline)) uint32_t plain_segment(struct conn *c, int e,
									const struct packet *p, bool fin)
{
	struct zeek_conn *z = &c->zeek;
	int q = !e;
	unsigned flags = p->flags, pair = 8 * EP_STATE(z->ep[e]) + EP_STATE(z->ep[q]);
	uint32_t len = p->payload_len, seq = p->seq, end = seq + len + fin, ack = p->ack;
	unsigned resp = ((z->seen >> 7) ^ (unsigned)e) & 1u;   /* e is Zeek's responder */
	uint32_t due = 0;

	if ((flags & (TH_SYN | TH_FIN | TH_RST | TH_ACK)) != (fin ? TH_FIN | TH_ACK : TH_ACK) ||
	    !(((fin ? FIN_PAIRS : PLAIN_PAIRS) >> pair) & 1u))
		return NOT_PLAIN;
	if (p->ip_len > len)
		add_hdr_bytes(z, e, p->ip_len - len);
	if (fin) {   /* update_history: F, again unless it repeats the last FIN */
		bool again = (z->ep[e] & EP_FIN) && end == z->last_seq[e];
		uint16_t m = (uint16_t)(HS_FIN << 8 * resp);

		if (z->nflags[e][ZFC_FIN] < UINT8_MAX)
			z->nflags[e][ZFC_FIN]++;
		if (!(z->seen & m) || !again)
			due = L_F + 1;
		z->seen |= m;
	} else {     /* update_history: A or D, once per side */
		unsigned bit = 8 * resp + (len ? 4 : 5);   /* HS_DATA or HS_ACK */

		if (!((z->seen >> bit) & 1u)) {
			z->seen |= (uint16_t)(1u << bit);
			due = (len ? L_D : L_A) + 1;
		}
	}
	if (p->window == 0 && (pair & 7u) != ZS_CLOSED && count8(&z->win0[e]))
		due = due << 4 | (L_W + 1);
	if (!((CLOCK_STOPPED >> pair) & 1u))
		set_last_time(c, p->ts_ns);
	if ((int32_t)(end - z->last_seq[e]) > 0 || (fin && z->last_seq[e] == z->start_seq[e] + 1))
		z->last_seq[e] = end;
	else if (len && count16(&z->rxmt[e]))
		due = due << 4 | (L_T + 1);
	if (fin) {   /* state_machine: the sender closes; EP_FIN as model_segment sets it */
		z->ep[e] = (uint8_t)((z->ep[e] & EP_OOO) | EP_FIN | (pair >> 3) << 3 | ZS_CLOSED);
		/* the peer's FIN then RST was a normal close after all */
		if ((pair & 7u) == ZS_RESET && EP_PREV(z->ep[q]) == ZS_CLOSED)
			set_state(z, q, ZS_CLOSED);
	}
	/* ack_received's own first test before it (its FIN case aside) */
	if (((z->ep[q] & EP_FIN) || seq_gt(ack, z->rcv_seq[q])) && ack_received(z, q, ack))
		due = due << 4 | (L_G + 1);
	if (len && !seq_lt(seq, z->start_seq[e]))
		data_sent(z, e, seq, len);
	return due;
}

/* The segment that opens an endpoint: a SYN or SYN-ACK, no FIN or RST,
 * from an INACTIVE sender, unless it is a SYN-ACK that begins the history
 * (flip_at_start looks at its ports). What model_segment does with it:
 *   count_flags       one SYN or SYN-ACK
 *   the two flips     at the start flip_at_start is false for a SYN; a SYN
 *                     is never the second packet's flip
 *   init_endpoint     the sequence space starts at this SYN
 *   update_history    S or H the first time only: start_seq is this SYN's
 *   update_window     the sender is not RESET
 *   the clock         runs: the sender is not closed
 *   update_last_seq   last_seq is already its end: data is a 'T'
 *   state_machine     INACTIVE with a SYN and neither FIN nor RST
 *   data_sent         the data follows the SYN, at rcv_seq
 * init_peer and ack_received run as there. Returns false, having changed
 * nothing, for any other segment. */
static bool open_segment(struct conn *c, int e, const struct packet *p)
{
	struct zeek_conn *z = &c->zeek;
	int q = !e;
	unsigned sq = EP_STATE(z->ep[q]);
	bool ack = p->flags & TH_ACK, begun = z->hist[HIST_STARTED_BYTE] & HIST_STARTED;
	uint32_t len = p->payload_len, seq = p->seq;
	uint8_t *n = &z->nflags[e][ack ? ZFC_SYNACK : ZFC_SYN];

	if ((p->flags & (TH_SYN | TH_FIN | TH_RST)) != TH_SYN ||
	    EP_STATE(z->ep[e]) != ZS_INACTIVE || (ack && !begun))
		return false;
	if (*n < UINT8_MAX)
		(*n)++;
	if (p->ip_len > len)
		add_hdr_bytes(z, e, p->ip_len - len);
	if (!begun) {
		z->hist[HIST_STARTED_BYTE] |= HIST_STARTED;
		if (e == ROLE_SERVER)
			z->seen |= SEEN_ORIG_IS_SERVER;
	}
	init_seq(z, e, seq, seq + len + 1);
	hist_check(c, e, HS_SYN, ack ? L_H : L_S);
	if (p->window == 0 && sq != ZS_CLOSED)
		scaled8(c, e, &z->win0[e], L_W);
	set_last_time(c, p->ts_ns);
	if (ack && sq == ZS_INACTIVE)
		init_seq(z, q, p->ack - 1, p->ack - 1);
	if (len)
		scaled16(c, e, &z->rxmt[e], L_T);
	if (e == orig_role(z)) {
		set_state(z, e, ack ? ZS_SYN_ACK_SENT : ZS_SYN_SENT);
	} else {
		/* the originator's SYN-ACK answered by this SYN: captured reversed */
		if (!ack && sq == ZS_SYN_ACK_SENT) {
			flip(c);
			set_state(z, q, ZS_ESTABLISHED);
		}
		if (ep_state(z, q) == ZS_SYN_SENT)
			set_state(z, q, ZS_ESTABLISHED);
		set_state(z, e, ZS_ESTABLISHED);
	}
	if (ack && sq != ZS_INACTIVE && ack_received(z, q, p->ack))
		hist_add(c, q, L_G);
	if (len)
		data_sent(z, e, seq + 1, len);
	return true;
}

/* plain_segment() for a FIN; out of line, like the SYNs' path, so that
 * the ACKs' copy in zeek_segment() stays small. */
static __attribute__((noinline)) void fin_segment(struct conn *c, int s, const struct packet *p)
{
	uint32_t due = plain_segment(c, s, p, true);

	if (due == NOT_PLAIN)
		model_segment(c, s, p, false);
	else if (due)
		hist_add_due(c, s, due);
}

static __attribute__((noinline)) void syn_segment(struct conn *c, int s, const struct packet *p)
{
	if (!open_segment(c, s, p))
		model_segment(c, s, p, false);
}

void zeek_segment(struct conn *c, int s, const struct packet *p)
{
	unsigned kind = p->flags & (TH_SYN | TH_FIN | TH_RST | TH_ACK);
	uint32_t due;

	if (kind == TH_ACK) {   /* most segments, inline */
		due = plain_segment(c, s, p, false);
		if (due == NOT_PLAIN)
			model_segment(c, s, p, false);
		else if (due)
			hist_add_due(c, s, due);
		return;
	}
	switch (kind) {
	case TH_FIN | TH_ACK:
		fin_segment(c, s, p);
		break;
	case TH_SYN:
	case TH_SYN | TH_ACK:
		syn_segment(c, s, p);
		break;
	default:
		model_segment(c, s, p, false);
		break;
	}
}

void zeek_segment_general(struct conn *c, int s, const struct packet *p)
{
	model_segment(c, s, p, false);
}

void zeek_copy(struct conn *c, int s, const struct packet *p)
{
	model_segment(c, s, p, true);
}

/* ---- what Zeek logs ---- */

/* Payload sum of the endpoint picks the 2^32 wrap of a sequence distance. */
static uint64_t unwrap(uint32_t d, uint64_t near)
{
	uint64_t k = near > d ? (near - d + (1ULL << 31)) >> 32 : 0;

	return d + (k << 32);
}

/* EP Size(): the highest of last_seq and the peer's ACK, minus the start,
 * minus the SYN and FIN octets; 0 for a SYN_SENT endpoint that was reset
 * before the peer said anything. */
uint64_t zeek_size(const struct conn *c, int r)
{
	const struct zeek_conn *z = &c->zeek;
	const struct peer *pa = &c->peer[!r];
	uint32_t start = z->start_seq[r], hi = z->last_seq[r], ack = start;
	uint64_t size;

	if (!(c->peer[r].bits & PB_SEEN) || ep_state(z, r) == ZS_INACTIVE)
		return 0;
	if ((pa->bits & PB_ACKED) && seq_gt(pa->max_ack, start))
		ack = pa->max_ack;
	if (EP_PREV(z->ep[r]) == ZS_SYN_SENT && ep_state(z, r) == ZS_RESET &&
	    ep_state(z, !r) == ZS_INACTIVE && ack != start && ack != start + 1)
		return 0;
	if (seq_gt(ack, hi))
		hi = ack;
	size = unwrap(hi - start, c->peer[r].bytes);
	if (size)
		size--;
	if ((z->ep[r] & EP_FIN) && size)
		size--;
	return size;
}

uint64_t zeek_packets(const struct conn *c, int r)
{
	return c->peer[r].packets + c->zeek.copies[r];
}

uint64_t zeek_ip_bytes(const struct conn *c, int r)
{
	return c->peer[r].bytes + c->zeek.hdr_bytes[r];
}

uint64_t zeek_missed_bytes(const struct conn *c)
{
	return c->zeek.missed_bytes;
}

unsigned zeek_flag_count(const struct conn *c, int r, int k)
{
	return (unsigned)k < ZFC_COUNT ? c->zeek.nflags[r][k] : 0;
}

/* MAIN RSTOS0 test: the history matches Zeek's pattern  ^?S[^HAFGIQ]*R.*  (an
 * optional flip, the SYN, anything but H A F G I Q, then an RST). */
static bool syn_then_rst(const struct conn *c)
{
	char h[ZEEK_HISTORY_MAX + 2];
	const char *s = h;

	zeek_history(c, h, sizeof(h));
	if (*s == '^')
		s++;
	if (*s++ != 'S')
		return false;
	for (; *s; s++) {
		if (*s == 'R')
			return true;
		if (strchr("HAFGIQ", *s))
			return false;
	}
	return false;
}

/* MAIN conn_state(), on Zeek's endpoint states. */
const char *zeek_conn_state(const struct conn *c)
{
	const struct zeek_conn *z = &c->zeek;
	int o = orig_role(z);
	unsigned os = ep_state(z, o), rs = ep_state(z, !o);
	bool o_inactive = os == ZS_INACTIVE || os == ZS_PARTIAL;
	bool r_inactive = rs == ZS_INACTIVE || rs == ZS_PARTIAL;

	if (rs == ZS_RESET) {
		if (os == ZS_SYN_SENT || os == ZS_SYN_ACK_SENT ||
		    (os == ZS_RESET && zeek_size(c, o) == 0 && zeek_size(c, !o) == 0))
			return "REJ";
		return o_inactive ? "RSTRH" : "RSTR";
	}
	if (os == ZS_RESET) {
		if (r_inactive)
			return syn_then_rst(c) ? "RSTOS0" : "OTH";
		return "RSTO";
	}
	if (rs == ZS_CLOSED && os == ZS_CLOSED)
		return "SF";
	if (os == ZS_CLOSED)
		return r_inactive ? "SH" : "S2";
	if (rs == ZS_CLOSED)
		return o_inactive ? "SHR" : "S3";
	if (os == ZS_SYN_SENT && rs == ZS_INACTIVE)
		return "S0";
	if (os == ZS_ESTABLISHED && rs == ZS_ESTABLISHED)
		return "S1";
	return "OTH";
}

const char *zeek_uid(const struct conn *c, char *buf, size_t len)
{
	static const char digits[] =
		"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	char tmp[16];
	size_t n = 0, i = 0;
	uint64_t v = c->id;

	do {
		tmp[n++] = digits[v % 62];
		v /= 62;
	} while (v && n < sizeof(tmp));
	if (len < n + 2) {
		if (len)
			buf[0] = 0;
		return buf;
	}
	buf[i++] = 'C';
	while (n)
		buf[i++] = tmp[--n];
	buf[i] = 0;
	return buf;
}
