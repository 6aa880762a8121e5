/* test_conn_pool.c - the pool's records do not overlap and keep their
 * bytes while others come and go, in every size class and the large
 * ones; packed records emptied out give their memory back (all but one
 * kept 2 MiB arena), so what stays mapped follows the records still held,
 * not how many there ever were, and all of them go at once on demand
 * (conn_pool_drop_packed); live records ask for huge pages and packed ones
 * do not. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "conn_pool.h"
#include "test.h"

#define N 120000
#define ARENA ((size_t)2 << 20)

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint64_t rnd(void)
{
	return test_rand(&rng_state);
}

struct rec {
	uint8_t *p;
	size_t n;
	uint8_t tag;
};

/* Sizes as conn_pack.c asks for them: mostly 40-200 bytes, some up to the
 * largest class, a few larger (long timelines: a mapping of their own). */
static size_t some_size(void)
{
	uint64_t r = rnd() % 1000;

	return r < 900 ? 40 + rnd() % 160 : r < 995 ? 1 + rnd() % 1024 : 1025 + rnd() % 9000;
}

static void put(struct conn_pool *pool, struct rec *r)
{
	r->n = some_size();
	r->tag = (uint8_t)rnd();
	r->p = conn_pool_alloc_packed(pool, r->n);
	CHECK(r->p != NULL);
	if (!r->p)
		return;
	CHECK(((uintptr_t)r->p & 7) == 0);
	for (size_t i = 0; i < r->n; i++)
		r->p[i] = (uint8_t)(r->tag + i);
}

static int intact(const struct rec *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->p[i] != (uint8_t)(r->tag + i))
			return 0;
	return 1;
}

static size_t bad_records(const struct rec *v, size_t n)
{
	size_t bad = 0;

	for (size_t i = 0; i < n; i++)
		if (v[i].p && !intact(&v[i]))
			bad++;
	return bad;
}

/* What the records in v still hold on to: the 64 KiB slabs with at least
 * one of them, and the mappings of their own of the large ones. */
static int cmp_addr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return (x > y) - (x < y);
}

static size_t held_bytes(const struct rec *v, size_t n)
{
	uintptr_t *slab = calloc(n + 1, sizeof(*slab));
	size_t k = 0, bytes = 0;

	if (!slab)
		return SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		if (!v[i].p)
			continue;
		if (v[i].n > 1024)
			bytes += (v[i].n + 64 + 4095) & ~(size_t)4095;
		else
			slab[k++] = (uintptr_t)v[i].p & ~(uintptr_t)0xffff;
	}
	qsort(slab, k, sizeof(*slab), cmp_addr);
	for (size_t i = 0; i < k; i++)
		if (i == 0 || slab[i] != slab[i - 1])
			bytes += (size_t)64 << 10;
	free(slab);
	return bytes;
}

/* Resident bytes of the whole process (the kernel's count, not the pool's). */
static size_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, resident = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return resident * 4096;
}

/* Freed about in the order they were made (TIME_WAIT's minute runs out),
 * and then at random: what stays mapped follows the slabs still holding
 * records (free slabs keep their pages only up to a quarter of those, and
 * one emptied arena is kept), not the most there ever were. */
