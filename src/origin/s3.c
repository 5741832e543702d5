/*
 * The S3 origin: objects in a bucket of Amazon S3 or any server speaking
 * its protocol, one object per key under an optional prefix.
 *
 * libcurl does the HTTP and the SigV4 signing (CURLOPT_AWS_SIGV4). We add
 * the x-amz-content-sha256 header ourselves: S3 refuses a request without
 * it, and libcurl takes the payload hash to sign from it. A PUT carries
 * the SHA-256 of its body, so the server also checks the bytes it stored.
 *
 * Blocking operations (get, size, remove, put) take an easy handle from
 * a pool under the origin's lock and give it back after, so connections
 * are reused across calls and threads without two threads ever sharing a
 * handle. A batch (ingest writing one track's chunks) owns a multi handle
 * and keeps up to `parallel` puts in flight: put_batch copies the body
 * (the caller reuses its buffer), starts the transfer and only waits when
 * the batch is full; flush waits for all of them. Multi handles are pooled
 * too, so the connections they hold outlive one track.
 *
 * Every operation has a time budget (timeout_ms, retries included), a
 * connect timeout and a low-speed limit, so a stalled server costs a
 * caller seconds, never forever. Connection errors, timeouts, 5xx, 429 and
 * SlowDown are retried with exponential backoff and jitter; 4xx answers
 * are final. A refused signature is an authentication failure, logged
 * once (until a request succeeds again) naming the endpoint and the S3
 * error code, and returned as -EACCES: never confused with a missing
 * object.
 */
#include "origin/s3.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "origin/origin.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/text.h"
#include "util/xalloc.h"

#define DEFAULT_REGION "us-east-1"
#define DEFAULT_TIMEOUT_MS 15000
#define DEFAULT_CONNECT_TIMEOUT_MS 1000
#define DEFAULT_ATTEMPTS 4
#define DEFAULT_PARALLEL 8
#define BACKOFF_BASE_MS 100
#define BACKOFF_MAX_MS 2000
#define LOW_SPEED_BYTES 1024 /* slower than this for the stall time: give up */
#define GET_MAX ((size_t)1 << 30)
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ------------------------------------------------------------------ spec */

static int spec_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int spec_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* S3's rules for new buckets: 3-63 of [a-z0-9.-], a letter or digit at
 * both ends, no "..". They also keep the name safe in a URL and a host. */
