/* rd.h - a bounds-checked read cursor over untrusted bytes.
 * Every read returns false instead of touching memory past the end, and every
 * check compares the wanted count with the bytes left (end - p); no pointer
 * beyond end is ever formed, so the checks cannot overflow. Header-only so
 * the per-packet path inlines it. */
#ifndef TCPSTATE_RD_H
#define TCPSTATE_RD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Big-endian values at b, unchecked: for callers that checked the length
 * already (the cursor reads below, the decoder's fast path). */
static inline uint16_t load_be16(const uint8_t *b)
{
	return (uint16_t)((unsigned)b[0] << 8 | b[1]);
}

static inline uint32_t load_be32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* [p, end) are the readable bytes; p only moves forward. */
struct rd {
	const uint8_t *p;
	const uint8_t *end;
};

/* A cursor over len bytes at data (data may be NULL when len is 0). */
static inline struct rd rd_init(const uint8_t *data, size_t len)
{
	struct rd r = { data, data };

	if (data != NULL)
		r.end = data + len;
	return r;
}

/* Bytes left to read. */
static inline size_t rd_left(const struct rd *r)
{
	return (size_t)(r->end - r->p);
}

/* Advance n bytes; false (cursor unchanged) when fewer than n are left. */
static inline bool rd_skip(struct rd *r, size_t n)
{
	if (n > rd_left(r))
		return false;
	r->p += n;
	return true;
}

/* Forget everything after the next n bytes (trailers, Ethernet padding).
 * A no-op when n bytes or fewer are left. */
static inline void rd_limit(struct rd *r, size_t n)
{
	if (n < rd_left(r))
		r->end = r->p + n;
}

/* Split off the next n bytes as their own cursor and skip them in r. */
static inline bool rd_sub(struct rd *r, size_t n, struct rd *sub)
{
	if (n > rd_left(r))
		return false;
	sub->p = r->p;
	sub->end = r->p + n;
	r->p += n;
	return true;
}

static inline bool rd_u8(struct rd *r, uint8_t *v)
{
	if (rd_left(r) < 1)
		return false;
	*v = r->p[0];
	r->p += 1;
	return true;
}

static inline bool rd_be16(struct rd *r, uint16_t *v)
{
	if (rd_left(r) < 2)
		return false;
	*v = load_be16(r->p);
	r->p += 2;
	return true;
}

static inline bool rd_be32(struct rd *r, uint32_t *v)
{
	if (rd_left(r) < 4)
		return false;
	*v = load_be32(r->p);
	r->p += 4;
	return true;
}

static inline bool rd_le32(struct rd *r, uint32_t *v)
{
	if (rd_left(r) < 4)
		return false;
	*v = (uint32_t)r->p[3] << 24 | (uint32_t)r->p[2] << 16 |
	     (uint32_t)r->p[1] << 8 | (uint32_t)r->p[0];
	r->p += 4;
	return true;
}

/* Copy the next n bytes out. */
static inline bool rd_bytes(struct rd *r, void *dst, size_t n)
{
	if (n > rd_left(r))
		return false;
	if (n > 0)
		memcpy(dst, r->p, n);
	r->p += n;
	return true;
}

/* Look at the byte off bytes ahead without moving. */
static inline bool rd_peek_u8(const struct rd *r, size_t off, uint8_t *v)
{
	if (off >= rd_left(r))
		return false;
	*v = r->p[off];
	return true;
}

/* Look at the big-endian 16-bit value off bytes ahead without moving. */
static inline bool rd_peek_be16(const struct rd *r, size_t off, uint16_t *v)
{
	if (off >= rd_left(r) || rd_left(r) - off < 2)
		return false;
	*v = load_be16(r->p + off);
	return true;
}

#endif
