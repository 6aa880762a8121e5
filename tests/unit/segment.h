/* segment.h - what the tracker-driven unit tests share: times, flag
 * shorthands and the segments of one IPv4 connection between 10.0.0.1 (the
 * client) and 10.0.0.2 (the server), 20-byte IP and TCP headers. */
#ifndef TCPSTATE_TEST_SEGMENT_H
#define TCPSTATE_TEST_SEGMENT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "packet.h"

#define MS 1000000ULL
#define S 1000000000ULL
#define T0 (1700000000ULL * S)

#define C true       /* from the client */
#define SV false     /* from the server */
#define SYN TH_SYN
#define SA (TH_SYN | TH_ACK)
#define A TH_ACK
#define PA (TH_PSH | TH_ACK)
#define FA (TH_FIN | TH_ACK)
#define RA (TH_RST | TH_ACK)
#define R TH_RST

/* The segment `number` of the connection cport <-> sport, ms after T0. */
static inline struct packet segment_make(bool from_client, uint16_t cport, uint16_t sport,
					 uint8_t flags, uint32_t seq, uint32_t ack, uint32_t len,
					 uint64_t ms, uint64_t number, uint16_t window)
{
	static const uint8_t ca[4] = { 10, 0, 0, 1 }, sa[4] = { 10, 0, 0, 2 };
	struct packet p;

	memset(&p, 0, sizeof(p));
	p.family = 4;
	p.ts_ns = T0 + ms * MS;
	p.number = number;
	memcpy(p.src, from_client ? ca : sa, 4);
	memcpy(p.dst, from_client ? sa : ca, 4);
	p.sport = from_client ? cport : sport;
	p.dport = from_client ? sport : cport;
	p.flags = flags;
	p.seq = seq;
	p.ack = ack;
	p.payload_len = len;
	p.ip_len = 40 + len;
	p.window = window;
	return p;
}

#endif
