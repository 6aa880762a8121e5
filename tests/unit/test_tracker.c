/* test_tracker.c - the observer on hand-built segment sequences, one
 * scenario per situation the core issue names. Expected states are worked
 * out by hand from RFC 793 and Linux behaviour (comments say how), never
 * taken from tcpstate's output. Client 10.0.0.1:40000, server 10.0.0.2:80. */
#include <stdlib.h>

#include "conn_pack.h"
#include "conn_pool.h"
#include "segment.h"
#include "test.h"
#include "tracker.h"
#include "zeek.h"


struct sink_state {
	struct conn *conns[64];
	int n;
};

static bool take(void *ctx, struct conn *c)
{
	struct sink_state *ss = ctx;

	if (ss->n == 64)
		return false;
	ss->conns[ss->n++] = c;
	return true;
}

struct run {
	struct tracker *t;
	struct sink_state sink;
	uint64_t number;
};

static void run_init(struct run *r)
{
	struct tracker_config cfg = { .time_wait_ns = 60 * S, .linger_ns = 5 * S, .keep_timeline = true };
	struct tracker_sink sk = { .retired = take };

	memset(r, 0, sizeof(*r));
	sk.ctx = &r->sink;
	r->t = tracker_create(&cfg, &sk);
}

static void run_free(struct run *r)
{
	tracker_destroy(r->t);
	for (int i = 0; i < r->sink.n; i++)
		conn_destroy(r->sink.conns[i]);
}

/* One segment; from_client picks the direction; ms is the time offset. */
static void seg(struct run *r, bool from_client, uint8_t flags, uint32_t seq, uint32_t ack,
		uint32_t len, uint64_t ms)
{
	struct packet p = segment_make(from_client, 40000, 80, flags, seq, ack, len, ms,
				       ++r->number, 65535);

	tracker_packet(r->t, &p);
}

/* Finish at ms and return connection i (in hand-out order). */
static struct conn *finish(struct run *r, uint64_t ms, int i)
{
	tracker_finish(r->t, T0 + ms * MS);
	return i < r->sink.n ? r->sink.conns[i] : NULL;
}

#define STATES(c, cs, ss) do { \
	CHECK((c) != NULL); \
	if (c) { \
		CHECK_EQ_STR(tcp_state_name((c)->peer[ROLE_CLIENT].state), cs); \
		CHECK_EQ_STR(tcp_state_name((c)->peer[ROLE_SERVER].state), ss); \
	} \
} while (0)

/* Client ISN 1000, server ISN 5000. */
static void handshake(struct run *r)
{
	seg(r, C, SYN, 1000, 0, 0, 0);
	seg(r, SV, SA, 5000, 1001, 0, 1);
	seg(r, C, A, 1001, 5001, 0, 2);
}

static void test_open_close_client_first(void)
{
	struct run r;
	struct conn *c;

	run_init(&r);
	handshake(&r);
	seg(&r, C, PA, 1001, 5001, 100, 3);
	seg(&r, SV, PA, 5001, 1101, 200, 4);
	seg(&r, C, FA, 1101, 5201, 0, 5);    /* client FIN_WAIT_1, server CLOSE_WAIT */
	seg(&r, SV, A, 5201, 1102, 0, 6);    /* client FIN_WAIT_2 */
	seg(&r, SV, FA, 5201, 1102, 0, 7);   /* server LAST_ACK, client TIME_WAIT */
	seg(&r, C, A, 1102, 5202, 0, 8);     /* server CLOSED */
	c = finish(&r, 8, 0);
	STATES(c, "TIME_WAIT", "CLOSED");
	CHECK(c && conn_closed_cleanly(c));
	CHECK(c && c->peer[0].packets == 5 && c->peer[1].packets == 4);
	CHECK(c && c->peer[0].bytes == 100 && c->peer[1].bytes == 200);
	/* 10 transitions: SS, SR, ES(c), ES(s), F1, CW, F2, LA, TW, CL */
	CHECK_EQ_INT(c ? c->tl_len : 0, 10);
	run_free(&r);

	/* The same, 61 s later: TIME_WAIT (60 s) has run out. */
	run_init(&r);
	handshake(&r);
	seg(&r, C, FA, 1001, 5001, 0, 5);
	seg(&r, SV, FA, 5001, 1002, 0, 6);   /* FIN acks ours: F1 -> TW directly */
	seg(&r, C, A, 1002, 5002, 0, 7);
	c = finish(&r, 61007, 0);
	STATES(c, "CLOSED", "CLOSED");
	CHECK(c && (c->flags & CF_TW_EXPIRED));
	run_free(&r);
}

static void test_close_server_first(void)
{
	struct run r;
	struct conn *c;

	run_init(&r);
	handshake(&r);
	seg(&r, SV, FA, 5001, 1001, 0, 5);
	seg(&r, C, A, 1001, 5002, 0, 6);
	seg(&r, C, FA, 1001, 5002, 0, 7);
	seg(&r, SV, A, 5002, 1002, 0, 8);
	c = finish(&r, 9, 0);
	STATES(c, "CLOSED", "TIME_WAIT");
	run_free(&r);

	/* Server closed, client never does: CLOSE_WAIT / FIN_WAIT_2. */
	run_init(&r);
	handshake(&r);
	seg(&r, SV, FA, 5001, 1001, 0, 5);
	seg(&r, C, A, 1001, 5002, 0, 6);
	c = finish(&r, 100000, 0);
	STATES(c, "CLOSE_WAIT", "FIN_WAIT_2");
	CHECK(c && c->peer[ROLE_CLIENT].since_ns == T0 + 5 * MS);
	run_free(&r);
}

static void test_simultaneous(void)
{
	struct run r;
	struct conn *c;

	/* Simultaneous close: FINs cross, neither acknowledges the other. */
	run_init(&r);
	handshake(&r);
	seg(&r, C, FA, 1001, 5001, 0, 5);
	seg(&r, SV, FA, 5001, 1001, 0, 5);   /* server: ES->F1 (send), client F1->CLOSING (recv) */
	c = NULL;
	tracker_finish(r.t, T0 + 5 * MS);
	c = r.sink.conns[0];
	STATES(c, "CLOSING", "CLOSING");
	CHECK(c && (c->flags & CF_SIM_CLOSE));
	run_free(&r);

	run_init(&r);
	handshake(&r);
	seg(&r, C, FA, 1001, 5001, 0, 5);
	seg(&r, SV, FA, 5001, 1001, 0, 5);
	seg(&r, C, A, 1002, 5002, 0, 6);     /* server CLOSING -> TIME_WAIT */
	seg(&r, SV, A, 5002, 1002, 0, 6);    /* client CLOSING -> TIME_WAIT */
	c = finish(&r, 7, 0);
	STATES(c, "TIME_WAIT", "TIME_WAIT");
	run_free(&r);

	/* Simultaneous open: SYNs cross, then both SYN-ACK. */
	run_init(&r);
	seg(&r, C, SYN, 1000, 0, 0, 0);
	seg(&r, SV, SYN, 5000, 0, 0, 0);      /* client SS -> SR; server CL -> SS */
	seg(&r, C, SA, 1000, 5001, 0, 1);     /* server SS -> ES */
	seg(&r, SV, SA, 5000, 1001, 0, 1);    /* client SR -> ES */
	c = finish(&r, 2, 0);
	CHECK_EQ_INT(r.sink.n, 1);            /* one connection, not two */
	STATES(c, "ESTABLISHED", "ESTABLISHED");
	run_free(&r);
}

