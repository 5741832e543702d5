/*
 * The store's public calls: dispatch to the implementation, and the one
 * garbage sweep both share (the origin part is the same whatever holds the
 * ledger).
 */
#include "store/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

int store_open(const char *data_dir, const char *conninfo, store_t **out, char *err,
	       size_t errlen)
{
	if (conninfo && *conninfo)
		return store_pg_open(conninfo, out, err, errlen);
	return store_sqlite_open(data_dir, out, err, errlen);
}

void store_close(store_t *s)
{
	if (s)
		s->ops->close(s);
}

bool store_file_unchanged(store_t *s, const struct store_file *f)
{
	return s->ops->file_unchanged(s, f);
}

int store_settle(store_t *s, const struct store_file *f, const char *content_hash,
		 struct store_result *res)
{
	return s->ops->settle(s, f, content_hash, res);
}

int store_pending_claim(store_t *s, struct manifest *m, bool *reused)
{
	return s->ops->pending_claim(s, m, reused);
}

int store_pending_abandon(store_t *s, const struct manifest *m)
{
	return s->ops->pending_abandon(s, m);
}

int store_commit_track(store_t *s, const struct store_file *f, const struct track_meta *meta,
		       const struct manifest *m, struct store_result *res)
{
	return s->ops->commit_track(s, f, meta, m, res);
}

int store_search_optimize(store_t *s)
{
	return s->ops->search_optimize ? s->ops->search_optimize(s) : 0;
}

int store_collect_garbage(store_t *s, origin_t *o, bool include_pending)
{
	char (*blobs)[BLOB_ID_LEN + 1] = NULL;
	uint32_t *counts = NULL;
	size_t n = 0;
	int rc;

	rc = s->ops->garbage_list(s, include_pending, &blobs, &counts, &n);
	/* The origin is slow; the ledger is not locked meanwhile. A blob is
	 * forgotten only once all its chunks are gone. */
	for (size_t i = 0; i < n; i++) {
		int err = 0;
		for (uint32_t c = 0; c < counts[i] && !err; c++) {
			char key[ORIGIN_KEY_MAX];
			origin_chunk_key(blobs[i], c, key);
			err = origin_remove(o, key);
		}
		if (err) {
			log_warn("ingest: cannot remove blob %s from %s: %s", blobs[i], o->desc,
				 strerror(-err));
			rc = err;
			continue;
		}
		if (s->ops->garbage_forget(s, blobs[i]) < 0)
			rc = -EIO;
	}
	free(blobs);
	free(counts);
	return rc;
}
