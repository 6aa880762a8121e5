/* test_decode.c - unit tests for decode.c.
 * Frames are assembled by hand (Ethernet/IP/TCP builders below) for every link
 * type, tunnel, IP and TCP option case and error status; each good frame is
 * also cut at every length to check truncation handling (run under ASan).
 * Finally every capture of the shared corpus is decoded, and TCP packet counts
 * and a few packets' fields are compared with what tshark 4.0.17 reported. */

#include <arpa/inet.h>
#include <glob.h>
#include <pcap/pcap.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "../test.h"

/* ------------------------------------------------------------------ */
/* Frame builder                                                       */
/* ------------------------------------------------------------------ */

struct frame {
	uint8_t b[4096];
	size_t n;
};

static void put8(struct frame *f, unsigned v)
{
	if (f->n < sizeof f->b)
		f->b[f->n++] = (uint8_t)v;
}

static void put16(struct frame *f, unsigned v)
{
	put8(f, v >> 8 & 0xff);
	put8(f, v & 0xff);
}

static void put32(struct frame *f, uint32_t v)
{
	put16(f, v >> 16);
	put16(f, v & 0xffff);
}

static void putn(struct frame *f, const void *p, size_t n)
{
	const uint8_t *s = p;

	for (size_t i = 0; i < n; i++)
		put8(f, s[i]);
}

static void putfill(struct frame *f, unsigned byte, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put8(f, byte);
}

static void set16(struct frame *f, size_t off, size_t v)
{
	f->b[off] = (uint8_t)(v >> 8);
	f->b[off + 1] = (uint8_t)v;
}

static const uint8_t A4[4] = { 192, 0, 2, 1 };
static const uint8_t B4[4] = { 198, 51, 100, 2 };
static const uint8_t OA4[4] = { 10, 0, 0, 1 };     /* tunnel endpoints */
static const uint8_t OB4[4] = { 10, 0, 0, 2 };
static const uint8_t A6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
static const uint8_t B6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2 };
static const uint8_t OA6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
static const uint8_t OB6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2 };

/* Destination and source MAC, then the type/length field. */
static void eth(struct frame *f, unsigned type)
{
	static const uint8_t macs[12] = { 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 6 };

	putn(f, macs, sizeof macs);
	put16(f, type);
}

/* An IPv4 header with options (optlen a multiple of 4); ip_end() fills
 * in the total length once the payload is in place. Returns its offset. */
static size_t ipv4o(struct frame *f, unsigned proto, const uint8_t *src, const uint8_t *dst,
		    unsigned frag, const uint8_t *opts, size_t optlen)
{
	size_t off = f->n;

	put8(f, 0x45 + (unsigned)(optlen / 4));
	put8(f, 0);
	put16(f, 0);            /* total length, see ipv4_end */
	put16(f, 0x1234);
	put16(f, frag);
	put8(f, 64);
	put8(f, proto);
	put16(f, 0);
	putn(f, src, 4);
	putn(f, dst, 4);
	putn(f, opts, optlen);
	return off;
}

static size_t ipv4(struct frame *f, unsigned proto, const uint8_t *src, const uint8_t *dst)
{
	return ipv4o(f, proto, src, dst, 0x4000 /* DF */, NULL, 0);
}

static void ipv4_end(struct frame *f, size_t off)
{
	set16(f, off + 2, f->n - off);
}

static size_t ipv6(struct frame *f, unsigned nh, const uint8_t *src, const uint8_t *dst)
{
	size_t off = f->n;

	put32(f, 0x60012345);
	put16(f, 0);            /* payload length, see ipv6_end */
	put8(f, nh);
	put8(f, 64);
	putn(f, src, 16);
	putn(f, dst, 16);
	return off;
}

static void ipv6_end(struct frame *f, size_t off)
{
	set16(f, off + 4, f->n - off - 40);
}

/* UDP header; udp_end() sets its length. */
static size_t udp(struct frame *f, unsigned sport, unsigned dport)
{
	size_t off = f->n;

	put16(f, sport);
	put16(f, dport);
	put16(f, 0);
	put16(f, 0);
	return off;
}

static void udp_end(struct frame *f, size_t off)
{
	set16(f, off + 4, f->n - off);
}

/* The standard segment every "good" case carries. */
enum {
	STD_SPORT = 40000,
	STD_DPORT = 80,
	STD_SEQ = 0x01020304,
	STD_FLAGS = TH_SYN | TH_ACK,
	STD_WIN = 29200,
	STD_PAYLOAD = 10,
};
#define STD_ACK ((uint32_t)0xa0b0c0d0u)     /* above INT_MAX: not an enum */

/* MSS 1460, SACK-permitted, timestamps 1000/2000, NOP, window scale 7 */
static const uint8_t std_opts[20] = {
	2, 4, 0x05, 0xb4,
	4, 2,
	8, 10, 0, 0, 0x03, 0xe8, 0, 0, 0x07, 0xd0,
	1,
	3, 3, 7,
};

/* A TCP header with an explicit data offset (in 32-bit words) and flags. */
static void tcp_raw(struct frame *f, unsigned doff, unsigned flags,
		    const uint8_t *opts, size_t optlen, size_t payload)
{
	put16(f, STD_SPORT);
	put16(f, STD_DPORT);
	put32(f, STD_SEQ);
	put32(f, STD_ACK);
	put8(f, doff << 4);
	put8(f, flags);
	put16(f, STD_WIN);
	put16(f, 0);            /* checksum: not verified by the decoder */
	put16(f, 0);
	putn(f, opts, optlen);
	putfill(f, 'x', payload);
}

static void tcp(struct frame *f, const uint8_t *opts, size_t optlen, size_t payload)
{
	tcp_raw(f, (unsigned)(20 + optlen) / 4, STD_FLAGS, opts, optlen, payload);
}

static void std_tcp(struct frame *f)
{
	tcp(f, std_opts, sizeof std_opts, STD_PAYLOAD);
}

/* IPv4 (A4 -> B4) carrying the standard segment. */
static void inner4(struct frame *f)
{
	size_t ip = ipv4(f, 6, A4, B4);

	std_tcp(f);
	ipv4_end(f, ip);
}

/* IPv6 (A6 -> B6) carrying the standard segment. */
static void inner6(struct frame *f)
{
	size_t ip = ipv6(f, 6, A6, B6);

	std_tcp(f);
	ipv6_end(f, ip);
}

static void inner(struct frame *f, int family)
{
	if (family == 4)
		inner4(f);
	else
		inner6(f);
}

/* ------------------------------------------------------------------ */
/* Checking helpers                                                    */
/* ------------------------------------------------------------------ */

/* Every decode in this file runs both ways: decode_frame() (with its fast
 * path for plain Ethernet frames) and decode_frame_general(); they must
 * agree on the status and, when it is ok, on every field. */
static bool packet_equal(const struct packet *a, const struct packet *b);
static int both_ways, fast_ok;

static enum decode_status decode_both(int dlt, const uint8_t *data, uint32_t caplen,
				      uint32_t wirelen, struct packet *out)
{
	struct packet g = *out;
	enum decode_status st = decode_frame(dlt, data, caplen, wirelen, out);
	enum decode_status sg = decode_frame_general(dlt, data, caplen, wirelen, &g);

	both_ways++;
	if (st != sg) {
		fprintf(stderr, "  fast path %s, general path %s (dlt %d, caplen %u, wire %u)\n",
			decode_status_name(st), decode_status_name(sg), dlt, caplen, wirelen);
		CHECK(st == sg);
	} else if (st == DECODE_OK) {
		CHECK(packet_equal(out, &g));
		if (dlt == DLT_EN10MB)
			fast_ok++;
	}
	return st;
}
#define decode_frame decode_both

static enum decode_status decode(int dlt, const struct frame *f, struct packet *p)
{
	memset(p, 0, sizeof *p);
	return decode_frame(dlt, f->b, (uint32_t)f->n, (uint32_t)f->n, p);
}

static bool packet_equal(const struct packet *a, const struct packet *b)
{
	return a->family == b->family && a->flags == b->flags &&
	       a->sport == b->sport && a->dport == b->dport &&
	       memcmp(a->src, b->src, 16) == 0 && memcmp(a->dst, b->dst, 16) == 0 &&
	       a->seq == b->seq && a->ack == b->ack && a->window == b->window &&
	       a->payload_len == b->payload_len &&
	       a->opt.mss == b->opt.mss && a->opt.has_mss == b->opt.has_mss &&
	       a->opt.wscale == b->opt.wscale && a->opt.has_wscale == b->opt.has_wscale &&
	       a->opt.sack_permitted == b->opt.sack_permitted &&
	       a->opt.sack_blocks == b->opt.sack_blocks &&
	       a->opt.has_timestamps == b->opt.has_timestamps &&
	       a->opt.ts_val == b->opt.ts_val && a->opt.ts_ecr == b->opt.ts_ecr &&
	       a->opt.bad == b->opt.bad;
}

static void check_addrs(const struct packet *p, int family)
{
	static const uint8_t zero[12];

	CHECK_EQ_INT(p->family, family);
	if (family == 4) {
		CHECK(memcmp(p->src, A4, 4) == 0);
		CHECK(memcmp(p->dst, B4, 4) == 0);
		CHECK(memcmp(p->src + 4, zero, 12) == 0);
		CHECK(memcmp(p->dst + 4, zero, 12) == 0);
	} else {
		CHECK(memcmp(p->src, A6, 16) == 0);
		CHECK(memcmp(p->dst, B6, 16) == 0);
	}
}

/* Every field of the standard segment. */
static void check_std(const struct packet *p, int family, uint32_t payload_len)
{
	check_addrs(p, family);
	CHECK_EQ_INT(p->sport, STD_SPORT);
	CHECK_EQ_INT(p->dport, STD_DPORT);
	CHECK_EQ_INT(p->seq, STD_SEQ);
	CHECK_EQ_INT(p->ack, STD_ACK);
	CHECK_EQ_INT(p->flags, STD_FLAGS);
	CHECK_EQ_INT(p->window, STD_WIN);
	CHECK_EQ_INT(p->payload_len, payload_len);
	CHECK(p->opt.has_mss);
	CHECK_EQ_INT(p->opt.mss, 1460);
	CHECK(p->opt.has_wscale);
	CHECK_EQ_INT(p->opt.wscale, 7);
	CHECK(p->opt.sack_permitted);
	CHECK_EQ_INT(p->opt.sack_blocks, 0);
	CHECK(p->opt.has_timestamps);
	CHECK_EQ_INT(p->opt.ts_val, 1000);
	CHECK_EQ_INT(p->opt.ts_ecr, 2000);
	CHECK(!p->opt.bad);
}

