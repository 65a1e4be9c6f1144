/*
 * NAME
 *	util - memory, growing strings and small helpers shared by every program
 * SYNOPSIS
 *	#include "lib/util.h"
 * DESCRIPTION
 *	xmalloc() and friends never return NULL: running out of memory while
 *	handling mail is a temporary failure, so they exit with EX_TEMPFAIL
 *	(75) and the caller (PHP's mail(), cron) can retry later.
 *
 *	struct buf is a growing byte string, always NUL-terminated so that
 *	text can be handed to libc functions, but length-counted so that
 *	message content with any byte in it survives.
 */
#ifndef MXLANE_UTIL_H
#define MXLANE_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MXL_PRINTF(f, a) __attribute__((format(printf, f, a)))

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) MXL_PRINTF(1, 2);

struct buf {
	char *data;		/* always NUL-terminated when cap > 0 */
	size_t len;
	size_t cap;
};

#define BUF_INIT {NULL, 0, 0}

void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, int c);
void buf_printf(struct buf *b, const char *fmt, ...) MXL_PRINTF(2, 3);
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);
/* Hands the bytes to the caller (who frees them) and empties the buf. */
char *buf_steal(struct buf *b);

/* ASCII-only case folding: mail addresses and keywords are ASCII. */
void str_lower(char *s);
int str_casecmp_ascii(const char *a, const char *b);
/*
 * A domain name as DNS has it: labels of 1 to 63 letters, digits and
 * '-' (and '_' when underscore, as in a DKIM selector), 253 octets at
 * most, no dot at either end.
 */
bool str_dns_name_ok(const char *name, bool underscore);
int str_ncasecmp_ascii(const char *a, const char *b, size_t n);
/* Removes leading and trailing blanks in place; returns s. */
char *str_trim(char *s);

/* Control characters (and DEL) become '?': one printable line. */
void str_printable(char *s);
/*
 * snprintf() into out (nothing when out is NULL or len 0), then
 * str_printable(): for reasons that quote paths or input from users.
 */
void printable_printf(char *out, size_t len, const char *fmt, ...)
    MXL_PRINTF(3, 4);

/* Big-endian integers, as spool records and files store them. */
/*
 * s as a JSON string ("null" for NULL): quotes, backslashes and control
 * characters escaped, and bytes that are not UTF-8 (addresses and
 * replies come from outside, in any encoding) written as U+FFFD, so
 * that the output always parses.
 */
void json_put_str(struct buf *b, const char *s);
void buf_put_be32(struct buf *b, uint32_t v);
void buf_put_be64(struct buf *b, uint64_t v);
uint32_t get_be32(const unsigned char *p);
uint64_t get_be64(const unsigned char *p);

/*
 * Clocks. mono_*: for durations and deadlines (never jumps); wall_ms:
 * unix time in milliseconds, for what is stored or compared across
 * processes (due times, throttle windows).
 */
int64_t mono_ms(void);
double mono_seconds(void);
int64_t wall_ms(void);

/* Writes all of len bytes, retrying short writes and EINTR. */
int write_full(int fd, const void *data, size_t len);

#endif
