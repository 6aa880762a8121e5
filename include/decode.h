/* decode.h - link layer, IPv4/IPv6 and TCP decoding of one captured frame.
 * Every read is bounds-checked against caplen; the result says why a frame
 * was not usable so the summary can count it by reason. */
#ifndef TCPSTATE_DECODE_H
#define TCPSTATE_DECODE_H

#include <stdbool.h>
#include <stdint.h>

#include "packet.h"

/* Outcome of decoding one frame. DECODE_OK means *out holds a TCP segment.
 * Everything else is counted under its name in the summary. Keep
 * decode_status_name() in step when adding a value. "truncated_*" means
 * caplen ran out (normal with a small snaplen); "invalid_*" means fields
 * contradict each other or the frame's length. */
enum decode_status {
	DECODE_OK = 0,
	DECODE_NOT_IP,              /* link payload is not IPv4/IPv6 (ARP, LLDP, ...) */
	DECODE_NOT_TCP,             /* IP, but the transport is not TCP (UDP, ICMP, ...) */
	DECODE_FRAGMENT,            /* non-first fragment, or first fragment without a full TCP header */
	DECODE_TRUNCATED_LINK,      /* caplen ended inside the link-layer header */
	DECODE_TRUNCATED_IP,        /* caplen ended inside the IP header / extension headers */
	DECODE_TRUNCATED_TCP,       /* caplen ended inside the TCP header (incl. options) */
	DECODE_INVALID_IP_VERSION,  /* version nibble not 4/6, or not the one the link layer said */
	DECODE_INVALID_IP_HEADER,   /* IPv4 IHL < 5, or ext-header chain malformed */
	DECODE_INVALID_IP_LENGTH,   /* IP total/payload length smaller than its header, or larger than the frame on the wire */
	DECODE_INVALID_TCP_OFFSET,  /* data offset < 5 or beyond the IP payload */
	DECODE_UNSUPPORTED_LINK,    /* link type tcpstate cannot decode */
	DECODE_STATUS_COUNT
};

/* Short snake_case name of a status, e.g. "truncated_tcp". */
const char *decode_status_name(enum decode_status st);

/* True when decode_frame() understands this DLT_* link type. */
bool decode_linktype_supported(int dlt);

/* Decode one frame of link type dlt (pcap_datalink() value). caplen is the
 * number of bytes in data, wirelen the frame's length on the wire. On
 * DECODE_OK fills every field of *out except ts_ns and number, which the
 * caller sets. Never reads data[caplen] or beyond. */
enum decode_status decode_frame(int dlt, const uint8_t *data, uint32_t caplen,
				uint32_t wirelen, struct packet *out);

/* decode_frame() without its fast path for plain Ethernet/IPv4/IPv6/TCP
 * frames: the reference the fast path must agree with (unit tests). */
enum decode_status decode_frame_general(int dlt, const uint8_t *data, uint32_t caplen,
					uint32_t wirelen, struct packet *out);

/* decode_frame() for DLT_EN10MB with data not NULL: what the capture
 * reader calls per frame, sparing the two tests. */
enum decode_status decode_ether_frame(const uint8_t *data, uint32_t caplen, uint32_t wirelen,
				      struct packet *out);

#endif
