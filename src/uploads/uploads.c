/*
 * Uploads on a node (uploads.h): parts in the origin, ingests of finished
 * uploads and the sweep, all on the worker pool.
 *
 * A part is sealed under a key of its own (a part may be written again at
 * the same position after a failed commit, and a key must never seal two
 * plaintexts) and named u/ID/RANDOM, its row written before it so that an
 * object whose commit never came is still found: an upload removed, done
 * or expired takes every object its rows name.
 *
 * A finished upload's ingest claims the row first (so one node does it,
 * and another takes it on if that one stops beating), reads its parts
 * back in order into memory, and runs the pipeline on the whole: one file,
 * or each file of an archive. On one node it also takes DATA/ingest.lock,
 * as `chorus ingest` does (the end of a run declares every pending blob
 * garbage, which is only safe with no other writer); while a run holds
 * it, the upload waits queued for the next sweep.
 */
#include "uploads/uploads.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <unistd.h>

#include "crypto/seal.h"
#include "ingest/pipeline.h"
#include "store/store.h"
#include "uploads/archive.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/text.h"
#include "util/thread.h"
#include "util/xalloc.h"

#define SWEEP_MS 5000
#define STALE_MS 60000                            /* an ingest with no beat for this long is dead */
#define FORGET_MS ((int64_t)7 * 24 * 3600 * 1000) /* finished uploads are shown for a week */
#define SWEEP_BATCH 100
#define ARCHIVE_ENTRIES 1000

struct uploads {
	struct uploads_config cfg;
	char data_dir[4096], node[128];
	char *db;
	upload_store_t *rows;
	store_t *store;
	pthread_t ticker;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
	atomic_bool sweeping;
	_Atomic uint64_t bytes, parts, ingested, failed;
	pthread_mutex_t open_lock; /* connect_stores */
	int warned;                /* under open_lock */
	atomic_bool connected;     /* rows and store both open */
};

void uploads_get_stats(uploads_t *u, struct uploads_stats *out)
{
	out->bytes = atomic_load(&u->bytes);
	out->parts = atomic_load(&u->parts);
	out->ingested = atomic_load(&u->ingested);
	out->failed = atomic_load(&u->failed);
}

void uploads_count_commit(uploads_t *u, size_t parts, uint64_t bytes)
{
	atomic_fetch_add(&u->parts, parts);
	atomic_fetch_add(&u->bytes, bytes);
}

const struct uploads_config *uploads_config(const uploads_t *u)
{
	return &u->cfg;
}

/*
 * The connections, opened at the start or, on a cluster node that
 * started while PostgreSQL was down, at the first use after it answers
 * (as the principals' store is): a node serves without its database.
 */
static void connect_stores(uploads_t *u)
{
	char err[512];

	pthread_mutex_lock(&u->open_lock);
	/* Warned once: the sweep asks again every few seconds. */
	if (!u->rows && upload_store_open(u->data_dir, u->db, &u->rows, err, sizeof(err)) < 0 &&
	    !u->warned++)
		log_warn("uploads: none can be taken until the database answers: %s", err);
	if (u->rows && !u->store &&
	    store_open(u->data_dir, u->db, &u->store, err, sizeof(err)) < 0 && !u->warned++)
		log_warn("uploads: finished uploads wait until the database answers: %s", err);
	pthread_mutex_unlock(&u->open_lock);
}

static upload_store_t *rows(uploads_t *u)
{
	if (!atomic_load(&u->connected)) {
		connect_stores(u);
		atomic_store(&u->connected, u->rows && u->store);
	}
	return u->rows;
}

upload_store_t *uploads_store(uploads_t *u)
{
	return rows(u);
}

/* ---- parts ---- */

int uploads_put_part(uploads_t *u, const char *id, uint64_t pos, const void *data, size_t len,
		     struct upload_part *out, char *err, size_t errlen)
{
	unsigned char r[8];
	char hex[17];
	void *sealed;
	int rc;

	memset(out, 0, sizeof(*out));
	crypto_random(r, sizeof(r));
	text_hex(r, sizeof(r), hex);
	snprintf(out->object, sizeof(out->object), "u/%s/%s", id, hex);
	out->pos = pos;
	out->len = len;
	crypto_random(out->key, sizeof(out->key));
	if ((rc = upload_store_part_begin(rows(u), id, out)) < 0) {
		snprintf(err, errlen, "the catalog cannot record the part (see the log)");
		return rc;
	}
	sealed = xmalloc(len + SEAL_TAG_LEN);
	rc = seal_chunk(out->key, 0, data, len, sealed);
	if (rc == 0)
		rc = origin_put(u->cfg.origin, out->object, sealed, len + SEAL_TAG_LEN);
	free(sealed);
	if (rc < 0) {
		snprintf(err, errlen, "cannot store the part in %s: %s", u->cfg.origin->desc,
			 strerror(-rc));
		uploads_drop_parts(u, out, 1);
	}
	return rc;
}