static void test_rst(void)
{
	struct run r;
	struct conn *c;

	/* In-window RST from the client: both CLOSED. */
	run_init(&r);
	handshake(&r);
	seg(&r, C, RA, 1001, 5001, 0, 5);
	c = finish(&r, 6, 0);
	STATES(c, "CLOSED", "CLOSED");
	CHECK(c && (c->flags & CF_RESET) && !conn_closed_cleanly(c));
	run_free(&r);

	/* RST far outside the server's window: ignored, reported. */
	run_init(&r);
	handshake(&r);
	seg(&r, C, R, 1001 + 0x40000000u, 0, 0, 5);
	c = finish(&r, 6, 0);
	STATES(c, "CLOSED", "ESTABLISHED");   /* the sender aborted; the receiver did not accept */
	CHECK(c && (c->flags & CF_RST_IGNORED));
	CHECK_EQ_INT(tracker_stats(r.t)->anomalies[AN_RST_OUT_OF_WINDOW], 1);
	run_free(&r);

	/* Refused: RST+ACK acknowledging the SYN. */
	run_init(&r);
	seg(&r, C, SYN, 1000, 0, 0, 0);
	seg(&r, SV, RA, 0, 1001, 0, 1);
	c = finish(&r, 2, 0);
	STATES(c, "CLOSED", "CLOSED");
	CHECK(c && (c->flags & CF_REFUSED));
	run_free(&r);

	/* An RST whose ACK does not acknowledge the SYN is not acceptable (RFC 793). */
	run_init(&r);
	seg(&r, C, SYN, 1000, 0, 0, 0);
	seg(&r, SV, RA, 0, 777, 0, 1);
	c = finish(&r, 2, 0);
	STATES(c, "SYN_SENT", "CLOSED");
	run_free(&r);

	/* Data to an endpoint that was reset is answered by RST again: anomaly. */
	run_init(&r);
	handshake(&r);
	seg(&r, SV, RA, 5001, 1001, 0, 5);
	seg(&r, C, PA, 1001, 5001, 10, 6);
	seg(&r, SV, R, 5001, 0, 0, 7);
	c = finish(&r, 8, 0);
	STATES(c, "CLOSED", "CLOSED");
	CHECK(tracker_stats(r.t)->anomalies[AN_AFTER_CLOSE] >= 1);
	run_free(&r);
}

static void test_syn_retransmit_and_reuse(void)
{
	struct run r;
	struct conn *c;

	/* Retransmitted SYN (same ISN): one connection, SYN_SENT. */
	run_init(&r);
	seg(&r, C, SYN, 1000, 0, 0, 0);
	seg(&r, C, SYN, 1000, 0, 0, 1000);
	seg(&r, C, SYN, 1000, 0, 0, 2000);
	c = finish(&r, 2500, 0);
	CHECK_EQ_INT(r.sink.n, 1);
	STATES(c, "SYN_SENT", "CLOSED");
	CHECK(c && c->peer[0].packets == 3);
	run_free(&r);

	/* Port reuse: a closed connection, then a new SYN with a new ISN while
	 * the client holds TIME_WAIT: two incarnations. */
	run_init(&r);
	handshake(&r);
	seg(&r, C, FA, 1001, 5001, 0, 5);
	seg(&r, SV, FA, 5001, 1002, 0, 6);
	seg(&r, C, A, 1002, 5002, 0, 7);
	seg(&r, C, SYN, 900000, 0, 0, 1000);
	seg(&r, SV, SA, 700000, 900001, 0, 1001);
	seg(&r, C, A, 900001, 700001, 0, 1002);
	tracker_finish(r.t, T0 + 1003 * MS);
	CHECK_EQ_INT(r.sink.n, 2);
	if (r.sink.n == 2) {
		struct conn *a = r.sink.conns[0], *b = r.sink.conns[1];

		STATES(a, "CLOSED", "CLOSED");      /* the TIME_WAIT was recycled */
		CHECK(a->flags & CF_SUPERSEDED);
		STATES(b, "ESTABLISHED", "ESTABLISHED");
		CHECK(b->flags & CF_PORT_REUSED);
		CHECK(a->id < b->id);
	}
	run_free(&r);

	/* A SYN with a new ISN on an established connection is an anomaly, not
	 * a new incarnation (Linux answers with a challenge ACK). */
	run_init(&r);
	handshake(&r);
	seg(&r, C, SYN, 333333, 0, 0, 10);
	c = finish(&r, 11, 0);
	CHECK_EQ_INT(r.sink.n, 1);
	STATES(c, "ESTABLISHED", "ESTABLISHED");
	CHECK(c && (c->flags & CF_SYN_ON_ESTAB));
	run_free(&r);
}

static void test_not_accepted(void)
{
	struct run r;
	struct conn *c;

	/* LAST_ACK with the final ACK lost at the server: the FIN comes again
	 * 200 ms after the captured ACK, and again; the client re-ACKs each. */
	run_init(&r);
	handshake(&r);
	seg(&r, C, FA, 1001, 5001, 0, 5);
	seg(&r, SV, A, 5001, 1002, 0, 6);
	seg(&r, SV, FA, 5001, 1002, 0, 10);  /* server LAST_ACK, client TIME_WAIT */
	seg(&r, C, A, 1002, 5002, 0, 11);    /* captured, never accepted */
	seg(&r, SV, FA, 5001, 1002, 0, 210); /* proves it: server back to LAST_ACK */
	seg(&r, C, A, 1002, 5002, 0, 211);   /* held back: same kind was ignored before */
	c = finish(&r, 400, 0);
	STATES(c, "TIME_WAIT", "LAST_ACK");
	CHECK(c && (c->flags & CF_NOT_ACCEPTED));
	run_free(&r);

	/* Same, but the server then stays quiet for long: the last ACK worked. */
	run_init(&r);
	handshake(&r);
	seg(&r, C, FA, 1001, 5001, 0, 5);
	seg(&r, SV, A, 5001, 1002, 0, 6);
	seg(&r, SV, FA, 5001, 1002, 0, 10);
	seg(&r, C, A, 1002, 5002, 0, 11);
	seg(&r, SV, FA, 5001, 1002, 0, 210);
	seg(&r, C, A, 1002, 5002, 0, 211);
	c = finish(&r, 5000, 0);
	STATES(c, "TIME_WAIT", "CLOSED");
	run_free(&r);

	/* SYN_RECEIVED with the handshake ACK lost: SYN-ACK retransmitted 1 s
	 * later, the client ACKs again; at 1.5 s the server is SYN_RECEIVED. */
	run_init(&r);
	handshake(&r);
	seg(&r, SV, SA, 5000, 1001, 0, 1001);
	seg(&r, C, A, 1001, 5001, 0, 1002);
	c = finish(&r, 1500, 0);
	STATES(c, "ESTABLISHED", "SYN_RECEIVED");
	run_free(&r);

	/* FIN_WAIT_1 with the FIN dropped before the server took it: the
	 * server never ACKs it and the client retransmits: server is still
	 * ESTABLISHED. When the server finally ACKs, it is CLOSE_WAIT. */
	run_init(&r);
	handshake(&r);
	seg(&r, SV, PA, 5001, 1001, 10, 3);
	seg(&r, C, FA, 1001, 5011, 0, 5);
	seg(&r, C, FA, 1001, 5011, 0, 210);
	seg(&r, C, FA, 1001, 5011, 0, 610);
	tracker_finish(r.t, T0 + 700 * MS);
	c = r.sink.conns[0];
	STATES(c, "FIN_WAIT_1", "ESTABLISHED");
	run_free(&r);

	run_init(&r);
	handshake(&r);
	seg(&r, SV, PA, 5001, 1001, 10, 3);
	seg(&r, C, FA, 1001, 5011, 0, 5);
	seg(&r, C, FA, 1001, 5011, 0, 210);
	seg(&r, SV, A, 5011, 1002, 0, 211);
	c = finish(&r, 300, 0);
	STATES(c, "FIN_WAIT_2", "CLOSE_WAIT");
	run_free(&r);
}

