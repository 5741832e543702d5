#ifndef CHORUS_INGEST_PIPELINE_H
#define CHORUS_INGEST_PIPELINE_H

#include <stdatomic.h>
#include <stdint.h>

#include "origin/origin.h"
#include "store/store.h"

/*
 * One file's way into the catalog, once its bytes are in memory: probe
 * the tags, settle against what the catalog knows (same bytes: nothing to
 * upload), claim a pending blob, seal its chunks into the origin, flush,
 * and only then commit the track. `chorus ingest` runs it for each file
 * of its walk; a node runs it for each finished upload (uploads/).
 */
struct ingest_worker {
	store_t *store;
	origin_t *origin;
	_Atomic uint64_t *bytes_done; /* progress, counted as chunks go; may be NULL */
	unsigned char *sealed;        /* one sealed chunk */
	struct origin_batch batch;    /* the current track's chunks */
};

/* bytes_done may be NULL. */
void ingest_worker_init(struct ingest_worker *w, store_t *store, origin_t *origin,
			_Atomic uint64_t *bytes_done);
void ingest_worker_free(struct ingest_worker *w);

/*
 * Runs the pipeline for sf (its path names the file in the catalog; its
 * size is data's length) whose SHA-256 is content_hash. 0 with *res (the
 * outcome and the track's id), or -1 with a one-line reason in err ("not
 * an audio file", "cannot write chunk 3 to s3://...: ..."). *counted gets
 * the bytes counted into bytes_done.
 */
int ingest_pipeline(struct ingest_worker *w, const struct store_file *sf, const unsigned char *data,
		    const char content_hash[65], struct store_result *res, uint64_t *counted,
		    char *err, size_t errlen);

#endif