static bool bucket_ok(const char *b, size_t n)
{
	if (n < 3 || n > S3_BUCKET_MAX || !is_lower_alnum(b[0]) || !is_lower_alnum(b[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_lower_alnum(b[i]) && b[i] != '.' && b[i] != '-')
			return false;
		if (b[i] == '.' && b[i + 1] == '.')
			return false;
	}
	return true;
}

/*
 * A prefix is used verbatim in the URL and in the signed canonical path,
 * so it is held to characters that need no encoding, and to segments that
 * no URL normalisation rewrites ("", ".", "..").
 */
static int prefix_parse(const char *p, size_t n, struct s3_spec *out, char *err, size_t errlen)
{
	size_t seg = 0;

	while (n && p[n - 1] == '/')
		n--;
	if (n > S3_PREFIX_MAX)
		return spec_fail(err, errlen, "s3 prefix longer than %d bytes", S3_PREFIX_MAX);
	for (size_t i = 0; i <= n; i++) {
		if (i == n || p[i] == '/') {
			size_t len = i - seg;
			if (n && (len == 0 || (len == 1 && p[seg] == '.') ||
				  (len == 2 && p[seg] == '.' && p[seg + 1] == '.')))
				return spec_fail(err, errlen,
						 "s3 prefix has an empty, \".\" or \"..\" segment");
			seg = i + 1;
			continue;
		}
		if (!is_alnum(p[i]) && !strchr("-._~", p[i]))
			return spec_fail(err, errlen,
					 "s3 prefix may only hold letters, digits,"
					 " '/' and \"-._~\"");
	}
	memcpy(out->prefix, p, n);
	if (n)
		out->prefix[n++] = '/';
	out->prefix[n] = '\0';
	return 0;
}

/* %-decodes [p, p + n) into out (outlen bytes); printable ASCII only. */
static int value_decode(const char *p, size_t n, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)p[i];

		if (c == '%') {
			int hi = i + 2 < n ? text_hexval(p[i + 1]) : -1;
			int lo = i + 2 < n ? text_hexval(p[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return -1;
			c = hi * 16 + lo;
			i += 2;
		}
		if (c <= 0x20 || c >= 0x7f || o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return o ? 0 : -1;
}

static int number_parse(const char *v, long min, long max, long *out)
{
	long n = 0;

	if (!*v || strlen(v) > 9)
		return -1;
	for (; *v; v++) {
		if (*v < '0' || *v > '9')
			return -1;
		n = n * 10 + (*v - '0');
	}
	if (n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

/* http(s)://HOST[:PORT][/]: no user, path, query or fragment, which
 * would be credentials in a log line or a base the keys do not go under. */
static int endpoint_parse(const char *v, struct s3_spec *out, char *err, size_t errlen)
{
	const char *p, *host;
	size_t scheme;
	long port;

	if (strncasecmp(v, "http://", 7) == 0)
		scheme = 7;
	else if (strncasecmp(v, "https://", 8) == 0)
		scheme = 8;
	else
		return spec_fail(err, errlen, "s3 endpoint must start with http:// or https://");
	host = p = v + scheme;
	if (*p == '[') {
		for (p++; *p && *p != ']'; p++)
			if (text_hexval(*p) < 0 && *p != ':' && *p != '.')
				break;
		if (*p != ']' || p == host + 1)
			return spec_fail(err, errlen, "s3 endpoint has a malformed IPv6 address");
		p++;
	} else {
		for (; *p && *p != ':' && *p != '/'; p++)
			if (!is_alnum(*p) && *p != '.' && *p != '-')
				return spec_fail(err, errlen,
						 "s3 endpoint must be http(s)://HOST[:PORT],"
						 " with no user, path or query");
		if (p == host || *host == '.' || *host == '-')
			return spec_fail(err, errlen, "s3 endpoint has no valid host");
	}
	if (*p == ':') {
		char digits[8];
		size_t n = strcspn(p + 1, "/");
		if (n == 0 || n >= sizeof(digits))
			return spec_fail(err, errlen, "s3 endpoint has a bad port");
		memcpy(digits, p + 1, n);
		digits[n] = '\0';
		if (number_parse(digits, 1, 65535, &port) < 0)
			return spec_fail(err, errlen, "s3 endpoint has a bad port");
		p += 1 + n;
	}
	if (*p == '/')
		p++;
	if (*p)
		return spec_fail(err, errlen,
				 "s3 endpoint must be http(s)://HOST[:PORT], with no user, path or"
				 " query");
	if ((size_t)(p - v) > S3_ENDPOINT_MAX)
		return spec_fail(err, errlen, "s3 endpoint longer than %d bytes", S3_ENDPOINT_MAX);
	snprintf(out->endpoint, sizeof(out->endpoint), "%s%.*s",
		 scheme == 7 ? "http://" : "https://", (int)(p - host), host);
	/* No trailing slash: the base adds its own. */
	if (out->endpoint[strlen(out->endpoint) - 1] == '/')
		out->endpoint[strlen(out->endpoint) - 1] = '\0';
	out->custom_endpoint = true;
	return 0;
}

static int region_parse(const char *v, struct s3_spec *out, char *err, size_t errlen)
{
	size_t n = strlen(v);

	if (n > S3_REGION_MAX)
		return spec_fail(err, errlen, "s3 region longer than %d bytes", S3_REGION_MAX);
	for (size_t i = 0; i < n; i++)
		if (!is_lower_alnum(v[i]) && v[i] != '-')
			return spec_fail(err, errlen,
					 "s3 region may only hold lower-case letters, digits and"
					 " '-'");
	memcpy(out->region, v, n + 1);
	return 0;
}

enum { P_ENDPOINT, P_REGION, P_TIMEOUT, P_CONNECT, P_ATTEMPTS, P_PARALLEL, P_COUNT };
static const char *const param_names[P_COUNT] = {
	"endpoint", "region", "timeout_ms", "connect_timeout_ms", "attempts", "parallel",
};

static int param_parse(const char *p, size_t n, struct s3_spec *out, unsigned *seen, char *err,
		       size_t errlen)
{
	const char *eq = memchr(p, '=', n);
	char value[S3_ENDPOINT_MAX + 1];
	size_t nlen;
	long num;
	int which = -1;

	if (!eq)
		return spec_fail(err, errlen, "s3 parameter without a value (NAME=VALUE)");
	nlen = (size_t)(eq - p);
	for (int i = 0; i < P_COUNT; i++)
		if (strlen(param_names[i]) == nlen && memcmp(param_names[i], p, nlen) == 0)
			which = i;
	if (which < 0)
		return spec_fail(err, errlen,
				 "unknown s3 parameter \"%.*s\" (known: endpoint, region,"
				 " timeout_ms, connect_timeout_ms, attempts, parallel)",
				 (int)(nlen < 32 ? nlen : 32), p);
	if (*seen & (1u << which))
		return spec_fail(err, errlen, "s3 parameter %s given twice", param_names[which]);
	*seen |= 1u << which;
	if (value_decode(eq + 1, n - nlen - 1, value, sizeof(value)) < 0)
		return spec_fail(err, errlen,
				 "s3 parameter %s has an empty, too long or malformed"
				 " value",
				 param_names[which]);
	switch (which) {
	case P_ENDPOINT:
		return endpoint_parse(value, out, err, errlen);
	case P_REGION:
		return region_parse(value, out, err, errlen);
	case P_TIMEOUT:
		if (number_parse(value, 100, 3600000, &num) < 0)
			return spec_fail(err, errlen, "s3 timeout_ms must be 100 to 3600000");
		out->timeout_ms = num;
		return 0;
	case P_CONNECT:
		if (number_parse(value, 10, 600000, &num) < 0)
			return spec_fail(err, errlen, "s3 connect_timeout_ms must be 10 to 600000");
		out->connect_timeout_ms = num;
		return 0;
	case P_ATTEMPTS:
		if (number_parse(value, 1, 10, &num) < 0)
			return spec_fail(err, errlen, "s3 attempts must be 1 to 10");
		out->attempts = (int)num;
		return 0;
	default:
		if (number_parse(value, 1, 64, &num) < 0)
			return spec_fail(err, errlen, "s3 parallel must be 1 to 64");
		out->parallel = (int)num;
		return 0;
	}
}

/* Path style for custom endpoints (most S3 servers expect it) and for
 * dotted buckets (their virtual host would not match AWS's certificate). */
static void base_make(struct s3_spec *s)
{
	if (!s->custom_endpoint)
		snprintf(s->endpoint, sizeof(s->endpoint), "https://s3.%s.amazonaws.com",
			 s->region);
	if (s->custom_endpoint || strchr(s->bucket, '.'))
		snprintf(s->base, sizeof(s->base), "%s/%s/", s->endpoint, s->bucket);
	else
		snprintf(s->base, sizeof(s->base), "https://%s.s3.%s.amazonaws.com/", s->bucket,
			 s->region);
}

int origin_s3_spec_parse(const char *spec, struct s3_spec *out, char *err, size_t errlen)
{
	const char *p, *q, *end;
	unsigned seen = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(out->region, sizeof(out->region), "%s", DEFAULT_REGION);
	out->timeout_ms = DEFAULT_TIMEOUT_MS;
	out->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
	out->attempts = DEFAULT_ATTEMPTS;
	out->parallel = DEFAULT_PARALLEL;
	if (strncmp(spec, "s3://", 5) != 0)
		return spec_fail(err, errlen, "an s3 origin starts with s3://");
	p = spec + 5;
	q = p + strcspn(p, "/?");
	if (!bucket_ok(p, (size_t)(q - p)))
		return spec_fail(err, errlen,
				 "bad s3 bucket name (3-63 lower-case letters, digits, '.' and"
				 " '-')");
	memcpy(out->bucket, p, (size_t)(q - p));
	out->bucket[q - p] = '\0';
	if (*q == '/') {
		p = q + 1;
		q = p + strcspn(p, "?");
		rc = prefix_parse(p, (size_t)(q - p), out, err, errlen);
		if (rc < 0)
			return rc;
	}
	if (*q == '?') {
		for (p = q + 1;; p = end + 1) {
			end = p + strcspn(p, "&");
			if (end == p)
				return spec_fail(err, errlen, "empty s3 parameter");
			rc = param_parse(p, (size_t)(end - p), out, &seen, err, errlen);
			if (rc < 0)
				return rc;
			if (!*end)
				break;
		}
	}
	/* The region goes into the SigV4 scope and a default host name. */
	if (!out->region[0])
		return spec_fail(err, errlen, "empty s3 region");
	base_make(out);
	return 0;
}

/* ------------------------------------------------------------------ answers */

size_t origin_s3_error_code(const char *body, size_t len, char *out, size_t outlen)
{
	static const char open[] = "<Code>", close[] = "</Code>";
	const char *p;
	size_t rest, n = 0;

	if (!outlen)
		return 0;
	out[0] = '\0';
	p = body ? memmem(body, len, open, sizeof(open) - 1) : NULL;
	if (!p)
		return 0;
	p += sizeof(open) - 1;
	rest = len - (size_t)(p - body);
	while (n < rest && (is_alnum(p[n]) || p[n] == '.'))
		n++;
	if (n == 0 || n >= outlen || rest - n < sizeof(close) - 1 ||
	    memcmp(p + n, close, sizeof(close) - 1) != 0)
		return 0;
	memcpy(out, p, n);
	out[n] = '\0';
	return n;
}

static bool code_is(const char *code, const char *want)
{
	return code && strcmp(code, want) == 0;
}

int origin_s3_http_errno(long status, const char *code, bool *retry)
{
	static const char *const auth_codes[] = {
		"AccessDenied",          "SignatureDoesNotMatch",
		"InvalidAccessKeyId",    "ExpiredToken",
		"InvalidToken",          "TokenRefreshRequired",
		"InvalidSecurity",       "AuthorizationHeaderMalformed",
		"RequestTimeTooSkewed",  "AccountProblem",
		"MissingSecurityHeader",
	};

	*retry = false;
	if (status >= 200 && status < 300)
		return 0;
	if (code_is(code, "SlowDown") || code_is(code, "RequestTimeout") ||
	    code_is(code, "InternalError") || code_is(code, "ServiceUnavailable") ||
	    status == 429 || status >= 500) {
		*retry = true;
		return -EIO;
	}
	if (status == 401 || status == 403)
		return -EACCES;
	for (size_t i = 0; i < sizeof(auth_codes) / sizeof(*auth_codes); i++)
		if (code_is(code, auth_codes[i]))
			return -EACCES;
	/* A missing bucket is a misconfiguration, not a missing object. */
	if (status == 404)
		return code_is(code, "NoSuchBucket") ? -EIO : -ENOENT;
	return -EIO;
}

/* ------------------------------------------------------------------ origin */

struct s3_origin {
	origin_t base;
	struct s3_spec spec;
	char *key_id, *secret, *token;
	char sigv4[96];          /* "aws:amz:REGION:s3" */
	atomic_bool auth_failed; /* logged; cleared by the next success */

	pthread_mutex_t lock; /* the pools */
	CURL **easy;
	size_t neasy, capeasy;
	CURLM **multi;
	size_t nmulti, capmulti;
};

enum s3_method { S3_GET, S3_PUT, S3_HEAD, S3_DELETE };
static const char *const method_names[] = {"GET", "PUT", "HEAD", "DELETE"};

/* One operation on one object, across its attempts. */
struct s3_req {
	struct s3_req *next; /* in a batch's lists */
	struct s3_origin *o;
	CURL *h;
	struct curl_slist *hdrs;
	enum s3_method method;
	char key[ORIGIN_KEY_MAX];
	char url[S3_BASE_MAX + S3_PREFIX_MAX + ORIGIN_KEY_MAX + 4];
	char sha[65];              /* of the body, hex */
	const unsigned char *body; /* PUT */
	size_t body_len, body_off;
	unsigned char *owned; /* a batch's copy of the body */
	char *data;           /* GET: the object */
	size_t len, cap;
	char ebody[1024]; /* the start of an error answer */
	size_t elen;
	char code[64]; /* S3's error code, if any */
	char cerr[CURL_ERROR_SIZE];
	long status;
	int attempt;
	uint64_t started_ms, retry_at_ms;
};

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Exponential backoff with "equal jitter": half fixed, half random, so
 * clients that failed together do not all come back together. */
static long backoff_ms(int attempt)
{
	static _Thread_local uint64_t state;
	long d = BACKOFF_BASE_MS;

	for (int i = 1; i < attempt && d < BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > BACKOFF_MAX_MS)
		d = BACKOFF_MAX_MS;
	if (!state)
		state = mono_ms() ^ (uint64_t)(uintptr_t)&state ^ 0x9e3779b97f4a7c15ULL;
	state ^= state << 13; /* xorshift64: jitter needs no quality */
	state ^= state >> 7;
	state ^= state << 17;
	return d / 2 + (long)(state % (uint64_t)(d / 2 + 1));
}

static CURL *easy_take(struct s3_origin *o)
{
	CURL *h = NULL;

	pthread_mutex_lock(&o->lock);
	if (o->neasy)
		h = o->easy[--o->neasy];
	pthread_mutex_unlock(&o->lock);
	if (!h && !(h = curl_easy_init()))
		die("s3: cannot create a curl handle");
	return h;
}

static void easy_give(struct s3_origin *o, CURL *h)
{
	pthread_mutex_lock(&o->lock);
	if (o->neasy == o->capeasy) {
		o->capeasy = o->capeasy ? o->capeasy * 2 : 8;
		o->easy = xrealloc(o->easy, o->capeasy * sizeof(*o->easy));
	}
	o->easy[o->neasy++] = h;
	pthread_mutex_unlock(&o->lock);
}

static CURLM *multi_take(struct s3_origin *o)
{
	CURLM *m = NULL;

	pthread_mutex_lock(&o->lock);
	if (o->nmulti)
		m = o->multi[--o->nmulti];
	pthread_mutex_unlock(&o->lock);
	if (!m && !(m = curl_multi_init()))
		die("s3: cannot create a curl multi handle");
	return m;
}

static void multi_give(struct s3_origin *o, CURLM *m)
{
	pthread_mutex_lock(&o->lock);
	if (o->nmulti == o->capmulti) {
		o->capmulti = o->capmulti ? o->capmulti * 2 : 4;
		o->multi = xrealloc(o->multi, o->capmulti * sizeof(*o->multi));
	}
	o->multi[o->nmulti++] = m;
	pthread_mutex_unlock(&o->lock);
}

static struct curl_slist *slist_add(struct curl_slist *l, const char *s)
{
	struct curl_slist *n = curl_slist_append(l, s);

	if (!n)
		die("s3: out of memory");
	return n;
}

/* Keys come from chorus; one that would need encoding, or that URL
 * normalisation could rewrite, is refused all the same. */
static bool key_ok(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n >= ORIGIN_KEY_MAX || key[0] == '/' || strstr(key, "..") ||
	    strstr(key, "//") || strstr(key, "./"))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(key[i]) && !strchr("-._/", key[i]))
			return false;
	return true;
}

static int req_init(struct s3_origin *o, struct s3_req *r, enum s3_method m, const char *key)
{
	memset(r, 0, sizeof(*r));
	if (!key_ok(key))
		return -EINVAL;
	r->o = o;
	r->method = m;
	snprintf(r->key, sizeof(r->key), "%s", key);
	snprintf(r->url, sizeof(r->url), "%s%s%s", o->spec.base, o->spec.prefix, key);
	memcpy(r->sha, EMPTY_SHA256, sizeof(r->sha));
	return 0;
}

static void req_body(struct s3_req *r, const void *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	r->body = data;
	r->body_len = len;
	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		die("s3: SHA-256 failed");
	text_hex(md, 32, r->sha);
}

/* Ends the request: its handle goes back to the pool. */
static void req_release(struct s3_req *r)
{
	if (r->h)
		easy_give(r->o, r->h);
	r->h = NULL;
	curl_slist_free_all(r->hdrs);
	r->hdrs = NULL;
	free(r->owned);
	r->owned = NULL;
}

/* Room for need more bytes of the object (need <= GET_MAX - r->len). */
static void data_reserve(struct s3_req *r, size_t need)
{
	curl_off_t cl = -1;
	size_t want;

	if (r->len + need <= r->cap)
		return;
	want = r->cap ? r->cap * 2 : 64 * 1024;
	/* The announced length, the first time, saves the doublings. */
	if (!r->cap && curl_easy_getinfo(r->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) != CURLE_OK)
		cl = -1;
	if (cl > 0 && (uint64_t)cl <= GET_MAX)
		want = (size_t)cl;
	while (want < r->len + need)
		want *= 2;
	if (want > GET_MAX)
		want = GET_MAX;
	r->data = xrealloc(r->data, want);
	r->cap = want;
}

/* The body of a 2xx answer to a GET is the object; of an error, the XML
 * that names it, of which only the start is kept. */
static size_t on_write(char *p, size_t size, size_t n, void *arg)
{
	struct s3_req *r = arg;
	size_t len = size * n;
	long status = 0;

	curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status >= 300) {
		size_t room = sizeof(r->ebody) - r->elen;
		memcpy(r->ebody + r->elen, p, len < room ? len : room);
		r->elen += len < room ? len : room;
		return len;
	}
	if (r->method != S3_GET)
		return len;
	if (len > GET_MAX - r->len)
		return 0; /* CURLE_WRITE_ERROR: no object is that large */
	data_reserve(r, len);
	memcpy(r->data + r->len, p, len);
	r->len += len;
	return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
	struct s3_req *r = arg;
	size_t len = size * n, left = r->body_len - r->body_off;

	if (len > left)
		len = left;
	memcpy(buf, r->body + r->body_off, len);
	r->body_off += len;
	return len;
}

/* libcurl rewinds the body when it must send it again. */
static int on_seek(void *arg, curl_off_t off, int whence)
{
	struct s3_req *r = arg;

	if (whence != SEEK_SET || off < 0 || (uint64_t)off > r->body_len)
		return CURL_SEEKFUNC_FAIL;
	r->body_off = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

/* Readies r->h for the next attempt; false when the time budget is spent. */
static bool req_setup(struct s3_req *r)
{
	struct s3_origin *o = r->o;
	const struct s3_spec *s = &o->spec;
	uint64_t elapsed = mono_ms() - r->started_ms;
	long left = s->timeout_ms - (long)elapsed;
	long stall_s = s->timeout_ms / 3000;
	char hdr[128 + 4096];
	CURL *h = r->h;

	if (left <= 0)
		return false;
	if (stall_s < 1)
		stall_s = 1;
	if (stall_s > 10)
		stall_s = 10;
	r->status = 0;
	r->elen = 0;
	r->len = 0;
	r->body_off = 0;
	r->code[0] = '\0';
	r->cerr[0] = '\0';
	curl_slist_free_all(r->hdrs);
	snprintf(hdr, sizeof(hdr), "x-amz-content-sha256: %s", r->sha);
	r->hdrs = slist_add(NULL, hdr);
	if (o->token) {
		snprintf(hdr, sizeof(hdr), "x-amz-security-token: %s", o->token);
		r->hdrs = slist_add(r->hdrs, hdr);
	}

	/* Reset keeps the handle's live connections. */
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, r->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM timeouts */
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 s->connect_timeout_ms < left ? s->connect_timeout_ms : left);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, left);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, (long)LOW_SPEED_BYTES);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, stall_s);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, o->sigv4);
	curl_easy_setopt(h, CURLOPT_USERNAME, o->key_id);
	curl_easy_setopt(h, CURLOPT_PASSWORD, o->secret);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->cerr);
	curl_easy_setopt(h, CURLOPT_PRIVATE, r);
	switch (r->method) {
	case S3_GET:
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		break;
	case S3_HEAD:
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
		break;
	case S3_DELETE:
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
		break;
	case S3_PUT:
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, r);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, r);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
		break;
	}
	return true;
}

