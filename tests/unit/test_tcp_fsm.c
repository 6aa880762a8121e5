/* test_tcp_fsm.c - the transition table, cell by cell, against RFC 793
 * (figure 6 and section 3.9) as read by hand, plus flag classification for
 * all 256 flag bytes. Every one of the 2 x 7 x 10 cells must be listed here
 * exactly once. Expected values: a state name, "stay", "bad", "pickup",
 * "finclosed", or "revert:STATE". */
#include "tcp_fsm.h"
#include "test.h"

struct cell {
	const char *dir, *ev, *state, *expect;
};

static const struct cell cells[] = {
	/* --- what an endpoint's own segment proves --- */
	{ "send", "SYN", "CLOSED", "SYN_SENT" },            /* active open */
	{ "send", "SYN", "SYN_SENT", "stay" },              /* retransmitted SYN */
	{ "send", "SYN", "SYN_RECEIVED", "stay" },          /* simultaneous open, SYN again */
	{ "send", "SYN", "ESTABLISHED", "revert:SYN_SENT" },/* SYN-ACK never accepted */
	{ "send", "SYN", "FIN_WAIT_1", "bad" },
	{ "send", "SYN", "FIN_WAIT_2", "bad" },
	{ "send", "SYN", "CLOSING", "bad" },
	{ "send", "SYN", "TIME_WAIT", "bad" },
	{ "send", "SYN", "CLOSE_WAIT", "bad" },
	{ "send", "SYN", "LAST_ACK", "bad" },
	{ "send", "SYNACK", "CLOSED", "SYN_RECEIVED" },     /* passive open */
	{ "send", "SYNACK", "SYN_SENT", "SYN_RECEIVED" },   /* simultaneous open */
	{ "send", "SYNACK", "SYN_RECEIVED", "stay" },       /* retransmitted SYN-ACK */
	{ "send", "SYNACK", "ESTABLISHED", "revert:SYN_RECEIVED" }, /* handshake ACK not accepted */
	{ "send", "SYNACK", "FIN_WAIT_1", "bad" },
	{ "send", "SYNACK", "FIN_WAIT_2", "bad" },
	{ "send", "SYNACK", "CLOSING", "bad" },
	{ "send", "SYNACK", "TIME_WAIT", "bad" },
	{ "send", "SYNACK", "CLOSE_WAIT", "bad" },
	{ "send", "SYNACK", "LAST_ACK", "bad" },
	{ "send", "FIN", "CLOSED", "finclosed" },
	{ "send", "FIN", "SYN_SENT", "bad" },
	{ "send", "FIN", "SYN_RECEIVED", "FIN_WAIT_1" },    /* RFC 793 CLOSE in SYN-RECEIVED */
	{ "send", "FIN", "ESTABLISHED", "FIN_WAIT_1" },     /* active close */
	{ "send", "FIN", "FIN_WAIT_1", "stay" },            /* retransmitted FIN */
	{ "send", "FIN", "FIN_WAIT_2", "revert:FIN_WAIT_1" },
	{ "send", "FIN", "CLOSING", "stay" },
	{ "send", "FIN", "TIME_WAIT", "revert:CLOSING" },
	{ "send", "FIN", "CLOSE_WAIT", "LAST_ACK" },        /* passive close */
	{ "send", "FIN", "LAST_ACK", "stay" },
	{ "send", "FIN_OURS", "CLOSED", "finclosed" },
	{ "send", "FIN_OURS", "SYN_SENT", "bad" },
	{ "send", "FIN_OURS", "SYN_RECEIVED", "FIN_WAIT_1" },
	{ "send", "FIN_OURS", "ESTABLISHED", "FIN_WAIT_1" },
	{ "send", "FIN_OURS", "FIN_WAIT_1", "stay" },
	{ "send", "FIN_OURS", "FIN_WAIT_2", "revert:FIN_WAIT_1" },
	{ "send", "FIN_OURS", "CLOSING", "stay" },
	{ "send", "FIN_OURS", "TIME_WAIT", "revert:CLOSING" },
	{ "send", "FIN_OURS", "CLOSE_WAIT", "LAST_ACK" },
	{ "send", "FIN_OURS", "LAST_ACK", "stay" },
	{ "send", "ACK", "CLOSED", "pickup" },
	{ "send", "ACK", "SYN_SENT", "ESTABLISHED" },       /* it accepted a SYN-ACK we missed */
	{ "send", "ACK", "SYN_RECEIVED", "ESTABLISHED" },   /* handshake ACK was missed */
	{ "send", "ACK", "ESTABLISHED", "stay" },
	{ "send", "ACK", "FIN_WAIT_1", "stay" },
	{ "send", "ACK", "FIN_WAIT_2", "stay" },
	{ "send", "ACK", "CLOSING", "stay" },
	{ "send", "ACK", "TIME_WAIT", "stay" },
	{ "send", "ACK", "CLOSE_WAIT", "stay" },
	{ "send", "ACK", "LAST_ACK", "stay" },
	{ "send", "ACK_OURS", "CLOSED", "pickup" },
	{ "send", "ACK_OURS", "SYN_SENT", "ESTABLISHED" },
	{ "send", "ACK_OURS", "SYN_RECEIVED", "ESTABLISHED" },
	{ "send", "ACK_OURS", "ESTABLISHED", "stay" },
	{ "send", "ACK_OURS", "FIN_WAIT_1", "stay" },
	{ "send", "ACK_OURS", "FIN_WAIT_2", "stay" },
	{ "send", "ACK_OURS", "CLOSING", "stay" },
	{ "send", "ACK_OURS", "TIME_WAIT", "stay" },
	{ "send", "ACK_OURS", "CLOSE_WAIT", "stay" },
	{ "send", "ACK_OURS", "LAST_ACK", "stay" },
	{ "send", "RST", "CLOSED", "stay" },
	{ "send", "RST", "SYN_SENT", "CLOSED" },
	{ "send", "RST", "SYN_RECEIVED", "CLOSED" },
	{ "send", "RST", "ESTABLISHED", "CLOSED" },
	{ "send", "RST", "FIN_WAIT_1", "CLOSED" },
	{ "send", "RST", "FIN_WAIT_2", "CLOSED" },
	{ "send", "RST", "CLOSING", "CLOSED" },
	{ "send", "RST", "TIME_WAIT", "CLOSED" },
	{ "send", "RST", "CLOSE_WAIT", "CLOSED" },
	{ "send", "RST", "LAST_ACK", "CLOSED" },
	/* --- what receiving a segment does --- */
	{ "recv", "SYN", "CLOSED", "stay" },                /* LISTEN makes no endpoint yet */
	{ "recv", "SYN", "SYN_SENT", "SYN_RECEIVED" },      /* simultaneous open */
	{ "recv", "SYN", "SYN_RECEIVED", "stay" },
	{ "recv", "SYN", "ESTABLISHED", "bad" },            /* challenge ACK (RFC 5961 4) */
	{ "recv", "SYN", "FIN_WAIT_1", "bad" },
	{ "recv", "SYN", "FIN_WAIT_2", "bad" },
	{ "recv", "SYN", "CLOSING", "bad" },
	{ "recv", "SYN", "TIME_WAIT", "bad" },
	{ "recv", "SYN", "CLOSE_WAIT", "bad" },
	{ "recv", "SYN", "LAST_ACK", "bad" },
	{ "recv", "SYNACK", "CLOSED", "bad" },
	{ "recv", "SYNACK", "SYN_SENT", "ESTABLISHED" },
	{ "recv", "SYNACK", "SYN_RECEIVED", "ESTABLISHED" },
	{ "recv", "SYNACK", "ESTABLISHED", "stay" },
	{ "recv", "SYNACK", "FIN_WAIT_1", "bad" },
	{ "recv", "SYNACK", "FIN_WAIT_2", "bad" },
	{ "recv", "SYNACK", "CLOSING", "bad" },
	{ "recv", "SYNACK", "TIME_WAIT", "bad" },
	{ "recv", "SYNACK", "CLOSE_WAIT", "bad" },
	{ "recv", "SYNACK", "LAST_ACK", "bad" },
	{ "recv", "FIN", "CLOSED", "bad" },
	{ "recv", "FIN", "SYN_SENT", "bad" },
	{ "recv", "FIN", "SYN_RECEIVED", "CLOSE_WAIT" },
	{ "recv", "FIN", "ESTABLISHED", "CLOSE_WAIT" },
	{ "recv", "FIN", "FIN_WAIT_1", "CLOSING" },
	{ "recv", "FIN", "FIN_WAIT_2", "TIME_WAIT" },
	{ "recv", "FIN", "CLOSING", "stay" },
	{ "recv", "FIN", "TIME_WAIT", "stay" },
	{ "recv", "FIN", "CLOSE_WAIT", "stay" },
	{ "recv", "FIN", "LAST_ACK", "stay" },
	{ "recv", "FIN_OURS", "CLOSED", "bad" },
	{ "recv", "FIN_OURS", "SYN_SENT", "bad" },
	{ "recv", "FIN_OURS", "SYN_RECEIVED", "CLOSE_WAIT" },
	{ "recv", "FIN_OURS", "ESTABLISHED", "CLOSE_WAIT" },
	{ "recv", "FIN_OURS", "FIN_WAIT_1", "TIME_WAIT" },
	{ "recv", "FIN_OURS", "FIN_WAIT_2", "TIME_WAIT" },
	{ "recv", "FIN_OURS", "CLOSING", "TIME_WAIT" },
	{ "recv", "FIN_OURS", "TIME_WAIT", "stay" },
	{ "recv", "FIN_OURS", "CLOSE_WAIT", "stay" },
	{ "recv", "FIN_OURS", "LAST_ACK", "CLOSED" },
	{ "recv", "ACK", "CLOSED", "stay" },
	{ "recv", "ACK", "SYN_SENT", "stay" },
	{ "recv", "ACK", "SYN_RECEIVED", "stay" },
	{ "recv", "ACK", "ESTABLISHED", "stay" },
	{ "recv", "ACK", "FIN_WAIT_1", "stay" },
	{ "recv", "ACK", "FIN_WAIT_2", "stay" },
	{ "recv", "ACK", "CLOSING", "stay" },
	{ "recv", "ACK", "TIME_WAIT", "stay" },
	{ "recv", "ACK", "CLOSE_WAIT", "stay" },
	{ "recv", "ACK", "LAST_ACK", "stay" },
	{ "recv", "ACK_OURS", "CLOSED", "stay" },
	{ "recv", "ACK_OURS", "SYN_SENT", "bad" },
	{ "recv", "ACK_OURS", "SYN_RECEIVED", "ESTABLISHED" },
	{ "recv", "ACK_OURS", "ESTABLISHED", "stay" },
	{ "recv", "ACK_OURS", "FIN_WAIT_1", "FIN_WAIT_2" },
	{ "recv", "ACK_OURS", "FIN_WAIT_2", "stay" },
	{ "recv", "ACK_OURS", "CLOSING", "TIME_WAIT" },
	{ "recv", "ACK_OURS", "TIME_WAIT", "stay" },
	{ "recv", "ACK_OURS", "CLOSE_WAIT", "stay" },
	{ "recv", "ACK_OURS", "LAST_ACK", "CLOSED" },
	{ "recv", "RST", "CLOSED", "stay" },
	{ "recv", "RST", "SYN_SENT", "CLOSED" },            /* refused */
	{ "recv", "RST", "SYN_RECEIVED", "CLOSED" },
	{ "recv", "RST", "ESTABLISHED", "CLOSED" },
	{ "recv", "RST", "FIN_WAIT_1", "CLOSED" },
	{ "recv", "RST", "FIN_WAIT_2", "CLOSED" },
	{ "recv", "RST", "CLOSING", "CLOSED" },
	{ "recv", "RST", "TIME_WAIT", "CLOSED" },           /* tcp_rfc1337 = 0 */
	{ "recv", "RST", "CLOSE_WAIT", "CLOSED" },
	{ "recv", "RST", "LAST_ACK", "CLOSED" },
};

