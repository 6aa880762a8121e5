/* test_analyses.c - the troubleshooting reports on hand-built captures: the
 * tracker and the analyses wired as run.c wires them, the findings read
 * back from the JSON Lines (and the text) they write. Every expected figure
 * is worked out from the construction (comments say how), never copied from
 * tcpstate's output. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <unistd.h>

#include "analyses.h"
#include "output.h"
#include "segment.h"
#include "test.h"
#include "tracker.h"

/* ---- the pipeline (as in run.c) ---- */

struct h {
	struct tracker *t;
	struct analyses *a;
	uint64_t number;
	uint64_t ref;          /* 0 while reading: retired connections use their last packet */
	uint64_t last_ts;
	char *json, *text;
};

static bool h_retired(void *ctx, struct conn *c)
{
	struct h *h = ctx;

	analyses_conn_final(h->a, c, h->ref ? h->ref : c->last_ns);
	return false;
}

static void h_segment(void *ctx, const struct conn *c, int s, const struct packet *p)
{
	analyses_segment(((struct h *)ctx)->a, c, s, p);
}

static void h_state(void *ctx, const struct conn *c, const struct transition *t)
{
	analyses_state(((struct h *)ctx)->a, c, t);
}

static void h_anomaly(void *ctx, const struct conn *c, const struct packet *p, enum anomaly_kind k)
{
	analyses_anomaly(((struct h *)ctx)->a, c, p, k);
}

static struct analyses_config default_cfg(void)
{
	struct analyses_config ac = {
		.close_wait_after_ns = DEFAULT_CLOSE_WAIT_AFTER_S * S,
		.vanished_after_ns = DEFAULT_VANISHED_AFTER_S * S,
		.interval_ns = S,
		.syn_rate = DEFAULT_SYN_RATE,
		.syn_incomplete = DEFAULT_SYN_INCOMPLETE,
		.syn_buckets = DEFAULT_SYN_BUCKETS,
		.tw_warn = DEFAULT_TW_WARN,
	};
	return ac;
}

static void h_init(struct h *h, const struct analyses_config *ac)
{
	struct tracker_config tc = { .time_wait_ns = 60 * S, .linger_ns = 5 * S };
	struct tracker_sink sk = {
		.ctx = h, .retired = h_retired, .segment = h_segment, .state_changed = h_state,
		.anomaly = h_anomaly,
	};

	memset(h, 0, sizeof(*h));
	h->a = analyses_create(ac);
	h->t = tracker_create(&tc, &sk);
}

static char *slurp_output(struct analyses *a, bool json)
{
	char path[] = "/tmp/tcpstate-test-analyses-XXXXXX";
	int fd = mkstemp(path);
	struct out *o = out_create(fd);
	off_t len;
	char *buf;

	if (json)
		analyses_write_json(a, o, SEC_ALL);
	else
		analyses_write_text(a, o, SEC_ALL, false);
	out_destroy(o);
	len = lseek(fd, 0, SEEK_END);
	buf = calloc(1, (size_t)len + 1);
	lseek(fd, 0, SEEK_SET);
	if (buf && read(fd, buf, (size_t)len) != len)
		buf[0] = 0;
	close(fd);
	unlink(path);
	return buf;
}

/* Reference time ref (ns after T0): settle, finish, and read the reports. */
static void h_finish(struct h *h, uint64_t ref)
{
	h->ref = T0 + ref;
	tracker_finish(h->t, h->ref);
	analyses_finish(h->a, h->ref);
	h->json = slurp_output(h->a, true);
	h->text = slurp_output(h->a, false);
	if (getenv("TEST_ANALYSES_DUMP")) /* to see what a failing case wrote */
		fprintf(stderr, "----\n%s%s", h->json ? h->json : "", h->text ? h->text : "");
}

static void h_free(struct h *h)
{
	tracker_destroy(h->t);
	analyses_destroy(h->a);
	free(h->json);
	free(h->text);
}

static void mkpacket(struct packet *p, const char *src, uint16_t sport, const char *dst, uint16_t dport,
		     uint8_t flags, uint32_t seq, uint32_t ack, uint32_t len, uint64_t t)
{
	memset(p, 0, sizeof(*p));
	p->family = 4;
	p->ts_ns = T0 + t;
	inet_pton(AF_INET, src, p->src);
	inet_pton(AF_INET, dst, p->dst);
	p->sport = sport;
	p->dport = dport;
	p->flags = flags;
	p->seq = seq;
	p->ack = ack;
	p->payload_len = len;
	p->window = 65535;
}

static void pk(struct h *h, const char *src, uint16_t sport, const char *dst, uint16_t dport,
	       uint8_t flags, uint32_t seq, uint32_t ack, uint32_t len, uint64_t t)
{
	struct packet p;

	mkpacket(&p, src, sport, dst, dport, flags, seq, ack, len, t);
	p.number = ++h->number;
	if (t < h->last_ts)
		fprintf(stderr, "test bug: packet %llu goes back in time\n", (unsigned long long)p.number);
	h->last_ts = t;
	tracker_packet(h->t, &p);
}

/* One connection: client ISN 1000, server ISN 5000; cs/ss are the next
 * sequence numbers each side sends. */
struct flow {
	const char *ca, *sa;
	uint16_t cp, sp;
	uint32_t cs, ss;
};

static struct flow flow(const char *ca, uint16_t cp, const char *sa, uint16_t sp)
{
	struct flow f = { .ca = ca, .sa = sa, .cp = cp, .sp = sp, .cs = 1000, .ss = 5000 };
	return f;
}

#define CPK(h, f, fl, len, t) pk(h, (f)->ca, (f)->cp, (f)->sa, (f)->sp, fl, (f)->cs, (f)->ss, len, t)
#define SPK(h, f, fl, len, t) pk(h, (f)->sa, (f)->sp, (f)->ca, (f)->cp, fl, (f)->ss, (f)->cs, len, t)

static void c_syn(struct h *h, struct flow *f, uint64_t t)
{
	pk(h, f->ca, f->cp, f->sa, f->sp, SYN, 1000, 0, 0, t);
	f->cs = 1001;
}

static void s_synack(struct h *h, struct flow *f, uint64_t t)
{
	pk(h, f->sa, f->sp, f->ca, f->cp, SA, 5000, 1001, 0, t);
	f->ss = 5001;
}

/* SYN at t, SYN-ACK at t+1 ms, ACK at t+2 ms. */
static void open3(struct h *h, struct flow *f, uint64_t t)
{
	c_syn(h, f, t);
	s_synack(h, f, t + MS);
	CPK(h, f, A, 0, t + 2 * MS);
}

static void c_data(struct h *h, struct flow *f, uint32_t len, uint64_t t)
{
	CPK(h, f, PA, len, t);
	f->cs += len;
}

static void s_data(struct h *h, struct flow *f, uint32_t len, uint64_t t)
{
	SPK(h, f, PA, len, t);
	f->ss += len;
}

static void c_ack(struct h *h, struct flow *f, uint64_t t) { CPK(h, f, A, 0, t); }
static void s_ack(struct h *h, struct flow *f, uint64_t t) { SPK(h, f, A, 0, t); }

static void c_fin(struct h *h, struct flow *f, uint64_t t)
{
	CPK(h, f, FA, 0, t);
	f->cs++;
}

static void s_fin(struct h *h, struct flow *f, uint64_t t)
{
	SPK(h, f, FA, 0, t);
	f->ss++;
}

/* Client closes first at t: FIN, ACK, server FIN at t+2 ms (client enters
 * TIME_WAIT then), last ACK. */
static void close_client_first(struct h *h, struct flow *f, uint64_t t)
{
	c_fin(h, f, t);
	s_ack(h, f, t + MS);
	s_fin(h, f, t + 2 * MS);
	c_ack(h, f, t + 3 * MS);
}

static void close_server_first(struct h *h, struct flow *f, uint64_t t)
{
	s_fin(h, f, t);
	c_ack(h, f, t + MS);
	c_fin(h, f, t + 2 * MS);
	s_ack(h, f, t + 3 * MS);
}

/* ---- reading the JSON Lines back ---- */