static int sweeps;

/* Cut the frame at every length 0..n, each cut in a heap buffer of exactly
 * that size so ASan sees any read past caplen. With the wire length kept,
 * a cut before the end of the TCP header (hdr_end) must be "truncated_*",
 * and a cut inside the payload must still give exactly the full packet.
 * With the wire length cut as well (a short frame), a cut before hdr_end
 * must simply not be OK. */
static void sweep(int dlt, const struct frame *f, size_t hdr_end, const struct packet *full)
{
	sweeps++;
	for (size_t cut = 0; cut <= f->n; cut++) {
		uint8_t *buf = malloc(cut ? cut : 1);
		struct packet p;
		enum decode_status st;

		if (buf == NULL) {
			CHECK(buf != NULL);
			return;
		}
		memcpy(buf, f->b, cut);
		memset(&p, 0, sizeof p);
		st = decode_frame(dlt, buf, (uint32_t)cut, (uint32_t)f->n, &p);
		if (cut < hdr_end) {
			if (strncmp(decode_status_name(st), "truncated_", 10) != 0) {
				fprintf(stderr, "  cut %zu of %zu: %s\n", cut, f->n, decode_status_name(st));
				CHECK(strncmp(decode_status_name(st), "truncated_", 10) == 0);
			}
		} else {
			CHECK_EQ_STR(decode_status_name(st), "ok");
			CHECK(packet_equal(&p, full));
		}
		st = decode_frame(dlt, buf, (uint32_t)cut, (uint32_t)cut, &p);
		if (cut < hdr_end)
			CHECK(st != DECODE_OK);
		free(buf);
	}
}

/* Run one "good" case: decode, check every field, sweep the truncations.
 * The standard segment ends the frame, so the TCP header ends STD_PAYLOAD
 * bytes before the end. */
static void expect_std(const char *name, int dlt, const struct frame *f, int family)
{
	int before = test_failures;
	struct packet p;

	CHECK_EQ_STR(decode_status_name(decode(dlt, f, &p)), "ok");
	check_std(&p, family, STD_PAYLOAD);
	sweep(dlt, f, f->n - STD_PAYLOAD, &p);
	if (test_failures != before)
		fprintf(stderr, "  ^ in case: %s\n", name);
}

static void expect_status(const char *name, int dlt, const struct frame *f, enum decode_status want)
{
	struct packet p;
	enum decode_status st = decode(dlt, f, &p);

	if (st != want)
		fprintf(stderr, "  in case: %s\n", name);
	CHECK_EQ_STR(decode_status_name(st), decode_status_name(want));
}

static void group_done(const char *name, int *checks_before)
{
	printf("  %-22s %5d checks\n", name, test_checks - *checks_before);
	*checks_before = test_checks;
}

#ifndef DLT_LINUX_SLL2
#define DLT_LINUX_SLL2 276
#endif
#ifndef DLT_IPV4
#define DLT_IPV4 228
#endif
#ifndef DLT_IPV6
#define DLT_IPV6 229
#endif

/* ------------------------------------------------------------------ */
/* Ethernet and everything that rides on ethertypes                    */
/* ------------------------------------------------------------------ */

static void test_ethernet(void)
{
	struct frame f;

	for (int fam = 4; fam <= 6; fam += 2) {
		unsigned et = fam == 4 ? 0x0800 : 0x86dd;

		f.n = 0;
		eth(&f, et);
		inner(&f, fam);
		expect_std(fam == 4 ? "ethernet ipv4" : "ethernet ipv6", DLT_EN10MB, &f, fam);

		/* one 802.1Q tag */
		f.n = 0;
		eth(&f, 0x8100);
		put16(&f, 0x0064);
		put16(&f, et);
		inner(&f, fam);
		expect_std("vlan", DLT_EN10MB, &f, fam);

		/* 802.1ad over 802.1Q, 0x9100 over 802.1Q, and three tags */
		f.n = 0;
		eth(&f, 0x88a8);
		put16(&f, 0x00c8);
		put16(&f, 0x8100);
		put16(&f, 0x0064);
		put16(&f, et);
		inner(&f, fam);
		expect_std("qinq 88a8", DLT_EN10MB, &f, fam);

		f.n = 0;
		eth(&f, 0x9100);
		put16(&f, 0x00c8);
		put16(&f, 0x8100);
		put16(&f, 0x0064);
		put16(&f, et);
		inner(&f, fam);
		expect_std("qinq 9100", DLT_EN10MB, &f, fam);

		f.n = 0;
		eth(&f, 0x88a8);
		put16(&f, 1);
		put16(&f, 0x9100);
		put16(&f, 2);
		put16(&f, 0x8100);
		put16(&f, 3);
		put16(&f, et);
		inner(&f, fam);
		expect_std("three vlan tags", DLT_EN10MB, &f, fam);

		/* 802.3 length + LLC/SNAP */
		f.n = 0;
		eth(&f, 0);
		put8(&f, 0xaa);
		put8(&f, 0xaa);
		put8(&f, 0x03);
		put8(&f, 0);
		put8(&f, 0);
		put8(&f, 0);
		put16(&f, et);
		inner(&f, fam);
		set16(&f, 12, f.n - 14);
		expect_std("802.3 llc/snap", DLT_EN10MB, &f, fam);

		/* MPLS: two labels (unicast), one label (multicast) */
		f.n = 0;
		eth(&f, 0x8847);
		put32(&f, 100u << 12 | 64);
		put32(&f, 200u << 12 | 0x100 | 64);
		inner(&f, fam);
		expect_std("mpls 2 labels", DLT_EN10MB, &f, fam);

		f.n = 0;
		eth(&f, 0x8848);
		put32(&f, 300u << 12 | 0x100 | 64);
		inner(&f, fam);
		expect_std("mpls multicast", DLT_EN10MB, &f, fam);

		/* MPLS inside a VLAN */
		f.n = 0;
		eth(&f, 0x8100);
		put16(&f, 7);
		put16(&f, 0x8847);
		put32(&f, 300u << 12 | 0x100 | 64);
		inner(&f, fam);
		expect_std("mpls in vlan", DLT_EN10MB, &f, fam);

		/* PPPoE session */
		f.n = 0;
		eth(&f, 0x8864);
		put8(&f, 0x11);
		put8(&f, 0);
		put16(&f, 0x0042);
		put16(&f, 0);
		put16(&f, fam == 4 ? 0x0021 : 0x0057);
		inner(&f, fam);
		set16(&f, 18, f.n - 20);
		expect_std("pppoe", DLT_EN10MB, &f, fam);

		/* PPPoE over QinQ */
		f.n = 0;
		eth(&f, 0x8100);
		put16(&f, 10);
		put16(&f, 0x8100);
		put16(&f, 20);
		put16(&f, 0x8864);
		put8(&f, 0x11);
		put8(&f, 0);
		put16(&f, 0x0042);
		put16(&f, 0);
		put16(&f, fam == 4 ? 0x0021 : 0x0057);
		inner(&f, fam);
		expect_std("pppoe over qinq", DLT_EN10MB, &f, fam);

		/* 802.1ah PBB: I-tag, then a customer frame with its own VLAN */
		f.n = 0;
		eth(&f, 0x88e7);
		put32(&f, 0x00012345);
		eth(&f, 0x8100);
		put16(&f, 5);
		put16(&f, et);
		inner(&f, fam);
		expect_std("pbb", DLT_EN10MB, &f, fam);

		/* VN-Tag */
		f.n = 0;
		eth(&f, 0x8926);
		put32(&f, 0x80010002);
		put16(&f, et);
		inner(&f, fam);
		expect_std("vn-tag", DLT_EN10MB, &f, fam);

		/* Cisco FabricPath: 16-byte outer header, inner Ethernet */
		f.n = 0;
		eth(&f, 0x8903);
		put16(&f, 0x0140);
		eth(&f, et);
		inner(&f, fam);
		expect_std("fabricpath", DLT_EN10MB, &f, fam);
	}

	/* not IP */
	f.n = 0;
	eth(&f, 0x0806);
	putfill(&f, 0, 28);
	expect_status("arp", DLT_EN10MB, &f, DECODE_NOT_IP);

	f.n = 0;
	eth(&f, 38);
	put8(&f, 0x42);          /* spanning tree LLC */
	put8(&f, 0x42);
	put8(&f, 0x03);
	putfill(&f, 0, 35);
	expect_status("llc stp", DLT_EN10MB, &f, DECODE_NOT_IP);

	f.n = 0;
	eth(&f, 30);
	putn(&f, "\xaa\xaa\x03\x00\x00\x0c\x20\x00", 8);   /* SNAP, Cisco OUI (CDP) */
	putfill(&f, 0, 30);
	expect_status("snap cisco oui", DLT_EN10MB, &f, DECODE_NOT_IP);

	f.n = 0;
	eth(&f, 0x0550);          /* neither a length nor a type */
	putfill(&f, 0, 40);
	expect_status("type 0x0550", DLT_EN10MB, &f, DECODE_NOT_IP);

	f.n = 0;
	eth(&f, 0x8847);
	put32(&f, 0x100);
	put32(&f, 0);             /* pseudowire control word */
	eth(&f, 0x0800);
	inner4(&f);
	expect_status("mpls pseudowire", DLT_EN10MB, &f, DECODE_NOT_IP);

	f.n = 0;
	eth(&f, 0x8864);
	putn(&f, "\x11\x00\x00\x42\x00\x10\xc0\x21", 8);  /* LCP */
	putfill(&f, 0, 14);
	expect_status("pppoe lcp", DLT_EN10MB, &f, DECODE_NOT_IP);

	f.n = 0;
	eth(&f, 0x8864);
	putn(&f, "\x11\x09\x00\x00\x00\x00", 6);          /* discovery code on session type */
	putfill(&f, 0, 20);
	expect_status("pppoe padi", DLT_EN10MB, &f, DECODE_NOT_IP);

	/* version nibble disagrees with the ethertype */
	f.n = 0;
	eth(&f, 0x0800);
	inner6(&f);
	expect_status("ethertype ipv4, ipv6 inside", DLT_EN10MB, &f, DECODE_INVALID_IP_VERSION);
	f.n = 0;
	eth(&f, 0x86dd);
	inner4(&f);
	expect_status("ethertype ipv6, ipv4 inside", DLT_EN10MB, &f, DECODE_INVALID_IP_VERSION);

	/* PBB nested deeper than the encapsulation limit */
	f.n = 0;
	for (int i = 0; i < 6; i++) {
		eth(&f, 0x88e7);
		put32(&f, 1);
	}
	eth(&f, 0x0800);
	inner4(&f);
	expect_status("pbb nested 6 deep", DLT_EN10MB, &f, DECODE_INVALID_IP_HEADER);
}

