/*
 * NAME
 *	fuzz.h - what the libFuzzer harnesses in tests/fuzz/ share
 * SYNOPSIS
 *	#include "tests/fuzz/fuzz.h"
 *
 *	FUZZ_ASSERT(cond, what);
 *	const char *fuzz_dir(void);
 *	char *fuzz_file(const char *name, const void *data, size_t len);
 * DESCRIPTION
 *	FUZZ_ASSERT() states a property the parser's manual page promises
 *	(a canonical address parses back to itself, a reply line is one
 *	line). A broken promise is a bug even when no memory is harmed, so
 *	it aborts, and libFuzzer saves the input as a crash like any other.
 *
 *	fuzz_dir() is a private directory made once per process with
 *	mkdtemp(3) and removed (with every file fuzz_file() wrote into it)
 *	when the process exits normally; a crashed run leaves it behind in
 *	$TMPDIR for inspection. fuzz_file() writes name in it, replacing
 *	any earlier content, and returns its path (caller frees). The
 *	aliases and configuration parsers only read files, so each input
 *	goes through one.
 */
#ifndef MXLANE_FUZZ_H
#define MXLANE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"

#define FUZZ_ASSERT(cond, what) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: broken promise: %s (%s)\n", \
		    __FILE__, __LINE__, (what), #cond); \
		abort(); \
	} } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_FILES_MAX	16

static char fuzz_dir_path[256];
static char *fuzz_files[FUZZ_FILES_MAX];
static size_t fuzz_nfiles;

static inline void
fuzz_cleanup(void)
{
	size_t i;

	for (i = 0; i < fuzz_nfiles; i++) {
		(void)unlink(fuzz_files[i]);
		free(fuzz_files[i]);
	}
	fuzz_nfiles = 0;
	if (fuzz_dir_path[0] != '\0')
		(void)rmdir(fuzz_dir_path);
}

static inline const char *
fuzz_dir(void)
{
	const char *tmp;

	if (fuzz_dir_path[0] != '\0')
		return fuzz_dir_path;
	if ((tmp = getenv("TMPDIR")) == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(fuzz_dir_path, sizeof(fuzz_dir_path), "%s/mxlane-fuzz.XXXXXX",
	    tmp);
	if (mkdtemp(fuzz_dir_path) == NULL) {
		perror(fuzz_dir_path);
		abort();
	}
	atexit(fuzz_cleanup);
	return fuzz_dir_path;
}

static inline char *
fuzz_file(const char *name, const void *data, size_t len)
{
	char *path = xasprintf("%s/%s", fuzz_dir(), name);
	FILE *f;
	size_t i;

	if ((f = fopen(path, "w")) == NULL ||
	    (len > 0 && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
		perror(path);
		abort();
	}
	for (i = 0; i < fuzz_nfiles; i++)
		if (strcmp(fuzz_files[i], path) == 0)
			break;
	if (i == fuzz_nfiles) {
		if (fuzz_nfiles == FUZZ_FILES_MAX)
			abort();
		fuzz_files[fuzz_nfiles++] = xstrdup(path);
	}
	return path;
}

#endif
