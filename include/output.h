/* output.h - a buffered writer for the reports: large writes, no stdio
 * formatting on the per-connection path, JSON string escaping, and the text
 * forms of addresses and timestamps shared by every reporter. */
#ifndef TCPSTATE_OUTPUT_H
#define TCPSTATE_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Visible only so the writes below can be inlined: a JSON record is a few
 * hundred small pieces, most of them literals whose length the compiler
 * knows. Use the functions, not the fields. */
#define OUT_BUF (1u << 20)
/* out_ts() keeps the text of recent whole seconds ("1700000000."), slot
 * second % OUT_TS_SLOTS: a capture's timestamps share a few seconds, and
 * formatting a 10-digit number costs more than copying one. */
#define OUT_TS_SLOTS 16
struct out {
	size_t len;
	int fd;
	bool failed;
	uint64_t ts_sec[OUT_TS_SLOTS];       /* UINT64_MAX: empty */
	char ts_txt[OUT_TS_SLOTS][16];       /* digits and '.'; [15] is the length */
	char buf[OUT_BUF];
};

/* A writer on file descriptor fd; NULL on out of memory. */
struct out *out_create(int fd);

/* Flush and free; returns false if any write failed. NULL is a no-op (true). */
bool out_destroy(struct out *o);

/* Write everything buffered so far; false on a write error (e.g. EPIPE). */
bool out_flush(struct out *o);

/* True once a write failed; later output is discarded. */
bool out_failed(const struct out *o);

/* out_mem() when the piece does not fit: flushes as it goes. */
void out_mem_slow(struct out *o, const char *s, size_t n);

static inline void out_mem(struct out *o, const char *s, size_t n)
{
	if (__builtin_expect(n <= OUT_BUF - o->len, 1)) {
		memcpy(o->buf + o->len, s, n);
		o->len += n;
		return;
	}
	out_mem_slow(o, s, n);
}

/* For a literal, strlen() is folded and the copy is a move or two. */
static inline void out_str(struct out *o, const char *s)
{
	out_mem(o, s, strlen(s));
}

static inline void out_char(struct out *o, char ch)
{
	out_mem(o, &ch, 1);
}
void out_u64(struct out *o, uint64_t v);
void out_i64(struct out *o, int64_t v);
/* printf-style, for the rare formatted line (headers, tables). */
void out_fmt(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A JSON string literal, quotes included, with RFC 8259 escaping. */
void out_json_str(struct out *o, const char *s);
/* Epoch seconds with microsecond precision: 1700000000.123456 */
void out_ts(struct out *o, uint64_t ns);
/* Seconds with microsecond precision, for durations and ages: 12.500000 */
void out_secs(struct out *o, uint64_t ns);

/* Writing a record straight into the buffer, for the hot reporters: one
 * bounds check for a run of pieces instead of one a piece. out_reserve()
 * returns where to write with at least n bytes (n <= OUT_BUF) free behind
 * it, flushing if need be; the out_put_*() below write at p and return the
 * end of what they wrote (some may scribble a little past it, within their
 * stated maximum); out_commit() takes the end of the run. */
static inline char *out_reserve(struct out *o, size_t n)
{
	if (__builtin_expect(n > OUT_BUF - o->len, 0))
		out_flush(o);
	return o->buf + o->len;
}

static inline void out_commit(struct out *o, char *end)
{
	o->len = (size_t)(end - o->buf);
}

/* out_reserve() again in the middle of a run that ends at p. */
static inline char *out_ensure(struct out *o, char *p, size_t n)
{
	if (__builtin_expect(n > (size_t)(o->buf + OUT_BUF - p), 0)) {
		out_commit(o, p);
		out_flush(o);
		p = o->buf + o->len;
	}
	return p;
}

/* A literal piece: its length is known, the copy is a move or two. */
#define OUT_PUT_LIT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) += sizeof(lit) - 1)

#define OUT_U64_MAX 20   /* out_put_u64() writes at most this */
#define OUT_TS_MAX 24    /* out_put_ts() writes at most this */
#define OUT_ADDR_MAX 48  /* out_put_addr() writes at most this */
#define OUT_FLAGS_MAX 8  /* out_put_tcp_flags() writes at most this */
#define OUT_SECS_MAX 28  /* out_put_secs() writes at most this */
char *out_put_u64(char *p, uint64_t v);
/* out_ts(); the seconds come from (and go to) o's cache. */
char *out_put_ts(struct out *o, char *p, uint64_t ns);
/* out_secs() */
char *out_put_secs(char *p, uint64_t ns);
/* addr_str() */
char *out_put_addr(char *p, uint8_t family, const uint8_t *addr);
/* tcp_flags_str() */
char *out_put_tcp_flags(char *p, uint8_t flags);
/* out_json_str() of the n bytes at s (no NUL among them): at most 6 * n + 2. */
char *out_put_json_str(char *p, const char *s, size_t n);

/* Text form of an address (IPv6 compressed, RFC 5952) into buf (>= 46 bytes). */
const char *addr_str(uint8_t family, const uint8_t *addr, char *buf, size_t len);
/* "addr:port", or "[v6]:port", into buf (>= 56 bytes). */
const char *endpoint_str(uint8_t family, const uint8_t *addr, uint16_t port, char *buf, size_t len);
/* "2026-11-21 18:40:01.123456" (UTC) into buf (>= 32 bytes). */
const char *time_str(uint64_t ns, char *buf, size_t len);
/* TCP flags as tcpdump letters: "S", "S.", "F.", "R.", "P." ... into buf (>= 10 bytes). */
const char *tcp_flags_str(uint8_t flags, char *buf, size_t len);
/* A duration for people: "950ms", "12.3s", "4m05s", "2h13m", "3d04h". */
const char *duration_str(uint64_t ns, char *buf, size_t len);

#endif
