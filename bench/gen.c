/* gen.c - tcpstate-gen: a deterministic generator of realistic TCP captures.
 * It simulates many interleaved client/server connections (handshakes, data both
 * ways, every kind of close, resets, stuck CLOSE_WAIT, unanswered SYNs, a SYN
 * flood), writes them as a classic nanosecond pcap in large buffered writes, and
 * records the ground truth it knows so tcpstate can be checked at scale. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S UINT64_C(1000000000)
#define NS_PER_MS UINT64_C(1000000)
#define TIME_WAIT_NS (60 * NS_PER_S)     /* Linux TCP_TIMEWAIT_LEN; the truth assumes it */
#define PORT_COOLDOWN_NS (90 * NS_PER_S) /* a client port is reused only this long after its last packet */
#define CAPTURE_EPOCH_S UINT64_C(1700000000)   /* first packet: 2023-11-14 22:13:20 UTC */
#define PORT_FREE 0u
#define PORT_BLOCKED UINT32_MAX          /* in use, or never reusable (the connection never finished) */
#define SCRIPT_MAX 64
#define FLIGHT_MAX 40                    /* most segments one side sends in a row */
#define OUT_BUF_SIZE (8u << 20)

/* An unanswered SYN is retransmitted as Linux does it, then the client gives
 * up (connect() fails with ETIMEDOUT) and has no state left: CLOSED. The gaps
 * were measured on Linux 6.18 with the defaults tcp_syn_retries = 6 and
 * tcp_syn_linear_timeouts = 4, which make 10 retransmissions: 5 at the
 * initial RTO of 1 s ("linear"), then doubling (2, 4, 8, 16, 32 s), each a
 * little late by the timer wheel's rounding; the socket gives up 64 s (plus
 * rounding) after the last one, 133.5 s after connect(). */
static const uint32_t syn_retx_gap_ms[] = {
	1015, 1024, 1024, 1024, 1024, 2016, 4224, 8192, 16128, 32256,
};
#define SYN_RETX_COUNT (sizeof(syn_retx_gap_ms) / sizeof(syn_retx_gap_ms[0]))
#define SYN_GIVE_UP_NS (65536 * NS_PER_MS)  /* after the last retransmission */
#define FLOOD_ID UINT32_MAX

/* How a connection ends. Weights are per 10000 connections. */
enum fate {
	F_CLIENT_CLOSE,      /* client FIN first: client TIME_WAIT, server CLOSED */
	F_SERVER_CLOSE,      /* server FIN first: server TIME_WAIT, client CLOSED */
	F_SIMUL_CLOSE,       /* FINs cross: both CLOSING then TIME_WAIT */
	F_CLIENT_RESET,      /* client aborts with RST after data */
	F_SERVER_RESET,      /* server aborts with RST after data */
	F_REFUSED,           /* SYN answered by RST/ACK: nothing listening */
	F_SERVER_CLOSE_WAIT, /* client FIN acked, server never closes */
	F_CLIENT_CLOSE_WAIT, /* server FIN acked, client never closes */
	F_UNANSWERED_SYN,    /* SYN retransmitted on Linux's schedule, never answered */
	F_IDLE,              /* handshake and data, then silence: both ESTABLISHED */
	F_SYN_FLOOD,         /* one spoofed SYN (not drawn from the mix) */
	F_COUNT
};

static const struct {
	const char *name;
	unsigned weight;
	bool data;           /* has a data phase */
	double overhead;     /* packets outside the data phase, on average */
} fates[F_COUNT] = {
	[F_CLIENT_CLOSE]      = { "client_close", 5900, true, 6.5 },
	[F_SERVER_CLOSE]      = { "server_close", 3200, true, 6.5 },
	[F_SIMUL_CLOSE]       = { "simultaneous_close", 100, true, 7 },
	[F_CLIENT_RESET]      = { "client_reset", 200, true, 4 },
	[F_SERVER_RESET]      = { "server_reset", 200, true, 4 },
	[F_REFUSED]           = { "refused", 100, false, 2 },
	[F_SERVER_CLOSE_WAIT] = { "server_close_wait", 100, true, 5 },
	[F_CLIENT_CLOSE_WAIT] = { "client_close_wait", 25, true, 5 },
	[F_UNANSWERED_SYN]    = { "unanswered_syn", 100, false, 1 + SYN_RETX_COUNT },
	[F_IDLE]              = { "idle_established", 75, true, 3 },
	[F_SYN_FLOOD]         = { "syn_flood", 0, false, 1 },
};

/* Per-side TCP states as an observer of the wire names them (RFC 793). A side
 * that never sent a segment of the connection has no state: CLOSED. */
enum state {
	S_CLOSED, S_SYN_SENT, S_ESTABLISHED, S_FIN_WAIT_2, S_CLOSE_WAIT, S_TIME_WAIT,
	S_COUNT
};
static const char *const state_names[S_COUNT] = {
	"CLOSED", "SYN_SENT", "ESTABLISHED", "FIN_WAIT_2", "CLOSE_WAIT", "TIME_WAIT",
};

/* One scripted packet: bit 7 is the sender (0 client, 1 server), the rest the kind. */
enum kind {
	K_SYN, K_SYN_RETX, K_SYNACK, K_ACK, K_FULL, K_PSH_SMALL, K_PSH_PART,
	K_FIN, K_FIN_CROSS, K_RST, K_REFUSE,
};
#define FROM_SERVER 0x80u

enum stage { ST_HANDSHAKE, ST_DATA, ST_CLOSE };

enum { OPT_NONE, OPT_SYN, OPT_SYN_NOTS, OPT_TS, OPT_MSS };

struct side {
	uint32_t nxt;        /* next sequence number this side sends */
	uint32_t ts_base;    /* TSval at capture start (random per connection, as Linux) */
	uint32_t last_tsval; /* last TSval this side sent: the peer's TSecr */
	uint16_t ip_id;
	uint16_t win;        /* raw window field after the handshake */
	uint16_t syn_win;
	uint8_t wscale;
	uint8_t ttl;
};

struct conn {
	struct side side[2];  /* 0 client, 1 server */
	uint64_t rtt_ns;
	uint64_t tw_early_ns; /* when the RFC puts the closer in TIME_WAIT (peer FIN seen) */
	uint32_t cip, sip;
	uint32_t client;      /* index into gen.clients */
	uint32_t data_left;   /* packet budget left for the data phase */
	uint16_t cport, sport;
	uint16_t mss;         /* payload bytes of a full segment */
	uint8_t server;
	uint8_t fate;
	uint8_t stage;
	uint8_t has_ts;
	uint8_t started;
	uint8_t pos, len, tw_early_pos;
	uint8_t script[SCRIPT_MAX];
};