static void test_pickup_and_one_sided(void)
{
	struct run r;
	struct conn *c;

	/* Joined mid-stream: data both ways, no SYN. Port 80 is the server. */
	run_init(&r);
	seg(&r, SV, PA, 5001, 1001, 100, 0);
	seg(&r, C, A, 1001, 5101, 0, 1);
	c = finish(&r, 2, 0);
	STATES(c, "ESTABLISHED", "ESTABLISHED");
	CHECK(c && (c->flags & CF_PICKED_UP) && (c->flags & CF_ROLE_BY_PORT));
	CHECK(c && conn_port(c, ROLE_SERVER) == 80 && conn_port(c, ROLE_CLIENT) == 40000);
	run_free(&r);

	/* First packet a SYN-ACK: its sender is the server. */
	run_init(&r);
	seg(&r, SV, SA, 5000, 1001, 0, 0);
	seg(&r, C, A, 1001, 5001, 0, 1);
	c = finish(&r, 2, 0);
	STATES(c, "ESTABLISHED", "ESTABLISHED");
	CHECK(c && (c->flags & CF_ROLE_BY_SYNACK));
	run_free(&r);

	/* Only the client's direction captured: SYN, ACK, data, FIN. The ACK
	 * proves a SYN-ACK; the server is then ESTABLISHED, and CLOSE_WAIT
	 * after the FIN (nothing contradicts it: its segments are unseen). */
	run_init(&r);
	seg(&r, C, SYN, 1000, 0, 0, 0);
	seg(&r, C, A, 1001, 5001, 0, 1);
	seg(&r, C, PA, 1001, 5001, 50, 2);
	seg(&r, C, FA, 1051, 5001, 0, 3);
	seg(&r, C, FA, 1051, 5001, 0, 300);  /* retransmitted: no server segment to contradict */
	c = finish(&r, 400, 0);
	STATES(c, "FIN_WAIT_1", "CLOSE_WAIT");
	run_free(&r);
}

static void test_sequence_wrap(void)
{
	struct run r;
	struct conn *c;

	/* ISNs just below 2^32: every comparison must wrap. */
	run_init(&r);
	seg(&r, C, SYN, 0xfffffff0u, 0, 0, 0);
	seg(&r, SV, SA, 0xffffffffu, 0xfffffff1u, 0, 1);
	seg(&r, C, A, 0xfffffff1u, 0, 0, 2);
	seg(&r, C, PA, 0xfffffff1u, 0, 100, 3);
	seg(&r, C, FA, 0x00000055u, 0, 0, 4);        /* FIN at 0x55 after wrapping */
	seg(&r, SV, A, 0, 0x00000056u, 0, 5);        /* acks the FIN across the wrap */
	c = finish(&r, 6, 0);
	STATES(c, "FIN_WAIT_2", "CLOSE_WAIT");
	CHECK(seq_lt(0xfffffff0u, 0x10u) && seq_gt(0x10u, 0xfffffff0u));
	run_free(&r);
}

static void test_bad_flags(void)
{
	struct run r;
	struct conn *c;

	run_init(&r);
	handshake(&r);
	seg(&r, C, TH_SYN | TH_FIN, 1001, 0, 0, 3);
	seg(&r, C, 0, 1001, 0, 0, 4);                 /* null flags */
	c = finish(&r, 5, 0);
	STATES(c, "ESTABLISHED", "ESTABLISHED");
	CHECK_EQ_INT(tracker_stats(r.t)->anomalies[AN_BAD_FLAGS], 2);
	run_free(&r);
}

static void test_retirement(void)
{
	struct run r;

	/* A reset connection leaves the table after the linger time (5 s),
	 * a TIME_WAIT after 60 s, so memory follows open connections. */
	run_init(&r);
	handshake(&r);
	seg(&r, C, RA, 1001, 5001, 0, 5);
	CHECK_EQ_INT(tracker_open_count(r.t), 1);
	seg(&r, C, SYN, 1, 0, 0, 6000);              /* another 4-tuple? no: same; new incarnation */
	CHECK_EQ_INT(r.sink.n, 1);
	run_free(&r);

	run_init(&r);
	handshake(&r);
	seg(&r, C, FA, 1001, 5001, 0, 5);
	seg(&r, SV, FA, 5001, 1002, 0, 6);
	seg(&r, C, A, 1002, 5002, 0, 7);
	/* unrelated traffic moves the clock */
	{
		struct packet p;

		memset(&p, 0, sizeof(p));
		p.family = 4;
		p.src[0] = 10; p.src[3] = 9; p.dst[0] = 10; p.dst[3] = 8;
		p.sport = 1234; p.dport = 22; p.flags = TH_SYN;
		p.ts_ns = T0 + 30 * S;
		tracker_packet(r.t, &p);
		CHECK_EQ_INT(r.sink.n, 0);            /* TIME_WAIT still running */
		p.ts_ns = T0 + 70 * S;
		p.sport = 1235;                        /* another SYN, another connection */
		tracker_packet(r.t, &p);
		/* The TIME_WAIT ended at 60 s; and the SYN of 30 s was never
		 * retransmitted (Linux would have at 31 s): its sender holds no
		 * socket. Both handed out; the SYN of 70 s stays. */
		CHECK_EQ_INT(r.sink.n, 2);
		CHECK_EQ_INT(tracker_open_count(r.t), 1);
	}
	if (r.sink.n == 2) {
		STATES(r.sink.conns[0], "CLOSED", "CLOSED");
		STATES(r.sink.conns[1], "CLOSED", "CLOSED");
		CHECK((r.sink.conns[0]->flags & CF_SILENT_SYN) != (r.sink.conns[1]->flags & CF_SILENT_SYN));
	}
	run_free(&r);
}

/* A retransmission that should have happened and did not: nobody holds
 * the state. Linux retransmits a SYN after 1 s and a SYN-ACK after 1 s. */