/*
 * What an attempt came to: 0 or -errno, whether to try again, and a reason
 * for the log in why.
 */
static int req_outcome(struct s3_req *r, CURLcode cc, bool *retry, char *why, size_t whylen)
{
	int rc;

	*retry = false;
	if (cc != CURLE_OK) {
		switch (cc) {
		case CURLE_OPERATION_TIMEDOUT:
			*retry = true;
			rc = -ETIMEDOUT;
			break;
		case CURLE_COULDNT_CONNECT:
			/* Refused: the endpoint is down, not slow. A read has a
			 * listener waiting, and peers or a 503 serve it better
			 * than a wait: one more try only. Writes keep trying. */
			*retry = r->method != S3_GET || r->attempt < 2;
			rc = -EIO;
			break;
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
			*retry = true;
			rc = -EIO;
			break;
		default:
			rc = -EIO;
		}
		snprintf(why, whylen, "%s", r->cerr[0] ? r->cerr : curl_easy_strerror(cc));
		if (cc == CURLE_WRITE_ERROR)
			snprintf(why, whylen, "object larger than %zu bytes", GET_MAX);
		return rc;
	}
	curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &r->status);
	origin_s3_error_code(r->ebody, r->elen, r->code, sizeof(r->code));
	rc = origin_s3_http_errno(r->status, r->code, retry);
	/* S3 answers 204 for a missing key; others may say 404. */
	if (r->method == S3_DELETE && rc == -ENOENT)
		rc = 0;
	snprintf(why, whylen, "HTTP %ld%s%s", r->status, r->code[0] ? " " : "", r->code);
	return rc;
}