/* ------------------------------------------------------------------ */
/* The other link types                                                */
/* ------------------------------------------------------------------ */

static void loopback_case(const char *name, int dlt, const uint8_t af[4], int fam)
{
	struct frame f = { .n = 0 };

	putn(&f, af, 4);
	inner(&f, fam);
	expect_std(name, dlt, &f, fam);
}

static void test_other_links(void)
{
	struct frame f;

	for (int fam = 4; fam <= 6; fam += 2) {
		unsigned et = fam == 4 ? 0x0800 : 0x86dd;
		unsigned pp = fam == 4 ? 0x0021 : 0x0057;

		/* Linux SLL: packet type, ARPHRD, address length, address, protocol */
		f.n = 0;
		put16(&f, 0);
		put16(&f, 1);
		put16(&f, 6);
		putn(&f, "\x00\x01\x02\x03\x04\x05\x00\x00", 8);
		put16(&f, et);
		inner(&f, fam);
		expect_std("sll", DLT_LINUX_SLL, &f, fam);

		/* SLL with a VLAN tag left in place */
		f.n = 0;
		putn(&f, "\x00\x00\x00\x01\x00\x06\x00\x01\x02\x03\x04\x05\x00\x00", 14);
		put16(&f, 0x8100);
		put16(&f, 9);
		put16(&f, et);
		inner(&f, fam);
		expect_std("sll vlan", DLT_LINUX_SLL, &f, fam);

		/* SLL protocol 0x0004: LLC/SNAP follows */
		f.n = 0;
		putn(&f, "\x00\x00\x00\x01\x00\x06\x00\x01\x02\x03\x04\x05\x00\x00", 14);
		put16(&f, 0x0004);
		putn(&f, "\xaa\xaa\x03\x00\x00\x00", 6);
		put16(&f, et);
		inner(&f, fam);
		expect_std("sll llc", DLT_LINUX_SLL, &f, fam);

		/* SLL2: protocol, reserved, ifindex, ARPHRD, type, addr len, addr */
		f.n = 0;
		put16(&f, et);
		put16(&f, 0);
		put32(&f, 2);
		put16(&f, 1);
		put8(&f, 4);
		put8(&f, 6);
		putn(&f, "\x00\x01\x02\x03\x04\x05\x00\x00", 8);
		inner(&f, fam);
		expect_std("sll2", DLT_LINUX_SLL2, &f, fam);

		/* raw IP in all its spellings */
		f.n = 0;
		inner(&f, fam);
		expect_std("DLT_RAW", DLT_RAW, &f, fam);
		expect_std("LINKTYPE_RAW 101", 101, &f, fam);
		expect_std(fam == 4 ? "DLT_IPV4" : "DLT_IPV6", fam == 4 ? DLT_IPV4 : DLT_IPV6, &f, fam);
		expect_status("wrong DLT_IPV4/6", fam == 4 ? DLT_IPV6 : DLT_IPV4, &f,
			      DECODE_INVALID_IP_VERSION);

		/* PPP with and without address/control, with a compressed protocol */
		f.n = 0;
		put8(&f, 0xff);
		put8(&f, 0x03);
		put16(&f, pp);
		inner(&f, fam);
		expect_std("ppp ff03", DLT_PPP, &f, fam);
		expect_std("ppp serial", DLT_PPP_SERIAL, &f, fam);

		f.n = 0;
		put16(&f, pp);
		inner(&f, fam);
		expect_std("ppp no ff03", DLT_PPP, &f, fam);

		f.n = 0;
		put8(&f, pp);             /* PFC: 0x21 / 0x57 */
		inner(&f, fam);
		expect_std("ppp pfc", DLT_PPP, &f, fam);

		/* Cisco HDLC, natively and as seen on a PPP serial link */
		f.n = 0;
		put8(&f, 0x0f);
		put8(&f, 0);
		put16(&f, et);
		inner(&f, fam);
		expect_std("c_hdlc", DLT_C_HDLC, &f, fam);
		expect_std("c_hdlc on ppp_serial", DLT_PPP_SERIAL, &f, fam);
		f.b[0] = 0x8f;
		expect_std("c_hdlc broadcast", DLT_C_HDLC, &f, fam);

		/* PPPoE without the Ethernet header */
		f.n = 0;
		putn(&f, "\x11\x00\x12\x34\x00\x00", 6);
		put16(&f, pp);
		inner(&f, fam);
		expect_std("ppp_ether", DLT_PPP_ETHER, &f, fam);

		/* FDDI: frame control, addresses, LLC/SNAP */
		f.n = 0;
		put8(&f, 0x50);
		putfill(&f, 0x11, 12);
		putn(&f, "\xaa\xaa\x03\x00\x00\x00", 6);
		put16(&f, et);
		inner(&f, fam);
		expect_std("fddi", DLT_FDDI, &f, fam);
	}

	/* DLT_NULL in both byte orders, DLT_LOOP in network order */
	loopback_case("null le AF_INET", DLT_NULL, (const uint8_t *)"\x02\x00\x00\x00", 4);
	loopback_case("null be AF_INET", DLT_NULL, (const uint8_t *)"\x00\x00\x00\x02", 4);
	loopback_case("null le 24", DLT_NULL, (const uint8_t *)"\x18\x00\x00\x00", 6);
	loopback_case("null le 28", DLT_NULL, (const uint8_t *)"\x1c\x00\x00\x00", 6);
	loopback_case("null le 30", DLT_NULL, (const uint8_t *)"\x1e\x00\x00\x00", 6);
	loopback_case("null be 24", DLT_NULL, (const uint8_t *)"\x00\x00\x00\x18", 6);
	loopback_case("null be 28", DLT_NULL, (const uint8_t *)"\x00\x00\x00\x1c", 6);
	loopback_case("null be 30", DLT_NULL, (const uint8_t *)"\x00\x00\x00\x1e", 6);
	loopback_case("loop AF_INET", DLT_LOOP, (const uint8_t *)"\x00\x00\x00\x02", 4);
	loopback_case("loop 24", DLT_LOOP, (const uint8_t *)"\x00\x00\x00\x18", 6);
	loopback_case("loop 30", DLT_LOOP, (const uint8_t *)"\x00\x00\x00\x1e", 6);

	f.n = 0;
	putn(&f, "\x02\x00\x00\x00", 4);
	inner4(&f);
	expect_status("loop little-endian", DLT_LOOP, &f, DECODE_NOT_IP);
	f.b[0] = 7;
	expect_status("null AF 7", DLT_NULL, &f, DECODE_NOT_IP);

	/* raw IP with a version nibble that is neither 4 nor 6 */
	f.n = 0;
	inner4(&f);
	f.b[0] = 0x55;
	expect_status("raw version 5", DLT_RAW, &f, DECODE_INVALID_IP_VERSION);

	f.n = 0;
	putn(&f, "\xff\x03\xc0\x21", 4);   /* LCP */
	putfill(&f, 0, 10);
	expect_status("ppp lcp", DLT_PPP, &f, DECODE_NOT_IP);
	f.b[1] = 0x05;
	expect_status("ppp bad control", DLT_PPP, &f, DECODE_NOT_IP);

	f.n = 0;
	putn(&f, "\x8f\x00\x80\x35", 4);   /* Cisco SLARP */
	putfill(&f, 0, 20);
	expect_status("c_hdlc slarp", DLT_C_HDLC, &f, DECODE_NOT_IP);

	f.n = 0;
	put8(&f, 0x20);                    /* FDDI SMT frame */
	putfill(&f, 0, 40);
	expect_status("fddi smt", DLT_FDDI, &f, DECODE_NOT_IP);

	/* SLL carrying ARP, and a netlink capture */
	f.n = 0;
	putn(&f, "\x00\x00\x00\x01\x00\x06\x00\x01\x02\x03\x04\x05\x00\x00\x08\x06", 16);
	putfill(&f, 0, 28);
	expect_status("sll arp", DLT_LINUX_SLL, &f, DECODE_NOT_IP);
	f.b[14] = 0x00;          /* netlink: the protocol field holds a small family number */
	f.b[15] = 0x00;
	expect_status("sll netlink", DLT_LINUX_SLL, &f, DECODE_NOT_IP);

	/* unsupported link types, and decode_linktype_supported() agreeing */
	f.n = 0;
	inner4(&f);
	expect_status("802.11", 105, &f, DECODE_UNSUPPORTED_LINK);
	expect_status("radiotap", 127, &f, DECODE_UNSUPPORTED_LINK);
	expect_status("ipoib", 242, &f, DECODE_UNSUPPORTED_LINK);
	expect_status("negative dlt", -1, &f, DECODE_UNSUPPORTED_LINK);
	{
		static const int want[] = { DLT_NULL, DLT_EN10MB, DLT_PPP, DLT_FDDI, DLT_RAW, 101,
			DLT_PPP_SERIAL, DLT_PPP_ETHER, DLT_C_HDLC, DLT_LOOP, DLT_LINUX_SLL,
			DLT_LINUX_SLL2, DLT_IPV4, DLT_IPV6 };
		int disagree = 0, supported = 0;
		struct packet p;

		for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
			CHECK(decode_linktype_supported(want[i]));
		for (int dlt = -2; dlt < 400; dlt++) {
			enum decode_status st = decode_frame(dlt, f.b, (uint32_t)f.n, (uint32_t)f.n, &p);

			if (decode_linktype_supported(dlt) != (st != DECODE_UNSUPPORTED_LINK))
				disagree++;
			supported += decode_linktype_supported(dlt);
		}
		CHECK_EQ_INT(disagree, 0);
		CHECK_EQ_INT(supported, (int)(sizeof want / sizeof want[0]));
	}
}

/* ------------------------------------------------------------------ */
/* Tunnels                                                             */
/* ------------------------------------------------------------------ */

