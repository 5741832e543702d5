/*
 * The tus 1.0.0 client (see tus.h).
 *
 * One easy handle does every request, reset and set up again before each
 * one (curl_easy_reset keeps the connection cache, so a run of PATCHes
 * reuses one connection). The file is never in memory: a PATCH body is
 * read with pread from the file as libcurl asks for it, and when the
 * server takes sha256 checksums the chunk is read once more beforehand to
 * hash it (from the page cache, for chunks of 64 MiB: cheaper than
 * holding them).
 *
 * Failures are of two kinds. Those a later request can get past (the
 * connection reset, a stall, a 5xx, a lost lock, a checksum mismatch, an
 * offset the server does not have) forget the offset and ask the server
 * for it again with HEAD: the bytes it has are the truth, whatever this
 * side sent. Those it cannot (a refused key, a file over the limit, a
 * 4xx about this file) end the file or the run at once. A server that
 * goes on taking bytes resets the count of failures, so a long upload
 * over a bad link is not given up because it failed often, only when it
 * stops moving.
 */
#include "client/tus.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cluster/http_client.h"
#include "util/xalloc.h"

#define CONNECT_MS 10000
#define SHORT_TOTAL_MS 60000 /* OPTIONS, POST, HEAD, GET; a PATCH has no total */
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 8000
#define HASH_PIECE ((size_t)256 << 10)
#define ANSWER_KEEP 4096 /* of an answer's body, for its error message */
#define KEY_MAX 512

struct tus {
	CURL *h;
	char endpoint[TUS_URL_MAX];
	char auth[KEY_MAX + 32]; /* "Authorization: Bearer KEY", or "" */
	uint64_t chunk;
	int retries;
	long stall_s;
	void (*progress)(void *ud, uint64_t offset);
	void *ud;
	bool discovered;
	bool checksum;     /* the server takes "Upload-Checksum: sha256 ..." */
	uint64_t max_size; /* Tus-Max-Size, 0 when not said */
};

/* What one answer said. Headers of interim answers (100 Continue) are
 * dropped when the next status line arrives. */
struct reply {
	long status;
	char location[TUS_URL_MAX];
	bool has_offset, has_length;
	uint64_t offset, length, max_size;
	char version[128], extension[512], algorithms[256];
	char body[ANSWER_KEEP + 1];
	size_t body_len;
};

/* A PATCH's body: [start, start + len) of fd. */
struct body {
	tus_t *t;
	int fd;
	uint64_t start, len, pos;
	int err; /* errno of a failed read; EIO when the file shrank */
};

enum step {
	STEP_OK,
	STEP_RETRY,  /* after a backoff, HEAD and go on */
	STEP_RESYNC, /* HEAD and go on, now */
	STEP_GONE,   /* the upload is no more: create another */
	STEP_TOO_LARGE,
	STEP_REFUSED,
	STEP_STOP,
	STEP_FAIL,
};

enum kind { REQ_OPTIONS, REQ_POST, REQ_HEAD, REQ_PATCH, REQ_GET };

tus_t *tus_open(const struct tus_opts *o)
{
	tus_t *t;

	if (strlen(o->endpoint) >= TUS_URL_MAX || (o->key && strlen(o->key) > KEY_MAX))
		return NULL;
	t = xcalloc(1, sizeof(*t));
	if (http_client_global_init() < 0) {
		free(t);
		return NULL;
	}
	if (!(t->h = curl_easy_init())) {
		http_client_global_cleanup();
		free(t);
		return NULL;
	}
	snprintf(t->endpoint, sizeof(t->endpoint), "%s", o->endpoint);
	if (o->key && *o->key)
		snprintf(t->auth, sizeof(t->auth), "Authorization: Bearer %s", o->key);
	t->chunk = o->chunk_bytes ? o->chunk_bytes : UINT64_MAX;
	t->retries = o->retries;
	t->stall_s = o->stall_s > 0 ? o->stall_s : 60;
	t->progress = o->progress;
	t->ud = o->ud;
	return t;
}

void tus_close(tus_t *t)
{
	if (!t)
		return;
	curl_easy_cleanup(t->h);
	http_client_global_cleanup();
	explicit_bzero(t->auth, sizeof(t->auth));
	free(t);
}

