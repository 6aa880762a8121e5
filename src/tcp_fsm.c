/* tcp_fsm.c - the endpoint state machine as a table (RFC 793 figure 6).
 * One row per (direction, event), one cell per state, one comment line per
 * cell, so a reviewer can check it against the RFC line by line and the
 * unit test can check it cell by cell. Everything that needs a connection's
 * history is an action code resolved in tracker.c, never here. */
#include <string.h>

#include "tcp_fsm.h"

#define sCL TS_CLOSED
#define sSS TS_SYN_SENT
#define sSR TS_SYN_RECEIVED
#define sES TS_ESTABLISHED
#define sF1 TS_FIN_WAIT_1
#define sF2 TS_FIN_WAIT_2
#define sCG TS_CLOSING
#define sTW TS_TIME_WAIT
#define sCW TS_CLOSE_WAIT
#define sLA TS_LAST_ACK
#define xST FSM_STAY
#define xBD FSM_BAD
#define xPU FSM_PICKUP
#define xFC FSM_FIN_CLOSED
#define R(s) ((uint8_t)((s) | FSM_REVERT))

static const uint8_t fsm[FSM_DIR_COUNT][EV_COUNT][TS_COUNT] = {
[FSM_SEND] = {
/*              sCL  sSS  sSR  sES     sF1  sF2     sCG  sTW     sCW  sLA */
[EV_SYN]    = { sSS, xST, xST, R(sSS), xBD, xBD,    xBD, xBD,    xBD, xBD },
/* CL -> SS    active open
 * SS -> SS    retransmitted SYN
 * SR -> SR    simultaneous open: our own SYN retransmitted
 * ES -> SS    our SYN (same ISN) again: the SYN-ACK we saw was never accepted
 * F1..LA      a SYN from a synchronised endpoint: anomaly (new ISNs are new incarnations, see tracker) */
[EV_SYNACK] = { sSR, sSR, xST, R(sSR), xBD, xBD,    xBD, xBD,    xBD, xBD },
/* CL -> SR    passive open: the endpoint answers a SYN
 * SS -> SR    simultaneous open: we answer the peer's SYN that crossed ours
 * SR -> SR    retransmitted SYN-ACK
 * ES -> SR    SYN-ACK again: the handshake ACK we saw was never accepted
 * F1..LA      anomaly */
[EV_FIN]    = { xFC, xBD, sF1, sF1,    xST, R(sF1), xST, R(sCG), sLA, xST },
/* CL -> ?     FIN from an endpoint we thought closed: resolved by the tracker
 * SS -> SS    a SYN_SENT endpoint closes without a FIN: anomaly
 * SR -> F1    close in SYN_RECEIVED (RFC 793 3.5)
 * ES -> F1    active close
 * F1 -> F1    retransmitted FIN
 * F2 -> F1    FIN again: the ACK of our FIN we saw was never accepted
 * CG -> CG    retransmitted FIN
 * TW -> CG    FIN again: our FIN was never acknowledged, the peer's FIN we hold
 * CW -> LA    passive close
 * LA -> LA    retransmitted FIN */
[EV_FIN_OURS] = { xFC, xBD, sF1, sF1,  xST, R(sF1), xST, R(sCG), sLA, xST },
/* as EV_FIN: what our FIN acknowledges matters only to its receiver */
[EV_ACK]    = { xPU, sES, sES, xST,    xST, xST,    xST, xST,    xST, xST },
/* CL -> ?     mid-stream pickup, or a segment after the close: resolved by the tracker
 * SS -> ES    our ACK proves we accepted a SYN-ACK the capture missed
 * SR -> ES    we send data or ACKs: the handshake completed although the capture missed its ACK
 * ES..LA      data and ACKs change nothing */
[EV_ACK_OURS] = { xPU, sES, sES, xST,  xST, xST,    xST, xST,    xST, xST },
/* as EV_ACK */
[EV_RST]    = { xST, sCL, sCL, sCL,    sCL, sCL,    sCL, sCL,    sCL, sCL },
/* CL -> CL    a closed endpoint answers with RST
 * any -> CL   the sender aborts: it holds no connection afterwards */
},
[FSM_RECV] = {
/*              sCL  sSS  sSR  sES     sF1  sF2     sCG  sTW     sCW  sLA */
[EV_SYN]    = { xST, sSR, xST, xBD,    xBD, xBD,    xBD, xBD,    xBD, xBD },
/* CL -> CL    a listener creates no endpoint until it answers (SYN-ACK, or nothing if its queue is full)
 * SS -> SR    simultaneous open: the peer's SYN crossed ours
 * SR -> SR    retransmitted SYN
 * ES..LA      SYN on a synchronised connection: anomaly (Linux answers with a challenge ACK) */
[EV_SYNACK] = { xBD, sES, sES, xST,    xBD, xBD,    xBD, xBD,    xBD, xBD },
/* CL          SYN-ACK to a closed endpoint: anomaly (it answers RST)
 * SS -> ES    the SYN-ACK answers our SYN
 * SR -> ES    simultaneous open: the peer's SYN-ACK acknowledges our SYN
 * ES -> ES    retransmitted SYN-ACK: our handshake ACK was lost, we send it again
 * F1..LA      anomaly */
[EV_FIN]    = { xBD, xBD, sCW, sCW,    sCG, sTW,    xST, xST,    xST, xST },
/* CL          FIN to a closed endpoint: anomaly (answered by RST)
 * SS          FIN before the handshake: anomaly
 * SR -> CW    FIN in SYN_RECEIVED (RFC 793 3.9)
 * ES -> CW    passive close begins
 * F1 -> CG    simultaneous close: the peer's FIN does not acknowledge ours
 * F2 -> TW    the peer's FIN after it acknowledged ours
 * CG..LA      retransmitted FIN; we acknowledge it again */
[EV_FIN_OURS] = { xBD, xBD, sCW, sCW,  sTW, sTW,    sTW, xST,    xST, sCL },
/* SR -> CW    the FIN acknowledges our SYN and closes
 * ES -> CW    as EV_FIN
 * F1 -> TW    the peer's FIN acknowledges ours (FIN_WAIT_2 skipped)
 * F2 -> TW    as EV_FIN
 * CG -> TW    simultaneous close: the peer's FIN, retransmitted, now acknowledges ours
 * TW, CW      retransmitted FIN
 * LA -> CL    the peer's FIN, retransmitted, acknowledges our FIN */
[EV_ACK]    = { xST, xST, xST, xST,    xST, xST,    xST, xST,    xST, xST },
/* any         an ACK that acknowledges nothing outstanding changes nothing */
[EV_ACK_OURS] = { xST, xBD, sES, xST,  sF2, xST,    sTW, xST,    xST, sCL },
/* SS          an ACK of our SYN without a SYN: anomaly
 * SR -> ES    the handshake completes
 * F1 -> F2    our FIN is acknowledged
 * CG -> TW    simultaneous close: our FIN is acknowledged
 * LA -> CL    our FIN is acknowledged: passive close complete */
[EV_RST]    = { xST, sCL, sCL, sCL,    sCL, sCL,    sCL, sCL,    sCL, sCL },
/* CL -> CL    nothing to reset
 * any -> CL   an acceptable RST aborts (the tracker feeds only RSTs that pass the window check;
 *             TIME_WAIT too, as Linux does with tcp_rfc1337 = 0) */
},
};

