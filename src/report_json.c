/* report_json.c - JSON Lines output, one object per line, for jq and other
 * programs. The field names are a contract (README "JSON Lines"): fields may
 * be added, never renamed. Written by hand into the buffered writer: this is
 * the hot path of --format json on captures with millions of connections. */
#include "report.h"

/* State and cause names with their lengths, padded so that writing one is
 * a fixed-size copy: a timeline writes three a transition. Indexed by the
 * stored byte, so out-of-range values get the name functions' "?". */
#define NAME_PAD 16
struct name {
	const char *s;
	size_t n;
	char pad[NAME_PAD];   /* s, zero padded, when n <= NAME_PAD */
};

static struct {
	bool ready;
	size_t state_max, cause_max;   /* longest written, at least NAME_PAD */
	struct name state[256], cause[256];
} names;

static size_t name_set(struct name *nm, const char *s)
{
	nm->s = s;
	nm->n = strlen(s);
	if (nm->n <= NAME_PAD)
		memcpy(nm->pad, s, nm->n);
	return nm->n > NAME_PAD ? nm->n : NAME_PAD;
}

static void names_init(void)
{
	for (int i = 0; i < 256; i++) {
		size_t s = name_set(&names.state[i], tcp_state_name((enum tcp_state)i));
		size_t k = name_set(&names.cause[i], transition_cause_name((uint8_t)i));

		if (s > names.state_max)
			names.state_max = s;
		if (k > names.cause_max)
			names.cause_max = k;
	}
	names.ready = true;
}

static inline char *put_name(char *p, const struct name *nm)
{
	if (__builtin_expect(nm->n <= NAME_PAD, 1))
		memcpy(p, nm->pad, NAME_PAD);
	else
		memcpy(p, nm->s, nm->n);
	return p + nm->n;
}

/* Room for the pieces of a record up to "flags" (literals ~180 bytes, two
 * addresses, seven numbers, four timestamps, two state names), from
 * "history" to "timeline" (literals ~130 bytes, eleven numbers, the
 * history), and of a transition (literals ~85 bytes, a timestamp, a
 * number, the flags, three names). */
#define HEAD_ROOM (256 + 2 * OUT_ADDR_MAX + 7 * OUT_U64_MAX + 4 * OUT_TS_MAX)
#define COUNTS_ROOM (256 + 11 * OUT_U64_MAX)
#define TRANSITION_ROOM (128 + OUT_TS_MAX + OUT_U64_MAX + OUT_FLAGS_MAX)

/* Literals with the key before the endpoint: ",\"client\":{\"addr\":\"" */
static inline char *endpoint(struct out *o, char *p, const struct conn *c, int role)
{
	const struct peer *pe = &c->peer[role];

	p = out_put_addr(p, c->key.family, conn_addr(c, role));
	OUT_PUT_LIT(p, "\",\"port\":");
	p = out_put_u64(p, conn_port(c, role));
	OUT_PUT_LIT(p, ",\"state\":\"");
	p = put_name(p, &names.state[pe->state]);
	OUT_PUT_LIT(p, "\",\"since\":");
	p = out_put_ts(o, p, pe->since_ns ? pe->since_ns : c->first_ns);
	*p++ = '}';
	return p;
}

/* One of Zeek's flag counts: "[client,server]" */
static inline char *put_flag_counts(char *p, const struct conn *c, int k)
{
	*p++ = '[';
	p = out_put_u64(p, zeek_flag_count(c, ROLE_CLIENT, k));
	*p++ = ',';
	p = out_put_u64(p, zeek_flag_count(c, ROLE_SERVER, k));
	*p++ = ']';
	return p;
}

