/* test_zeek.c - Zeek's conn_state and history on hand-built segment
 * sequences, one per conn_state code and per history rule. Expected values
 * come from Zeek's documented definitions (base/protocols/conn/main.zeek)
 * and, where those are silent, from the Zeek baselines named in comments,
 * never from tcpstate's output. Client 10.0.0.1, server 10.0.0.2. */
#include <stdlib.h>

#include "segment.h"
#include "test.h"
#include "tracker.h"


struct run {
	struct tracker *t;
	struct conn *conns[16];
	int n;
	uint64_t number;
	uint16_t cport, sport;
};

static bool take(void *ctx, struct conn *c)
{
	struct run *r = ctx;

	if (r->n == 16)
		return false;
	r->conns[r->n++] = c;
	return true;
}

static void run_init(struct run *r, uint16_t cport, uint16_t sport)
{
	struct tracker_config cfg = { .time_wait_ns = 60 * S, .linger_ns = 5 * S };
	struct tracker_sink sk = { .retired = take };

	memset(r, 0, sizeof(*r));
	sk.ctx = r;
	r->t = tracker_create(&cfg, &sk);
	r->cport = cport;
	r->sport = sport;
}

static void run_free(struct run *r)
{
	tracker_destroy(r->t);
	for (int i = 0; i < r->n; i++)
		conn_destroy(r->conns[i]);
}

/* One segment of the connection with a given window. */
static void seg_w(struct run *r, bool from_client, uint8_t flags, uint32_t seq, uint32_t ack,
		  uint32_t len, uint64_t ms, uint16_t window)
{
	struct packet p = segment_make(from_client, r->cport, r->sport, flags, seq, ack, len, ms,
				       ++r->number, window);

	tracker_packet(r->t, &p);
}

static void seg(struct run *r, bool from_client, uint8_t flags, uint32_t seq, uint32_t ack,
		uint32_t len, uint64_t ms)
{
	seg_w(r, from_client, flags, seq, ack, len, ms, 65535);
}


static struct conn *finish(struct run *r, uint64_t ms)
{
	tracker_finish(r->t, T0 + ms * MS);
	return r->n ? r->conns[0] : NULL;
}

#define ZEEK(c, st, hist) do { \
	char h_[ZEEK_HISTORY_MAX + 2]; \
	CHECK((c) != NULL); \
	if (c) { \
		zeek_history((c), h_, sizeof(h_)); \
		CHECK_EQ_STR(zeek_conn_state(c), st); \
		CHECK_EQ_STR(h_, hist); \
	} \
} while (0)

/* Client ISN 1000, server ISN 5000. */
static void handshake(struct run *r)
{
	seg(r, C, SYN, 1000, 0, 0, 0);
	seg(r, SV, SA, 5000, 1001, 0, 1);
	seg(r, C, A, 1001, 5001, 0, 2);
}

/* S0: "Connection attempt seen, no reply." A retransmitted SYN (same ISN)
 * adds no second S: S, H, F, R repeat only with a new sequence number. */
static void test_s0(void)
{
	struct run r;
	struct conn *c;

	run_init(&r, 40000, 80);
	seg(&r, C, SYN, 1000, 0, 0, 0);
	seg(&r, C, SYN, 1000, 0, 0, 1000);
	c = finish(&r, 2000);
	ZEEK(c, "S0", "S");
	CHECK(c && !zeek_flipped(c));
	run_free(&r);
}

/* S1: "Connection established, not terminated." SF: "Normal establishment
 * and termination." Upper case for the originator, lower for the responder;
 * A and D once per side. */
