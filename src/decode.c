/* decode.c - turn one captured frame into a struct packet: the link layer (a
 * table keyed by DLT), IPv4/IPv6 with options, extension headers and fragments,
 * tunnels (IP-in-IP, GRE, VXLAN, Geneve, Teredo), the TCP header and options.
 * Bytes are untrusted: every read goes through the rd.h cursor, lengths come from
 * the IP headers and are checked against the wire; caplen only decides "truncated". */

#include "decode.h"

#include <pcap/pcap.h>
#include <stddef.h>
#include <string.h>

#include "rd.h"

/* Ethertypes (also used as protocol numbers by SLL, Cisco HDLC, GRE, Geneve). */
enum {
	ETH_MIN_TYPE = 0x0600,     /* values below are 802.3 length fields */
	ETH_MAX_LEN = 1500,        /* largest valid 802.3 length */
	ETH_IPV4 = 0x0800,
	ETH_IPV6 = 0x86dd,
	ETH_VLAN = 0x8100,         /* 802.1Q */
	ETH_QINQ = 0x88a8,         /* 802.1ad service tag */
	ETH_QINQ_OLD = 0x9100,     /* pre-standard QinQ */
	ETH_MPLS_UC = 0x8847,
	ETH_MPLS_MC = 0x8848,
	ETH_PPPOE_SESS = 0x8864,
	ETH_PBB = 0x88e7,          /* 802.1ah I-tag */
	ETH_VNTAG = 0x8926,
	ETH_FABRICPATH = 0x8903,
	ETH_TEB = 0x6558,          /* transparent Ethernet bridging (GRE, Geneve) */
	ETH_ERSPAN2 = 0x88be,      /* ERSPAN type I/II over GRE */
};

/* IP protocol numbers (own names: <netinet/in.h> comes in through pcap.h). */
enum {
	IPP_HOPOPTS = 0,
	IPP_IPIP = 4,
	IPP_TCP = 6,
	IPP_UDP = 17,
	IPP_IPV6 = 41,
	IPP_ROUTING = 43,
	IPP_FRAGMENT = 44,
	IPP_GRE = 47,
	IPP_AH = 51,
	IPP_NONE = 59,
	IPP_DSTOPTS = 60,
	IPP_MOBILITY = 135,
};

enum { PPP_IPV4 = 0x0021, PPP_IPV6 = 0x0057 };

enum { UDP_VXLAN = 4789, UDP_GENEVE = 6081, UDP_TEREDO = 3544 };

enum {
	TCPOPT_EOL = 0,
	TCPOPT_NOP = 1,
	TCPOPT_MSS = 2,
	TCPOPT_WSCALE = 3,
	TCPOPT_SACK_PERM = 4,
	TCPOPT_SACK = 5,
	TCPOPT_TIMESTAMP = 8,
};

/* Encapsulations (tunnels, PBB, FabricPath) allowed inside one frame; each
 * one recurses, so a crafted frame must not be able to nest them without end.
 * Deeper frames are counted as invalid_ip_header. */
#define MAX_NEST 4

/* State shared by the layers of one frame. The cursor says what was
 * captured; wire_end says where the enclosing header (the frame, later an IP
 * datagram or UDP datagram) ends on the wire, so lengths can be checked
 * against the wire even when the capture was cut short. */
struct dctx {
	const uint8_t *frame;   /* first byte of the frame; cursor offsets count from here */
	size_t wire_end;        /* offset just past the enclosing region on the wire */
	unsigned nest;          /* encapsulations entered so far */
	struct packet *pkt;     /* scratch result, copied out only on DECODE_OK */
};

typedef enum decode_status (*link_fn)(struct dctx *c, struct rd *r);

static enum decode_status decode_ether(struct dctx *c, struct rd *r);
static enum decode_status decode_ip(struct dctx *c, struct rd *r, unsigned version);

/* Bytes from the cursor to the end of the enclosing region on the wire. */
static size_t wire_left(const struct dctx *c, const struct rd *r)
{
	size_t off = (size_t)(r->p - c->frame);

	return off < c->wire_end ? c->wire_end - off : 0;
}

/* Enter one more encapsulation; false when the frame nests too deeply. */
static bool nest_enter(struct dctx *c)
{
	if (c->nest >= MAX_NEST)
		return false;
	c->nest++;
	return true;
}

/* ------------------------------------------------------------------ */
/* Link layer                                                          */
/* ------------------------------------------------------------------ */

/* 802.2 LLC. Only SNAP with an Ethernet-compatible OUI carries an ethertype
 * we can follow; STP, IPX, NetBIOS and friends are not IP. */
static enum decode_status llc_snap(struct rd *r, uint16_t *type)
{
	uint8_t dsap, ssap, ctrl, oui[3];

	if (!rd_u8(r, &dsap) || !rd_u8(r, &ssap) || !rd_u8(r, &ctrl))
		return DECODE_TRUNCATED_LINK;
	if (dsap != 0xaa || ssap != 0xaa || ctrl != 0x03)
		return DECODE_NOT_IP;
	if (!rd_bytes(r, oui, sizeof oui) || !rd_be16(r, type))
		return DECODE_TRUNCATED_LINK;
	/* 00-00-00 is RFC 1042 encapsulation, 00-00-f8 its 802.1H variant. */
	if (oui[0] != 0 || oui[1] != 0 || (oui[2] != 0 && oui[2] != 0xf8))
		return DECODE_NOT_IP;
	if (*type < ETH_MIN_TYPE)
		return DECODE_NOT_IP;
	return DECODE_OK;
}