static void test_give_back(void)
{
	struct conn_pool *pool = conn_pool_create(0);
	struct rec *v = calloc(N, sizeof(*v));
	size_t mapped_full, held, rss0;

	CHECK(pool && v);
	if (!pool || !v)
		return;
	memset(v, 0xff, N * sizeof(*v));  /* its pages resident before rss0 */
	memset(v, 0, N * sizeof(*v));
	rss0 = rss_bytes();
	for (size_t i = 0; i < N; i++)
		put(pool, &v[i]);
	mapped_full = conn_pool_packed_mapped(pool);
	if (!mapped_full) {
		printf("conn_pool: records from malloc (sanitizer build): mapping checks skipped\n");
		goto out;
	}
	for (size_t i = 0; i < N - N / 10; i++) {
		conn_pool_free_packed(v[i].p);
		v[i].p = NULL;
	}
	CHECK_EQ_INT(bad_records(v, N), 0);
	held = held_bytes(v, N);
	printf("conn_pool: %zu KiB mapped for %d records; the newest tenth hold %zu KiB, %zu KiB mapped\n",
	       mapped_full >> 10, N, held >> 10, conn_pool_packed_mapped(pool) >> 10);
	CHECK(conn_pool_packed_mapped(pool) <= held + held / 4 + 3 * ARENA);
	/* and the kernel agrees (a megabyte for the rest of the process) */
	if (rss0)
		CHECK(rss_bytes() - rss0 <= held + held / 4 + 3 * ARENA + ((size_t)1 << 20));
	/* a random nine in ten of those: scattered holes */
	for (size_t i = N - N / 10; i < N; i++)
		if (rnd() % 10) {
			conn_pool_free_packed(v[i].p);
			v[i].p = NULL;
		}
	CHECK_EQ_INT(bad_records(v, N), 0);
	held = held_bytes(v, N);
	printf("conn_pool: a random tenth of those hold %zu KiB, %zu KiB mapped\n",
	       held >> 10, conn_pool_packed_mapped(pool) >> 10);
	CHECK(conn_pool_packed_mapped(pool) <= held + held / 4 + 3 * ARENA);
	if (rss0)
		CHECK(rss_bytes() - rss0 <= held + held / 4 + 3 * ARENA + ((size_t)1 << 20));
out:
	for (size_t i = 0; i < N; i++)
		conn_pool_free_packed(v[i].p);
	if (mapped_full)
		CHECK(conn_pool_packed_mapped(pool) <= ARENA);
	conn_pool_release(pool);
	free(v);
}

static void test_packed(void)
{
	struct conn_pool *pool = conn_pool_create(0);
	struct rec *v = calloc(N, sizeof(*v));
	size_t bytes = 0, mapped_full;
	int malloced;

	CHECK(pool && v);
	if (!pool || !v)
		return;
	for (size_t i = 0; i < N; i++) {
		put(pool, &v[i]);
		bytes += v[i].n;
	}
	CHECK_EQ_INT(bad_records(v, N), 0);
	mapped_full = conn_pool_packed_mapped(pool);
	malloced = mapped_full == 0;
	if (malloced)
		printf("conn_pool: records from malloc (sanitizer build): mapping checks skipped\n");
	else
		/* slabs fill up: little more than the bytes asked for, plus one
		 * partly used slab per class and page rounding of large ones */
		CHECK(mapped_full < bytes + bytes / 4 + 128 * ((size_t)64 << 10) + 2 * ARENA);

	/* churn: free a random half, then refill, over and over; the rest
	 * must keep their bytes, the new ones must not land on them */
	for (int round = 0; round < 6; round++) {
		for (size_t i = 0; i < N; i++)
			if (v[i].p && rnd() % 2) {
				conn_pool_free_packed(v[i].p);
				v[i].p = NULL;
			}
		CHECK_EQ_INT(bad_records(v, N), 0);
		for (size_t i = 0; i < N; i++)
			if (!v[i].p && rnd() % 3)
				put(pool, &v[i]);
		CHECK_EQ_INT(bad_records(v, N), 0);
	}

	for (size_t i = 0; i < N; i++)
		if (v[i].p) {
			conn_pool_free_packed(v[i].p);
			v[i].p = NULL;
		}
	/* all gone: one empty arena is kept for the next records */
	if (!malloced)
		CHECK(conn_pool_packed_mapped(pool) <= ARENA);

	/* and it is used again rather than a new one */
	put(pool, &v[0]);
	if (!malloced)
		CHECK(conn_pool_packed_mapped(pool) <= ARENA);
	CHECK(intact(&v[0]));
	conn_pool_free_packed(v[0].p);
	conn_pool_free_packed(NULL);
	conn_pool_release(pool);
	free(v);
}

/* m records from pool into c[], or false (checked) when one cannot be had. */
static bool take_records(struct conn_pool *pool, struct conn **c, size_t m)
{
	CHECK(pool && c);
	if (!pool || !c)
		return false;
	for (size_t i = 0; i < m; i++) {
		c[i] = conn_pool_alloc(pool);
		CHECK(c[i] != NULL);
		if (!c[i])
			return false;
	}
	return true;
}

