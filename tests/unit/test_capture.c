/* test_capture.c - the fast reader on a mapped file: every record read in
 * place, a file that grows while it is read (the rest read with read()), a
 * file that shrinks while it is read (damage reported at the right record,
 * no SIGBUS), and the same records through read() alone (fast-read).
 *
 * The captures are written here, record by record, so every record's offset
 * and contents are known without the reader: each holds an Ethernet, IPv4
 * and TCP header whose sequence number is the record's index. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture.h"
#include "test.h"

/* Record 0 fills the first page; every other record is RECORD bytes, so
 * records 1 + 7j start on page boundaries (4096 * 7 = 256 * RECORD). */
#define CAPLEN 96  /* each record's captured bytes: headers and 42 payload bytes */
#define RECORD (16 + CAPLEN)
#define FIRST_CAPLEN (4096 - 24 - 16)
#define PAGE 4096

static char dir[] = "/tmp/tcpstate-test-capture-XXXXXX";

/* Where record i starts in the file. */
static long offset_of(uint32_t i)
{
	return i == 0 ? 24 : PAGE + (long)(i - 1) * RECORD;
}

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);  /* host order, as the fast reader takes */
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* Record i, its length returned: a TCP segment 10.0.0.1:1000+i%7 ->
 * 10.0.0.2:80 with sequence number i. */
static size_t make_record(uint8_t *r, uint32_t i)
{
	uint32_t caplen = i == 0 ? FIRST_CAPLEN : CAPLEN;
	uint8_t *f = r + 16, *ip = f + 14, *tcp = ip + 20;

	memset(r, 0, 16 + caplen);
	put32(r, 1700000000 + i / 1000);
	put32(r + 4, (i % 1000) * 1000);
	put32(r + 8, caplen);
	put32(r + 12, caplen);
	f[12] = 0x08;  /* IPv4 */
	ip[0] = 0x45;
	ip[2] = (uint8_t)((caplen - 14) >> 8), ip[3] = (uint8_t)(caplen - 14);
	ip[8] = 64;
	ip[9] = 6;
	ip[12] = 10, ip[15] = 1;
	ip[16] = 10, ip[19] = 2;
	tcp[0] = (uint8_t)((1000 + i % 7) >> 8), tcp[1] = (uint8_t)(1000 + i % 7);
	tcp[3] = 80;
	tcp[4] = (uint8_t)(i >> 24), tcp[5] = (uint8_t)(i >> 16);
	tcp[6] = (uint8_t)(i >> 8), tcp[7] = (uint8_t)i;
	tcp[12] = 5 << 4;
	tcp[13] = 0x18;  /* PSH ACK */
	tcp[15] = 255;
	return 16 + caplen;
}

/* Records from .. from+n-1 written to path (a new capture, or appended);
 * with cut, only the first cut bytes of the last one. Returns the file's
 * size. */