/* The first line of buf holding every needle (NULLs end the list); a static copy. */
static const char *line_with(const char *buf, const char *n1, const char *n2, const char *n3)
{
	static char line[8192];
	const char *p = buf;

	while (p && *p) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len < sizeof(line)) {
			memcpy(line, p, len);
			line[len] = 0;
			if ((!n1 || strstr(line, n1)) && (!n2 || strstr(line, n2)) && (!n3 || strstr(line, n3)))
				return line;
		}
		p = e ? e + 1 : NULL;
	}
	return NULL;
}

static int count_lines(const char *buf, const char *n1, const char *n2, const char *n3)
{
	int n = 0;
	const char *p = buf;

	while (p && *p) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		char *line = strndup(p, len);

		if (line && (!n1 || strstr(line, n1)) && (!n2 || strstr(line, n2)) && (!n3 || strstr(line, n3)))
			n++;
		free(line);
		p = e ? e + 1 : NULL;
	}
	return n;
}

/* The number after "key": in line (first occurrence); -1 when absent. */
static double jnum(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	if (!line)
		return -1;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	return p ? strtod(p + strlen(pat), NULL) : -1;
}

#define CHECK_HAS(line, needle) do { \
	const char *l_ = (line); \
	test_checks++; \
	if (!l_ || !strstr(l_, needle)) { \
		fprintf(stderr, "%s:%d: %s lacks %s\n  line: %s\n", __FILE__, __LINE__, #line, needle, \
			l_ ? l_ : "(none)"); \
		test_failures++; \
	} \
} while (0)

#define CHECK_NUM(line, key, want) CHECK_EQ_INT((long long)(jnum(line, key) * 1e6 + 0.5), \
						 (long long)((want) * 1e6 + 0.5))

/* ==== 1. stuck CLOSE_WAIT ==== */

/* A client that closes at tf (FIN; the server ACKs 1 ms later) after a little
 * request/response; the server never closes. With send_after, the server
 * keeps sending 500 + 300 bytes after the FIN (a half-close in use). */
static void leak(struct h *h, const char *ca, uint16_t cp, const char *sa, uint16_t sp, uint64_t tf,
		 bool send_after)
{
	struct flow f = flow(ca, cp, sa, sp);

	open3(h, &f, tf - 200 * MS);
	c_data(h, &f, 20, tf - 100 * MS);
	s_data(h, &f, 100, tf - 99 * MS);
	c_ack(h, &f, tf - 98 * MS);
	c_fin(h, &f, tf);
	s_ack(h, &f, tf + MS);
	if (send_after) {
		s_data(h, &f, 500, tf + S / 2);
		c_ack(h, &f, tf + S / 2 + MS);
		s_data(h, &f, 300, tf + S / 2 + 100 * MS);
		c_ack(h, &f, tf + S / 2 + 101 * MS);
	}
}

static void test_close_wait(void)
{
	struct analyses_config ac = default_cfg();
	struct h h;
	const char *l;

	h_init(&h, &ac);
	/* Reference T0+10000 s, stuck after 60 s. Service 10.0.0.2:8080:
	 *   silent: FIN at 1000 s (age 9000 s, >1h), 8000/8001 s (2000/1999 s,
	 *           10m-1h), 9800/9801 s (200/199 s, 1-10m)
	 *   sending after the FIN: 9900/9901 s (100/99 s, 1-10m), 800 bytes each
	 *   fresh: 9970 s (30 s: not stuck)
	 * Service 10.0.0.3:9000: one silent at 5000 s (5000 s). */
	leak(&h, "10.0.1.1", 40001, "10.0.0.2", 8080, 1000 * S, false);
	leak(&h, "10.0.1.9", 40009, "10.0.0.3", 9000, 5000 * S, false);
	leak(&h, "10.0.1.2", 40002, "10.0.0.2", 8080, 8000 * S, false);
	leak(&h, "10.0.1.3", 40003, "10.0.0.2", 8080, 8001 * S, false);
	leak(&h, "10.0.1.4", 40004, "10.0.0.2", 8080, 9800 * S, false);
	leak(&h, "10.0.1.5", 40005, "10.0.0.2", 8080, 9801 * S, false);
	leak(&h, "10.0.1.6", 40006, "10.0.0.2", 8080, 9900 * S, true);
	leak(&h, "10.0.1.7", 40007, "10.0.0.2", 8080, 9901 * S, true);
	leak(&h, "10.0.1.8", 40008, "10.0.0.2", 8080, 9970 * S, false);
	h_finish(&h, 10000 * S);

	l = line_with(h.json, "\"type\":\"close_wait_group\"", "\"port\":8080", NULL);
	CHECK_HAS(l, "\"service\":{\"addr\":\"10.0.0.2\",\"port\":8080}");
	CHECK_NUM(l, "count", 7);
	CHECK_NUM(l, "silent", 5);
	CHECK_NUM(l, "sending", 2);
	CHECK_NUM(l, "peer_fin_wait_2", 7);
	CHECK_NUM(l, "oldest_since", 1700001000.0);
	CHECK_NUM(l, "oldest_age", 9000.0);
	CHECK_HAS(l, "\"ages\":{\"lt_1m\":0,\"1m_10m\":4,\"10m_1h\":2,\"gt_1h\":1}");
	l = line_with(h.json, "\"type\":\"close_wait_group\"", "\"port\":9000", NULL);
	CHECK_NUM(l, "count", 1);
	CHECK_NUM(l, "oldest_age", 5000.0);
	CHECK_EQ_INT(count_lines(h.json, "\"type\":\"close_wait_group\"", NULL, NULL), 2);
	/* One record per stuck endpoint: 7 + 1; the fresh one is not stuck. */
	CHECK_EQ_INT(count_lines(h.json, "\"type\":\"close_wait\"", NULL, NULL), 8);
	CHECK_EQ_INT(count_lines(h.json, "\"type\":\"close_wait\"", "\"port\":40008", NULL), 0);
	l = line_with(h.json, "\"type\":\"close_wait\"", "\"peer\":{\"addr\":\"10.0.1.6\"", NULL);
	CHECK_HAS(l, "\"endpoint\":{\"addr\":\"10.0.0.2\",\"port\":8080}");
	CHECK_NUM(l, "since", 1700009900.0);
	CHECK_NUM(l, "age", 100.0);
	CHECK_NUM(l, "bytes_after_fin", 800);
	CHECK_HAS(l, "\"peer_state\":\"FIN_WAIT_2\"");
	l = line_with(h.json, "\"type\":\"close_wait\"", "\"peer\":{\"addr\":\"10.0.1.1\"", NULL);
	CHECK_NUM(l, "bytes_after_fin", 0);
	CHECK_NUM(l, "age", 9000.0);
	/* FIN_WAIT_2 counted too: the 8 clients whose FIN was ACKed over 60 s
	 * ago (since = the server's ACK, 1 ms after the FIN). */
	CHECK_EQ_INT(count_lines(h.json, "\"type\":\"fin_wait_2\"", NULL, NULL), 8);
	l = line_with(h.json, "\"type\":\"fin_wait_2\"", "\"addr\":\"10.0.1.4\"", NULL);
	CHECK_NUM(l, "since", 1700009800.001);
	CHECK_HAS(l, "\"peer_state\":\"CLOSE_WAIT\"");
	/* The text leads with the worst group. */
	l = strstr(h.text, "STUCK CLOSE_WAIT");
	CHECK(l != NULL);
	if (l) {
		l = strchr(l, '\n');
		CHECK(l && !strncmp(l + 1, "  10.0.0.2:8080 holds 7 connections in CLOSE_WAIT, oldest 2h30m, "
				    "5 silent since the peer's FIN\n", 94));
	}
	CHECK(strstr(h.text, "  10.0.0.3:9000 holds 1 connection in CLOSE_WAIT, oldest 1h23m, 1 silent") != NULL);
	CHECK(strstr(h.text, "also 8 endpoints stuck in FIN_WAIT_2") != NULL);
	CHECK(strstr(h.text, "ss -tanp state close-wait '( sport = :8080 )'") != NULL);
	/* Nothing here is half-open, flooded, or anomalous. */
	CHECK_EQ_INT(count_lines(h.json, "\"type\":\"half_open\"", NULL, NULL), 0);
	CHECK_EQ_INT(count_lines(h.json, "\"type\":\"anomaly\"", NULL, NULL), 0);
	h_free(&h);
}