/* MPLS: pop labels up to bottom-of-stack, then guess the payload from its
 * first nibble, as there is no protocol field. Anything else (pseudowires
 * with a control word) is not IP as far as we are concerned. */
static enum decode_status decode_mpls(struct dctx *c, struct rd *r)
{
	uint32_t lse;
	uint8_t first;

	do {
		if (!rd_be32(r, &lse))
			return DECODE_TRUNCATED_LINK;
	} while (!(lse & 0x100));
	if (!rd_peek_u8(r, 0, &first))
		return DECODE_TRUNCATED_IP;
	switch (first >> 4) {
	case 4:
		return decode_ip(c, r, 4);
	case 6:
		return decode_ip(c, r, 6);
	default:
		return DECODE_NOT_IP;
	}
}

/* The PPP protocol field: two bytes, or one when protocol-field
 * compression is on (the low bit of the first byte is then set). */
static enum decode_status decode_ppp_proto(struct dctx *c, struct rd *r)
{
	uint8_t hi, lo;
	uint16_t proto;

	if (!rd_u8(r, &hi))
		return DECODE_TRUNCATED_LINK;
	if (hi & 1) {
		proto = hi;
	} else {
		if (!rd_u8(r, &lo))
			return DECODE_TRUNCATED_LINK;
		proto = (uint16_t)(hi << 8 | lo);
	}
	switch (proto) {
	case PPP_IPV4:
		return decode_ip(c, r, 4);
	case PPP_IPV6:
		return decode_ip(c, r, 6);
	default:
		return DECODE_NOT_IP;
	}
}

/* PPPoE session stage (RFC 2516): ver/type 0x11, code 0, session id,
 * length, then a PPP protocol field. Discovery packets are not IP. */
static enum decode_status decode_pppoe(struct dctx *c, struct rd *r)
{
	uint8_t vertype, code;

	if (!rd_u8(r, &vertype) || !rd_u8(r, &code) || !rd_skip(r, 4))
		return DECODE_TRUNCATED_LINK;
	if (vertype != 0x11 || code != 0)
		return DECODE_NOT_IP;
	return decode_ppp_proto(c, r);
}

/* Everything that can follow an ethertype: 802.3 length + LLC/SNAP, VLAN
 * tags of all three flavours, VN-Tag, MPLS, PPPoE, PBB, FabricPath, IP.
 * Tags are a loop (each consumes bytes, so it ends); only the encapsulations
 * that restart a whole Ethernet header recurse, under nest_enter(). */
static enum decode_status decode_ethertype(struct dctx *c, struct rd *r, uint16_t type)
{
	enum decode_status st;

	for (;;) {
		if (type < ETH_MIN_TYPE) {
			if (type > ETH_MAX_LEN)
				return DECODE_NOT_IP;
			st = llc_snap(r, &type);
			if (st != DECODE_OK)
				return st;
			continue;
		}
		switch (type) {
		case ETH_IPV4:
			return decode_ip(c, r, 4);
		case ETH_IPV6:
			return decode_ip(c, r, 6);
		case ETH_VLAN:
		case ETH_QINQ:
		case ETH_QINQ_OLD:
			/* 2 bytes PCP/DEI/VID, then the next type */
			if (!rd_skip(r, 2) || !rd_be16(r, &type))
				return DECODE_TRUNCATED_LINK;
			break;
		case ETH_VNTAG:
			/* 4 bytes of tag, then the next type */
			if (!rd_skip(r, 4) || !rd_be16(r, &type))
				return DECODE_TRUNCATED_LINK;
			break;
		case ETH_MPLS_UC:
		case ETH_MPLS_MC:
			return decode_mpls(c, r);
		case ETH_PPPOE_SESS:
			return decode_pppoe(c, r);
		case ETH_PBB:
			/* 4-byte I-tag (flags, I-SID), then the customer's frame */
			if (!rd_skip(r, 4))
				return DECODE_TRUNCATED_LINK;
			if (!nest_enter(c))
				return DECODE_INVALID_IP_HEADER;
			return decode_ether(c, r);
		case ETH_FABRICPATH:
			/* the 16-byte outer header ends with this type and a
			 * 2-byte FTag/TTL; the original frame follows */
			if (!rd_skip(r, 2))
				return DECODE_TRUNCATED_LINK;
			if (!nest_enter(c))
				return DECODE_INVALID_IP_HEADER;
			return decode_ether(c, r);
		default:
			return DECODE_NOT_IP;   /* ARP, LLDP, LACP, ... */
		}
	}
}

/* A protocol field that holds an ethertype but can never hold an 802.3
 * length (SLL, Cisco HDLC, GRE, Geneve). */
static enum decode_status decode_proto_ethertype(struct dctx *c, struct rd *r, uint16_t type)
{
	if (type < ETH_MIN_TYPE)
		return DECODE_NOT_IP;
	return decode_ethertype(c, r, type);
}

