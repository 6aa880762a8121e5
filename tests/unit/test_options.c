/* test_options.c - the command line: tcpdump-style inputs, the trailing
 * filter, every value check, and the --at time forms (expected epochs
 * computed by hand / with `date -u -d ... +%s`). */
#include "options.h"
#include "test.h"

static int parse(struct options *o, char *err, const char *const *args)
{
	char *argv[32];
	int argc = 0;

	for (; args[argc]; argc++)
		argv[argc] = (char *)args[argc];
	argv[argc] = NULL;
	return options_parse(argc, argv, o, err, 256);
}

static void test_basic(void)
{
	struct options o;
	char err[256];
	const char *a[] = { "tcpstate", "-r", "a.pcap", "-r", "b.pcap", "-c", "10", "--format",
			    "json", "--timeline", "--limit", "0", "tcp", "port", "80", NULL };

	CHECK_EQ_INT(parse(&o, err, a), 0);
	CHECK_EQ_INT(o.nfiles, 2);
	CHECK_EQ_STR(o.files[1], "b.pcap");
	CHECK_EQ_INT(o.count, 10);
	CHECK_EQ_INT(o.format, FMT_JSON);
	CHECK(o.timeline);
	CHECK_EQ_INT(o.limit, 0);
	CHECK_EQ_STR(o.filter, "tcp port 80");
	CHECK_EQ_INT(o.time_wait_ns, 60000000000ULL);
	options_free(&o);
}

static void test_errors(void)
{
	struct options o;
	char err[256];
	const char *bad[][6] = {
		{ "tcpstate", NULL },                              /* no input */
		{ "tcpstate", "-r", "x", "-c", "0", NULL },        /* -c must be positive */
		{ "tcpstate", "-r", "x", "-c", "ten", NULL },
		{ "tcpstate", "-r", "x", "--format", "xml", NULL },
		{ "tcpstate", "-r", "x", "--at", "yesterday", NULL },
		{ "tcpstate", "-r", "x", "--limit", "-1", NULL },
		{ "tcpstate", "-r", "x", "--time-wait", "abc", NULL },
		{ "tcpstate", "-r", "x", "--bogus", NULL },
		{ "tcpstate", "-r", NULL },
		{ "tcpstate", "-r", "x", "-i", "lo", NULL },
		{ "tcpstate", "-r", "x", "-Z", "nobody", NULL },    /* live-only with a file */
		{ "tcpstate", "-r", "x", "--duration", "5", NULL },
		{ "tcpstate", "-i", "lo", "--at", "+5", NULL },    /* --at is for files */
		{ "tcpstate", "-i", "lo", "-B", "8", NULL },       /* below Linux's smallest ring */
		{ "tcpstate", "-r", "x", "--report", "bogus", NULL },
		{ "tcpstate", "-r", "x", "--syn-incomplete", "1.5", NULL },
		{ "tcpstate", "-r", "x", "--idle-timeout", "ESTABLISHED", NULL },
		{ "tcpstate", "-r", "x", "--idle-timeout", "TIME_WAIT=5", NULL },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		CHECK_EQ_INT(parse(&o, err, bad[i]), 2);
		CHECK(err[0] != 0);
		options_free(&o);
	}
	const char *h[] = { "tcpstate", "--help", NULL };

	CHECK_EQ_INT(parse(&o, err, h), 0);
	CHECK_EQ_INT(o.action, ACT_HELP);
	options_free(&o);
}

static void test_time(void)
{
	uint64_t ns;
	bool rel;

	CHECK(parse_time("1700000000", &ns, &rel) && !rel && ns == 1700000000000000000ULL);
	CHECK(parse_time("1700000000.123456789", &ns, &rel) && ns == 1700000000123456789ULL);
	CHECK(parse_time("+2.5", &ns, &rel) && rel && ns == 2500000000ULL);
	/* date -u -d 2023-11-14T22:13:20Z +%s = 1700000000 */
	CHECK(parse_time("2023-11-14T22:13:20Z", &ns, &rel) && ns == 1700000000000000000ULL);
	CHECK(parse_time("2023-11-14 22:13:20.25", &ns, &rel) && ns == 1700000000250000000ULL);
	/* 23:13:20+01:00 is 22:13:20 UTC */
	CHECK(parse_time("2023-11-14T23:13:20+01:00", &ns, &rel) && ns == 1700000000000000000ULL);
	CHECK(parse_time("2023-11-14T21:13:20-0100", &ns, &rel) && ns == 1700000000000000000ULL);
	CHECK(!parse_time("2023-13-14T22:13:20Z", &ns, &rel));
	CHECK(!parse_time("2023-11-14T22:13:20X", &ns, &rel));
	CHECK(!parse_time("", &ns, &rel));
	CHECK(!parse_time("+", &ns, &rel));
	CHECK(parse_seconds("0.000001", &ns) && ns == 1000);
	CHECK(!parse_seconds("1e3", &ns));
}

int main(void)
{
	test_basic();
	test_errors();
	test_time();
	return test_done("options");
}