static void test_silence(void)
{
	struct run r;
	struct conn *c;

	/* A spoofed SYN: one copy, never retransmitted; 1.5 s later it may
	 * still be waiting (SYN_SENT), 2.5 s later nobody holds it. */
	run_init(&r);
	seg(&r, C, SYN, 1000, 0, 0, 0);
	c = finish(&r, 1500, 0);
	STATES(c, "SYN_SENT", "CLOSED");
	run_free(&r);
	run_init(&r);
	seg(&r, C, SYN, 1000, 0, 0, 0);
	c = finish(&r, 2500, 0);
	STATES(c, "CLOSED", "CLOSED");
	CHECK(c && (c->flags & CF_SILENT_SYN));
	run_free(&r);

	/* SYN-cookie answer: SYN-ACK never retransmitted, the "client" (spoofed)
	 * never answers: 3 s later neither side holds anything. */
	run_init(&r);
	seg(&r, C, SYN, 1000, 0, 0, 0);
	seg(&r, SV, SA, 5000, 1001, 0, 1);
	c = finish(&r, 3000, 0);
	STATES(c, "CLOSED", "CLOSED");
	CHECK(c && (c->flags & CF_SILENT_SYNACK) && (c->flags & CF_SILENT_SYN));
	run_free(&r);

	/* A real SYN_RECEIVED retransmits its SYN-ACK at 1 s, 3 s: at 4 s it is
	 * still waiting (next copy due at 7 s). */
	run_init(&r);
	seg(&r, C, SYN, 1000, 0, 0, 0);
	seg(&r, SV, SA, 5000, 1001, 0, 1);
	seg(&r, C, A, 1001, 5001, 0, 2);          /* lost at the server... */
	seg(&r, SV, SA, 5000, 1001, 0, 1001);     /* ...as this proves */
	seg(&r, C, A, 1001, 5001, 0, 1002);
	seg(&r, SV, SA, 5000, 1001, 0, 3001);
	seg(&r, C, A, 1001, 5001, 0, 3002);
	c = finish(&r, 4000, 0);
	STATES(c, "ESTABLISHED", "SYN_RECEIVED");
	run_free(&r);

	/* A SYN retransmitted every second (linear, as Linux's first four) is
	 * a real SYN_SENT at 3.5 s. */
	run_init(&r);
	seg(&r, C, SYN, 1000, 0, 0, 0);
	seg(&r, C, SYN, 1000, 0, 0, 1000);
	seg(&r, C, SYN, 1000, 0, 0, 2000);
	seg(&r, C, SYN, 1000, 0, 0, 3000);
	c = finish(&r, 3500, 0);
	STATES(c, "SYN_SENT", "CLOSED");
	run_free(&r);

	/* Linux 6.x with tcp_syn_retries 6 and 4 linear timeouts (measured on
	 * this machine's kernel): copies at 0, 1, 2, 3, 4, 5 s, then 2, 4, 8,
	 * 16, 32 s apart; it gives up about 65.5 s after the last copy. At the
	 * switch to backoff (last gap 1 s, next 2 s) the client still waits;
	 * 60 s after the last copy too; 80 s after, it is gone. */
	{
		static const uint64_t at[] = { 0, 1000, 2000, 3000, 4000, 5000, 7000, 11000, 19000,
					       35000, 67000 };
		static const struct { uint64_t upto, ref; const char *want; } cases[] = {
			{ 6, 6900, "SYN_SENT" },        /* 1.9 s after a 1 s gap: the 2 s gap is still to come */
			{ 11, 67000 + 60000, "SYN_SENT" },
			{ 11, 67000 + 80000, "CLOSED" },
		};

		for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
			run_init(&r);
			for (size_t i = 0; i < cases[k].upto; i++)
				seg(&r, C, SYN, 1000, 0, 0, at[i]);
			c = finish(&r, cases[k].ref, 0);
			CHECK(c != NULL);
			if (c)
				CHECK_EQ_STR(tcp_state_name(c->peer[ROLE_CLIENT].state), cases[k].want);
			run_free(&r);
		}
	}
}

/* A SYN alone, as the tracker leaves it, packs in the short form of a
 * flood's SYN (conn_pack.c checks the whole record against that form, so a
 * change to the tracker or Zeek's model that it misses only shows here), with
 * and without a timeline, and comes back the same. */
static void test_lone_syn_packs_short(void)
{
	struct conn_pool *pool = conn_pool_create(0);

	for (int with_tl = 0; with_tl < 2 && pool; with_tl++) {
		struct tracker_config cfg = { .time_wait_ns = 60 * S, .linger_ns = 5 * S,
					      .keep_timeline = with_tl };
		struct tracker_sink sk = { .retired = take };
		struct frozen_conn *f;
		struct conn *c, b;
		struct run r;

		memset(&r, 0, sizeof(r));
		sk.ctx = &r.sink;
		r.t = tracker_create(&cfg, &sk);
		seg(&r, C, SYN, 1000, 0, 0, 0);
		c = finish(&r, 500, 0);   /* before its check: as it was */
		STATES(c, "SYN_SENT", "CLOSED");
		if (!c) {
			run_free(&r);
			continue;
		}
		CHECK_EQ_INT(c->tl_len, with_tl);
		f = conn_freeze(c, pool, T0 + CONN_PACK_SIG_NS / 2);   /* its last_sig kept */
		CHECK(f && frozen_conn_is_lone(f));
		memset(&b, 0, sizeof(b));
		b.node = c->node;
		CHECK(f && conn_thaw(f, &b));   /* into a record of the stack: not pooled, no room */
		b.pooled = c->pooled;
		b.tl_inline = c->tl_inline;
		CHECK_EQ_INT(b.tl_len, c->tl_len);
		if (c->tl_len == 1 && b.tl_len == 1)   /* field by field: not the padding */
			CHECK(b.tl->ts_ns == c->tl->ts_ns && b.tl->packet == c->tl->packet &&
			      b.tl->side == c->tl->side && b.tl->from == c->tl->from &&
			      b.tl->to == c->tl->to && b.tl->tcp_flags == c->tl->tcp_flags &&
			      b.tl->cause == c->tl->cause);
		free(b.tl);
		b.tl = c->tl;
		CHECK(memcmp(&b, c, sizeof(b)) == 0);
		frozen_conn_destroy(f);
		run_free(&r);
	}
	conn_pool_release(pool);
}

/* Round trips from the capture point, from the handshake: the server's
 * from the SYN to its SYN-ACK, the client's from the SYN-ACK to its ACK
 * (which was never measured while the ACK was marked seen first). None
 * for a connection picked up mid-stream. */
static void test_rtt(void)
{
	struct run r;
	struct conn *c;

	run_init(&r);
	seg(&r, C, SYN, 1000, 0, 0, 0);
	seg(&r, SV, SA, 5000, 1001, 0, 3);
	seg(&r, C, A, 1001, 5001, 0, 10);
	seg(&r, C, PA, 1001, 5001, 100, 11);
	seg(&r, SV, A, 5001, 1101, 0, 30);
	c = finish(&r, 40, 0);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_INT(c->peer[ROLE_SERVER].rtt_us, 3000);
		CHECK_EQ_INT(c->peer[ROLE_CLIENT].rtt_us, 7000);
	}
	run_free(&r);

	run_init(&r);
	seg(&r, C, PA, 1001, 5001, 100, 0);
	seg(&r, SV, A, 5001, 1101, 0, 3);
	c = finish(&r, 10, 0);
	CHECK(c && c->peer[ROLE_SERVER].rtt_us == 0 && c->peer[ROLE_CLIENT].rtt_us == 0);
	run_free(&r);
}

/* Held-back ACKs: with a constant retransmission gap (a pinned RTO), a
 * quiet period of about one gap proves acceptance; a retransmission that
 * crossed the held copy (sent before it could arrive) proves nothing. */