/* ------------------------------------------------------------ small parts */

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static long backoff_ms(int failures)
{
	long ms = BACKOFF_FIRST_MS;

	for (int i = 1; i < failures && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

static void base64(const unsigned char *p, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

int tus_metadata_pair(const char *key, const char *value, char *out, size_t outlen)
{
	size_t kl = strlen(key), vl = strlen(value);

	if (vl > (SIZE_MAX - kl - 2) / 2 || kl + 2 + 4 * ((vl + 2) / 3) > outlen)
		return -1;
	memcpy(out, key, kl);
	out[kl] = ' ';
	base64((const unsigned char *)value, vl, out + kl + 1);
	return 0;
}

int tus_resolve(const char *base, const char *location, char *out, size_t outlen)
{
	CURLU *u = curl_url();
	char *full = NULL, *scheme = NULL;
	int rc = -1;

	if (!u)
		return -1;
	if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_URL, location, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
		goto out;
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
		goto out;
	/* The key goes with every request to the upload: never in clear text
	 * when it was asked for over TLS. */
	if (strncasecmp(base, "https:", 6) == 0 && strcmp(scheme, "https") != 0)
		goto out;
	if (strlen(full) >= outlen || strpbrk(full, " \t\r\n"))
		goto out;
	snprintf(out, outlen, "%s", full);
	rc = 0;
out:
	curl_free(scheme);
	curl_free(full);
	curl_url_cleanup(u);
	return rc;
}

/* Whether the comma-separated list holds tok (case-insensitive). */
static bool list_has(const char *list, const char *tok)
{
	size_t tl = strlen(tok);

	while (*list) {
		size_t n;

		while (*list == ' ' || *list == ',')
			list++;
		n = strcspn(list, ", ");
		if (n == tl && strncasecmp(list, tok, tl) == 0)
			return true;
		list += n;
	}
	return false;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* Copies value (trimmed of white space at both ends) into out. */
static void header_value(const char *v, size_t n, char *out, size_t outlen)
{
	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' || v[n - 1] == '\n'))
		n--;
	if (n >= outlen)
		n = outlen - 1; /* a too long Location fails to resolve, below */
	memcpy(out, v, n);
	out[n] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct reply *r = ud;
	size_t len = size * n;
	const char *colon = memchr(p, ':', len);
	char v[64];
	size_t name, vlen;

	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		memset(r, 0, offsetof(struct reply, body)); /* a new answer */
		r->body_len = 0;
		return len;
	}
	if (!colon)
		return len;
	name = (size_t)(colon - p);
	vlen = len - name - 1;
#define IS(h) (name == sizeof(h) - 1 && strncasecmp(p, h, name) == 0)
	if (IS("Location")) {
		header_value(colon + 1, vlen, r->location, sizeof(r->location));
	} else if (IS("Tus-Version")) {
		header_value(colon + 1, vlen, r->version, sizeof(r->version));
	} else if (IS("Tus-Extension")) {
		header_value(colon + 1, vlen, r->extension, sizeof(r->extension));
	} else if (IS("Tus-Checksum-Algorithm")) {
		header_value(colon + 1, vlen, r->algorithms, sizeof(r->algorithms));
	} else if (IS("Upload-Offset")) {
		header_value(colon + 1, vlen, v, sizeof(v));
		r->has_offset = parse_u64(v, &r->offset);
	} else if (IS("Upload-Length")) {
		header_value(colon + 1, vlen, v, sizeof(v));
		r->has_length = parse_u64(v, &r->length);
	} else if (IS("Tus-Max-Size")) {
		header_value(colon + 1, vlen, v, sizeof(v));
		if (!parse_u64(v, &r->max_size))
			r->max_size = 0;
	}
#undef IS
	return len;
}

/* Keeps the start of an answer's body, drops the rest (a long one must
 * not fail the transfer: its status is what matters). */
static size_t on_answer(char *p, size_t size, size_t n, void *ud)
{
	struct reply *r = ud;
	size_t len = size * n, room = ANSWER_KEEP - r->body_len;

	if (len < room)
		room = len;
	memcpy(r->body + r->body_len, p, room);
	r->body_len += room;
	r->body[r->body_len] = '\0';
	return len;
}

static size_t on_read(char *p, size_t size, size_t n, void *ud)
{
	struct body *b = ud;
	size_t want = size * n;
	ssize_t got;

	if (want > b->len - b->pos)
		want = (size_t)(b->len - b->pos);
	if (want == 0)
		return 0;
	do
		got = pread(b->fd, p, want, (off_t)(b->start + b->pos));
	while (got < 0 && errno == EINTR);
	if (got <= 0) {
		b->err = got < 0 ? errno : EIO;
		return CURL_READFUNC_ABORT;
	}
	b->pos += (uint64_t)got;
	return (size_t)got;
}

static int on_seek(void *ud, curl_off_t offset, int origin)
{
	struct body *b = ud;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > b->len)
		return CURL_SEEKFUNC_CANTSEEK;
	b->pos = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct body *b = ud;

	if (b->t->progress)
		b->t->progress(b->t->ud, b->start + (uint64_t)ulnow);
	return 0;
}

/* The answer's message, when its body has one: the "message" of a JSON
 * error ({"error":{"message":M}} or {"error":M}), or the text itself,
 * with control characters replaced; "" otherwise. */
static void answer_message(const struct reply *r, char *out, size_t outlen)
{
	json_t *root = json_loadb(r->body, r->body_len, 0, NULL);
	json_t *e = json_object_get(root, "error");
	const char *m = json_is_string(e) ? json_string_value(e)
					  : json_string_value(json_object_get(e, "message"));
	size_t i = 0;

	if (!m && !root)
		m = r->body;
	for (; m && *m && i + 1 < outlen && i < 200; m++)
		out[i++] = (unsigned char)*m < 0x20 || *m == 0x7f ? ' ' : *m;
	while (i && out[i - 1] == ' ')
		i--;
	out[i] = '\0';
	json_decref(root);
}

/* "HTTP 400 from URL[: message]" into err. */
static void http_error(const struct reply *r, const char *url, char *err, size_t errlen)
{
	char msg[256];

	answer_message(r, msg, sizeof(msg));
	snprintf(err, errlen, "HTTP %ld from %.512s%s%s", r->status, url, msg[0] ? ": " : "", msg);
}

/* A header list: Tus-Resumable, the key, then extra (NULL-terminated). */
static struct curl_slist *headers(tus_t *t, const char *const *extra)
{
	struct curl_slist *l = curl_slist_append(NULL, "Tus-Resumable: 1.0.0");

	if (l && t->auth[0])
		l = curl_slist_append(l, t->auth);
	for (; l && extra && *extra; extra++)
		l = curl_slist_append(l, *extra);
	if (!l)
		abort(); /* allocation failure, as xalloc would */
	return l;
}

/* Frees a header list, wiping its copy of the key first. */
static void headers_free(struct curl_slist *l)
{
	for (struct curl_slist *i = l; i; i = i->next)
		explicit_bzero(i->data, strlen(i->data));
	curl_slist_free_all(l);
}

/*
 * One request. body is a PATCH's; out, a GET's answer (the rest keep the
 * start of theirs in r). 0 with r filled, or -1 with libcurl's reason in
 * err (the transfer failed: no answer, or not all of it).
 */
static int request(tus_t *t, enum kind kind, const char *url, const char *const *extra,
		   struct body *body, buf_t *out, struct reply *r, char *err, size_t errlen)
{
	struct curl_slist *hdrs = headers(t, extra);
	CURL *h = t->h;
	curl_off_t up = 0;
	int rc;

	memset(r, 0, sizeof(*r));
	curl_easy_reset(h);
	http_client_setup(h, url, CONNECT_MS, kind == REQ_PATCH ? 0 : SHORT_TOTAL_MS);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, t->stall_s);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	if (out) {
		http_client_body_to(h, out);
	} else {
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_answer);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	}
	switch (kind) {
	case REQ_OPTIONS:
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "OPTIONS");
		break;
	case REQ_POST:
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
		break;
	case REQ_HEAD:
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
		break;
	case REQ_PATCH:
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PATCH");
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body->len);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, body);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, body);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, body);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		break;
	case REQ_GET:
		break;
	}
	rc = http_client_perform(h, &r->status, err, errlen);
	if (rc < 0)
		r->status = 0;
	if (kind == REQ_PATCH && curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &up) == CURLE_OK)
		body->pos = (uint64_t)up; /* what went out, for the caller's count */
	/* Nothing of this request may be used by the next. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	headers_free(hdrs);
	return rc;
}

/* The step an answer leads to, when it is not the success its request
 * looks for. */