/* Whether the failed attempt r->attempt leaves room for another. */
static bool may_retry(const struct s3_req *r, long delay)
{
	const struct s3_spec *s = &r->o->spec;

	return r->attempt < s->attempts &&
	       (long)(mono_ms() - r->started_ms) + delay < s->timeout_ms;
}

/* One log line per operation, never per attempt; none for -ENOENT, which
 * callers expect (a size probe of a chunk not yet written). */
static void req_log(struct s3_req *r, int rc, const char *why)
{
	struct s3_origin *o = r->o;

	if (rc == 0) {
		if (atomic_load_explicit(&o->auth_failed, memory_order_relaxed))
			atomic_store(&o->auth_failed, false);
		return;
	}
	if (rc == -ENOENT)
		return;
	if (rc == -EACCES) {
		if (!atomic_exchange(&o->auth_failed, true))
			log_error("s3: authentication failed at %s (bucket %s): %s for access key"
				  " %s; check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and"
				  " AWS_SESSION_TOKEN",
				  o->spec.endpoint, o->spec.bucket, why, o->key_id);
		return;
	}
	log_warn("s3: %s %s%s at %s failed after %d attempt%s: %s", method_names[r->method],
		 o->spec.prefix, r->key, o->spec.endpoint, r->attempt, r->attempt == 1 ? "" : "s",
		 why);
}

