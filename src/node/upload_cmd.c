/*
 * `chorus upload` (see upload_cmd.h).
 *
 * The walk lists every file first (so the progress line has a total and
 * an ETA), then the files go one after another over one connection: an
 * uplink is the bottleneck of an upload from afar, and files sent in
 * parallel would only share it. Each upload's URL is remembered from the
 * moment the server has created it until its result is known, so the
 * same command run again after a kill resumes it (HEAD tells how much the
 * server has). With --wait the uploads' statuses are polled once every
 * file is sent: the node ingests while the next files arrive.
 *
 * Output: on a terminal, one line on stderr redrawn (files, MB, rate,
 * ETA), failures above it; otherwise one line per file on stdout when
 * its result is known. Always a summary on stdout, and failures on
 * stderr as "chorus: upload: PATH: why". The key is in no output.
 */
#include "node/upload_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/resume.h"
#include "client/tus.h"
#include "ingest/probe.h"
#include "ingest/walk.h"
#include "util/clock.h"
#include "util/xalloc.h"

#define STATUS_MAX ((size_t)1 << 20)
#define POLL_MS 1000
#define DRAW_EVERY_S 0.25

enum outcome { PENDING, WAITING, INGESTED, UPLOADED, FAILED };

struct file {
	struct walk_file *wf;
	enum outcome outcome;
	char url[TUS_URL_MAX];
	char key[65];
	double secs;
	uint64_t sent, resumed_at;
	int recovered, status_errors;
};

struct run {
	const struct upload_cmd *c;
	char endpoint[TUS_URL_MAX];
	struct walk_list list;
	struct file *files;
	tus_t *tus;
	resume_t *resume;
	size_t finished, failed;
	uint64_t bytes_done;   /* of the files no longer being sent */
	uint64_t offset;       /* of the file being sent */
	uint64_t skipped;      /* bytes the server had before this run (not sent) */
	uint64_t first_offset; /* of the file being sent, at its first progress */
	bool first_seen;
	uint64_t sent;
	double started, drawn;
	bool progress_shown;
};

static const char *const archive_exts[] = {".zip",  ".tar",    ".tar.gz", ".tgz",     ".tar.bz2",
					   ".tbz2", ".tar.xz", ".txz",    ".tar.zst", ".tar.zstd"};

/* Audio by its name, or an archive (of an album, which the node opens). */
static bool takes_name(const char *name)
{
	size_t n = strlen(name);

	if (probe_is_audio_name(name))
		return true;
	for (size_t i = 0; i < sizeof(archive_exts) / sizeof(archive_exts[0]); i++) {
		size_t e = strlen(archive_exts[i]);
		if (n > e && strcasecmp(name + n - e, archive_exts[i]) == 0)
			return true;
	}
	return false;
}

int upload_cmd_endpoint(const char *url, char *out, size_t outlen)
{
	size_t n = strlen(url);
	int rc;

	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return -1;
	if (strpbrk(url, " \t\r\n"))
		return -1;
	while (n > 8 && url[n - 1] == '/')
		n--;
	if (n >= 8 && strncmp(url + n - 8, "/uploads", 8) == 0)
		rc = snprintf(out, outlen, "%.*s", (int)n, url);
	else
		rc = snprintf(out, outlen, "%.*s/api/v1/uploads", (int)n, url);
	return rc < 0 || (size_t)rc >= outlen ? -1 : 0;
}

bool upload_cmd_key_ok(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > 512)
		return false;
	for (; *key; key++)
		if ((unsigned char)*key <= 0x20 || (unsigned char)*key >= 0x7f)
			return false;
	return true;
}

/* ------------------------------------------------------------ output */

static void clear_progress(struct run *r)
{
	if (r->progress_shown) {
		fputs("\r\033[K", stderr);
		r->progress_shown = false;
	}
}

