/*
 * The ingest pipeline.
 *
 * The walk lists the files first (so progress can show an ETA), then a
 * few workers take files off the list. Each file is read into memory once,
 * hashed, probed, split into chunks that are sealed and written to the
 * origin, and committed to the catalog only after its last chunk is
 * durable. Workers block on disk and origin I/O, so there are two per core.
 *
 * Each file then goes through ingest/pipeline.c, which a node's uploads
 * share; its crash safety comes from the store's two ledgers.
 *
 * Every run is recorded in the catalog (store_run_record): its row is
 * written before the walk, beats with the counts so far while the workers
 * go, and is finished after the summary's figures are known; its first
 * failures are written as they happen (store_run_error). A run killed
 * leaves its row unfinished, and its beats stop.
 */
#include "ingest/ingest.h"
#include "ingest/pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto/seal.h"
#include "ingest/probe.h"
#include "ingest/walk.h"
#include "origin/origin.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/text.h"
#include "util/thread.h"
#include "util/xalloc.h"

#define FILE_MAX ((size_t)4 << 30) /* larger files are refused */
#define OPTIMIZE_AFTER 10000       /* tracks added or updated in one run */

struct ingest {
	const struct ingest_opts *opts;
	struct walk_list list;
	store_t *store;
	origin_t *origin;
	struct store_run run; /* this run's record; run.id 0 when it could not be written */
	atomic_size_t next;
	atomic_size_t added, updated, unchanged, failed, files_done;
	atomic_uint_fast64_t bytes_done;
	pthread_mutex_t lock;
	pthread_cond_t done_cond, beat_cond;
	int running;
	bool beating; /* the beat thread goes on (guarded by lock) */
	bool progress_shown;
};

/* A failure line (it clears the progress line first so they do not mix),
 * counted, and among the run's first ones, recorded with the run. */
static void fail(struct ingest *in, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct ingest *in, const char *path, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%schorus: ingest: %s: %s\n", in->opts->progress ? "\r\033[K" : "", path,
		msg);
	n = in->failed++;
	if (in->run.id && n < CATALOG_RUN_ERRORS_MAX &&
	    store_run_error(in->store, in->run.id, (int)n, path, msg) < 0)
		log_warn("ingest: cannot record the failure of %s with the run", path);
}

/* The file's line on stdout, when it is not a terminal (opts.file_lines):
 * "ingest: PATH: RESULT, BYTES bytes, MS ms[: DETAIL]", one write a line
 * so the workers' lines never mix. */
static void file_line(struct ingest *in, const char *path, const char *result, uint64_t bytes,
		      double started, const char *detail)
{
	if (!in->opts->file_lines)
		return;
	flockfile(stdout);
	printf("ingest: %s: %s, %llu bytes, %.0f ms%s%s\n", path, result, (unsigned long long)bytes,
	       started > 0 ? (mono_s() - started) * 1000 : 0.0, detail && *detail ? ": " : "",
	       detail ? detail : "");
	fflush(stdout);
	funlockfile(stdout);
}

/* The walk's failures (walk_list.fail). */
static void walk_failed(void *ud, const char *path, const char *why)
{
	fail(ud, path, "%s", why);
	file_line(ud, path, "failed", 0, 0, why);
}

/* Writes the run's record with the counts so far; finished: as the run's
 * last. A run whose first record failed is not recorded again. 0 or -EIO
 * (warned). */
static int record_run(struct ingest *in, bool finished)
{
	if (!in->run.id)
		return 0;
	in->run.heartbeat_at = wall_ms();
	in->run.finished_at = finished ? in->run.heartbeat_at : 0;
	in->run.added = in->added;
	in->run.updated = in->updated;
	in->run.unchanged = in->unchanged;
	in->run.failed = in->failed;
	if (store_run_record(in->store, &in->run) < 0) {
		log_warn("ingest: cannot record this run in the catalog (see above)");
		return -EIO;
	}
	return 0;
}

/* What a worker keeps between files: buffers that only grow, so a run
 * does not map and unmap a file-sized buffer per file (page faults on
 * fresh memory serialise the threads of a process). */
struct worker {
	struct ingest *in;
	unsigned char *data;
	size_t cap;
	EVP_MD_CTX *md;
	struct ingest_worker pipe;
};

/* Reads the whole file into w->data and hashes it on the way, each piece
 * while it is still in the CPU cache. The size and mtime as read replace
 * the walk's. */
