/* report_text.c - the report for people: what netstat/ss would have shown
 * on both hosts at the reference time. A header, the per-state table of
 * client and server endpoints (always every connection), then the
 * connections, unclean ones first, up to --limit, each optionally followed
 * by its timeline. */
#include <stdio.h>
#include <string.h>

#include "report.h"

static const char *hms(uint64_t ns, char *buf, size_t len)
{
	char full[40];

	time_str(ns, full, sizeof(full));
	snprintf(buf, len, "%s", full + 11); /* "HH:MM:SS.ffffff" */
	return buf;
}

static void header(struct report *r, const struct run_summary *s)
{
	struct out *o = r->out;
	char a[40], b[40], d[32];

	out_str(o, "Capture: ");
	if (s->iface)
		out_fmt(o, "live on %s", s->iface);
	for (size_t i = 0; i < s->nfiles; i++) {
		if (i)
			out_str(o, ", ");
		out_str(o, s->files[i]);
	}
	out_char(o, '\n');
	if (s->frames) {
		out_fmt(o, "%llu packets, %llu TCP segments, from %s to %s UTC (%s)\n",
			(unsigned long long)s->frames, (unsigned long long)s->segments,
			time_str(s->first_ns, a, sizeof(a)), time_str(s->last_ns, b, sizeof(b)),
			duration_str(s->last_ns - s->first_ns, d, sizeof(d)));
	} else {
		out_str(o, "no packets\n");
	}
	if (s->frames || s->ref_is_at || s->iface)
		out_fmt(o, "States as of %s UTC (%s)\n", time_str(s->ref_ns, a, sizeof(a)),
			s->ref_kind ? (strcmp(s->ref_kind, "stop") == 0 ? "when the capture stopped" :
							      "a snapshot; the capture goes on") :
			s->ref_is_at ? "--at" : "the last packet");
	out_fmt(o, "%llu connections, %llu not closed cleanly\n\n",
		(unsigned long long)r->connections, (unsigned long long)r->unclean);
}

static void state_table(struct report *r)
{
	struct out *o = r->out;
	uint64_t tot[2] = { 0, 0 };

	out_str(o, "STATE          CLIENTS  SERVERS\n");
	for (int s = 0; s < TS_COUNT; s++) {
		out_fmt(o, "%-13s %8llu %8llu\n", tcp_state_name((enum tcp_state)s),
			(unsigned long long)r->state_count[0][s],
			(unsigned long long)r->state_count[1][s]);
		tot[0] += r->state_count[0][s];
		tot[1] += r->state_count[1][s];
	}
	out_fmt(o, "%-13s %8llu %8llu\n\n", "TOTAL", (unsigned long long)tot[0],
		(unsigned long long)tot[1]);
}

static void flags_str(const struct conn *c, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	for (uint32_t bit = 1; bit < (1u << CF_FLAG_COUNT_); bit <<= 1) {
		if (!(c->flags & bit))
			continue;
		int k = snprintf(buf + n, len - n, "%s%s", n ? "," : "", conn_flag_name(bit));

		if (k < 0 || (size_t)k >= len - n)
			break;
		n += (size_t)k;
	}
	if (!n)
		snprintf(buf, len, "-");
}

static void timeline(struct report *r, const struct conn *c)
{
	struct out *o = r->out;

	for (uint32_t i = 0; i < c->tl_len; i++) {
		const struct transition *t = &c->tl[i];
		char rel[32], abs[40], fl[16], arrow[48];
		uint64_t d = t->ts_ns >= c->first_ns ? t->ts_ns - c->first_ns : 0;

		snprintf(rel, sizeof(rel), "+%llu.%06llus", (unsigned long long)(d / 1000000000ULL),
			 (unsigned long long)(d % 1000000000ULL / 1000));
		snprintf(arrow, sizeof(arrow), "%s -> %s", tcp_state_name((enum tcp_state)t->from),
			 tcp_state_name((enum tcp_state)t->to));
		out_fmt(o, "       %-14s %s  %-6s %-29s", rel, hms(t->ts_ns, abs, sizeof(abs)),
			t->side == ROLE_CLIENT ? "client" : "server", arrow);
		if (t->packet)
			out_fmt(o, " packet %llu [%s]", (unsigned long long)t->packet,
				tcp_flags_str(t->tcp_flags, fl, sizeof(fl)));
		if (t->cause != TC_PACKET)
			out_fmt(o, " (%s)", transition_cause_name(t->cause));
		out_char(o, '\n');
	}
}

