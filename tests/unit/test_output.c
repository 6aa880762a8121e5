/* test_output.c - the text forms every report shares: JSON escaping
 * (RFC 8259), timestamps, addresses (RFC 5952 compression), tcpdump flag
 * letters, durations; and the buffered writer across its buffer size. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "output.h"
#include "test.h"

static char *capture_output(void (*fn)(struct out *))
{
	char path[] = "/tmp/tcpstate-test-XXXXXX";
	int fd = mkstemp(path);
	struct out *o = out_create(fd);
	static char buf[16 << 20];
	ssize_t n;

	fn(o);
	out_destroy(o);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n < 0 ? 0 : n] = 0;
	close(fd);
	unlink(path);
	return buf;
}

static void w_json(struct out *o)
{
	out_json_str(o, "a\"b\\c\nd\x01" "e/\xc3\xa9");
	out_char(o, ' ');
	out_ts(o, 1700000000123456789ULL);
	out_char(o, ' ');
	out_u64(o, 0);
	out_char(o, ' ');
	out_u64(o, 18446744073709551615ULL);
	out_char(o, ' ');
	out_i64(o, -42);
}

static void w_big(struct out *o)
{
	for (int i = 0; i < 300000; i++)
		out_str(o, "0123456789");
}

/* Numbers of every length, and strings that straddle the buffer's end. */
static void w_numbers(struct out *o)
{
	for (uint64_t v = 0; v < 1000; v++) {
		out_u64(o, v);
		out_char(o, ' ');
	}
	for (uint64_t p = 1; p && p <= UINT64_MAX / 10; p *= 10) {
		out_u64(o, p - 1);
		out_char(o, ' ');
		out_u64(o, p);
		out_char(o, ' ');
	}
	for (int i = 0; i < 100000; i++)
		out_str(o, i % 2 ? "abc" : "a longer string than sixteen bytes");
	/* numbers of every length across the buffer's end, at every offset */
	for (uint64_t i = 0, v = 7; i < 400000; i++, v = v * 6364136223846793005ULL + 1) {
		out_u64(o, v >> (i % 64));
		out_char(o, ',');
	}
}

static void test_numbers(void)
{
	char *got = capture_output(w_numbers), *want = malloc(16 << 20);
	size_t n = 0;

	for (unsigned long long v = 0; v < 1000; v++)
		n += (size_t)sprintf(want + n, "%llu ", v);
	for (unsigned long long p = 1; p && p <= UINT64_MAX / 10; p *= 10)
		n += (size_t)sprintf(want + n, "%llu %llu ", p - 1, p);
	for (int i = 0; i < 100000; i++)
		n += (size_t)sprintf(want + n, "%s", i % 2 ? "abc" : "a longer string than sixteen bytes");
	for (unsigned long long i = 0, v = 7; i < 400000; i++, v = v * 6364136223846793005ULL + 1)
		n += (size_t)sprintf(want + n, "%llu,", v >> (i % 64));
	CHECK(strcmp(got, want) == 0);
	free(want);
}

static void test_writer(void)
{
	CHECK_EQ_STR(capture_output(w_json),
		     "\"a\\\"b\\\\c\\nd\\u0001e/\xc3\xa9\" 1700000000.123456 0 18446744073709551615 -42");
	CHECK_EQ_INT(strlen(capture_output(w_big)), 3000000);
}

