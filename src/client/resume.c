/*
 * The upload state file (see resume.h). It is small (a line per upload in
 * flight), so every operation reads all of it under a lock on a file of
 * its own (the state file itself is replaced by each write, so it cannot
 * carry the lock) and writes all of it back with fs_write_atomic: a run
 * killed at any moment leaves the old file or the new one.
 */
#include "client/resume.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/fsutil.h"
#include "util/text.h"
#include "util/xalloc.h"

#define STATE_MAX ((size_t)4 << 20)
#define ENTRIES_MAX 10000

struct resume {
	char path[PATH_MAX];
	int lockfd;
};

int resume_open(const char *path, resume_t **out, char *err, size_t errlen)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char dir[PATH_MAX], lock[PATH_MAX + 8];
	resume_t *r;
	char *slash;
	int rc;

	*out = NULL;
	r = xcalloc(1, sizeof(*r));
	r->lockfd = -1;
	/* The XDG base directory rule: a relative $XDG_STATE_HOME is ignored. */
	if (path)
		rc = snprintf(r->path, sizeof(r->path), "%s", path);
	else if (xdg && xdg[0] == '/')
		rc = snprintf(r->path, sizeof(r->path), "%s/chorus/uploads", xdg);
	else if (home && home[0] == '/')
		rc = snprintf(r->path, sizeof(r->path), "%s/.local/state/chorus/uploads", home);
	else {
		snprintf(err, errlen, "neither $XDG_STATE_HOME nor $HOME is set");
		free(r);
		return -ENOENT;
	}
	if (rc < 0 || (size_t)rc >= sizeof(r->path) - 8) {
		snprintf(err, errlen, "the state file's path is too long");
		free(r);
		return -ENAMETOOLONG;
	}
	snprintf(dir, sizeof(dir), "%s", r->path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if ((rc = fs_mkdir_p(dir, 0700)) < 0) {
			snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
			free(r);
			return rc;
		}
	}
	snprintf(lock, sizeof(lock), "%s.lock", r->path);
	r->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (r->lockfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open %s: %s", lock, strerror(errno));
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void resume_close(resume_t *r)
{
	if (!r)
		return;
	close(r->lockfd);
	free(r);
}

const char *resume_path(const resume_t *r)
{
	return r->path;
}

void resume_key(const char *endpoint, const char *path, uint64_t size, int64_t mtime_ns,
		char key[65])
{
	unsigned char md[32];
	char tail[64];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int n;

	if (!ctx)
		abort();
	n = snprintf(tail, sizeof(tail), "%llu %lld", (unsigned long long)size,
		     (long long)mtime_ns);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	/* NUL-separated: no endpoint and path can run into another pair. */
	EVP_DigestUpdate(ctx, "chorus-upload-v1", 17);
	EVP_DigestUpdate(ctx, endpoint, strlen(endpoint) + 1);
	EVP_DigestUpdate(ctx, path, strlen(path) + 1);
	EVP_DigestUpdate(ctx, tail, (size_t)n);
	EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	text_hex(md, sizeof(md), key);
}

/* One line of the file, pointing into its text. */
struct entry {
	const char *key, *url;
	size_t url_len;
	long long created;
};

/* The file's entries (a malformed line is dropped: the file is only a
 * cache of what the server has). data is modified. */
static size_t parse(char *data, struct entry **out)
{
	struct entry *e = NULL;
	size_t n = 0, cap = 0;

	for (char *line = data, *next; line && *line; line = next) {
		char *sp1, *sp2, *end;
		long long created;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		sp1 = strchr(line, ' ');
		sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
		if (!sp2 || sp1 - line != 64)
			continue;
		created = strtoll(sp2 + 1, &end, 10);
		if (*end || sp2 == sp1 + 1)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			e = xrealloc(e, cap * sizeof(*e));
		}
		*sp1 = '\0';
		e[n++] = (struct entry){line, sp1 + 1, (size_t)(sp2 - sp1 - 1), created};
	}
	*out = e;
	return n;
}

/* The file's text, "" when it is not there. 0 or -errno. */
static int load(resume_t *r, char **data)
{
	size_t len;
	int rc = fs_read_all(r->path, STATE_MAX, data, &len);

	if (rc == -ENOENT) {
		*data = xstrdup("");
		return 0;
	}
	return rc;
}

static int lock(resume_t *r, int how)
{
	while (flock(r->lockfd, how) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

int resume_get(resume_t *r, const char *key, char *url, size_t urllen)
{
	struct entry *e = NULL;
	char *data = NULL;
	size_t n;
	int rc;

	if ((rc = lock(r, LOCK_SH)) < 0)
		return rc;
	rc = load(r, &data);
	flock(r->lockfd, LOCK_UN);
	if (rc < 0)
		return rc;
	n = parse(data, &e);
	rc = 0;
	for (size_t i = n; i-- > 0;) {
		if (strcmp(e[i].key, key) != 0)
			continue;
		if (e[i].url_len < urllen) {
			memcpy(url, e[i].url, e[i].url_len);
			url[e[i].url_len] = '\0';
			rc = 1;
		}
		break;
	}
	free(e);
	free(data);
	return rc;
}

/* Rewrites the file without key's line, and with key -> url when url is
 * not NULL; old lines and those past ENTRIES_MAX (the oldest) dropped. */
static int update(resume_t *r, const char *key, const char *url)
{
	long long now = (long long)time(NULL);
	struct entry *e = NULL;
	char *data = NULL;
	size_t n, keep = 0;
	buf_t out;
	int rc;

	if (url && (strlen(url) > 4096 || strpbrk(url, " \t\r\n")))
		return -EINVAL;
	if ((rc = lock(r, LOCK_EX)) < 0)
		return rc;
	buf_init(&out, STATE_MAX);
	if ((rc = load(r, &data)) < 0)
		goto out;
	n = parse(data, &e);
	for (size_t i = 0; i < n; i++)
		if (strcmp(e[i].key, key) != 0 && now - e[i].created < RESUME_MAX_AGE_S)
			e[keep++] = e[i];
	for (size_t i = keep > ENTRIES_MAX - 1 ? keep - (ENTRIES_MAX - 1) : 0; i < keep; i++)
		if (buf_printf(&out, "%s %.*s %lld\n", e[i].key, (int)e[i].url_len, e[i].url,
			       e[i].created) < 0) {
			rc = -EFBIG;
			goto out;
		}
	if (url && buf_printf(&out, "%s %s %lld\n", key, url, now) < 0) {
		rc = -EFBIG;
		goto out;
	}
	rc = fs_write_atomic(r->path, NULL, out.data ? out.data : "", out.len, 0600);
out:
	flock(r->lockfd, LOCK_UN);
	buf_free(&out);
	free(e);
	free(data);
	return rc;
}

int resume_put(resume_t *r, const char *key, const char *url)
{
	return update(r, key, url);
}

int resume_forget(resume_t *r, const char *key)
{
	return update(r, key, NULL);
}
