/*
 * The per-file pipeline (pipeline.h), shared by `chorus ingest` and the
 * node's uploads.
 *
 * Crash safety comes from the store's two ledgers: a blob is recorded as
 * pending before its first chunk is written, so a run killed at any moment
 * leaves chunks the next run either reuses (same bytes: the pending row
 * gives back the key, and chunks with the right size are kept) or removes.
 */
#include "ingest/pipeline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/seal.h"
#include "ingest/probe.h"
#include "util/xalloc.h"

void ingest_worker_init(struct ingest_worker *w, store_t *store, origin_t *origin,
			_Atomic uint64_t *bytes_done)
{
	memset(w, 0, sizeof(*w));
	w->store = store;
	w->origin = origin;
	w->bytes_done = bytes_done;
	w->sealed = xmalloc(CHUNK_SIZE_DEFAULT + SEAL_TAG_LEN);
}

void ingest_worker_free(struct ingest_worker *w)
{
	origin_batch_free(&w->batch);
	free(w->sealed);
	w->sealed = NULL;
}

static void count(struct ingest_worker *w, uint64_t n, uint64_t *counted)
{
	if (w->bytes_done)
		*w->bytes_done += n;
	*counted += n;
}

/* Seals and writes every chunk not already in the origin. */
static int upload(struct ingest_worker *w, const unsigned char *data, const struct manifest *m,
		  bool reused, uint64_t *counted, char *err, size_t errlen)
{
	int rc = 0;

	for (uint32_t i = 0; i < m->chunk_count && rc == 0; i++) {
		uint32_t len = manifest_chunk_len(m, i);
		char key[ORIGIN_KEY_MAX];
		uint64_t have;

		origin_chunk_key(m->blob, i, key);
		/* A crashed run's chunk at its final name with the right size
		 * is whole and, same key and index, byte for byte what we
		 * would write (a batched put cut short by a crash before its
		 * flush can leave a short file: that one is written again). */
		if (reused && origin_size(w->origin, key, &have) == 0 &&
		    have == (uint64_t)len + SEAL_TAG_LEN) {
			count(w, len, counted);
			continue;
		}
		rc = seal_chunk(m->key, i, data + manifest_chunk_offset(m, i), len, w->sealed);
		if (rc == 0)
			rc = origin_put_batch(w->origin, &w->batch, key, w->sealed,
					      len + SEAL_TAG_LEN);
		if (rc < 0)
			snprintf(err, errlen, "cannot write chunk %u to %s: %s", i, w->origin->desc,
				 strerror(-rc));
		count(w, len, counted);
	}
	/* Every chunk durable before the catalog may name it. */
	if (rc == 0 && (rc = origin_flush(w->origin, &w->batch)) < 0)
		snprintf(err, errlen, "cannot flush chunks to %s: %s", w->origin->desc,
			 strerror(-rc));
	origin_batch_free(&w->batch);
	return rc;
}

int ingest_pipeline(struct ingest_worker *w, const struct store_file *sf, const unsigned char *data,
		    const char content_hash[65], struct store_result *res, uint64_t *counted,
		    char *err, size_t errlen)
{
	struct track_meta meta = {0};
	struct manifest m = {0};
	bool reused;
	int rc = -1;

	*counted = 0;
	if (probe_file(sf->path, data, sf->size, &meta, err, errlen) < 0)
		goto out;
	memcpy(m.content_hash, content_hash, 65);
	m.size = sf->size;
	m.chunk_size = CHUNK_SIZE_DEFAULT;
	m.chunk_count = manifest_chunk_count(m.size, m.chunk_size);

	if (store_settle(w->store, sf, m.content_hash, res) < 0) {
		snprintf(err, errlen, "catalog error (see the log)");
		goto out;
	}
	if (res->outcome != STORE_NEW) {
		rc = 0;
		goto out;
	}
	if (store_pending_claim(w->store, &m, &reused) < 0) {
		snprintf(err, errlen, "catalog error (see the log)");
		goto out;
	}
	if (upload(w, data, &m, reused, counted, err, errlen) < 0) {
		store_pending_abandon(w->store, &m);
		goto out;
	}
	if (store_commit_track(w->store, sf, &meta, &m, res) < 0) {
		snprintf(err, errlen, "catalog error (see the log)");
		store_pending_abandon(w->store, &m);
		goto out;
	}
	rc = 0;
out:
	track_meta_free(&meta);
	return rc;
}