struct client {
	uint32_t ip;
	uint16_t base;        /* first port of this client's ephemeral window */
	uint16_t cursor;
	uint8_t ttl;
	uint32_t *free_at_s;  /* per port: PORT_FREE, PORT_BLOCKED, or capture second it frees (+1) */
	uint8_t *last_server; /* per port: server of its previous connection */
};

struct heap_item {
	uint64_t ts;
	uint32_t id;
};

struct tw_entry {
	uint64_t last_ns, early_ns;
	uint8_t sides;        /* bit 0 client, bit 1 server in TIME_WAIT */
	uint8_t early_side;   /* the side early_ns applies to: 0 client, 1 server */
};

struct options {
	uint64_t packets, connections, concurrent, seed, syn_flood, rate, flood_rate;
	uint64_t clients, ports;
	unsigned snaplen, servers;
	const char *out;
	bool quiet;
};

struct rng {
	uint64_t s[4];
};

struct gen {
	struct options opt;
	struct rng rng;
	FILE *f;
	uint8_t *buf;
	size_t buf_len;
	bool write_error;

	struct conn *slots;
	struct heap_item *heap;
	size_t heap_len;
	struct client *clients;
	size_t nclients, clients_cap;
	uint32_t server_ip[256];
	uint16_t server_port[256];

	struct tw_entry *tw;
	size_t tw_head, tw_len, tw_cap;
	/* unanswered SYNs: give-up times of clients done retransmitting (in
	 * time order), and how many clients are retransmitting */
	uint64_t *give_up;
	size_t gu_head, gu_len, gu_cap;
	uint64_t syn_waiting;

	uint64_t gap_ns;           /* mean gap between two packets of one connection */
	double data_mean;          /* data-phase packets per data-carrying connection */
	uint64_t now;              /* ns since capture start */
	uint64_t created, flood_left, flood_gap_ns, flood_sent;
	uint64_t packets, file_bytes, wire_bytes;
	uint64_t active, max_active, open, max_open, open_tw, max_open_tw;
	uint64_t port_reuses, tuple_reuses, tw_ambiguous[2];
	uint64_t ends[F_COUNT];
	uint64_t final[2][S_COUNT];
	uint64_t pairs[S_COUNT][S_COUNT];
};

/* xoshiro256**, seeded through splitmix64: fast, and the same stream on every platform. */
static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Uniform in [0, n); n > 0. Multiply-shift for 32-bit n (bias below 2^-32 * n),
 * modulo beyond: both far below what a benchmark can notice. */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
	if (n <= UINT32_MAX)
		return ((rng_next(r) >> 32) * n) >> 32;
	return rng_next(r) % n;
}

static inline uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi)
{
	return lo + rng_below(r, hi - lo + 1);
}

/* Uniform in [0, 1). */
static inline double rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- output ---------------------------------------------------------------- */

static void out_flush(struct gen *g)
{
	if (g->buf_len && fwrite(g->buf, 1, g->buf_len, g->f) != g->buf_len)
		g->write_error = true;
	g->buf_len = 0;
}