/* Outer Ethernet + IPv4/IPv6 (OA -> OB) with protocol proto; returns the
 * IP header's offset for outer_end(). */
static size_t outer(struct frame *f, int ofam, unsigned proto)
{
	f->n = 0;
	eth(f, ofam == 4 ? 0x0800 : 0x86dd);
	return ofam == 4 ? ipv4(f, proto, OA4, OB4) : ipv6(f, proto, OA6, OB6);
}

static void outer_end(struct frame *f, int ofam, size_t off)
{
	if (ofam == 4)
		ipv4_end(f, off);
	else
		ipv6_end(f, off);
}

static void test_tunnels(void)
{
	struct frame f;
	size_t o, u;

	for (int ofam = 4; ofam <= 6; ofam += 2) {
		for (int fam = 4; fam <= 6; fam += 2) {
			/* IP-in-IP: protocol 4 carries IPv4, 41 carries IPv6 */
			o = outer(&f, ofam, fam == 4 ? 4 : 41);
			inner(&f, fam);
			outer_end(&f, ofam, o);
			expect_std("ip-in-ip", DLT_EN10MB, &f, fam);

			/* GRE, no optional fields */
			o = outer(&f, ofam, 47);
			put16(&f, 0);
			put16(&f, fam == 4 ? 0x0800 : 0x86dd);
			inner(&f, fam);
			outer_end(&f, ofam, o);
			expect_std("gre", DLT_EN10MB, &f, fam);

			/* GRE with checksum, key and sequence number */
			o = outer(&f, ofam, 47);
			put16(&f, 0xb000);
			put16(&f, fam == 4 ? 0x0800 : 0x86dd);
			put32(&f, 0xabcd0000);
			put32(&f, 0x00000007);
			put32(&f, 0x00000001);
			inner(&f, fam);
			outer_end(&f, ofam, o);
			expect_std("gre c+k+s", DLT_EN10MB, &f, fam);

			/* GRE key only, transparent Ethernet bridging */
			o = outer(&f, ofam, 47);
			put16(&f, 0x2000);
			put16(&f, 0x6558);
			put32(&f, 42);
			eth(&f, fam == 4 ? 0x0800 : 0x86dd);
			inner(&f, fam);
			outer_end(&f, ofam, o);
			expect_std("gre teb", DLT_EN10MB, &f, fam);

			/* ERSPAN type II: GRE with sequence, 8-byte header, Ethernet */
			o = outer(&f, ofam, 47);
			put16(&f, 0x1000);
			put16(&f, 0x88be);
			put32(&f, 99);
			put32(&f, 0x10010000);
			put32(&f, 0x00000000);
			eth(&f, fam == 4 ? 0x0800 : 0x86dd);
			inner(&f, fam);
			outer_end(&f, ofam, o);
			expect_std("erspan II", DLT_EN10MB, &f, fam);

			/* ERSPAN type I: no sequence, no header */
			o = outer(&f, ofam, 47);
			put16(&f, 0);
			put16(&f, 0x88be);
			eth(&f, fam == 4 ? 0x0800 : 0x86dd);
			inner(&f, fam);
			outer_end(&f, ofam, o);
			expect_std("erspan I", DLT_EN10MB, &f, fam);

			/* VXLAN */
			o = outer(&f, ofam, 17);
			u = udp(&f, 51000, 4789);
			put32(&f, 0x08000000);
			put32(&f, 0x00123400);
			eth(&f, fam == 4 ? 0x0800 : 0x86dd);
			inner(&f, fam);
			udp_end(&f, u);
			outer_end(&f, ofam, o);
			expect_std("vxlan", DLT_EN10MB, &f, fam);

			/* Geneve with 8 bytes of options, Ethernet payload */
			o = outer(&f, ofam, 17);
			u = udp(&f, 51000, 6081);
			put8(&f, 2);              /* version 0, 2 words of options */
			put8(&f, 0);
			put16(&f, 0x6558);
			put32(&f, 0x00123400);
			putfill(&f, 0x5a, 8);
			eth(&f, fam == 4 ? 0x0800 : 0x86dd);
			inner(&f, fam);
			udp_end(&f, u);
			outer_end(&f, ofam, o);
			expect_std("geneve ether", DLT_EN10MB, &f, fam);

			/* Geneve carrying IP directly */
			o = outer(&f, ofam, 17);
			u = udp(&f, 51000, 6081);
			put8(&f, 0);
			put8(&f, 0);
			put16(&f, fam == 4 ? 0x0800 : 0x86dd);
			put32(&f, 0x00123400);
			inner(&f, fam);
			udp_end(&f, u);
			outer_end(&f, ofam, o);
			expect_std("geneve ip", DLT_EN10MB, &f, fam);
		}

		/* Teredo (IPv6 only inside) */
		o = outer(&f, ofam, 17);
		u = udp(&f, 3544, 51000);
		inner6(&f);
		udp_end(&f, u);
		outer_end(&f, ofam, o);
		expect_std("teredo", DLT_EN10MB, &f, 6);

		o = outer(&f, ofam, 17);
		u = udp(&f, 51000, 3544);
		putn(&f, "\x00\x00\xab\xcd\x01\x02\x03\x04", 8);   /* origin indication */
		inner6(&f);
		udp_end(&f, u);
		outer_end(&f, ofam, o);
		expect_std("teredo origin", DLT_EN10MB, &f, 6);

		o = outer(&f, ofam, 17);
		u = udp(&f, 3544, 51000);
		putn(&f, "\x00\x01\x03\x02", 4);      /* auth: id-len 3, au-len 2 */
		putn(&f, "abcde", 5);
		putfill(&f, 0x77, 8);                  /* nonce */
		put8(&f, 0);                           /* confirmation */
		putn(&f, "\x00\x00\xab\xcd\x01\x02\x03\x04", 8);
		inner6(&f);
		udp_end(&f, u);
		outer_end(&f, ofam, o);
		expect_std("teredo auth+origin", DLT_EN10MB, &f, 6);
	}

	/* tunnels that lead nowhere */
	o = outer(&f, 4, 47);
	put16(&f, 0x2001);                /* version 1: PPTP */
	put16(&f, 0x880b);
	put32(&f, 0);
	putfill(&f, 0, 40);
	ipv4_end(&f, o);
	expect_status("gre v1", DLT_EN10MB, &f, DECODE_NOT_TCP);

	o = outer(&f, 4, 47);
	put16(&f, 0x4000);                /* RFC 1701 routing present */
	put16(&f, 0x0800);
	put32(&f, 0);
	inner4(&f);
	ipv4_end(&f, o);
	expect_status("gre routing", DLT_EN10MB, &f, DECODE_NOT_TCP);

	o = outer(&f, 4, 47);
	put16(&f, 0);
	put16(&f, 0x0806);                /* ARP over GRE */
	putfill(&f, 0, 28);
	ipv4_end(&f, o);
	expect_status("gre arp", DLT_EN10MB, &f, DECODE_NOT_IP);

	o = outer(&f, 4, 17);
	u = udp(&f, 51000, 4789);
	put32(&f, 0);                     /* I flag missing */
	put32(&f, 0);
	eth(&f, 0x0800);
	inner4(&f);
	udp_end(&f, u);
	ipv4_end(&f, o);
	expect_status("vxlan without I flag", DLT_EN10MB, &f, DECODE_NOT_TCP);

	o = outer(&f, 4, 17);
	u = udp(&f, 51000, 6081);
	put32(&f, 0x40006558);            /* version 1 */
	put32(&f, 0);
	eth(&f, 0x0800);
	inner4(&f);
	udp_end(&f, u);
	ipv4_end(&f, o);
	expect_status("geneve version 1", DLT_EN10MB, &f, DECODE_NOT_TCP);

	o = outer(&f, 4, 17);
	u = udp(&f, 3544, 51000);
	{
		size_t v6 = ipv6(&f, 59, A6, B6);   /* Teredo bubble */

		ipv6_end(&f, v6);
	}
	udp_end(&f, u);
	ipv4_end(&f, o);
	expect_status("teredo bubble", DLT_EN10MB, &f, DECODE_NOT_TCP);

	o = outer(&f, 4, 17);
	u = udp(&f, 3544, 51000);
	inner4(&f);                       /* not IPv6: not Teredo */
	udp_end(&f, u);
	ipv4_end(&f, o);
	expect_status("port 3544, not ipv6", DLT_EN10MB, &f, DECODE_NOT_TCP);

	o = outer(&f, 4, 17);
	u = udp(&f, 51000, 53);
	putfill(&f, 0, 30);
	udp_end(&f, u);
	ipv4_end(&f, o);
	expect_status("plain udp", DLT_EN10MB, &f, DECODE_NOT_TCP);

	o = outer(&f, 4, 1);
	putn(&f, "\x08\x00\x00\x00\x00\x01\x00\x01", 8);
	ipv4_end(&f, o);
	expect_status("icmp", DLT_EN10MB, &f, DECODE_NOT_TCP);

	o = outer(&f, 6, 58);
	putn(&f, "\x80\x00\x00\x00\x00\x01\x00\x01", 8);
	ipv6_end(&f, o);
	expect_status("icmpv6", DLT_EN10MB, &f, DECODE_NOT_TCP);

	o = outer(&f, 4, 132);
	putfill(&f, 0, 12);
	ipv4_end(&f, o);
	expect_status("sctp", DLT_EN10MB, &f, DECODE_NOT_TCP);

	/* nesting: 4 IP-in-IP levels are fine, 5 are too many */
	for (int levels = 4; levels <= 5; levels++) {
		size_t offs[8];

		f.n = 0;
		for (int i = 0; i < levels; i++)
			offs[i] = ipv4(&f, 4, OA4, OB4);
		inner4(&f);
		for (int i = levels - 1; i >= 0; i--)
			ipv4_end(&f, offs[i]);
		if (levels == 4)
			expect_std("4 nested ip-in-ip", DLT_RAW, &f, 4);
		else
			expect_status("5 nested ip-in-ip", DLT_RAW, &f, DECODE_INVALID_IP_HEADER);
	}

	/* a tunnel in a first fragment is not followed */
	f.n = 0;
	o = ipv4o(&f, 47, OA4, OB4, 0x2000, NULL, 0);
	put16(&f, 0);
	put16(&f, 0x0800);
	inner4(&f);
	ipv4_end(&f, o);
	expect_status("gre first fragment", DLT_RAW, &f, DECODE_FRAGMENT);

	f.n = 0;
	o = ipv4o(&f, 4, OA4, OB4, 0x2000, NULL, 0);
	inner4(&f);
	ipv4_end(&f, o);
	expect_status("ipip first fragment", DLT_RAW, &f, DECODE_FRAGMENT);

	f.n = 0;
	o = ipv4o(&f, 17, OA4, OB4, 0x2000, NULL, 0);
	u = udp(&f, 51000, 4789);
	put32(&f, 0x08000000);
	put32(&f, 0);
	eth(&f, 0x0800);
	inner4(&f);
	udp_end(&f, u);
	ipv4_end(&f, o);
	expect_status("vxlan first fragment", DLT_RAW, &f, DECODE_FRAGMENT);

	f.n = 0;
	o = ipv4o(&f, 17, OA4, OB4, 0x2000, NULL, 0);
	u = udp(&f, 51000, 53);
	putfill(&f, 0, 30);
	udp_end(&f, u);
	ipv4_end(&f, o);
	expect_status("dns first fragment", DLT_RAW, &f, DECODE_NOT_TCP);

	/* the inner TCP length comes from the inner IP header, trailers ignored */
	{
		struct packet p;

		o = outer(&f, 4, 17);
		u = udp(&f, 51000, 4789);
		put32(&f, 0x08000000);
		put32(&f, 0);
		eth(&f, 0x0800);
		inner4(&f);
		putfill(&f, 0, 6);        /* inner Ethernet padding */
		udp_end(&f, u);
		ipv4_end(&f, o);
		putfill(&f, 0, 4);        /* outer trailer (FCS) */
		CHECK_EQ_STR(decode_status_name(decode(DLT_EN10MB, &f, &p)), "ok");
		check_std(&p, 4, STD_PAYLOAD);
	}
}

