/* test_report.c - the text listing's choice, and what it tells the tracker:
 * report_zeek_upto(), the largest id whose Zeek fields the report may still
 * show. Worked out by hand from the listing's order (unclean connections
 * first, then by id) and --limit. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "report.h"
#include "test.h"

/* A retired connection: closed cleanly (both FINs, both CLOSED) or not
 * (the server still ESTABLISHED). */
static struct conn *conn_make(uint64_t id, bool clean)
{
	struct conn *c = calloc(1, sizeof(*c));   /* not pooled: conn_destroy() frees it */

	if (!c)
		return NULL;
	c->id = id;
	c->peer[ROLE_CLIENT].state = TS_CLOSED;
	c->peer[ROLE_SERVER].state = clean ? TS_CLOSED : TS_ESTABLISHED;
	c->peer[ROLE_CLIENT].bits = c->peer[ROLE_SERVER].bits = PB_FIN;
	return c;
}

/* Hands connection (id, clean) to r; the report takes it or frees it. */
static void take(struct report *r, uint64_t id, bool clean)
{
	struct conn *c = conn_make(id, clean);

	CHECK(c != NULL);
	if (c && !report_take(r, c))
		conn_destroy(c);
}

static struct report *report_make(struct options *o, struct out *out, enum out_format f,
				  uint64_t limit, unsigned mask)
{
	memset(o, 0, sizeof(*o));
	o->format = f;
	o->limit = limit;
	o->report_mask = mask;
	return report_create(o, out);
}

static void test_zeek_upto(struct out *out)
{
	struct options o;
	struct report *r;

	/* --limit 3: the bound comes down once three unclean ones are kept */
	r = report_make(&o, out, FMT_TEXT, 3, 0);
	CHECK(*report_zeek_upto(r) == UINT64_MAX);
	take(r, 5, false);
	take(r, 2, true);
	take(r, 9, false);
	/* kept 5, 9 (unclean) and 2 (clean, the worst): an unclean 100 would still get in */
	CHECK(*report_zeek_upto(r) == UINT64_MAX);
	take(r, 7, false);
	/* kept 5, 7, 9: only an unclean one under 9 gets in now */
	CHECK(*report_zeek_upto(r) == 9);
	take(r, 12, false);   /* not kept */
	CHECK(*report_zeek_upto(r) == 9);
	take(r, 1, true);     /* clean: not kept, whatever its id */
	CHECK(*report_zeek_upto(r) == 9);
	take(r, 6, false);    /* kept instead of 9 */
	CHECK(*report_zeek_upto(r) == 7);
	report_destroy(r);

	/* --limit 0 lists all: every connection may be shown */
	r = report_make(&o, out, FMT_TEXT, 0, 0);
	for (uint64_t id = 1; id < 20; id++)
		take(r, id, false);
	CHECK(*report_zeek_upto(r) == UINT64_MAX);
	report_destroy(r);

	/* JSON and conn.log write every connection's Zeek fields */
	r = report_make(&o, out, FMT_JSON, 1, 0);
	take(r, 1, false);
	take(r, 2, false);
	CHECK(*report_zeek_upto(r) == UINT64_MAX);
	report_destroy(r);
	r = report_make(&o, out, FMT_ZEEK, 1, 0);
	take(r, 1, false);
	take(r, 2, false);
	CHECK(*report_zeek_upto(r) == UINT64_MAX);
	report_destroy(r);

	/* text without the listing (--report states,time_wait): none */
	r = report_make(&o, out, FMT_TEXT, 50, SEC_STATES | SEC_TIME_WAIT);
	CHECK(*report_zeek_upto(r) == 0);
	report_destroy(r);
	r = report_make(&o, out, FMT_TEXT, 50, SEC_STATES | SEC_CONNECTIONS);
	CHECK(*report_zeek_upto(r) == UINT64_MAX);
	report_destroy(r);
}

/* report_unclean(): connections known to end unclean before they are
 * retired. Once --limit of them are known, the bound is the largest of the
 * --limit smallest ids. */