static void test_forms(void)
{
	char b[80];
	uint8_t v4[16] = { 192, 0, 2, 1 };
	uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };

	CHECK_EQ_STR(addr_str(4, v4, b, sizeof(b)), "192.0.2.1");
	CHECK_EQ_STR(addr_str(6, v6, b, sizeof(b)), "2001:db8::1");
	/* IPv4 is formatted by hand: the C library's inet_ntop is the reference,
	 * for every octet value in every position */
	for (int pos = 0; pos < 4; pos++) {
		int bad = 0;

		for (int v = 0; v < 256; v++) {
			uint8_t a[16] = { 10, 200, 7, 99 };
			char ref[INET_ADDRSTRLEN];

			a[pos] = (uint8_t)v;
			inet_ntop(AF_INET, a, ref, sizeof(ref));
			bad += strcmp(addr_str(4, a, b, sizeof(b)), ref) != 0;
		}
		CHECK_EQ_INT(bad, 0);
	}
	CHECK_EQ_STR(endpoint_str(6, v6, 443, b, sizeof(b)), "[2001:db8::1]:443");
	CHECK_EQ_STR(endpoint_str(4, v4, 80, b, sizeof(b)), "192.0.2.1:80");
	/* date -u -d @1700000000 = 2023-11-14 22:13:20 */
	CHECK_EQ_STR(time_str(1700000000000001000ULL, b, sizeof(b)), "2023-11-14 22:13:20.000001");
	CHECK_EQ_STR(tcp_flags_str(0x02, b, sizeof(b)), "S");
	CHECK_EQ_STR(tcp_flags_str(0x12, b, sizeof(b)), "S.");
	CHECK_EQ_STR(tcp_flags_str(0x19, b, sizeof(b)), "FP.");
	CHECK_EQ_STR(tcp_flags_str(0x14, b, sizeof(b)), "R.");
	CHECK_EQ_STR(tcp_flags_str(0xc2, b, sizeof(b)), "SEW");
	CHECK_EQ_STR(tcp_flags_str(0, b, sizeof(b)), "none");
	CHECK_EQ_STR(duration_str(950000000ULL, b, sizeof(b)), "950ms");
	CHECK_EQ_STR(duration_str(12300000000ULL, b, sizeof(b)), "12.3s");
	CHECK_EQ_STR(duration_str(245000000000ULL, b, sizeof(b)), "4m05s");
	CHECK_EQ_STR(duration_str(7980000000000ULL, b, sizeof(b)), "2h13m");
	CHECK_EQ_STR(duration_str(273600000000000ULL, b, sizeof(b)), "3d04h");
}

/* ---- the direct writers (out_put_*) and what is built on them ---- */

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rnd_state = rnd_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return rnd_state ^ (rnd_state >> 29);
}

/* The edges of out_put_u64()'s ranges (10^8, 2^32, the 8-digit groups of
 * larger numbers, zeros inside them). */
static const uint64_t u64_edges[] = {
	4294967295ULL, 4294967296ULL, 4294967297ULL, 99999999ULL, 100000000ULL,
	100000001ULL, 999999999ULL, 1000000000ULL, 1000000001ULL, 3999999999ULL,
	4000000000ULL, 4294967294ULL, 9999999999ULL, 10000000000ULL,
	100000000000000001ULL, 100000000000000000ULL, 429496729600000000ULL,
	429496729599999999ULL, 429496729700000001ULL, 10000000000000000000ULL,
	10000000000000000001ULL, 10000000100000001ULL, 18446744073709551614ULL,
	18446744073709551615ULL, 1844674407370955161ULL, 12345678900000000ULL,
};

/* Numbers for out_put_u64(): every digit count 1..20 at both ends and
 * beside them, the edges, everything below 1100000 (10^2, 10^4, 10^6), and
 * pseudo-random values of every bit length. */
static size_t u64_cases(uint64_t *v)
{
	size_t n = 0;
	uint64_t p = 1;

	for (int d = 1; d <= 20; d++, p *= 10) {
		uint64_t hi = d == 20 ? UINT64_MAX : p * 10 - 1;

		v[n++] = p - 1;
		v[n++] = p;
		v[n++] = p + 1;
		v[n++] = hi - 1;
		v[n++] = hi;
	}
	for (size_t i = 0; i < sizeof(u64_edges) / sizeof(u64_edges[0]); i++)
		v[n++] = u64_edges[i];
	for (uint64_t u = 0; u < 1100000; u++)
		v[n++] = u;
	for (int bits = 1; bits <= 64; bits++)
		for (int i = 0; i < 2000; i++)
			v[n++] = rnd() >> (64 - bits);
	return n;
}

#define U64_CASES (100 + sizeof(u64_edges) / sizeof(u64_edges[0]) + 1100000 + 64 * 2000)