/* ------------------------------------------------------------------ */
/* IPv4                                                                */
/* ------------------------------------------------------------------ */

static void test_ipv4(void)
{
	struct frame f;
	struct packet p;
	size_t o;

	/* options: 4 bytes (NOP NOP NOP EOL) and the 40-byte maximum */
	f.n = 0;
	eth(&f, 0x0800);
	o = ipv4o(&f, 6, A4, B4, 0, (const uint8_t *)"\x01\x01\x01\x00", 4);
	std_tcp(&f);
	ipv4_end(&f, o);
	expect_std("ipv4 ihl 6", DLT_EN10MB, &f, 4);

	{
		uint8_t rr[40];

		memset(rr, 0, sizeof rr);
		rr[0] = 7;        /* record route, 39 bytes, then EOL */
		rr[1] = 39;
		rr[2] = 4;
		f.n = 0;
		eth(&f, 0x0800);
		o = ipv4o(&f, 6, A4, B4, 0, rr, sizeof rr);
		std_tcp(&f);
		ipv4_end(&f, o);
		expect_std("ipv4 ihl 15", DLT_EN10MB, &f, 4);
	}

	/* IHL below 5 */
	f.n = 0;
	eth(&f, 0x0800);
	inner4(&f);
	f.b[14] = 0x44;
	expect_status("ihl 4", DLT_EN10MB, &f, DECODE_INVALID_IP_HEADER);
	f.b[14] = 0x40;
	expect_status("ihl 0", DLT_EN10MB, &f, DECODE_INVALID_IP_HEADER);

	/* total length 0 (TSO/GSO, BIG TCP): the frame length stands in */
	f.n = 0;
	eth(&f, 0x0800);
	inner4(&f);
	set16(&f, 16, 0);
	CHECK_EQ_STR(decode_status_name(decode(DLT_EN10MB, &f, &p)), "ok");
	check_std(&p, 4, STD_PAYLOAD);
	sweep(DLT_EN10MB, &f, f.n - STD_PAYLOAD, &p);
	/* ... and from the wire length when the capture was cut */
	CHECK_EQ_STR(decode_status_name(decode_frame(DLT_EN10MB, f.b, 80, 80000, &p)), "ok");
	CHECK_EQ_INT(p.payload_len, 80000 - 14 - 20 - 40);

	/* total length larger than the frame, smaller than the header */
	f.n = 0;
	eth(&f, 0x0800);
	inner4(&f);
	set16(&f, 16, f.n - 14 + 1);
	expect_status("total length > frame", DLT_EN10MB, &f, DECODE_INVALID_IP_LENGTH);
	set16(&f, 16, 19);
	expect_status("total length < header", DLT_EN10MB, &f, DECODE_INVALID_IP_LENGTH);

	/* Ethernet padding after a short datagram is not payload */
	f.n = 0;
	eth(&f, 0x0800);
	o = ipv4(&f, 6, A4, B4);
	tcp(&f, NULL, 0, 0);
	ipv4_end(&f, o);
	putfill(&f, 0, 6);
	CHECK_EQ_STR(decode_status_name(decode(DLT_EN10MB, &f, &p)), "ok");
	CHECK_EQ_INT(p.payload_len, 0);
	CHECK(!p.opt.has_mss && !p.opt.has_timestamps && !p.opt.bad);

	/* snaplen 96: payload_len from the IP header, not caplen */
	f.n = 0;
	eth(&f, 0x0800);
	o = ipv4(&f, 6, A4, B4);
	tcp(&f, std_opts, sizeof std_opts, 1448);
	ipv4_end(&f, o);
	CHECK_EQ_STR(decode_status_name(decode_frame(DLT_EN10MB, f.b, 96, (uint32_t)f.n, &p)), "ok");
	check_std(&p, 4, 1448);

	/* fragments */
	f.n = 0;
	eth(&f, 0x0800);
	o = ipv4o(&f, 6, A4, B4, 185, NULL, 0);       /* offset 1480, last */
	putfill(&f, 'x', 100);
	ipv4_end(&f, o);
	expect_status("non-first fragment", DLT_EN10MB, &f, DECODE_FRAGMENT);
	set16(&f, 20, 0x2000 | 185);
	expect_status("middle fragment", DLT_EN10MB, &f, DECODE_FRAGMENT);
	f.b[23] = 1;
	expect_status("icmp non-first fragment", DLT_EN10MB, &f, DECODE_NOT_TCP);

	/* first fragment holding the whole TCP header: used, payload undercounted */
	f.n = 0;
	eth(&f, 0x0800);
	o = ipv4o(&f, 6, A4, B4, 0x2000, NULL, 0);
	tcp(&f, std_opts, sizeof std_opts, 16);
	ipv4_end(&f, o);
	CHECK_EQ_STR(decode_status_name(decode(DLT_EN10MB, &f, &p)), "ok");
	check_std(&p, 4, 16);
	sweep(DLT_EN10MB, &f, f.n - 16, &p);

	/* first fragment with only 8 bytes of TCP */
	f.n = 0;
	eth(&f, 0x0800);
	o = ipv4o(&f, 6, A4, B4, 0x2000, NULL, 0);
	put16(&f, STD_SPORT);
	put16(&f, STD_DPORT);
	put32(&f, STD_SEQ);
	ipv4_end(&f, o);
	expect_status("first fragment, 8 bytes of tcp", DLT_EN10MB, &f, DECODE_FRAGMENT);

	/* first fragment whose TCP options run into the next fragment */
	f.n = 0;
	eth(&f, 0x0800);
	o = ipv4o(&f, 6, A4, B4, 0x2000, NULL, 0);
	tcp_raw(&f, 10, TH_SYN, std_opts, 8, 0);       /* claims 40 bytes, carries 28 */
	ipv4_end(&f, o);
	expect_status("first fragment, options cut", DLT_EN10MB, &f, DECODE_FRAGMENT);

	/* DF alone is not a fragment */
	f.n = 0;
	eth(&f, 0x0800);
	o = ipv4o(&f, 6, A4, B4, 0x4000, NULL, 0);
	std_tcp(&f);
	ipv4_end(&f, o);
	expect_std("df set", DLT_EN10MB, &f, 4);
}

/* ------------------------------------------------------------------ */
/* IPv6                                                                */
/* ------------------------------------------------------------------ */

/* Extension header: next header, length unit, then filler to size bytes. */
static void ext(struct frame *f, unsigned nh, unsigned hdrlen, size_t size)
{
	put8(f, nh);
	put8(f, hdrlen);
	if (size >= 2)
		putfill(f, 0, size - 2);
}

