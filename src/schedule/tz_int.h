#ifndef CHORUS_SCHEDULE_TZ_INT_H
#define CHORUS_SCHEDULE_TZ_INT_H

/*
 * The TZif reader without the file system and the cache, for the unit
 * tests and the fuzz harness (tests/fuzz/fuzz_tzif.c): a zone parsed from
 * memory is the caller's, freed with tz_free; tz_get's never are.
 */
#include <stddef.h>

#include "schedule/tz.h"

/* Offsets a file may give: RFC 8536 recommends -25:59:59..+25:59:59; a
 * POSIX footer's DST offset (std + 1 h by default) stays within 26 h. */
#define TZ_OFFSET_MAX (26 * 3600)
/* A TZif file larger than this is refused (the largest real one is < 100 KiB). */
#define TZ_FILE_MAX (1 << 20)

/* Parses a TZif file (v1, v2, v3 or v4) of len bytes: 0 and *out, or
 * -EINVAL with the reason in err. name is kept as tz_name's. */
int tz_parse(const void *data, size_t len, const char *name, tz_t **out, char *err, size_t errlen);
void tz_free(tz_t *tz);

/* Parses a POSIX TZ string (a TZif footer's, with RFC 8536's extensions:
 * rule times of -167..167 hours) into a zone of no transitions: 0, or
 * -EINVAL. For tests. */
int tz_parse_posix(const char *s, const char *name, tz_t **out);

#endif
