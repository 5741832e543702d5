#ifndef CHORUS_UTIL_XALLOC_H
#define CHORUS_UTIL_XALLOC_H

#include <stddef.h>

/* Allocation that aborts on failure (see util/buf.h for why). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
