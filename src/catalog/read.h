#ifndef CHORUS_CATALOG_READ_H
#define CHORUS_CATALOG_READ_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sqlite3.h>

#include "auth/auth.h"
#include "catalog/model.h"
#include "util/buf.h"

struct json; /* util/json.h */

/*
 * The catalog read side behind GET /api/v1/...: JSON bodies, covers and
 * stream manifests, answered from the local SQLite file.
 *
 * A reader is one read-only SQLite connection with its statements prepared
 * once. Use one per event-loop thread and never share it between threads
 * (the connection is opened without a mutex). Every call runs in its own
 * read transaction, so a body is one consistent snapshot even while ingest
 * or the replicator commits, and no transaction stays open between calls
 * (an idle reader never holds back WAL checkpoints).
 *
 * Functions return an HTTP status: 200 with the body appended to out, 404
 * when the id does not exist, 500 on a database error or when the body
 * would pass out's cap (logged). On 404 and 500 out is left as it was; the
 * caller formats the error. Callers validate limit (1..500) and offset
 * (>= 0); a negative one is a 500 here (SQLite would read LIMIT -1 as "all").
 * Ids are the int64 from catalog_id_parse.
 *
 * JSON shapes (ids are 16 lower-case hex digits; unknown values are null):
 *   artist: id, name, album_count, track_count
 *   album:  id, title, artist, artist_id, year, track_count, duration_ms,
 *           cover_url
 *   track:  id, title, artist, artist_id, album, album_id, album_artist,
 *           track_number, disc_number, year, genre, isrc, label, duration_ms,
 *           codec, mime_type, bitrate, sample_rate, channels, size_bytes,
 *           stream_url, etag
 *   lists:  {"artists"|"albums"|"tracks":[...],"total":N,"limit":L,"offset":O}
 */
typedef struct catalog_reader catalog_reader_t;

/* 0, or a negative errno with a message in err (no such file, not a chorus
 * catalog, a schema version this binary does not read). */
int catalog_reader_open(const char *db_path, catalog_reader_t **out, char *err, size_t errlen);
void catalog_reader_close(catalog_reader_t *r);

/* Artists by name (case-insensitive), then id. */
int catalog_json_artists(catalog_reader_t *r, int64_t limit, int64_t offset, buf_t *out);
/* One artist plus "albums": the albums it is the album artist of, by year
 * (unknown years last), then title. */
int catalog_json_artist(catalog_reader_t *r, int64_t id, buf_t *out);
/* Albums by title (case-insensitive), then id. */
int catalog_json_albums(catalog_reader_t *r, int64_t limit, int64_t offset, buf_t *out);
/* One album plus "tracks" by disc, track number (unknown numbers last),
 * then title. */
int catalog_json_album(catalog_reader_t *r, int64_t id, buf_t *out);
/* Tracks by title (case-insensitive), then id. */
int catalog_json_tracks(catalog_reader_t *r, int64_t limit, int64_t offset, buf_t *out);
int catalog_json_track(catalog_reader_t *r, int64_t id, buf_t *out);

/* An album's cover: 200 with the image bytes appended to out and its MIME
 * type copied into mime, 404 when the album has no cover or does not
 * exist, 500 on error (including mime or out too small). */
int catalog_cover(catalog_reader_t *r, int64_t album_id, buf_t *out, char *mime, size_t mimelen);

/* What streaming a track needs: its manifest and MIME type. */
struct catalog_stream {
	int64_t id;
	uint64_t size;
	uint32_t chunk_size, chunk_count;
	uint8_t key[SEAL_KEY_LEN];
	char blob[BLOB_ID_LEN + 1];
	char content_hash[65]; /* also the strong ETag */
	char mime_type[64];
	int64_t duration_ms; /* 0 when unknown */
};

/* 200 with *out filled, 404 for an unknown track, 500 on error (including
 * a row whose manifest is malformed). */
