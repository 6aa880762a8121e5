/* live.c - watching an interface. Opens it like tcpdump (snaplen, buffer,
 * promiscuous, immediate mode, BPF filter), drops root if asked, and runs
 * the same pipeline as a file run, with a compact report every --interval,
 * the full report on SIGUSR1 (written by a forked copy, so capture goes on)
 * and at the end (-c, --duration, SIGINT, SIGTERM). Memory stays bounded:
 * finished connections leave at once, idle ones expire, --max-connections
 * caps the rest. */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pcap/pcap.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "decode.h"
#include "run.h"

/* The most connections a live text report keeps for its list (--limit 0). */
#define LIVE_MAX_LIMIT 1000

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t report_requested;
static pcap_t *live_pcap;   /* for pcap_breakloop() from the signal handler */

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		report_requested = 1;
	else
		stop_requested = 1;
	if (live_pcap)
		pcap_breakloop(live_pcap);
}

static uint64_t now_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int list_interfaces(void)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	pcap_if_t *all, *d;
	int i = 1;

	if (pcap_findalldevs(&all, errbuf) != 0) {
		fprintf(stderr, "tcpstate: cannot list interfaces: %s\n", errbuf);
		return 1;
	}
	for (d = all; d; d = d->next, i++) {
		printf("%d.%s", i, d->name);
		if (d->description)
			printf(" (%s)", d->description);
		printf(" [%s%s%s]\n", (d->flags & PCAP_IF_UP) ? "Up" : "Down",
		       (d->flags & PCAP_IF_RUNNING) ? ", Running" : "",
		       (d->flags & PCAP_IF_LOOPBACK) ? ", Loopback" : "");
	}
	pcap_freealldevs(all);
	return 0;
}

static pcap_t *open_live(const struct options *o, char *err, size_t errlen, int *status)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *p = pcap_create(o->iface, errbuf);
	int rc;

	*status = 1;
	if (!p) {
		snprintf(err, errlen, "%s", errbuf);
		return NULL;
	}
	pcap_set_snaplen(p, o->snaplen);
	pcap_set_promisc(p, !o->no_promisc);
	pcap_set_buffer_size(p, o->buffer_kib * 1024);
	pcap_set_immediate_mode(p, 1);
	pcap_set_timeout(p, 100);
	pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO);
	rc = pcap_activate(p);
	if (rc < 0) {
		snprintf(err, errlen, "%s", rc == PCAP_ERROR ? pcap_geterr(p) : pcap_statustostr(rc));
		if (rc == PCAP_ERROR_NO_SUCH_DEVICE)
			snprintf(err, errlen, "no such interface (tcpstate -D lists them)");
		else if (rc == PCAP_ERROR_PERM_DENIED)
			snprintf(err, errlen, "permission denied: live capture needs root or CAP_NET_RAW");
		pcap_close(p);
		return NULL;
	}
	if (rc > 0)
		fprintf(stderr, "tcpstate: %s: warning: %s\n", o->iface,
			rc == PCAP_WARNING ? pcap_geterr(p) : pcap_statustostr(rc));
	/* Non-blocking with our own poll(): ticks and signals stay on time
	 * whatever the kernel's block timeout does on a quiet interface. */
	if (pcap_setnonblock(p, 1, errbuf) != 0 || pcap_get_selectable_fd(p) < 0) {
		snprintf(err, errlen, "cannot poll the capture: %s", errbuf[0] ? errbuf : "no selectable fd");
		pcap_close(p);
		return NULL;
	}
	if (!decode_linktype_supported(pcap_datalink(p))) {
		const char *name = pcap_datalink_val_to_name(pcap_datalink(p));

		snprintf(err, errlen, "link type %s (%d) is not supported", name ? name : "?",
			 pcap_datalink(p));
		pcap_close(p);
		return NULL;
	}
	if (o->filter) {
		struct bpf_program prog;

		if (pcap_compile(p, &prog, o->filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
			snprintf(err, errlen, "invalid filter expression '%s': %s", o->filter, pcap_geterr(p));
			*status = 2;
			pcap_close(p);
			return NULL;
		}
		rc = pcap_setfilter(p, &prog);
		pcap_freecode(&prog);
		if (rc != 0) {
			snprintf(err, errlen, "cannot apply filter: %s", pcap_geterr(p));
			pcap_close(p);
			return NULL;
		}
	}
	return p;
}

