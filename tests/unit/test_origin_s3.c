/* The S3 origin's pure parts: spec parsing and what S3 answers map to. */
#include <errno.h>
#include <stdlib.h>

#include "origin/origin.h"
#include "origin/s3.h"
#include "unit.h"

static int parse(const char *spec, struct s3_spec *s)
{
	char err[256] = "";
	int rc = origin_s3_spec_parse(spec, s, err, sizeof(err));

	if (rc == 0)
		CHECK(err[0] == '\0');
	else
		CHECK(err[0] != '\0');
	return rc;
}

static void test_defaults(void)
{
	struct s3_spec s;

	CHECK(parse("s3://music", &s) == 0);
	CHECK_STR(s.bucket, "music");
	CHECK_STR(s.prefix, "");
	CHECK_STR(s.region, "us-east-1");
	CHECK_STR(s.endpoint, "https://s3.us-east-1.amazonaws.com");
	CHECK_STR(s.base, "https://music.s3.us-east-1.amazonaws.com/");
	CHECK(!s.custom_endpoint);
	CHECK(s.timeout_ms > 0 && s.connect_timeout_ms > 0 && s.attempts >= 1 && s.parallel >= 1);

	/* A dotted bucket stays path style on AWS: its virtual host would
	 * not match the certificate. */
	CHECK(parse("s3://my.music/a?region=eu-west-3", &s) == 0);
	CHECK_STR(s.base, "https://s3.eu-west-3.amazonaws.com/my.music/");
	CHECK_STR(s.prefix, "a/");
}

static void test_custom_endpoint(void)
{
	struct s3_spec s;

	CHECK(parse("s3://chorus-test/lib/v1?endpoint=http://127.0.0.1:9000&region=us-east-1",
		    &s) == 0);
	CHECK_STR(s.bucket, "chorus-test");
	CHECK_STR(s.prefix, "lib/v1/");
	CHECK_STR(s.endpoint, "http://127.0.0.1:9000");
	CHECK_STR(s.base, "http://127.0.0.1:9000/chorus-test/");
	CHECK(s.custom_endpoint);

	/* Trailing slashes, %-encoding, an IPv6 host, the tuning knobs. */
	CHECK(parse("s3://bkt/p//?endpoint=https%3A%2F%2Fminio.example:443/", &s) == 0);
	CHECK_STR(s.prefix, "p/");
	CHECK_STR(s.base, "https://minio.example:443/bkt/");
	CHECK(parse("s3://bkt?endpoint=http://[::1]:9000&timeout_ms=1500&connect_timeout_ms=200"
		    "&attempts=2&parallel=16",
		    &s) == 0);
	CHECK_STR(s.base, "http://[::1]:9000/bkt/");
	CHECK(s.timeout_ms == 1500 && s.connect_timeout_ms == 200 && s.attempts == 2 &&
	      s.parallel == 16);
	CHECK(parse("s3://bkt/?region=ap-south-1", &s) == 0);
	CHECK_STR(s.prefix, "");
	CHECK_STR(s.endpoint, "https://s3.ap-south-1.amazonaws.com");
}

