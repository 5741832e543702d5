#ifndef CHORUS_UPLOADS_TUS_H
#define CHORUS_UPLOADS_TUS_H

#include <stddef.h>

/*
 * The parts of tus 1.0.0's headers that carry a stranger's bytes, parsed
 * apart from the handlers (api/uploads.c) so a fuzzer can reach them.
 */

#define TUS_METADATA_MAX 4096 /* bytes of Upload-Metadata, as sent */

/*
 * Upload-Metadata: "key base64,key base64,..." (a value may be absent).
 * Checks its form and finds filename, decoded, made safe to show and to
 * name a file in the catalog by: its last path component, no control
 * characters, UTF-8; "upload" when none. 0, or -1 with a sentence in err.
 */
int tus_metadata_filename(const char *h, size_t len, char *filename, size_t cap, char *err,
			  size_t errlen);

/* Upload-Checksum: "sha256 BASE64" of 32 bytes into digest. 0, or -1
 * with a sentence in err (another algorithm: tus says 400). */
int tus_checksum_parse(const char *h, size_t len, unsigned char digest[32], char *err,
		       size_t errlen);

#endif