/* -Z: give up root once the capture is open, as tcpdump does. */
static bool drop_privileges(const char *user, char *err, size_t errlen)
{
	struct passwd *pw = getpwnam(user);

	if (!pw) {
		snprintf(err, errlen, "-Z %s: no such user", user);
		return false;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		snprintf(err, errlen, "-Z %s: cannot switch user: %s", user, strerror(errno));
		return false;
	}
	if (setuid(0) == 0) {
		snprintf(err, errlen, "-Z %s: root could be regained; refusing to run", user);
		return false;
	}
	return true;
}

/* libpcap's counters. Only the parent reads them: a read resets the
 * kernel's counters, which libpcap adds up in its handle, so a read in the
 * SIGUSR1 child would lose them for the parent. */
static bool capture_stats(pcap_t *p, struct pcap_stat *ps)
{
	memset(ps, 0, sizeof(*ps));
	return pcap_stats(p, ps) == 0;
}

struct live {
	const struct options *opt;
	struct pipeline *pl;
	struct out *tick_out;     /* the report's output; stderr with --format zeek */
	int dlt;
	uint64_t frames_at_tick, segments_at_tick, conns_at_tick, retired_at_tick;
	uint64_t prev_tick_ns;
	size_t alerts_written;
	bool tty;                 /* text on a terminal: ticks refresh the screen */
	bool report_on_screen;    /* a full report is on the terminal: do not clear it */
	bool stop_on_count;
	uint64_t ts_unit;         /* nanoseconds per tv_usec unit: 1, or 1000 if nano precision was refused */
};

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *data)
{
	struct live *lv = (struct live *)user;
	struct run_summary *sum = &lv->pl->sum;
	struct packet p;
	enum decode_status why;

	if (lv->opt->count && sum->frames >= lv->opt->count) {
		lv->stop_on_count = true;
		return;
	}
	why = decode_frame(lv->dlt, data, h->caplen, h->len, &p);
	p.ts_ns = (uint64_t)(h->ts.tv_sec < 0 ? 0 : h->ts.tv_sec) * 1000000000ULL +
		  (uint64_t)h->ts.tv_usec * lv->ts_unit;
	if (!sum->frames)
		sum->first_ns = p.ts_ns;
	sum->frames++;
	if (p.ts_ns > sum->last_ns)
		sum->last_ns = p.ts_ns;
	if (why != DECODE_OK) {
		sum->decode[why]++;
		return;
	}
	p.number = sum->frames;
	sum->segments++;
	tracker_packet(lv->pl->trk, &p);
	if (lv->opt->count && sum->frames >= lv->opt->count)
		lv->stop_on_count = true;
}

/* Take in what the kernel has already captured, so that a report asked for
 * now (a signal, the end) includes every packet seen before it. A signal's
 * pcap_breakloop() may still be pending: it ends the first call at once. */
static void drain(struct live *lv, pcap_t *p)
{
	for (int i = 0; i < 2; i++)
		if (pcap_dispatch(p, -1, on_packet, (u_char *)lv) != PCAP_ERROR_BREAK)
			break;
}

/* The states of the open connections, for the tick. */
struct tick_counts {
	uint64_t state[2][TS_COUNT];
	uint64_t stuck_cw, half_open;
	uint64_t new_stuck_cw, new_half_open;   /* since the previous tick */
	uint64_t cw_after_ns, now_ns, prev_ns;
};

static void count_open(void *ctx, const struct conn *c)
{
	struct tick_counts *tc = ctx;

	for (int r = 0; r < 2; r++) {
		uint8_t st = c->peer[r].state;
		uint64_t since = c->peer[r].since_ns;

		tc->state[r][st]++;
		if (st == TS_CLOSE_WAIT && tc->now_ns > since && tc->now_ns - since >= tc->cw_after_ns) {
			tc->stuck_cw++;
			/* stuck since the previous tick: it crossed the threshold meanwhile */
			if (tc->prev_ns <= since || tc->prev_ns - since < tc->cw_after_ns)
				tc->new_stuck_cw++;
		}
	}
	if (c->peer[ROLE_SERVER].state == TS_SYN_RECEIVED ||
	    (c->peer[ROLE_CLIENT].state == TS_SYN_SENT && c->peer[ROLE_SERVER].state == TS_CLOSED)) {
		tc->half_open++;
		if (c->first_ns > tc->prev_ns)
			tc->new_half_open++;
	}
}