/* Connection records: distinct, zeroed, reused after being given back. */
static void test_records(void)
{
	struct conn_pool *pool = conn_pool_create(0);
	enum { M = 20000 };
	struct conn **c = calloc(M, sizeof(*c));
	size_t not_zero = 0, overlap = 0;

	if (!take_records(pool, c, M))
		return;
	for (size_t i = 0; i < M; i++) {
		for (size_t b = 0; b < sizeof(struct conn); b++)
			not_zero += b != offsetof(struct conn, pooled) && ((const uint8_t *)c[i])[b] != 0;
		c[i]->id = i;
		c[i]->first_packet = ~(uint64_t)i;
	}
	CHECK_EQ_INT(not_zero, 0);
	for (size_t i = 0; i < M; i += 2) {
		c[i]->id = 0;
		conn_destroy(c[i]);
		c[i] = conn_pool_alloc(pool);  /* a record given back, zeroed again */
		CHECK(c[i] && c[i]->id == 0 && c[i]->first_packet == 0);
		c[i]->id = i;
		c[i]->first_packet = ~(uint64_t)i;
	}
	for (size_t i = 0; i < M; i++)
		overlap += c[i]->id != i || c[i]->first_packet != ~(uint64_t)i;
	CHECK_EQ_INT(overlap, 0);
	for (size_t i = 0; i < M; i++)
		conn_destroy(c[i]);
	conn_pool_release(pool);
	free(c);
}

/* A pool made for timelines: its records have room for CONN_TL_INLINE
 * changes after them, which a timeline takes first and leaves when it
 * outgrows it; neighbouring records keep their changes (the room is inside
 * each slot, not past it); a record given back and taken again starts
 * with its room free. Under AddressSanitizer each record is its own
 * allocation of the same size, so a change written past the room is caught. */
static void test_timeline_room(void)
{
	struct conn_pool *pool = conn_pool_create(CONN_TL_INLINE);
	enum { M = 3000, CHANGES = CONN_TL_INLINE + 5 };
	struct conn **c = calloc(M, sizeof(*c));
	size_t moved_early = 0, stayed_late = 0, wrong = 0;

	if (!take_records(pool, c, M))
		return;
	for (size_t i = 0; i < M; i++) {
		CHECK(c[i]->tl_inline >= CONN_TL_INLINE && c[i]->tl == NULL);
		for (uint32_t k = 0; k < (i % 2 ? CHANGES : CONN_TL_INLINE); k++) {
			struct transition *tr = conn_timeline_next(c[i]);

			CHECK(tr != NULL);
			if (!tr)
				return;
			*tr = (struct transition){ .ts_ns = i * 1000 + k, .packet = i, .to = (uint8_t)k };
			/* in its own room while the changes fit, out of it after */
			if (c[i]->tl_len <= c[i]->tl_inline)
				moved_early += c[i]->tl != conn_tl_own(c[i]);
			else
				stayed_late += c[i]->tl == conn_tl_own(c[i]);
		}
	}
	CHECK_EQ_INT(moved_early, 0);
	CHECK_EQ_INT(stayed_late, 0);
	for (size_t i = 0; i < M; i++)
		for (uint32_t k = 0; k < c[i]->tl_len; k++)
			wrong += c[i]->tl[k].ts_ns != i * 1000 + k || c[i]->tl[k].packet != i ||
				 c[i]->tl[k].to != k;
	CHECK_EQ_INT(wrong, 0);
	for (size_t i = 0; i < M; i += 2) {
		conn_destroy(c[i]);
		c[i] = conn_pool_alloc(pool);
		CHECK(c[i] && c[i]->tl == NULL && c[i]->tl_len == 0 &&
		      conn_tl_alloc(c[i], CONN_TL_INLINE) == conn_tl_own(c[i]));
	}
	for (size_t i = 0; i < M; i++)
		conn_destroy(c[i]);
	/* without the room: a record as before, timelines of their own */
	conn_pool_release(pool);
	pool = conn_pool_create(0);
	CHECK(pool != NULL);
	if (pool) {
		struct conn *r = conn_pool_alloc(pool);
		struct transition *tr = r ? conn_timeline_next(r) : NULL;

		CHECK(r && tr && r->tl_inline == 0 && r->tl != conn_tl_own(r));
		conn_destroy(r);
		conn_pool_release(pool);
	}
	free(c);
}

/* The VmFlags line of the mapping that holds address a (/proc/self/smaps),
 * with a space before and after each flag; "" if not found. */
static void vm_flags_of(const void *a, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false;

	out[0] = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = (uintptr_t)a >= lo && (uintptr_t)a < hi;
		} else if (in && strncmp(line, "VmFlags:", 8) == 0) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, len, "%s ", line + 8);
			break;
		}
	}
	fclose(f);
}