static void test_crossing(void)
{
	struct run r;
	struct conn *c;

	run_init(&r);
	handshake(&r);                            /* both RTTs 1 ms */
	seg(&r, C, FA, 1001, 5001, 0, 5);         /* client FIN_WAIT_1, server CLOSE_WAIT */
	seg(&r, SV, A, 5001, 1002, 0, 6);
	seg(&r, SV, FA, 5001, 1002, 0, 10);       /* server LAST_ACK, client TIME_WAIT */
	seg(&r, C, A, 1002, 5002, 0, 11);         /* lost */
	seg(&r, SV, FA, 5001, 1002, 0, 1010);     /* server back to LAST_ACK */
	seg(&r, C, A, 1002, 5002, 0, 1011);       /* held: lost before */
	seg(&r, SV, FA, 5001, 1002, 0, 2010);     /* constant 1 s gaps; the held ACK was lost too */
	seg(&r, C, A, 1002, 5002, 0, 2011);       /* held again */
	c = finish(&r, 2900, 0);                  /* 0.9 s later: the next copy may still come */
	STATES(c, "TIME_WAIT", "LAST_ACK");
	run_free(&r);

	run_init(&r);
	handshake(&r);
	seg(&r, C, FA, 1001, 5001, 0, 5);
	seg(&r, SV, A, 5001, 1002, 0, 6);
	seg(&r, SV, FA, 5001, 1002, 0, 10);
	seg(&r, C, A, 1002, 5002, 0, 11);
	seg(&r, SV, FA, 5001, 1002, 0, 1010);
	seg(&r, C, A, 1002, 5002, 0, 1011);
	seg(&r, SV, FA, 5001, 1002, 0, 2010);
	seg(&r, C, A, 1002, 5002, 0, 2011);
	c = finish(&r, 3300, 0);                  /* 1.3 s of silence > 1.2 x the 1 s gap */
	STATES(c, "TIME_WAIT", "CLOSED");
	run_free(&r);

	/* A retransmission 20 us after a held copy crossed it (the client's
	 * round trip is 1 ms): that copy is still held, then confirmed by
	 * silence. Without the crossing rule it would be dropped. */
	run_init(&r);
	handshake(&r);
	seg(&r, C, FA, 1001, 5001, 0, 5);
	seg(&r, SV, FA, 5001, 1001, 0, 5);        /* crossing FINs: both CLOSING */
	seg(&r, C, FA, 1001, 5002, 0, 1005);      /* client's copy acks server FIN: server TIME_WAIT (assumed) */
	seg(&r, SV, FA, 5001, 1002, 0, 1005);     /* server FIN again: the ACK was not accepted -> CLOSING */
	seg(&r, C, FA, 1001, 5002, 0, 2005);      /* client again: held for the server (lost before) */
	seg(&r, SV, FA, 5001, 1002, 0, 2005);     /* 0 us later: crosses it, proves nothing */
	c = finish(&r, 3300, 0);
	CHECK(c && c->peer[ROLE_SERVER].state == TS_TIME_WAIT);
	run_free(&r);
}

/* A copy of a segment within a millisecond (a SPAN port) is counted and
 * ignored; two segments that differ are never taken for copies, also when
 * the difference in one field mirrors one in another (the top of seq and
 * the window, which a hash that XORed them before mixing confused). */
static void test_copies(void)
{
	struct run r;
	struct conn *c;
	struct packet p;

	run_init(&r);
	handshake(&r);
	p = segment_make(C, 40000, 80, PA, 1001, 5001, 100, 3, ++r.number, 0x1234);
	tracker_packet(r.t, &p);
	p.number = ++r.number;
	p.ts_ns += 100000;                 /* the same segment 0.1 ms later */
	tracker_packet(r.t, &p);
	CHECK_EQ_INT(tracker_stats(r.t)->duplicates, 1);
	p.number = ++r.number;
	p.ts_ns += 100000;
	p.seq ^= 0x00ff0000;               /* another segment: seq's top bits ... */
	p.window ^= 0x00ff;                /* ... and the window differ alike */
	tracker_packet(r.t, &p);
	CHECK_EQ_INT(tracker_stats(r.t)->duplicates, 1);
	p.number = ++r.number;
	p.ts_ns += 100000;
	p.ack ^= 1;                        /* and one whose ack differs */
	tracker_packet(r.t, &p);
	CHECK_EQ_INT(tracker_stats(r.t)->duplicates, 1);
	c = finish(&r, 10, 0);
	CHECK(c != NULL);
	if (c)
		CHECK_EQ_INT(c->peer[ROLE_CLIENT].packets, 2 + 3);  /* SYN, ACK, three of the four */
	run_free(&r);
}

/* segment_flags: the sink's segment() sees the run's first segment and
 * then only those with one of the flags; without them, every segment. */
struct seg_log {
	uint8_t flags[8];
	int n;
};

static void log_segment(void *ctx, const struct conn *c, int role, const struct packet *p)
{
	struct seg_log *l = ctx;

	(void)c;
	(void)role;
	if (l->n < 8)
		l->flags[l->n] = p->flags;
	l->n++;
}

static void test_segment_flags(void)
{
	for (int masked = 0; masked < 2; masked++) {
		struct tracker_config cfg = { .time_wait_ns = 60 * S, .linger_ns = 5 * S };
		struct seg_log log = { .n = 0 };
		struct tracker_sink sk = { .ctx = &log, .segment = log_segment,
					   .segment_flags = masked ? TH_SYN | TH_RST : 0 };
		struct tracker *t = tracker_create(&cfg, &sk);
		uint64_t number = 0;
		struct packet p;

		CHECK(t != NULL);
		if (!t)
			return;
		/* joined mid-stream: data, its ACK, more data, a reset */
		p = segment_make(C, 40000, 80, PA, 1001, 5001, 100, 0, ++number, 65535);
		tracker_packet(t, &p);
		p = segment_make(SV, 40000, 80, A, 5001, 1101, 0, 1, ++number, 65535);
		tracker_packet(t, &p);
		p = segment_make(C, 40000, 80, PA, 1101, 5001, 100, 2, ++number, 65535);
		tracker_packet(t, &p);
		p = segment_make(C, 40000, 80, RA, 1201, 5001, 0, 3, ++number, 0);
		tracker_packet(t, &p);
		if (masked) {
			CHECK_EQ_INT(log.n, 2);
			CHECK_EQ_INT(log.flags[0], PA);
			CHECK_EQ_INT(log.flags[1], RA);
		} else {
			CHECK_EQ_INT(log.n, 4);
		}
		tracker_destroy(t);
	}
}

/* state_mask: the sink's state_changed() sees exactly the changes from or
 * to a state in the mask, each as the timeline records it; without a mask,
 * every change. A clean close by the client, then its TIME_WAIT running out
 * at the end: 11 changes (SS, SR, ES, ES, F1, CW, F2, LA, TW, CL, CL), of
 * which 2 touch TIME_WAIT (the client's F2 -> TW and TW -> CL) and 2 more the
 * server's SYN_RECEIVED. */
struct state_log {
	struct transition tr[16];
	int n;
	struct conn *c;
};

static void log_state(void *ctx, const struct conn *c, const struct transition *tr)
{
	struct state_log *l = ctx;

	(void)c;
	if (l->n < 16)
		l->tr[l->n] = *tr;
	l->n++;
}

static bool keep_conn(void *ctx, struct conn *c)
{
	((struct state_log *)ctx)->c = c;
	return true;
}

static bool same_transition(const struct transition *a, const struct transition *b)
{
	return a->ts_ns == b->ts_ns && a->packet == b->packet && a->side == b->side &&
	       a->from == b->from && a->to == b->to && a->tcp_flags == b->tcp_flags &&
	       a->cause == b->cause;
}