static void tick(struct live *lv, pcap_t *p, uint64_t now)
{
	struct pipeline *pl = lv->pl;
	struct out *o = lv->tick_out;
	const struct tracker_stats *ts;
	struct analyses_counts ac;
	struct tick_counts tc;
	struct pcap_stat ps;
	bool have_ps = capture_stats(p, &ps);
	char tm[40];

	tracker_tick(pl->trk, now);
	/* the records of the connections finished by now, before the tick's line */
	report_flush(pl->rep);
	ts = tracker_stats(pl->trk);
	memset(&tc, 0, sizeof(tc));
	tc.cw_after_ns = lv->opt->close_wait_after_ns;
	tc.now_ns = now;
	tc.prev_ns = lv->prev_tick_ns;
	tracker_foreach(pl->trk, count_open, &tc);
	analyses_counts(pl->an, &ac);

	if (lv->opt->format == FMT_JSON) {
		out_str(o, "{\"type\":\"tick\",\"ts\":");
		out_ts(o, now);
		out_str(o, ",\"interval\":");
		out_secs(o, lv->opt->interval_ns);
		out_fmt(o, ",\"packets\":%llu,\"tcp_segments\":%llu,\"open\":%llu,\"new_connections\":%llu,\"finished\":%llu",
			(unsigned long long)(pl->sum.frames - lv->frames_at_tick),
			(unsigned long long)(pl->sum.segments - lv->segments_at_tick),
			(unsigned long long)tracker_open_count(pl->trk),
			(unsigned long long)(ts->connections - lv->conns_at_tick),
			(unsigned long long)(ts->retired - lv->retired_at_tick));
		out_str(o, ",\"states\":{");
		for (int r = 0; r < 2; r++) {
			out_str(o, r ? "},\"server\":{" : "\"client\":{");
			for (int s = 0; s < TS_COUNT; s++)
				out_fmt(o, "%s\"%s\":%llu", s ? "," : "", tcp_state_name((enum tcp_state)s),
					(unsigned long long)tc.state[r][s]);
		}
		out_fmt(o, "}},\"close_wait_stuck\":%llu,\"new_close_wait_stuck\":%llu,\"half_open\":%llu,"
			"\"new_half_open\":%llu,\"syn_alerts\":%llu,"
			"\"time_wait\":%llu,\"time_wait_peak\":%llu,\"expired\":%llu,\"evicted\":%llu",
			(unsigned long long)tc.stuck_cw, (unsigned long long)tc.new_stuck_cw,
			(unsigned long long)tc.half_open, (unsigned long long)tc.new_half_open,
			(unsigned long long)ac.syn_alerts, (unsigned long long)ac.time_wait_now,
			(unsigned long long)ac.time_wait_peak, (unsigned long long)ts->expired,
			(unsigned long long)ts->evicted);
		if (have_ps)
			out_fmt(o, ",\"pcap\":{\"received\":%u,\"dropped\":%u,\"if_dropped\":%u}", ps.ps_recv,
				ps.ps_drop, ps.ps_ifdrop);
		if (have_ps && (ps.ps_drop || ps.ps_ifdrop))
			out_str(o, ",\"warning\":\"the kernel dropped packets: some states may be wrong\"");
		out_str(o, "}\n");
		lv->alerts_written = analyses_write_alerts_since(pl->an, o, lv->alerts_written);
	} else {
		if (lv->tty && !lv->report_on_screen)
			out_str(o, "\033[H\033[2J");
		out_fmt(o, "%s  open %llu (+%llu, -%llu)", time_str(now, tm, sizeof(tm)) + 11,
			(unsigned long long)tracker_open_count(pl->trk),
			(unsigned long long)(ts->connections - lv->conns_at_tick),
			(unsigned long long)(ts->retired - lv->retired_at_tick));
		for (int s = 1; s < TS_COUNT; s++)
			if (tc.state[0][s] || tc.state[1][s])
				out_fmt(o, "  %s %llu/%llu", tcp_state_name((enum tcp_state)s),
					(unsigned long long)tc.state[0][s], (unsigned long long)tc.state[1][s]);
		out_fmt(o, "  | stuck CLOSE_WAIT %llu (+%llu), half-open %llu (+%llu), SYN alerts %llu, TIME_WAIT %llu (peak %llu)",
			(unsigned long long)tc.stuck_cw, (unsigned long long)tc.new_stuck_cw,
			(unsigned long long)tc.half_open, (unsigned long long)tc.new_half_open,
			(unsigned long long)ac.syn_alerts, (unsigned long long)ac.time_wait_now,
			(unsigned long long)ac.time_wait_peak);
		if (have_ps)
			out_fmt(o, "  | pcap %u received, %u dropped%s", ps.ps_recv, ps.ps_drop + ps.ps_ifdrop,
				ps.ps_drop || ps.ps_ifdrop ? " (WARNING: states may be wrong)" : "");
		out_str(o, lv->tty ? "\n(states client/server; SIGUSR1: full report; Ctrl-C: stop)\n" : "\n");
	}
	out_flush(o);
	if (o != pl->out)
		out_flush(pl->out);   /* Zeek rows of the connections finished meanwhile */
	lv->frames_at_tick = pl->sum.frames;
	lv->segments_at_tick = pl->sum.segments;
	lv->conns_at_tick = ts->connections;
	lv->retired_at_tick = ts->retired;
	lv->prev_tick_ns = now;
}

