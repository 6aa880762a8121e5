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

void out_u64(struct out *o, uint64_t v)
{
	/* Two digits a division: numbers are most of a JSON record. */
	static const char pairs[] =
		"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
		"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
		"8081828384858687888990919293949596979899";
	char tmp[24];
	size_t i = sizeof(tmp);

	while (v >= 100) {
		unsigned d = (unsigned)(v % 100);

		v /= 100;
		tmp[--i] = pairs[2 * d + 1];
		tmp[--i] = pairs[2 * d];
	}
	if (v >= 10) {
		tmp[--i] = pairs[2 * v + 1];
		tmp[--i] = pairs[2 * v];
	} else {
		tmp[--i] = (char)('0' + v);
	}
	out_mem(o, tmp + i, sizeof(tmp) - i);
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

void out_json_str(struct out *o, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	out_char(o, '"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		switch (ch) {
		case '"': out_mem(o, "\\\"", 2); break;
		case '\\': out_mem(o, "\\\\", 2); break;
		case '\n': out_mem(o, "\\n", 2); break;
		case '\r': out_mem(o, "\\r", 2); break;
		case '\t': out_mem(o, "\\t", 2); break;
		default:
			if (ch < 0x20) {
				char e[6] = { '\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15] };

				out_mem(o, e, sizeof(e));
			} else {
				out_char(o, (char)ch);
			}
		}
	}
	out_char(o, '"');
}

static void out_frac6(struct out *o, uint64_t ns)
{
	char f[7];
	uint64_t us = (ns % 1000000000ULL) / 1000;

	for (int i = 5; i >= 0; i--) {
		f[i] = (char)('0' + us % 10);
		us /= 10;
	}
	f[6] = 0;
	out_char(o, '.');
	out_mem(o, f, 6);
}

void out_ts(struct out *o, uint64_t ns)
{
	out_u64(o, ns / 1000000000ULL);
	out_frac6(o, ns);
}

void out_secs(struct out *o, uint64_t ns)
{
	out_ts(o, ns);
}

/* Dotted decimal by hand: inet_ntop() formats IPv4 through sprintf, and
 * a JSON record writes two addresses. */
static const char *ipv4_str(const uint8_t *addr, char *buf)
{
	char *p = buf;

	for (int i = 0; i < 4; i++) {
		unsigned v = addr[i];

		if (i)
			*p++ = '.';
		if (v >= 100)
			*p++ = (char)('0' + v / 100);
		if (v >= 10)
			*p++ = (char)('0' + v / 10 % 10);
		*p++ = (char)('0' + v % 10);
	}
	*p = '\0';
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