/* Ethernet II or 802.3: destination, source, type/length. */
static enum decode_status decode_ether(struct dctx *c, struct rd *r)
{
	uint16_t type;

	if (!rd_skip(r, 12) || !rd_be16(r, &type))
		return DECODE_TRUNCATED_LINK;
	return decode_ethertype(c, r, type);
}

/* Linux cooked capture payload. Protocol 0x0004 (ETH_P_802_2) means an LLC
 * header follows; other small values (802.3 raw, netlink families) are not IP. */
static enum decode_status sll_payload(struct dctx *c, struct rd *r, uint16_t proto)
{
	enum decode_status st;

	if (proto == 0x0004) {
		st = llc_snap(r, &proto);
		if (st != DECODE_OK)
			return st;
	}
	return decode_proto_ethertype(c, r, proto);
}

/* DLT_LINUX_SLL: type 2, ARPHRD 2, address length 2, address 8, protocol 2. */
static enum decode_status link_sll(struct dctx *c, struct rd *r)
{
	uint16_t proto;

	if (!rd_skip(r, 14) || !rd_be16(r, &proto))
		return DECODE_TRUNCATED_LINK;
	return sll_payload(c, r, proto);
}

/* DLT_LINUX_SLL2: protocol 2, reserved 2, ifindex 4, ARPHRD 2, type 1,
 * address length 1, address 8. */
static enum decode_status link_sll2(struct dctx *c, struct rd *r)
{
	uint16_t proto;

	if (!rd_be16(r, &proto) || !rd_skip(r, 18))
		return DECODE_TRUNCATED_LINK;
	return sll_payload(c, r, proto);
}

/* Raw IP: no link header, the version nibble decides. */
static enum decode_status link_raw(struct dctx *c, struct rd *r)
{
	return decode_ip(c, r, 0);
}

static enum decode_status link_ipv4(struct dctx *c, struct rd *r)
{
	return decode_ip(c, r, 4);
}

static enum decode_status link_ipv6(struct dctx *c, struct rd *r)
{
	return decode_ip(c, r, 6);
}

/* BSD address families: AF_INET is 2 everywhere, AF_INET6 is 24 (NetBSD,
 * OpenBSD), 28 (FreeBSD, DragonFly) or 30 (macOS). */
static enum decode_status loopback_af(struct dctx *c, struct rd *r, uint32_t af)
{
	switch (af) {
	case 2:
		return decode_ip(c, r, 4);
	case 24:
	case 28:
	case 30:
		return decode_ip(c, r, 6);
	default:
		return DECODE_NOT_IP;
	}
}

/* DLT_NULL: the family is in the capturing host's byte order, which the
 * file does not record. Families are small numbers, so the order that gives
 * a value below 65536 is the right one (tcpdump does the same). */
static enum decode_status link_null(struct dctx *c, struct rd *r)
{
	struct rd peek = *r;
	uint32_t be, le;

	if (!rd_be32(&peek, &be) || !rd_le32(r, &le))
		return DECODE_TRUNCATED_LINK;
	return loopback_af(c, r, le < 0x10000 ? le : be);
}

/* DLT_LOOP: like DLT_NULL but always network byte order. */
static enum decode_status link_loop(struct dctx *c, struct rd *r)
{
	uint32_t af;

	if (!rd_be32(r, &af))
		return DECODE_TRUNCATED_LINK;
	return loopback_af(c, r, af);
}

/* Cisco HDLC: address (0x0f unicast / 0x8f broadcast), control, ethertype. */
static enum decode_status link_chdlc(struct dctx *c, struct rd *r)
{
	uint16_t type;

	if (!rd_skip(r, 2) || !rd_be16(r, &type))
		return DECODE_TRUNCATED_LINK;
	return decode_proto_ethertype(c, r, type);
}

/* DLT_PPP / DLT_PPP_SERIAL: optional ff 03 address/control (RFC 1662), then
 * the protocol. Some routers log Cisco HDLC frames on PPP links; like
 * tcpdump, recognise them by their address byte. */
static enum decode_status link_ppp(struct dctx *c, struct rd *r)
{
	uint8_t addr, ctrl;

	if (!rd_peek_u8(r, 0, &addr))
		return DECODE_TRUNCATED_LINK;
	if (addr == 0x0f || addr == 0x8f)
		return link_chdlc(c, r);
	if (addr == 0xff) {
		if (!rd_skip(r, 1) || !rd_u8(r, &ctrl))
			return DECODE_TRUNCATED_LINK;
		if (ctrl != 0x03)
			return DECODE_NOT_IP;
	}
	return decode_ppp_proto(c, r);
}

/* DLT_FDDI: frame control, destination, source (13 bytes), then LLC.
 * Only LLC frames with 48-bit addresses (frame control 0x5X async, 0xdX
 * sync) carry data; SMT and MAC frames are not IP. */
static enum decode_status link_fddi(struct dctx *c, struct rd *r)
{
	enum decode_status st;
	uint8_t fc;
	uint16_t type;

	if (!rd_u8(r, &fc) || !rd_skip(r, 12))
		return DECODE_TRUNCATED_LINK;
	if ((fc & 0x70) != 0x50)
		return DECODE_NOT_IP;
	st = llc_snap(r, &type);
	if (st != DECODE_OK)
		return st;
	return decode_ethertype(c, r, type);
}

