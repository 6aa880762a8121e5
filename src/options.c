/* options.c - command-line parsing. Keeps tcpdump's conventions (-r, -i,
 * -c, a trailing filter expression) so users need not learn new ones, and
 * validates every value up front: a bad value is a usage error (exit 2)
 * before any capture is opened. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analyses.h"
#include "options.h"

const uint64_t live_idle_default_s[TS_COUNT] = {
	[TS_SYN_SENT] = 120,        /* nf_conntrack_tcp_timeout_syn_sent */
	[TS_SYN_RECEIVED] = 60,     /* nf_conntrack_tcp_timeout_syn_recv */
	[TS_ESTABLISHED] = 432000,  /* nf_conntrack_tcp_timeout_established (5 days) */
	[TS_FIN_WAIT_1] = 120,      /* nf_conntrack_tcp_timeout_fin_wait */
	[TS_FIN_WAIT_2] = 120,      /* nf_conntrack_tcp_timeout_fin_wait */
	[TS_CLOSING] = 120,         /* nf_conntrack_tcp_timeout_fin_wait */
	[TS_CLOSE_WAIT] = 432000,   /* no Linux timer: a leak stays until the application closes */
	[TS_LAST_ACK] = 30,         /* nf_conntrack_tcp_timeout_last_ack */
};

const char options_usage[] =
"Usage: tcpstate [options] -r FILE [-r FILE ...] [expression]\n"
"       tcpstate [options] -i IFACE [expression]\n"
"       tcpstate -D\n"
"Reconstruct the TCP state of both endpoints of every connection in a capture.\n"
"\n"
"Input:\n"
"  -r FILE            read a pcap or pcapng file (\"-\" for stdin); several -r are\n"
"                     read in order as one capture (rotated files)\n"
"  -c N               stop after N packets\n"
"  -i IFACE           watch an interface live (\"any\" for all); -D lists them\n"
"  -s SNAPLEN         live: bytes captured per packet (default 256)\n"
"  -B KIB             live: kernel buffer size in KiB (default 8192)\n"
"  -p                 live: do not put the interface in promiscuous mode\n"
"  -Z USER            live: drop root privileges to USER after opening\n"
"  --duration SECS    live: stop after SECS seconds\n"
"  --idle-timeout STATE=SECS  forget connections idle that long in STATE\n"
"                     (live defaults follow conntrack: ESTABLISHED=432000,\n"
"                     SYN_SENT=120, SYN_RECEIVED=60, FIN_WAIT_1/2=120, ...)\n"
"  expression         a BPF filter, as in tcpdump (e.g. 'port 8080')\n"
"\n"
"Report:\n"
"  --format FMT       text (default), json (JSON Lines) or zeek (a Zeek conn.log)\n"
"  --timeline         list every state change of every listed connection\n"
"  --at TIME          states as of TIME: epoch seconds, ISO 8601 (UTC unless a\n"
"                     zone is given) or +SECONDS from the first packet\n"
"  --limit N          list at most N connections in text, unclean ones first\n"
"                     (default 50; 0 lists all)\n"
"  --time-wait SECS   TIME_WAIT length, 2 x MSL (default 60, as Linux)\n"
"  --max-connections N  track at most N connections, evicting the longest idle\n"
"                     (default: no cap)\n"
"\n"
"Troubleshooting reports (text sections / JSON records):\n"
"  --report LIST      sections to show: states, connections, close_wait,\n"
"                     half_open, syn_flood, time_wait, anomalies, listeners, all\n"
"                     (default: states, connections and every report with findings)\n"
"  --close-wait-after SECS   CLOSE_WAIT older than this is stuck (default 60)\n"
"  --vanished-after SECS     silence that makes a peer vanished (default 30)\n"
"  --interval SECS    SYN-rate bucket, and the live report period (default 1)\n"
"  --syn-rate N       SYNs/s to one service that may be a flood (default 100)\n"
"  --syn-incomplete F share of SYNs never completing a handshake (default 0.8)\n"
"  --syn-buckets N    buckets in a row both must hold (default 3)\n"
"  --tw-warn F        share of the ephemeral range in TIME_WAIT that warns (default 0.5)\n"
"\n"
"  -h, --help         this help\n"
"  -V, --version      version\n"
"\n"
"Exit status: 0 ok, 1 input problem (unreadable or damaged capture), 2 usage error.\n";