/* ==== 2. half-open, one kind each ==== */

static void test_half_open(void)
{
	struct analyses_config ac = default_cfg();
	struct h h;
	struct flow f;
	const char *l;

	h_init(&h, &ac);
	/* Reference T0+100 s. */

	/* peer_vanished: established at 10 s, one exchange, then from 20 s the
	 * server sends 100 bytes and retransmits them at 20.2, 20.6, 21.4 s;
	 * the client's last segment is its ACK at 10.5 s: silent 89.5 s > 30 s. */
	f = flow("10.0.2.1", 41001, "10.0.0.2", 80);
	open3(&h, &f, 10 * S);
	c_data(&h, &f, 10, 10 * S + 400 * MS);
	s_ack(&h, &f, 10 * S + 401 * MS);
	s_data(&h, &f, 10, 10 * S + 450 * MS);
	c_ack(&h, &f, 10 * S + 500 * MS);
	SPK(&h, &f, PA, 100, 20 * S);
	SPK(&h, &f, PA, 100, 20 * S + 200 * MS);
	SPK(&h, &f, PA, 100, 20 * S + 600 * MS);
	SPK(&h, &f, PA, 100, 21 * S + 400 * MS);

	/* peer_lost_state: established at 30 s; at 40 s the client sends data
	 * and the server answers RST without ACK, seq = the client's ACK
	 * (RFC 793: it has no socket). Packet number of the RST kept. */
	f = flow("10.0.2.2", 41002, "10.0.0.2", 80);
	open3(&h, &f, 30 * S);
	c_data(&h, &f, 50, 40 * S);
	pk(&h, f.sa, f.sp, f.ca, f.cp, R, f.ss, 0, 0, 40 * S + MS);
	uint64_t rst_packet = h.number;

	/* one_side_closed: established at 50 s; the client application aborts
	 * at 60 s (RST+ACK) with a sequence number the server cannot accept
	 * (out of its window: ignored), and the server keeps sending at 61 s
	 * and 62 s. */
	f = flow("10.0.2.3", 41003, "10.0.0.2", 80);
	open3(&h, &f, 50 * S);
	pk(&h, f.ca, f.cp, f.sa, f.sp, RA, f.cs + 0x40000000u, f.ss, 0, 60 * S);
	s_data(&h, &f, 10, 61 * S);
	s_data(&h, &f, 10, 62 * S);

	/* syn_unanswered: SYNs at 96.5, 97.5, 98.5 s (linear retransmissions:
	 * the next is due at 99.5 s, so the client is still trying at 100 s). */
	f = flow("10.0.2.4", 41004, "10.0.0.2", 5432);
	c_syn(&h, &f, 96 * S + 500 * MS);
	c_syn(&h, &f, 97 * S + 500 * MS);
	c_syn(&h, &f, 98 * S + 500 * MS);

	/* handshake_incomplete: SYN at 98.6 s, SYN-ACK at 98.601 and again at
	 * 99.601 s, no ACK: the server holds a request since the SYN at 98.6 s. */
	f = flow("10.0.2.5", 41005, "10.0.0.2", 443);
	c_syn(&h, &f, 98 * S + 600 * MS);
	s_synack(&h, &f, 98 * S + 601 * MS);
	s_synack(&h, &f, 99 * S + 601 * MS);
	h_finish(&h, 100 * S);

	CHECK_EQ_INT(count_lines(h.json, "\"type\":\"half_open\"", NULL, NULL), 5);
	l = line_with(h.json, "\"kind\":\"peer_vanished\"", NULL, NULL);
	CHECK_HAS(l, "\"endpoint\":{\"addr\":\"10.0.0.2\",\"port\":80},\"peer\":{\"addr\":\"10.0.2.1\",\"port\":41001}");
	CHECK_HAS(l, "\"peer_state\":\"ESTABLISHED\"");
	CHECK_NUM(l, "since", 1700000010.5);
	CHECK_NUM(l, "age", 89.5);
	CHECK_NUM(l, "segments", 4);

	l = line_with(h.json, "\"kind\":\"peer_lost_state\"", NULL, NULL);
	CHECK_HAS(l, "\"endpoint\":{\"addr\":\"10.0.0.2\",\"port\":80},\"peer\":{\"addr\":\"10.0.2.2\",\"port\":41002}");
	CHECK_HAS(l, "\"peer_state\":\"ESTABLISHED\"");
	CHECK_NUM(l, "since", 1700000040.001);
	CHECK_NUM(l, "age", 59.999);
	CHECK_NUM(l, "rst_packet", (double)rst_packet);

	l = line_with(h.json, "\"kind\":\"one_side_closed\"", NULL, NULL);
	CHECK_HAS(l, "\"endpoint\":{\"addr\":\"10.0.0.2\",\"port\":80},\"peer\":{\"addr\":\"10.0.2.3\",\"port\":41003}");
	CHECK_HAS(l, "\"peer_state\":\"CLOSED\"");
	CHECK_NUM(l, "since", 1700000060.0);
	CHECK_NUM(l, "segments", 2);

	l = line_with(h.json, "\"kind\":\"syn_unanswered\"", NULL, NULL);
	CHECK_HAS(l, "\"endpoint\":{\"addr\":\"10.0.2.4\",\"port\":41004},\"peer\":{\"addr\":\"10.0.0.2\",\"port\":5432}");
	CHECK_NUM(l, "since", 1700000096.5);
	CHECK_NUM(l, "age", 3.5);
	CHECK_NUM(l, "segments", 3);

	l = line_with(h.json, "\"kind\":\"handshake_incomplete\"", NULL, NULL);
	CHECK_HAS(l, "\"endpoint\":{\"addr\":\"10.0.0.2\",\"port\":443},\"peer\":{\"addr\":\"10.0.2.5\",\"port\":41005}");
	CHECK_NUM(l, "since", 1700000098.6);
	CHECK_NUM(l, "segments", 2);

	CHECK(strstr(h.text, "HALF-OPEN CONNECTIONS (5)") != NULL);
	CHECK(strstr(h.text, "  peer_lost_state: 1\n") != NULL);
	h_free(&h);
}

/* A peer that lost its state answers every retransmission with an RST:
 * still one half-open connection, not one per RST. And an RST the other
 * side cannot accept (out of its window) leaves it as it was: ESTABLISHED. */
static void test_lost_state_once(void)
{
	struct analyses_config ac = default_cfg();
	struct h h;
	struct flow f;
	const char *l;

	h_init(&h, &ac);
	f = flow("10.0.2.2", 41002, "10.0.0.2", 80);
	open3(&h, &f, 0);
	CPK(&h, &f, PA, 50, S);
	pk(&h, f.sa, f.sp, f.ca, f.cp, R, f.ss, 0, 0, S + MS);
	CPK(&h, &f, PA, 50, S + 300 * MS);   /* the RST was lost on the way: again */
	pk(&h, f.sa, f.sp, f.ca, f.cp, R, f.ss, 0, 0, S + 301 * MS);
	f = flow("10.0.2.3", 41003, "10.0.0.2", 80);
	open3(&h, &f, 2 * S);
	CPK(&h, &f, PA, 50, 3 * S);
	pk(&h, f.sa, f.sp, f.ca, f.cp, R, f.ss + 0x40000000u, 0, 0, 3 * S + MS);
	h_finish(&h, 4 * S);
	CHECK_EQ_INT(count_lines(h.json, "\"kind\":\"peer_lost_state\"", NULL, NULL), 2);
	l = line_with(h.json, "\"kind\":\"peer_lost_state\"", "\"port\":41002", NULL);
	CHECK_NUM(l, "since", 1700000001.001);
	CHECK_HAS(l, "\"peer_state\":\"ESTABLISHED\"");
	l = line_with(h.json, "\"kind\":\"peer_lost_state\"", "\"port\":41003", NULL);
	CHECK_HAS(l, "\"peer_state\":\"ESTABLISHED\"");
	h_free(&h);
}