static enum step failed_step(tus_t *t, const struct reply *r, const char *url, char *err,
			     size_t errlen)
{
	http_error(r, url, err, errlen);
	switch (r->status) {
	case 401:
	case 403:
		return STEP_REFUSED;
	case 413:
		return STEP_TOO_LARGE;
	case 404:
	case 410:
		return STEP_GONE;
	case 409:
		return STEP_RESYNC;
	case 408:
	case 423: /* the upload is locked: an earlier request still holds it */
	case 429:
	case 460: /* checksum mismatch: the bytes were damaged on the way */
		return STEP_RETRY;
	default:
		return r->status >= 500 ? STEP_RETRY : STEP_FAIL;
	}
}

/* ------------------------------------------------------------ the steps */

/* OPTIONS: the versions, extensions, checksum algorithms and size limit
 * the server has. A server that does not answer it (404, 405) is tried
 * as a plain tus 1.0.0 server with creation. */
static enum step discover(tus_t *t, char *err, size_t errlen)
{
	struct reply r;

	if (request(t, REQ_OPTIONS, t->endpoint, NULL, NULL, NULL, &r, err, errlen) < 0)
		return STEP_RETRY;
	if (r.status == 401 || r.status == 403 || r.status >= 500 || r.status == 429) {
		return failed_step(t, &r, t->endpoint, err, errlen);
	}
	t->discovered = true;
	if (r.status / 100 != 2)
		return STEP_OK;
	if (r.version[0] && !list_has(r.version, "1.0.0")) {
		snprintf(err, errlen, "%.512s speaks tus %s, not 1.0.0", t->endpoint, r.version);
		return STEP_STOP;
	}
	if (r.extension[0] && !list_has(r.extension, "creation")) {
		snprintf(err, errlen, "%.512s cannot create uploads (tus extensions: %.200s)",
			 t->endpoint, r.extension);
		return STEP_STOP;
	}
	t->checksum = list_has(r.extension, "checksum") && list_has(r.algorithms, "sha256");
	t->max_size = r.max_size;
	return STEP_OK;
}