/* The link types we decode. DLT_RAW is 12 or 14 depending on the platform,
 * and pcap maps LINKTYPE_RAW (101) to it, but a reader that did not is
 * accepted too. Newer DLTs are guarded in case an old libpcap lacks them. */
static const struct link_type {
	int dlt;
	link_fn decode;
} link_types[] = {
	{ DLT_NULL, link_null },
	{ DLT_EN10MB, decode_ether },
	{ DLT_PPP, link_ppp },
	{ DLT_FDDI, link_fddi },
	{ DLT_RAW, link_raw },
	{ 101, link_raw },
#ifdef DLT_PPP_SERIAL
	{ DLT_PPP_SERIAL, link_ppp },
#endif
#ifdef DLT_PPP_ETHER
	{ DLT_PPP_ETHER, decode_pppoe },
#endif
#ifdef DLT_C_HDLC
	{ DLT_C_HDLC, link_chdlc },
#endif
#ifdef DLT_LOOP
	{ DLT_LOOP, link_loop },
#endif
#ifdef DLT_LINUX_SLL
	{ DLT_LINUX_SLL, link_sll },
#endif
#ifdef DLT_LINUX_SLL2
	{ DLT_LINUX_SLL2, link_sll2 },
#endif
#ifdef DLT_IPV4
	{ DLT_IPV4, link_ipv4 },
#endif
#ifdef DLT_IPV6
	{ DLT_IPV6, link_ipv6 },
#endif
};

