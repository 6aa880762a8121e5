/* tcp_fsm.h - the RFC 793 state machine of one TCP endpoint, as a table.
 * The tracker feeds each endpoint the segments it sends and receives; the
 * table says what state that proves. It holds no connection state itself. */
#ifndef TCPSTATE_TCP_FSM_H
#define TCPSTATE_TCP_FSM_H

#include <stdbool.h>
#include <stdint.h>

/* Endpoint states (RFC 793 3.2, LISTEN excepted: a connection's server
 * endpoint does not exist until it answers a SYN). */
enum tcp_state {
	TS_CLOSED,
	TS_SYN_SENT,
	TS_SYN_RECEIVED,
	TS_ESTABLISHED,
	TS_FIN_WAIT_1,
	TS_FIN_WAIT_2,
	TS_CLOSING,
	TS_TIME_WAIT,
	TS_CLOSE_WAIT,
	TS_LAST_ACK,
	TS_COUNT
};

/* Whether the endpoint sent the segment or is its receiver. */
enum fsm_dir { FSM_SEND, FSM_RECV, FSM_DIR_COUNT };

/* What a segment is, from one endpoint's point of view. Priority when
 * classifying: RST, SYN+ACK, SYN, FIN, ACK. The *_OURS events exist only on
 * the receive side: the segment acknowledges the receiver's outstanding SYN
 * or FIN (the tracker checks the sequence numbers). */
enum fsm_event {
	EV_SYN,
	EV_SYNACK,
	EV_FIN,
	EV_FIN_OURS,     /* FIN that also acknowledges our FIN */
	EV_ACK,          /* ACK, with or without data */
	EV_ACK_OURS,     /* ACK that acknowledges our SYN or FIN */
	EV_RST,
	EV_COUNT
};

/* A table cell is a next state (< TS_COUNT), optionally marked FSM_REVERT,
 * or one of the actions below, which the tracker resolves with the
 * connection's history. */
enum {
	FSM_REVERT = 0x40,      /* the segment proves an earlier captured segment was never accepted */
	FSM_STAY = 0x20,        /* no change (retransmission, duplicate, plain data) */
	FSM_BAD,                /* no change; the segment is unexpected in this state (anomaly) */
	FSM_PICKUP,             /* first sight of an endpoint already past its handshake */
	FSM_FIN_CLOSED,         /* FIN sent by an endpoint we thought CLOSED */
};

/* Next state (or action) for an endpoint in state st that sends/receives ev. */
uint8_t tcp_fsm_next(enum fsm_dir dir, enum fsm_event ev, enum tcp_state st);

/* Base event of a segment's flags (receive-side *_OURS refinement is the
 * tracker's). Returns false for flag combinations no TCP sends (SYN+FIN,
 * SYN+RST, no ACK on a non-SYN non-RST segment ...), which are never fed to
 * the table. */
static inline bool tcp_fsm_classify(uint8_t flags, enum fsm_event *ev)
{
	/* By FIN, SYN and RST (bits 0-2) and ACK (bit 3): the event, 0x80 set
	 * when the combination is one TCP sends. A lookup, not a chain of
	 * tests: every segment is classified. */
	enum { V = 0x80 };
	static const uint8_t cls[16] = {
		[0x2] = V | EV_SYN, [0x4] = V | EV_RST, [0x5] = V | EV_RST,
		[0x8] = V | EV_ACK, [0x9] = V | EV_FIN, [0xa] = V | EV_SYNACK,
		[0xc] = V | EV_RST, [0xd] = V | EV_RST,
	};
	uint8_t c = cls[(flags & 0x07) | (flags & 0x10) >> 1];

	if (!(c & V))
		return false;
	*ev = (enum fsm_event)(c & ~V);
	return true;
}

/* "ESTABLISHED", "SYN_SENT", ... */
const char *tcp_state_name(enum tcp_state st);

/* Parse a state name as printed by tcp_state_name(); -1 when unknown. */
int tcp_state_parse(const char *name);

/* "SYN", "SYNACK", ... (for tests and diagnostics) */
const char *tcp_event_name(enum fsm_event ev);

#endif