static int event_parse(const char *s)
{
	for (int e = 0; e < EV_COUNT; e++)
		if (strcmp(s, tcp_event_name((enum fsm_event)e)) == 0)
			return e;
	return -1;
}

static int expect_code(const char *e)
{
	if (strcmp(e, "stay") == 0) return FSM_STAY;
	if (strcmp(e, "bad") == 0) return FSM_BAD;
	if (strcmp(e, "pickup") == 0) return FSM_PICKUP;
	if (strcmp(e, "finclosed") == 0) return FSM_FIN_CLOSED;
	if (strncmp(e, "revert:", 7) == 0) return tcp_state_parse(e + 7) | FSM_REVERT;
	return tcp_state_parse(e);
}

static void test_table(void)
{
	int seen[FSM_DIR_COUNT][EV_COUNT][TS_COUNT] = { { { 0 } } };
	size_t n = sizeof(cells) / sizeof(cells[0]);

	for (size_t i = 0; i < n; i++) {
		const struct cell *c = &cells[i];
		int dir = strcmp(c->dir, "send") == 0 ? FSM_SEND : FSM_RECV;
		int ev = event_parse(c->ev), st = tcp_state_parse(c->state), want = expect_code(c->expect);
		int got;

		CHECK(ev >= 0 && st >= 0 && want >= 0);
		if (ev < 0 || st < 0)
			continue;
		seen[dir][ev][st]++;
		got = tcp_fsm_next((enum fsm_dir)dir, (enum fsm_event)ev, (enum tcp_state)st);
		if (got != want)
			fprintf(stderr, "cell %s %s %s: want %s (%d), table has %d\n", c->dir, c->ev,
				c->state, c->expect, want, got);
		CHECK_EQ_INT(got, want);
	}
	for (int d = 0; d < FSM_DIR_COUNT; d++)
		for (int e = 0; e < EV_COUNT; e++)
			for (int s = 0; s < TS_COUNT; s++) {
				if (seen[d][e][s] != 1)
					fprintf(stderr, "cell %d %s %s listed %d times\n", d,
						tcp_event_name((enum fsm_event)e),
						tcp_state_name((enum tcp_state)s), seen[d][e][s]);
				CHECK_EQ_INT(seen[d][e][s], 1);
			}
	CHECK_EQ_INT(n, FSM_DIR_COUNT * EV_COUNT * TS_COUNT);
	CHECK_EQ_INT(tcp_fsm_next(FSM_SEND, EV_COUNT, TS_CLOSED), FSM_BAD); /* out of range */
}