void uploads_drop_parts(uploads_t *u, const struct upload_part *parts, size_t n)
{
	size_t gone = 0;

	for (; gone < n; gone++) {
		int rc = origin_remove(u->cfg.origin, parts[gone].object);
		if (rc < 0) {
			log_warn("uploads: cannot remove %s from %s: %s (the sweep tries again)",
				 parts[gone].object, u->cfg.origin->desc, strerror(-rc));
			break;
		}
	}
	/* Only the rows whose objects are gone: the rest stay findable. */
	upload_store_parts_forget(rows(u), parts, gone);
}

int uploads_remove(uploads_t *u, const char *id)
{
	struct upload_part *parts;
	size_t n;
	int rc = upload_store_parts(rows(u), id, false, &parts, &n);

	if (rc == 0) {
		uploads_drop_parts(u, parts, n);
		free(parts);
		rc = upload_store_remove(rows(u), id);
	}
	return rc;
}

/* ---- the ingest of a finished upload ---- */

struct ingest_job {
	uploads_t *u;
	char id[UPLOAD_ID_LEN + 1];
};

/* What one upload's ingest made so far. */
struct outcome {
	uploads_t *u;
	const struct upload_row *row;
	struct ingest_worker w;
	char tracks[UPLOAD_TRACKS_MAX + 1];
	char errors[UPLOAD_ERROR_MAX + 1];
	int made, failed;
	bool archive;
};

static void note_error(struct outcome *o, const char *name, const char *why)
{
	size_t len = strlen(o->errors);

	o->failed++;
	/* The first failures, as many as fit; the count says if more came. */
	if (len < sizeof(o->errors) - 1 &&
	    snprintf(o->errors + len, sizeof(o->errors) - len, "%s%s: %s", len ? "; " : "", name,
		     why) >= (int)(sizeof(o->errors) - len))
		o->errors[sizeof(o->errors) - 1] = '\0';
}

/* What an album's archive holds beside its audio, passed over quietly. */
static bool companion(const char *name)
{
	static const char *const ext[] = {".jpg", ".jpeg", ".png",     ".gif",     ".bmp",  ".txt",
					  ".nfo", ".cue",  ".log",     ".m3u",     ".m3u8", ".pdf",
					  ".sfv", ".md5",  ".accurip", ".ds_store"};
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < sizeof(ext) / sizeof(ext[0]); i++)
		if (strcasecmp(dot, ext[i]) == 0)
			return true;
	return false;
}

/* One file of the upload through the pipeline. */
static int ingest_file(void *ud, const char *name, const unsigned char *data, size_t len)
{
	struct outcome *o = ud;
	char path[UPLOAD_FILENAME_MAX * 2 + 64], hash[65], err[512];
	struct store_file sf;
	struct store_result res;
	uint64_t counted;

	if (o->archive && companion(name))
		return 0;
	if (o->row->filename[0] && strcmp(name, o->row->filename) != 0)
		snprintf(path, sizeof(path), "upload:%s/%s/%s", o->row->id, o->row->filename, name);
	else
		snprintf(path, sizeof(path), "upload:%s/%s", o->row->id, name);
	sf = (struct store_file){path, len, o->row->created_at * 1000000};
	crypto_sha256_hex(data, len, hash);
	upload_store_beat(rows(o->u), o->row->id, o->u->node, wall_ms());
	if (ingest_pipeline(&o->w, &sf, data, hash, &res, &counted, err, sizeof(err)) < 0) {
		note_error(o, name, err);
		return 0;
	}
	size_t tl = strlen(o->tracks);
	if (tl + 18 < sizeof(o->tracks))
		snprintf(o->tracks + tl, sizeof(o->tracks) - tl, "%s%016llx", tl ? " " : "",
			 (unsigned long long)res.track_id);
	o->made++;
	log_info("uploads: %s: %s: track %016llx (%s)", o->row->id, name,
		 (unsigned long long)res.track_id,
		 res.outcome == STORE_ADDED     ? "added"
		 : res.outcome == STORE_UPDATED ? "updated"
						: "already in the catalog");
	return 0;
}