static void test_s1_sf(void)
{
	struct run r;
	struct conn *c;

	run_init(&r, 40000, 80);
	handshake(&r);
	seg(&r, C, PA, 1001, 5001, 100, 3);
	seg(&r, SV, PA, 5001, 1101, 200, 4);
	seg(&r, C, A, 1101, 5201, 0, 5);     /* the client's second pure ACK: no letter */
	seg(&r, SV, A, 5201, 1101, 0, 6);    /* the server's first: 'a' */
	c = finish(&r, 7);
	ZEEK(c, "S1", "ShADda");
	run_free(&r);

	run_init(&r, 40000, 80);
	handshake(&r);
	seg(&r, C, PA, 1001, 5001, 100, 3);
	seg(&r, SV, PA, 5001, 1101, 200, 4);
	seg(&r, C, FA, 1101, 5201, 0, 5);
	seg(&r, SV, FA, 5201, 1102, 0, 6);
	seg(&r, C, A, 1102, 5202, 0, 7);
	c = finish(&r, 8);
	ZEEK(c, "SF", "ShADdFf");
	/* TCP_Endpoint::Size(): sequence space without SYN and FIN */
	CHECK_EQ_INT(c ? zeek_size(c, ROLE_CLIENT) : 0, 100);
	CHECK_EQ_INT(c ? zeek_size(c, ROLE_SERVER) : 0, 200);
	/* IP total lengths: 5 client packets of 40 bytes + 100 of data */
	CHECK_EQ_INT(c ? zeek_ip_bytes(c, ROLE_CLIENT) : 0, 300);
	/* duration stops when both sides have closed: the final ACK is not in it */
	CHECK_EQ_INT(c ? zeek_duration_ns(c) : 0, 6 * MS);
	CHECK_EQ_INT(c ? zeek_flag_count(c, ROLE_CLIENT, ZFC_SYN) : 0, 1);
	CHECK_EQ_INT(c ? zeek_flag_count(c, ROLE_SERVER, ZFC_SYNACK) : 0, 1);
	CHECK_EQ_INT(c ? zeek_flag_count(c, ROLE_SERVER, ZFC_FIN) : 0, 1);
	run_free(&r);
}

/* REJ: "Connection attempt rejected." RSTOS0: "Originator sent a SYN
 * followed by a RST, we never saw a SYN-ACK" (baseline
 * conn_state-RST-behavior: "SR, RSTOS0", "SaR, RSTOS0", "SaFR, OTH"). */
static void test_rej_rstos0(void)
{
	struct run r;
	struct conn *c;

	run_init(&r, 40000, 80);
	seg(&r, C, SYN, 1000, 0, 0, 0);
	seg(&r, SV, RA, 0, 1001, 0, 1);
	c = finish(&r, 2);
	ZEEK(c, "REJ", "Sr");
	run_free(&r);

	run_init(&r, 40000, 80);
	seg(&r, C, SYN, 1000, 0, 0, 0);
	seg(&r, C, R, 1001, 0, 0, 1);
	c = finish(&r, 2);
	ZEEK(c, "RSTOS0", "SR");
	run_free(&r);

	run_init(&r, 40000, 80);
	seg(&r, C, SYN, 1000, 0, 0, 0);
	seg(&r, SV, A, 5000, 1001, 0, 1);   /* an ACK before any SYN-ACK */
	seg(&r, C, R, 1001, 0, 0, 2);
	c = finish(&r, 3);
	ZEEK(c, "RSTOS0", "SaR");
	run_free(&r);

	/* The FIN makes it no longer "SYN then RST": OTH */
	run_init(&r, 40000, 80);
	seg(&r, C, SYN, 1000, 0, 0, 0);
	seg(&r, SV, A, 5000, 1001, 0, 1);
	seg(&r, C, FA, 1001, 5000, 0, 2);
	seg(&r, C, R, 1002, 0, 0, 3);
	c = finish(&r, 4);
	ZEEK(c, "OTH", "SaFR");
	run_free(&r);
}

/* S2: "established and close attempt by originator seen (but no reply from
 * responder)"; S3 the same by the responder. */
static void test_s2_s3(void)
{
	struct run r;
	struct conn *c;

	run_init(&r, 40000, 80);
	handshake(&r);
	seg(&r, C, FA, 1001, 5001, 0, 3);
	c = finish(&r, 4);
	ZEEK(c, "S2", "ShAF");
	run_free(&r);

	run_init(&r, 40000, 80);
	handshake(&r);
	seg(&r, SV, FA, 5001, 1001, 0, 3);
	c = finish(&r, 4);
	ZEEK(c, "S3", "ShAf");
	run_free(&r);
}

