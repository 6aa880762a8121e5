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

/* Buffer size for any history: 19 letters, then '+' when Zeek's would be
 * longer (zeek.c keeps no more), then NUL. */
#define ZEEK_HISTORY_MAX 21

/* Segment kinds counted per direction (for checking against tshark). */
enum zeek_flag_count { ZFC_SYN, ZFC_SYNACK, ZFC_FIN, ZFC_RST, ZFC_COUNT };

/* Per-connection Zeek bookkeeping, embedded in struct conn (80 bytes).
 * Arrays [2] are indexed by tcpstate role (ROLE_CLIENT, ROLE_SERVER), so a
 * flip of Zeek's orientation moves nothing. zeek.c says what each field
 * models in Zeek; nothing here is meant to be read outside zeek.c. */
struct zeek_conn {
	uint32_t start_seq[2];   /* TCP_Endpoint start_seq */
	uint32_t last_seq[2];    /* TCP_Endpoint last_seq */
	uint32_t rcv_seq[2];     /* where in-order data ends (the reassembler's last_reassem_seq) */
	uint32_t hdr_bytes[2];   /* IP + TCP header bytes sent: ip bytes = payload + these */
	uint32_t missed_bytes;   /* content gaps, both directions (saturating) */
	uint32_t last_time;      /* Zeek's last_time after first_ns: 31-bit us, or ms with bit 31 */
	uint16_t rxmt[2];        /* retransmissions ('T'), saturating */
	uint16_t rst_seq[2];     /* low 16 bits of the last RST's sequence number */
	uint16_t copies[2];      /* segments the tracker dropped as capture copies (saturating) */
	uint16_t seen;           /* Zeek's hist_seen: orig bits 0-6, resp 8-14, plus two flags */
	uint8_t win0[2];         /* zero windows ('W'), saturating */
	uint8_t gaps[2];         /* content gaps ('G'), saturating */
	uint8_t ep[2];           /* endpoint state, previous state, FIN sent, data above a hole */
	uint8_t nflags[2][ZFC_COUNT]; /* SYN, SYN-ACK, FIN, RST segments sent (saturating) */
	uint8_t hist[12];        /* history letters, 5 bits each, 0 ends */
};

/* Every segment of c, after the state machine ran; sender_role is ROLE_*. */
void zeek_segment(struct conn *c, int sender_role, const struct packet *p);

/* zeek_segment() without its fast paths (ACK and data segments, FINs, the
 * SYN that opens an endpoint): the whole model, the reference the fast
 * paths must agree with (unit tests). */
void zeek_segment_general(struct conn *c, int sender_role, const struct packet *p);

/* A segment the tracker drops as a capture copy (SPAN duplicate): Zeek and
 * tshark see it like any other (a retransmission, a packet, its flags). */
void zeek_copy(struct conn *c, int sender_role, const struct packet *p);

/* "S0", "SF", ... as Zeek would log for c. */
const char *zeek_conn_state(const struct conn *c);

/* Zeek's history string into buf (ZEEK_HISTORY_MAX bytes hold any);
 * returns its length. */
size_t zeek_history(const struct conn *c, char *buf, size_t len);

/* True when Zeek's originator is tcpstate's server (Zeek flipped it). */
bool zeek_flipped(const struct conn *c);

/* tcpstate role (ROLE_*) of Zeek's originator. */
int zeek_orig_role(const struct conn *c);

/* Zeek's duration (last_time - start_time) in nanoseconds. */
uint64_t zeek_duration_ns(const struct conn *c);

/* Payload bytes the endpoint of tcpstate role `role` sent, as Zeek's
 * TCP_Endpoint::Size() counts them (sequence space, not a payload sum). */
uint64_t zeek_size(const struct conn *c, int role);

/* Packets the endpoint sent as Zeek counts them, copies included (orig_pkts). */
uint64_t zeek_packets(const struct conn *c, int role);

/* IP-level bytes the endpoint sent (orig_ip_bytes / resp_ip_bytes). */
uint64_t zeek_ip_bytes(const struct conn *c, int role);

/* Bytes missed in content gaps, both directions (missed_bytes). */
uint64_t zeek_missed_bytes(const struct conn *c);

/* How many segments of kind k (enum zeek_flag_count) the endpoint sent. */
unsigned zeek_flag_count(const struct conn *c, int role, int k);

/* "C" + base62 of the connection id into buf (>= 16 bytes); returns buf. */
const char *zeek_uid(const struct conn *c, char *buf, size_t len);

#endif