static void test_bad_specs(void)
{
	static const char *const bad[] = {
		"",
		"s3:/bucket",
		"dir:/x",
		"s3://",
		"s3://ab",                                   /* too short */
		"s3://Music",                                /* upper case */
		"s3://-music",                               /* starts with '-' */
		"s3://mu..sic",                              /* ".." */
		"s3://music_lib",                            /* '_' */
		"s3://music/a b",                            /* space in the prefix */
		"s3://music/a/../b",                         /* ".." segment */
		"s3://music/./b",                            /* "." segment */
		"s3://music/a//b",                           /* empty segment */
		"s3://music/a%2fb",                          /* '%' in the prefix */
		"s3://music?",                               /* empty parameter list */
		"s3://music?region",                         /* no value */
		"s3://music?region=",                        /* empty value */
		"s3://music?region=us-east-1&",              /* empty parameter */
		"s3://music?region=US",                      /* upper case region */
		"s3://music?region=a:b",                     /* would break the sigv4 scope */
		"s3://music?regoin=us-east-1",               /* typo */
		"s3://music?region=a&region=b",              /* twice */
		"s3://music?endpoint=ftp://h",               /* scheme */
		"s3://music?endpoint=http://",               /* no host */
		"s3://music?endpoint=http://u:p@h",          /* credentials */
		"s3://music?endpoint=http://h/path",         /* path */
		"s3://music?endpoint=http://h:0",            /* port */
		"s3://music?endpoint=http://h:65536",        /* port */
		"s3://music?endpoint=http://h:",             /* port */
		"s3://music?endpoint=http://[::1",           /* IPv6 */
		"s3://music?endpoint=http://h%00x",          /* NUL */
		"s3://music?endpoint=http://h%2",            /* cut escape */
		"s3://music?timeout_ms=10",                  /* too small */
		"s3://music?timeout_ms=12x",                 /* not a number */
		"s3://music?attempts=0",                     /* too few */
		"s3://music?parallel=1000",                  /* too many */
		"s3://music?connect_timeout_ms=99999999999", /* overflow */
	};
	struct s3_spec s;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (parse(bad[i], &s) != -EINVAL) {
			fprintf(stderr, "  accepted: %s\n", bad[i]);
			unit_failed_checks++;
		}
}

static void test_long_inputs(void)
{
	char spec[4096];
	struct s3_spec s;

	/* A prefix at the limit fits; one byte more does not. */
	memcpy(spec, "s3://music/", 11);
	memset(spec + 11, 'a', S3_PREFIX_MAX);
	spec[11 + S3_PREFIX_MAX] = '\0';
	CHECK(parse(spec, &s) == 0);
	CHECK(strlen(s.prefix) == S3_PREFIX_MAX + 1);
	spec[11 + S3_PREFIX_MAX] = 'a';
	spec[12 + S3_PREFIX_MAX] = '\0';
	CHECK(parse(spec, &s) < 0);

	snprintf(spec, sizeof(spec), "s3://music?endpoint=http://%0300d", 0);
	CHECK(parse(spec, &s) < 0);
	/* No room for the message: still refused, nothing written. */
	CHECK(origin_s3_spec_parse("s3://x", &s, NULL, 0) == -EINVAL);
}