static const struct link_type *link_type_find(int dlt)
{
	for (size_t i = 0; i < sizeof link_types / sizeof link_types[0]; i++)
		if (link_types[i].dlt == dlt)
			return &link_types[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* TCP                                                                 */
/* ------------------------------------------------------------------ */

/* Walk the options area (o[0, n), already known to be captured in full).
 * Like tcpdump, stop at the first malformed option and mark it: the lengths
 * after it cannot be trusted. A known option with the wrong length is
 * malformed. Plain indexing rather than the rd.h cursor: n bounds every read
 * below, and this runs on every SYN. */
static void tcp_options_parse(const uint8_t *o, size_t n, struct tcp_options *opt)
{
	size_t i = 0, len;

	while (i < n) {
		uint8_t kind = o[i];

		if (kind == TCPOPT_EOL)
			return;
		if (kind == TCPOPT_NOP) {
			i++;
			continue;
		}
		/* a length byte, at least 2, and no further than the area's end */
		if (n - i < 2 || (len = o[i + 1]) < 2 || len > n - i)
			goto bad;
		switch (kind) {
		case TCPOPT_MSS:
			if (len != 4)
				goto bad;
			opt->mss = load_be16(o + i + 2);
			opt->has_mss = true;
			break;
		case TCPOPT_WSCALE:
			if (len != 3)
				goto bad;
			opt->wscale = o[i + 2];
			opt->has_wscale = true;
			break;
		case TCPOPT_SACK_PERM:
			if (len != 2)
				goto bad;
			opt->sack_permitted = true;
			break;
		case TCPOPT_SACK:
			/* 8 bytes a block; zero blocks is odd but well formed */
			if ((len - 2) % 8 != 0)
				goto bad;
			opt->sack_blocks = (uint8_t)((len - 2) / 8);
			break;
		case TCPOPT_TIMESTAMP:
			if (len != 10)
				goto bad;
			opt->ts_val = load_be32(o + i + 2);
			opt->ts_ecr = load_be32(o + i + 6);
			opt->has_timestamps = true;
			break;
		default:
			break;  /* unknown or unused: skipped by its length */
		}
		i += len;
	}
	return;
bad:
	opt->bad = true;
}

/* The TCP header. len is the IP payload length per the IP header (not
 * caplen); first_frag says the datagram is a first fragment, in which case
 * a header that does not fit is a fragment problem rather than a bad offset. */
static enum decode_status decode_tcp(struct dctx *c, struct rd *r, size_t len, bool first_frag)
{
	struct packet *p = c->pkt;
	uint8_t offx, flags;
	size_t hl;
	struct rd opts;

	if (len < 20)
		return first_frag ? DECODE_FRAGMENT : DECODE_INVALID_TCP_OFFSET;
	if (!rd_be16(r, &p->sport) || !rd_be16(r, &p->dport) ||
	    !rd_be32(r, &p->seq) || !rd_be32(r, &p->ack) ||
	    !rd_u8(r, &offx) || !rd_u8(r, &flags) || !rd_be16(r, &p->window) ||
	    !rd_skip(r, 4))
		return DECODE_TRUNCATED_TCP;
	hl = (size_t)(offx >> 4) * 4;
	if (hl < 20)
		return DECODE_INVALID_TCP_OFFSET;
	if (hl > len)
		return first_frag ? DECODE_FRAGMENT : DECODE_INVALID_TCP_OFFSET;
	if (!rd_sub(r, hl - 20, &opts))
		return DECODE_TRUNCATED_TCP;
	memset(&p->opt, 0, sizeof p->opt);
	tcp_options_parse(opts.p, rd_left(&opts), &p->opt);
	p->flags = flags;
	p->payload_len = (uint32_t)(len - hl);
	return DECODE_OK;
}

/* ------------------------------------------------------------------ */
/* Tunnels                                                             */
/* ------------------------------------------------------------------ */

/* RFC 2784/2890 GRE version 0. Version 1 (PPTP) and RFC 1701 source
 * routing are not followed. */
static enum decode_status decode_gre(struct dctx *c, struct rd *r, bool first_frag)
{
	uint16_t flags, proto;
	size_t optlen = 0;

	if (!rd_be16(r, &flags) || !rd_be16(r, &proto))
		return DECODE_TRUNCATED_IP;
	if ((flags & 0x0007) != 0 || (flags & 0x4000) != 0)
		return DECODE_NOT_TCP;
	if (flags & 0x8000)
		optlen += 4;    /* checksum + reserved */
	if (flags & 0x2000)
		optlen += 4;    /* key */
	if (flags & 0x1000)
		optlen += 4;    /* sequence number */
	if (!rd_skip(r, optlen))
		return DECODE_TRUNCATED_IP;
	if (first_frag)
		return DECODE_FRAGMENT;
	if (!nest_enter(c))
		return DECODE_INVALID_IP_HEADER;
	switch (proto) {
	case ETH_TEB:
		return decode_ether(c, r);
	case ETH_ERSPAN2:
		/* type II has an 8-byte header and sets the GRE sequence bit;
		 * type I has neither */
		if ((flags & 0x1000) && !rd_skip(r, 8))
			return DECODE_TRUNCATED_IP;
		return decode_ether(c, r);
	default:
		return decode_proto_ethertype(c, r, proto);
	}
}

/* VXLAN (RFC 7348): flags with the I bit, 3 reserved, VNI 3, reserved 1. */
static enum decode_status decode_vxlan(struct dctx *c, struct rd *r)
{
	uint8_t flags;

	if (!rd_u8(r, &flags) || !rd_skip(r, 7))
		return DECODE_TRUNCATED_IP;
	if (!(flags & 0x08))
		return DECODE_NOT_TCP;
	return decode_ether(c, r);
}

/* Geneve (RFC 8926): version/option length, flags, protocol type, VNI,
 * reserved, then options in 4-byte units. */
static enum decode_status decode_geneve(struct dctx *c, struct rd *r)
{
	uint8_t veropt, flags;
	uint16_t proto;

	if (!rd_u8(r, &veropt) || !rd_u8(r, &flags) || !rd_be16(r, &proto) ||
	    !rd_skip(r, 4))
		return DECODE_TRUNCATED_IP;
	if ((veropt >> 6) != 0)
		return DECODE_NOT_TCP;
	if (!rd_skip(r, (size_t)(veropt & 0x3f) * 4))
		return DECODE_TRUNCATED_IP;
	if (proto == ETH_TEB)
		return decode_ether(c, r);
	return decode_proto_ethertype(c, r, proto);
}

/* Teredo (RFC 4380): optional authentication indicator (0x0001), optional
 * origin indication (0x0000), then IPv6. Traffic on port 3544 that is not
 * IPv6 after those is just UDP. */
static enum decode_status decode_teredo(struct dctx *c, struct rd *r)
{
	uint16_t ind;
	uint8_t idlen, aulen;

	if (wire_left(c, r) < 40)
		return DECODE_NOT_TCP;          /* too short to hold IPv6 */
	/* an IPv6 header never starts with 0x00, so the indicators are unambiguous */
	if (!rd_peek_be16(r, 0, &ind))
		return DECODE_TRUNCATED_IP;
	if (ind == 0x0001) {
		/* indicator, id-len, au-len, client id, auth value, nonce 8, confirmation 1 */
		if (!rd_skip(r, 2) || !rd_u8(r, &idlen) || !rd_u8(r, &aulen) ||
		    !rd_skip(r, (size_t)idlen + aulen + 9) || !rd_peek_be16(r, 0, &ind))
			return DECODE_TRUNCATED_IP;
	}
	if (ind == 0x0000) {
		/* indicator, obfuscated port 2, obfuscated address 4 */
		if (!rd_skip(r, 8) || !rd_peek_be16(r, 0, &ind))
			return DECODE_TRUNCATED_IP;
	}
	if ((ind >> 12) != 6)
		return DECODE_NOT_TCP;
	return decode_ip(c, r, 6);
}

/* UDP: only interesting as a tunnel carrier, recognised by well-known port. */
static enum decode_status decode_udp(struct dctx *c, struct rd *r, size_t len, bool first_frag)
{
	size_t start = (size_t)(r->p - c->frame);
	uint16_t sport, dport, ulen;

	if (len < 8)
		return DECODE_NOT_TCP;
	if (!rd_be16(r, &sport) || !rd_be16(r, &dport) || !rd_be16(r, &ulen) ||
	    !rd_skip(r, 2))
		return DECODE_TRUNCATED_IP;
	if (dport != UDP_VXLAN && dport != UDP_GENEVE &&
	    sport != UDP_TEREDO && dport != UDP_TEREDO)
		return DECODE_NOT_TCP;
	if (first_frag)
		return DECODE_FRAGMENT;
	/* a plausible UDP length trims trailers; a bad one is left to the IP length */
	if (ulen >= 8 && ulen <= len) {
		rd_limit(r, (size_t)ulen - 8);
		c->wire_end = start + ulen;
	}
	if (!nest_enter(c))
		return DECODE_INVALID_IP_HEADER;
	if (dport == UDP_VXLAN)
		return decode_vxlan(c, r);
	if (dport == UDP_GENEVE)
		return decode_geneve(c, r);
	return decode_teredo(c, r);
}

/* IP-in-IP (4 or 41, in either IP version). */
static enum decode_status decode_ipip(struct dctx *c, struct rd *r, unsigned version, bool first_frag)
{
	if (first_frag)
		return DECODE_FRAGMENT;
	if (!nest_enter(c))
		return DECODE_INVALID_IP_HEADER;
	return decode_ip(c, r, version);
}

/* ------------------------------------------------------------------ */
/* IP                                                                  */
/* ------------------------------------------------------------------ */

/* Protocols that can lead to a TCP segment. */
static bool proto_may_carry_tcp(uint8_t proto)
{
	switch (proto) {
	case IPP_TCP:
	case IPP_IPIP:
	case IPP_IPV6:
	case IPP_GRE:
	case IPP_UDP:
		return true;
	default:
		return false;
	}
}

/* The IP payload: r holds its captured part, len its length per the IP
 * header, and c->wire_end already marks where it ends on the wire. */
static enum decode_status decode_transport(struct dctx *c, struct rd *r, uint8_t proto,
					   size_t len, bool first_frag)
{
	switch (proto) {
	case IPP_TCP:
		return decode_tcp(c, r, len, first_frag);
	case IPP_IPIP:
		return decode_ipip(c, r, 4, first_frag);
	case IPP_IPV6:
		return decode_ipip(c, r, 6, first_frag);
	case IPP_GRE:
		return decode_gre(c, r, first_frag);
	case IPP_UDP:
		return decode_udp(c, r, len, first_frag);
	default:
		return DECODE_NOT_TCP;
	}
}

/* IPv4. Total length 0 is what TSO/GSO and BIG TCP captures carry: the frame
 * length stands in for it. A first fragment is decoded when the whole TCP
 * header is inside it; its payload_len then counts only this fragment's
 * bytes (an undercount: the other fragments are not reassembled). */
static enum decode_status decode_ipv4(struct dctx *c, struct rd *r)
{
	struct packet *p = c->pkt;
	size_t start = (size_t)(r->p - c->frame);
	size_t wire = wire_left(c, r);
	size_t ihl, len;
	uint8_t vihl, proto;
	uint16_t totlen, frag, offset;

	if (!rd_u8(r, &vihl))
		return DECODE_TRUNCATED_IP;
	ihl = (size_t)(vihl & 0x0f) * 4;
	if (ihl < 20)
		return DECODE_INVALID_IP_HEADER;
	memset(p->src, 0, sizeof p->src);
	memset(p->dst, 0, sizeof p->dst);
	if (!rd_skip(r, 1) || !rd_be16(r, &totlen) || !rd_skip(r, 2) ||
	    !rd_be16(r, &frag) || !rd_skip(r, 1) || !rd_u8(r, &proto) ||
	    !rd_skip(r, 2) || !rd_bytes(r, p->src, 4) || !rd_bytes(r, p->dst, 4) ||
	    !rd_skip(r, ihl - 20))
		return DECODE_TRUNCATED_IP;
	len = totlen != 0 ? totlen : wire;
	if (len < ihl || len > wire)
		return DECODE_INVALID_IP_LENGTH;
	p->family = 4;

	offset = frag & 0x1fff;
	if (offset != 0)
		return proto_may_carry_tcp(proto) ? DECODE_FRAGMENT : DECODE_NOT_TCP;

	p->ip_len = (uint32_t)len; /* an inner header, decoded later, overwrites it */
	len -= ihl;
	rd_limit(r, len);
	c->wire_end = start + ihl + len;
	return decode_transport(c, r, proto, len, (frag & 0x2000) != 0);
}

/* IPv6 and its extension-header chain. Payload length 0 (jumbogram or
 * BIG TCP/TSO) takes the frame length, like IPv4's total length 0. */
static enum decode_status decode_ipv6(struct dctx *c, struct rd *r)
{
	struct packet *p = c->pkt;
	size_t start = (size_t)(r->p - c->frame);
	size_t wire = wire_left(c, r);
	size_t len, hl;
	uint16_t plen, fragoff;
	uint8_t nh, next, hlen;
	bool first_frag = false;

	if (!rd_skip(r, 4) || !rd_be16(r, &plen) || !rd_u8(r, &nh) ||
	    !rd_skip(r, 1) || !rd_bytes(r, p->src, 16) || !rd_bytes(r, p->dst, 16))
		return DECODE_TRUNCATED_IP;
	if (wire < 40)
		return DECODE_INVALID_IP_LENGTH;  /* cannot happen: captured <= wire */
	len = plen != 0 ? plen : wire - 40;
	if (len > wire - 40)
		return DECODE_INVALID_IP_LENGTH;
	p->family = 6;
	p->ip_len = (uint32_t)(40 + len);
	rd_limit(r, len);
	c->wire_end = start + 40 + len;

	/* each extension header is at least 8 bytes of len, so this ends */
	for (bool first = true;; first = false) {
		switch (nh) {
		case IPP_HOPOPTS:
			if (!first)
				return DECODE_INVALID_IP_HEADER;  /* only right after the fixed header */
			break;
		case IPP_ROUTING:
		case IPP_FRAGMENT:
		case IPP_DSTOPTS:
		case IPP_AH:
		case IPP_MOBILITY:
			break;
		case IPP_NONE:
			return DECODE_NOT_TCP;
		default:
			return decode_transport(c, r, nh, len, first_frag);
		}
		if (len < 8)
			return DECODE_INVALID_IP_HEADER;
		if (!rd_u8(r, &next) || !rd_u8(r, &hlen))
			return DECODE_TRUNCATED_IP;
		if (nh == IPP_FRAGMENT) {
			/* fixed 8 bytes; offset in 8-byte units, low bit M */
			if (!rd_be16(r, &fragoff) || !rd_skip(r, 4))
				return DECODE_TRUNCATED_IP;
			if ((fragoff >> 3) != 0)
				return DECODE_FRAGMENT;
			first_frag = first_frag || (fragoff & 1);
			hl = 8;
		} else {
			/* AH counts 4-byte units minus 2, the others 8-byte units minus 1 */
			hl = nh == IPP_AH ? ((size_t)hlen + 2) * 4 : ((size_t)hlen + 1) * 8;
			if (hl > len)
				return DECODE_INVALID_IP_HEADER;
			if (!rd_skip(r, hl - 2))
				return DECODE_TRUNCATED_IP;
		}
		len -= hl;
		nh = next;
	}
}

/* IPv4 or IPv6. version is what the link layer announced, 0 when it did
 * not say (raw IP); the header's own version nibble must agree. */
static enum decode_status decode_ip(struct dctx *c, struct rd *r, unsigned version)
{
	uint8_t first;
	unsigned v;

	if (!rd_peek_u8(r, 0, &first))
		return DECODE_TRUNCATED_IP;
	v = first >> 4;
	if ((version != 0 && v != version) || (v != 4 && v != 6))
		return DECODE_INVALID_IP_VERSION;
	return v == 4 ? decode_ipv4(c, r) : decode_ipv6(c, r);
}

/* ------------------------------------------------------------------ */
/* Interface                                                           */
/* ------------------------------------------------------------------ */

static const char *const status_names[] = {
	[DECODE_OK] = "ok",
	[DECODE_NOT_IP] = "not_ip",
	[DECODE_NOT_TCP] = "not_tcp",
	[DECODE_FRAGMENT] = "fragment",
	[DECODE_TRUNCATED_LINK] = "truncated_link",
	[DECODE_TRUNCATED_IP] = "truncated_ip",
	[DECODE_TRUNCATED_TCP] = "truncated_tcp",
	[DECODE_INVALID_IP_VERSION] = "invalid_ip_version",
	[DECODE_INVALID_IP_HEADER] = "invalid_ip_header",
	[DECODE_INVALID_IP_LENGTH] = "invalid_ip_length",
	[DECODE_INVALID_TCP_OFFSET] = "invalid_tcp_offset",
	[DECODE_UNSUPPORTED_LINK] = "unsupported_link",
};
_Static_assert(sizeof status_names / sizeof status_names[0] == DECODE_STATUS_COUNT,
	       "status_names out of step with enum decode_status");

const char *decode_status_name(enum decode_status st)
{
	if ((unsigned)st >= DECODE_STATUS_COUNT || status_names[st] == NULL)
		return "unknown";
	return status_names[st];
}

bool decode_linktype_supported(int dlt)
{
	return link_type_find(dlt) != NULL;
}

/* The SYN block below sets struct tcp_options field by field: a field
 * added to it must be set there too (this fails the build until then). */
_Static_assert(sizeof(struct tcp_options) == 20, "struct tcp_options changed: update decode_fast_ether");

/* An IPv4 address into a 16-byte field, zero-padded, as two 8-byte
 * stores: the flow key reads the field in 8-byte loads, and a load is
 * forwarded from a store still in flight only if one store holds it all. */
static inline void put_v4_addr(uint8_t *field, const uint8_t *a)
{
	uint32_t v;
	uint64_t w, zero = 0;

	memcpy(&v, a, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	w = v;
#else
	w = (uint64_t)v << 32;
#endif
	memcpy(field, &w, sizeof(w));
	memcpy(field + 8, &zero, sizeof(zero));
}

/* The frame nearly every packet of a big capture is: Ethernet II, then IPv4
 * without options or IPv6 without extension headers, not a later fragment,
 * its whole TCP header captured. Decoded here in one pass; any other frame,
 * and any frame with a fault, returns false and takes the general path,
 * which decodes these frames to the same result (the unit test compares
 * both on every frame it makes). */
static bool decode_fast_ether(const uint8_t *d, uint32_t caplen, uint32_t wirelen,
			      struct packet *p)
{
	size_t wire = (wirelen > caplen ? wirelen : caplen) - 14;  /* IP bytes on the wire */
	const uint8_t *ip = d + 14, *th, *o;
	size_t len, seg, room, hl;
	uint32_t w;

	if (caplen < 14 + 20 + 20)
		return false;
	/* Ranges below are checked with one unsigned comparison: a value under
	 * the low end wraps round to a huge one. None is empty, as caplen is
	 * long enough for both headers. */
	w = load_be32(d + 12) >> 8;  /* the ethertype and IP version + IHL, in one load */
	if (w == (ETH_IPV4 << 8 | 0x45)) {
		len = load_be16(ip + 2);
		/* fragment offset 0 and protocol TCP, in one load; then
		 * 20 + 20 <= len <= wire */
		if ((load_be32(ip + 6) & 0x1fff00ff) != IPP_TCP || len - 40 > wire - 40)
			return false;
		p->family = 4;
		put_v4_addr(p->src, ip + 12);
		put_v4_addr(p->dst, ip + 16);
		p->ip_len = (uint32_t)len;
		th = ip + 20;
		seg = len - 20;                  /* the TCP segment per the IP header */
		room = caplen - (14 + 20);       /* and what of it was captured */
	} else if (w >> 4 == (ETH_IPV6 << 4 | 6)) {
		len = load_be16(ip + 4);
		/* 20 <= len <= wire - 40 */
		if (caplen < 14 + 40 + 20 || ip[6] != IPP_TCP || len - 20 > wire - 60)
			return false;
		p->family = 6;
		memcpy(p->src, ip + 8, 16);
		memcpy(p->dst, ip + 24, 16);
		p->ip_len = (uint32_t)(40 + len);
		th = ip + 40;
		seg = len;
		room = caplen - (14 + 40);
	} else {
		return false;
	}
	/* 20 <= hl <= seg and hl <= room: the header is in the segment and
	 * captured whole (seg, room >= 20) */
	hl = (size_t)(th[12] >> 4) * 4;
	if (hl - 20 > (seg < room ? seg : room) - 20)
		return false;
	p->sport = load_be16(th);
	p->dport = load_be16(th + 2);
	p->seq = load_be32(th + 4);
	p->ack = load_be32(th + 8);
	p->flags = th[13];
	p->window = load_be16(th + 14);
	p->payload_len = (uint32_t)(seg - hl);
	/* The option blocks Linux sends, matched whole; the general walk gives
	 * the same for them. Anything else is walked. */
	o = th + 20;
	if (hl == 32 && load_be32(o) == 0x0101080a) {
		/* NOP, NOP, timestamps: every segment after the handshake */
		p->opt = (struct tcp_options){ .has_timestamps = true,
			.ts_val = load_be32(o + 4), .ts_ecr = load_be32(o + 8) };
	} else if (hl == 40 && load_be32(o) >> 16 == 0x0204 && load_be32(o + 4) == 0x0402080a &&
		   load_be32(o + 16) >> 8 == 0x010303) {
		/* MSS, SACK permitted, timestamps, NOP, window scale: its
		 * SYNs. Every field set one by one: a memset first, or a
		 * compound literal, costs a rep stos here. */
		p->opt.mss = load_be16(o + 2);
		p->opt.wscale = o[19];
		p->opt.sack_blocks = 0;
		p->opt.has_mss = true;
		p->opt.has_wscale = true;
		p->opt.sack_permitted = true;
		p->opt.has_timestamps = true;
		p->opt.bad = false;
		p->opt.ts_val = load_be32(o + 8);
		p->opt.ts_ecr = load_be32(o + 12);
	} else {
		memset(&p->opt, 0, sizeof p->opt);
		tcp_options_parse(o, hl - 20, &p->opt);
	}
	return true;
}

enum decode_status decode_ether_frame(const uint8_t *data, uint32_t caplen, uint32_t wirelen,
				      struct packet *out)
{
	if (decode_fast_ether(data, caplen, wirelen, out))
		return DECODE_OK;
	return decode_frame_general(DLT_EN10MB, data, caplen, wirelen, out);
}

enum decode_status decode_frame(int dlt, const uint8_t *data, uint32_t caplen,
				uint32_t wirelen, struct packet *out)
{
	if (dlt == DLT_EN10MB && data)
		return decode_ether_frame(data, caplen, wirelen, out);
	return decode_frame_general(dlt, data, caplen, wirelen, out);
}

enum decode_status decode_frame_general(int dlt, const uint8_t *data, uint32_t caplen,
					uint32_t wirelen, struct packet *out)
{
	const struct link_type *lt;
	struct packet pkt;
	struct dctx c;
	struct rd r;
	enum decode_status st;

	lt = link_type_find(dlt);
	if (lt == NULL)
		return DECODE_UNSUPPORTED_LINK;
	if (data == NULL)
		return DECODE_TRUNCATED_LINK;
	memset(&pkt, 0, sizeof pkt);
	/* a record claiming fewer wire bytes than it holds is trusted for what it holds */
	c.frame = data;
	c.wire_end = wirelen > caplen ? wirelen : caplen;
	c.nest = 0;
	c.pkt = &pkt;
	r = rd_init(data, caplen);
	st = lt->decode(&c, &r);
	if (st == DECODE_OK) {
		pkt.ts_ns = out->ts_ns;
		pkt.number = out->number;
		*out = pkt;
	}
	return st;
}