static long write_capture(const char *path, uint32_t from, uint32_t n, size_t cut, bool append)
{
	FILE *f = fopen(path, append ? "ab" : "wb");
	static uint8_t r[16 + FIRST_CAPLEN];
	struct stat st;

	if (!f)
		return -1;
	if (!append) {
		uint8_t hdr[24] = { 0 };

		put32(hdr, 0xa1b2c3d4u);
		put16(hdr + 4, 2);
		put16(hdr + 6, 4);
		put32(hdr + 16, 262144);
		put32(hdr + 20, 1);  /* Ethernet */
		fwrite(hdr, 1, sizeof(hdr), f);
	}
	for (uint32_t i = from; i < from + n; i++) {
		size_t len = make_record(r, i);

		fwrite(r, 1, i + 1 == from + n && cut ? cut : len, f);
	}
	fclose(f);
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static struct capture *open_capture(const char *path)
{
	char err[512];
	bool usage;
	struct capture *cap = capture_open_file(path, NULL, err, sizeof(err), &usage);

	if (!cap)
		fprintf(stderr, "open %s: %s\n", path, err);
	return cap;
}

/* Read up to max packets; each must be the next record's (its sequence
 * number). Returns the status that ended it, *n the packets read. */
static enum capture_status read_some(struct capture *cap, uint32_t *n, uint32_t max)
{
	for (;;) {
		struct packet p;
		enum decode_status why;
		enum capture_status cs;

		if (*n >= max)
			return CAP_PACKET;
		cs = capture_next(cap, &p, &why);
		if (cs != CAP_PACKET)
			return cs;
		if (p.seq != *n) {
			fprintf(stderr, "packet %u has sequence %u\n", *n, p.seq);
			CHECK(p.seq == *n);
			return CAP_DAMAGED;
		}
		(*n)++;
	}
}

/* Enough records to span several map windows (2 MiB each). */
#define MANY 60000u

/* Records 0 .. n-1 written to a new capture dir/name (the last one cut
 * after `cut` bytes when cut is not 0), whose path goes to path[128], and
 * opened with TCPSTATE_PCAP_READER=reader. */
static struct capture *new_capture(const char *reader, const char *name, uint32_t n, size_t cut,
				   char *path)
{
	struct capture *cap;

	setenv("TCPSTATE_PCAP_READER", reader, 1);
	snprintf(path, 128, "%s/%s", dir, name);
	CHECK(write_capture(path, 0, n, cut, false) ==
	      (cut ? offset_of(n - 1) + (long)cut : offset_of(n)));
	cap = open_capture(path);
	CHECK(cap != NULL);
	return cap;
}

static void test_reads_all(const char *reader)
{
	char path[128];
	struct capture *cap;
	uint32_t n = 0;

	cap = new_capture(reader, "all.pcap", MANY, 0, path);
	if (!cap)
		return;
	CHECK_EQ_INT(read_some(cap, &n, UINT32_MAX), CAP_EOF);
	CHECK_EQ_INT(n, MANY);
	capture_close(cap);
}

/* The file grows after it was opened, its last record cut in two by the
 * write: the records after the mapping's end are read with read(). */
static void test_grows(const char *reader)
{
	char path[128];
	struct capture *cap;
	uint32_t n = 0;

	cap = new_capture(reader, "grows.pcap", MANY, 50, path);  /* record MANY-1 cut after 50 bytes */
	if (!cap)
		return;
	CHECK_EQ_INT(read_some(cap, &n, 1000), CAP_PACKET);
	{
		/* the rest of record MANY-1, then 5000 more */
		FILE *f = fopen(path, "ab");
		static uint8_t r[16 + FIRST_CAPLEN];

		make_record(r, MANY - 1);
		fwrite(r + 50, 1, RECORD - 50, f);
		fclose(f);
	}
	write_capture(path, MANY, 5000, 0, true);
	CHECK_EQ_INT(read_some(cap, &n, UINT32_MAX), CAP_EOF);
	CHECK_EQ_INT(n, MANY + 5000);
	capture_close(cap);
}

/* Another program truncates the file to `size` bytes while it is read.
 * The records wholly before the new end are read; the first one that is
 * not is reported as damage, by number and offset, with the new size; no
 * SIGBUS. */
static void test_shrinks(long size)
{
	char path[128], want[200];
	struct capture *cap;
	uint32_t n = 0, first_lost = 1 + (uint32_t)((size - PAGE) / RECORD);

	cap = new_capture("fast-only", "shrinks.pcap", MANY, 0, path);
	if (!cap)
		return;
	CHECK_EQ_INT(read_some(cap, &n, 2000), CAP_PACKET);
	CHECK(truncate(path, size) == 0);
	CHECK_EQ_INT(read_some(cap, &n, UINT32_MAX), CAP_DAMAGED);
	CHECK_EQ_INT(n, first_lost);
	snprintf(want, sizeof(want), "packet %u (byte offset %ld): the file shrank to %ld bytes "
		 "while it was read", first_lost + 1, offset_of(first_lost), size);
	CHECK_EQ_STR(capture_error(cap), want);
	capture_close(cap);
}

/* Two captures open at once: the second is read with read(), not mapped,
 * and both read right, interleaved. */
static void test_two_open(void)
{
	char a[128], b[128];
	struct capture *ca, *cb;
	uint32_t na = 0, nb = 0;

	ca = new_capture("fast-only", "a.pcap", MANY, 0, a);
	cb = new_capture("fast-only", "b.pcap", MANY / 2, 0, b);
	CHECK(ca != NULL && cb != NULL);
	if (!ca || !cb)
		return;
	for (uint32_t step = 1000; na < MANY || nb < MANY / 2; step += 1000) {
		if (na < MANY && read_some(ca, &na, step) != CAP_PACKET)
			break;
		if (nb < MANY / 2 && read_some(cb, &nb, step) != CAP_PACKET)
			break;
	}
	CHECK_EQ_INT(na, MANY);
	CHECK_EQ_INT(nb, MANY / 2);
	capture_close(ca);
	capture_close(cb);
}

int main(void)
{
	if (sysconf(_SC_PAGESIZE) != PAGE) {
		printf("test_capture: SKIP: the page size is not %d bytes\n", PAGE);
		return 77;
	}
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_reads_all("fast-only");
	test_reads_all("fast-read");
	test_grows("fast-only");
	test_grows("fast-read");
	/* Within the window being read, at a page boundary where record 3585
	 * starts: the reader touches a page with no data behind it and the
	 * SIGBUS handler catches it. */
	test_shrinks(PAGE * (1 + 7 * 14));
	/* Ahead of the window (2 MiB), mid-record: found by the window's
	 * look at the file's size. */
	test_shrinks(3 * 1024 * 1024 + 1000);
	test_two_open();
	{
		char cmd[200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return test_done("test_capture");
}