/* The client's handshake ACK is captured but never reaches the server (it
 * retransmits its SYN-ACK 1 s later, and again 2 s after that): the server
 * holds the request since the SYN at 10 s, whatever the tracker undid. */
static void test_handshake_incomplete_since(void)
{
	struct analyses_config ac = default_cfg();
	struct h h;
	struct flow f;
	const char *l;

	h_init(&h, &ac);
	f = flow("10.0.2.6", 41006, "10.0.0.2", 443);
	open3(&h, &f, 10 * S);                     /* SYN 10 s, SYN-ACK, ACK 10.002 s */
	pk(&h, f.sa, f.sp, f.ca, f.cp, SA, 5000, 1001, 0, 11 * S + MS);
	c_ack(&h, &f, 11 * S + 2 * MS);
	pk(&h, f.sa, f.sp, f.ca, f.cp, SA, 5000, 1001, 0, 13 * S + MS);
	c_ack(&h, &f, 13 * S + 2 * MS);
	h_finish(&h, 14 * S);
	l = line_with(h.json, "\"kind\":\"handshake_incomplete\"", NULL, NULL);
	CHECK_NUM(l, "since", 1700000010.0);
	CHECK_NUM(l, "age", 4.0);
	CHECK_NUM(l, "segments", 3);
	/* The handshake never completed: the listener accepted nothing. */
	l = line_with(h.json, "\"type\":\"listener\"", "\"port\":443}", NULL);
	CHECK_NUM(l, "accepted", 0);
	h_free(&h);
}

/* ==== 3. SYN floods ==== */

/* Segments built out of order and fed sorted by time (stable). */
struct evq {
	struct packet *v;
	size_t n, cap;
};

static void ev(struct evq *q, const char *src, uint16_t sport, const char *dst, uint16_t dport,
	       uint8_t flags, uint32_t seq, uint32_t ack, uint64_t t)
{
	if (q->n == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 1024;
		q->v = realloc(q->v, q->cap * sizeof(*q->v));
	}
	mkpacket(&q->v[q->n], src, sport, dst, dport, flags, seq, ack, 0, t);
	q->v[q->n].number = q->n; /* insertion order breaks ties */
	q->n++;
}

static int ev_cmp(const void *x, const void *y)
{
	const struct packet *p = x, *q = y;

	if (p->ts_ns != q->ts_ns)
		return p->ts_ns < q->ts_ns ? -1 : 1;
	return p->number < q->number ? -1 : p->number > q->number;
}

static void evq_run(struct h *h, struct evq *q)
{
	qsort(q->v, q->n, sizeof(*q->v), ev_cmp);
	for (size_t i = 0; i < q->n; i++) {
		q->v[i].number = ++h->number;
		tracker_packet(h->t, &q->v[i]);
	}
	free(q->v);
	memset(q, 0, sizeof(*q));
}

/* A completed handshake (SYN, SYN-ACK, ACK) and a close by the client. */
static void ev_good(struct evq *q, const char *ca, uint16_t cp, const char *sa, uint16_t sp, uint64_t t)
{
	ev(q, ca, cp, sa, sp, SYN, 1000, 0, t);
	ev(q, sa, sp, ca, cp, SA, 5000, 1001, t + 100000);
	ev(q, ca, cp, sa, sp, A, 1001, 5001, t + 200000);
	ev(q, ca, cp, sa, sp, FA, 1001, 5001, t + 300000);
	ev(q, sa, sp, ca, cp, FA, 5001, 1002, t + 400000);
	ev(q, ca, cp, sa, sp, A, 1002, 5002, t + 500000);
}

/* A spoofed SYN answered by a SYN-ACK (retransmitted after rexmit_ns unless 0),
 * or not answered at all (answered = false). */
static void ev_spoof(struct evq *q, const char *ca, uint16_t cp, const char *sa, uint16_t sp, uint64_t t,
		     bool answered, uint64_t rexmit_ns)
{
	ev(q, ca, cp, sa, sp, SYN, 7000, 0, t);
	if (answered)
		ev(q, sa, sp, ca, cp, SA, 9000, 7001, t + 100000);
	if (answered && rexmit_ns)
		ev(q, sa, sp, ca, cp, SA, 9000, 7001, t + 100000 + rexmit_ns);
}

/* Buckets 0-4 of the flood below: 10 good connections in bucket 0, then
 * 155 SYNs a bucket, every 6 ms, 5 good connections and 150 spoofed SYNs
 * answered by cookies. */
static void flood_buckets(struct evq *q)
{
	char src[32];

	for (int i = 0; i < 10; i++)
		ev_good(q, "10.0.0.50", (uint16_t)(20000 + i), "10.0.0.2", 80, (uint64_t)i * 50 * MS);
	for (int b = 1; b <= 4; b++)
		for (int k = 0; k < 155; k++) {
			uint64_t t = (uint64_t)b * S + (uint64_t)k * 6 * MS;

			if (k % 31 == 0) {
				ev_good(q, "10.0.0.50", (uint16_t)(21000 + b * 200 + k), "10.0.0.2", 80, t);
			} else {
				snprintf(src, sizeof(src), "198.51.100.%d", k);
				ev_spoof(q, src, (uint16_t)(1024 + b * 200 + k), "10.0.0.2", 80, t, true, 0);
			}
		}
}

static void test_syn_flood_alert(void)
{
	struct analyses_config ac = default_cfg();
	struct evq q = { 0 };
	struct h h;
	const char *l;

	h_init(&h, &ac);
	/* Origin T0 (first packet): buckets [T0+k s, T0+k+1 s).
	 * bucket 0: 10 good connections to 10.0.0.2:80 (below 100 SYNs/s)
	 * buckets 1-4: 155 SYNs each, every 6 ms: 5 good ones (k % 31 == 0)
	 *   and 150 spoofed from 198.51.100.0/24, each SYN-ACKed once and never
	 *   again (cookies): 97 % never complete -> suspicious, 4 in a row
	 * bucket 5: 20 good connections: ends the streak.
	 * Alert: start T0+1, end T0+5, 620 SYNs, 20 completed, peak 155/s,
	 * 620 SYN-ACKs none retransmitted -> cookies; nothing unanswered. */
	flood_buckets(&q);
	for (int i = 0; i < 20; i++)
		ev_good(&q, "10.0.0.50", (uint16_t)(23000 + i), "10.0.0.2", 80, 5 * S + (uint64_t)i * 40 * MS);
	evq_run(&h, &q);
	h_finish(&h, 10 * S);

	CHECK_EQ_INT(count_lines(h.json, "\"type\":\"syn_flood\"", NULL, NULL), 1);
	l = line_with(h.json, "\"type\":\"syn_flood\"", NULL, NULL);
	CHECK_HAS(l, "\"target\":{\"addr\":\"10.0.0.2\",\"port\":80}");
	CHECK_NUM(l, "start", 1700000001.0);
	CHECK_NUM(l, "end", 1700000005.0);
	CHECK_NUM(l, "syns", 620);
	CHECK_NUM(l, "completed", 20);
	CHECK_NUM(l, "completion_ratio", 0.0323);
	CHECK_NUM(l, "peak_rate", 155.0);
	CHECK_NUM(l, "synacks", 620);
	CHECK_NUM(l, "synacks_retransmitted", 0);
	CHECK_NUM(l, "unanswered", 0);
	/* No spoofed SYN-ACK was retransmitted: no request was held (cookies), so
	 * nothing was half-open, although it took the tracker 2 s to know. */
	CHECK_NUM(l, "half_open_peak", 0);
	CHECK_HAS(l, "\"syn_cookies\":true");
	CHECK_HAS(l, "\"backlog_full\":false");
	/* 150 spoofed addresses + the good client: HyperLogLog within 10 %. */
	CHECK(jnum(l, "sources") >= 136 && jnum(l, "sources") <= 166);
	CHECK_HAS(l, "\"top_prefixes\":[{\"prefix\":\"198.51.100.0/24\"");
	/* The time series: one syn_rate record per bucket of the alert. */
	CHECK_EQ_INT(count_lines(h.json, "\"type\":\"syn_rate\"", NULL, NULL), 4);
	l = line_with(h.json, "\"type\":\"syn_rate\"", "\"ts\":1700000003.000000", NULL);
	CHECK_NUM(l, "syns", 155);
	CHECK_NUM(l, "completed", 5);
	CHECK_NUM(l, "synacks", 155);
	CHECK_NUM(l, "half_open", 0);
	CHECK(strstr(h.text, "SYN FLOOD ALERTS (1;") != NULL);
	CHECK(strstr(h.text, "10.0.0.2:80 from ") != NULL);
	CHECK(strstr(h.text, "620 SYNs, peak 155/s") != NULL);
	CHECK(strstr(h.text, "SYN cookies: likely") != NULL);
	/* Listener: 10 + 20 + 20 completed, 650 SYNs in all. */
	l = line_with(h.json, "\"type\":\"listener\"", "\"port\":80}", NULL);
	CHECK_NUM(l, "accepted", 50);
	CHECK_NUM(l, "syns", 650);
	h_free(&h);
}