enum {
	OPT_FORMAT = 256,
	OPT_TIMELINE,
	OPT_AT,
	OPT_LIMIT,
	OPT_TIME_WAIT,
	OPT_REPORT,
	OPT_CLOSE_WAIT_AFTER,
	OPT_VANISHED_AFTER,
	OPT_INTERVAL,
	OPT_SYN_RATE,
	OPT_SYN_INCOMPLETE,
	OPT_SYN_BUCKETS,
	OPT_TW_WARN,
	OPT_MAX_CONNECTIONS,
	OPT_DURATION,
	OPT_IDLE_TIMEOUT,
};

static const struct option long_opts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "timeline", no_argument, NULL, OPT_TIMELINE },
	{ "at", required_argument, NULL, OPT_AT },
	{ "limit", required_argument, NULL, OPT_LIMIT },
	{ "time-wait", required_argument, NULL, OPT_TIME_WAIT },
	{ "report", required_argument, NULL, OPT_REPORT },
	{ "close-wait-after", required_argument, NULL, OPT_CLOSE_WAIT_AFTER },
	{ "vanished-after", required_argument, NULL, OPT_VANISHED_AFTER },
	{ "interval", required_argument, NULL, OPT_INTERVAL },
	{ "syn-rate", required_argument, NULL, OPT_SYN_RATE },
	{ "syn-incomplete", required_argument, NULL, OPT_SYN_INCOMPLETE },
	{ "syn-buckets", required_argument, NULL, OPT_SYN_BUCKETS },
	{ "tw-warn", required_argument, NULL, OPT_TW_WARN },
	{ "max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
	{ NULL, 0, NULL, 0 },
};

static const char *opt_name(int ch)
{
	for (const struct option *o = long_opts; o->name; o++)
		if (o->val == ch)
			return o->name;
	return "?";
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long x;

	if (!s || !*s || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*v = x;
	return true;
}

/* Decimal seconds with up to nine fraction digits, without floating point,
 * so "1700000000.123456789" keeps every nanosecond. */
static bool parse_decimal_ns(const char *s, uint64_t *ns)
{
	uint64_t whole = 0, frac = 0;
	int digits = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
		return false;
	for (; isdigit((unsigned char)*p); p++) {
		if (whole > (UINT64_MAX / 1000000000ULL) / 10)
			return false;
		whole = whole * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		for (p++; isdigit((unsigned char)*p); p++)
			if (digits < 9) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				digits++;
			}
	}
	if (*p)
		return false;
	for (; digits < 9; digits++)
		frac *= 10;
	*ns = whole * 1000000000ULL + frac;
	return true;
}

/* A share between 0 and 1, e.g. "0.8". */
static bool parse_share(const char *s, double *v)
{
	char *end;

	if (!s || !*s)
		return false;
	errno = 0;
	*v = strtod(s, &end);
	return !errno && !*end && *v >= 0.0 && *v <= 1.0;
}

bool parse_seconds(const char *s, uint64_t *ns)
{
	return s && parse_decimal_ns(s, ns);
}

static bool parse_iso8601(const char *s, uint64_t *ns)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, n = 0;
	uint64_t frac = 0;
	long off = 0;
	const char *p;
	time_t t;

	if (sscanf(s, "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    n == 0)
		return false;
	p = s + n;
	if (*p == '.') {
		int digits = 0;

		for (p++; isdigit((unsigned char)*p); p++)
			if (digits < 9) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				digits++;
			}
		for (; digits < 9; digits++)
			frac *= 10;
	}
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om = 0, k = 0;

		p++;
		if (sscanf(p, "%2d%n", &oh, &k) != 1 || k != 2)
			return false;
		p += 2;
		if (*p == ':')
			p++;
		if (isdigit((unsigned char)*p)) {
			if (sscanf(p, "%2d%n", &om, &k) != 1 || k != 2)
				return false;
			p += 2;
		}
		if (oh > 23 || om > 59)
			return false;
		off = sign * (oh * 3600L + om * 60L);
	}
	if (*p)
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return false;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm) - off; /* local time = UTC + offset */
	if (t < 0)
		return false;
	*ns = (uint64_t)t * 1000000000ULL + frac;
	return true;
}

bool parse_time(const char *s, uint64_t *ns, bool *relative)
{
	*relative = false;
	if (!s || !*s)
		return false;
	if (*s == '+') {
		*relative = true;
		return parse_decimal_ns(s + 1, ns);
	}
	if (parse_decimal_ns(s, ns))
		return true;
	return parse_iso8601(s, ns);
}