void report_json_connection(struct report *r, const struct conn *c)
{
	struct out *o = r->out;
	bool first = true;
	char h[128], *p;
	size_t hn;

	if (!names.ready)
		names_init();
	p = out_reserve(o, HEAD_ROOM + 2 * names.state_max);
	OUT_PUT_LIT(p, "{\"type\":\"connection\",\"id\":");
	p = out_put_u64(p, c->id);
	OUT_PUT_LIT(p, ",\"client\":{\"addr\":\"");
	p = endpoint(o, p, c, ROLE_CLIENT);
	OUT_PUT_LIT(p, ",\"server\":{\"addr\":\"");
	p = endpoint(o, p, c, ROLE_SERVER);
	OUT_PUT_LIT(p, ",\"start\":");
	p = out_put_ts(o, p, c->first_ns);
	OUT_PUT_LIT(p, ",\"end\":");
	p = out_put_ts(o, p, c->last_ns);
	OUT_PUT_LIT(p, ",\"packets\":[");
	p = out_put_u64(p, c->peer[ROLE_CLIENT].packets);
	*p++ = ',';
	p = out_put_u64(p, c->peer[ROLE_SERVER].packets);
	OUT_PUT_LIT(p, "],\"bytes\":[");
	p = out_put_u64(p, c->peer[ROLE_CLIENT].bytes);
	*p++ = ',';
	p = out_put_u64(p, c->peer[ROLE_SERVER].bytes);
	OUT_PUT_LIT(p, "],\"flags\":[");
	out_commit(o, p);
	/* few connections have flags: the plain writes, set bits only */
	for (uint32_t f = c->flags & ((1u << CF_FLAG_COUNT_) - 1); f; f &= f - 1) {
		uint32_t bit = f & -f;   /* the lowest left */

		if (!first)
			out_char(o, ',');
		first = false;
		out_char(o, '"');
		out_str(o, conn_flag_name(bit));
		out_char(o, '"');
	}
	out_str(o, "],\"conn_state\":\"");
	out_str(o, zeek_conn_state(c));
	hn = zeek_history(c, h, sizeof(h));
	p = out_reserve(o, COUNTS_ROOM + 6 * hn);
	OUT_PUT_LIT(p, "\",\"history\":");
	p = out_put_json_str(p, h, hn);
	OUT_PUT_LIT(p, ",\"flag_counts\":{\"syn\":");
	p = put_flag_counts(p, c, ZFC_SYN);
	OUT_PUT_LIT(p, ",\"synack\":");
	p = put_flag_counts(p, c, ZFC_SYNACK);
	OUT_PUT_LIT(p, ",\"fin\":");
	p = put_flag_counts(p, c, ZFC_FIN);
	OUT_PUT_LIT(p, ",\"rst\":");
	p = put_flag_counts(p, c, ZFC_RST);
	OUT_PUT_LIT(p, "},\"anomalies\":");
	p = out_put_u64(p, c->anomalies);
	OUT_PUT_LIT(p, ",\"missed_bytes\":");
	p = out_put_u64(p, c->missed_bytes);
	OUT_PUT_LIT(p, ",\"first_packet\":");
	p = out_put_u64(p, c->first_packet);
	OUT_PUT_LIT(p, ",\"timeline\":[");
	for (uint32_t i = 0; i < c->tl_len; i++) {
		const struct transition *t = &c->tl[i];

		p = out_ensure(o, p, TRANSITION_ROOM + 2 * names.state_max + names.cause_max);
		*p = ',';
		p += i != 0;
		OUT_PUT_LIT(p, "{\"ts\":");
		p = out_put_ts(o, p, t->ts_ns);
		/* both the same length */
		memcpy(p, t->side == ROLE_CLIENT ? ",\"side\":\"client\",\"from\":\"" :
						   ",\"side\":\"server\",\"from\":\"",
		       sizeof(",\"side\":\"client\",\"from\":\"") - 1);
		p += sizeof(",\"side\":\"client\",\"from\":\"") - 1;
		p = put_name(p, &names.state[t->from]);
		OUT_PUT_LIT(p, "\",\"to\":\"");
		p = put_name(p, &names.state[t->to]);
		OUT_PUT_LIT(p, "\",\"packet\":");
		if (t->packet) {
			p = out_put_u64(p, t->packet);
			OUT_PUT_LIT(p, ",\"tcp_flags\":\"");
			p = out_put_tcp_flags(p, t->tcp_flags);
			OUT_PUT_LIT(p, "\",\"cause\":\"");
		} else {
			OUT_PUT_LIT(p, "null,\"tcp_flags\":null,\"cause\":\"");
		}
		p = put_name(p, &names.cause[t->cause]);
		OUT_PUT_LIT(p, "\"}");
	}
	p = out_ensure(o, p, 3);
	OUT_PUT_LIT(p, "]}\n");
	out_commit(o, p);
}