static void test_ipv6(void)
{
	struct frame f;
	struct packet p;
	size_t o;

	/* hop-by-hop, destination options (16), routing, fragment (first),
	 * AH (24 = (4 + 2) * 4), mobility, TCP */
	f.n = 0;
	eth(&f, 0x86dd);
	o = ipv6(&f, 0, A6, B6);
	ext(&f, 60, 0, 8);
	ext(&f, 43, 1, 16);
	ext(&f, 44, 0, 8);
	put8(&f, 51);             /* fragment: next header AH, offset 0, M set */
	put8(&f, 0);
	put16(&f, 0x0001);
	put32(&f, 0xdeadbeef);
	ext(&f, 135, 4, 24);
	ext(&f, 6, 0, 8);
	std_tcp(&f);
	ipv6_end(&f, o);
	expect_std("ipv6 ext chain", DLT_EN10MB, &f, 6);

	/* atomic fragment (offset 0, M clear) followed by TCP */
	f.n = 0;
	eth(&f, 0x86dd);
	o = ipv6(&f, 44, A6, B6);
	put8(&f, 6);
	put8(&f, 0);
	put16(&f, 0);
	put32(&f, 1);
	std_tcp(&f);
	ipv6_end(&f, o);
	expect_std("ipv6 atomic fragment", DLT_EN10MB, &f, 6);

	/* non-first fragment */
	f.n = 0;
	eth(&f, 0x86dd);
	o = ipv6(&f, 44, A6, B6);
	put8(&f, 6);
	put8(&f, 0);
	put16(&f, 1448 | 1);
	put32(&f, 1);
	putfill(&f, 'x', 64);
	ipv6_end(&f, o);
	expect_status("ipv6 non-first fragment", DLT_EN10MB, &f, DECODE_FRAGMENT);

	/* first fragment too short for the TCP header */
	f.n = 0;
	eth(&f, 0x86dd);
	o = ipv6(&f, 44, A6, B6);
	put8(&f, 6);
	put8(&f, 0);
	put16(&f, 1);
	put32(&f, 1);
	put32(&f, 0x9c400050);
	put32(&f, STD_SEQ);
	ipv6_end(&f, o);
	expect_status("ipv6 first fragment, 8 bytes of tcp", DLT_EN10MB, &f, DECODE_FRAGMENT);

	/* no next header, directly and after destination options */
	f.n = 0;
	eth(&f, 0x86dd);
	o = ipv6(&f, 59, A6, B6);
	ipv6_end(&f, o);
	expect_status("ipv6 no next header", DLT_EN10MB, &f, DECODE_NOT_TCP);
	f.n = 0;
	eth(&f, 0x86dd);
	o = ipv6(&f, 60, A6, B6);
	ext(&f, 59, 0, 8);
	ipv6_end(&f, o);
	expect_status("dstopts then no next header", DLT_EN10MB, &f, DECODE_NOT_TCP);

	/* ESP: encrypted, so not TCP for us */
	f.n = 0;
	eth(&f, 0x86dd);
	o = ipv6(&f, 50, A6, B6);
	putfill(&f, 0, 40);
	ipv6_end(&f, o);
	expect_status("esp", DLT_EN10MB, &f, DECODE_NOT_TCP);

	/* hop-by-hop anywhere but first */
	f.n = 0;
	eth(&f, 0x86dd);
	o = ipv6(&f, 60, A6, B6);
	ext(&f, 0, 0, 8);
	ext(&f, 6, 0, 8);
	std_tcp(&f);
	ipv6_end(&f, o);
	expect_status("hop-by-hop not first", DLT_EN10MB, &f, DECODE_INVALID_IP_HEADER);

	/* an extension header longer than the payload */
	f.n = 0;
	eth(&f, 0x86dd);
	o = ipv6(&f, 60, A6, B6);
	ext(&f, 6, 200, 8);
	std_tcp(&f);
	ipv6_end(&f, o);
	expect_status("ext header past payload", DLT_EN10MB, &f, DECODE_INVALID_IP_HEADER);

	/* fewer than 8 payload bytes for an extension header */
	f.n = 0;
	eth(&f, 0x86dd);
	o = ipv6(&f, 60, A6, B6);
	put8(&f, 6);
	put8(&f, 0);
	ipv6_end(&f, o);
	expect_status("ext header in 2 bytes", DLT_EN10MB, &f, DECODE_INVALID_IP_HEADER);

	/* payload length 0: jumbogram / BIG TCP, the frame length stands in */
	f.n = 0;
	eth(&f, 0x86dd);
	o = ipv6(&f, 0, A6, B6);
	putn(&f, "\x06\x00\xc2\x04\x00\x01\x38\x00", 8);   /* jumbo option 80000 */
	std_tcp(&f);
	CHECK_EQ_STR(decode_status_name(decode(DLT_EN10MB, &f, &p)), "ok");
	check_std(&p, 6, STD_PAYLOAD);
	sweep(DLT_EN10MB, &f, f.n - STD_PAYLOAD, &p);
	CHECK_EQ_STR(decode_status_name(decode_frame(DLT_EN10MB, f.b, 128, 80062, &p)), "ok");
	CHECK_EQ_INT(p.payload_len, 80062 - 14 - 40 - 8 - 40);

	/* payload length beyond the frame */
	f.n = 0;
	eth(&f, 0x86dd);
	inner6(&f);
	set16(&f, 18, f.n - 54 + 1);
	expect_status("ipv6 payload length > frame", DLT_EN10MB, &f, DECODE_INVALID_IP_LENGTH);

	/* snaplen: payload_len from the header */
	f.n = 0;
	eth(&f, 0x86dd);
	o = ipv6(&f, 6, A6, B6);
	tcp(&f, std_opts, sizeof std_opts, 1400);
	ipv6_end(&f, o);
	CHECK_EQ_STR(decode_status_name(decode_frame(DLT_EN10MB, f.b, 96, (uint32_t)f.n, &p)), "ok");
	check_std(&p, 6, 1400);
}

/* ------------------------------------------------------------------ */
/* TCP header and options                                              */
/* ------------------------------------------------------------------ */

/* Raw IPv4 carrying a TCP header with these options (a multiple of 4). */
static enum decode_status decode_opts(const uint8_t *opts, size_t optlen, struct packet *p)
{
	struct frame f = { .n = 0 };
	size_t o = ipv4(&f, 6, A4, B4);

	tcp(&f, opts, optlen, 3);
	ipv4_end(&f, o);
	return decode(DLT_RAW, &f, p);
}

#define OPTS(p, ...) do { \
	static const uint8_t o_[] = { __VA_ARGS__ }; \
	_Static_assert(sizeof o_ % 4 == 0, "options must be padded"); \
	CHECK_EQ_STR(decode_status_name(decode_opts(o_, sizeof o_, (p))), "ok"); \
} while (0)

static void test_tcp_options(void)
{
	struct packet p;

	OPTS(&p, 2, 4, 0x05, 0xb4);
	CHECK(p.opt.has_mss);
	CHECK_EQ_INT(p.opt.mss, 1460);
	CHECK(!p.opt.has_wscale && !p.opt.sack_permitted && !p.opt.has_timestamps && !p.opt.bad);
	CHECK_EQ_INT(p.payload_len, 3);

	OPTS(&p, 1, 3, 3, 14);
	CHECK(p.opt.has_wscale);
	CHECK_EQ_INT(p.opt.wscale, 14);
	CHECK(!p.opt.has_mss && !p.opt.bad);

	OPTS(&p, 4, 2, 1, 1);
	CHECK(p.opt.sack_permitted);
	CHECK(!p.opt.bad);

	OPTS(&p, 1, 1, 8, 10, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 1);
	CHECK(p.opt.has_timestamps);
	CHECK_EQ_INT(p.opt.ts_val, 0xfffffffeu);
	CHECK_EQ_INT(p.opt.ts_ecr, 1);
	CHECK(!p.opt.bad);

	/* SACK with 1..4 blocks, and the odd but well-formed empty SACK */
	OPTS(&p, 1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2);
	CHECK_EQ_INT(p.opt.sack_blocks, 1);
	CHECK(!p.opt.bad);
	OPTS(&p, 1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4);
	CHECK_EQ_INT(p.opt.sack_blocks, 2);
	OPTS(&p, 1, 1, 5, 26, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4,
	     0, 0, 0, 5, 0, 0, 0, 6);
	CHECK_EQ_INT(p.opt.sack_blocks, 3);
	OPTS(&p, 1, 1, 5, 34, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
	     1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8);
	CHECK_EQ_INT(p.opt.sack_blocks, 4);
	CHECK(!p.opt.bad);
	OPTS(&p, 5, 2, 1, 1);
	CHECK_EQ_INT(p.opt.sack_blocks, 0);
	CHECK(!p.opt.bad);

	/* all of them at once, the standard option block */
	CHECK_EQ_STR(decode_status_name(decode_opts(std_opts, sizeof std_opts, &p)), "ok");
	check_std(&p, 4, 3);

	/* unknown options are skipped by their length */
	OPTS(&p, 30, 4, 0x10, 0x00, 2, 4, 0x05, 0xb4, 34, 2, 1, 1);
	CHECK(p.opt.has_mss);
	CHECK_EQ_INT(p.opt.mss, 1460);
	CHECK(!p.opt.bad);

	/* EOL ends the list: what follows is not parsed */
	OPTS(&p, 1, 0, 0, 0, 2, 4, 0x05, 0xb4);
	CHECK(!p.opt.has_mss);
	CHECK(!p.opt.bad);

	/* NOPs only */
	OPTS(&p, 1, 1, 1, 1);
	CHECK(!p.opt.has_mss && !p.opt.has_wscale && !p.opt.bad);

	/* malformed: length 0 and 1, options before it kept, after it not */
	OPTS(&p, 2, 4, 0x05, 0xb4, 30, 0, 3, 3, 7, 1, 1, 1);
	CHECK(p.opt.has_mss);
	CHECK(!p.opt.has_wscale);
	CHECK(p.opt.bad);
	OPTS(&p, 3, 1, 3, 7);
	CHECK(!p.opt.has_wscale);
	CHECK(p.opt.bad);

	/* malformed: length runs past the header */
	OPTS(&p, 1, 1, 8, 10, 0, 0, 0, 1);
	CHECK(!p.opt.has_timestamps);
	CHECK(p.opt.bad);
	OPTS(&p, 4, 2, 30, 40);
	CHECK(p.opt.sack_permitted);
	CHECK(p.opt.bad);

	/* malformed: a kind in the last byte, no room for its length */
	OPTS(&p, 1, 1, 1, 8);
	CHECK(p.opt.bad);

	/* malformed: known options with the wrong length */
	OPTS(&p, 2, 3, 5, 1);
	CHECK(!p.opt.has_mss);
	CHECK(p.opt.bad);
	OPTS(&p, 3, 4, 7, 0);
	CHECK(!p.opt.has_wscale);
	CHECK(p.opt.bad);
	OPTS(&p, 4, 3, 0, 1);
	CHECK(!p.opt.sack_permitted);
	CHECK(p.opt.bad);
	OPTS(&p, 8, 9, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1);
	CHECK(!p.opt.has_timestamps);
	CHECK(p.opt.bad);
	OPTS(&p, 5, 11, 0, 0, 0, 1, 0, 0, 0, 2, 0, 1);
	CHECK_EQ_INT(p.opt.sack_blocks, 0);
	CHECK(p.opt.bad);
	OPTS(&p, 8, 2, 1, 1);
	CHECK(!p.opt.has_timestamps);
	CHECK(p.opt.bad);
}