static inline uint8_t *out_reserve(struct gen *g, size_t n)
{
	if (g->buf_len + n > OUT_BUF_SIZE)
		out_flush(g);
	uint8_t *p = g->buf + g->buf_len;
	g->buf_len += n;
	return p;
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void write_file_header(struct gen *g)
{
	uint8_t *p = out_reserve(g, 24);
	put_le32(p, 0xa1b23c4du);                 /* nanosecond-resolution pcap */
	p[4] = 2; p[5] = 0; p[6] = 4; p[7] = 0;   /* version 2.4, little-endian */
	put_le32(p + 8, 0);                       /* thiszone */
	put_le32(p + 12, 0);                      /* sigfigs */
	put_le32(p + 16, g->opt.snaplen);
	put_le32(p + 20, 1);                      /* LINKTYPE_ETHERNET */
	g->file_bytes += 24;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Everything one segment needs; built by the scripting code, written by emit_segment(). */
struct seg {
	uint32_t sip, dip, seq, ack, paylen, tsval, tsecr;
	uint16_t sport, dport, win, ip_id, mss;
	uint8_t flags, opt, wscale, ttl;
	uint8_t smac_last, dmac_last;
};

/* Ethernet + IPv4 + TCP with correct checksums. The payload is zeros, so the
 * TCP checksum over the headers alone is also correct for the full segment;
 * only min(frame, snaplen) bytes are stored. Frames under 60 bytes are padded
 * as a receiving NIC delivers them. */
static void emit_segment(struct gen *g, const struct seg *s)
{
	uint8_t hdr[14 + 20 + 60];
	uint8_t *eth = hdr, *ip = hdr + 14, *tcp = hdr + 34, *o = tcp + 20;

	switch (s->opt) {
	case OPT_SYN:     /* Linux order: MSS, SACK-permitted, timestamps, NOP, window scale */
		o[0] = 2; o[1] = 4; put_be16(o + 2, s->mss);
		o[4] = 4; o[5] = 2;
		o[6] = 8; o[7] = 10; put_be32(o + 8, s->tsval); put_be32(o + 12, s->tsecr);
		o[16] = 1; o[17] = 3; o[18] = 3; o[19] = s->wscale;
		o += 20;
		break;
	case OPT_SYN_NOTS: /* Windows order: MSS, NOP, WS, NOP, NOP, SACK-permitted */
		o[0] = 2; o[1] = 4; put_be16(o + 2, s->mss);
		o[4] = 1; o[5] = 3; o[6] = 3; o[7] = s->wscale;
		o[8] = 1; o[9] = 1; o[10] = 4; o[11] = 2;
		o += 12;
		break;
	case OPT_TS:
		o[0] = 1; o[1] = 1; o[2] = 8; o[3] = 10;
		put_be32(o + 4, s->tsval); put_be32(o + 8, s->tsecr);
		o += 12;
		break;
	case OPT_MSS:
		o[0] = 2; o[1] = 4; put_be16(o + 2, s->mss);
		o += 4;
		break;
	default:
		break;
	}
	uint32_t thl = (uint32_t)(o - tcp);
	uint32_t tcp_len = thl + s->paylen;
	uint32_t ip_len = 20 + tcp_len;
	uint32_t hdr_len = 14 + 20 + thl;

	static const uint8_t mac[5] = { 0x02, 0x00, 0x5e, 0x10, 0x00 };
	memcpy(eth, mac, 5);
	eth[5] = s->dmac_last;
	memcpy(eth + 6, mac, 5);
	eth[11] = s->smac_last;
	eth[12] = 0x08; eth[13] = 0x00;

	ip[0] = 0x45; ip[1] = 0;
	put_be16(ip + 2, (uint16_t)ip_len);
	put_be16(ip + 4, s->ip_id);
	put_be16(ip + 6, 0x4000);                 /* DF */
	ip[8] = s->ttl; ip[9] = 6;
	ip[10] = 0; ip[11] = 0;
	put_be32(ip + 12, s->sip);
	put_be32(ip + 16, s->dip);
	put_be16(ip + 10, csum_fold(csum_add(0, ip, 20)));

	put_be16(tcp, s->sport);
	put_be16(tcp + 2, s->dport);
	put_be32(tcp + 4, s->seq);
	put_be32(tcp + 8, s->ack);
	tcp[12] = (uint8_t)((thl / 4) << 4);
	tcp[13] = s->flags;
	put_be16(tcp + 14, s->win);
	tcp[16] = 0; tcp[17] = 0; tcp[18] = 0; tcp[19] = 0;
	uint32_t sum = csum_add(0, ip + 12, 8) + 6 + tcp_len;
	put_be16(tcp + 16, csum_fold(csum_add(sum, tcp, thl)));

	uint32_t wire = 14 + ip_len;
	if (wire < 60)
		wire = 60;
	uint32_t cap = wire < g->opt.snaplen ? wire : g->opt.snaplen;
	uint8_t *p = out_reserve(g, 16 + (size_t)cap);
	uint64_t t = CAPTURE_EPOCH_S * NS_PER_S + g->now;
	put_le32(p, (uint32_t)(t / NS_PER_S));
	put_le32(p + 4, (uint32_t)(t % NS_PER_S));
	put_le32(p + 8, cap);
	put_le32(p + 12, wire);
	if (cap <= hdr_len) {
		memcpy(p + 16, hdr, cap);
	} else {
		memcpy(p + 16, hdr, hdr_len);
		memset(p + 16 + hdr_len, 0, cap - hdr_len);
	}
	g->packets++;
	g->file_bytes += 16 + (uint64_t)cap;
	g->wire_bytes += wire;
}

/* ---- bookkeeping: open connections, TIME_WAIT expiry, final states ---------- */

static void tw_push(struct gen *g, uint64_t last, uint64_t early, uint8_t sides,
		    uint8_t early_side)
{
	if (g->tw_len == g->tw_cap) {
		size_t ncap = g->tw_cap ? g->tw_cap * 2 : 4096;
		struct tw_entry *n = malloc(ncap * sizeof(*n));
		if (!n) {
			fprintf(stderr, "tcpstate-gen: out of memory\n");
			exit(1);
		}
		for (size_t i = 0; i < g->tw_len; i++)
			n[i] = g->tw[(g->tw_head + i) % g->tw_cap];
		free(g->tw);
		g->tw = n;
		g->tw_head = 0;
		g->tw_cap = ncap;
	}
	g->tw[(g->tw_head + g->tw_len) % g->tw_cap] = (struct tw_entry){ last, early, sides, early_side };
	g->tw_len++;
}

static void count_final(struct gen *g, enum state c, enum state s)
{
	g->final[0][c]++;
	g->final[1][s]++;
	g->pairs[c][s]++;
}

/* Retire TIME_WAITs older than 60 s at the current time: both sides are CLOSED. */
static void tw_expire(struct gen *g)
{
	while (g->tw_len && g->now - g->tw[g->tw_head].last_ns >= TIME_WAIT_NS) {
		g->tw_head = (g->tw_head + 1) % g->tw_cap;
		g->tw_len--;
		g->open_tw--;
		count_final(g, S_CLOSED, S_CLOSED);
	}
}

/* A client that sent its last SYN retransmission gives up at `when`. */
static void give_up_push(struct gen *g, uint64_t when)
{
	if (g->gu_len == g->gu_cap) {
		size_t ncap = g->gu_cap ? g->gu_cap * 2 : 1024;
		uint64_t *n = malloc(ncap * sizeof(*n));
		if (!n) {
			fprintf(stderr, "tcpstate-gen: out of memory\n");
			exit(1);
		}
		for (size_t i = 0; i < g->gu_len; i++)
			n[i] = g->give_up[(g->gu_head + i) % g->gu_cap];
		free(g->give_up);
		g->give_up = n;
		g->gu_head = 0;
		g->gu_cap = ncap;
	}
	g->give_up[(g->gu_head + g->gu_len) % g->gu_cap] = when;
	g->gu_len++;
}

/* Clients that gave up by the current time: CLOSED, the connection is over. */
static void give_up_expire(struct gen *g)
{
	while (g->gu_len && g->give_up[g->gu_head] <= g->now) {
		g->gu_head = (g->gu_head + 1) % g->gu_cap;
		g->gu_len--;
		g->open--;
		g->open_tw--;
		count_final(g, S_CLOSED, S_CLOSED);
	}
}

static void note_open(struct gen *g)
{
	if (++g->open > g->max_open)
		g->max_open = g->open;
	if (++g->open_tw > g->max_open_tw)
		g->max_open_tw = g->open_tw;
}

/* ---- clients and ports -------------------------------------------------------- */

static bool client_add(struct gen *g)
{
	if (g->nclients == g->clients_cap) {
		size_t ncap = g->clients_cap ? g->clients_cap * 2 : 256;
		struct client *n = realloc(g->clients, ncap * sizeof(*n));
		if (!n)
			return false;
		g->clients = n;
		g->clients_cap = ncap;
	}
	if (g->nclients >= 250u * 65536u)
		return false;
	struct client *c = &g->clients[g->nclients];
	uint32_t k = (uint32_t)g->nclients;
	/* 10.a.b.c with c in 2..251: never a network or broadcast-looking address. */
	c->ip = 10u << 24 | (k / 250) << 8 | (k % 250 + 2);
	c->base = (uint16_t)rng_range(&g->rng, 32768, 61000 - g->opt.ports);
	c->cursor = 0;
	c->ttl = (uint8_t)(64 - rng_range(&g->rng, 1, 12));
	c->free_at_s = calloc(g->opt.ports, sizeof(*c->free_at_s));
	c->last_server = calloc(g->opt.ports, 1);
	if (!c->free_at_s || !c->last_server) {
		free(c->free_at_s);
		free(c->last_server);
		return false;
	}
	g->nclients++;
	return true;
}

/* Take the next free port of a client, walking its window like Linux's
 * sequential allocator; give up after a few busy ports. */
static bool client_take_port(struct gen *g, uint32_t ci, uint8_t server, uint16_t *port)
{
	struct client *c = &g->clients[ci];
	uint32_t now_s = (uint32_t)(g->now / NS_PER_S) + 1;
	for (int probe = 0; probe < 8; probe++) {
		uint32_t i = c->cursor;
		c->cursor = (uint16_t)((c->cursor + 1) % g->opt.ports);
		uint32_t st = c->free_at_s[i];
		if (st == PORT_BLOCKED || (st != PORT_FREE && st > now_s))
			continue;
		if (st != PORT_FREE) {
			g->port_reuses++;
			g->tuple_reuses += c->last_server[i] == server;
		}
		c->free_at_s[i] = PORT_BLOCKED;
		c->last_server[i] = server;
		*port = (uint16_t)(c->base + i);
		return true;
	}
	return false;
}

/* A mix of busy clients (the first 1/16) and many light ones. */
static void pick_client(struct gen *g, struct conn *cn)
{
	for (int attempt = 0; attempt < 24; attempt++) {
		uint64_t n = g->nclients;
		uint32_t ci;
		if (attempt < 2 && rng_below(&g->rng, 2) == 0)
			ci = (uint32_t)rng_below(&g->rng, n / 16 ? n / 16 : 1);
		else
			ci = (uint32_t)rng_below(&g->rng, n);
		if (client_take_port(g, ci, cn->server, &cn->cport)) {
			cn->client = ci;
			cn->cip = g->clients[ci].ip;
			return;
		}
	}
	/* Every client we tried is busy: grow the population. */
	if (!client_add(g) ||
	    !client_take_port(g, (uint32_t)g->nclients - 1, cn->server, &cn->cport)) {
		fprintf(stderr, "tcpstate-gen: cannot allocate a client port\n");
		exit(1);
	}
	cn->client = (uint32_t)g->nclients - 1;
	cn->cip = g->clients[cn->client].ip;
}

static void release_port(struct gen *g, const struct conn *cn, bool reusable)
{
	if (cn->fate == F_SYN_FLOOD)
		return;
	struct client *c = &g->clients[cn->client];
	uint32_t i = (uint32_t)(cn->cport - c->base);
	if (reusable)
		c->free_at_s[i] = (uint32_t)((g->now + PORT_COOLDOWN_NS) / NS_PER_S) + 2;
}

/* ---- scripting ------------------------------------------------------------------ */

static inline void add(struct conn *c, unsigned action)
{
	c->script[c->len++] = (uint8_t)action;
}

/* One exchange of data. Request/response: the client sends a request, the server
 * answers with a flight whose first segment acknowledges it, and the client
 * acknowledges every second segment (delayed ACK) and the last. Upload: the
 * mirror image with a short answer. Returns the packets it adds. */
static unsigned fill_round(struct gen *g, struct conn *c)
{
	uint32_t avail = c->data_left;
	unsigned before = c->len;
	bool upload = rng_below(&g->rng, 100) < 15;
	unsigned snd = upload ? 0 : FROM_SERVER, rcv = upload ? FROM_SERVER : 0;

	if (upload) {
		uint32_t kmax = avail > 2 ? (avail - 2) * 2 / 3 : 1;
		kmax = kmax < 1 ? 1 : kmax > FLIGHT_MAX ? FLIGHT_MAX : kmax;
		uint32_t k = (uint32_t)rng_range(&g->rng, 1, kmax);
		for (uint32_t i = 1; i <= k; i++) {
			add(c, snd | (i == k ? K_PSH_PART : K_FULL));
			if (i % 2 == 0 || i == k)
				add(c, rcv | K_ACK);
		}
		add(c, FROM_SERVER | K_PSH_SMALL);
		add(c, K_ACK);
	} else {
		uint32_t kc = rng_below(&g->rng, 10) == 0 ? 2 : 1;
		if (kc == 2)
			add(c, K_FULL);
		add(c, K_PSH_SMALL);
		uint32_t kmax = avail > kc ? (avail - kc) * 2 / 3 : 1;
		kmax = kmax < 1 ? 1 : kmax > FLIGHT_MAX ? FLIGHT_MAX : kmax;
		uint32_t k = (uint32_t)rng_range(&g->rng, 1, kmax);
		for (uint32_t i = 1; i <= k; i++) {
			add(c, snd | (i == k ? K_PSH_PART : K_FULL));
			if (i % 2 == 0 || i == k)
				add(c, rcv | K_ACK);
		}
	}
	unsigned n = c->len - before;
	c->data_left = c->data_left > n ? c->data_left - n : 0;
	return n;
}

static void fill_close(struct gen *g, struct conn *c)
{
	bool three = rng_below(&g->rng, 2) == 0;  /* FIN piggybacked on the ACK of the peer's FIN */
	switch (c->fate) {
	case F_CLIENT_CLOSE:
	case F_SERVER_CLOSE: {
		unsigned a = c->fate == F_CLIENT_CLOSE ? 0 : FROM_SERVER;
		unsigned b = a ^ FROM_SERVER;
		add(c, a | K_FIN);
		if (!three)
			add(c, b | K_ACK);
		c->tw_early_pos = c->len;
		add(c, b | K_FIN);
		add(c, a | K_ACK);
		break;
	}
	case F_SIMUL_CLOSE:
		add(c, K_FIN);
		add(c, FROM_SERVER | K_FIN_CROSS);
		c->tw_early_pos = c->len;             /* the server's FIN is acked: server TIME_WAIT */
		add(c, K_ACK);
		add(c, FROM_SERVER | K_ACK);
		break;
	case F_CLIENT_RESET:
		add(c, K_RST);
		break;
	case F_SERVER_RESET:
		add(c, FROM_SERVER | K_RST);
		break;
	case F_SERVER_CLOSE_WAIT:
		add(c, K_FIN);
		add(c, FROM_SERVER | K_ACK);
		break;
	case F_CLIENT_CLOSE_WAIT:
		add(c, FROM_SERVER | K_FIN);
		add(c, K_ACK);
		break;
	default:
		break;
	}
}

/* Refill the script when it runs out; false when the connection has no more packets. */
static bool refill(struct gen *g, struct conn *c)
{
	c->pos = 0;
	c->len = 0;
	c->tw_early_pos = UINT8_MAX;
	for (;;) {
		switch (c->stage) {
		case ST_HANDSHAKE:
			c->stage = ST_DATA;
			break;
		case ST_DATA:
			if (fates[c->fate].data && c->data_left >= 3) {
				fill_round(g, c);
				return true;
			}
			c->stage = ST_CLOSE;
			fill_close(g, c);
			return c->len > 0;
		default:
			return false;
		}
	}
}

static enum fate draw_fate(struct gen *g)
{
	uint64_t r = rng_below(&g->rng, 10000);
	for (int f = 0; f < F_COUNT; f++) {
		if (r < fates[f].weight)
			return (enum fate)f;
		r -= fates[f].weight;
	}
	return F_CLIENT_CLOSE;
}

static void conn_init(struct gen *g, struct conn *c)
{
	memset(c, 0, sizeof(*c));
	c->fate = (uint8_t)draw_fate(g);
	c->server = (uint8_t)rng_below(&g->rng, g->opt.servers);
	c->sip = g->server_ip[c->server];
	c->sport = g->server_port[c->server];
	pick_client(g, c);
	c->has_ts = rng_below(&g->rng, 10) != 0;  /* one client in ten is Windows-like: no timestamps */
	c->mss = c->has_ts ? 1448 : 1460;
	c->rtt_ns = (uint64_t)(g->gap_ns * (0.5 + rng_unit(&g->rng)));
	for (int i = 0; i < 2; i++) {
		struct side *s = &c->side[i];
		s->nxt = (uint32_t)rng_next(&g->rng);
		s->ts_base = (uint32_t)rng_next(&g->rng);
		s->ip_id = (uint16_t)rng_next(&g->rng);
		s->wscale = i ? (uint8_t)rng_range(&g->rng, 7, 10) : (uint8_t)rng_range(&g->rng, 6, 8);
		s->win = (uint16_t)rng_range(&g->rng, 501, 4000);
		s->syn_win = i ? 65160 : 64240;
	}
	c->side[0].ttl = g->clients[c->client].ttl;
	c->side[1].ttl = 64;
	if (fates[c->fate].data) {
		double u = 0.25 + 1.5 * rng_unit(&g->rng);
		c->data_left = (uint32_t)(g->data_mean * u + 0.5);
	}
	c->stage = ST_HANDSHAKE;
	c->tw_early_pos = UINT8_MAX;
	add(c, K_SYN);
	if (c->fate == F_UNANSWERED_SYN) {
		for (unsigned i = 0; i < SYN_RETX_COUNT; i++)
			add(c, K_SYN_RETX);
		c->stage = ST_CLOSE;
	} else if (c->fate == F_REFUSED) {
		add(c, FROM_SERVER | K_REFUSE);
		c->stage = ST_CLOSE;
	} else {
		add(c, FROM_SERVER | K_SYNACK);
		add(c, K_ACK);
	}
	g->created++;
}

/* Emit the connection's next scripted packet at g->now. */
static void conn_emit(struct gen *g, struct conn *c)
{
	unsigned a = c->script[c->pos];
	unsigned from = a & FROM_SERVER ? 1 : 0;
	unsigned kind = a & ~FROM_SERVER;
	struct side *me = &c->side[from], *peer = &c->side[from ^ 1];
	struct seg s;

	if (c->pos == c->tw_early_pos)
		c->tw_early_ns = g->now;
	if (!c->started) {
		c->started = 1;
		if (c->fate == F_UNANSWERED_SYN)
			g->syn_waiting++;
		if (++g->active > g->max_active)
			g->max_active = g->active;
		note_open(g);
	}
	s.sip = from ? c->sip : c->cip;
	s.dip = from ? c->cip : c->sip;
	s.sport = from ? c->sport : c->cport;
	s.dport = from ? c->cport : c->sport;
	s.smac_last = from ? (uint8_t)(0x10 + c->server) : 0x01;
	s.dmac_last = from ? 0x01 : (uint8_t)(0x10 + c->server);
	s.ttl = me->ttl;
	s.ip_id = me->ip_id++;
	s.win = me->win;
	s.mss = 1460;
	s.wscale = me->wscale;
	s.seq = me->nxt;
	s.ack = peer->nxt;
	s.flags = 0x10;
	s.paylen = 0;
	s.opt = c->has_ts ? OPT_TS : OPT_NONE;
	s.tsval = me->ts_base + (uint32_t)(g->now / NS_PER_MS);
	s.tsecr = peer->last_tsval;

	switch (kind) {
	case K_SYN:
	case K_SYN_RETX:
		s.flags = 0x02;
		s.ack = 0;
		s.tsecr = 0;
		s.win = me->syn_win;
		s.opt = c->has_ts ? OPT_SYN : OPT_SYN_NOTS;
		if (kind == K_SYN)
			me->nxt++;
		else
			s.seq = me->nxt - 1;
		break;
	case K_SYNACK:
		s.flags = 0x12;
		s.win = me->syn_win;
		s.opt = c->has_ts ? OPT_SYN : OPT_SYN_NOTS;
		me->nxt++;
		break;
	case K_ACK:
		break;
	case K_FULL:
		s.paylen = c->mss;
		break;
	case K_PSH_SMALL:
		s.flags = 0x18;
		s.paylen = (uint32_t)rng_range(&g->rng, 40, 900);
		break;
	case K_PSH_PART:
		s.flags = 0x18;
		s.paylen = (uint32_t)rng_range(&g->rng, 1, c->mss);
		break;
	case K_FIN:
		s.flags = 0x11;
		me->nxt++;
		break;
	case K_FIN_CROSS:                 /* sent before the peer's FIN arrived */
		s.flags = 0x11;
		s.ack = peer->nxt - 1;
		me->nxt++;
		break;
	case K_RST:
		s.flags = 0x14;
		break;
	case K_REFUSE:                    /* from a closed port: no options, seq 0 */
		s.flags = 0x14;
		s.seq = 0;
		s.win = 0;
		s.opt = OPT_NONE;
		break;
	default:
		break;
	}
	me->nxt += s.paylen;
	if (s.opt == OPT_TS || s.opt == OPT_SYN)
		me->last_tsval = s.tsval;
	emit_segment(g, &s);
	c->pos++;
}

/* The connection sent its last packet: record how it ends. */
static void conn_finish(struct gen *g, struct conn *c)
{
	bool reusable = true;
	g->active--;
	g->ends[c->fate]++;
	switch (c->fate) {
	case F_CLIENT_CLOSE:
		tw_push(g, g->now, c->tw_early_ns, 1, 0);
		g->open--;
		break;
	case F_SERVER_CLOSE:
		tw_push(g, g->now, c->tw_early_ns, 2, 1);
		g->open--;
		break;
	case F_SIMUL_CLOSE:
		tw_push(g, g->now, c->tw_early_ns, 3, 1);
		g->open--;
		break;
	case F_CLIENT_RESET:
	case F_SERVER_RESET:
	case F_REFUSED:
		count_final(g, S_CLOSED, S_CLOSED);
		g->open--;
		g->open_tw--;
		break;
	case F_SERVER_CLOSE_WAIT:
		count_final(g, S_FIN_WAIT_2, S_CLOSE_WAIT);
		reusable = false;
		break;
	case F_CLIENT_CLOSE_WAIT:
		count_final(g, S_CLOSE_WAIT, S_FIN_WAIT_2);
		reusable = false;
		break;
	case F_UNANSWERED_SYN:
		/* counted when it gives up, or SYN_SENT if the capture ends first */
		give_up_push(g, g->now + SYN_GIVE_UP_NS);
		g->syn_waiting--;
		reusable = false;
		break;
	case F_IDLE:
		count_final(g, S_ESTABLISHED, S_ESTABLISHED);
		reusable = false;
		break;
	default:
		break;
	}
	release_port(g, c, reusable);
}

/* Gap before the connection's next packet: a fraction of the RTT when the same
 * side keeps sending, about one RTT when the turn passes, Linux's schedule for
 * a SYN retransmission (script[0] is the SYN, then the retransmissions). */
static uint64_t next_gap(struct gen *g, const struct conn *c, unsigned prev, unsigned next)
{
	if ((next & ~FROM_SERVER) == K_SYN_RETX)
		return syn_retx_gap_ms[c->pos - 1] * NS_PER_MS + rng_below(&g->rng, NS_PER_MS);
	if ((prev & FROM_SERVER) == (next & FROM_SERVER))
		return 1000 + rng_below(&g->rng, c->rtt_ns / 5 + 1);
	return c->rtt_ns / 2 + rng_below(&g->rng, c->rtt_ns * 5 / 4 + 1);
}

/* ---- SYN flood --------------------------------------------------------------- */

/* Distinct sources: an odd multiplier is a bijection on 32 bits, so flood i and
 * flood j never share a source address. Private, loopback, multicast and our
 * own ranges are skipped. */
static uint32_t flood_source(struct gen *g)
{
	for (;;) {
		uint32_t x = (uint32_t)(g->flood_sent++ * 2654435761u + 0x5bd1e995u);
		x ^= x >> 16;
		x *= 0x45d9f3bu;                       /* still a bijection: odd multiply, xorshift */
		x ^= x >> 16;
		uint8_t a = (uint8_t)(x >> 24);
		if (a == 0 || a == 10 || a == 127 || a >= 224 || (x >> 20) == 0xac1)
			continue;
		return x;
	}
}

static void flood_emit(struct gen *g)
{
	struct seg s;
	memset(&s, 0, sizeof(s));
	s.sip = flood_source(g);
	s.dip = g->server_ip[0];
	s.sport = (uint16_t)rng_range(&g->rng, 1024, 65535);
	s.dport = g->server_port[0];
	s.seq = (uint32_t)rng_next(&g->rng);
	s.flags = 0x02;
	s.win = (uint16_t)rng_range(&g->rng, 512, 65535);
	s.ip_id = (uint16_t)rng_next(&g->rng);
	s.ttl = (uint8_t)rng_range(&g->rng, 40, 250);
	s.opt = OPT_MSS;
	s.mss = 1460;
	s.smac_last = 0x01;
	s.dmac_last = 0x10;
	emit_segment(g, &s);
	g->ends[F_SYN_FLOOD]++;
	/* a spoofed source has no socket, and the server never answered */
	count_final(g, S_CLOSED, S_CLOSED);
	note_open(g);
	g->flood_left--;
}

/* ---- scheduler: a binary min-heap of (next packet time, connection) ------------ */

static inline bool heap_less(const struct heap_item *a, const struct heap_item *b)
{
	return a->ts < b->ts || (a->ts == b->ts && a->id < b->id);
}

static void heap_push(struct gen *g, uint64_t ts, uint32_t id)
{
	size_t i = g->heap_len++;
	struct heap_item it = { ts, id };
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!heap_less(&it, &g->heap[p]))
			break;
		g->heap[i] = g->heap[p];
		i = p;
	}
	g->heap[i] = it;
}