static void draw(struct run *r, bool force)
{
	double now = mono_s(), el = now - r->started, rate;
	uint64_t done = r->bytes_done + r->offset, total = r->list.total_bytes;
	uint64_t moved = done > r->skipped ? done - r->skipped : 0;
	size_t waiting = 0;
	char eta[32] = "--:--";

	if (!r->c->progress || (!force && now - r->drawn < DRAW_EVERY_S))
		return;
	r->drawn = now;
	rate = el > 0 ? (double)moved / el : 0;
	if (rate > 0 && total > done) {
		long s = (long)((double)(total - done) / rate);
		snprintf(eta, sizeof(eta), "%ld:%02ld", s / 60, s % 60);
	} else if (total <= done) {
		snprintf(eta, sizeof(eta), "0:00");
	}
	for (size_t i = 0; i < r->list.n; i++)
		waiting += r->files[i].outcome == WAITING;
	fprintf(stderr, "\r\033[K%zu/%zu files  %.1f/%.1f MB  %.1f MB/s  ETA %s", r->finished,
		r->list.n, (double)done / 1e6, (double)total / 1e6, rate / 1e6, eta);
	if (waiting)
		fprintf(stderr, "  (%zu being ingested)", waiting);
	fflush(stderr);
	r->progress_shown = true;
}

static void on_progress(void *ud, uint64_t offset)
{
	struct run *r = ud;

	if (!r->first_seen) {
		r->first_seen = true;
		r->first_offset = offset;
		r->skipped += offset;
	}
	r->offset = offset;
	draw(r, false);
}

