/* test.h - tiny assertion helpers shared by the unit tests.
 * A failed check prints file:line and the expression and marks the test
 * failed; exit code 77 tells meson a test was skipped. */
#ifndef TCPSTATE_TEST_H
#define TCPSTATE_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;
static int test_checks;

#define CHECK(cond) do { \
	test_checks++; \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
		test_failures++; \
	} \
} while (0)

#define CHECK_EQ_INT(a, b) do { \
	long long va_ = (long long)(a), vb_ = (long long)(b); \
	test_checks++; \
	if (va_ != vb_) { \
		fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", \
			__FILE__, __LINE__, #a, #b, va_, vb_); \
		test_failures++; \
	} \
} while (0)

#define CHECK_EQ_STR(a, b) do { \
	const char *sa_ = (a), *sb_ = (b); \
	test_checks++; \
	if (sa_ == NULL || sb_ == NULL || strcmp(sa_, sb_) != 0) { \
		fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", \
			__FILE__, __LINE__, #a, #b, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)"); \
		test_failures++; \
	} \
} while (0)

/* SplitMix64, for random test data: the next number of the sequence that
 * *state (any seed) stands in. */
static inline uint64_t test_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Call at the end of main(). */
static inline int test_done(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, test_checks, test_failures);
	return test_failures ? 1 : 0;
}

#endif