static int read_file(struct worker *w, struct walk_file *wf, char hash[65], char *err,
		     size_t errlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	struct stat st;
	uint64_t done = 0;
	int fd, rc = -1;

	fd = open(wf->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		goto out;
	}
	if ((size_t)st.st_size > FILE_MAX) {
		snprintf(err, errlen, "file too large (%lld bytes)", (long long)st.st_size);
		goto out;
	}
	wf->size = (uint64_t)st.st_size;
	wf->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	if (wf->size + 1 > w->cap) {
		free(w->data);
		w->cap = wf->size + 1 + (wf->size >> 3);
		w->data = xmalloc(w->cap);
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	EVP_DigestInit_ex(w->md, EVP_sha256(), NULL);
	while (done < wf->size) {
		size_t want = wf->size - done < CHUNK_SIZE_DEFAULT ? (size_t)(wf->size - done)
								   : CHUNK_SIZE_DEFAULT;
		int r = fs_read_full(fd, w->data + done, want);
		if (r < 0) {
			snprintf(err, errlen, "read error: %s",
				 r == -EIO ? "file shrank while read" : strerror(-r));
			goto out;
		}
		EVP_DigestUpdate(w->md, w->data + done, want);
		done += want;
	}
	EVP_DigestFinal_ex(w->md, md, NULL);
	text_hex(md, 32, hash);
	rc = 0;
out:
	close(fd);
	return rc;
}

static void ingest_one(struct worker *w, struct walk_file *wf)
{
	struct ingest *in = w->in;
	struct store_file sf;
	struct store_result res;
	char hash[65], err[512], detail[600] = "";
	uint64_t walked_size = wf->size, counted = 0;
	double started = mono_s();

	sf = (struct store_file){wf->path, wf->size, wf->mtime_ns};
	if (store_file_unchanged(in->store, &sf)) {
		in->unchanged++;
		in->bytes_done += wf->size;
		file_line(in, wf->path, "unchanged", wf->size, started, NULL);
		return;
	}
	if (read_file(w, wf, hash, err, sizeof(err)) < 0)
		goto failed;
	sf = (struct store_file){wf->path, wf->size, wf->mtime_ns};
	if (ingest_pipeline(&w->pipe, &sf, w->data, hash, &res, &counted, err, sizeof(err)) < 0)
		goto failed;
	switch (res.outcome) {
	case STORE_ADDED:
		in->added++;
		file_line(in, wf->path, "added", wf->size, started, NULL);
		break;
	case STORE_UPDATED:
		in->updated++;
		file_line(in, wf->path, "updated", wf->size, started, NULL);
		break;
	case STORE_DUPLICATE:
		log_debug("ingest: %s: same audio as %s", wf->path, res.other_path);
		in->unchanged++;
		snprintf(detail, sizeof(detail), "same audio as %s", res.other_path);
		file_line(in, wf->path, "duplicate", wf->size, started, detail);
		break;
	default:
		in->unchanged++;
		file_line(in, wf->path, "unchanged", wf->size, started, NULL);
		break;
	}
	goto out;
failed:
	fail(in, wf->path, "%s", err);
	file_line(in, wf->path, "failed", wf->size, started, err);
out:
	/* Whatever happened, this file's bytes are behind us for the ETA. */
	if (walked_size > counted)
		in->bytes_done += walked_size - counted;
}

static void *worker_main(void *arg)
{
	struct ingest *in = arg;
	struct worker w = {.in = in};
	size_t i;

	w.md = EVP_MD_CTX_new();
	if (!w.md)
		die("out of memory");
	ingest_worker_init(&w.pipe, in->store, in->origin, &in->bytes_done);
	while ((i = in->next++) < in->list.n) {
		ingest_one(&w, &in->list.files[i]);
		in->files_done++;
	}
	free(w.data);
	ingest_worker_free(&w.pipe);
	EVP_MD_CTX_free(w.md);
	pthread_mutex_lock(&in->lock);
	in->running--;
	pthread_cond_signal(&in->done_cond);
	pthread_mutex_unlock(&in->lock);
	return NULL;
}

/* Beats the run's record every CATALOG_RUN_HEARTBEAT_MS until beating is
 * cleared: a thread of its own, because the walk, the garbage sweeps and
 * the search index's merge run on the main thread for as long as they
 * take, and a run that goes quiet for CATALOG_RUN_STALE_MS reads as dead. */
static void *beat_main(void *arg)
{
	struct ingest *in = arg;

	pthread_mutex_lock(&in->lock);
	while (in->beating) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += CATALOG_RUN_HEARTBEAT_MS / 1000;
		if (pthread_cond_timedwait(&in->beat_cond, &in->lock, &ts) == ETIMEDOUT &&
		    in->beating) {
			pthread_mutex_unlock(&in->lock);
			record_run(in, false);
			pthread_mutex_lock(&in->lock);
		}
	}
	pthread_mutex_unlock(&in->lock);
	return NULL;
}

static void show_progress(struct ingest *in, double started)
{
	double el = mono_s() - started;
	uint64_t done = in->bytes_done, total = in->list.total_bytes;
	double rate = el > 0 ? (double)done / el : 0;
	char eta[32] = "--:--";

	if (rate > 0 && total >= done) {
		long s = (long)((double)(total - done) / rate);
		snprintf(eta, sizeof(eta), "%ld:%02ld", s / 60, s % 60);
	}
	fprintf(stderr, "\r\033[K%zu/%zu files  %.1f MB/s  ETA %s", (size_t)in->files_done,
		in->list.n, rate / 1e6, eta);
	in->progress_shown = true;
}

