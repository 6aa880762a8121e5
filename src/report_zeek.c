/* report_zeek.c - --format zeek: a conn.log in Zeek's ASCII format (tab
 * separated, #fields/#types header, '-' for unset, '(empty)' for empty),
 * so zeek-cut and tools built for Zeek logs read tcpstate's results. One
 * row per TCP connection incarnation, written as the tracker retires it. */
#include <stdio.h>
#include <time.h>

#include "report.h"

/* Zeek's conn.log columns (scripts/base/protocols/conn/main.zeek), without
 * ip_proto, which newer Zeek versions append. */
static const char fields[] =
	"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\t"
	"duration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\t"
	"history\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n";
static const char types[] =
	"#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\t"
	"string\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n";

/* "#open\t2024-01-31-12-00-00": Zeek's log time stamp format, in UTC. */
static void stamp(struct out *o, const char *what, uint64_t ns)
{
	time_t t = (time_t)(ns / 1000000000ULL);
	struct tm tm;
	char buf[32];

	if (!gmtime_r(&t, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%d-%H-%M-%S", &tm))
		snprintf(buf, sizeof(buf), "-");
	out_str(o, what);
	out_char(o, '\t');
	out_str(o, buf);
	out_char(o, '\n');
}

/* The lines before #open. #open carries the capture time of the first row,
 * so it and the column lines come with the first row (or at the end when
 * there is none). */
static void report_zeek_header(struct report *r)
{
	out_str(r->out, "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n"
			"#unset_field\t-\n#path\tconn\n");
}

static void columns(struct report *r, uint64_t open_ns)
{
	stamp(r->out, "#open", open_ns);
	out_str(r->out, fields);
	out_str(r->out, types);
}

static void endpoint(struct out *o, const struct conn *c, int role)
{
	char a[64];

	out_str(o, addr_str(c->key.family, conn_addr(c, role), a, sizeof(a)));
	out_char(o, '\t');
	out_u64(o, conn_port(c, role));
	out_char(o, '\t');
}

void report_zeek_connection(struct report *r, const struct conn *c)
{
	struct out *o = r->out;
	int orig = zeek_orig_role(c), resp = !orig;
	uint64_t dur = zeek_duration_ns(c);
	char buf[ZEEK_HISTORY_MAX + 8];

	if (!r->zeek_header_done) {
		report_zeek_header(r);
		columns(r, c->first_ns);
		r->zeek_header_done = true;
	}
	out_ts(o, c->first_ns);
	out_char(o, '\t');
	out_str(o, zeek_uid(c, buf, sizeof(buf)));
	out_char(o, '\t');
	endpoint(o, c, orig);
	endpoint(o, c, resp);
	out_str(o, "tcp\t-\t");
	/* MAIN set_conn: duration and the byte counts only when duration > 0 */
	if (dur) {
		out_secs(o, dur);
		out_char(o, '\t');
		out_u64(o, zeek_size(c, orig));
		out_char(o, '\t');
		out_u64(o, zeek_size(c, resp));
		out_char(o, '\t');
	} else {
		out_str(o, "-\t-\t-\t");
	}
	out_str(o, zeek_conn_state(c));
	out_str(o, "\t-\t-\t"); /* local_orig, local_resp: no Site::local_nets */
	out_u64(o, zeek_missed_bytes(c));
	out_char(o, '\t');
	if (zeek_history(c, buf, sizeof(buf)))
		out_str(o, buf);
	else
		out_char(o, '-');
	out_char(o, '\t');
	out_u64(o, zeek_packets(c, orig));
	out_char(o, '\t');
	out_u64(o, zeek_ip_bytes(c, orig));
	out_char(o, '\t');
	out_u64(o, zeek_packets(c, resp));
	out_char(o, '\t');
	out_u64(o, zeek_ip_bytes(c, resp));
	out_str(o, "\t-\n"); /* tunnel_parents: tcpstate does not log the tunnels */
}

void report_zeek_footer(struct report *r, const struct run_summary *s)
{
	if (!r->zeek_header_done) {   /* no connection */
		report_zeek_header(r);
		columns(r, s->frames ? s->first_ns : s->ref_ns);
		r->zeek_header_done = true;
	}
	stamp(r->out, "#close", s->frames ? s->last_ns : s->ref_ns);
}
