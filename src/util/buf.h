#ifndef CHORUS_UTIL_BUF_H
#define CHORUS_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

/*
 * An owning, growable byte buffer with a hard size cap chosen by its user
 * (after curl's dynbuf), so input from a client can never grow it without
 * bound. The contents are always NUL-terminated for convenience; len does
 * not count the NUL. Allocation failure aborts: chorus is a daemon and a
 * size cap on client input matters more than surviving OOM.
 */
typedef struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max; /* hard limit on len */
} buf_t;

void buf_init(buf_t *b, size_t max);
void buf_free(buf_t *b);
void buf_reset(buf_t *b);
/* Returns 0, or -1 when the cap would be exceeded (the buffer is unchanged). */
int buf_append(buf_t *b, const void *p, size_t n) __attribute__((warn_unused_result));
int buf_appends(buf_t *b, const char *s) __attribute__((warn_unused_result));
int buf_printf(buf_t *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), warn_unused_result));
/* Makes room for n more bytes; returns a pointer to them or NULL past the cap. */
char *buf_reserve(buf_t *b, size_t n);
/* Detaches the storage: the caller frees it. */
char *buf_steal(buf_t *b);

#endif