/* RSTO: "established, originator aborted (sent a RST)"; RSTR: "Responder
 * sent a RST". RSTRH: "Responder sent a SYN ACK followed by a RST, we never
 * saw a SYN from the (purported) originator" - the SYN-ACK from port 80
 * makes Zeek flip the connection at once ('^' first). */
static void test_rsto_rstr_rstrh(void)
{
	struct run r;
	struct conn *c;

	run_init(&r, 40000, 80);
	handshake(&r);
	seg(&r, C, RA, 1001, 5001, 0, 3);
	c = finish(&r, 4);
	ZEEK(c, "RSTO", "ShAR");
	run_free(&r);

	run_init(&r, 40000, 80);
	handshake(&r);
	seg(&r, SV, RA, 5001, 1001, 0, 3);
	c = finish(&r, 4);
	ZEEK(c, "RSTR", "ShAr");
	run_free(&r);

	run_init(&r, 40000, 80);
	seg(&r, SV, SA, 5000, 1001, 0, 0);
	seg(&r, SV, R, 5001, 0, 0, 1);
	c = finish(&r, 2);
	ZEEK(c, "RSTRH", "^hr");
	CHECK(c && zeek_orig_role(c) == ROLE_CLIENT);
	run_free(&r);
}

/* SH: "Originator sent a SYN followed by a FIN, we never saw a SYN ACK";
 * SHR: "Responder sent a SYN ACK followed by a FIN, we never saw a SYN". */
static void test_sh_shr(void)
{
	struct run r;
	struct conn *c;

	run_init(&r, 40000, 80);
	seg(&r, C, SYN, 1000, 0, 0, 0);
	seg(&r, C, FA, 1001, 0, 0, 1);
	c = finish(&r, 2);
	ZEEK(c, "SH", "SF");
	run_free(&r);

	run_init(&r, 40000, 80);
	seg(&r, SV, SA, 5000, 1001, 0, 0);
	seg(&r, SV, FA, 5001, 1001, 0, 1);
	c = finish(&r, 2);
	ZEEK(c, "SHR", "^hf");
	run_free(&r);
}

/* OTH: "No SYN seen, just midstream traffic". The first packet comes from
 * port 80, a likely server port, so Zeek flips it (^). */
static void test_oth_midstream(void)
{
	struct run r;
	struct conn *c;

	run_init(&r, 40000, 80);
	seg(&r, SV, PA, 5001, 1001, 100, 0);
	seg(&r, C, A, 1001, 5101, 0, 1);
	c = finish(&r, 2);
	ZEEK(c, "OTH", "^dA");
	CHECK(c && zeek_orig_role(c) == ROLE_CLIENT);
	run_free(&r);

	/* Neither port is a likely server port: the first sender originates. */
	run_init(&r, 40000, 45000);
	seg(&r, SV, PA, 5001, 1001, 100, 0);
	seg(&r, C, A, 1001, 5101, 0, 1);
	c = finish(&r, 2);
	ZEEK(c, "OTH", "Da");
	CHECK(c && conn_port(c, zeek_orig_role(c)) == 45000);
	run_free(&r);
}

/* A SYN-ACK first, then an ACK: flipped on the second packet, the letters
 * so far change case behind a leading '^' (baselines core.tcp.missing-syn
 * "^hADdFaf", core.conn-size-flip "^haf"). Ports 40000/45000: no port-based
 * flip. */