/* Replace the top with it and restore the heap. */
static void heap_replace_top(struct gen *g, struct heap_item it)
{
	size_t i = 0, n = g->heap_len;
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		const struct heap_item *best = &it;
		if (l < n && heap_less(&g->heap[l], best)) {
			m = l;
			best = &g->heap[l];
		}
		if (l + 1 < n && heap_less(&g->heap[l + 1], best))
			m = l + 1;
		if (m == i)
			break;
		g->heap[i] = g->heap[m];
		i = m;
	}
	g->heap[i] = it;
}

static void heap_pop(struct gen *g)
{
	struct heap_item last = g->heap[--g->heap_len];
	if (g->heap_len)
		heap_replace_top(g, last);
}

/* ---- main loop ----------------------------------------------------------------- */

static void run(struct gen *g)
{
	uint64_t conc = g->opt.concurrent;
	for (uint32_t i = 0; i < conc && g->created < g->opt.connections; i++) {
		conn_init(g, &g->slots[i]);
		heap_push(g, rng_below(&g->rng, g->gap_ns * 4 + 1), i);
	}
	if (g->flood_left) {
		uint64_t dur = g->opt.packets * NS_PER_S / g->opt.rate;
		heap_push(g, dur / 4, FLOOD_ID);
	}
	while (g->heap_len) {
		struct heap_item top = g->heap[0];
		/* Only clients retransmitting unanswered SYNs are left: the capture
		 * ends here rather than wait a minute or two for them. */
		if (g->heap_len == g->syn_waiting)
			break;
		g->now = top.ts;
		tw_expire(g);
		give_up_expire(g);
		if (top.id == FLOOD_ID) {
			flood_emit(g);
			if (g->flood_left)
				heap_replace_top(g, (struct heap_item){ g->now + g->flood_gap_ns, FLOOD_ID });
			else
				heap_pop(g);
			continue;
		}
		struct conn *c = &g->slots[top.id];
		unsigned prev = c->script[c->pos];
		conn_emit(g, c);
		if (c->pos < c->len || refill(g, c)) {
			uint64_t gap = next_gap(g, c, prev, c->script[c->pos]);
			heap_replace_top(g, (struct heap_item){ g->now + gap, top.id });
			continue;
		}
		conn_finish(g, c);
		if (g->created < g->opt.connections) {
			conn_init(g, c);
			heap_replace_top(g, (struct heap_item){
				g->now + 1000 + rng_below(&g->rng, g->gap_ns), top.id });
		} else {
			heap_pop(g);
		}
	}
	/* Clients still retransmitting, or done but not yet given up, are in SYN_SENT. */
	for (size_t i = 0; i < g->heap_len; i++) {
		g->ends[F_UNANSWERED_SYN]++;
		count_final(g, S_SYN_SENT, S_CLOSED);
	}
	for (size_t i = 0; i < g->gu_len; i++)
		count_final(g, S_SYN_SENT, S_CLOSED);
	/* What is left in the TIME_WAIT queue is younger than 60 s at the last packet. */
	for (size_t i = 0; i < g->tw_len; i++) {
		const struct tw_entry *e = &g->tw[(g->tw_head + i) % g->tw_cap];
		count_final(g, e->sides & 1 ? S_TIME_WAIT : S_CLOSED,
			    e->sides & 2 ? S_TIME_WAIT : S_CLOSED);
		if (g->now - e->early_ns >= TIME_WAIT_NS)
			g->tw_ambiguous[e->early_side]++;
	}
}

