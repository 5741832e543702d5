/* libFuzzer: the S3 origin's spec parser and its reading of S3 error
 * bodies. Whatever a spec holds, an accepted one must come out as a
 * well-formed bucket, prefix and base URL that are safe to put in a
 * request line unencoded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "origin/s3.h"

static void check_url_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || *s == '?' ||
		    *s == '#' || *s == '@' || *s == '%' || *s == '\\')
			abort();
}

/* No "." or ".." segment, which URL normalisation would rewrite. */
static void check_segments(const char *prefix)
{
	const char *p = prefix;

	while (*p) {
		size_t n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			abort();
		p += n + (p[n] == '/');
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s3_spec s;
	char err[256], code[64];
	char *spec;
	size_t n;

	if (size > 4096)
		return 0;
	spec = malloc(size + 1);
	memcpy(spec, data, size);
	spec[size] = '\0';
	if (origin_s3_spec_parse(spec, &s, err, sizeof(err)) == 0) {
		n = strlen(s.bucket);
		if (n < 3 || n > S3_BUCKET_MAX || strlen(s.region) == 0)
			abort();
		n = strlen(s.prefix);
		if (n && (s.prefix[n - 1] != '/' || s.prefix[0] == '/' || strstr(s.prefix, "//")))
			abort();
		check_segments(s.prefix);
		if (strncmp(s.base, "http://", 7) != 0 && strncmp(s.base, "https://", 8) != 0)
			abort();
		if (s.base[strlen(s.base) - 1] != '/' || !strstr(s.base, s.bucket))
			abort();
		check_url_safe(s.base);
		check_url_safe(s.prefix);
		if (s.timeout_ms < 100 || s.attempts < 1 || s.parallel < 1 || s.parallel > 64)
			abort();
	} else if (!memchr(err, '\0', sizeof(err)) || !err[0]) {
		abort();
	}
	n = origin_s3_error_code((const char *)data, size, code, sizeof(code));
	if (n != strlen(code) || n >= sizeof(code))
		abort();
	free(spec);
	return 0;
}
