#ifndef CHORUS_INGEST_PROBE_H
#define CHORUS_INGEST_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog/model.h"

/* True when a file name has the extension of an audio format chorus takes:
 * mp3, flac, ogg/oga, opus, m4a/m4b/mp4/aac, wav. */
bool probe_is_audio_name(const char *name);

/*
 * Reads tags and stream properties of the file held in data[0..len) with
 * libavformat, and checks that the audio is all there (a FLAC or MP4 cut
 * short is refused). name (the file name) gives the fallback title.
 * Returns 0, or -1 with a one-line reason in err ("not an audio file",
 * "truncated: audio ends at 3.2 s of 20.0 s", ...). Thread-safe.
 */
int probe_file(const char *name, const unsigned char *data, size_t len, struct track_meta *out,
	       char *err, size_t errlen);

/*
 * libav's own messages (a damaged cover's "EOI missing") go through
 * util/log.h as debug lines, whole, each with its "[codec @ 0x...]"
 * prefix: libav's default printer keeps the prefix state in one static
 * shared by every thread, so probes running at once printed lines with
 * no prefix, on stderr, whatever the log level. Silent without
 * CHORUS_DEBUG. Once, before any probe (ingest and serve call it).
 */
void probe_log_setup(void);

/* Parses the leading number of "3", "3/12", " 03 of 12": 0 when none. */
int probe_parse_number(const char *s);
/* The year of "2019", "2019-05-01", "2019/05": 0 when none. */
int probe_parse_year(const char *s);

#endif