static void test_error_code(void)
{
	static const char body[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				   "<Error><Code>SignatureDoesNotMatch</Code><Message>The request"
				   " signature...</Message></Error>";
	char code[64];

	CHECK(origin_s3_error_code(body, sizeof(body) - 1, code, sizeof(code)) == 21);
	CHECK_STR(code, "SignatureDoesNotMatch");
	/* Cut short, unterminated, odd characters, too long: nothing. */
	CHECK(origin_s3_error_code(body, 60, code, sizeof(code)) == 0);
	CHECK_STR(code, "");
	CHECK(origin_s3_error_code("<Code>NoSuchKey", 15, code, sizeof(code)) == 0);
	CHECK(origin_s3_error_code("<Code>No Such</Code>", 20, code, sizeof(code)) == 0);
	CHECK(origin_s3_error_code("<Code>NoSuchKey</Code>", 22, code, 5) == 0);
	CHECK(origin_s3_error_code("<Code>NoSuchKey</Code>", 22, code, 10) == 9);
	CHECK_STR(code, "NoSuchKey");
	CHECK(origin_s3_error_code(NULL, 0, code, sizeof(code)) == 0);
	CHECK(origin_s3_error_code("", 0, code, sizeof(code)) == 0);
}

static void test_http_errno(void)
{
	bool retry;

	CHECK(origin_s3_http_errno(200, NULL, &retry) == 0 && !retry);
	CHECK(origin_s3_http_errno(204, "", &retry) == 0 && !retry);
	CHECK(origin_s3_http_errno(404, "NoSuchKey", &retry) == -ENOENT && !retry);
	CHECK(origin_s3_http_errno(404, "", &retry) == -ENOENT && !retry); /* HEAD: no body */
	CHECK(origin_s3_http_errno(404, "NoSuchBucket", &retry) == -EIO && !retry);
	CHECK(origin_s3_http_errno(403, "SignatureDoesNotMatch", &retry) == -EACCES && !retry);
	CHECK(origin_s3_http_errno(403, "InvalidAccessKeyId", &retry) == -EACCES && !retry);
	CHECK(origin_s3_http_errno(403, "AccessDenied", &retry) == -EACCES && !retry);
	CHECK(origin_s3_http_errno(403, "", &retry) == -EACCES && !retry);
	CHECK(origin_s3_http_errno(400, "ExpiredToken", &retry) == -EACCES && !retry);
	CHECK(origin_s3_http_errno(400, "AuthorizationHeaderMalformed", &retry) == -EACCES);
	CHECK(origin_s3_http_errno(400, "RequestTimeout", &retry) == -EIO && retry);
	CHECK(origin_s3_http_errno(400, "InvalidArgument", &retry) == -EIO && !retry);
	CHECK(origin_s3_http_errno(503, "SlowDown", &retry) == -EIO && retry);
	CHECK(origin_s3_http_errno(500, "InternalError", &retry) == -EIO && retry);
	CHECK(origin_s3_http_errno(502, "", &retry) == -EIO && retry);
	CHECK(origin_s3_http_errno(429, "", &retry) == -EIO && retry);
	CHECK(origin_s3_http_errno(301, "PermanentRedirect", &retry) == -EIO && !retry);
}

static void test_open_needs_credentials(void)
{
	origin_t *o = NULL;
	char err[256] = "";

	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	CHECK(origin_open("s3://music?endpoint=http://127.0.0.1:1", "/nonexistent", &o, err,
			  sizeof(err)) == -EACCES);
	CHECK(strstr(err, "AWS_ACCESS_KEY_ID") != NULL);
	CHECK(o == NULL);

	/* Opening makes no request: a closed port is fine until used. */
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
	CHECK(origin_open("s3://music/p?endpoint=http://127.0.0.1:1&timeout_ms=500&attempts=2",
			  "/nonexistent", &o, err, sizeof(err)) == 0);
	if (o) {
		char *data = NULL;
		size_t len = 0;
		struct origin_batch b = {0};

		CHECK(strstr(o->desc, "s3://music/p") != NULL);
		CHECK(origin_get(o, "c/ab/abcd/00000000", &data, &len) == -EIO);
		CHECK(origin_get(o, "../escape", &data, &len) == -EINVAL);
		CHECK(data == NULL);
		/* A batch that cannot reach the server fails at the latest at
		 * its flush, and frees its transfers. */
		CHECK(origin_put_batch(o, &b, "c/ab/abcd/00000000", "x", 1) == 0);
		CHECK(origin_flush(o, &b) == -EIO);
		CHECK(b.impl == NULL);
		origin_close(o);
	}

	CHECK(origin_open("ftp://x", "/nonexistent", &o, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "dir:PATH") && strstr(err, "s3://BUCKET"));
	CHECK(origin_open("s3://music?endpoint=http://user:pw@h", "/nonexistent", &o, err,
			  sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "pw") == NULL); /* not echoed */
}

int main(void)
{
	TEST_RUN(test_defaults);
	TEST_RUN(test_custom_endpoint);
	TEST_RUN(test_bad_specs);
	TEST_RUN(test_long_inputs);
	TEST_RUN(test_error_code);
	TEST_RUN(test_http_errno);
	TEST_RUN(test_open_needs_credentials);
	TEST_EXIT();
}