/* A blocking operation with its retries. The handle stays with r (for
 * getinfo) until req_release. */
static int req_run(struct s3_req *r)
{
	char why[CURL_ERROR_SIZE + 64] = "";
	bool retry;
	long delay;
	int rc = -ETIMEDOUT;

	r->h = easy_take(r->o);
	r->started_ms = mono_ms();
	for (;;) {
		r->attempt++;
		if (!req_setup(r))
			break;
		rc = req_outcome(r, curl_easy_perform(r->h), &retry, why, sizeof(why));
		if (rc == 0 || !retry)
			break;
		delay = backoff_ms(r->attempt);
		if (!may_retry(r, delay))
			break;
		sleep_ms(delay);
	}
	req_log(r, rc, why);
	return rc;
}

static int s3_put(origin_t *base, const char *key, const void *data, size_t len)
{
	struct s3_req r;
	int rc = req_init((struct s3_origin *)base, &r, S3_PUT, key);

	if (rc < 0)
		return rc;
	req_body(&r, data, len);
	rc = req_run(&r);
	req_release(&r);
	return rc;
}

static int s3_get(origin_t *base, const char *key, char **data, size_t *len)
{
	struct s3_req r;
	int rc = req_init((struct s3_origin *)base, &r, S3_GET, key);

	if (rc < 0)
		return rc;
	rc = req_run(&r);
	req_release(&r);
	if (rc < 0) {
		free(r.data);
		return rc;
	}
	*data = r.data ? r.data : xmalloc(1);
	*len = r.len;
	return 0;
}