/* Without cookies: a backlog of 100 requests per bucket, whose SYN-ACKs are
 * retransmitted 500 ms later; the other 100 SYNs of each bucket get no
 * answer (a full backlog). The flood runs to the end of the capture. */
static void test_syn_flood_backlog(bool trailing)
{
	struct analyses_config ac = default_cfg();
	struct evq q = { 0 };
	struct h h;
	const char *l;
	char src[32];

	h_init(&h, &ac);
	for (int b = 0; b < 3; b++)
		for (int k = 0; k < 200; k++) {
			uint64_t t = (uint64_t)b * S + (uint64_t)k * 4 * MS;

			snprintf(src, sizeof(src), "203.0.113.%d", k);
			ev_spoof(&q, src, (uint16_t)(2000 + b * 200 + k), "10.0.0.3", 80, t, k < 100,
				 500 * MS);
		}
	/* With trailing: a quiet bucket later ends the alert while reading. */
	if (trailing)
		ev_good(&q, "10.0.0.50", 30000, "10.0.0.3", 80, 4 * S);
	evq_run(&h, &q);
	h_finish(&h, trailing ? 5 * S : 3 * S);

	l = line_with(h.json, "\"type\":\"syn_flood\"", NULL, NULL);
	CHECK_NUM(l, "start", 1700000000.0);
	CHECK_NUM(l, "end", 1700000003.0);
	CHECK_NUM(l, "syns", 600);
	CHECK_NUM(l, "synacks", 300);
	CHECK_NUM(l, "synacks_retransmitted", 300);
	CHECK_NUM(l, "unanswered", 300);
	CHECK_NUM(l, "completed", 0);
	CHECK_NUM(l, "completion_ratio", 0);
	CHECK_HAS(l, "\"syn_cookies\":false");
	CHECK_HAS(l, "\"backlog_full\":true");
	/* Listener: the spoofed SYNs without a SYN-ACK are unanswered, although
	 * their senders never retransmitted (no socket: syn_sender_silent). */
	l = line_with(h.json, "\"type\":\"listener\"", "\"port\":80}", NULL);
	CHECK_NUM(l, "unanswered", 300);
	CHECK_NUM(l, "accepted", trailing ? 1 : 0);
	h_free(&h);
}

/* Thresholds: each must hold for syn_buckets buckets in a row. */
static int flood_alerts(int buckets, int syns, int complete, uint32_t need)
{
	struct analyses_config ac = default_cfg();
	struct evq q = { 0 };
	struct h h;
	int n;
	char src[32];

	ac.syn_buckets = need;
	h_init(&h, &ac);
	for (int b = 0; b < buckets; b++)
		for (int k = 0; k < syns; k++) {
			uint64_t t = (uint64_t)b * S + (uint64_t)k * (900 * MS / (uint64_t)syns);

			snprintf(src, sizeof(src), "198.18.%d.%d", b, k % 250);
			if (k < complete)
				ev_good(&q, src, (uint16_t)(10000 + b * 1000 + k), "10.0.0.4", 80, t);
			else
				ev_spoof(&q, src, (uint16_t)(10000 + b * 1000 + k), "10.0.0.4", 80, t, true, 0);
		}
	/* A quiet bucket closes the last one while reading. */
	ev_good(&q, "10.0.0.50", 30000, "10.0.0.4", 80, (uint64_t)(buckets + 1) * S);
	evq_run(&h, &q);
	h_finish(&h, (uint64_t)(buckets + 2) * S);
	n = count_lines(h.json, "\"type\":\"syn_flood\"", NULL, NULL);
	h_free(&h);
	return n;
}

static void test_syn_thresholds(void)
{
	/* 100 SYNs/s, 80 % incomplete, 3 buckets (the defaults). */
	CHECK_EQ_INT(flood_alerts(3, 150, 0, 3), 1);
	CHECK_EQ_INT(flood_alerts(2, 150, 0, 3), 0);     /* too short */
	CHECK_EQ_INT(flood_alerts(3, 150, 0, 2), 1);
	CHECK_EQ_INT(flood_alerts(5, 99, 0, 3), 0);      /* 99/s: under the rate */
	CHECK_EQ_INT(flood_alerts(3, 100, 0, 3), 1);     /* exactly 100/s */
	CHECK_EQ_INT(flood_alerts(3, 151, 30, 3), 1);    /* 80.1 % never complete */
	CHECK_EQ_INT(flood_alerts(3, 151, 31, 3), 0);    /* 79.5 % */
}

/* A flood over 6 buckets, and one real client whose handshake ACK was first
 * not accepted (SYN-ACK retransmitted at 1.5 s) and whose second ACK the
 * tracker confirms only at 4.2 s: one completion, counted once, and one
 * alert, not broken by a completion dated in an earlier bucket. */
static void test_late_completion(void)
{
	struct analyses_config ac = default_cfg();
	struct evq q = { 0 };
	struct h h;
	const char *l;
	char src[32];

	h_init(&h, &ac);
	for (int b = 0; b < 6; b++)
		for (int k = 0; k < 150; k++) {
			snprintf(src, sizeof(src), "198.18.%d.%d", b, k);
			ev_spoof(&q, src, 5000, "10.0.0.5", 80, (uint64_t)b * S + (uint64_t)k * 6 * MS, true, 0);
		}
	ev(&q, "10.0.0.60", 30000, "10.0.0.5", 80, SYN, 1000, 0, 500 * MS + 1000);
	ev(&q, "10.0.0.5", 80, "10.0.0.60", 30000, SA, 5000, 1001, 500 * MS + 2000);
	ev(&q, "10.0.0.60", 30000, "10.0.0.5", 80, A, 1001, 5001, 500 * MS + 3000);
	ev(&q, "10.0.0.5", 80, "10.0.0.60", 30000, SA, 5000, 1001, 1500 * MS + 2000);
	ev(&q, "10.0.0.60", 30000, "10.0.0.5", 80, A, 1001, 5001, 1500 * MS + 3000);
	ev(&q, "10.0.0.60", 30000, "10.0.0.5", 80, PA, 1001, 5001, 4200 * MS + 1000);
	ev_good(&q, "10.0.0.50", 30000, "10.0.0.5", 80, 7 * S);
	evq_run(&h, &q);
	h_finish(&h, 8 * S);
	CHECK_EQ_INT(count_lines(h.json, "\"type\":\"syn_flood\"", NULL, NULL), 1);
	l = line_with(h.json, "\"type\":\"syn_flood\"", NULL, NULL);
	CHECK_NUM(l, "start", 1700000000.0);
	CHECK_NUM(l, "end", 1700000006.0);
	CHECK_NUM(l, "syns", 901);
	CHECK_NUM(l, "completed", 1);
	l = line_with(h.json, "\"type\":\"listener\"", "\"port\":80}", NULL);
	CHECK_NUM(l, "accepted", 2);              /* 10.0.0.60 and 10.0.0.50 */
	h_free(&h);
}

/* Top sources and prefixes of an alert: one heavy source among 480 that send
 * one SYN each. The counts shown are certain lower bounds (space-saving's
 * inherited counts are not the newcomer's): none exceeds what the source
 * sent, and the heavy one leads. */