/* The upload's bytes, read back from its committed parts: malloc'd, or
 * NULL with err. */
static unsigned char *assemble(uploads_t *u, const struct upload_row *row,
			       struct upload_part **parts, size_t *nparts, char *err, size_t errlen)
{
	unsigned char *data;
	uint64_t at = 0;

	if (upload_store_parts(rows(u), row->id, true, parts, nparts) < 0) {
		snprintf(err, errlen, "the catalog cannot list the parts (see the log)");
		return NULL;
	}
	data = malloc(row->length ? row->length : 1);
	if (!data) {
		snprintf(err, errlen, "out of memory for %llu bytes",
			 (unsigned long long)row->length);
		return NULL;
	}
	for (size_t i = 0; i < *nparts; i++) {
		const struct upload_part *p = &(*parts)[i];
		char *sealed = NULL;
		size_t len = 0;
		int rc;

		if (p->pos != at || p->pos + p->len > row->length) {
			snprintf(err, errlen, "the parts do not cover the upload (at byte %llu)",
				 (unsigned long long)at);
			goto fail;
		}
		rc = origin_get(u->cfg.origin, p->object, &sealed, &len);
		if (rc == 0 && len != p->len + SEAL_TAG_LEN)
			rc = -EIO;
		if (rc == 0)
			rc = seal_open(p->key, 0, sealed, len, data + at);
		free(sealed);
		if (rc < 0) {
			snprintf(err, errlen, "cannot read part %s back from %s: %s", p->object,
				 u->cfg.origin->desc, strerror(-rc));
			goto fail;
		}
		at += p->len;
	}
	if (at != row->length) {
		snprintf(err, errlen, "the parts end at byte %llu of %llu", (unsigned long long)at,
			 (unsigned long long)row->length);
		goto fail;
	}
	return data;
fail:
	free(data);
	return NULL;
}

static void ingest_upload(uploads_t *u, const char *id)
{
	struct upload_row *row = xmalloc(sizeof(*row));
	struct outcome *o = xcalloc(1, sizeof(*o));
	struct upload_part *parts = NULL;
	size_t nparts = 0;
	unsigned char *data = NULL;
	char err[512], path[4200];
	int lockfd = -1, taken;

	if (!rows(u) || !atomic_load(&u->connected))
		goto out; /* queued still: the database is away */
	if (!u->db) {
		snprintf(path, sizeof(path), "%s/ingest.lock", u->data_dir);
		lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
			log_debug("uploads: %s waits: an ingest holds %s", id, path);
			goto out; /* queued still: the sweep comes back */
		}
	}
	taken = upload_store_claim(rows(u), id, u->node, wall_ms(), STALE_MS);
	if (taken <= 0 || upload_store_get(rows(u), id, row) < 0)
		goto out;
	o->u = u;
	o->row = row;
	data = assemble(u, row, &parts, &nparts, err, sizeof(err));
	if (!data) {
		note_error(o, row->filename, err);
	} else {
		ingest_worker_init(&o->w, u->store, u->cfg.origin, NULL);
		if (archive_sniff(data, row->length)) {
			struct archive_limits lim = {ARCHIVE_ENTRIES, 2 * u->cfg.max_size,
						     u->cfg.max_size};
			o->archive = true;
			if (archive_each(data, row->length, &lim, ingest_file, o, err,
					 sizeof(err)) < 0)
				note_error(o, row->filename, err);
			else if (!o->made && !o->failed)
				note_error(o, row->filename, "the archive holds no file");
		} else {
			ingest_file(o, row->filename, data, row->length);
		}
		ingest_worker_free(&o->w);
	}
	free(data);
	/* The bytes are in the catalog's chunks now, or refused: either way
	 * the parts go, and a file that is not audio leaves nothing. Every
	 * part: one whose commit never came (its node was killed between
	 * the put and the commit) is named by its row too. */
	free(parts);
	parts = NULL;
	if (upload_store_parts(rows(u), id, false, &parts, &nparts) == 0)
		uploads_drop_parts(u, parts, nparts);
	atomic_fetch_add(o->made > 0 ? &u->ingested : &u->failed, 1);
	if (upload_store_finish(rows(u), id, o->made > 0, o->tracks, o->errors, wall_ms()) < 0)
		log_warn("uploads: %s: cannot record the outcome (the sweep tries again)", id);
	else
		log_info("uploads: %s (%s): %d tracks, %d failures%s%s", id, row->filename, o->made,
			 o->failed, o->failed ? ": " : "", o->errors);