static int s3_size(origin_t *base, const char *key, uint64_t *len)
{
	struct s3_req r;
	curl_off_t cl = -1;
	int rc = req_init((struct s3_origin *)base, &r, S3_HEAD, key);

	if (rc < 0)
		return rc;
	rc = req_run(&r);
	if (rc == 0 && curl_easy_getinfo(r.h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) != CURLE_OK)
		cl = -1;
	if (rc == 0 && cl < 0) {
		log_warn("s3: HEAD %s%s at %s: no Content-Length", r.o->spec.prefix, key,
			 r.o->spec.endpoint);
		rc = -EIO;
	}
	req_release(&r);
	if (rc == 0)
		*len = (uint64_t)cl;
	return rc;
}

static int s3_remove(origin_t *base, const char *key)
{
	struct s3_req r;
	int rc = req_init((struct s3_origin *)base, &r, S3_DELETE, key);

	if (rc < 0)
		return rc;
	rc = req_run(&r);
	req_release(&r);
	return rc;
}

/* ------------------------------------------------------------------ batches */

struct s3_batch {
	struct s3_origin *o;
	CURLM *multi;
	struct s3_req *running; /* added to the multi */
	struct s3_req *waiting; /* failed, to be retried at retry_at_ms */
	size_t nrunning, nwaiting;
	int rc; /* the first final failure */
};

