/* output.c - buffered report writer and the shared text forms.
 * Reports can be millions of lines; everything goes through one 1 MiB
 * buffer written with write(2), and the hot per-connection path formats
 * integers by hand instead of through printf. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "output.h"

struct out *out_create(int fd)
{
	struct out *o = malloc(sizeof(*o));

	if (!o)
		return NULL;
	o->fd = fd;
	o->failed = false;
	o->len = 0;
	for (int i = 0; i < OUT_TS_SLOTS; i++)
		o->ts_sec[i] = UINT64_MAX;
	return o;
}

bool out_flush(struct out *o)
{
	size_t off = 0;

	while (!o->failed && off < o->len) {
		ssize_t n = write(o->fd, o->buf + off, o->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			o->failed = true;
		else
			off += (size_t)n;
	}
	o->len = 0;
	return !o->failed;
}

bool out_destroy(struct out *o)
{
	bool ok;

	if (!o)
		return true;
	ok = out_flush(o);
	free(o);
	return ok;
}

bool out_failed(const struct out *o)
{
	return o->failed;
}

void out_mem_slow(struct out *o, const char *s, size_t n)
{
	while (n > 0) {
		size_t room = OUT_BUF - o->len, k = n < room ? n : room;

		memcpy(o->buf + o->len, s, k);
		o->len += k;
		s += k;
		n -= k;
		if (o->len == OUT_BUF)
			out_flush(o);
	}
}

/* Numbers are most of a JSON record: they are written two digits a step. */
static const char pairs[200] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/* Numbers straight to their place, without a division per pair of digits:
 * u / 10^k as a 32.32 fixed-point number, its integer part the leading one
 * or two digits, then each * 100 of the fraction brings out the next pair.
 * The multipliers are ceil(2^(32+s) / 10^k) and what is left after the
 * shift by s is rounded up, so the fraction is never below the true one
 * (R / 10^k, R = u mod 10^k) and less than 2^32 / 10^k above it for every u
 * in its range: all the pairs need. Checked for every u < 2^32. */
static inline char *put_lead(char *p, uint64_t f)
{
	unsigned l = (unsigned)(f >> 32);

	if (l < 10) {
		*p = (char)('0' + l);
		return p + 1;
	}
	memcpy(p, pairs + 2 * l, 2);
	return p + 2;
}

static inline char *put_next_pair(char *p, uint64_t *f)
{
	*f = (uint64_t)(uint32_t)*f * 100;
	memcpy(p, pairs + 2 * (*f >> 32), 2);
	return p + 2;
}

static inline char *put_u32(char *p, uint32_t u)
{
	uint64_t f;

	if (u < 100)
		return put_lead(p, (uint64_t)u << 32);
	if (u < 1000000) {
		if (u < 10000) {
			f = (uint64_t)u * 42949673;   /* 2^32 / 10^2, s = 0 */
			p = put_lead(p, f);
			return put_next_pair(p, &f);
		}
		f = (uint64_t)u * 429497;             /* 2^32 / 10^4, s = 0 */
		p = put_lead(p, f);
		p = put_next_pair(p, &f);
		return put_next_pair(p, &f);
	}
	if (u < 100000000)
		f = ((uint64_t)u * 281474977 >> 16) + 1;     /* 2^48 / 10^6 */
	else
		f = ((uint64_t)u * 2882303762u >> 26) + 1;   /* 2^58 / 10^8 */
	p = put_lead(p, f);
	p = put_next_pair(p, &f);
	p = put_next_pair(p, &f);
	p = put_next_pair(p, &f);
	if (u >= 100000000)
		p = put_next_pair(p, &f);
	return p;
}

/* r < 10^8 as exactly eight digits. */
static char *put_8digits(char *p, uint32_t r)
{
	uint64_t f = ((uint64_t)r * 281474977 >> 16) + 1;

	memcpy(p, pairs + 2 * (f >> 32), 2);
	p = put_next_pair(p + 2, &f);
	p = put_next_pair(p, &f);
	return put_next_pair(p, &f);
}

/* Out of line: counts above 2^32 are rare. */
static __attribute__((noinline)) char *put_u64_big(char *p, uint64_t v)
{
	uint64_t hi = v / 100000000;

	if (hi > UINT32_MAX) {
		p = put_u32(p, (uint32_t)(hi / 100000000));
		p = put_8digits(p, (uint32_t)(hi % 100000000));
	} else {
		p = put_u32(p, (uint32_t)hi);
	}
	return put_8digits(p, (uint32_t)(v % 100000000));
}

char *out_put_u64(char *p, uint64_t v)
{
	if (__builtin_expect(v > UINT32_MAX, 0))
		return put_u64_big(p, v);
	return put_u32(p, (uint32_t)v);
}

