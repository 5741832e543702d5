/*
 * tus header parsers (tus.h). Bounded by the caller's buffers and
 * TUS_METADATA_MAX; nothing allocates.
 */
#include "uploads/tus.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/text.h"

int tus_metadata_filename(const char *h, size_t len, char *filename, size_t cap, char *err,
			  size_t errlen)
{
	size_t i = 0;

	snprintf(filename, cap, "upload");
	if (len > TUS_METADATA_MAX) {
		snprintf(err, errlen, "Upload-Metadata over %d bytes", TUS_METADATA_MAX);
		return -1;
	}
	while (i < len) {
		size_t end = i, sp;
		unsigned char val[TUS_METADATA_MAX];
		int n = 0;

		while (end < len && h[end] != ',')
			end++;
		while (i < end && h[i] == ' ')
			i++;
		sp = i;
		while (sp < end && h[sp] != ' ')
			sp++;
		if (sp == i) {
			snprintf(err, errlen, "Upload-Metadata has an empty key");
			return -1;
		}
		if (sp < end) {
			n = text_base64_decode(h + sp + 1, end - sp - 1, val, sizeof(val));
			if (n < 0) {
				snprintf(err, errlen,
					 "Upload-Metadata: the value of %.*s is not base64",
					 (int)(sp - i < 64 ? sp - i : 64), h + i);
				return -1;
			}
		}
		if (sp - i == 8 && memcmp(h + i, "filename", 8) == 0 && n > 0) {
			const unsigned char *base = val;
			size_t k = 0;

			for (int m = 0; m < n; m++)
				if (val[m] == '/' || val[m] == '\\')
					base = val + m + 1;
			for (const unsigned char *q = base; q < val + n && k + 1 < cap; q++)
				if (*q >= 0x20 && *q != 0x7f)
					filename[k++] = (char)*q;
			filename[k] = '\0';
			/* Cut to fit: not inside a character. */
			for (int back = 0; back < 3 && k && !text_is_utf8(filename, k); back++)
				filename[--k] = '\0';
			if (!text_is_utf8(filename, k)) {
				snprintf(err, errlen, "the filename is not UTF-8");
				return -1;
			}
			if (k == 0 || strcmp(filename, ".") == 0 || strcmp(filename, "..") == 0)
				snprintf(filename, cap, "upload");
		}
		i = end + 1;
	}
	return 0;
}

int tus_checksum_parse(const char *h, size_t len, unsigned char digest[32], char *err,
		       size_t errlen)
{
	size_t sp = 0;

	while (sp < len && h[sp] != ' ')
		sp++;
	if (sp != 6 || strncasecmp(h, "sha256", 6) != 0) {
		snprintf(err, errlen, "Upload-Checksum: only sha256 is supported");
		return -1;
	}
	if (len <= 7 || text_base64_decode(h + 7, len - 7, digest, 32) != 32) {
		snprintf(err, errlen, "Upload-Checksum: sha256 needs a base64 digest of 32 bytes");
		return -1;
	}
	return 0;
}
