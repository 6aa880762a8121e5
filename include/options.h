/* options.h - the command line: tcpdump-style -r/-i/-c and a trailing BPF
 * expression, plus tcpstate's own long options. Parsing only; no I/O but the
 * error message it writes into the caller's buffer. */
#ifndef TCPSTATE_OPTIONS_H
#define TCPSTATE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tcp_fsm.h"

enum out_format { FMT_TEXT, FMT_JSON, FMT_ZEEK };
enum run_action { ACT_RUN, ACT_HELP, ACT_VERSION, ACT_LIST_IFACES };

struct options {
	enum run_action action;
	const char **files;       /* -r, in order; "-" is stdin */
	size_t nfiles;
	const char *iface;        /* -i */
	uint64_t count;           /* -c: stop after this many packets (0: all) */
	char *filter;             /* trailing BPF expression, NULL if none */
	enum out_format format;
	bool timeline;            /* --timeline */
	bool at_set;              /* --at given */
	bool at_relative;         /* --at +SECONDS: at_ns is an offset from the first packet */
	uint64_t at_ns;
	uint64_t limit;           /* --limit: connections listed in text (0: all) */
	uint64_t time_wait_ns;    /* --time-wait */
	unsigned report_mask;     /* --report sections (enum report_section); 0: the default */
	/* analysis thresholds (analyses.h has the defaults and their reasons) */
	uint64_t close_wait_after_ns;
	uint64_t vanished_after_ns;
	uint64_t interval_ns;
	uint64_t syn_rate;
	double syn_incomplete;
	uint64_t syn_buckets;
	double tw_warn;
	uint64_t max_connections; /* --max-connections (0: no cap) */
	uint64_t idle_ns[TS_COUNT]; /* idle timeout per state (0: none; live mode fills defaults) */
	unsigned idle_set;        /* states whose timeout --idle-timeout gave */
	/* live capture */
	int snaplen;              /* -s */
	int buffer_kib;           /* -B */
	bool no_promisc;          /* -p */
	const char *user;         /* -Z */
	uint64_t duration_ns;     /* --duration (0: until stopped) */
};

/* Defaults. Each has its reason in the README and the man page. */
#define DEFAULT_LIMIT 50               /* one screen or two of the worst connections */
#define DEFAULT_TIME_WAIT_S 60         /* Linux TCP_TIMEWAIT_LEN (2 x MSL of 30 s) */
#define DEFAULT_SNAPLEN 256            /* link + 2 VLANs + IPv6 + ext headers + TCP with options, and a tunnel */
#define DEFAULT_BUFFER_KIB 8192        /* 8 MiB kernel buffer: rides out bursts at 10 Gb/s for a few ms */

/* Idle timeouts live mode uses unless --idle-timeout says otherwise, from
 * Linux's nf_conntrack TCP timeouts (and Linux's own timers where it has
 * them); CLOSE_WAIT has no timer in Linux (the application must close), so
 * it gets ESTABLISHED's 5 days to keep leaks visible. */
extern const uint64_t live_idle_default_s[TS_COUNT];

/* Parse argv into *o (which it initialises). Returns 0, or 2 for a usage
 * error with a message in err. Free with options_free(). */
int options_parse(int argc, char **argv, struct options *o, char *err, size_t errlen);
void options_free(struct options *o);

/* "12", "0.25": non-negative seconds to nanoseconds. */
bool parse_seconds(const char *s, uint64_t *ns);
/* --at forms: epoch seconds ("1700000000.5"), ISO 8601
 * ("2023-11-14T22:13:20.5Z", "2023-11-14 22:13:20+01:00"; no zone = UTC),
 * or "+SECONDS" from the first packet (*relative set). */
bool parse_time(const char *s, uint64_t *ns, bool *relative);

/* The --help text. */
extern const char options_usage[];

#endif