uint8_t tcp_fsm_next(enum fsm_dir dir, enum fsm_event ev, enum tcp_state st)
{
	if ((unsigned)dir >= FSM_DIR_COUNT || (unsigned)ev >= EV_COUNT || (unsigned)st >= TS_COUNT)
		return FSM_BAD;
	return fsm[dir][ev][st];
}

/* Combinations no conforming TCP sends, by the SYN|FIN|RST|ACK bits:
 * SYN with FIN, SYN with RST, and anything but SYN or RST without ACK. */
static const char *const state_names[TS_COUNT] = {
	[TS_CLOSED] = "CLOSED",
	[TS_SYN_SENT] = "SYN_SENT",
	[TS_SYN_RECEIVED] = "SYN_RECEIVED",
	[TS_ESTABLISHED] = "ESTABLISHED",
	[TS_FIN_WAIT_1] = "FIN_WAIT_1",
	[TS_FIN_WAIT_2] = "FIN_WAIT_2",
	[TS_CLOSING] = "CLOSING",
	[TS_TIME_WAIT] = "TIME_WAIT",
	[TS_CLOSE_WAIT] = "CLOSE_WAIT",
	[TS_LAST_ACK] = "LAST_ACK",
};

const char *tcp_state_name(enum tcp_state st)
{
	return (unsigned)st < TS_COUNT ? state_names[st] : "?";
}

int tcp_state_parse(const char *name)
{
	for (int i = 0; i < TS_COUNT; i++)
		if (strcmp(name, state_names[i]) == 0)
			return i;
	return -1;
}

const char *tcp_event_name(enum fsm_event ev)
{
	static const char *const names[EV_COUNT] = {
		"SYN", "SYNACK", "FIN", "FIN_OURS", "ACK", "ACK_OURS", "RST",
	};
	return (unsigned)ev < EV_COUNT ? names[ev] : "?";
}
