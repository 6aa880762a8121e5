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

int main(void)
{
	test_writer();
	test_numbers();
	test_forms();
	return test_done("output");
}