static void listing(struct report *r)
{
	struct out *o = r->out;
	size_t wc = 6, ws = 6;
	char ep[64], a[40], d[32], pk[48], by[48], fl[256], zk[ZEEK_HISTORY_MAX + 8];

	if (!r->nkept)
		return;
	for (size_t i = 0; i < r->nkept; i++) {
		const struct conn *c = r->kept[i];
		size_t n = strlen(endpoint_str(c->key.family, conn_addr(c, ROLE_CLIENT),
					       conn_port(c, ROLE_CLIENT), ep, sizeof(ep)));

		if (n > wc)
			wc = n;
		n = strlen(endpoint_str(c->key.family, conn_addr(c, ROLE_SERVER),
					conn_port(c, ROLE_SERVER), ep, sizeof(ep)));
		if (n > ws)
			ws = n;
	}
	out_fmt(o, "CONNECTIONS (not closed cleanly first; %zu of %llu listed)\n", r->nkept,
		(unsigned long long)r->connections);
	out_fmt(o, "%6s  %-*s  %-*s  %-12s  %-12s  %-15s  %8s  %-13s  %-19s  %-18s  %s\n", "ID",
		(int)wc, "CLIENT", (int)ws, "SERVER", "CLIENT_STATE", "SERVER_STATE", "START (UTC)",
		"DURATION", "PACKETS C/S", "BYTES C/S", "ZEEK", "FLAGS");
	for (size_t i = 0; i < r->nkept; i++) {
		const struct conn *c = r->kept[i];
		char cl[64], sv[64];

		endpoint_str(c->key.family, conn_addr(c, ROLE_CLIENT), conn_port(c, ROLE_CLIENT), cl,
			     sizeof(cl));
		endpoint_str(c->key.family, conn_addr(c, ROLE_SERVER), conn_port(c, ROLE_SERVER), sv,
			     sizeof(sv));
		snprintf(pk, sizeof(pk), "%llu/%llu", (unsigned long long)c->peer[0].packets,
			 (unsigned long long)c->peer[1].packets);
		snprintf(by, sizeof(by), "%llu/%llu", (unsigned long long)c->peer[0].bytes,
			 (unsigned long long)c->peer[1].bytes);
		flags_str(c, fl, sizeof(fl));
		/* Zeek's conn_state and history, e.g. "SF ShADadFf" */
		{
			size_t n = strlen(zeek_conn_state(c));

			memcpy(zk, zeek_conn_state(c), n);
			zk[n++] = ' ';
			if (!zeek_history(c, zk + n, sizeof(zk) - n)) {
				zk[n] = '-';
				zk[n + 1] = 0;
			}
		}
		out_fmt(o, "%6llu  %-*s  %-*s  %-12s  %-12s  %-15s  %8s  %-13s  %-19s  %-18s  %s\n",
			(unsigned long long)c->id, (int)wc, cl, (int)ws, sv,
			tcp_state_name((enum tcp_state)c->peer[0].state),
			tcp_state_name((enum tcp_state)c->peer[1].state),
			hms(c->first_ns, a, sizeof(a)), duration_str(c->last_ns - c->first_ns, d, sizeof(d)),
			pk, by, zk, fl);
		if (r->opt->timeline)
			timeline(r, c);
	}
	if (r->dropped)
		out_fmt(o, "... %llu more connections not listed (--limit %llu); --limit 0 lists all, "
			"--format json writes every one\n",
			(unsigned long long)r->dropped, (unsigned long long)r->opt->limit);
	out_char(o, '\n');
}

static void counters(struct report *r, const struct run_summary *s)
{
	struct out *o = r->out;
	bool any = false;

	for (int d = 1; d < DECODE_STATUS_COUNT; d++) {
		if (!s->decode[d])
			continue;
		out_str(o, any ? ", " : "Packets not used: ");
		out_fmt(o, "%llu %s", (unsigned long long)s->decode[d],
			decode_status_name((enum decode_status)d));
		any = true;
	}
	if (any)
		out_char(o, '\n');
	any = false;
	for (int a = 0; s->tracker && a < AN_COUNT; a++) {
		if (!s->tracker->anomalies[a])
			continue;
		out_str(o, any ? ", " : "Anomalies: ");
		out_fmt(o, "%llu %s", (unsigned long long)s->tracker->anomalies[a],
			anomaly_kind_name((enum anomaly_kind)a));
		any = true;
	}
	if (any)
		out_char(o, '\n');
	if (s->tracker && s->tracker->duplicates)
		out_fmt(o, "Duplicates ignored: %llu segments captured twice within 1 ms "
			"(SPAN or mirror port)\n", (unsigned long long)s->tracker->duplicates);
	if (s->tracker && (s->tracker->expired || s->tracker->evicted))
		out_fmt(o, "Forgotten: %llu connections idle past their timeout (--idle-timeout), "
			"%llu evicted by --max-connections; their states are as of that moment\n",
			(unsigned long long)s->tracker->expired, (unsigned long long)s->tracker->evicted);
	if (s->tracker && s->tracker->oom)
		out_fmt(o, "Out of memory: %llu segments could not be tracked\n",
			(unsigned long long)s->tracker->oom);
}

void report_text(struct report *r, const struct run_summary *s)
{
	unsigned mask = report_mask(r);

	header(r, s);
	if (mask & SEC_STATES)
		state_table(r);
	if (mask & SEC_CONNECTIONS)
		listing(r);
	/* Without --report, an analysis appears only when it found something. */
	if (r->an)
		analyses_write_text(r->an, r->out, mask, r->opt->report_mask == 0);
	counters(r, s);
}