static void test_state_mask(void)
{
	static const struct { uint16_t mask; int n; } cases[] = {
		{ 0, 11 },
		{ 1u << TS_TIME_WAIT, 2 },
		{ (1u << TS_SYN_RECEIVED) | (1u << TS_TIME_WAIT), 4 },
	};
	static const struct { bool from_client; uint8_t flags; uint32_t seq, ack; } segs[] = {
		{ C, SYN, 1000, 0 }, { SV, SA, 5000, 1001 }, { C, A, 1001, 5001 },
		{ C, FA, 1001, 5001 }, { SV, A, 5001, 1002 }, { SV, FA, 5001, 1002 },
		{ C, A, 1002, 5002 },
	};

	for (size_t m = 0; m < sizeof(cases) / sizeof(cases[0]); m++) {
		struct tracker_config cfg = { .time_wait_ns = 60 * S, .linger_ns = 5 * S,
					      .keep_timeline = true };
		struct state_log log = { .n = 0, .c = NULL };
		struct tracker_sink sk = { .ctx = &log, .retired = keep_conn,
					   .state_changed = log_state, .state_mask = cases[m].mask };
		struct tracker *t = tracker_create(&cfg, &sk);
		uint64_t number = 0;
		int k = 0;

		CHECK(t != NULL);
		if (!t)
			return;
		for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
			struct packet p = segment_make(segs[i].from_client, 40000, 80, segs[i].flags,
						       segs[i].seq, segs[i].ack, 0, i, ++number, 65535);

			tracker_packet(t, &p);
		}
		tracker_finish(t, T0 + 61 * S);
		CHECK(log.c != NULL);
		CHECK_EQ_INT(log.n, cases[m].n);
		if (log.c) {
			CHECK_EQ_INT(log.c->tl_len, 11);
			/* the log is the timeline's changes that touch the mask, in order */
			for (uint32_t i = 0; i < log.c->tl_len; i++) {
				const struct transition *tr = &log.c->tl[i];

				if (cases[m].mask && !((1u << tr->from | 1u << tr->to) & cases[m].mask))
					continue;
				CHECK(k < log.n && k < 16 && same_transition(&log.tr[k], tr));
				k++;
			}
			CHECK_EQ_INT(k, log.n);
			conn_destroy(log.c);
		}
		tracker_destroy(t);
	}
}

/* ---- the end: what is still held goes out in id order ---- */

struct id_sink {
	uint64_t ids[8192];
	size_t n;
};

static bool take_id(void *ctx, struct conn *c)
{
	struct id_sink *s = ctx;

	if (s->n < sizeof(s->ids) / sizeof(s->ids[0]))
		s->ids[s->n] = c->id;
	s->n++;
	return false;     /* the tracker frees it */
}

/* N handshakes (connection i from port 1024 + i at i ms, id i + 1); all but
 * every keep_every-th reset at once, and retired 5 s later; of those kept,
 * the first half idle since (packed by the end), the second half busy again
 * at 19.5 s (still live). At 20 s one SYN more (id N + 1) moves the clock, so
 * the resets are gone; then the end. Whatever order the table holds them
 * in, the end hands the rest out in id order: consecutive ids (keep_every
 * 1: the in-place bucket sort without holes), every third (with holes), or
 * every tenth, a range too wide for the buckets (qsort). */
static void finish_order(unsigned keep_every)
{
	enum { N = 6000 };
	struct tracker_config cfg = { .time_wait_ns = 60 * S, .linger_ns = 5 * S };
	struct id_sink *s = calloc(1, sizeof(*s));
	struct tracker_sink sk = { .retired = take_id, .ctx = s };
	struct tracker *t = tracker_create(&cfg, &sk);
	size_t before, kept = (N + keep_every - 1) / keep_every;
	uint64_t number = 0;
	struct packet p;
	bool ordered = true;

	for (unsigned i = 0; i < N; i++) {
		uint16_t port = (uint16_t)(1024 + i);

		p = segment_make(C, port, 80, SYN, 1000, 0, 0, i, ++number, 65535);
		tracker_packet(t, &p);
		p = segment_make(SV, port, 80, SA, 5000, 1001, 0, i, ++number, 65535);
		tracker_packet(t, &p);
		p = segment_make(C, port, 80, A, 1001, 5001, 0, i, ++number, 65535);
		tracker_packet(t, &p);
		if (i % keep_every) {
			p = segment_make(C, port, 80, RA, 1001, 5001, 0, i, ++number, 0);
			tracker_packet(t, &p);
		}
	}
	for (unsigned i = N / 2; i < N; i += keep_every) {
		p = segment_make(C, (uint16_t)(1024 + i), 80, A, 1001, 5001, 0, 19500, ++number, 65535);
		tracker_packet(t, &p);
	}
	p = segment_make(C, 65000, 80, SYN, 1000, 0, 0, 20000, ++number, 65535);
	tracker_packet(t, &p);
	tracker_drain(t);
	before = s->n;
	CHECK_EQ_INT(before, N - kept);           /* every reset one, and only those */
	CHECK(tracker_stats(t)->frozen > 0);                     /* some go out packed, */
	tracker_finish(t, T0 + 20000 * MS);
	CHECK_EQ_INT(s->n - before, kept + 1);    /* the rest at the end */
	for (size_t i = before + 1; i < s->n; i++)
		ordered &= s->ids[i - 1] < s->ids[i];
	CHECK(ordered);
	if (s->n == before + kept + 1) {
		CHECK_EQ_INT(s->ids[before], 1);
		CHECK_EQ_INT(s->ids[s->n - 2], 1 + (kept - 1) * keep_every);
		CHECK_EQ_INT(s->ids[s->n - 1], N + 1);
	}
	tracker_destroy(t);
	free(s);
}

static void test_finish_in_id_order(void)
{
	finish_order(1);
	finish_order(3);
	finish_order(10);
}

/* Connection i of many: its own client address and port. */
static struct packet many_make(uint32_t i, bool from_client, uint8_t flags, uint32_t seq,
			       uint32_t ack, uint64_t ms, uint64_t number)
{
	struct packet p = segment_make(from_client, (uint16_t)(1024 + i % 60000), 80, flags, seq,
				       ack, 0, ms, number, 65535);
	uint8_t *client = from_client ? p.src : p.dst;

	client[1] = (uint8_t)(i / 60000);
	return p;
}

/* Segments of connection i at ms, one after the other. */
struct step {
	bool from_client;
	uint8_t flags;
	uint32_t seq, ack;
};

static void steps_at(struct tracker *t, uint32_t i, uint64_t ms, uint64_t *number,
		     const struct step *st, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		struct packet p = many_make(i, st[k].from_client, st[k].flags, st[k].seq, st[k].ack,
					    ms, ++*number);

		tracker_packet(t, &p);
	}
}

/* Connection i opens at ms (SYN, SYN-ACK, ACK). */
static void handshake_at(struct tracker *t, uint32_t i, uint64_t ms, uint64_t *number)
{
	static const struct step hs[] = {
		{ C, SYN, 1000, 0 }, { SV, SA, 5000, 1001 }, { C, A, 1001, 5001 },
	};

	steps_at(t, i, ms, number, hs, 3);
}

/* Connection i closes cleanly at ms, the client first (FIN, FIN, ACK). */
static void close_at(struct tracker *t, uint32_t i, uint64_t ms, uint64_t *number)
{
	static const struct step fin[] = {
		{ C, FA, 1001, 5001 }, { SV, FA, 5001, 1002 }, { C, A, 1002, 5002 },
	};

	steps_at(t, i, ms, number, fin, 3);
}

/* Idle connections are packed in batches, not one between every two
 * packets: A idle since 0 ms, B since 5 ms. At 1000 ms the walk packs A
 * (idle TRACKER_FREEZE_NS); at 1006 ms B has been idle that long too, but
 * the next walk is not due before 1000 ms + TRACKER_FREEZE_BATCH_NS. Then
 * a flood: past TRACKER_LIVE_MAX live records, TRACKER_LIVE_BATCH more than
 * the excess are packed at once, whatever their age. */