/* A bucket's half-open count is the state at its end, also for changes a
 * few microseconds after it. The tracker reports a change before the
 * segment that made it reaches the buckets, so both of these once landed on
 * the wrong side of the edge (the first made a kernel test's peak 18
 * against the 17 requests the kernel held). After the flood above, bucket 4
 * ends at T0+5 s and nothing else arrives before T0+5.01 s:
 * - cookie: a spoofed SYN 50 us before the edge, its cookie SYN-ACK 50 us
 *   after, never retransmitted: not half-open in bucket 4, nor ever;
 * - handshake: SYN-ACK 2 ms before the edge, the ACK 1 ms after: half-open
 *   at the end of bucket 4, completed in bucket 5. */
static void half_open_edge(bool cookie, bool handshake, int want_bucket4, int want_peak)
{
	struct analyses_config ac = default_cfg();
	struct evq q = { 0 };
	struct h h;
	const char *l;

	h_init(&h, &ac);
	flood_buckets(&q);
	if (cookie)
		ev_spoof(&q, "198.51.100.250", 1000, "10.0.0.2", 80, 5 * S - 50000, true, 0);
	if (handshake) {
		ev(&q, "10.0.0.60", 30000, "10.0.0.2", 80, SYN, 1000, 0, 5 * S - 3 * MS);
		ev(&q, "10.0.0.2", 80, "10.0.0.60", 30000, SA, 5000, 1001, 5 * S - 2 * MS);
		ev(&q, "10.0.0.60", 30000, "10.0.0.2", 80, A, 1001, 5001, 5 * S + 1 * MS);
	}
	for (int i = 0; i < 20; i++)
		ev_good(&q, "10.0.0.50", (uint16_t)(23000 + i), "10.0.0.2", 80,
			5 * S + 10 * MS + (uint64_t)i * 40 * MS);
	evq_run(&h, &q);
	h_finish(&h, 10 * S);
	l = line_with(h.json, "\"type\":\"syn_rate\"", "\"ts\":1700000004.000000", NULL);
	CHECK_NUM(l, "half_open", want_bucket4);
	CHECK_NUM(l, "completed", 5);
	l = line_with(h.json, "\"type\":\"syn_flood\"", NULL, NULL);
	CHECK_NUM(l, "half_open_peak", want_peak);
	h_free(&h);
}

static void test_half_open_bucket_edges(void)
{
	half_open_edge(true, false, 0, 0);
	half_open_edge(false, true, 1, 1);
	half_open_edge(true, true, 1, 1);
}

/* In the list that starts at `list` in line l, the entries that begin as
 * pre, 115, 114, ... 100 in turn, then post, each count 5 under the one
 * before but the last's: how many there are in that order; *last: the
 * last's count. */
static int top_steps(const char *l, const char *list, const char *pre, const char *post,
		     long long *last)
{
	const char *p = l ? strstr(l, list) : NULL;
	long long prev = -1;
	int n = 0;

	for (int j = 15; p && j >= 0; j--, n++, p++) {
		char want[48];

		snprintf(want, sizeof(want), "%s%d%s", pre, 100 + j, post);
		p = strstr(p, "{\"");
		if (!p || strncmp(p, want, strlen(want)))
			break;
		if (prev >= 0 && j >= 1)
			CHECK_EQ_INT(prev - (long long)jnum(p, "count"), 5);
		prev = (long long)jnum(p, "count");
	}
	*last = prev;
	return n;
}

/* Exactly sixteen sources, as many as the counters, in turn, source j sending
 * 5(j + 1) SYNs: none is ever replaced, so from the alert's start every SYN
 * of each is counted on its own counter. Sources take turns, so each loses
 * the same three rounds to the time before the alert (the alert starts in
 * the fourth, just after the smallest source's turn): the counts shown step
 * by exactly 5 but for that one, and so do their /24 prefixes', each source
 * in its own. */
static void test_top_sixteen(void)
{
	struct analyses_config ac = default_cfg();
	struct evq q = { 0 };
	struct h h;
	const char *l;
	long long last = 0;
	int syn = 0;
	char src[32];

	h_init(&h, &ac);
	for (int r = 0; r < 80; r++)
		for (int j = 0; j < 16; j++)
			if (r < 5 * (j + 1)) {
				snprintf(src, sizeof(src), "203.0.%d.7", 100 + j);
				ev_spoof(&q, src, (uint16_t)(2000 + r), "10.0.0.9", 80,
					 (uint64_t)syn++ * 4 * MS, true, 0);
			}
	ev_good(&q, "10.0.0.50", 30000, "10.0.0.9", 80, 4 * S);
	evq_run(&h, &q);
	h_finish(&h, 5 * S);
	l = line_with(h.json, "\"type\":\"syn_flood\"", NULL, NULL);
	CHECK(l != NULL);
	/* listed by count, largest first: 203.0.115.7 (80 sent), 203.0.114.7, ...;
	 * 203.0.100.7 last, 5 sent, 4 before the alert */
	CHECK_EQ_INT(top_steps(l, "\"top_sources\":[", "{\"addr\":\"203.0.", ".7\"", &last), 16);
	CHECK_EQ_INT(last, 1);
	CHECK_EQ_INT(top_steps(l, "\"top_prefixes\":[", "{\"prefix\":\"203.0.", ".0/24\"",
				&last), 16);
	CHECK_EQ_INT(last, 1);
	h_free(&h);
}

static void test_top_sources(void)
{
	struct analyses_config ac = default_cfg();
	struct evq q = { 0 };
	struct h h;
	const char *l, *p;
	char src[32];

	h_init(&h, &ac);
	for (int b = 0; b < 3; b++)
		for (int k = 0; k < 200; k++) {
			uint64_t t = (uint64_t)b * S + (uint64_t)k * 4 * MS;

			if (k % 5 == 0)
				ev_spoof(&q, "198.51.100.7", (uint16_t)(3000 + b * 200 + k), "10.0.0.9", 80, t,
					 true, 0);
			else {
				snprintf(src, sizeof(src), "100.64.%d.%d", b, k);
				ev_spoof(&q, src, 4000, "10.0.0.9", 80, t, true, 0);
			}
		}
	ev_good(&q, "10.0.0.50", 30000, "10.0.0.9", 80, 4 * S);
	evq_run(&h, &q);
	h_finish(&h, 5 * S);
	l = line_with(h.json, "\"type\":\"syn_flood\"", NULL, NULL);
	CHECK_HAS(l, "\"top_sources\":[{\"addr\":\"198.51.100.7\",\"count\":");
	CHECK(jnum(l, "count") >= 100 && jnum(l, "count") <= 120);     /* it sent 120 */
	p = l ? strstr(l, "\"top_sources\":[") : NULL;
	p = p ? strstr(p + 16, "},{") : NULL;           /* the others sent one SYN each */
	for (int i = 0; p && i < 15; i++, p = strstr(p + 3, "},{")) {
		if (!strncmp(p, "},{\"prefix\"", 12))
			break;
		CHECK_EQ_INT((long long)jnum(p, "count"), 1);
	}
	/* Each 100.64.b.0/24 sent 160 SYNs, 198.51.100.0/24 120. */
	p = l ? strstr(l, "\"top_prefixes\":[") : NULL;
	for (int i = 0; p && i < 4; i++) {
		p = strstr(p, "{\"prefix\":\"");
		if (!p)
			break;
		CHECK(jnum(p, "count") >= 1 && jnum(p, "count") <= (strncmp(p + 11, "198.", 4) ? 160 : 120));
		p++;
	}
	CHECK(strstr(h.text, "top sources: 198.51.100.7 (") != NULL);
	h_free(&h);
}