/* ---- truth ------------------------------------------------------------------------ */

static void write_truth(const struct gen *g, FILE *f)
{
	const struct options *o = &g->opt;
	uint64_t conns = 0;
	for (int i = 0; i < F_COUNT; i++)
		conns += g->ends[i];
	uint64_t dur = g->now;
	fprintf(f, "{\n");
	fprintf(f, "  \"generator\": \"tcpstate-gen 2\",\n");
	fputs("  \"file\": \"", f);
	for (const char *p = o->out; *p; p++) {
		if (*p == '"' || *p == '\\')
			fputc('\\', f);
		if ((unsigned char)*p >= 0x20)
			fputc(*p, f);
	}
	fputs("\",\n", f);
	fprintf(f, "  \"seed\": %" PRIu64 ",\n", o->seed);
	fprintf(f, "  \"snaplen\": %u,\n", o->snaplen);
	fprintf(f, "  \"packets\": %" PRIu64 ",\n", g->packets);
	fprintf(f, "  \"file_bytes\": %" PRIu64 ",\n", g->file_bytes);
	fprintf(f, "  \"wire_bytes\": %" PRIu64 ",\n", g->wire_bytes);
	/* As strings too: JSON readers that parse numbers as doubles lose the nanoseconds. */
	fprintf(f, "  \"first_ts\": \"%" PRIu64 ".000000000\",\n", CAPTURE_EPOCH_S);
	fprintf(f, "  \"last_ts\": \"%" PRIu64 ".%09" PRIu64 "\",\n",
		CAPTURE_EPOCH_S + dur / NS_PER_S, dur % NS_PER_S);
	fprintf(f, "  \"first_ts_ns\": %" PRIu64 ",\n", CAPTURE_EPOCH_S * NS_PER_S);
	fprintf(f, "  \"last_ts_ns\": %" PRIu64 ",\n", CAPTURE_EPOCH_S * NS_PER_S + dur);
	fprintf(f, "  \"duration_s\": %.6f,\n", (double)dur / 1e9);
	fprintf(f, "  \"packets_per_s\": %.0f,\n", dur ? (double)g->packets * 1e9 / (double)dur : 0.0);
	fprintf(f, "  \"connections\": %" PRIu64 ",\n", conns);
	fprintf(f, "  \"clients\": %zu,\n", g->nclients);
	fprintf(f, "  \"servers\": %u,\n", o->servers);
	fprintf(f, "  \"client_port_reuses\": %" PRIu64 ",\n", g->port_reuses);
	fprintf(f, "  \"tuple_reuses\": %" PRIu64 ",\n", g->tuple_reuses);
	fprintf(f, "  \"max_active\": %" PRIu64 ",\n", g->max_active);
	fprintf(f, "  \"max_open\": %" PRIu64 ",\n", g->max_open);
	fprintf(f, "  \"max_open_incl_time_wait\": %" PRIu64 ",\n", g->max_open_tw);
	fprintf(f, "  \"time_wait_s\": %" PRIu64 ",\n", TIME_WAIT_NS / NS_PER_S);
	fprintf(f, "  \"time_wait_ambiguous\": { \"client\": %" PRIu64 ", \"server\": %" PRIu64 " },\n",
		g->tw_ambiguous[0], g->tw_ambiguous[1]);
	fprintf(f, "  \"ends\": {");
	for (int i = 0; i < F_COUNT; i++)
		fprintf(f, "%s\n    \"%s\": %" PRIu64, i ? "," : "", fates[i].name, g->ends[i]);
	fprintf(f, "\n  },\n");
	for (int r = 0; r < 2; r++) {
		fprintf(f, "  \"%s\": {", r ? "server" : "client");
		bool first = true;
		for (int s = 0; s < S_COUNT; s++) {
			if (!g->final[r][s])
				continue;
			fprintf(f, "%s\n    \"%s\": %" PRIu64, first ? "" : ",", state_names[s], g->final[r][s]);
			first = false;
		}
		fprintf(f, "\n  },\n");
	}
	fprintf(f, "  \"pairs\": {");
	bool first = true;
	for (int c = 0; c < S_COUNT; c++) {
		for (int s = 0; s < S_COUNT; s++) {
			if (!g->pairs[c][s])
				continue;
			fprintf(f, "%s\n    \"%s/%s\": %" PRIu64, first ? "" : ",",
				state_names[c], state_names[s], g->pairs[c][s]);
			first = false;
		}
	}
	fprintf(f, "\n  }\n}\n");
}