static void test_put_u64(void)
{
	uint64_t *v = malloc(U64_CASES * sizeof(*v));
	size_t n = u64_cases(v);
	int bad = 0, digits[21] = { 0 };

	for (size_t i = 0; i < n; i++) {
		char got[OUT_U64_MAX + 8], want[32];
		char *e = out_put_u64(got, v[i]);
		int k = sprintf(want, "%llu", (unsigned long long)v[i]);

		digits[k]++;
		if (e - got != k || memcmp(got, want, (size_t)k) != 0)
			bad++;
	}
	CHECK_EQ_INT(bad, 0);
	for (int k = 1; k <= 20; k++)
		CHECK(digits[k] >= 2);
	free(v);
}

/* Timestamps: the whole second changes, comes back, shares out_ts()'s cache
 * slot with another (16 s apart), has 1 to 11 digits; fractions at their
 * edges. */
static const uint64_t ts_cases[] = {
	1700000000123456789ULL, 1700000000999999999ULL, 1700000001000000000ULL,
	1700000000000000000ULL, 1700000016000999000ULL, 1700000000000001000ULL,
	1700000032500000000ULL, 1700000016000000999ULL, 1700000001999999000ULL,
	0, 999, 1000, 999999999ULL, 1000000000ULL, 9999999999ULL, 10000000000ULL,
	16000000000ULL, 123456789012345678ULL, 18446744073709551615ULL,
	18446744073000000000ULL, 1700000000123456789ULL, 4294967296000000000ULL,
	9999999999999999999ULL, 10000000000000000000ULL, 1700000000000000001ULL,
};
#define NTS (sizeof(ts_cases) / sizeof(ts_cases[0]))

static int ts_want(char *b, uint64_t ns)
{
	return sprintf(b, "%llu.%06llu", (unsigned long long)(ns / 1000000000ULL),
		       (unsigned long long)(ns % 1000000000ULL / 1000));
}

/* Every case after every other, and runs of them, through out_ts() and
 * out_secs() across the buffer's end at many offsets. */
static void w_ts(struct out *o)
{
	for (int i = 0; i < 150000; i++) {
		out_ts(o, ts_cases[i % NTS]);
		out_char(o, ' ');
		out_secs(o, ts_cases[(i * 7) % NTS]);
		out_str(o, i % 3 ? "," : ";;");
	}
}

static void test_ts(void)
{
	char *got = capture_output(w_ts), *want = malloc(16 << 20);
	size_t n = 0;

	for (int i = 0; i < 150000; i++) {
		n += (size_t)ts_want(want + n, ts_cases[i % NTS]);
		want[n++] = ' ';
		n += (size_t)ts_want(want + n, ts_cases[(i * 7) % NTS]);
		n += (size_t)sprintf(want + n, "%s", i % 3 ? "," : ";;");
	}
	CHECK_EQ_INT(strlen(got), n);
	CHECK(strcmp(got, want) == 0);
	free(want);
}

/* A record written with out_reserve() / out_ensure() / out_commit() and the
 * out_put_*() writers, the way report_json.c does, across the buffer's end. */
static const uint8_t put_v4[][16] = { { 10, 0, 0, 1 }, { 192, 168, 100, 255 }, { 0, 9, 99, 250 } };

static void w_put(struct out *o)
{
	char *p = out_reserve(o, 64);

	for (int i = 0; i < 120000; i++) {
		p = out_ensure(o, p, 256);
		OUT_PUT_LIT(p, "{\"ts\":");
		p = out_put_ts(o, p, ts_cases[i % NTS]);
		*p++ = ',';
		p = out_put_u64(p, (uint64_t)i * 2654435761u >> (i % 40));
		*p++ = ',';
		p = out_put_addr(p, 4, put_v4[i % 3]);
		*p++ = ',';
		p = out_put_tcp_flags(p, (uint8_t)i);
		*p++ = ',';
		p = out_put_json_str(p, "a\"b", 3);
		OUT_PUT_LIT(p, "}\n");
		if (i % 1000 == 0) {   /* and the plain writes in between */
			out_commit(o, p);
			out_u64(o, (uint64_t)i);
			p = out_reserve(o, 64);
		}
	}
	out_commit(o, p);
}

