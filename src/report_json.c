/* report_json.c - JSON Lines output, one object per line, for jq and other
 * programs. The field names are a contract (README "JSON Lines"): fields may
 * be added, never renamed. Written by hand into the buffered writer: this is
 * the hot path of --format json on captures with millions of connections. */
#include "report.h"

static void endpoint(struct report *r, const struct conn *c, int role)
{
	struct out *o = r->out;
	const struct peer *pe = &c->peer[role];
	char a[64];

	out_str(o, "{\"addr\":\"");
	out_str(o, addr_str(c->key.family, conn_addr(c, role), a, sizeof(a)));
	out_str(o, "\",\"port\":");
	out_u64(o, conn_port(c, role));
	out_str(o, ",\"state\":\"");
	out_str(o, tcp_state_name((enum tcp_state)pe->state));
	out_str(o, "\",\"since\":");
	out_ts(o, pe->since_ns ? pe->since_ns : c->first_ns);
	out_char(o, '}');
}

void report_json_connection(struct report *r, const struct conn *c)
{
	struct out *o = r->out;
	bool first = true;
	char fl[16];

	out_str(o, "{\"type\":\"connection\",\"id\":");
	out_u64(o, c->id);
	out_str(o, ",\"client\":");
	endpoint(r, c, ROLE_CLIENT);
	out_str(o, ",\"server\":");
	endpoint(r, c, ROLE_SERVER);
	out_str(o, ",\"start\":");
	out_ts(o, c->first_ns);
	out_str(o, ",\"end\":");
	out_ts(o, c->last_ns);
	out_str(o, ",\"packets\":[");
	out_u64(o, c->peer[ROLE_CLIENT].packets);
	out_char(o, ',');
	out_u64(o, c->peer[ROLE_SERVER].packets);
	out_str(o, "],\"bytes\":[");
	out_u64(o, c->peer[ROLE_CLIENT].bytes);
	out_char(o, ',');
	out_u64(o, c->peer[ROLE_SERVER].bytes);
	out_str(o, "],\"flags\":[");
	for (uint32_t bit = 1; bit < (1u << CF_FLAG_COUNT_); bit <<= 1) {
		if (!(c->flags & bit))
			continue;
		if (!first)
			out_char(o, ',');
		first = false;
		out_char(o, '"');
		out_str(o, conn_flag_name(bit));
		out_char(o, '"');
	}
	out_str(o, "],\"conn_state\":\"");
	out_str(o, zeek_conn_state(c));
	out_str(o, "\",\"history\":");
	{
		char h[128];

		zeek_history(c, h, sizeof(h));
		out_json_str(o, h);
	}
	out_str(o, ",\"flag_counts\":{");
	for (int k = 0; k < ZFC_COUNT; k++) {
		static const char *const kind[ZFC_COUNT] = { "syn", "synack", "fin", "rst" };

		out_str(o, k ? ",\"" : "\"");
		out_str(o, kind[k]);
		out_str(o, "\":[");
		out_u64(o, zeek_flag_count(c, ROLE_CLIENT, k));
		out_char(o, ',');
		out_u64(o, zeek_flag_count(c, ROLE_SERVER, k));
		out_char(o, ']');
	}
	out_char(o, '}');
	out_str(o, ",\"anomalies\":");
	out_u64(o, c->anomalies);
	out_str(o, ",\"missed_bytes\":");
	out_u64(o, c->missed_bytes);
	out_str(o, ",\"first_packet\":");
	out_u64(o, c->first_packet);
	out_str(o, ",\"timeline\":[");
	for (uint32_t i = 0; i < c->tl_len; i++) {
		const struct transition *t = &c->tl[i];

		if (i)
			out_char(o, ',');
		out_str(o, "{\"ts\":");
		out_ts(o, t->ts_ns);
		out_str(o, ",\"side\":\"");
		out_str(o, t->side == ROLE_CLIENT ? "client" : "server");
		out_str(o, "\",\"from\":\"");
		out_str(o, tcp_state_name((enum tcp_state)t->from));
		out_str(o, "\",\"to\":\"");
		out_str(o, tcp_state_name((enum tcp_state)t->to));
		out_str(o, "\",\"packet\":");
		if (t->packet) {
			out_u64(o, t->packet);
			out_str(o, ",\"tcp_flags\":\"");
			out_str(o, tcp_flags_str(t->tcp_flags, fl, sizeof(fl)));
			out_char(o, '"');
		} else {
			out_str(o, "null,\"tcp_flags\":null");
		}
		out_str(o, ",\"cause\":\"");
		out_str(o, transition_cause_name(t->cause));
		out_str(o, "\"}");
	}
	out_str(o, "]}\n");
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
