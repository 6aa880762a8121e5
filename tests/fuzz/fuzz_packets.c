/* fuzz_packets.c - libFuzzer harness for the per-packet path: link layer, IP,
 * TCP, flow table, state machine, analyses and reporters, wired by the same
 * pipeline as file and live runs (run.h). An input is a little capture (format
 * below), so one run walks connections through their states. A libFuzzer
 * program with -Dfuzzing=true; linked with replay.c everywhere else. */
#include <fcntl.h>
#include <pcap/pcap.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "analyses.h"
#include "decode.h"
#include "options.h"
#include "run.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Input format:
 *   byte 0     link type, an index into link_types[] (modulo its size)
 *   byte 1     bits 0-1 format (text, json, zeek, text), bit 2 --timeline,
 *              bits 3-4 --limit (0, 1, 2, 50), bits 5-6 --time-wait
 *              (60 s, 0, 1 ms, 2 s), bit 7 every --report section
 *   byte 2     bits 0-1 --max-connections (none, 1, 3, 16), bit 2 idle
 *              timeouts of 2 s in every state (as live mode has), bit 3 the
 *              queued tracker_push of file runs instead of live's tracker_packet
 *   then frames, each:
 *     u16le    captured length (cut to what is left of the input)
 *     u8       time step: 0xff = 1 s back, bit 7 = seconds else milliseconds,
 *              bits 0-6 the count (steps of up to 127 s reach TIME_WAIT expiry)
 *     u8       extra wire length: wirelen = caplen + 64 * this (snaplen, TSO)
 *     bytes    the frame
 * tests/fuzz/seeds.py writes this format from pcap files. */
static const int link_types[] = {
	DLT_EN10MB, DLT_RAW, DLT_NULL, DLT_LOOP, DLT_PPP, DLT_LINUX_SLL,
#ifdef DLT_LINUX_SLL2
	DLT_LINUX_SLL2,
#else
	DLT_EN10MB,
#endif
	DLT_C_HDLC, DLT_FDDI, DLT_PPP_ETHER, DLT_PPP_SERIAL, DLT_IPV4, DLT_IPV6, 101,
};

static uint64_t time_step(uint8_t b, uint64_t now)
{
	uint64_t unit = (b & 0x80) ? 1000000000ULL : 1000000ULL;

	if (b == 0xff)
		return now >= 1000000000ULL ? now - 1000000000ULL : 0;
	return now + (uint64_t)(b & 0x7f) * unit;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t limits[] = { 0, 1, 2, 50 };
	static const uint64_t time_waits[] = { 60000000000ULL, 0, 1000000ULL, 2000000000ULL };
	static const uint64_t caps[] = { 0, 1, 3, 16 };
	static const enum out_format formats[] = { FMT_TEXT, FMT_JSON, FMT_ZEEK, FMT_TEXT };
	static int devnull = -1;
	char *argv[] = { "tcpstate", "-r", "fuzz", NULL };
	char err[256];
	struct options o;
	struct pipeline pl;
	uint64_t now = 1700000000ULL * 1000000000ULL;
	size_t pos = 3;
	int dlt;

	if (size < 3)
		return 0;
	if (devnull < 0)
		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	/* the defaults of a plain `tcpstate -r FILE`, then the input's choices */
	if (options_parse(3, argv, &o, err, sizeof(err)) != 0) {
		options_free(&o);
		return 0;
	}
	dlt = link_types[data[0] % (sizeof(link_types) / sizeof(link_types[0]))];
	o.format = formats[data[1] & 3];
	o.timeline = data[1] & 4;
	o.limit = limits[(data[1] >> 3) & 3];
	o.time_wait_ns = time_waits[(data[1] >> 5) & 3];
	if (data[1] & 0x80)
		o.report_mask = SEC_ALL;
	o.max_connections = caps[data[2] & 3];
	if (data[2] & 4)
		for (int s = 0; s < TS_COUNT; s++)
			o.idle_ns[s] = 2000000000ULL;
	if (!pipeline_init(&pl, &o, devnull)) {
		options_free(&o);
		return 0;
	}
	while (size - pos >= 4) {
		uint32_t caplen = (uint32_t)data[pos] | (uint32_t)data[pos + 1] << 8;
		uint8_t step = data[pos + 2];
		uint32_t wirelen;
		struct packet p;
		enum decode_status st;

		pos += 4;
		if (caplen > size - pos)
			caplen = (uint32_t)(size - pos);
		wirelen = caplen + 64u * data[pos - 1];
		now = time_step(step, now);
		memset(&p, 0, sizeof(p));
		st = decode_frame(dlt, data + pos, caplen, wirelen, &p);
		pos += caplen;
		if (!pl.sum.frames)
			pl.sum.first_ns = now;
		pl.sum.frames++;
		if (now > pl.sum.last_ns)
			pl.sum.last_ns = now;
		if (st != DECODE_OK) {
			pl.sum.decode[st]++;
			continue;
		}
		p.ts_ns = now;
		p.number = pl.sum.frames;
		pl.sum.segments++;
		if (data[2] & 8)
			tracker_push(pl.trk, &p);
		else
			tracker_packet(pl.trk, &p);
	}
	pipeline_finish(&pl, pl.sum.last_ns, false);
	pipeline_destroy(&pl);
	options_free(&o);
	return 0;
}