/* ---- options ------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tcpstate-gen -o FILE [options]\n"
		"  --packets N       approximate packets of normal traffic (default 100000)\n"
		"  --connections N   connections (default packets/16)\n"
		"  --concurrent N    connections in progress at once (default min(connections, 1000))\n"
		"  --seed S          random seed (default 1)\n"
		"  --syn-flood N     add N spoofed one-packet SYNs to one server (default 0)\n"
		"  --rate PPS        capture-time packet rate of normal traffic (default 200000)\n"
		"  --flood-rate PPS  capture-time rate of the flood (default 1000000)\n"
		"  --snaplen N       bytes stored per packet, 0 for all (default 96)\n"
		"  --servers N       servers, 1..200 (default 8)\n"
		"  --clients N       initial client addresses; grows when ports run short\n"
		"  --ports N         ephemeral ports per client, 16..16384 (default 1024)\n"
		"  --quiet           no summary on stderr\n"
		"Writes FILE (pcap, nanosecond, Ethernet) and FILE.truth.json.\n");
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;
	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*v = x;
	return true;
}

static bool parse_options(int argc, char **argv, struct options *o)
{
	static const struct {
		const char *name;
		size_t off;
	} nums[] = {
		{ "--packets", offsetof(struct options, packets) },
		{ "--connections", offsetof(struct options, connections) },
		{ "--concurrent", offsetof(struct options, concurrent) },
		{ "--seed", offsetof(struct options, seed) },
		{ "--syn-flood", offsetof(struct options, syn_flood) },
		{ "--rate", offsetof(struct options, rate) },
		{ "--flood-rate", offsetof(struct options, flood_rate) },
		{ "--clients", offsetof(struct options, clients) },
		{ "--ports", offsetof(struct options, ports) },
	};
	uint64_t snaplen = 96, servers = 8;

	memset(o, 0, sizeof(*o));
	o->packets = 100000;
	o->seed = 1;
	o->rate = 200000;
	o->flood_rate = 1000000;
	o->ports = 1024;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool done = false;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		}
		if (!strcmp(a, "--quiet")) {
			o->quiet = true;
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "tcpstate-gen: %s: missing value or unknown option\n", a);
			return false;
		}
		const char *v = argv[++i];
		if (!strcmp(a, "-o")) {
			o->out = v;
			continue;
		}
		for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
			if (strcmp(a, nums[k].name))
				continue;
			if (!parse_u64(v, (uint64_t *)((char *)o + nums[k].off))) {
				fprintf(stderr, "tcpstate-gen: %s: bad number '%s'\n", a, v);
				return false;
			}
			done = true;
		}
		if (!strcmp(a, "--snaplen") || !strcmp(a, "--servers")) {
			if (!parse_u64(v, !strcmp(a, "--snaplen") ? &snaplen : &servers)) {
				fprintf(stderr, "tcpstate-gen: %s: bad number '%s'\n", a, v);
				return false;
			}
			done = true;
		}
		if (!done) {
			fprintf(stderr, "tcpstate-gen: unknown option %s\n", a);
			return false;
		}
	}
	if (!o->out) {
		fprintf(stderr, "tcpstate-gen: -o FILE is required\n");
		return false;
	}
	if (servers < 1 || servers > 200 || o->ports < 16 || o->ports > 16384 || !o->rate ||
	    !o->flood_rate || (snaplen && snaplen < 54) || snaplen > 262144) {
		fprintf(stderr, "tcpstate-gen: option out of range\n");
		return false;
	}
	o->snaplen = snaplen ? (unsigned)snaplen : 262144;
	o->servers = (unsigned)servers;
	if (!o->connections)
		o->connections = o->packets / 16 ? o->packets / 16 : 1;
	if (!o->concurrent)
		o->concurrent = o->connections < 1000 ? o->connections : 1000;
	if (o->concurrent > o->connections)
		o->concurrent = o->connections;
	if (o->concurrent > 10000000) {
		fprintf(stderr, "tcpstate-gen: --concurrent too large\n");
		return false;
	}
	if (!o->clients)
		o->clients = o->concurrent / 8 > 16 ? o->concurrent / 8 : 16;
	return true;
}

static void setup(struct gen *g)
{
	const struct options *o = &g->opt;
	static const uint16_t ports[] = { 443, 80, 22, 5432, 3306, 6379, 8080, 25, 993, 8443 };

	rng_seed(&g->rng, o->seed);
	for (unsigned i = 0; i < o->servers; i++) {
		g->server_ip[i] = 172u << 24 | 16u << 16 | (i / 200) << 8 | (10 + i % 200);
		g->server_port[i] = ports[i % (sizeof(ports) / sizeof(ports[0]))];
	}
	for (uint64_t i = 0; i < o->clients; i++) {
		if (!client_add(g)) {
			fprintf(stderr, "tcpstate-gen: out of memory\n");
			exit(1);
		}
	}
	g->gap_ns = o->concurrent * NS_PER_S / o->rate;
	if (g->gap_ns < 2000)
		g->gap_ns = 2000;
	double ovh = 0, wdata = 0;
	for (int f = 0; f < F_COUNT; f++) {
		ovh += fates[f].weight * fates[f].overhead / 10000.0;
		wdata += fates[f].data ? fates[f].weight / 10000.0 : 0;
	}
	/* Each connection leaves on average ~1 packet of its budget unused. */
	double per_conn = (double)o->packets / (double)o->connections;
	g->data_mean = per_conn > ovh ? (per_conn - ovh) / wdata + 1.0 : 0;
	g->flood_left = o->syn_flood;
	g->flood_gap_ns = NS_PER_S / o->flood_rate ? NS_PER_S / o->flood_rate : 1;
}