static void test_freeze_in_batches(void)
{
	struct tracker_config cfg = { .time_wait_ns = 60 * S, .linger_ns = 5 * S };
	struct tracker *t = tracker_create(&cfg, &(struct tracker_sink){ 0 });
	const uint64_t batch_ms = TRACKER_FREEZE_BATCH_NS / MS, freeze_ms = TRACKER_FREEZE_NS / MS;
	uint64_t number = 0, frozen;
	struct packet p;

	CHECK(batch_ms > 6 && batch_ms < freeze_ms / 4);   /* what the times below assume */
	handshake_at(t, 0, 0, &number);
	handshake_at(t, 1, 5, &number);
	p = many_make(2, C, SYN, 1000, 0, freeze_ms, ++number);   /* only moves the clock */
	tracker_packet(t, &p);
	CHECK_EQ_INT(tracker_stats(t)->frozen, 1);
	p = many_make(2, C, SYN, 1000, 0, freeze_ms + 6, ++number);
	tracker_packet(t, &p);
	CHECK_EQ_INT(tracker_stats(t)->frozen, 1);
	p = many_make(2, C, SYN, 1000, 0, freeze_ms + batch_ms, ++number);
	tracker_packet(t, &p);
	CHECK_EQ_INT(tracker_stats(t)->frozen, 2);

	/* One live record (SYN 2) and TRACKER_LIVE_MAX SYNs within a
	 * millisecond: no longer live than the bound, nothing more packed.
	 * The next SYN is one too many, and the packet after it finds out. */
	for (uint32_t i = 3; i < 3 + TRACKER_LIVE_MAX - 1; i++) {
		p = many_make(i, C, SYN, 1000, 0, freeze_ms + batch_ms, ++number);
		tracker_packet(t, &p);
	}
	CHECK_EQ_INT(tracker_stats(t)->frozen, 2);
	frozen = tracker_stats(t)->frozen;
	for (uint32_t i = 3 + TRACKER_LIVE_MAX - 1; i < 3 + TRACKER_LIVE_MAX + 1; i++) {
		p = many_make(i, C, SYN, 1000, 0, freeze_ms + batch_ms, ++number);
		tracker_packet(t, &p);
	}
	CHECK_EQ_INT(tracker_stats(t)->frozen - frozen, TRACKER_LIVE_BATCH + 1);
	tracker_destroy(t);
}

/* A connection that only waits out TIME_WAIT or its linger is packed after
 * TRACKER_FREEZE_CLOSED_NS idle, one that may still carry data only after
 * TRACKER_FREEZE_NS: A closes at 0 ms (client TIME_WAIT, server CLOSED), B
 * stays ESTABLISHED. Packing A sooner keeps fewer records live (each an
 * unpacked record's size) and changes nothing it reports. */
static void test_freeze_closed_sooner(void)
{
	struct tracker_config cfg = { .time_wait_ns = 60 * S, .linger_ns = 5 * S };
	struct tracker *t = tracker_create(&cfg, &(struct tracker_sink){ 0 });
	const uint64_t closed_ms = TRACKER_FREEZE_CLOSED_NS / MS, freeze_ms = TRACKER_FREEZE_NS / MS;
	const uint64_t batch_ms = TRACKER_FREEZE_BATCH_NS / MS;
	uint64_t number = 0;
	struct packet p;

	CHECK(closed_ms + batch_ms < freeze_ms && closed_ms >= CONN_PACK_SIG_NS / MS);
	handshake_at(t, 0, 0, &number);
	handshake_at(t, 1, 0, &number);
	close_at(t, 0, 0, &number);
	p = many_make(2, C, SYN, 1000, 0, closed_ms - 1, ++number);   /* only moves the clock */
	tracker_packet(t, &p);
	CHECK_EQ_INT(tracker_stats(t)->frozen, 0);
	p = many_make(2, C, SYN, 1000, 0, closed_ms + batch_ms, ++number);
	tracker_packet(t, &p);
	CHECK_EQ_INT(tracker_stats(t)->frozen, 1);   /* A, not B */
	p = many_make(2, C, SYN, 1000, 0, freeze_ms + batch_ms, ++number);
	tracker_packet(t, &p);
	CHECK_EQ_INT(tracker_stats(t)->frozen, 2);   /* B too (SYN 2 is not idle that long) */
	tracker_destroy(t);
}

/* What a retired connection came to, for comparing two runs. */
struct sig_sink {
	uint64_t sig[2048];
	size_t n;
};

static bool take_sig(void *ctx, struct conn *c)
{
	struct sig_sink *s = ctx;
	uint64_t h = c->id;

	for (int r = 0; r < 2; r++)
		h = (h * 31 + c->peer[r].state) * 1000003 + c->peer[r].packets * 7919 +
		    c->peer[r].bytes + c->peer[r].since_ns;
	if (s->n < sizeof(s->sig) / sizeof(s->sig[0]))
		s->sig[s->n] = h ^ (uint64_t)c->flags << 40 ^ c->tl_len;
	s->n++;
	return false;
}

/* Packet k of a mix of 600 connections, ten packets each, interleaved:
 * handshake, data both ways, then a close by either side or a reset. */
static struct packet mix_packet(uint32_t k)
{
	uint32_t i = k % 600, step = k / 600;
	uint64_t ms = k / 4;
	bool rst = i % 7 == 0, server_closes = i % 3 == 0;

	switch (step) {
	case 0: return many_make(i, C, SYN, 1000, 0, ms, k + 1);
	case 1: return many_make(i, SV, SA, 5000, 1001, ms, k + 1);
	case 2: return many_make(i, C, A, 1001, 5001, ms, k + 1);
	case 3: {
		struct packet p = many_make(i, C, PA, 1001, 5001, ms, k + 1);

		p.payload_len = 100;
		return p;
	}
	case 4: {
		struct packet p = many_make(i, SV, PA, 5001, 1101, ms, k + 1);

		p.payload_len = 200;
		return p;
	}
	case 5: return rst ? many_make(i, C, RA, 1101, 5201, ms, k + 1)
			   : many_make(i, server_closes ? SV : C, FA, server_closes ? 5201 : 1101,
				       server_closes ? 1101 : 5201, ms, k + 1);
	case 6: return many_make(i, server_closes ? C : SV, A, server_closes ? 1101 : 5201,
				 server_closes ? 5202 : 1102, ms, k + 1);
	case 7: return many_make(i, server_closes ? C : SV, FA, server_closes ? 1101 : 5201,
				 server_closes ? 5202 : 1102, ms, k + 1);
	default: return many_make(i, server_closes ? SV : C, A, server_closes ? 5202 : 1102,
				  server_closes ? 1102 : 5202, ms, k + 1);
	}
}

/* The queue (tracker_push, and tracker_slot with tracker_push_slot, where
 * the packet is written in its place) processes what it is given as
 * tracker_packet does, in order: every connection retires with the same
 * states, counts and timeline, in the same order. A slot taken and not
 * pushed (a packet the reader skips) changes nothing; it is handed out
 * again, the same place. */