static void state_object(struct out *o, const uint64_t *counts)
{
	out_char(o, '{');
	for (int s = 0; s < TS_COUNT; s++) {
		if (s)
			out_char(o, ',');
		out_char(o, '"');
		out_str(o, tcp_state_name((enum tcp_state)s));
		out_str(o, "\":");
		out_u64(o, counts[s]);
	}
	out_char(o, '}');
}

void report_json_summary(struct report *r, const struct run_summary *s)
{
	struct out *o = r->out;

	out_str(o, "{\"type\":\"summary\",\"files\":[");
	for (size_t i = 0; i < s->nfiles; i++) {
		if (i)
			out_char(o, ',');
		out_json_str(o, s->files[i]);
	}
	out_char(o, ']');
	if (s->iface) {
		out_str(o, ",\"interface\":");
		out_json_str(o, s->iface);
	}
	out_str(o, ",\"first_ts\":");
	if (s->frames)
		out_ts(o, s->first_ns);
	else
		out_str(o, "null");
	out_str(o, ",\"last_ts\":");
	if (s->frames)
		out_ts(o, s->last_ns);
	else
		out_str(o, "null");
	out_str(o, ",\"reference_ts\":");
	out_ts(o, s->ref_ns);
	out_str(o, ",\"reference\":\"");
	out_str(o, s->ref_kind ? s->ref_kind : s->ref_is_at ? "at" : "last_packet");
	out_str(o, "\",\"packets\":");
	out_u64(o, s->frames);
	out_str(o, ",\"tcp_segments\":");
	out_u64(o, s->segments);
	out_str(o, ",\"connections\":");
	out_u64(o, r->connections);
	out_str(o, ",\"not_closed_cleanly\":");
	out_u64(o, r->unclean);
	out_str(o, ",\"peak_open\":");
	out_u64(o, s->tracker ? s->tracker->peak_open : 0);
	out_str(o, ",\"states\":{\"client\":");
	state_object(o, r->state_count[ROLE_CLIENT]);
	out_str(o, ",\"server\":");
	state_object(o, r->state_count[ROLE_SERVER]);
	out_str(o, "},\"decode\":{");
	for (int d = 1; d < DECODE_STATUS_COUNT; d++) {
		if (d > 1)
			out_char(o, ',');
		out_char(o, '"');
		out_str(o, decode_status_name((enum decode_status)d));
		out_str(o, "\":");
		out_u64(o, s->decode[d]);
	}
	out_str(o, "},\"anomalies\":{");
	for (int a = 0; a < AN_COUNT; a++) {
		if (a)
			out_char(o, ',');
		out_char(o, '"');
		out_str(o, anomaly_kind_name((enum anomaly_kind)a));
		out_str(o, "\":");
		out_u64(o, s->tracker ? s->tracker->anomalies[a] : 0);
	}
	out_str(o, "},\"expired\":");
	out_u64(o, s->tracker ? s->tracker->expired : 0);
	out_str(o, ",\"evicted\":");
	out_u64(o, s->tracker ? s->tracker->evicted : 0);
	out_str(o, ",\"duplicates\":");
	out_u64(o, s->tracker ? s->tracker->duplicates : 0);
	out_str(o, ",\"out_of_memory\":");
	out_u64(o, s->tracker ? s->tracker->oom : 0);
	out_str(o, ",\"input_errors\":");
	out_u64(o, s->input_errors);
	out_str(o, "}\n");
}