static int usage_error(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int usage_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return 2;
}

int options_parse(int argc, char **argv, struct options *o, char *err, size_t errlen)
{
	const char *live_only = NULL;  /* a live-only option given, for the -r check */
	int ch;

	memset(o, 0, sizeof(*o));
	o->limit = DEFAULT_LIMIT;
	o->time_wait_ns = DEFAULT_TIME_WAIT_S * 1000000000ULL;
	o->close_wait_after_ns = DEFAULT_CLOSE_WAIT_AFTER_S * 1000000000ULL;
	o->vanished_after_ns = DEFAULT_VANISHED_AFTER_S * 1000000000ULL;
	o->interval_ns = 1000000000ULL;
	o->syn_rate = DEFAULT_SYN_RATE;
	o->syn_incomplete = DEFAULT_SYN_INCOMPLETE;
	o->syn_buckets = DEFAULT_SYN_BUCKETS;
	o->tw_warn = DEFAULT_TW_WARN;
	o->snaplen = DEFAULT_SNAPLEN;
	o->buffer_kib = DEFAULT_BUFFER_KIB;
	o->files = calloc((size_t)argc + 1, sizeof(*o->files));
	if (!o->files)
		return usage_error(err, errlen, "out of memory");
	optind = 1;
	opterr = 0;
	/* '+': stop at the first non-option, as the filter expression follows. */
	while ((ch = getopt_long(argc, argv, "+r:i:c:s:B:Z:pDhVn", long_opts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			o->files[o->nfiles++] = optarg;
			break;
		case 'i':
			o->iface = optarg;
			break;
		case 'c':
			if (!parse_u64(optarg, &o->count) || o->count == 0)
				return usage_error(err, errlen,
					"invalid -c '%s': expected a positive packet count", optarg);
			break;
		case 'n':
			break; /* tcpstate never resolves names; accepted for tcpdump habits */
		case 's':
		case 'B': {
			uint64_t v;

			/* Linux cannot map a capture ring smaller than 64 KiB ("can't
			 * mmap rx ring"): refuse it here, with a clear message. */
			if (!parse_u64(optarg, &v) || v < (ch == 's' ? 1 : 64) ||
			    v > (ch == 's' ? 262144 : 4194304))
				return usage_error(err, errlen, "invalid -%c '%s': expected %s", ch, optarg,
						   ch == 's' ? "a snapshot length from 1 to 262144" :
							       "a buffer size in KiB from 64 to 4194304");
			live_only = ch == 's' ? "-s" : "-B";
			if (ch == 's')
				o->snaplen = (int)v;
			else
				o->buffer_kib = (int)v;
			break;
		}
		case 'p':
			o->no_promisc = true;
			live_only = "-p";
			break;
		case 'Z':
			o->user = optarg;
			live_only = "-Z";
			break;
		case 'D':
			o->action = ACT_LIST_IFACES;
			return 0;
		case OPT_DURATION:
			if (!parse_seconds(optarg, &o->duration_ns) || !o->duration_ns)
				return usage_error(err, errlen, "invalid --duration '%s': expected seconds", optarg);
			live_only = "--duration";
			break;
		case OPT_IDLE_TIMEOUT: {
			const char *eq = strchr(optarg, '=');
			char name[24];
			int st;
			uint64_t ns;

			if (!eq || (size_t)(eq - optarg) >= sizeof(name))
				return usage_error(err, errlen,
					"invalid --idle-timeout '%s': expected STATE=SECONDS, e.g. ESTABLISHED=3600", optarg);
			memcpy(name, optarg, (size_t)(eq - optarg));
			name[eq - optarg] = 0;
			st = tcp_state_parse(name);
			if (st <= TS_CLOSED || st == TS_TIME_WAIT || !parse_seconds(eq + 1, &ns) || !ns)
				return usage_error(err, errlen,
					"invalid --idle-timeout '%s': expected STATE=SECONDS with a state from "
					"SYN_SENT to LAST_ACK (TIME_WAIT is --time-wait)", optarg);
			o->idle_ns[st] = ns;
			o->idle_set |= 1u << st;
			break;
		}
		case 'h':
			o->action = ACT_HELP;
			return 0;
		case 'V':
			o->action = ACT_VERSION;
			return 0;
		case OPT_FORMAT:
			if (strcmp(optarg, "text") == 0)
				o->format = FMT_TEXT;
			else if (strcmp(optarg, "json") == 0)
				o->format = FMT_JSON;
			else if (strcmp(optarg, "zeek") == 0)
				o->format = FMT_ZEEK;
			else
				return usage_error(err, errlen,
					"invalid --format '%s': expected text, json or zeek", optarg);
			break;
		case OPT_TIMELINE:
			o->timeline = true;
			break;
		case OPT_AT:
			if (!parse_time(optarg, &o->at_ns, &o->at_relative))
				return usage_error(err, errlen,
					"invalid --at '%s': expected epoch seconds, ISO 8601 "
					"(2024-01-31T12:00:00Z) or +SECONDS", optarg);
			o->at_set = true;
			break;
		case OPT_LIMIT:
			if (!parse_u64(optarg, &o->limit))
				return usage_error(err, errlen,
					"invalid --limit '%s': expected a number (0 lists all)", optarg);
			break;
		case OPT_TIME_WAIT:
			if (!parse_seconds(optarg, &o->time_wait_ns))
				return usage_error(err, errlen,
					"invalid --time-wait '%s': expected seconds", optarg);
			break;
		case OPT_REPORT:
			if (!report_sections_parse(optarg, &o->report_mask))
				return usage_error(err, errlen,
					"invalid --report '%s': expected a comma-separated list of states, "
					"connections, close_wait, half_open, syn_flood, time_wait, anomalies, "
					"listeners, or all", optarg);
			break;
		case OPT_CLOSE_WAIT_AFTER:
		case OPT_VANISHED_AFTER:
		case OPT_INTERVAL: {
			uint64_t *dst = ch == OPT_CLOSE_WAIT_AFTER ? &o->close_wait_after_ns :
					ch == OPT_VANISHED_AFTER ? &o->vanished_after_ns : &o->interval_ns;

			if (!parse_seconds(optarg, dst) || (ch == OPT_INTERVAL && *dst == 0))
				return usage_error(err, errlen, "invalid --%s '%s': expected seconds",
						   opt_name(ch), optarg);
			break;
		}
		case OPT_SYN_RATE:
		case OPT_SYN_BUCKETS:
		case OPT_MAX_CONNECTIONS: {
			uint64_t *dst = ch == OPT_SYN_RATE ? &o->syn_rate :
					ch == OPT_SYN_BUCKETS ? &o->syn_buckets : &o->max_connections;

			if (!parse_u64(optarg, dst) || (*dst == 0 && ch != OPT_MAX_CONNECTIONS))
				return usage_error(err, errlen, "invalid --%s '%s': expected a positive number",
						   opt_name(ch), optarg);
			break;
		}
		case OPT_SYN_INCOMPLETE:
		case OPT_TW_WARN:
			if (!parse_share(optarg, ch == OPT_TW_WARN ? &o->tw_warn : &o->syn_incomplete))
				return usage_error(err, errlen,
					"invalid %s '%s': expected a share between 0 and 1",
					ch == OPT_TW_WARN ? "--tw-warn" : "--syn-incomplete", optarg);
			break;
		case '?':
		default:
			if (optopt && optopt < 256)
				snprintf(err, errlen, "option -%c %s", optopt,
					 strchr("ricsBZ", optopt) ? "needs an argument" : "is unknown");
			else
				snprintf(err, errlen, "unknown or incomplete option '%s'",
					 argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		size_t len = 0;

		for (int i = optind; i < argc; i++)
			len += strlen(argv[i]) + 1;
		o->filter = malloc(len);
		if (!o->filter)
			return usage_error(err, errlen, "out of memory");
		len = 0;
		for (int i = optind; i < argc; i++) {
			size_t n = strlen(argv[i]);

			if (i > optind)
				o->filter[len++] = ' ';
			memcpy(o->filter + len, argv[i], n);
			len += n;
		}
		o->filter[len] = 0;
	}
	if (o->nfiles == 0 && !o->iface)
		return usage_error(err, errlen, "no input: give -r FILE (see --help)");
	if (o->nfiles && o->iface)
		return usage_error(err, errlen, "-r and -i cannot be combined");
	if (o->nfiles && live_only)
		return usage_error(err, errlen, "%s is for live capture (-i), not for -r files", live_only);
	if (o->iface && o->at_set)
		return usage_error(err, errlen, "--at is for -r files; a live capture reports as of now");
	return 0;
}

void options_free(struct options *o)
{
	free(o->files);
	free(o->filter);
	o->files = NULL;
	o->filter = NULL;
}