static enum step create(tus_t *t, struct tus_upload *u, char *err, size_t errlen)
{
	char length[64], meta[4200] = "Upload-Metadata: ";
	const char *extra[] = {length, meta, "Content-Type:", NULL};
	struct reply r;

	snprintf(length, sizeof(length), "Upload-Length: %" PRIu64, u->size);
	if (tus_metadata_pair("filename", u->filename, meta + strlen(meta),
			      sizeof(meta) - strlen(meta)) < 0) {
		snprintf(err, errlen, "file name too long");
		return STEP_FAIL;
	}
	if (request(t, REQ_POST, t->endpoint, extra, NULL, NULL, &r, err, errlen) < 0)
		return STEP_RETRY;
	if (r.status / 100 != 2) {
		enum step s = failed_step(t, &r, t->endpoint, err, errlen);
		/* No upload to be gone: the endpoint itself is not there. */
		if (s == STEP_GONE || r.status == 405) {
			snprintf(err + strlen(err), errlen - strlen(err),
				 " (is it a tus endpoint?)");
			return STEP_STOP;
		}
		return s;
	}
	if (!r.location[0] || tus_resolve(t->endpoint, r.location, u->url, sizeof(u->url)) < 0) {
		u->url[0] = '\0';
		snprintf(err, errlen, "%.512s created an upload without a usable Location",
			 t->endpoint);
		return STEP_FAIL;
	}
	if (u->created)
		u->created(u->ud, u->url);
	return STEP_OK;
}

static enum step head(tus_t *t, struct tus_upload *u, uint64_t *offset, char *err, size_t errlen)
{
	struct reply r;

	if (request(t, REQ_HEAD, u->url, NULL, NULL, NULL, &r, err, errlen) < 0)
		return STEP_RETRY;
	if (r.status / 100 != 2)
		return failed_step(t, &r, u->url, err, errlen);
	if (!r.has_offset) {
		snprintf(err, errlen, "HEAD %.512s: no Upload-Offset in the answer", u->url);
		return STEP_RETRY;
	}
	/* Another file's upload, or one that went wrong: start again. */
	if ((r.has_length && r.length != u->size) || r.offset > u->size) {
		snprintf(err, errlen, "%.512s holds an upload of another size", u->url);
		return STEP_GONE;
	}
	*offset = r.offset;
	return STEP_OK;
}

/* The sha256 of [off, off + len) of fd, base64, into out (45 bytes). */
static int hash_range(int fd, uint64_t off, uint64_t len, char out[45])
{
	unsigned char md[32], *piece = xmalloc(HASH_PIECE);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = -EIO;

	if (!ctx)
		abort();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while (len > 0) {
		size_t n = len < HASH_PIECE ? (size_t)len : HASH_PIECE;
		ssize_t got = pread(fd, piece, n, (off_t)off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			rc = got < 0 ? -errno : -EIO;
			goto out;
		}
		EVP_DigestUpdate(ctx, piece, (size_t)got);
		off += (uint64_t)got;
		len -= (uint64_t)got;
	}
	EVP_DigestFinal_ex(ctx, md, NULL);
	base64(md, sizeof(md), out);
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	free(piece);
	return rc;
}