/* A failure's line on stderr, above the progress line. */
static void say_failure(struct run *r, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say_failure(struct run *r, const char *path, const char *fmt, ...)
{
	char msg[1400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clear_progress(r);
	fprintf(stderr, "chorus: upload: %s%s%s\n", path ? path : "", path ? ": " : "", msg);
}

/* The file's result: its line (without a terminal), counted, its state
 * forgotten. */
static void finish(struct run *r, struct file *f, enum outcome o, const char *detail)
{
	static const char *const names[] = {"pending", "waiting", "ingested", "uploaded", "failed"};

	f->outcome = o;
	r->finished++;
	if (o == FAILED)
		r->failed++;
	if (r->c->lines) {
		clear_progress(r);
		printf("upload: %s: %s, %" PRIu64 " bytes, sent %" PRIu64 ", %.2f s", f->wf->path,
		       names[o], f->wf->size, f->sent, f->secs);
		if (f->resumed_at)
			printf(", resumed at %" PRIu64, f->resumed_at);
		if (f->recovered)
			printf(", %d retr%s", f->recovered, f->recovered == 1 ? "y" : "ies");
		printf("%s%s\n", detail && *detail ? ": " : "", detail ? detail : "");
		fflush(stdout);
	}
	if (r->resume && f->key[0] && resume_forget(r->resume, f->key) < 0)
		say_failure(r, NULL, "cannot update %s", resume_path(r->resume));
}

/* ------------------------------------------------------------ sending */

struct created_ctx {
	struct run *r;
	struct file *f;
};

static void remember(void *ud, const char *url)
{
	struct created_ctx *cc = ud;
	int rc;

	snprintf(cc->f->url, sizeof(cc->f->url), "%s", url);
	if (cc->r->resume && (rc = resume_put(cc->r->resume, cc->f->key, url)) < 0)
		say_failure(cc->r, NULL, "cannot write %s: %s (a later run cannot resume %s)",
			    resume_path(cc->r->resume), strerror(-rc), cc->f->wf->path);
}

/* Sends one file. false when the run must stop (the key was refused, the
 * endpoint is not a tus server, or it cannot be reached). */
static bool send_one(struct run *r, struct file *f)
{
	struct tus_upload u = {.fd = -1};
	struct created_ctx cc = {r, f};
	const char *base = strrchr(f->wf->path, '/');
	double t0 = mono_s();
	char err[1400];
	struct stat st, st2;
	enum tus_result res;
	bool go_on = true;

	u.fd = open(f->wf->path, O_RDONLY | O_CLOEXEC);
	if (u.fd < 0 || fstat(u.fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, sizeof(err), "%s", u.fd < 0 ? strerror(errno) : "not a regular file");
		say_failure(r, f->wf->path, "%s", err);
		finish(r, f, FAILED, err);
		goto out;
	}
	/* The size and time as opened: the walk's may be stale by now. */
	r->list.total_bytes += (uint64_t)st.st_size - f->wf->size;
	f->wf->size = (uint64_t)st.st_size;
	f->wf->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	posix_fadvise(u.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	resume_key(r->endpoint, f->wf->path, f->wf->size, f->wf->mtime_ns, f->key);
	if (r->resume && resume_get(r->resume, f->key, u.url, sizeof(u.url)) < 0)
		u.url[0] = '\0';
	u.size = f->wf->size;
	u.filename = base ? base + 1 : f->wf->path;
	u.created = remember;
	u.ud = &cc;
	r->offset = 0;
	r->first_seen = false;
	res = tus_send(r->tus, &u, err, sizeof(err));
	f->secs = mono_s() - t0;
	f->sent = u.sent;
	f->resumed_at = u.resumed_at;
	f->recovered = u.recovered;
	snprintf(f->url, sizeof(f->url), "%s", u.url);
	r->sent += u.sent;
	if (!r->first_seen) /* nothing sent: the server had it all */
		r->skipped += res == TUS_OK ? f->wf->size : 0;
	r->offset = 0;
	r->bytes_done += f->wf->size;
	if (res == TUS_OK && (fstat(u.fd, &st2) < 0 || st2.st_size != st.st_size ||
			      st2.st_mtim.tv_sec != st.st_mtim.tv_sec ||
			      st2.st_mtim.tv_nsec != st.st_mtim.tv_nsec)) {
		say_failure(r, f->wf->path, "the file changed while it was sent: send it again");
		finish(r, f, FAILED, "the file changed while it was sent");
		goto out;
	}
	switch (res) {
	case TUS_OK:
		if (r->c->wait) {
			f->outcome = WAITING;
		} else {
			finish(r, f, UPLOADED, NULL);
		}
		break;
	case TUS_TOO_LARGE:
		say_failure(r, f->wf->path, "file over the node's limit (%s)", err);
		finish(r, f, FAILED, "file over the node's limit");
		break;
	case TUS_FAILED:
		say_failure(r, f->wf->path, "%s", err);
		/* Its state is kept: the same command later resumes it. */
		f->key[0] = '\0';
		finish(r, f, FAILED, err);
		break;
	case TUS_REFUSED:
	case TUS_STOP:
		f->key[0] = '\0';
		say_failure(r, NULL, "%s", err);
		if (res == TUS_REFUSED)
			say_failure(r, NULL,
				    r->c->key ? "the node refused the API key: is it revoked, or"
						" without the right to upload (an editor's or"
						" admin's key)?"
					      : "the node wants an API key: set CHORUS_KEY (or"
						" give --key-file FILE)");
		finish(r, f, FAILED, err);
		go_on = false;
		break;
	}
out:
	if (u.fd >= 0)
		close(u.fd);
	draw(r, true);
	return go_on;
}

/* ------------------------------------------------------------ waiting */

/* One poll of f's status: true once its outcome is known. */
static bool poll_one(struct run *r, struct file *f, bool last)
{
	char url[TUS_URL_MAX + 16], err[1024], detail[1200];
	json_t *root = NULL, *ids;
	const char *state;
	long status = 0;
	bool known = true;
	buf_t body;

	snprintf(url, sizeof(url), "%s/status", f->url);
	buf_init(&body, STATUS_MAX);
	if (tus_get(r->tus, url, &body, &status, err, sizeof(err)) < 0 || status >= 500) {
		if (status >= 500)
			snprintf(err, sizeof(err), "HTTP %ld", status);
		if (++f->status_errors <= r->c->retries && !last) {
			known = false;
			goto out;
		}
		snprintf(detail, sizeof(detail), "its status is unknown: %s", err);
		finish(r, f, UPLOADED, detail);
		goto out;
	}
	if (status == 404 || status == 405 || status == 501) {
		/* A tus server without chorus's status endpoint: nothing to wait for. */
		finish(r, f, UPLOADED, NULL);
		goto out;
	}
	if (status != 200) {
		snprintf(detail, sizeof(detail), "its status is unknown: HTTP %ld", status);
		finish(r, f, UPLOADED, detail);
		goto out;
	}
	root = json_loadb(body.data, body.len, 0, NULL);
	state = json_string_value(json_object_get(root, "state"));
	if (state && strcmp(state, "done") == 0) {
		size_t n = 0;
		ids = json_object_get(root, "track_ids");
		snprintf(detail, sizeof(detail), "tracks");
		for (size_t i = 0; i < json_array_size(ids) && strlen(detail) < 1100; i++) {
			json_t *id = json_array_get(ids, i);
			if (json_is_integer(id))
				snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail),
					 "%s %" JSON_INTEGER_FORMAT, n++ ? "," : "",
					 json_integer_value(id));
			else if (json_is_string(id))
				snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail),
					 "%s %.64s", n++ ? "," : "", json_string_value(id));
		}
		finish(r, f, INGESTED, n ? detail : "no track");
	} else if (state && strcmp(state, "failed") == 0) {
		const char *why = json_string_value(json_object_get(root, "error"));
		char clean[512];
		size_t i = 0;

		for (; why && *why && i + 1 < sizeof(clean); why++)
			clean[i++] = (unsigned char)*why < 0x20 || *why == 0x7f ? ' ' : *why;
		clean[i] = '\0';
		snprintf(detail, sizeof(detail), "the node could not ingest it: %s",
			 i ? clean : "no reason given");
		say_failure(r, f->wf->path, "%s", detail);
		finish(r, f, FAILED, detail);
	} else if (last) {
		snprintf(detail, sizeof(detail), "still %.32s on the node after %d s",
			 state ? state : "unknown", r->c->wait_timeout_s);
		finish(r, f, UPLOADED, detail);
	} else {
		known = false;
	}