static void test_flip_second_packet(void)
{
	struct run r;
	struct conn *c;

	run_init(&r, 40000, 45000);
	seg(&r, SV, SA, 5000, 1001, 0, 0);
	seg(&r, C, A, 1001, 5001, 0, 1);
	seg(&r, C, PA, 1001, 5001, 10, 2);
	seg(&r, SV, FA, 5001, 1011, 0, 3);
	seg(&r, C, FA, 1011, 5002, 0, 4);
	c = finish(&r, 5);
	ZEEK(c, "SF", "^hADfF");
	CHECK(c && zeek_orig_role(c) == ROLE_CLIENT);
	run_free(&r);

	/* only the server's side captured */
	run_init(&r, 2745, 281);
	seg(&r, SV, SA, 5000, 1001, 0, 0);
	seg(&r, SV, A, 5001, 1053, 0, 40);
	seg(&r, SV, FA, 5001, 1054, 0, 10000);
	c = finish(&r, 10001);
	ZEEK(c, "SHR", "^haf");
	run_free(&r);
}

/* SYN-ACK captured before its SYN (Zeek trace handshake-reorder with
 * likely_server_ports emptied; here ports 40000/45000 stand in): the SYN
 * from the responder flips the roles and '^' follows its letter:
 * "Hs^ADadFf". */
static void test_flip_reversed_handshake(void)
{
	struct run r;
	struct conn *c;

	run_init(&r, 40000, 45000);
	seg(&r, SV, SA, 5000, 1001, 0, 0);
	seg(&r, C, SYN, 1000, 0, 0, 1);
	seg(&r, C, A, 1001, 5001, 0, 2);
	seg(&r, C, PA, 1001, 5001, 10, 3);
	seg(&r, SV, A, 5001, 1011, 0, 4);
	seg(&r, SV, PA, 5001, 1011, 20, 5);
	seg(&r, C, FA, 1011, 5021, 0, 6);
	seg(&r, SV, FA, 5021, 1012, 0, 7);
	c = finish(&r, 8);
	ZEEK(c, "SF", "Hs^ADadFf");
	CHECK(c && zeek_orig_role(c) == ROLE_CLIENT);
	run_free(&r);
}

/* t, w: logged at the 1st, 10th, 100th ... occurrence ("recorded in a
 * logarithmic fashion"). */
static void test_scaled_letters(void)
{
	struct run r;
	struct conn *c;

	run_init(&r, 40000, 80);
	handshake(&r);
	seg(&r, SV, PA, 5001, 1001, 100, 3);
	for (int i = 0; i < 10; i++)   /* 10 retransmissions, 300 ms apart: t at 1 and at 10 */
		seg(&r, SV, PA, 5001, 1001, 100, 300 * (1 + (uint64_t)i));
	seg(&r, C, A, 1001, 5101, 0, 3301);
	c = finish(&r, 3302);
	ZEEK(c, "S1", "ShAdtt");
	run_free(&r);

	run_init(&r, 40000, 80);
	handshake(&r);
	for (int i = 0; i < 100; i++)  /* 100 zero-window ACKs, 300 ms apart: W at 1, 10, 100 */
		seg_w(&r, C, A, 1001, 5001, 0, 300 * (1 + (uint64_t)i), 0);
	c = finish(&r, 30301);
	ZEEK(c, "S1", "ShAWWW");
	run_free(&r);
}

/* More than the 19 letters kept: the history ends in '+' (not a Zeek
 * letter: Zeek's own would go on with the final 'f'). */
static void test_long_history(void)
{
	struct run r;
	struct conn *c;
	uint64_t ms = 10;

	run_init(&r, 40000, 80);
	handshake(&r);
	seg(&r, C, PA, 1001, 5001, 100, 3);
	seg(&r, SV, PA, 5001, 1101, 100, 4);
	seg(&r, SV, A, 5101, 1101, 0, 5);
	for (int i = 0; i < 100; i++, ms += 300)
		seg(&r, C, PA, 1001, 5101, 100, ms);
	for (int i = 0; i < 100; i++, ms += 300)
		seg(&r, SV, PA, 5001, 1101, 100, ms);
	for (int i = 0; i < 100; i++, ms += 300)
		seg_w(&r, C, A, 1101, 5101, 0, ms, 0);
	for (int i = 0; i < 100; i++, ms += 300)
		seg_w(&r, SV, A, 5101, 1101, 0, ms, 0);
	seg(&r, C, FA, 1101, 5101, 0, ms);
	seg(&r, SV, FA, 5101, 1102, 0, ms + 1);
	c = finish(&r, ms + 2);
	ZEEK(c, "SF", "ShADdaTTTtttWWWwwwF+");
	run_free(&r);
}