/* RFC 793/9293: SYN+FIN and SYN+RST are never sent; every segment after the
 * first SYN carries ACK, RST excepted. Checked over all 256 flag bytes. */
static void test_classify(void)
{
	for (int f = 0; f < 256; f++) {
		bool syn = f & 0x02, fin = f & 0x01, rst = f & 0x04, ack = f & 0x10;
		bool want_ok = !(syn && (fin || rst)) && (syn || rst || ack);
		enum fsm_event ev = EV_COUNT;
		bool ok = tcp_fsm_classify((uint8_t)f, &ev);

		CHECK_EQ_INT(ok, want_ok);
		if (!ok)
			continue;
		if (rst)
			CHECK_EQ_INT(ev, EV_RST);
		else if (syn)
			CHECK_EQ_INT(ev, ack ? EV_SYNACK : EV_SYN);
		else
			CHECK_EQ_INT(ev, fin ? EV_FIN : EV_ACK);
	}
}

static void test_names(void)
{
	for (int s = 0; s < TS_COUNT; s++)
		CHECK_EQ_INT(tcp_state_parse(tcp_state_name((enum tcp_state)s)), s);
	CHECK_EQ_INT(tcp_state_parse("LISTEN"), -1);
	CHECK_EQ_STR(tcp_state_name(TS_COUNT), "?");
}

int main(void)
{
	test_table();
	test_classify();
	test_names();
	return test_done("tcp_fsm");
}