/* A busy healthy service: 5000 handshakes in 5 s (1000/s), all complete. */
static void test_busy_healthy(void)
{
	struct analyses_config ac = default_cfg();
	struct evq q = { 0 };
	struct h h;
	const char *l;
	char src[32];

	h_init(&h, &ac);
	for (int i = 0; i < 5000; i++) {
		snprintf(src, sizeof(src), "10.1.%d.%d", i / 250, i % 250);
		ev_good(&q, src, (uint16_t)(33000 + i), "10.0.0.2", 443, (uint64_t)i * MS);
	}
	evq_run(&h, &q);
	h_finish(&h, 6 * S);
	CHECK_EQ_INT(count_lines(h.json, "\"type\":\"syn_flood\"", NULL, NULL), 0);
	CHECK_EQ_INT(count_lines(h.json, "\"type\":\"syn_rate\"", NULL, NULL), 0);
	CHECK(strstr(h.text, "SYN FLOOD ALERTS (0;") != NULL);
	l = line_with(h.json, "\"type\":\"listener\"", "\"port\":443}", NULL);
	CHECK_NUM(l, "accepted", 5000);
	CHECK_NUM(l, "syns", 5000);
	CHECK_NUM(l, "unanswered", 0);
	CHECK_NUM(l, "refused", 0);
	/* Every client closed first: 5000 in TIME_WAIT, one per client address. */
	l = line_with(h.json, "\"type\":\"time_wait\"", "\"host\":\"10.1.0.0\"", NULL);
	CHECK_NUM(l, "count", 1);
	h_free(&h);
}

/* Services on two servers, more than target_find()'s cache has slots, their
 * handshakes interleaved: services share slots, and each SYN, SYN-ACK and
 * final count must still reach its own service's record. Service i accepts
 * 1 + i % 4 connections; each connection's packets are 100 us apart, a
 * round of all services' next connections 100 ms apart. */
static void test_many_services(void)
{
	struct analyses_config ac = default_cfg();
	struct evq q = { 0 };
	struct h h;
	char sa[32], key[32];
	const char *l;

	h_init(&h, &ac);
	for (int round = 0; round < 4; round++)
		for (int i = 0; i < 80; i++) {
			if (round >= 1 + i % 4)
				continue;
			snprintf(sa, sizeof(sa), "10.0.0.%d", 2 + i % 2);
			ev_good(&q, "10.9.0.1", (uint16_t)(30000 + round * 100 + i), sa,
				(uint16_t)(2000 + i), (uint64_t)round * 100 * MS + (uint64_t)i * MS);
		}
	evq_run(&h, &q);
	h_finish(&h, 2 * S);
	for (int i = 0; i < 80; i++) {
		snprintf(key, sizeof(key), "\"port\":%d}", 2000 + i);
		snprintf(sa, sizeof(sa), "\"addr\":\"10.0.0.%d\"", 2 + i % 2);
		l = line_with(h.json, "\"type\":\"listener\"", sa, key);
		CHECK_NUM(l, "syns", 1 + i % 4);
		CHECK_NUM(l, "accepted", 1 + i % 4);
		CHECK_NUM(l, "unanswered", 0);
	}
	CHECK_EQ_INT(count_lines(h.json, "\"type\":\"listener\"", NULL, NULL), 80);
	h_free(&h);
}

/* ==== 4. TIME_WAIT ==== */

static void test_time_wait(void)
{
	struct analyses_config ac = default_cfg();
	struct h h;
	struct flow f;
	const char *l;

	h_init(&h, &ac);
	/* Reference T0+110 s, TIME_WAIT 60 s. Host 10.0.0.1 closes first
	 * (client) on four connections to 10.0.0.2:80, entering TIME_WAIT on
	 * the server's FIN at 10, 20, 30 and 100 s (+2 ms): the first three end
	 * at 70, 80, 90 s, so 3 at 30.002 s is the peak and 1 is left.
	 * Host 10.0.0.2 closes first (server) on two connections from
	 * 10.0.0.5 to 10.0.0.2:443 and enters TIME_WAIT on the client's FIN at
	 * 105 and 106 s (+2 ms): 2, peak 2 at 106.002 s.
	 * Two more connections 10.0.0.1 -> 10.0.0.2:80 end by RST. */
	for (int i = 0; i < 4; i++) {
		uint64_t t = (i < 3 ? 10 * (uint64_t)(i + 1) : 100) * S;

		f = flow("10.0.0.1", (uint16_t)(40000 + i), "10.0.0.2", 80);
		open3(&h, &f, t - S);
		close_client_first(&h, &f, t);
	}
	for (int i = 0; i < 2; i++) {
		f = flow("10.0.0.1", (uint16_t)(40100 + i), "10.0.0.2", 80);
		open3(&h, &f, 101 * S + (uint64_t)i * S);
		pk(&h, f.ca, f.cp, f.sa, f.sp, RA, f.cs, f.ss, 0, 101 * S + (uint64_t)i * S + 500 * MS);
	}
	struct flow g[2] = { flow("10.0.0.5", 50000, "10.0.0.2", 443),
			     flow("10.0.0.5", 50001, "10.0.0.2", 443) };
	open3(&h, &g[0], 104 * S);
	open3(&h, &g[1], 104 * S + 100 * MS);
	close_server_first(&h, &g[0], 105 * S);
	close_server_first(&h, &g[1], 106 * S);
	h_finish(&h, 110 * S);

	l = line_with(h.json, "\"type\":\"time_wait\"", "\"host\":\"10.0.0.1\"", NULL);
	CHECK_NUM(l, "count", 1);
	CHECK_NUM(l, "peak", 3);
	CHECK_NUM(l, "peak_at", 1700000030.002);
	l = line_with(h.json, "\"type\":\"time_wait\"", "\"host\":\"10.0.0.2\"", NULL);
	CHECK_NUM(l, "count", 2);
	CHECK_NUM(l, "peak", 2);
	CHECK_NUM(l, "peak_at", 1700000106.002);
	l = line_with(h.json, "\"type\":\"time_wait_pair\"", "\"host\":\"10.0.0.1\"", NULL);
	CHECK_HAS(l, "\"side\":\"client\",\"service\":{\"addr\":\"10.0.0.2\",\"port\":80}");
	CHECK_NUM(l, "count", 1);
	CHECK_NUM(l, "reset", 2);
	CHECK_HAS(l, "\"warning\":false");
	l = line_with(h.json, "\"type\":\"time_wait_pair\"", "\"host\":\"10.0.0.2\"", NULL);
	CHECK_HAS(l, "\"side\":\"server\",\"service\":{\"addr\":\"10.0.0.2\",\"port\":443}");
	CHECK_NUM(l, "count", 2);
	CHECK_NUM(l, "reset", 0);
	CHECK(strstr(h.text, "TIME_WAIT (3 endpoints at the reference time; peak 3 at ") != NULL);
	CHECK(strstr(h.text, "  10.0.0.2 holds 2 in TIME_WAIT (peak 2 at ") != NULL);
	CHECK(strstr(h.text, "  10.0.0.1 holds 1 in TIME_WAIT (peak 3 at ") != NULL);
	CHECK(strstr(h.text, "2 connections ended by RST (no TIME_WAIT) are not counted above") != NULL);
	CHECK(strstr(h.text, "tcp_tw_recycle: removed") != NULL);
	h_free(&h);
}

/* The ephemeral-port warning: with --tw-warn 0.01, 283 of the 28232 ports
 * (1.002 %) warn and 282 (0.9989 %) do not. */
static void test_ephemeral_warning(void)
{
	struct analyses_config ac = default_cfg();
	struct evq q = { 0 };
	struct h h;
	const char *l;

	ac.tw_warn = 0.01;
	h_init(&h, &ac);
	for (int i = 0; i < 283; i++)
		ev_good(&q, "10.0.0.7", (uint16_t)(32768 + i), "10.0.0.2", 80, (uint64_t)i * MS);
	for (int i = 0; i < 282; i++)
		ev_good(&q, "10.0.0.8", (uint16_t)(32768 + i), "10.0.0.2", 80, (uint64_t)i * MS);
	evq_run(&h, &q);
	h_finish(&h, S);
	l = line_with(h.json, "\"type\":\"time_wait_pair\"", "\"host\":\"10.0.0.7\"", NULL);
	CHECK_NUM(l, "count", 283);
	CHECK_HAS(l, "\"warning\":true");
	l = line_with(h.json, "\"type\":\"time_wait_pair\"", "\"host\":\"10.0.0.8\"", NULL);
	CHECK_NUM(l, "count", 282);
	CHECK_HAS(l, "\"warning\":false");
	CHECK(strstr(h.text, "10.0.0.7 -> 10.0.0.2:80: 283 client ports in TIME_WAIT, 1.0% of the ephemeral "
			     "range 32768-60999  WARNING: ephemeral port exhaustion ahead") != NULL);
	CHECK(strstr(h.text, "10.0.0.8 -> 10.0.0.2:80: 282 client ports in TIME_WAIT, 1.0% of the ephemeral "
			     "range 32768-60999\n") != NULL);
	h_free(&h);
}

