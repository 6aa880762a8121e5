/* zeek.h - Zeek's vocabulary for a connection: conn_state (S0, SF, REJ...),
 * history letters, and Zeek's orig/resp orientation. Fed every segment by
 * the tracker; read by the reporters and the conn.log writer. */
#ifndef TCPSTATE_ZEEK_H
#define TCPSTATE_ZEEK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "packet.h"

struct conn;

/* Per-connection Zeek bookkeeping, embedded in struct conn. */
struct zeek_conn {
	uint32_t bits;
};

/* Every segment of c, after the state machine ran; sender_role is ROLE_*. */
void zeek_segment(struct conn *c, int sender_role, const struct packet *p);

/* "S0", "SF", ... as Zeek would log for c. */
const char *zeek_conn_state(const struct conn *c);

/* Zeek's history string into buf; returns its length. */
size_t zeek_history(const struct conn *c, char *buf, size_t len);

/* True when Zeek's originator is tcpstate's server (Zeek flipped it). */
bool zeek_flipped(const struct conn *c);

#endif