static int larger_first(const void *a, const void *b)
{
	const struct walk_file *x = a, *y = b;

	if (x->size != y->size)
		return x->size < y->size ? 1 : -1;
	return strcmp(x->path, y->path);
}

int ingest_run(const struct ingest_opts *opts, char *const *paths, int npaths)
{
	struct ingest in = {.opts = opts};
	pthread_t *threads = NULL;
	char path[4096], err[512];
	double started = mono_s();
	pthread_t beat;
	bool beat_started = false;
	int lockfd = -1, jobs, status = 1;

	pthread_mutex_init(&in.lock, NULL);
	pthread_cond_init(&in.done_cond, NULL);
	pthread_cond_init(&in.beat_cond, NULL);
	probe_log_setup();
	if (fs_mkdir_p(opts->data_dir, 0750) < 0) {
		fprintf(stderr, "chorus: cannot create data directory %s: %s\n", opts->data_dir,
			strerror(errno));
		goto out;
	}
	/* One ingest at a time per data directory: the pending ledger is
	 * swept at the end of a run, which is only safe with no other run. */
	snprintf(path, sizeof(path), "%s/ingest.lock", opts->data_dir);
	lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, "chorus: ingest: %s: %s\n", path,
			errno == EWOULDBLOCK ? "another ingest is running on this data directory"
					     : strerror(errno));
		goto out;
	}
	if (store_open(opts->data_dir, opts->db, &in.store, err, sizeof(err)) < 0 ||
	    origin_open(opts->origin, opts->data_dir, &in.origin, err, sizeof(err)) < 0) {
		fprintf(stderr, "chorus: %s\n", err);
		goto out;
	}
	/* The run's row first: a run that dies from here on leaves it
	 * unfinished. Recording is not the run's purpose, so a failure to
	 * write it is a warning, and the files are ingested all the same. */
	in.run.id = catalog_random_id();
	in.run.started_at = wall_ms();
	if (gethostname(in.run.host, sizeof(in.run.host) - 1) < 0)
		snprintf(in.run.host, sizeof(in.run.host), "unknown");
	if (record_run(&in, false) < 0)
		in.run.id = 0;
	in.beating = true;
	if (thread_start(&beat, beat_main, &in) != 0)
		die("cannot start the ingest's beat thread");
	beat_started = true;
	store_collect_garbage(in.store, in.origin, false);

	in.list.fail = walk_failed;
	in.list.ud = &in;
	for (int i = 0; i < npaths; i++)
		walk_path(paths[i], &in.list);
	/* Largest files first: the workers then finish together instead of
	 * one of them ending the run alone on a big file picked up last. */
	if (in.list.n > 1)
		qsort(in.list.files, in.list.n, sizeof(*in.list.files), larger_first);

	jobs = opts->jobs > 0 ? opts->jobs : 2 * (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (jobs < 1)
		jobs = 1;
	if ((size_t)jobs > in.list.n)
		jobs = in.list.n ? (int)in.list.n : 1;
	threads = xcalloc((size_t)jobs, sizeof(*threads));
	in.running = jobs;
	for (int i = 0; i < jobs; i++)
		if (thread_start(&threads[i], worker_main, &in) != 0)
			die("cannot start ingest threads");

	pthread_mutex_lock(&in.lock);
	while (in.running > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&in.done_cond, &in.lock, &ts);
		if (opts->progress && in.running > 0) {
			pthread_mutex_unlock(&in.lock);
			show_progress(&in, started);
			pthread_mutex_lock(&in.lock);
		}
	}
	pthread_mutex_unlock(&in.lock);
	for (int i = 0; i < jobs; i++)
		pthread_join(threads[i], NULL);
	if (in.progress_shown)
		fprintf(stderr, "\r\033[K");

	store_collect_garbage(in.store, in.origin, true);
	/* Many new rows leave the search index in many segments. */
	if (in.added + in.updated >= OPTIMIZE_AFTER)
		store_search_optimize(in.store);
	{
		double el = mono_s() - started;
		printf("ingest: %zu added, %zu updated, %zu unchanged, %zu failed"
		       " (%zu files, %.1f MB in %.2f s)\n",
		       (size_t)in.added, (size_t)in.updated, (size_t)in.unchanged,
		       (size_t)in.failed, in.list.n, (double)in.list.total_bytes / 1e6, el);
		fflush(stdout);
	}
	status = in.failed ? 1 : 0;
out:
	if (beat_started) {
		pthread_mutex_lock(&in.lock);
		in.beating = false;
		pthread_cond_signal(&in.beat_cond);
		pthread_mutex_unlock(&in.lock);
		pthread_join(beat, NULL);
		record_run(&in, true);
	}
	pthread_mutex_destroy(&in.lock);
	pthread_cond_destroy(&in.done_cond);
	pthread_cond_destroy(&in.beat_cond);
	free(threads);
	walk_list_free(&in.list);
	origin_close(in.origin);
	store_close(in.store);
	if (lockfd >= 0)
		close(lockfd);
	return status;
}