/* Many hosts, pairs and services: the tables grow through several bucket
 * doublings, and the reports still list hosts in the order they first
 * entered TIME_WAIT, with every count. Host i (600 of them, 10.1.x.y) opens
 * i % 3 + 1 connections, the k-th at (k * 600 + i) * 10 ms to service
 * 10.0.0.2:(8000 + (i + k) % 40), and closes first: all of them are in
 * TIME_WAIT at the end (the last enters at 18 s, the reference is 20 s),
 * so host i holds i % 3 + 1 (its peak too), each (host, service) pair one,
 * and service p accepted as many connections as there are (i, k) with
 * (i + k) % 40 == p. */
static void test_many_hosts(void)
{
	struct analyses_config ac = default_cfg();
	struct evq q = { 0 };
	struct h h;
	const char *l, *p;
	char ca[32], want[128], port[32];
	int accepted[40] = { 0 }, n = 0, total = 0;

	h_init(&h, &ac);
	for (int i = 0; i < 600; i++)
		for (int k = 0; k < i % 3 + 1; k++) {
			snprintf(ca, sizeof(ca), "10.1.%d.%d", i / 200, i % 200 + 1);
			ev_good(&q, ca, (uint16_t)(40000 + k), "10.0.0.2", (uint16_t)(8000 + (i + k) % 40),
				(uint64_t)(k * 600 + i) * 10 * MS);
			accepted[(i + k) % 40]++;
			total++;
		}
	evq_run(&h, &q);
	h_finish(&h, 20 * S);

	CHECK_EQ_INT(count_lines(h.json, "\"type\":\"time_wait\"", NULL, NULL), 600);
	CHECK_EQ_INT(count_lines(h.json, "\"type\":\"time_wait_pair\"", NULL, NULL), total);
	CHECK_EQ_INT(count_lines(h.json, "\"type\":\"listener\"", NULL, NULL), 40);
	/* the time_wait records in order: host 0, 1, ... 599 */
	for (p = h.json; p && (p = strstr(p, "{\"type\":\"time_wait\",")); p++, n++) {
		snprintf(want, sizeof(want), "\"host\":\"10.1.%d.%d\",\"count\":%d,\"peak\":%d,", n / 200,
			 n % 200 + 1, n % 3 + 1, n % 3 + 1);
		test_checks++;
		if (strncmp(p + strlen("{\"type\":\"time_wait\","), want, strlen(want)) != 0) {
			fprintf(stderr, "%s:%d: time_wait record %d is not %s\n", __FILE__, __LINE__, n, want);
			test_failures++;
			break;
		}
	}
	CHECK_EQ_INT(n, 600);
	for (int i = 0; i < 600; i += 37)
		for (int k = 0; k < i % 3 + 1; k++) {
			snprintf(ca, sizeof(ca), "\"host\":\"10.1.%d.%d\"", i / 200, i % 200 + 1);
			snprintf(port, sizeof(port), "\"port\":%d}", 8000 + (i + k) % 40);
			l = line_with(h.json, "\"type\":\"time_wait_pair\"", ca, port);
			CHECK_HAS(l, "\"side\":\"client\"");
			CHECK_NUM(l, "count", 1);
			CHECK_NUM(l, "reset", 0);
		}
	for (int s = 0; s < 40; s++) {
		snprintf(port, sizeof(port), "\"port\":%d}", 8000 + s);
		l = line_with(h.json, "\"type\":\"listener\"", port, NULL);
		CHECK_NUM(l, "accepted", accepted[s]);
		CHECK_NUM(l, "syns", accepted[s]);
	}
	snprintf(want, sizeof(want), "TIME_WAIT (%d endpoints at the reference time; peak %d at ", total, total);
	CHECK(strstr(h.text, want) != NULL);
	h_free(&h);
}

/* ==== 5. listeners and anomalies ==== */

static void test_listeners(void)
{
	struct analyses_config ac = default_cfg();
	struct h h;
	struct flow f;
	const char *l;

	h_init(&h, &ac);
	/* 10.0.0.2:22 accepts 3 connections. */
	for (int i = 0; i < 3; i++) {
		f = flow("10.0.0.1", (uint16_t)(40000 + i), "10.0.0.2", 22);
		open3(&h, &f, (uint64_t)i * S);
	}
	/* 10.0.0.2:23 refuses 2 (RST+ACK to the SYN). */
	for (int i = 0; i < 2; i++) {
		f = flow("10.0.0.1", (uint16_t)(40010 + i), "10.0.0.2", 23);
		c_syn(&h, &f, 3 * S + (uint64_t)i * MS);
		pk(&h, f.sa, f.sp, f.ca, f.cp, RA, 0, 1001, 0, 3 * S + (uint64_t)i * MS + 100000);
	}
	/* 10.0.0.2:5432 answers nothing: one client still retransmitting at
	 * the end, one that sent a single SYN 5 s before the end (gave up or
	 * spoofed: it is CLOSED, syn_sender_silent) - both unanswered. */
	f = flow("10.0.0.1", 40020, "10.0.0.2", 5432);
	c_syn(&h, &f, 4 * S);
	f = flow("10.0.0.1", 40021, "10.0.0.2", 5432);
	c_syn(&h, &f, 7 * S);
	c_syn(&h, &f, 8 * S);
	/* A SYN on an established connection (new ISN): an anomaly. */
	f = flow("10.0.0.1", 40000, "10.0.0.2", 22);
	pk(&h, f.ca, f.cp, f.sa, f.sp, SYN, 777777, 0, 0, 8 * S + 500 * MS);
	uint64_t syn_packet = h.number;
	h_finish(&h, 9 * S);

	l = line_with(h.json, "\"type\":\"listener\"", "\"port\":22}", NULL);
	CHECK_NUM(l, "accepted", 3);
	CHECK_NUM(l, "refused", 0);
	CHECK_NUM(l, "unanswered", 0);
	CHECK_HAS(l, "\"listening\":true");
	l = line_with(h.json, "\"type\":\"listener\"", "\"port\":23}", NULL);
	CHECK_NUM(l, "accepted", 0);
	CHECK_NUM(l, "refused", 2);
	CHECK_NUM(l, "unanswered", 0);
	CHECK_HAS(l, "\"listening\":false");
	l = line_with(h.json, "\"type\":\"listener\"", "\"port\":5432}", NULL);
	CHECK_NUM(l, "accepted", 0);
	CHECK_NUM(l, "refused", 0);
	CHECK_NUM(l, "unanswered", 2);
	CHECK_NUM(l, "syns", 3);
	CHECK_HAS(l, "\"listening\":false");
	CHECK(strstr(h.text, "no (refused)") != NULL);
	/* Only the retransmitting client is a half-open syn_unanswered. */
	CHECK_EQ_INT(count_lines(h.json, "\"kind\":\"syn_unanswered\"", NULL, NULL), 1);
	l = line_with(h.json, "\"type\":\"anomaly\"", "\"kind\":\"syn_on_established\"", NULL);
	CHECK_NUM(l, "packet", (double)syn_packet);
	CHECK_NUM(l, "ts", 1700000008.5);
	CHECK(strstr(h.text, "syn_on_established") != NULL);
	h_free(&h);
}

int main(void)
{
	test_close_wait();
	test_half_open();
	test_lost_state_once();
	test_handshake_incomplete_since();
	test_late_completion();
	test_syn_flood_alert();
	test_many_services();
	test_syn_flood_backlog(true);
	test_syn_flood_backlog(false);
	test_syn_thresholds();
	test_top_sources();
	test_top_sixteen();
	test_half_open_bucket_edges();
	test_busy_healthy();
	test_time_wait();
	test_ephemeral_warning();
	test_many_hosts();
	test_listeners();
	return test_done("analyses");
}
