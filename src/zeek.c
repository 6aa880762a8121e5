/* zeek.c - placeholder until the Zeek vocabulary lands. */
#include "conn.h"
#include "zeek.h"

void zeek_segment(struct conn *c, int sender_role, const struct packet *p)
{
	(void)c;
	(void)sender_role;
	(void)p;
}

const char *zeek_conn_state(const struct conn *c)
{
	(void)c;
	return "OTH";
}

size_t zeek_history(const struct conn *c, char *buf, size_t len)
{
	(void)c;
	if (len)
		buf[0] = 0;
	return 0;
}

bool zeek_flipped(const struct conn *c)
{
	(void)c;
	return false;
}