/* I: FIN and RST together; Q: other multi-flag packets (SYN+FIN). F again
 * only for a FIN at a new sequence number. */
static void test_multi_flags_and_repeats(void)
{
	struct run r;
	struct conn *c;

	run_init(&r, 40000, 80);
	handshake(&r);
	seg(&r, C, TH_FIN | TH_RST | TH_ACK, 1001, 5001, 0, 3);
	seg(&r, SV, TH_SYN | TH_FIN, 5000, 0, 0, 4);
	c = finish(&r, 5);
	ZEEK(c, "RSTO", "ShAIq");
	run_free(&r);

	run_init(&r, 40000, 80);
	handshake(&r);
	seg(&r, C, FA, 1001, 5001, 0, 3);
	seg(&r, C, FA, 1001, 5001, 0, 300);   /* retransmission: same FIN */
	seg(&r, SV, FA, 5001, 1002, 0, 301);
	seg(&r, SV, FA, 5001, 1002, 0, 600);  /* again */
	c = finish(&r, 601);
	ZEEK(c, "SF", "ShAFf");
	run_free(&r);
}

/* A content gap: the client acknowledges server data the capture never
 * showed ('g', missed_bytes). */
static void test_gap(void)
{
	struct run r;
	struct conn *c;

	run_init(&r, 40000, 80);
	handshake(&r);
	seg(&r, SV, PA, 5001, 1001, 100, 3);
	/* 5101..5201 lost at the capture point */
	seg(&r, SV, PA, 5201, 1001, 100, 4);
	seg(&r, C, A, 1001, 5301, 0, 5);
	c = finish(&r, 6);
	ZEEK(c, "S1", "ShAdg");   /* the client's A was logged in the handshake */
	CHECK_EQ_INT(c ? zeek_missed_bytes(c) : 0, 200);
	run_free(&r);

	/* the hole filled late (reordering): no gap */
	run_init(&r, 40000, 80);
	handshake(&r);
	seg(&r, SV, PA, 5001, 1001, 100, 3);
	seg(&r, SV, PA, 5201, 1001, 100, 4);
	seg(&r, SV, PA, 5101, 1001, 100, 5);
	seg(&r, C, A, 1001, 5301, 0, 6);
	c = finish(&r, 7);
	ZEEK(c, "S1", "ShAdt");   /* the late segment is below last_seq: 't' */
	CHECK_EQ_INT(c ? zeek_missed_bytes(c) : 0, 0);
	run_free(&r);
}

/* A segment captured twice within a millisecond (a SPAN copy): the tracker
 * keeps it out of its state machine and hands it to zeek_copy(); Zeek counts
 * it as a packet and a retransmission (baseline core.tcp.tcp-dups: every
 * packet three times, "ShADTadtTtFf"). Called here directly, so the test
 * does not depend on the tracker's duplicate rule. */
static void test_copies(void)
{
	struct run r;
	struct conn *c;
	struct packet p;

	run_init(&r, 40000, 80);
	handshake(&r);
	seg(&r, C, PA, 1001, 5001, 100, 3);
	c = finish(&r, 4);
	memset(&p, 0, sizeof(p));
	p.family = 4;
	p.ts_ns = T0 + 3 * MS;
	p.flags = PA;
	p.seq = 1001;
	p.ack = 5001;
	p.payload_len = 100;
	p.ip_len = 140;
	p.window = 65535;
	if (c)
		zeek_copy(c, ROLE_CLIENT, &p);
	ZEEK(c, "S1", "ShADT");
	CHECK_EQ_INT(c ? zeek_packets(c, ROLE_CLIENT) : 0, 4);
	CHECK_EQ_INT(c ? zeek_ip_bytes(c, ROLE_CLIENT) : 0, 4 * 40 + 200);
	CHECK_EQ_INT(c ? zeek_size(c, ROLE_CLIENT) : 0, 100);
	run_free(&r);
}

