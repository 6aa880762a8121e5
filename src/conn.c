/* conn.c - small helpers around a connection record: names of its flags and
 * causes, its timeline storage, and how "clean" its end was (the text
 * report lists unclean connections first). */
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "conn_pool.h"

const char *conn_flag_name(uint32_t bit)
{
	switch (bit) {
	case CF_PICKED_UP: return "picked_up";
	case CF_PORT_REUSED: return "port_reused";
	case CF_ROLE_BY_PORT: return "role_by_port";
	case CF_ROLE_BY_SYNACK: return "role_by_synack";
	case CF_RST_IGNORED: return "rst_out_of_window";
	case CF_NOT_ACCEPTED: return "segment_not_accepted";
	case CF_SIM_OPEN: return "simultaneous_open";
	case CF_SIM_CLOSE: return "simultaneous_close";
	case CF_REFUSED: return "refused";
	case CF_ANOMALY: return "anomaly";
	case CF_TW_EXPIRED: return "time_wait_expired";
	case CF_SUPERSEDED: return "superseded";
	case CF_SYN_ON_ESTAB: return "syn_on_established";
	case CF_RESET: return "reset";
	case CF_EXPIRED: return "expired";
	case CF_EVICTED: return "evicted";
	case CF_SILENT_SYN: return "syn_sender_silent";
	case CF_SILENT_SYNACK: return "synack_not_retransmitted";
	default: return "?";
	}
}

const char *transition_cause_name(uint8_t cause)
{
	switch (cause) {
	case TC_PACKET: return "packet";
	case TC_PICKUP: return "pickup";
	case TC_REVERT: return "not_accepted";
	case TC_CONFIRMED: return "confirmed";
	case TC_TIMEOUT: return "timeout";
	case TC_REUSED: return "reused";
	case TC_INFERRED: return "inferred";
	case TC_CROSSED: return "crossed";
	default: return "?";
	}
}

bool conn_closed_cleanly(const struct conn *c)
{
	const struct peer *p = c->peer;

	for (int r = 0; r < 2; r++)
		if (p[r].state != TS_CLOSED && p[r].state != TS_TIME_WAIT)
			return false;
	/* Clean: both FINs sent, nothing reset it, nothing odd on the way. */
	return (p[0].bits & PB_FIN) && (p[1].bits & PB_FIN) &&
	       !(c->flags & CF_UNCLEAN);
}

/* A record with room of its own (c->tl_inline: from a pool made for
 * timelines) keeps its timeline there while it fits: a connection's
 * timeline is made when it opens, grows when it closes, and is packed and
 * unpacked with the connection, and in arrays of its own each of those
 * was a wait for another page. A longer one, or one of a record without
 * room, comes from malloc. */
struct transition *conn_tl_alloc(const struct conn *c, uint32_t cap)
{
	if (c->tl_inline && cap <= c->tl_inline && c->tl != conn_tl_own(c))
		return conn_tl_own(c);
	return malloc((cap ? cap : 1) * sizeof(struct transition));
}

void conn_tl_free(const struct conn *c, struct transition *tl)
{
	if (!tl || (c->tl_inline && tl == conn_tl_own(c)))
		return;
	free(tl);
}

struct transition *conn_timeline_next(struct conn *c)
{
	if (c->tl_len == c->tl_cap) {
		uint32_t cap = !c->tl_cap ? (c->tl_inline ? c->tl_inline : CONN_TL_SMALL) :
			       c->tl_cap < CONN_TL_USUAL ? CONN_TL_USUAL : c->tl_cap * 2;
		struct transition *n = conn_tl_alloc(c, cap);

		if (!n)
			return NULL;
		if (c->tl_len)
			memcpy(n, c->tl, (size_t)c->tl_len * sizeof(*n));
		conn_tl_free(c, c->tl);
		c->tl = n;
		c->tl_cap = cap;
	}
	return &c->tl[c->tl_len++];
}

struct conn_rare *conn_rare_get(struct conn *c)
{
	if (!c->rare)
		c->rare = calloc(1, sizeof(*c->rare));
	return c->rare;
}

void conn_destroy(struct conn *c)
{
	if (!c)
		return;
	conn_tl_free(c, c->tl);
	free(c->rare);
	if (c->pooled)
		conn_pool_free(c);
	else
		free(c);
}
