/*
 * NAME
 *	unit.h - the smallest test harness that does the job
 * DESCRIPTION
 *	CHECK(cond) records one assertion; CHECK_STR(a, b) compares strings
 *	and prints both on mismatch. unit_done() prints
 *	"unit NAME: N passed, N failed" and returns the exit status, so
 *	tests/run.sh can count results.
 */
#ifndef MXLANE_UNIT_H
#define MXLANE_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_passed, unit_failed;

#define CHECK(cond) do { \
	if (cond) { unit_passed++; } else { unit_failed++; \
	    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
	    #cond); } } while (0)

#define CHECK_STR(a, b) do { \
	const char *ua_ = (a), *ub_ = (b); \
	if (ua_ && ub_ && strcmp(ua_, ub_) == 0) { unit_passed++; } else { \
	    unit_failed++; fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", \
	    __FILE__, __LINE__, ua_ ? ua_ : "(null)", ub_ ? ub_ : "(null)"); } \
	} while (0)

#define CHECK_INT(a, b) do { \
	long long ua_ = (long long)(a), ub_ = (long long)(b); \
	if (ua_ == ub_) { unit_passed++; } else { unit_failed++; \
	    fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", __FILE__, \
	    __LINE__, #a, ua_, ub_); } } while (0)

static inline int
unit_done(const char *name)
{
	printf("unit %s: %d passed, %d failed\n", name, unit_passed,
	    unit_failed);
	return unit_failed ? 1 : 0;
}

#endif
