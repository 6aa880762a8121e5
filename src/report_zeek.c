/* report_zeek.c - placeholder until the Zeek conn.log writer lands. */
#include "report.h"

void report_zeek_header(struct report *r)
{
	out_str(r->out, "#separator \\x09\n");
}

void report_zeek_connection(struct report *r, const struct conn *c)
{
	(void)r;
	(void)c;
}

void report_zeek_footer(struct report *r, const struct run_summary *s)
{
	(void)r;
	(void)s;
}