out:
	json_decref(root);
	buf_free(&body);
	return known;
}

static void wait_all(struct run *r)
{
	double deadline = mono_s() + r->c->wait_timeout_s;
	size_t left;

	do {
		bool last = mono_s() >= deadline;

		left = 0;
		for (size_t i = 0; i < r->list.n; i++)
			if (r->files[i].outcome == WAITING && !poll_one(r, &r->files[i], last))
				left++;
		draw(r, true);
		if (left) {
			struct timespec ts = {POLL_MS / 1000, (POLL_MS % 1000) * 1000000L};
			nanosleep(&ts, NULL);
		}
	} while (left);
}

/* ------------------------------------------------------------ the run */

static void walk_failed(void *ud, const char *path, const char *why)
{
	struct run *r = ud;

	say_failure(r, path, "%s", why);
	r->failed++;
}

int upload_cmd_run(const struct upload_cmd *c, char *const *paths, int npaths)
{
	struct run r = {.c = c};
	struct tus_opts to = {0};
	char err[512];
	size_t walk_failures;
	bool go_on = true;
	int status = 1;

	r.started = mono_s();
	if (upload_cmd_endpoint(c->url, r.endpoint, sizeof(r.endpoint)) < 0) {
		fprintf(stderr, "chorus: upload: \"%s\" is not an http:// or https:// URL\n",
			c->url);
		return 2;
	}
	if (resume_open(NULL, &r.resume, err, sizeof(err)) < 0)
		fprintf(stderr, "chorus: upload: %s: uploads cut short will start again\n", err);
	r.list.fail = walk_failed;
	r.list.ud = &r;
	r.list.accept = takes_name;
	r.list.skipped = "not an audio file or an archive by its name (skipped)";
	r.list.cmd = "upload";
	for (int i = 0; i < npaths; i++)
		walk_path(paths[i], &r.list);
	walk_failures = r.failed;
	r.files = xcalloc(r.list.n ? r.list.n : 1, sizeof(*r.files));
	for (size_t i = 0; i < r.list.n; i++)
		r.files[i].wf = &r.list.files[i];

	to.endpoint = r.endpoint;
	to.key = c->key;
	to.chunk_bytes = c->chunk_bytes;
	to.retries = c->retries;
	to.stall_s = c->timeout_s;
	to.progress = on_progress;
	to.ud = &r;
	if (!(r.tus = tus_open(&to))) {
		fprintf(stderr, "chorus: upload: cannot initialise libcurl\n");
		goto out;
	}
	draw(&r, true);
	for (size_t i = 0; i < r.list.n && go_on; i++)
		go_on = send_one(&r, &r.files[i]);
	for (size_t i = 0; i < r.list.n; i++) {
		if (r.files[i].outcome != PENDING)
			continue;
		r.files[i].key[0] = '\0';
		finish(&r, &r.files[i], FAILED, "not sent: the run stopped");
	}
	if (c->wait)
		wait_all(&r);
	clear_progress(&r);
	printf("upload: %zu uploaded, %zu failed (%zu files, %.1f MB in %.2f s; %.1f MB sent)\n",
	       r.finished - (r.failed - walk_failures), r.failed, r.list.n,
	       (double)r.list.total_bytes / 1e6, mono_s() - r.started, (double)r.sent / 1e6);
	status = fflush(stdout) == 0 && r.failed == 0 ? 0 : 1;
out:
	tus_close(r.tus);
	resume_close(r.resume);
	free(r.files);
	walk_list_free(&r.list);
	return status;
}