/* Live records' chunks ask for huge pages (every packet reads a record:
 * TLB reach); packed records' arenas do not (each is written once and read
 * once, and a fresh huge page costs far more to touch where the hypervisor
 * has taken the guest's free memory back). The kernel's VmFlags say which:
 * "hg" is MADV_HUGEPAGE. */
static void test_page_sizes(void)
{
	struct conn_pool *pool = conn_pool_create(0);
	struct conn *c = pool ? conn_pool_alloc(pool) : NULL;
	void *p = pool ? conn_pool_alloc_packed(pool, 100) : NULL;
	char live[512], packed[512];

	CHECK(pool && c && p);
	if (!pool || !c || !p)
		goto out;
	if (!conn_pool_packed_mapped(pool)) {
		printf("conn_pool: records from malloc (sanitizer build): page size checks skipped\n");
		goto out;
	}
	vm_flags_of(c, live, sizeof(live));
	vm_flags_of(p, packed, sizeof(packed));
	if (!live[0] || !packed[0] || access("/sys/kernel/mm/transparent_hugepage/enabled", R_OK)) {
		printf("conn_pool: no VmFlags or no transparent huge pages here: page size checks skipped\n");
		goto out;
	}
	printf("conn_pool: live records' VmFlags:%s\nconn_pool: packed records' VmFlags:%s\n", live, packed);
	CHECK(strstr(live, " hg ") != NULL);
	CHECK(strstr(packed, " hg ") == NULL);
out:
	conn_pool_free_packed(p);
	conn_destroy(c);
	conn_pool_release(pool);
}

/* conn_pool_drop_packed(): every packed record still held goes at once,
 * slabs' arenas and large records' mappings alike, whatever was freed
 * before one by one; the pool then works as new, and is freed on release
 * with nothing left behind (the sanitizer build's leak check: its records
 * come from malloc, each on the pool's list). */
static void test_drop(void)
{
	enum { M = N / 4 };
	struct conn_pool *pool = conn_pool_create(0);
	struct rec *v = calloc(M, sizeof(*v));
	size_t rss0, large = 0;
	struct conn *c;

	CHECK(pool && v);
	if (!pool || !v)
		return;
	/* v's own pages in before rss0 (a zeroing alone, after calloc, the
	 * compiler may drop) */
	memset(v, 0xff, M * sizeof(*v));
	memset(v, 0, M * sizeof(*v));
	rss0 = rss_bytes();
	c = conn_pool_alloc(pool);   /* a live record, held through the drop */
	CHECK(c != NULL);
	for (size_t i = 0; i < M; i++) {
		put(pool, &v[i]);
		large += v[i].n > 1024;
	}
	/* and large ones, 4 MiB of them (mappings of their own), in place of
	 * the first records (which the drop frees all the same) */
	for (size_t i = 0; i < 256; i++) {
		v[i].n = 16 << 10;
		v[i].p = conn_pool_alloc_packed(pool, v[i].n);
		CHECK(v[i].p != NULL);
		v[i].tag = (uint8_t)i;
		for (size_t j = 0; v[i].p && j < v[i].n; j++)
			v[i].p[j] = (uint8_t)(v[i].tag + j);
		large++;
	}
	CHECK(large > 256);
	for (size_t i = 0; i < M; i++)
		if (rnd() % 2) {
			conn_pool_free_packed(v[i].p);
			v[i].p = NULL;
		}
	CHECK_EQ_INT(bad_records(v, M), 0);
	conn_pool_drop_packed(pool);
	CHECK_EQ_INT(conn_pool_packed_mapped(pool), 0);
	/* the kernel agrees: what the records took is gone (a megabyte for
	 * the rest of the process, two 2 MiB chunks for the live record's) */
	if (rss0 && !getenv("TCPSTATE_SANITIZERS"))
		CHECK(rss_bytes() <= rss0 + 2 * ARENA + ((size_t)1 << 20));
	/* as new */
	for (size_t i = 0; i < 1000; i++)
		put(pool, &v[i]);
	CHECK_EQ_INT(bad_records(v, 1000), 0);
	for (size_t i = 0; i < 1000; i++)
		conn_pool_free_packed(v[i].p);
	conn_destroy(c);
	conn_pool_release(pool);
	free(v);
}

int main(void)
{
	test_page_sizes();
	test_packed();
	test_give_back();
	test_records();
	test_timeline_room();
	test_drop();
	return test_done("conn_pool");
}