/* Near the buffer's end: through a temporary. Out of line, so that the
 * common case needs no stack frame. */
static __attribute__((noinline)) void out_u64_slow(struct out *o, uint64_t v)
{
	char tmp[OUT_U64_MAX];

	out_mem(o, tmp, (size_t)(out_put_u64(tmp, v) - tmp));
}

void out_u64(struct out *o, uint64_t v)
{
	if (__builtin_expect(OUT_BUF - o->len >= OUT_U64_MAX, 1))
		out_commit(o, out_put_u64(o->buf + o->len, v));
	else
		out_u64_slow(o, v);
}

void out_i64(struct out *o, int64_t v)
{
	if (v < 0) {
		out_char(o, '-');
		out_u64(o, (uint64_t)0 - (uint64_t)v);
	} else {
		out_u64(o, (uint64_t)v);
	}
}

void out_fmt(struct out *o, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	out_mem(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* The escaped text of s, without the quotes. */
static char *put_json_body(char *p, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (__builtin_expect(ch >= 0x20 && ch != '"' && ch != '\\', 1)) {
			*p++ = (char)ch;
			continue;
		}
		*p++ = '\\';
		switch (ch) {
		case '"': *p++ = '"'; break;
		case '\\': *p++ = '\\'; break;
		case '\n': *p++ = 'n'; break;
		case '\r': *p++ = 'r'; break;
		case '\t': *p++ = 't'; break;
		default:
			memcpy(p, "u00", 3);
			p[3] = hex[ch >> 4];
			p[4] = hex[ch & 15];
			p += 5;
		}
	}
	return p;
}

char *out_put_json_str(char *p, const char *s, size_t n)
{
	*p++ = '"';
	p = put_json_body(p, s, n);
	*p++ = '"';
	return p;
}

void out_json_str(struct out *o, const char *s)
{
	size_t n = strlen(s);

	/* the worst case, every byte a \u00XX, fits the buffer */
	if (n <= (OUT_BUF - 2) / 6) {
		out_commit(o, out_put_json_str(out_reserve(o, 6 * n + 2), s, n));
		return;
	}
	out_char(o, '"');
	for (size_t i = 0; i < n; i += 4096) {
		size_t k = n - i < 4096 ? n - i : 4096;

		out_commit(o, put_json_body(out_reserve(o, 6 * k), s + i, k));
	}
	out_char(o, '"');
}

/* The six digits of the microseconds us (< 1000000). */
static char *put_frac6(char *p, unsigned us)
{
	unsigned a = us / 10000, r = us % 10000, b = r / 100, c = r % 100;

	memcpy(p, pairs + 2 * a, 2);
	memcpy(p + 2, pairs + 2 * b, 2);
	memcpy(p + 4, pairs + 2 * c, 2);
	return p + 6;
}

/* Out of line: the common case, a second in the cache, needs few registers. */
static __attribute__((noinline)) void ts_fill(struct out *o, unsigned slot, uint64_t sec)
{
	char *t = o->ts_txt[slot];
	/* at most 11 digits: UINT64_MAX ns is 18446744073 s */
	char *e = out_put_u64(t, sec);

	*e++ = '.';
	memset(e, 0, (size_t)(t + 16 - e));
	t[15] = (char)(e - t);
	o->ts_sec[slot] = sec;
}

char *out_put_ts(struct out *o, char *p, uint64_t ns)
{
	uint64_t sec = ns / 1000000000ULL;
	unsigned slot = (unsigned)(sec % OUT_TS_SLOTS);

	if (__builtin_expect(o->ts_sec[slot] != sec, 0))
		ts_fill(o, slot, sec);
	memcpy(p, o->ts_txt[slot], 16);
	p += (unsigned char)o->ts_txt[slot][15];
	return put_frac6(p, (unsigned)(ns - sec * 1000000000ULL) / 1000);
}

static __attribute__((noinline)) void out_ts_slow(struct out *o, uint64_t ns)
{
	char tmp[OUT_TS_MAX];

	out_mem(o, tmp, (size_t)(out_put_ts(o, tmp, ns) - tmp));
}

void out_ts(struct out *o, uint64_t ns)
{
	if (__builtin_expect(OUT_BUF - o->len >= OUT_TS_MAX, 1))
		out_commit(o, out_put_ts(o, o->buf + o->len, ns));
	else
		out_ts_slow(o, ns);
}

/* Not through out_ts()'s cache: durations would push timestamps out. */
char *out_put_secs(char *p, uint64_t ns)
{
	p = out_put_u64(p, ns / 1000000000ULL);
	*p++ = '.';
	return put_frac6(p, (unsigned)(ns % 1000000000ULL) / 1000);
}

void out_secs(struct out *o, uint64_t ns)
{
	char tmp[OUT_SECS_MAX];

	out_mem(o, tmp, (size_t)(out_put_secs(tmp, ns) - tmp));
}

/* Each octet's text with its '.' ("192."), and tcp_flags_str() of each
 * flags byte; built at start-up (a few microseconds) so that writing one
 * is a fixed-size copy, without a check for "built yet" each time. */
static char octet_txt[256][4];
static uint8_t octet_len[256];
static char flags_txt[256][8];
static uint8_t flags_len[256];

static void tables_init(void) __attribute__((constructor));
static void tables_init(void)
{
	char b[16];

	for (unsigned v = 0; v < 256; v++) {
		int n;

		memset(b, 0, sizeof(b));
		n = snprintf(b, sizeof(b), "%u.", v);
		memcpy(octet_txt[v], b, 4);
		octet_len[v] = (uint8_t)n;
		tcp_flags_str((uint8_t)v, b, sizeof(b));
		flags_len[v] = (uint8_t)strlen(b);
		memcpy(flags_txt[v], b, 8);
	}
}

/* Dotted decimal by hand: inet_ntop() formats IPv4 through sprintf, and
 * a JSON record writes two addresses. */
static char *put_ipv4(char *p, const uint8_t *addr)
{
	for (int i = 0; i < 4; i++) {
		memcpy(p, octet_txt[addr[i]], 4);
		p += octet_len[addr[i]];
	}
	return p - 1;   /* the last '.' */
}

static const char *ipv4_str(const uint8_t *addr, char *buf)
{
	*put_ipv4(buf, addr) = '\0';
	return buf;
}

const char *addr_str(uint8_t family, const uint8_t *addr, char *buf, size_t len)
{
	if (family != 6 && len >= 16)
		return ipv4_str(addr, buf);
	if (!inet_ntop(family == 6 ? AF_INET6 : AF_INET, addr, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

char *out_put_addr(char *p, uint8_t family, const uint8_t *addr)
{
	char a[64];
	size_t n;

	if (family != 6)
		return put_ipv4(p, addr);
	n = strlen(addr_str(family, addr, a, sizeof(a)));
	memcpy(p, a, n);
	return p + n;
}

const char *endpoint_str(uint8_t family, const uint8_t *addr, uint16_t port, char *buf, size_t len)
{
	char a[64];

	addr_str(family, addr, a, sizeof(a));
	if (family == 6)
		snprintf(buf, len, "[%s]:%u", a, port);
	else
		snprintf(buf, len, "%s:%u", a, port);
	return buf;
}

const char *time_str(uint64_t ns, char *buf, size_t len)
{
	time_t secs = (time_t)(ns / 1000000000ULL);
	struct tm tm;

	if (!gmtime_r(&secs, &tm)) {
		snprintf(buf, len, "?");
		return buf;
	}
	snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d.%06u", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)((ns % 1000000000ULL) / 1000));
	return buf;
}

const char *tcp_flags_str(uint8_t flags, char *buf, size_t len)
{
	/* tcpdump's letters in tcpdump's order (print-tcp.c): "." is ACK. */
	static const struct { uint8_t bit; char ch; } map[] = {
		{ 0x01, 'F' }, { 0x02, 'S' }, { 0x04, 'R' }, { 0x08, 'P' },
		{ 0x10, '.' }, { 0x20, 'U' }, { 0x40, 'E' }, { 0x80, 'W' },
	};
	size_t n = 0;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]) && n + 1 < len; i++)
		if (flags & map[i].bit)
			buf[n++] = map[i].ch;
	if (n == 0 && len > 4) {
		memcpy(buf, "none", 4);
		n = 4;
	}
	buf[n < len ? n : len - 1] = 0;
	return buf;
}

char *out_put_tcp_flags(char *p, uint8_t flags)
{
	memcpy(p, flags_txt[flags], 8);
	return p + flags_len[flags];
}

const char *duration_str(uint64_t ns, char *buf, size_t len)
{
	uint64_t ms = ns / 1000000ULL, s = ns / 1000000000ULL;

	if (ms < 1000)
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	else if (s < 60)
		snprintf(buf, len, "%.1fs", (double)ns / 1e9);
	else if (s < 3600)
		snprintf(buf, len, "%llum%02llus", (unsigned long long)(s / 60),
			 (unsigned long long)(s % 60));
	else if (s < 86400)
		snprintf(buf, len, "%lluh%02llum", (unsigned long long)(s / 3600),
			 (unsigned long long)(s % 3600 / 60));
	else
		snprintf(buf, len, "%llud%02lluh", (unsigned long long)(s / 86400),
			 (unsigned long long)(s % 86400 / 3600));
	return buf;
}
