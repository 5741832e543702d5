/* libFuzzer: what a stranger sends with an upload: tus's Upload-Metadata
 * and Upload-Checksum headers, base64, and the archive an upload may be
 * (unpacked under small limits). The first byte picks which. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uploads/archive.h"
#include "uploads/tus.h"
#include "util/text.h"

static int count(void *ud, const char *name, const unsigned char *p, size_t n)
{
	size_t *total = ud;

	/* Names handed out are inside the archive, files within the limits. */
	if (!name[0] || name[0] == '/' || strstr(name, "../") || n > 1 << 20)
		abort();
	*total += n;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[256], err[256];
	unsigned char digest[32], out[4096];
	const char *s = (const char *)data + 1;

	if (size < 1)
		return 0;
	size--;
	switch (data[0] % 4) {
	case 0:
		if (tus_metadata_filename(s, size, name, sizeof(name), err, sizeof(err)) == 0) {
			if (!name[0] || strchr(name, '/') || !text_is_utf8(name, strlen(name)))
				abort();
		}
		break;
	case 1:
		(void)tus_checksum_parse(s, size, digest, err, sizeof(err));
		break;
	case 2: {
		int n = text_base64_decode(s, size, out, sizeof(out));
		if (n > (int)sizeof(out))
			abort();
		break;
	}
	default: {
		struct archive_limits lim = {64, 4 << 20, 1 << 20};
		size_t total = 0;
		if (archive_sniff(s, size))
			(void)archive_each(s, size, &lim, count, &total, err, sizeof(err));
		if (total > 4 << 20)
			abort();
		break;
	}
	}
	return 0;
}