/* The counters come with every full report, before it (JSON: a "capture"
 * record, so the summary stays last). A Zeek conn.log has no place for
 * them: there they are on stderr, with the ticks. */
static void write_capture(struct live *lv, const struct pcap_stat *ps, bool have)
{
	struct out *o = lv->pl->out;
	bool lost = ps->ps_drop || ps->ps_ifdrop;

	if (!have || lv->opt->format == FMT_ZEEK)
		return;
	if (lv->opt->format == FMT_JSON) {
		out_str(o, "{\"type\":\"capture\",\"interface\":");
		out_json_str(o, lv->opt->iface);
		out_fmt(o, ",\"received\":%u,\"dropped\":%u,\"if_dropped\":%u", ps->ps_recv,
			ps->ps_drop, ps->ps_ifdrop);
		if (lost)
			out_str(o, ",\"warning\":\"the kernel dropped packets: some states may be wrong\"");
		out_str(o, "}\n");
	} else {
		out_fmt(o, "Live capture on %s: %u packets received by the filter, %u dropped by the kernel, %u dropped by the interface%s\n",
			lv->opt->iface, ps->ps_recv, ps->ps_drop, ps->ps_ifdrop,
			lost ? " (WARNING: some states may be wrong)" : "");
	}
}

/* SIGUSR1: a forked copy settles a snapshot of everything and writes the
 * full report through the same code as the final one; the capture goes on
 * in the parent (the kernel buffers packets meanwhile). On a terminal the
 * report stays: later ticks are appended below it instead of clearing it. */
static void full_report(struct live *lv, pcap_t *p, uint64_t now)
{
	struct pcap_stat ps;
	bool have_ps = capture_stats(p, &ps);
	pid_t pid;

	report_flush(lv->pl->rep);   /* not written by both processes */
	out_flush(lv->tick_out);
	out_flush(lv->pl->out);
	lv->report_on_screen = lv->tty;
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "tcpstate: cannot write the report now: %s\n", strerror(errno));
		return;
	}
	if (pid == 0) {
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		write_capture(lv, &ps, have_ps);
		lv->pl->sum.ref_kind = "snapshot";
		pipeline_finish(lv->pl, now, false);
		_exit(0);
	}
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static void pcap_counters(struct live *lv, pcap_t *p)
{
	struct pcap_stat ps;

	if (!capture_stats(p, &ps))
		return;
	write_capture(lv, &ps, true);
	fprintf(stderr, "tcpstate: %u packets received by the filter, %u dropped by the kernel, %u dropped by the interface\n",
		ps.ps_recv, ps.ps_drop, ps.ps_ifdrop);
	if (ps.ps_drop || ps.ps_ifdrop)
		fprintf(stderr, "tcpstate: warning: packets were dropped before tcpstate saw them; some states may be wrong (try a larger -B or a narrower filter)\n");
}

