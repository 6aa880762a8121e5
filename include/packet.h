/* packet.h - the decoded view of one captured TCP segment.
 * The decoder fills it from untrusted bytes; everything after the decoder
 * (flow table, tracker, analyses) reads only this struct, never raw bytes. */
#ifndef TCPSTATE_PACKET_H
#define TCPSTATE_PACKET_H

#include <stdbool.h>
#include <stdint.h>

/* TCP header flag bits, as on the wire (RFC 793, RFC 3168). */
enum {
	TH_FIN = 0x01,
	TH_SYN = 0x02,
	TH_RST = 0x04,
	TH_PSH = 0x08,
	TH_ACK = 0x10,
	TH_URG = 0x20,
	TH_ECE = 0x40,
	TH_CWR = 0x80,
};

/* TCP options we use; has_* says whether the option was present and well formed. */
struct tcp_options {
	uint16_t mss;
	uint8_t wscale;          /* shift count, as sent (clamped to 14 by the tracker) */
	uint8_t sack_blocks;     /* number of SACK blocks in this segment */
	bool has_mss;
	bool has_wscale;
	bool sack_permitted;
	bool has_timestamps;
	bool bad;                /* an option was malformed; parsing stopped there */
	uint32_t ts_val;
	uint32_t ts_ecr;
};

/* One TCP segment. Addresses are in network byte order; an IPv4 address
 * occupies the first 4 bytes of the 16 and the rest are zero. */
struct packet {
	uint64_t ts_ns;          /* capture timestamp, nanoseconds since the epoch */
	uint64_t number;         /* 1-based packet number in the capture (as tshark/tcpdump -#) */
	uint8_t family;          /* 4 or 6 */
	uint8_t flags;           /* TH_* bits */
	uint16_t sport, dport;   /* host byte order */
	uint8_t src[16], dst[16];
	uint32_t seq, ack;       /* host byte order */
	uint16_t window;         /* raw window field, unscaled */
	uint32_t payload_len;    /* TCP payload bytes per the IP header (not limited by caplen) */
	uint32_t ip_len;         /* IP total length of the packet carrying the segment, as on the
				  * wire (IPv6: 40 + payload length); Zeek's orig_ip_bytes sums it */
	struct tcp_options opt;
};

#endif