/* A new incarnation (new SYN after the close) starts a new Zeek record. */
static void test_reuse_and_uid(void)
{
	struct run r;
	char a[16], b[16];

	run_init(&r, 40000, 80);
	handshake(&r);
	seg(&r, C, FA, 1001, 5001, 0, 3);
	seg(&r, SV, FA, 5001, 1002, 0, 4);
	seg(&r, C, A, 1002, 5002, 0, 5);
	seg(&r, C, SYN, 90000, 0, 0, 1000);
	tracker_finish(r.t, T0 + 1001 * MS);
	CHECK_EQ_INT(r.n, 2);
	if (r.n == 2) {
		ZEEK(r.conns[0], "SF", "ShAFf");
		ZEEK(r.conns[1], "S0", "S");
		zeek_uid(r.conns[0], a, sizeof(a));
		zeek_uid(r.conns[1], b, sizeof(b));
		CHECK(a[0] == 'C' && strcmp(a, b) != 0);
	}
	run_free(&r);
}

/* xorshift64: the same streams on every run. */
static uint64_t rnd(uint64_t *st)
{
	*st ^= *st << 13;
	*st ^= *st >> 7;
	*st ^= *st << 17;
	return *st;
}

static uint32_t pick(uint64_t *st, uint32_t n)
{
	return (uint32_t)(rnd(st) % n);
}

/* Flag bytes a stream draws from: mostly the common ACK and data segments
 * (the fast path's), and every kind the model treats apart. */
static const uint8_t stream_flags[] = {
	A, A, A, A, PA, PA, PA, PA, A, PA, SYN, SA, FA, FA, RA, R,
	TH_FIN | TH_RST | TH_ACK, TH_SYN | TH_FIN, TH_FIN, 0, TH_ACK | TH_URG, PA | TH_ECE,
};

/* A random segment of a connection whose endpoints send from snd[] and
 * acknowledge up to the peer's snd[]: mostly in order, sometimes a
 * retransmission, a jump (a gap), a stale or early ACK, a zero window or a
 * number far off. */
static void stream_segment(uint64_t *st, struct packet *p, int s, uint32_t snd[2], uint64_t ms)
{
	uint32_t r = pick(st, 100);

	memset(p, 0, sizeof(*p));
	p->family = 4;
	p->ts_ns = T0 + ms * MS;
	p->flags = stream_flags[pick(st, sizeof(stream_flags))];
	p->payload_len = pick(st, 2) ? 0 : 1 + pick(st, 1460);
	p->seq = snd[s];
	if (r < 10)
		p->seq -= pick(st, 3000);                /* a retransmission */
	else if (r < 15)
		p->seq += 1 + pick(st, 3000);            /* above a hole */
	else if (r < 17)
		p->seq = (uint32_t)rnd(st);              /* anywhere */
	p->ack = snd[!s];
	r = pick(st, 100);
	if (r < 8)
		p->ack -= pick(st, 3000);
	else if (r < 14)
		p->ack += 1 + pick(st, 3000);            /* data the capture missed */
	else if (r < 15)
		p->ack = (uint32_t)rnd(st);
	p->window = pick(st, 20) ? (uint16_t)(1 + pick(st, 65535)) : 0;
	p->ip_len = pick(st, 50) ? 40 + p->payload_len : pick(st, 60);
	if (seq_gt(p->seq + p->payload_len, snd[s]))
		snd[s] = p->seq + p->payload_len;
	if (p->flags & (TH_SYN | TH_FIN))
		snd[s]++;
}

/* zeek_segment()'s fast paths (ACK and data segments, FINs, the SYN or
 * SYN-ACK that opens an endpoint) must change nothing: random segment
 * streams go through them and through the whole model
 * (zeek_segment_general), and both records stay equal byte for byte after
 * every segment. Streams start with a handshake or mid-stream; some are long
 * enough for the 10th and 100th T, W and G. */