static void batch_unlink(struct s3_req **list, struct s3_req *r)
{
	while (*list != r)
		list = &(*list)->next;
	*list = r->next;
	r->next = NULL;
}

static void batch_start(struct s3_batch *sb, struct s3_req *r)
{
	r->attempt++;
	if (!r->h)
		r->h = easy_take(sb->o);
	if (!req_setup(r)) {
		/* Out of time before this attempt: it fails as a timeout. */
		req_log(r, -ETIMEDOUT, "out of time before a retry");
		if (!sb->rc)
			sb->rc = -ETIMEDOUT;
		req_release(r);
		free(r);
		return;
	}
	if (curl_multi_add_handle(sb->multi, r->h) != CURLM_OK)
		die("s3: cannot add a transfer");
	r->next = sb->running;
	sb->running = r;
	sb->nrunning++;
}

static void batch_done(struct s3_batch *sb, struct s3_req *r, CURLcode cc)
{
	char why[CURL_ERROR_SIZE + 64];
	bool retry;
	long delay;
	int rc = req_outcome(r, cc, &retry, why, sizeof(why));

	if (rc < 0 && retry && sb->rc == 0) {
		delay = backoff_ms(r->attempt);
		if (may_retry(r, delay)) {
			r->retry_at_ms = mono_ms() + (uint64_t)delay;
			r->next = sb->waiting;
			sb->waiting = r;
			sb->nwaiting++;
			return;
		}
	}
	req_log(r, rc, why);
	if (rc < 0 && !sb->rc)
		sb->rc = rc;
	req_release(r);
	free(r);
}

/* Moves the transfers on: restarts due retries, reaps finished transfers,
 * and when none finished waits (at most until the next retry is due). */
static void batch_step(struct s3_batch *sb)
{
	uint64_t now = mono_ms(), next = now + 1000;
	struct s3_req **pp = &sb->waiting, *r;
	struct CURLMsg *msg;
	bool reaped = false;
	int running, left;

	while ((r = *pp)) {
		if (r->retry_at_ms <= now) {
			*pp = r->next;
			sb->nwaiting--;
			batch_start(sb, r);
			continue;
		}
		if (r->retry_at_ms < next)
			next = r->retry_at_ms;
		pp = &r->next;
	}
	curl_multi_perform(sb->multi, &running);
	while ((msg = curl_multi_info_read(sb->multi, &left))) {
		CURL *h = msg->easy_handle;
		CURLcode cc = msg->data.result;
		char *priv = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(h, CURLINFO_PRIVATE, &priv);
		r = (struct s3_req *)(void *)priv;
		curl_multi_remove_handle(sb->multi, h);
		batch_unlink(&sb->running, r);
		sb->nrunning--;
		batch_done(sb, r, cc);
		reaped = true;
	}
	if (!reaped && (sb->nrunning || sb->nwaiting))
		curl_multi_poll(sb->multi, NULL, 0, (int)(next > now ? next - now : 0), NULL);
}

static void batch_free(void *impl)
{
	struct s3_batch *sb = impl;
	struct s3_req *r;

	while ((r = sb->running)) {
		sb->running = r->next;
		curl_multi_remove_handle(sb->multi, r->h);
		req_release(r);
		free(r);
	}
	while ((r = sb->waiting)) {
		sb->waiting = r->next;
		req_release(r);
		free(r);
	}
	multi_give(sb->o, sb->multi);
	free(sb);
}

