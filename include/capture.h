/* capture.h - reading frames from a capture file (pcap and pcapng,
 * nanosecond timestamps) and decoding them. libpcap opens the file; classic
 * pcap files are read by a fast reader of our own, the rest by libpcap
 * (TCPSTATE_PCAP_READER=libpcap forces libpcap for all). Knows where in the
 * file it is, so a damaged file can be reported by packet number and offset. */
#ifndef TCPSTATE_CAPTURE_H
#define TCPSTATE_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode.h"
#include "packet.h"

enum capture_status {
	CAP_PACKET,   /* *out holds a TCP segment */
	CAP_SKIPPED,  /* a frame that is not a usable TCP segment; *why says why */
	CAP_EOF,      /* clean end of file */
	CAP_DAMAGED,  /* the file is damaged here; capture_error() says how */
};

struct capture;

/* Open a capture file ("-" = stdin) and apply filter (may be NULL).
 * Returns NULL with a message in err; *usage_error is set when the fault is
 * the filter expression rather than the file. With TCPSTATE_PCAP_READER=
 * fast-only, a file the fast reader cannot take is refused this way too. */
struct capture *capture_open_file(const char *path, const char *filter, char *err,
				  size_t errlen, bool *usage_error);

void capture_close(struct capture *cap);

/* Read the next frame. On CAP_PACKET *out is filled (ts_ns included; number
 * is the frame's 1-based position in this file). */
enum capture_status capture_next(struct capture *cap, struct packet *out,
				 enum decode_status *why);

/* After CAP_DAMAGED: "packet N (byte offset O): reason". */
const char *capture_error(const struct capture *cap);

#endif
