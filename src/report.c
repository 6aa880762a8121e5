/* report.c - the part of reporting both formats share: counting every
 * connection's final states, and choosing which connections the text
 * listing shows (the --limit worst: not closed cleanly first, then oldest)
 * with a bounded heap so a capture of millions keeps only those. */
#include <stdlib.h>

#include "report.h"

struct report *report_create(const struct options *o, struct out *out)
{
	struct report *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->opt = o;
	r->out = out;
	r->zeek_upto = o->format == FMT_TEXT && !(report_mask(r) & SEC_CONNECTIONS) ? 0 : UINT64_MAX;
	return r;
}

const uint64_t *report_zeek_upto(const struct report *r)
{
	return &r->zeek_upto;
}

void report_set_analyses(struct report *r, struct analyses *an)
{
	r->an = an;
}

unsigned report_mask(const struct report *r)
{
	return r->opt->report_mask ? r->opt->report_mask : SEC_ALL;
}

void report_set_reference(struct report *r, uint64_t ref_ns)
{
	r->ref_ns = ref_ns;
}

/* List order: unclean before clean, then by id (creation order). */
static bool before(const struct conn *a, const struct conn *b)
{
	bool ca = conn_closed_cleanly(a), cb = conn_closed_cleanly(b);

	if (ca != cb)
		return !ca;
	return a->id < b->id;
}

static void sift_up(struct conn **h, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (!before(h[p], h[i]))
			break;
		struct conn *tmp = h[p];
		h[p] = h[i];
		h[i] = tmp;
		i = p;
	}
}

static void sift_down(struct conn **h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;

		if (l < n && before(h[m], h[l]))
			m = l;
		if (l + 1 < n && before(h[m], h[l + 1]))
			m = l + 1;
		if (m == i)
			return;
		struct conn *tmp = h[m];
		h[m] = h[i];
		h[i] = tmp;
		i = m;
	}
}

/* Once the listing holds --limit connections and the worst of them (the
 * heap's top) is unclean, all of them are, and a connection gets in only if
 * it is unclean with a smaller id than that one's, which then leaves: the
 * top's id only goes down. A connection with a larger id, as every one the
 * tracker creates from then on has, will never be listed, and nothing else
 * in text reads its Zeek fields: the tracker need not model them. */
static void lower_zeek_upto(struct report *r)
{
	if (r->nkept == r->opt->limit && !conn_closed_cleanly(r->kept[0]) &&
	    r->kept[0]->id < r->zeek_upto)
		r->zeek_upto = r->kept[0]->id;
}

/* The listing's connections are the --limit unclean ones with the smallest
 * ids (or fewer, then clean ones). The tracker says when a connection gets
 * a flag that makes it unclean for good (an accepted RST, a refusal, an
 * anomaly), often long before it is retired: once --limit of those are
 * known, a connection with a larger id than all of them will not be listed.
 * The ids kept are the smallest seen (a max-heap); one at or above the
 * bound already cannot lower it. */
void report_unclean(struct report *r, uint64_t id)
{
	uint64_t *h = r->unclean_ids;
	size_t n = r->n_unclean_ids, i;

	if (r->opt->format != FMT_TEXT || !r->opt->limit || id >= r->zeek_upto)
		return;
	if (n < r->opt->limit) {
		if (n == r->cap_unclean_ids) {
			size_t cap = n ? 2 * n : 64;

			if (cap > r->opt->limit)
				cap = (size_t)r->opt->limit;
			if (!(h = realloc(h, cap * sizeof(*h))))
				return;   /* the bound stays where it is: that is safe */
			r->unclean_ids = h;
			r->cap_unclean_ids = cap;
		}
		for (i = n++; i > 0 && h[(i - 1) / 2] < id; i = (i - 1) / 2)
			h[i] = h[(i - 1) / 2];
		h[i] = id;
		r->n_unclean_ids = n;
	} else if (id < h[0]) {
		for (i = 0;;) {
			size_t l = 2 * i + 1, m;

			if (l >= n)
				break;
			m = l + 1 < n && h[l + 1] > h[l] ? l + 1 : l;
			if (h[m] <= id)
				break;
			h[i] = h[m];
			i = m;
		}
		h[i] = id;
	}
	if (n == r->opt->limit && h[0] < r->zeek_upto)
		r->zeek_upto = h[0];
}

static bool keep(struct report *r, struct conn *c)
{
	uint64_t limit = r->opt->limit;

	if (limit && r->nkept == limit) {
		if (!before(c, r->kept[0])) {
			r->dropped++;
			return false;
		}
		conn_destroy(r->kept[0]);
		r->dropped++;
		r->kept[0] = c;
		sift_down(r->kept, r->nkept, 0);
		lower_zeek_upto(r);
		return true;
	}
	if (r->nkept == r->capkept) {
		size_t cap = r->capkept ? r->capkept * 2 : 64;
		struct conn **n = realloc(r->kept, cap * sizeof(*n));

		if (!n) {
			r->dropped++;
			return false;
		}
		r->kept = n;
		r->capkept = cap;
	}
	r->kept[r->nkept++] = c;
	sift_up(r->kept, r->nkept - 1);
	if (limit)
		lower_zeek_upto(r);
	return true;
}

bool report_take(void *ctx, struct conn *c)
{
	struct report *r = ctx;

	r->connections++;
	r->state_count[ROLE_CLIENT][c->peer[ROLE_CLIENT].state]++;
	r->state_count[ROLE_SERVER][c->peer[ROLE_SERVER].state]++;
	if (!conn_closed_cleanly(c))
		r->unclean++;
	if (r->opt->format == FMT_JSON && !(report_mask(r) & SEC_CONNECTIONS))
		return false;
	if (r->opt->format == FMT_JSON || r->opt->format == FMT_ZEEK) {
		r->batch[r->nbatch++] = c;
		if (r->nbatch == REPORT_BATCH)
			report_flush(r);
		return true;
	}
	return keep(r, c);
}

void report_flush(struct report *r)
{
	for (size_t i = 0; i < r->nbatch; i++) {
		if (r->opt->format == FMT_JSON)
			report_json_connection(r, r->batch[i]);
		else
			report_zeek_connection(r, r->batch[i]);
		conn_destroy(r->batch[i]);
	}
	r->nbatch = 0;
}

static int cmp_list_order(const void *a, const void *b)
{
	const struct conn *x = *(const struct conn *const *)a, *y = *(const struct conn *const *)b;

	return before(x, y) ? -1 : before(y, x) ? 1 : 0;
}

void report_finish(struct report *r, const struct run_summary *s)
{
	report_flush(r);
	if (r->opt->format == FMT_JSON) {
		if (r->an)
			analyses_write_json(r->an, r->out, report_mask(r));
		report_json_summary(r, s);
		return;
	}
	if (r->opt->format == FMT_ZEEK) {
		report_zeek_footer(r, s);
		return;
	}
	if (r->nkept) /* kept is NULL while empty, and qsort(NULL, 0) is undefined */
		qsort(r->kept, r->nkept, sizeof(*r->kept), cmp_list_order);
	report_text(r, s);
}

void report_destroy(struct report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nkept; i++)
		conn_destroy(r->kept[i]);
	for (size_t i = 0; i < r->nbatch; i++)
		conn_destroy(r->batch[i]);
	free(r->kept);
	free(r->unclean_ids);
	free(r);
}