static int s3_put_batch(origin_t *base, struct origin_batch *b, const char *key, const void *data,
			size_t len)
{
	struct s3_origin *o = (struct s3_origin *)base;
	struct s3_batch *sb = b->impl;
	struct s3_req *r;
	int rc;

	if (!sb) {
		sb = xcalloc(1, sizeof(*sb));
		sb->o = o;
		sb->multi = multi_take(o);
		b->impl = sb;
		b->impl_free = batch_free;
	}
	if (sb->rc)
		return sb->rc;
	r = xmalloc(sizeof(*r));
	rc = req_init(o, r, S3_PUT, key);
	if (rc < 0) {
		free(r);
		return rc;
	}
	/* The caller reuses its buffer as soon as we return. */
	r->owned = xmalloc(len ? len : 1);
	memcpy(r->owned, data, len);
	req_body(r, r->owned, len);
	r->started_ms = mono_ms();
	batch_start(sb, r);
	while (sb->rc == 0 && sb->nrunning + sb->nwaiting >= (size_t)o->spec.parallel)
		batch_step(sb);
	return sb->rc;
}

static int s3_flush(origin_t *base, struct origin_batch *b)
{
	struct s3_batch *sb = b->impl;
	int rc = 0;

	/* After a final failure the rest no longer matter: the caller
	 * commits nothing, and freeing the batch stops them. */
	while (sb && sb->rc == 0 && (sb->nrunning || sb->nwaiting))
		batch_step(sb);
	if (sb)
		rc = sb->rc;
	origin_batch_free(b);
	return rc;
}

/* ------------------------------------------------------------------ open */

static void s3_close(origin_t *base)
{
	struct s3_origin *o = (struct s3_origin *)base;

	for (size_t i = 0; i < o->nmulti; i++)
		curl_multi_cleanup(o->multi[i]);
	for (size_t i = 0; i < o->neasy; i++)
		curl_easy_cleanup(o->easy[i]);
	free(o->multi);
	free(o->easy);
	pthread_mutex_destroy(&o->lock);
	explicit_bzero(o->secret, strlen(o->secret));
	free(o->secret);
	if (o->token) {
		explicit_bzero(o->token, strlen(o->token));
		free(o->token);
	}
	free(o->key_id);
	free(o);
}

static const struct origin_ops s3_ops = {
	.put = s3_put,
	.put_batch = s3_put_batch,
	.flush = s3_flush,
	.get = s3_get,
	.size = s3_size,
	.remove = s3_remove,
	.close = s3_close,
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* A credential goes into a header or the signing key: no control bytes. */
static bool cred_ok(const char *v, size_t max)
{
	size_t n = v ? strlen(v) : 0;

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return false;
	return true;
}

int origin_s3_open(const char *spec, origin_t **out, char *err, size_t errlen)
{
	const char *key = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
	const char *token = getenv("AWS_SESSION_TOKEN");
	struct s3_origin *o;
	struct s3_spec s;
	char why[256], desc[sizeof(s.bucket) + sizeof(s.prefix) + sizeof(s.endpoint) + 16];
	int rc;

	/* The spec is not echoed: a mistyped endpoint may hold a password. */
	rc = origin_s3_spec_parse(spec, &s, why, sizeof(why));
	if (rc < 0) {
		snprintf(err, errlen, "invalid s3 origin: %s", why);
		return rc;
	}
	if (!key || !*key || !secret || !*secret) {
		snprintf(err, errlen,
			 "s3 origin s3://%s: no credentials: set AWS_ACCESS_KEY_ID and"
			 " AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones)",
			 s.bucket);
		return -EACCES;
	}
	if (!cred_ok(key, 128) || !cred_ok(secret, 512) ||
	    (token && *token && !cred_ok(token, 4096))) {
		snprintf(err, errlen, "s3 origin s3://%s: malformed AWS_* credentials", s.bucket);
		return -EINVAL;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		snprintf(err, errlen, "cannot initialise libcurl: %s",
			 curl_easy_strerror(curl_init_rc));
		return -EIO;
	}
	o = xcalloc(1, sizeof(*o));
	o->base.ops = &s3_ops;
	o->spec = s;
	o->key_id = xstrdup(key);
	o->secret = xstrdup(secret);
	o->token = token && *token ? xstrdup(token) : NULL;
	snprintf(o->sigv4, sizeof(o->sigv4), "aws:amz:%s:s3", s.region);
	atomic_init(&o->auth_failed, false);
	pthread_mutex_init(&o->lock, NULL);
	/* Cut to fit: desc is only for messages. */
	snprintf(desc, sizeof(desc), "s3://%s/%.*s (%s)", s.bucket,
		 s.prefix[0] ? (int)strlen(s.prefix) - 1 : 0, s.prefix, s.endpoint);
	snprintf(o->base.desc, sizeof(o->base.desc), "%.*s", (int)sizeof(o->base.desc) - 1, desc);
	*out = &o->base;
	return 0;
}
