#ifndef CHORUS_ORIGIN_S3_H
#define CHORUS_ORIGIN_S3_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The pure parts of the S3 origin, apart so that the unit tests and the
 * fuzz harness reach them without a network: the spec parser and the
 * mapping of S3 answers to errno values. origin_s3_open (origin.h) is the
 * way in for everything else.
 */

#define S3_BUCKET_MAX 63
#define S3_PREFIX_MAX 512
#define S3_REGION_MAX 63
#define S3_ENDPOINT_MAX 256
#define S3_BASE_MAX (S3_ENDPOINT_MAX + S3_BUCKET_MAX + 64)

/*
 * "s3://BUCKET[/PREFIX][?NAME=VALUE&...]", parsed. Parameters (values may
 * be %-encoded): endpoint=http(s)://HOST[:PORT] (default
 * https://s3.REGION.amazonaws.com), region (default us-east-1),
 * timeout_ms (the most one operation takes, retries included),
 * connect_timeout_ms, attempts (tries per operation) and parallel (puts
 * in flight per batch).
 */
struct s3_spec {
	char bucket[S3_BUCKET_MAX + 1];
	char prefix[S3_PREFIX_MAX + 2]; /* "" or "a/b/": ends with '/' */
	char region[S3_REGION_MAX + 1];
	char endpoint[S3_ENDPOINT_MAX + 1]; /* scheme://host[:port], no '/' */
	bool custom_endpoint;
	/* What an object's URL starts with, up to the prefix: path style
	 * (ENDPOINT/BUCKET/) for custom endpoints and dotted buckets,
	 * virtual-hosted (https://BUCKET.s3.REGION.amazonaws.com/) on AWS. */
	char base[S3_BASE_MAX];
	long timeout_ms;
	long connect_timeout_ms;
	int attempts;
	int parallel;
};

/*
 * Parses spec into *out. Returns 0, or -EINVAL with the reason in err.
 * Pure: no allocation, no environment, no network. Any input is safe.
 */
int origin_s3_spec_parse(const char *spec, struct s3_spec *out, char *err, size_t errlen);

/*
 * Copies the <Code> of an S3 XML error body (at most len bytes, not
 * NUL-terminated) into out: letters, digits and dots only, else "".
 * Returns the code's length.
 */
size_t origin_s3_error_code(const char *body, size_t len, char *out, size_t outlen);

/*
 * What an HTTP answer means for the origin.h contract: 0 for 2xx,
 * -ENOENT for a missing object, -EACCES for refused credentials,
 * -EIO otherwise. *retry says whether another attempt may succeed
 * (5xx, 429, SlowDown, RequestTimeout).
 */
int origin_s3_http_errno(long status, const char *code, bool *retry);

#endif