static void test_unclean(struct out *out)
{
	struct options o;
	struct report *r;

	r = report_make(&o, out, FMT_TEXT, 3, 0);
	report_unclean(r, 10);
	report_unclean(r, 4);
	CHECK(*report_zeek_upto(r) == UINT64_MAX);   /* two known: a third may come first */
	report_unclean(r, 20);
	CHECK(*report_zeek_upto(r) == 20);            /* 4, 10, 20 */
	report_unclean(r, 30);
	CHECK(*report_zeek_upto(r) == 20);
	report_unclean(r, 7);
	CHECK(*report_zeek_upto(r) == 10);            /* 4, 7, 10 */
	report_unclean(r, 1);
	CHECK(*report_zeek_upto(r) == 7);             /* 1, 4, 7 */
	report_unclean(r, 5);
	CHECK(*report_zeek_upto(r) == 5);             /* 1, 4, 5 */
	report_unclean(r, 2);
	CHECK(*report_zeek_upto(r) == 4);             /* 1, 2, 4 */
	/* connections retired unclean also count (the listing's own rule) */
	take(r, 3, false);
	take(r, 9, false);
	take(r, 8, false);
	CHECK(*report_zeek_upto(r) == 4);             /* kept 3, 8, 9: the lower bound stays */
	report_destroy(r);

	/* many more than --limit, in a shuffled order: the bound is the
	 * --limit-th smallest id */
	r = report_make(&o, out, FMT_TEXT, 100, 0);
	for (uint64_t i = 0; i < 5000; i++)
		report_unclean(r, 1 + (i * 2654435761u) % 5000);
	CHECK(*report_zeek_upto(r) == 100);
	report_destroy(r);

	/* --limit 0, JSON, conn.log: every connection may be shown */
	r = report_make(&o, out, FMT_TEXT, 0, 0);
	report_unclean(r, 1);
	CHECK(*report_zeek_upto(r) == UINT64_MAX);
	report_destroy(r);
	r = report_make(&o, out, FMT_JSON, 1, 0);
	report_unclean(r, 1);
	CHECK(*report_zeek_upto(r) == UINT64_MAX);
	report_destroy(r);
}

/* What fd holds from the start: the connection ids of its JSON records in
 * order (ids[], at most cap), returned as their number. */
static size_t json_ids(int fd, uint64_t *ids, size_t cap)
{
	static char buf[1 << 16];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	size_t k = 0;

	buf[n > 0 ? n : 0] = '\0';
	for (char *p = buf; (p = strstr(p, "\"id\":")); p += 5)
		if (k < cap)
			ids[k++] = strtoull(p + 5, NULL, 10);
	return k;
}

static size_t count_lines_with(int fd, const char *what)
{
	static char buf[1 << 16];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	size_t k = 0;

	buf[n > 0 ? n : 0] = '\0';
	for (char *p = buf; (p = strstr(p, what)); p++)
		k++;
	return k;
}

/* JSON records and conn.log rows go out REPORT_BATCH at a time, in the
 * order the connections were retired; report_flush() writes the rest, and
 * the end (report_finish) does too. conn.log's header comes once, before the
 * first row, however many batches follow. */
static void test_batches(void)
{
	FILE *f = tmpfile();
	int fd = f ? fileno(f) : -1;
	struct out *out = fd >= 0 ? out_create(fd) : NULL;
	struct options o;
	struct report *r;
	uint64_t ids[128];
	size_t n;
	bool in_order = true;

	CHECK(out != NULL);
	if (!out)
		return;
	r = report_make(&o, out, FMT_JSON, 0, 0);
	for (uint64_t id = 1; id < REPORT_BATCH; id++)
		take(r, id, id % 3 == 0);
	out_flush(out);
	CHECK_EQ_INT(json_ids(fd, ids, 128), 0);           /* held back */
	take(r, REPORT_BATCH, false);
	out_flush(out);
	CHECK_EQ_INT(json_ids(fd, ids, 128), REPORT_BATCH); /* a batch */
	for (uint64_t id = REPORT_BATCH + 1; id <= 70; id++)
		take(r, id, false);
	report_flush(r);
	report_flush(r);                                    /* nothing more */
	out_flush(out);
	n = json_ids(fd, ids, 128);
	CHECK_EQ_INT(n, 70);
	for (size_t i = 0; i < n; i++)
		in_order &= ids[i] == i + 1;
	CHECK(in_order);
	report_destroy(r);

	CHECK(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0);
	r = report_make(&o, out, FMT_ZEEK, 0, 0);
	for (uint64_t id = 1; id <= 2 * REPORT_BATCH + 3; id++)
		take(r, id, true);
	report_finish(r, &(struct run_summary){ .frames = 1 });
	out_flush(out);
	CHECK_EQ_INT(count_lines_with(fd, "\n#fields\t"), 1);
	CHECK_EQ_INT(count_lines_with(fd, "\ttcp\t"), 2 * REPORT_BATCH + 3);
	CHECK_EQ_INT(count_lines_with(fd, "#close\t"), 1);
	report_destroy(r);

	/* held back at the end without a flush: freed, not written or leaked */
	CHECK(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0);
	r = report_make(&o, out, FMT_JSON, 0, 0);
	take(r, 1, false);
	report_destroy(r);
	out_flush(out);
	CHECK_EQ_INT(json_ids(fd, ids, 128), 0);
	out_destroy(out);
	fclose(f);
}

/* The first two write to /dev/null: the reports' output is not what they test. */
int main(void)
{
	int fd = open("/dev/null", O_WRONLY);
	struct out *out = out_create(fd);

	CHECK(fd >= 0 && out != NULL);
	if (out) {
		test_zeek_upto(out);
		test_unclean(out);
	}
	test_batches();
	out_destroy(out);
	if (fd >= 0)
		close(fd);
	return test_done("report");
}