static void test_fast_path_matches_model(void)
{
	uint64_t st = 0x9e3779b97f4a7c15ULL;
	struct conn *fast = calloc(1, sizeof(*fast)), *full = calloc(1, sizeof(*full));
	long segments = 0, mismatches = 0;

	CHECK(fast && full);
	if (!fast || !full)
		goto out;
	for (int n = 0; n < 4000 && !mismatches; n++) {
		uint32_t snd[2] = { (uint32_t)rnd(&st), (uint32_t)rnd(&st) };
		int len = n % 50 == 0 ? 1500 : 4 + (int)pick(&st, 60);
		uint64_t ms = 0;

		/* how it starts: the handshake, its first one or two segments, a
		 * SYN-ACK (Zeek flips), or mid-stream */
		static const uint8_t starts[][3] = {
			{ SYN, SA, A }, { SYN, SA, A }, { SYN }, { SYN, SA }, { SA }, { 0 },
		};
		const uint8_t *start = starts[pick(&st, sizeof(starts) / sizeof(starts[0]))];

		memset(fast, 0, sizeof(*fast));
		fast->first_ns = T0;
		*full = *fast;
		for (int i = 0; i < 3 && start[i]; i++, ms++) {
			struct packet h;
			int s = start[i] == SA ? ROLE_SERVER : ROLE_CLIENT;

			memset(&h, 0, sizeof(h));
			h.family = 4;
			h.ts_ns = T0 + ms * MS;
			h.window = 65535;
			h.ip_len = 40;
			h.flags = start[i];
			h.seq = snd[s];
			h.ack = start[i] == SYN ? 0 : snd[!s];
			if (start[i] & TH_SYN)
				snd[s]++;
			zeek_segment(fast, s, &h);   /* the fast paths open connections too */
			zeek_segment_general(full, s, &h);
		}
		if (memcmp(&fast->zeek, &full->zeek, sizeof(fast->zeek)) != 0) {
			fprintf(stderr, "stream %d: differs after its first segments\n", n);
			mismatches++;
			break;
		}
		for (int i = 0; i < len; i++, segments++) {
			struct packet p;
			int s = (int)pick(&st, 2);

			ms += pick(&st, 3) ? pick(&st, 5) : 400000;
			stream_segment(&st, &p, s, snd, ms);
			if (pick(&st, 40)) {
				zeek_segment(fast, s, &p);
				zeek_segment_general(full, s, &p);
			} else {   /* a capture copy, the same for both */
				zeek_copy(fast, s, &p);
				zeek_copy(full, s, &p);
			}
			if (memcmp(&fast->zeek, &full->zeek, sizeof(fast->zeek)) != 0) {
				char hf[ZEEK_HISTORY_MAX], hg[ZEEK_HISTORY_MAX];

				zeek_history(fast, hf, sizeof(hf));
				zeek_history(full, hg, sizeof(hg));
				fprintf(stderr, "stream %d segment %d (flags 0x%02x, len %u): "
					"fast %s %s, model %s %s\n", n, i, p.flags, p.payload_len,
					zeek_conn_state(fast), hf, zeek_conn_state(full), hg);
				mismatches++;
				break;
			}
		}
	}
	CHECK_EQ_INT(mismatches, 0);
	printf("  fast path: %ld random segments, both ways\n", segments);
out:
	free(fast);
	free(full);
}

int main(void)
{
	test_s0();
	test_s1_sf();
	test_rej_rstos0();
	test_s2_s3();
	test_rsto_rstr_rstrh();
	test_sh_shr();
	test_oth_midstream();
	test_flip_second_packet();
	test_flip_reversed_handshake();
	test_scaled_letters();
	test_multi_flags_and_repeats();
	test_long_history();
	test_gap();
	test_reuse_and_uid();
	test_copies();
	test_fast_path_matches_model();
	printf("sizeof(struct zeek_conn) = %zu\n", sizeof(struct zeek_conn));
	return test_done("test_zeek");
}