static void test_put(void)
{
	char *got = capture_output(w_put), *want = malloc(16 << 20), a[64], f[16];
	size_t n = 0;

	for (int i = 0; i < 120000; i++) {
		n += (size_t)sprintf(want + n, "{\"ts\":");
		n += (size_t)ts_want(want + n, ts_cases[i % NTS]);
		n += (size_t)sprintf(want + n, ",%llu,%s,%s,\"a\\\"b\"}\n",
				     (unsigned long long)((uint64_t)i * 2654435761u >> (i % 40)),
				     addr_str(4, put_v4[i % 3], a, sizeof(a)),
				     tcp_flags_str((uint8_t)i, f, sizeof(f)));
		if (i % 1000 == 0)
			n += (size_t)sprintf(want + n, "%d", i);
	}
	CHECK_EQ_INT(strlen(got), n);
	CHECK(strcmp(got, want) == 0);
	free(want);
}

/* The table-driven forms against the functions they copy. */
static void test_put_forms(void)
{
	char got[64], want[64];
	int bad = 0;

	for (int fl = 0; fl < 256; fl++) {
		char *e = out_put_tcp_flags(got, (uint8_t)fl);

		tcp_flags_str((uint8_t)fl, want, sizeof(want));
		bad += (size_t)(e - got) != strlen(want) || memcmp(got, want, strlen(want)) != 0;
	}
	CHECK_EQ_INT(bad, 0);
	bad = 0;
	for (int pos = 0; pos < 4; pos++) {
		for (int v = 0; v < 256; v++) {
			uint8_t a[16] = { 172, 16, 254, 3 };
			char *e;

			a[pos] = (uint8_t)v;
			e = out_put_addr(got, 4, a);
			inet_ntop(AF_INET, a, want, sizeof(want));
			bad += (size_t)(e - got) != strlen(want) || memcmp(got, want, strlen(want)) != 0;
		}
	}
	CHECK_EQ_INT(bad, 0);
	{
		uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
		uint8_t v6b[16] = { 0xfe, 0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14 };
		char *e = out_put_addr(got, 6, v6);

		*e = 0;
		CHECK_EQ_STR(got, "2001:db8::1");
		*out_put_addr(got, 6, v6b) = 0;
		CHECK_EQ_STR(got, addr_str(6, v6b, want, sizeof(want)));
	}
}

/* JSON strings: short ones across the buffer's end, and one too long for
 * the buffer in one piece (escaped, it is six times as long). */
static char *long_str;

static void json_ref(char *d, const char *s, size_t *n)
{
	d[(*n)++] = '"';
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			*n += (size_t)sprintf(d + *n, "\\%c", ch);
		else if (ch == '\n')
			*n += (size_t)sprintf(d + *n, "\\n");
		else if (ch == '\r')
			*n += (size_t)sprintf(d + *n, "\\r");
		else if (ch == '\t')
			*n += (size_t)sprintf(d + *n, "\\t");
		else if (ch < 0x20)
			*n += (size_t)sprintf(d + *n, "\\u%04x", ch);
		else
			d[(*n)++] = (char)ch;
	}
	d[(*n)++] = '"';
}

static const char *const json_short[] = { "ShAdDaFf", "", "a\x01\x1f\"\\\n\r\tz", "\xc3\xa9t\xc3\xa9" };

static void w_json_strs(struct out *o)
{
	for (int i = 0; i < 200000; i++)
		out_json_str(o, json_short[i % 4]);
	out_json_str(o, long_str);
}

static void test_json_strs(void)
{
	size_t n = 0, len = 300000;
	char *want = malloc(16 << 20), *got;

	long_str = malloc(len + 1);
	for (size_t i = 0; i < len; i++)
		long_str[i] = "ab\x01\"\\\n\xc3\xa9 "[i % 9];
	long_str[len] = 0;
	got = capture_output(w_json_strs);
	for (int i = 0; i < 200000; i++)
		json_ref(want, json_short[i % 4], &n);
	json_ref(want, long_str, &n);
	want[n] = 0;
	CHECK_EQ_INT(strlen(got), n);
	CHECK(strcmp(got, want) == 0);
	free(long_str);
	free(want);
}

int main(void)
{
	test_writer();
	test_numbers();
	test_forms();
	test_put_u64();
	test_ts();
	test_put();
	test_put_forms();
	test_json_strs();
	return test_done("output");
}