static void test_tcp_header(void)
{
	struct frame f;
	struct packet p;
	size_t o;

	/* all eight flag bits */
	f.n = 0;
	o = ipv4(&f, 6, A4, B4);
	tcp_raw(&f, 5, 0xff, NULL, 0, 0);
	ipv4_end(&f, o);
	CHECK_EQ_STR(decode_status_name(decode(DLT_RAW, &f, &p)), "ok");
	CHECK_EQ_INT(p.flags, TH_FIN | TH_SYN | TH_RST | TH_PSH | TH_ACK | TH_URG | TH_ECE | TH_CWR);
	CHECK_EQ_INT(p.payload_len, 0);

	/* no options at all */
	CHECK(!p.opt.has_mss && !p.opt.has_wscale && !p.opt.sack_permitted &&
	      !p.opt.has_timestamps && !p.opt.bad && p.opt.sack_blocks == 0);

	/* data offset below 5 */
	for (unsigned doff = 0; doff < 5; doff++) {
		f.n = 0;
		o = ipv4(&f, 6, A4, B4);
		tcp_raw(&f, doff, TH_ACK, NULL, 0, 20);
		ipv4_end(&f, o);
		expect_status("data offset < 5", DLT_RAW, &f, DECODE_INVALID_TCP_OFFSET);
	}

	/* data offset beyond the IP payload, with the frame holding more */
	f.n = 0;
	o = ipv4(&f, 6, A4, B4);
	tcp_raw(&f, 15, TH_ACK, NULL, 0, 0);
	ipv4_end(&f, o);
	putfill(&f, 0, 60);       /* trailer: not part of the IP payload */
	expect_status("data offset past ip payload", DLT_RAW, &f, DECODE_INVALID_TCP_OFFSET);

	/* IP payload shorter than a TCP header */
	f.n = 0;
	o = ipv4(&f, 6, A4, B4);
	putfill(&f, 0, 12);
	ipv4_end(&f, o);
	expect_status("ip payload 12 bytes", DLT_RAW, &f, DECODE_INVALID_TCP_OFFSET);

	/* header (with options) beyond caplen */
	f.n = 0;
	o = ipv4(&f, 6, A4, B4);
	std_tcp(&f);
	ipv4_end(&f, o);
	CHECK_EQ_STR(decode_status_name(decode_frame(DLT_RAW, f.b, 20 + 30, (uint32_t)f.n, &p)),
		     "truncated_tcp");
	CHECK_EQ_STR(decode_status_name(decode_frame(DLT_RAW, f.b, 20 + 10, (uint32_t)f.n, &p)),
		     "truncated_tcp");
	CHECK_EQ_STR(decode_status_name(decode_frame(DLT_RAW, f.b, 10, (uint32_t)f.n, &p)),
		     "truncated_ip");
	CHECK_EQ_STR(decode_status_name(decode_frame(DLT_EN10MB, f.b, 10, (uint32_t)f.n, &p)),
		     "truncated_link");
}

/* ------------------------------------------------------------------ */
/* Interface details                                                   */
/* ------------------------------------------------------------------ */

static void test_interface(void)
{
	static const char *const names[] = {
		"ok", "not_ip", "not_tcp", "fragment", "truncated_link", "truncated_ip",
		"truncated_tcp", "invalid_ip_version", "invalid_ip_header",
		"invalid_ip_length", "invalid_tcp_offset", "unsupported_link",
	};
	struct frame f = { .n = 0 };
	struct packet p;

	CHECK_EQ_INT(sizeof names / sizeof names[0], DECODE_STATUS_COUNT);
	for (int i = 0; i < DECODE_STATUS_COUNT; i++)
		CHECK_EQ_STR(decode_status_name((enum decode_status)i), names[i]);
	CHECK_EQ_STR(decode_status_name(DECODE_STATUS_COUNT), "unknown");

	/* ts_ns and number belong to the caller and survive decoding */
	inner4(&f);
	memset(&p, 0, sizeof p);
	p.ts_ns = 1234567890123456789ull;
	p.number = 42;
	CHECK_EQ_STR(decode_status_name(decode_frame(DLT_RAW, f.b, (uint32_t)f.n, (uint32_t)f.n, &p)), "ok");
	CHECK(p.ts_ns == 1234567890123456789ull);
	CHECK_EQ_INT(p.number, 42);
	check_std(&p, 4, STD_PAYLOAD);

	/* a failed decode leaves *out alone */
	p.sport = 7;
	CHECK(decode_frame(DLT_RAW, f.b, 30, (uint32_t)f.n, &p) == DECODE_TRUNCATED_TCP);
	CHECK_EQ_INT(p.sport, 7);
	CHECK_EQ_INT(p.number, 42);

	/* empty and NULL frames */
	CHECK(decode_frame(DLT_EN10MB, f.b, 0, 0, &p) == DECODE_TRUNCATED_LINK);
	CHECK(decode_frame(DLT_RAW, f.b, 0, 0, &p) == DECODE_TRUNCATED_IP);
	CHECK(decode_frame(DLT_EN10MB, NULL, 0, 0, &p) == DECODE_TRUNCATED_LINK);

	/* a record claiming fewer wire bytes than it holds */
	CHECK_EQ_STR(decode_status_name(decode_frame(DLT_RAW, f.b, (uint32_t)f.n, 10, &p)), "ok");
	check_std(&p, 4, STD_PAYLOAD);
}

/* ------------------------------------------------------------------ */
/* Real captures                                                       */
/* ------------------------------------------------------------------ */

/* TCP packets accepted, per `tshark -r FILE -Y tcp | wc -l` (tshark 4.0.17),
 * for captures where tshark and tcpstate must agree. */
static const struct {
	const char *file;
	unsigned long tcp;
} corpus_counts[] = {
	{ "misc/sv-sll2-decode.pcap", 5 },                 /* Linux SLL2 */
	{ "misc/sv-sll-multi-eve.pcap", 422 },             /* Linux SLL, 4 non-IP */
	{ "misc/sv-null-http-ipv6.pcap", 14 },             /* DLT_NULL, IPv6 */
	{ "misc/sv-null-smtp-rset.pcap", 42 },             /* DLT_NULL, IPv4 */
	{ "misc/sv-chdlc-http.pcap", 17 },                 /* Cisco HDLC */
	{ "misc/sv-rawip4-linktype228.pcap", 7 },          /* DLT_IPV4 */
	{ "misc/sv-rawip-tcp-empty-sack.pcap", 42 },       /* DLT_RAW */
	{ "misc/td-bgp_vpn_attrset.pcap", 1 },             /* DLT_PPP */
	{ "misc/sv-sll-urgent11-tcp-options.pcap", 8 },    /* malformed options */
	{ "zeek/llc.pcap", 1333 },                         /* FDDI + LLC/SNAP */
	{ "zeek/mixed-vlan-mpls.pcap", 47 },               /* VLAN and MPLS */
	{ "zeek/mpls-in-vlan.pcap", 3 },
	{ "zeek/pppoe-over-qinq.pcap", 86 },
	{ "zeek/pbb.pcap", 8 },                            /* 802.1ah */
	{ "zeek/cisco-fabric-path.pcap", 32 },
	{ "zeek/gre-sample.pcap", 22 },                    /* GRE */
	{ "zeek/teredo.pcap", 33 },
	{ "zeek/vxlan-inner-tcp-bad-checksum.pcap", 1 },   /* VXLAN */
	{ "zeek/ftp-ipv6.pcap", 136 },
	{ "zeek/wikipedia.pcap", 78 },
	{ "zeek/tcp-http-with-padding.pcap", 25 },
	{ "tcpdump/bigtcp-ipv4.pcap", 1 },                 /* IPv4 total length 0 */
	{ "tcpdump/bigtcp-ipv6-hbh.pcap", 1 },             /* IPv6 jumbo */
	{ "tcpdump/ipv4_tcp_http_xml_tso.pcap", 1 },       /* TSO */
	{ "tcpdump/tcp_eight_lowest_weight_flags_set.pcap", 1 },
};

/* A few packets' fields, as tshark 4.0.17 decodes them (tcp.seq_raw,
 * tcp.ack_raw, tcp.flags, tcp.window_size_value, tcp.len, options). */
static const struct corpus_pkt {
	const char *file;
	unsigned long number;
	const char *src, *dst;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t window;
	uint32_t len;
	uint16_t mss;            /* 0: no MSS option */
	int wscale;              /* -1: no window scale option */
	bool sack_perm;
	bool has_ts;
	uint32_t ts_val, ts_ecr;
} corpus_pkts[] = {
	{ "misc/sv-sll2-decode.pcap", 1, "192.168.1.253", "192.168.1.21", 56478, 80,
	  2332771219u, 0, 0x02, 64240, 0, 1460, 7, true, true, 3317596243u, 0 },
	{ "misc/sv-null-http-ipv6.pcap", 1, "::1", "::1", 55717, 8000,
	  296797504u, 0, 0x02, 65535, 0, 16324, 5, true, true, 770775250u, 0 },
	{ "zeek/llc.pcap", 1, "128.3.140.132", "194.140.136.34", 2035, 80,
	  1388789261u, 1388789261u, 0x04, 8192, 0, 0, -1, false, false, 0, 0 },
	{ "zeek/gre-sample.pcap", 11, "66.59.111.190", "172.28.2.3", 40264, 22,
	  813658343u, 0, 0xc2, 5744, 0, 1436, 0, true, true, 112272689u, 0 },
	{ "zeek/pbb.pcap", 5, "10.199.249.11", "10.199.249.12", 49601, 49416,
	  2151987126u, 0, 0x02, 8192, 0, 1460, 2, true, false, 0, 0 },
	{ "zeek/mixed-vlan-mpls.pcap", 1, "10.1.2.1", "10.34.0.1", 11001, 23,
	  2553417723u, 0, 0x02, 4128, 0, 536, -1, false, false, 0, 0 },
	{ "zeek/pppoe-over-qinq.pcap", 1, "1.1.1.1", "2.2.2.2", 20394, 443,
	  3618128213u, 0, 0x02, 65535, 0, 1440, 6, true, true, 19781772u, 0 },
	{ "misc/sv-chdlc-http.pcap", 1, "192.168.2.7", "65.55.116.183", 4938, 80,
	  2620655980u, 0, 0x02, 16384, 0, 1460, -1, true, false, 0, 0 },
	{ "zeek/vxlan-inner-tcp-bad-checksum.pcap", 1, "10.0.0.1", "10.0.0.2", 12345, 80,
	  0, 0, 0x02, 8192, 0, 0, -1, false, false, 0, 0 },
};