int main(int argc, char **argv)
{
	struct gen *g = calloc(1, sizeof(*g));
	if (!g || !parse_options(argc, argv, &g->opt)) {
		if (g)
			usage(stderr);
		free(g);
		return 2;
	}
	g->buf = malloc(OUT_BUF_SIZE);
	g->slots = calloc(g->opt.concurrent, sizeof(*g->slots));
	g->heap = calloc(g->opt.concurrent + 1, sizeof(*g->heap));
	if (!g->buf || !g->slots || !g->heap) {
		fprintf(stderr, "tcpstate-gen: out of memory\n");
		return 1;
	}
	g->f = fopen(g->opt.out, "wb");
	if (!g->f) {
		fprintf(stderr, "tcpstate-gen: %s: %s\n", g->opt.out, strerror(errno));
		return 1;
	}
	setup(g);
	write_file_header(g);
	run(g);
	out_flush(g);
	if (fclose(g->f) != 0 || g->write_error) {
		fprintf(stderr, "tcpstate-gen: %s: write failed\n", g->opt.out);
		return 1;
	}

	size_t n = strlen(g->opt.out) + sizeof(".truth.json");
	char *tpath = malloc(n);
	if (!tpath)
		return 1;
	snprintf(tpath, n, "%s.truth.json", g->opt.out);
	FILE *tf = fopen(tpath, "w");
	if (!tf) {
		fprintf(stderr, "tcpstate-gen: %s: %s\n", tpath, strerror(errno));
		return 1;
	}
	write_truth(g, tf);
	if (fclose(tf) != 0) {
		fprintf(stderr, "tcpstate-gen: %s: write failed\n", tpath);
		return 1;
	}
	if (!g->opt.quiet)
		fprintf(stderr, "tcpstate-gen: %s: %" PRIu64 " packets, %" PRIu64 " connections "
			"(%" PRIu64 " SYN flood), %.3f s of capture, max_active %" PRIu64
			", max_open %" PRIu64 "; truth in %s\n",
			g->opt.out, g->packets, g->created + g->ends[F_SYN_FLOOD],
			g->ends[F_SYN_FLOOD], (double)g->now / 1e9, g->max_active, g->max_open, tpath);

	for (size_t i = 0; i < g->nclients; i++) {
		free(g->clients[i].free_at_s);
		free(g->clients[i].last_server);
	}
	free(g->clients);
	free(g->tw);
	free(g->give_up);
	free(g->heap);
	free(g->slots);
	free(g->buf);
	free(tpath);
	free(g);
	return 0;
}