out:
	if (lockfd >= 0)
		close(lockfd);
	free(parts);
	free(o);
	free(row);
}

static void ingest_work(void *arg)
{
	struct ingest_job *j = arg;

	ingest_upload(j->u, j->id);
	free(j);
}

void uploads_kick(uploads_t *u, const char *id)
{
	struct ingest_job *j = xcalloc(1, sizeof(*j));

	j->u = u;
	snprintf(j->id, sizeof(j->id), "%s", id);
	if (pool_submit(u->cfg.pool, NULL, POOL_SLOW, ingest_work, NULL, j) < 0) {
		free(j); /* the sweep finds it queued */
		return;
	}
}

/* ---- the sweep ---- */

static void sweep_work(void *arg)
{
	uploads_t *u = arg;
	struct upload_due d;
	int64_t now = wall_ms();

	if (upload_store_due(rows(u), now, STALE_MS, now - FORGET_MS, SWEEP_BATCH, &d) == 0) {
		for (size_t i = 0; i < d.ningest; i++)
			ingest_upload(u, d.ingest[i]);
		for (size_t i = 0; i < d.nexpired; i++) {
			log_info("uploads: %s expired unfinished; removed", d.expired[i]);
			uploads_remove(u, d.expired[i]);
		}
		for (size_t i = 0; i < d.nforget; i++)
			uploads_remove(u, d.forget[i]);
	}
	upload_due_free(&d);
	atomic_store(&u->sweeping, false);
}

static void *ticker_main(void *arg)
{
	uploads_t *u = arg;
	int64_t every = u->cfg.expire_ms / 4 < SWEEP_MS ? u->cfg.expire_ms / 4 : SWEEP_MS;

	if (every < 250)
		every = 250;
	pthread_mutex_lock(&u->lock);
	while (!u->stopping) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += every / 1000;
		ts.tv_nsec += (every % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&u->cond, &u->lock, &ts);
		if (u->stopping || atomic_exchange(&u->sweeping, true))
			continue;
		if (pool_submit(u->cfg.pool, NULL, POOL_SLOW, sweep_work, NULL, u) < 0)
			atomic_store(&u->sweeping, false);
	}
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

int uploads_open(const struct uploads_config *cfg, uploads_t **out, char *err, size_t errlen)
{
	uploads_t *u = xcalloc(1, sizeof(*u));

	u->cfg = *cfg;
	snprintf(u->data_dir, sizeof(u->data_dir), "%s", cfg->data_dir);
	if (cfg->node) {
		snprintf(u->node, sizeof(u->node), "%s", cfg->node);
	} else {
		/* Claims name the process: a restarted node is another one. */
		char host[64] = "host";
		unsigned char r[4];
		char hex[9];
		gethostname(host, sizeof(host) - 1);
		crypto_random(r, sizeof(r));
		text_hex(r, sizeof(r), hex);
		snprintf(u->node, sizeof(u->node), "%s/%d/%s", host, (int)getpid(), hex);
	}
	u->db = cfg->db ? xstrdup(cfg->db) : NULL;
	u->cfg.data_dir = u->data_dir;
	u->cfg.node = u->node;
	u->cfg.db = u->db;
	pthread_mutex_init(&u->lock, NULL);
	pthread_mutex_init(&u->open_lock, NULL);
	/* Without a database (PostgreSQL down at a cluster node's start),
	 * later; one node's own catalog.db must open now. */
	if (!rows(u) && !u->db) {
		snprintf(err, errlen, "cannot open %s/catalog.db for uploads (see the log)",
			 u->data_dir);
		pthread_mutex_destroy(&u->lock);
		pthread_mutex_destroy(&u->open_lock);
		free(u);
		return -EIO;
	}
	pthread_cond_init(&u->cond, NULL);
	if (thread_start(&u->ticker, ticker_main, u) != 0)
		die("cannot start the uploads' sweep");
	*out = u;
	return 0;
}

void uploads_close(uploads_t *u)
{
	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	u->stopping = true;
	pthread_cond_signal(&u->cond);
	pthread_mutex_unlock(&u->lock);
	pthread_join(u->ticker, NULL);
	store_close(u->store);
	upload_store_close(u->rows);
	pthread_mutex_destroy(&u->lock);
	pthread_mutex_destroy(&u->open_lock);
	pthread_cond_destroy(&u->cond);
	free(u->db);
	free(u);
}