static void check_corpus_pkt(const struct corpus_pkt *c, const struct packet *p)
{
	uint8_t src[16] = { 0 }, dst[16] = { 0 };
	int fam = strchr(c->src, ':') ? 6 : 4;

	CHECK(inet_pton(fam == 4 ? AF_INET : AF_INET6, c->src, src) == 1);
	CHECK(inet_pton(fam == 4 ? AF_INET : AF_INET6, c->dst, dst) == 1);
	CHECK_EQ_INT(p->family, fam);
	CHECK(memcmp(p->src, src, 16) == 0);
	CHECK(memcmp(p->dst, dst, 16) == 0);
	CHECK_EQ_INT(p->sport, c->sport);
	CHECK_EQ_INT(p->dport, c->dport);
	CHECK_EQ_INT(p->seq, c->seq);
	CHECK_EQ_INT(p->ack, c->ack);
	CHECK_EQ_INT(p->flags, c->flags);
	CHECK_EQ_INT(p->window, c->window);
	CHECK_EQ_INT(p->payload_len, c->len);
	CHECK_EQ_INT(p->opt.has_mss, c->mss != 0);
	CHECK_EQ_INT(p->opt.mss, c->mss);
	CHECK_EQ_INT(p->opt.has_wscale, c->wscale >= 0);
	if (c->wscale >= 0)
		CHECK_EQ_INT(p->opt.wscale, c->wscale);
	CHECK_EQ_INT(p->opt.sack_permitted, c->sack_perm);
	CHECK_EQ_INT(p->opt.has_timestamps, c->has_ts);
	CHECK_EQ_INT(p->opt.ts_val, c->ts_val);
	CHECK_EQ_INT(p->opt.ts_ecr, c->ts_ecr);
	CHECK(!p->opt.bad);
}

/* Decode every packet of one capture; returns the number accepted. */
static unsigned long corpus_file(const char *path, const char *rel, unsigned long *total)
{
	char err[PCAP_ERRBUF_SIZE];
	pcap_t *pc = pcap_open_offline(path, err);
	struct pcap_pkthdr *h;
	const u_char *data;
	unsigned long n = 0, ok = 0;
	int dlt, rc;

	if (pc == NULL) {
		printf("  note: %s: cannot open: %s\n", rel, err);
		return 0;
	}
	dlt = pcap_datalink(pc);
	while ((rc = pcap_next_ex(pc, &h, &data)) == 1) {
		struct packet p;

		n++;
		memset(&p, 0, sizeof p);
		if (decode_frame(dlt, data, h->caplen, h->len, &p) != DECODE_OK)
			continue;
		ok++;
		for (size_t i = 0; i < sizeof corpus_pkts / sizeof corpus_pkts[0]; i++) {
			if (strcmp(rel, corpus_pkts[i].file) == 0 && corpus_pkts[i].number == n) {
				int before = test_failures;

				check_corpus_pkt(&corpus_pkts[i], &p);
				if (test_failures != before)
					fprintf(stderr, "  ^ in %s packet %lu\n", rel, n);
			}
		}
	}
	if (rc == -1)
		printf("  note: %s: read error after %lu packets: %s\n", rel, n, pcap_geterr(pc));
	if (!decode_linktype_supported(dlt))
		printf("  note: %s: link type %d not supported\n", rel, dlt);
	pcap_close(pc);
	*total += n;
	return ok;
}

/* The fast path's option blocks against the general walk, through
 * Ethernet so both paths run: the blocks it matches whole (Linux's
 * segments and SYNs), others it walks (Windows' SYN, SACK), and every
 * single-byte change of the matched ones, so a near miss must come out as
 * the walk says. decode_both() checks every one. */
static void test_fast_options(void)
{
	static const uint8_t ts[12] = { 1, 1, 8, 10, 0, 0, 0x03, 0xe8, 0, 0, 0x07, 0xd0 };
	static const uint8_t win_syn[12] = { 2, 4, 0x05, 0xb4, 1, 3, 3, 8, 1, 1, 4, 2 };
	static const uint8_t sack[12] = { 1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2 };
	static const struct {
		const uint8_t *o;
		size_t n;
	} blocks[] = {
		{ std_opts, sizeof std_opts }, { ts, sizeof ts },
		{ win_syn, sizeof win_syn }, { sack, sizeof sack },
	};
	static const uint8_t values[] = { 0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 0x80, 0xff };
	int before = fast_ok;

	for (int family = 4; family <= 6; family += 2) {
		for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
			for (size_t at = 0; at <= blocks[b].n; at++) {
				for (size_t v = 0; v < sizeof values; v++) {
					uint8_t o[20];
					struct frame f = { .n = 0 };
					struct packet p;
					size_t ip;

					memcpy(o, blocks[b].o, blocks[b].n);
					if (at < blocks[b].n)
						o[at] = values[v];  /* at == n: as it is */
					eth(&f, family == 4 ? 0x0800 : 0x86dd);
					ip = family == 4 ? ipv4(&f, 6, A4, B4) : ipv6(&f, 6, A6, B6);
					tcp(&f, o, blocks[b].n, 3);
					if (family == 4)
						ipv4_end(&f, ip);
					else
						ipv6_end(&f, ip);
					memset(&p, 0, sizeof p);
					decode_frame(DLT_EN10MB, f.b, (uint32_t)f.n, (uint32_t)f.n, &p);
					if (b == 0 && at == blocks[b].n)
						check_std(&p, family, 3);
					if (at == blocks[b].n)
						break;
				}
			}
		}
	}
	CHECK(fast_ok - before > 1000);
}

/* The fast path against the general one on damaged frames: standard
 * Ethernet/IPv4 and IPv6 segments, with and without options, with a few
 * bytes of the headers changed at random and random capture and wire
 * lengths. decode_both() checks every one. */
static void test_fast_path(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	int before = both_ways, ok_before = fast_ok;

	for (int i = 0; i < 200000; i++) {
		struct frame f = { .n = 0 };
		struct packet p;
		int family = (i & 1) ? 6 : 4;
		size_t ip, hdrs;
		uint32_t cap, wire;

		eth(&f, family == 4 ? 0x0800 : 0x86dd);
		ip = family == 4 ? ipv4(&f, 6, A4, B4) : ipv6(&f, 6, A6, B6);
		static const uint8_t ts_opts[12] = { 1, 1, 8, 10, 0, 0, 0x03, 0xe8, 0, 0, 0x07, 0xd0 };

		switch ((i >> 1) % 3) {
		case 0: tcp(&f, NULL, 0, STD_PAYLOAD); break;
		case 1: std_tcp(&f); break;
		default: tcp(&f, ts_opts, sizeof ts_opts, STD_PAYLOAD); break;  /* Linux's usual */
		}
		if (family == 4)
			ipv4_end(&f, ip);
		else
			ipv6_end(&f, ip);
		hdrs = f.n - STD_PAYLOAD;
		if (i % 5 < 2)  /* Ethernet padding or an FCS after the datagram */
			putfill(&f, 0, 1 + (size_t)(i / 5) % 24);
		for (int m = (int)(i % 4); m > 0; m--) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			if (m & 1)
				f.b[x % hdrs] ^= (uint8_t)(1u << ((x >> 32) % 8));
			else
				f.b[x % hdrs] = (uint8_t)(x >> 40);
		}
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		cap = (uint32_t)(i % 8 == 0 ? x % (f.n + 1) : f.n);
		wire = (uint32_t)(i % 16 == 1 ? cap + (x >> 40) % 64 : i % 16 == 3 ? (x >> 20) % (f.n + 1) : f.n);
		memset(&p, 0, sizeof p);
		decode_frame(DLT_EN10MB, f.b, cap, wire, &p);
	}
	printf("  fast path: %d frames decoded both ways, %d ok\n", both_ways - before,
	       fast_ok - ok_before);
	CHECK(fast_ok - ok_before > 50000);
}

static void test_corpus(void)
{
	const char *dir = getenv("TCPSTATE_CORPUS");
	char pattern[512];
	glob_t g;
	unsigned long files = 0, total = 0, accepted = 0;
	size_t dirlen;
	bool seen[sizeof corpus_counts / sizeof corpus_counts[0]] = { false };
	bool seen_pkt[sizeof corpus_pkts / sizeof corpus_pkts[0]] = { false };

	if (dir == NULL)
		dir = "/work/shared/corpus";
	dirlen = strlen(dir);
	if (snprintf(pattern, sizeof pattern, "%s/*/*.pcap*", dir) >= (int)sizeof pattern) {
		printf("  corpus: path too long, skipped\n");
		return;
	}
	if (glob(pattern, 0, NULL, &g) != 0) {
		printf("  corpus: no captures under %s, skipped\n", dir);
		return;
	}
	for (size_t i = 0; i < g.gl_pathc; i++) {
		const char *path = g.gl_pathv[i];
		const char *rel = path + dirlen + 1;
		unsigned long ok = corpus_file(path, rel, &total);

		files++;
		accepted += ok;
		for (size_t k = 0; k < sizeof corpus_counts / sizeof corpus_counts[0]; k++) {
			if (strcmp(rel, corpus_counts[k].file) != 0)
				continue;
			seen[k] = true;
			if (ok != corpus_counts[k].tcp)
				fprintf(stderr, "  %s: %lu TCP packets, tshark says %lu\n",
					rel, ok, corpus_counts[k].tcp);
			CHECK_EQ_INT(ok, corpus_counts[k].tcp);
		}
		for (size_t k = 0; k < sizeof corpus_pkts / sizeof corpus_pkts[0]; k++)
			if (strcmp(rel, corpus_pkts[k].file) == 0)
				seen_pkt[k] = true;
	}
	globfree(&g);
	for (size_t k = 0; k < sizeof seen / sizeof seen[0]; k++)
		if (!seen[k])
			printf("  note: %s missing from the corpus\n", corpus_counts[k].file);
	for (size_t k = 0; k < sizeof seen_pkt / sizeof seen_pkt[0]; k++)
		if (!seen_pkt[k])
			printf("  note: %s missing from the corpus\n", corpus_pkts[k].file);
	printf("  corpus: %lu files, %lu packets, %lu TCP segments decoded\n",
	       files, total, accepted);
}

int main(void)
{
	int checks = 0;

	test_ethernet();
	group_done("ethernet", &checks);
	test_other_links();
	group_done("other link types", &checks);
	test_tunnels();
	group_done("tunnels", &checks);
	test_ipv4();
	group_done("ipv4", &checks);
	test_ipv6();
	group_done("ipv6", &checks);
	test_tcp_options();
	group_done("tcp options", &checks);
	test_tcp_header();
	group_done("tcp header", &checks);
	test_interface();
	group_done("interface", &checks);
	test_corpus();
	group_done("corpus", &checks);
	test_fast_path();
	group_done("fast path", &checks);
	test_fast_options();
	group_done("fast path options", &checks);
	printf("  (%d frames decoded by both paths)\n", both_ways);
	printf("  (%d frames cut at every length)\n", sweeps);
	return test_done("test_decode");
}
