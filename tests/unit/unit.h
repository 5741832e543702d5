#ifndef CHORUS_TESTS_UNIT_H
#define CHORUS_TESTS_UNIT_H

/*
 * A tiny unit-test harness. Each test is a function; TEST_RUN prints
 * "ok - name" or "not ok - name" (TAP style) and tests/run.sh counts them.
 * CHECK records a failure with its line and carries on within the test.
 */
#include <stdio.h>
#include <string.h>

static int unit_failed_checks;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *a_ = (a), *b_ = (b);                                                   \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                           \
			fprintf(stderr, "  %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__,         \
				a_ ? a_ : "(null)", b_ ? b_ : "(null)");                           \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

static int unit_total_failed;

#define TEST_RUN(fn)                                                                               \
	do {                                                                                       \
		unit_failed_checks = 0;                                                            \
		fn();                                                                              \
		printf("%s - %s\n", unit_failed_checks ? "not ok" : "ok", #fn);                    \
		fflush(stdout);                                                                    \
		if (unit_failed_checks)                                                            \
			unit_total_failed++;                                                       \
	} while (0)

#define TEST_EXIT() return unit_total_failed ? 1 : 0

#endif