static enum step patch(tus_t *t, struct tus_upload *u, uint64_t *offset, char *err, size_t errlen)
{
	char hoff[64], hsum[96];
	const char *extra[] = {"Content-Type: application/offset+octet-stream", hoff, NULL, NULL};
	struct body b = {.t = t, .fd = u->fd, .start = *offset};
	struct reply r;
	int rc;

	b.len = u->size - *offset < t->chunk ? u->size - *offset : t->chunk;
	snprintf(hoff, sizeof(hoff), "Upload-Offset: %" PRIu64, *offset);
	if (t->checksum) {
		char sum[45];

		if ((rc = hash_range(u->fd, b.start, b.len, sum)) < 0) {
			snprintf(err, errlen, "cannot read the file: %s",
				 rc == -EIO ? "it shrank while it was sent" : strerror(-rc));
			return STEP_FAIL;
		}
		snprintf(hsum, sizeof(hsum), "Upload-Checksum: sha256 %s", sum);
		extra[2] = hsum;
	}
	rc = request(t, REQ_PATCH, u->url, extra, &b, NULL, &r, err, errlen);
	u->sent += b.pos;
	if (b.err) {
		snprintf(err, errlen, "cannot read the file: %s",
			 b.err == EIO ? "it shrank while it was sent" : strerror(b.err));
		return STEP_FAIL;
	}
	if (rc < 0)
		return STEP_RETRY;
	if (r.status / 100 != 2)
		return failed_step(t, &r, u->url, err, errlen);
	if (!r.has_offset || r.offset < *offset || r.offset > b.start + b.len) {
		snprintf(err, errlen,
			 "PATCH %.512s: the answer's Upload-Offset is not of this chunk", u->url);
		return STEP_RESYNC;
	}
	*offset = r.offset;
	return STEP_OK;
}

/* ------------------------------------------------------------ the loop */

enum tus_result tus_send(tus_t *t, struct tus_upload *u, char *err, size_t errlen)
{
	uint64_t offset = 0, before;
	bool known = false, asked = false;
	int failures = 0;
	char last[1024] = "";

	u->resumed_at = 0;
	u->sent = 0;
	u->recovered = 0;
	for (;;) {
		enum step s;

		if (!t->discovered) {
			s = discover(t, last, sizeof(last));
		} else if (t->max_size && u->size > t->max_size) {
			snprintf(last, sizeof(last), "%" PRIu64 " bytes, the most is %" PRIu64,
				 u->size, t->max_size);
			s = STEP_TOO_LARGE;
		} else if (!u->url[0]) {
			s = create(t, u, last, sizeof(last));
			if (s == STEP_OK) {
				offset = 0;
				known = asked = true;
			}
		} else if (!known) {
			s = head(t, u, &offset, last, sizeof(last));
			if (s == STEP_OK) {
				known = true;
				if (!asked)
					u->resumed_at = offset;
				asked = true;
			}
		} else if (offset >= u->size) {
			if (t->progress)
				t->progress(t->ud, u->size);
			return TUS_OK;
		} else {
			before = offset;
			s = patch(t, u, &offset, last, sizeof(last));
			if (offset > before)
				failures = 0; /* it moves: the count is of failures in a row */
		}
		switch (s) {
		case STEP_OK:
			continue;
		case STEP_TOO_LARGE:
			snprintf(err, errlen, "%s", last);
			return TUS_TOO_LARGE;
		case STEP_REFUSED:
			snprintf(err, errlen, "%s", last);
			return TUS_REFUSED;
		case STEP_STOP:
			snprintf(err, errlen, "%s", last);
			return TUS_STOP;
		case STEP_FAIL:
			snprintf(err, errlen, "%s", last);
			return TUS_FAILED;
		case STEP_GONE:
			u->url[0] = '\0';
			break;
		case STEP_RETRY:
		case STEP_RESYNC:
			break;
		}
		known = false;
		if (++failures > t->retries) {
			snprintf(err, errlen, "gave up after %d failures in a row: %.900s",
				 failures, last);
			return t->discovered ? TUS_FAILED : TUS_STOP;
		}
		u->recovered++;
		if (s == STEP_RETRY)
			sleep_ms(backoff_ms(failures));
	}
}

int tus_get(tus_t *t, const char *url, buf_t *body, long *status, char *err, size_t errlen)
{
	struct reply r;
	int rc = request(t, REQ_GET, url, NULL, NULL, body, &r, err, errlen);

	*status = r.status;
	return rc;
}