static void test_queue_same_as_direct(void)
{
	enum { PACKETS = 600 * 9 };
	struct tracker_config cfg = { .time_wait_ns = 2 * S, .linger_ns = 1 * S,
				      .keep_timeline = true };
	struct sig_sink *direct = calloc(1, sizeof(*direct)), *queued = calloc(1, sizeof(*queued));
	struct sig_sink *slots = calloc(1, sizeof(*slots));
	struct tracker *td = tracker_create(&cfg, &(struct tracker_sink){ .retired = take_sig, .ctx = direct });
	struct tracker *tq = tracker_create(&cfg, &(struct tracker_sink){ .retired = take_sig, .ctx = queued });
	struct tracker *ts = tracker_create(&cfg, &(struct tracker_sink){ .retired = take_sig, .ctx = slots });
	int same_place = 0, skipped = 0;

	for (uint32_t k = 0; k < PACKETS; k++) {
		struct packet p = mix_packet(k), *slot;

		tracker_packet(td, &p);
		tracker_push(tq, &p);
		slot = tracker_slot(ts);
		if (k % 11 == 5) {   /* skipped: scribbled on, not pushed */
			memset(slot, 0xa5, sizeof(*slot));
			skipped++;
			same_place += tracker_slot(ts) == slot;
		}
		*slot = p;
		tracker_push_slot(ts);
	}
	tracker_finish(td, T0 + 10 * S);
	tracker_finish(tq, T0 + 10 * S);
	tracker_finish(ts, T0 + 10 * S);
	CHECK_EQ_INT(direct->n, 600);
	CHECK_EQ_INT(queued->n, 600);
	CHECK_EQ_INT(slots->n, 600);
	CHECK(memcmp(direct->sig, queued->sig, sizeof(direct->sig)) == 0);
	CHECK(memcmp(direct->sig, slots->sig, sizeof(direct->sig)) == 0);
	CHECK_EQ_INT(same_place, skipped);
	CHECK_EQ_INT(tracker_stats(ts)->segments, PACKETS);
	tracker_destroy(td);
	tracker_destroy(tq);
	tracker_destroy(ts);
	free(direct);
	free(queued);
	free(slots);
}

/* tracker_config.zeek_upto: Zeek's model only for connections whose id is
 * at most *zeek_upto, read at every segment. Connection 1 is modelled;
 * connection 2, created after the bound came down to 1, is not: its Zeek
 * fields stay zero, a copy of a segment included, while its states and
 * counts are the same as connection 1's. A lone SYN not modelled still
 * packs short and comes back whole. */
static void test_zeek_upto(void)
{
	uint64_t upto = UINT64_MAX, number = 0;
	struct tracker_config cfg = { .time_wait_ns = 60 * S, .linger_ns = 5 * S,
				      .zeek_upto = &upto };
	struct sink_state ss = { .n = 0 };
	struct tracker *t = tracker_create(&cfg, &(struct tracker_sink){ .ctx = &ss, .retired = take });
	struct conn_pool *pool = conn_pool_create(0);
	struct zeek_conn zero;
	struct packet p;
	char h[ZEEK_HISTORY_MAX];

	memset(&zero, 0, sizeof(zero));
	handshake_at(t, 0, 0, &number);
	upto = 1;
	handshake_at(t, 1, 1, &number);
	p = many_make(1, C, A, 1001, 5001, 1, ++number);   /* a copy of its last: a duplicate */
	tracker_packet(t, &p);
	p = many_make(2, C, SYN, 1000, 0, 2, ++number);    /* connection 3: a lone SYN */
	tracker_packet(t, &p);
	tracker_finish(t, T0 + 3 * MS);
	CHECK_EQ_INT(ss.n, 3);
	CHECK_EQ_INT(tracker_stats(t)->duplicates, 1);
	for (int i = 0; i < ss.n; i++) {
		struct conn *c = ss.conns[i];

		if (c->id == 3) {
			STATES(c, "SYN_SENT", "CLOSED");
			CHECK(memcmp(&c->zeek, &zero, sizeof(zero)) == 0);
			struct frozen_conn *f = pool ? conn_freeze(c, pool, T0 + 3 * MS) : NULL;
			struct conn b;

			CHECK(f && frozen_conn_is_lone(f));
			memset(&b, 0, sizeof(b));
			b.node = c->node;
			CHECK(f && conn_thaw(f, &b));
			b.pooled = c->pooled;
			CHECK(memcmp(&b, c, sizeof(b)) == 0);
			frozen_conn_destroy(f);
			continue;
		}
		STATES(c, "ESTABLISHED", "ESTABLISHED");
		CHECK(c->peer[ROLE_CLIENT].packets == 2 && c->peer[ROLE_SERVER].packets == 1);
		if (c->id == 1) {
			CHECK(zeek_history(c, h, sizeof(h)) == 3 && strcmp(h, "ShA") == 0);
			CHECK_EQ_STR(zeek_conn_state(c), "S1");
		} else {
			CHECK(c->id == 2 && memcmp(&c->zeek, &zero, sizeof(zero)) == 0);
		}
	}
	for (int i = 0; i < ss.n; i++)
		conn_destroy(ss.conns[i]);
	conn_pool_release(pool);
	tracker_destroy(t);
}

/* tracker_sink.unclean: once per connection, when it gets its first flag
 * that conn_closed_cleanly() cannot get past: an accepted RST (reset), an
 * RST answering the SYN (refused), an anomaly. A clean close never calls
 * it; an RST outside the window is ignored and does not count. */
struct unclean_log {
	uint64_t ids[8];
	int n;
};

static void log_unclean(void *ctx, const struct conn *c)
{
	struct unclean_log *u = ctx;

	if (u->n < 8)
		u->ids[u->n] = c->id;
	u->n++;
}

static void test_unclean_sink(void)
{
	struct unclean_log u = { .n = 0 };
	struct tracker_config cfg = { .time_wait_ns = 60 * S, .linger_ns = 5 * S };
	struct tracker *t = tracker_create(&cfg, &(struct tracker_sink){ .ctx = &u,
							     .unclean = log_unclean });
	uint64_t number = 0;
	struct packet p;

	handshake_at(t, 0, 0, &number);                       /* 1: reset by the server */
	p = many_make(0, SV, R, 205001, 0, 1, ++number);      /* outside the window: ignored */
	tracker_packet(t, &p);
	CHECK_EQ_INT(u.n, 0);
	p = many_make(0, SV, RA, 5001, 1001, 1, ++number);
	tracker_packet(t, &p);
	CHECK_EQ_INT(u.n, 1);
	p = many_make(0, C, PA, 1001, 5001, 2, ++number);     /* after the RST: an anomaly, not new */
	tracker_packet(t, &p);
	CHECK_EQ_INT(u.n, 1);
	p = many_make(1, C, SYN, 1000, 0, 3, ++number);       /* 2: refused */
	tracker_packet(t, &p);
	p = many_make(1, SV, RA, 0, 1001, 3, ++number);
	tracker_packet(t, &p);
	CHECK_EQ_INT(u.n, 2);
	handshake_at(t, 2, 4, &number);                       /* 3: closed cleanly */
	close_at(t, 2, 5, &number);
	tracker_finish(t, T0 + 6 * MS);
	CHECK_EQ_INT(u.n, 2);
	CHECK(u.ids[0] == 1 && u.ids[1] == 2);
	tracker_destroy(t);
}

int main(void)
{
	test_open_close_client_first();
	test_close_server_first();
	test_simultaneous();
	test_rst();
	test_syn_retransmit_and_reuse();
	test_not_accepted();
	test_pickup_and_one_sided();
	test_sequence_wrap();
	test_bad_flags();
	test_retirement();
	test_silence();
	test_rtt();
	test_crossing();
	test_copies();
	test_segment_flags();
	test_state_mask();
	test_lone_syn_packs_short();
	test_finish_in_id_order();
	test_freeze_in_batches();
	test_freeze_closed_sooner();
	test_queue_same_as_direct();
	test_zeek_upto();
	test_unclean_sink();
	return test_done("tracker");
}