int run_live(const struct options *o, int out_fd)
{
	struct options lo = *o;
	struct pipeline pl;
	struct live lv;
	struct sigaction sa;
	char err[PCAP_ERRBUF_SIZE + 128];
	int status;
	pcap_t *p;
	uint64_t start, next_tick;

	for (int st = 0; st < TS_COUNT; st++)
		if (!(o->idle_set & (1u << st)) && live_idle_default_s[st])
			lo.idle_ns[st] = live_idle_default_s[st] * 1000000000ULL;
	/* The text list keeps its connections until the end: "all" would keep
	 * every connection of a run that may last weeks. */
	if (o->format == FMT_TEXT && lo.limit == 0) {
		lo.limit = LIVE_MAX_LIMIT;
		fprintf(stderr, "tcpstate: live: --limit 0 lists at most %d connections (memory stays bounded)\n",
			LIVE_MAX_LIMIT);
	}
	p = open_live(&lo, err, sizeof(err), &status);
	if (!p) {
		fprintf(stderr, "tcpstate: %s: %s\n", o->iface, err);
		return status;
	}
	if (o->user) {
		if (!drop_privileges(o->user, err, sizeof(err))) {
			fprintf(stderr, "tcpstate: %s\n", err);
			pcap_close(p);
			return 1;
		}
	} else if (geteuid() == 0) {
		fprintf(stderr, "tcpstate: warning: running as root; use -Z USER to drop privileges after opening the capture\n");
	}
	if (!pipeline_init(&pl, &lo, out_fd)) {
		fprintf(stderr, "tcpstate: out of memory\n");
		pcap_close(p);
		return 1;
	}
	memset(&lv, 0, sizeof(lv));
	lv.opt = &lo;
	lv.pl = &pl;
	lv.dlt = pcap_datalink(p);
	lv.ts_unit = pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO ? 1 : 1000;
	pl.sum.iface = o->iface;
	lv.tty = isatty(out_fd) && o->format == FMT_TEXT;
	/* A Zeek conn.log on stdout takes nothing else: the ticks go to stderr. */
	lv.tick_out = o->format == FMT_ZEEK ? out_create(STDERR_FILENO) : pl.out;
	if (!lv.tick_out) {
		fprintf(stderr, "tcpstate: out of memory\n");
		pipeline_destroy(&pl);
		pcap_close(p);
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	live_pcap = p;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	fprintf(stderr, "tcpstate: listening on %s, link type %s, snapshot length %d bytes\n", o->iface,
		pcap_datalink_val_to_name(lv.dlt) ? pcap_datalink_val_to_name(lv.dlt) : "?", o->snaplen);

	start = now_mono_ns();
	next_tick = start + lo.interval_ns;
	status = 0;
	while (!stop_requested && !lv.stop_on_count) {
		struct pollfd pfd = { .fd = pcap_get_selectable_fd(p), .events = POLLIN };
		uint64_t mono = now_mono_ns();
		int wait_ms = next_tick > mono ? (int)((next_tick - mono) / 1000000ULL) + 1 : 0;
		int n = 0;

		if (wait_ms > 100)
			wait_ms = 100;
		if (poll(&pfd, 1, wait_ms) > 0 || wait_ms == 0)
			n = pcap_dispatch(p, -1, on_packet, (u_char *)&lv);
		mono = now_mono_ns();

		if (n == PCAP_ERROR) {
			fprintf(stderr, "tcpstate: %s: %s\n", o->iface, pcap_geterr(p));
			status = 1;
			break;
		}
		if (report_requested) {
			report_requested = 0;
			drain(&lv, p);
			full_report(&lv, p, now_realtime_ns());
		}
		if (o->duration_ns && mono - start >= o->duration_ns)
			break;
		if (mono >= next_tick) {
			tick(&lv, p, now_realtime_ns());
			while (next_tick <= mono)
				next_tick += lo.interval_ns;
		}
		/* Nobody reads the report any more (tcpstate -i eth0 | head):
		 * stop rather than capture for nothing. */
		if (out_failed(pl.out)) {
			fprintf(stderr, "tcpstate: cannot write the report (output closed?); stopping\n");
			status = 1;
			break;
		}
	}
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (status == 0)
		drain(&lv, p);
	pcap_counters(&lv, p);
	pl.sum.ref_kind = "stop";
	if (!pipeline_finish(&pl, now_realtime_ns(), false) && status == 0)
		status = 1;
	if (lv.tick_out != pl.out)
		out_destroy(lv.tick_out);
	pipeline_destroy(&pl);
	live_pcap = NULL;
	pcap_close(p);
	return status;
}