int catalog_stream_info(catalog_reader_t *r, int64_t track_id, struct catalog_stream *out);
/* The same, found by the blob its chunks are stored under (peer requests
 * name chunks, not tracks). */
int catalog_stream_info_blob(catalog_reader_t *r, const char *blob, struct catalog_stream *out);

/* The manifest part, for the chunk arithmetic in catalog/model.h. */
static inline void catalog_stream_manifest(const struct catalog_stream *s, struct manifest *m)
{
	m->size = s->size;
	m->chunk_size = s->chunk_size;
	m->chunk_count = s->chunk_count;
	memcpy(m->key, s->key, sizeof(m->key));
	memcpy(m->blob, s->blob, sizeof(m->blob));
	memcpy(m->content_hash, s->content_hash, sizeof(m->content_hash));
}

/*
 * A number that changes whenever another connection committed to the
 * catalog since the last call (SQLite's data_version): answers rendered
 * before a change can be kept until it moves. -1 on error.
 */
int64_t catalog_reader_version(catalog_reader_t *r);

/*
 * For other read-side modules on the same connection (catalog/search.c),
 * so their queries and the objects they list are one snapshot.
 * catalog_reader_begin opens a read transaction (0 or -1, logged; call
 * catalog_reader_end in both cases); catalog_reader_end resets the
 * reader's statements and ends it: the caller resets its own first.
 */
sqlite3 *catalog_reader_db(catalog_reader_t *r);
int catalog_reader_begin(catalog_reader_t *r);
void catalog_reader_end(catalog_reader_t *r);

/*
 * Signed stream URLs: while a signer is set, every track's stream_url is
 * /api/v1/tracks/ID/stream?exp=T&sig=S (auth_url_sign for principal, to
 * expires_s), so a player that cannot send headers can play it. NULL (the
 * default) gives the bare path. The signer must outlive its use: set it
 * for one answer, then clear it.
 */
struct catalog_signer {
	const uint8_t *key; /* AUTH_MAC_KEY_LEN bytes */
	const char *principal;
	int64_t expires_s;
};
void catalog_reader_sign(catalog_reader_t *r, const struct catalog_signer *s);

/* What the library panel shows (GET /api/v1/library): the catalog's
 * figures and its latest ingest runs (catalog/model.h), newest first. */
#define CATALOG_INGESTS_SHOWN 20

struct catalog_ingest_error {
	char *path, *message;
};

struct catalog_ingest {
	int64_t id;
	char *host;
	int64_t started_at, heartbeat_at, finished_at; /* ms; finished_at 0: not finished */
	int64_t added, updated, unchanged, failed;
	struct catalog_ingest_error errors[CATALOG_RUN_ERRORS_MAX]; /* in the order they came */
	int nerrors;
};

struct catalog_library {
	int64_t artists, albums, tracks, duration_ms;
	/* The sealed bytes of the tracks' chunks in the origin: each track's
	 * size plus a SEAL_TAG_LEN tag per chunk. Covers are not counted
	 * (they live in the catalog, not the origin), nor blobs being
	 * uploaded or waiting to be removed (ledgers a read model lacks). */
	int64_t origin_bytes;
	struct catalog_ingest ingests[CATALOG_INGESTS_SHOWN];
	int ningests;
};

/* 200 with *out filled from one snapshot (catalog_library_free it), or
 * 500 (logged; nothing to free). */
int catalog_library(catalog_reader_t *r, struct catalog_library *out);
void catalog_library_free(struct catalog_library *l);

enum catalog_kind { CATALOG_ARTIST, CATALOG_ALBUM, CATALOG_TRACK };

/*
 * Writes the object of one artist, album or track, in the JSON shape of the
 * catalog endpoints above, as the next value of j. Inside
 * catalog_reader_begin/end. 1 when written, 0 when no such id (nothing
 * written), -1 on a database error (logged).
 */
int catalog_json_object(catalog_reader_t *r, enum catalog_kind kind, int64_t id, struct json *j);

#endif
