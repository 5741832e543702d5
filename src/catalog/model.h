#ifndef CHORUS_CATALOG_MODEL_H
#define CHORUS_CATALOG_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/seal.h"

/*
 * The catalog's records as ingest produces them and the stores keep them.
 *
 * Ids are 63-bit integers shown to clients as 16 hex digits. Artist and
 * album ids are derived from their identity (name key; album artist id and
 * title key), so every node of a cluster computes the same id for the same
 * artist without asking anyone; track ids are random and stay the same when
 * a track's file is replaced.
 */

#define CHUNK_SIZE_DEFAULT (1u << 20)
#define BLOB_ID_LEN 32 /* hex digits of a 128-bit random blob id */

/* What a file's tags and stream properties say. Strings are malloc'd,
 * valid UTF-8, never NULL for title/artist/album/album_artist/codec. */
struct track_meta {
	char *title;
	char *artist;
	char *album;
	char *album_artist; /* the tagged album artist, or the track artist */
	char *genre;        /* NULL when untagged */
	char *isrc;         /* NULL when untagged; upper-case, no dashes */
	char *label;        /* NULL when untagged */
	char *codec;        /* libavcodec's name: mp3, flac, vorbis, opus, aac, pcm_s16le... */
	const char *mime_type;
	int track_number; /* 0 when unknown */
	int disc_number;  /* 0 when unknown */
	int year;         /* 0 when unknown */
	int64_t duration_ms;
	int64_t bitrate; /* bits per second */
	int sample_rate;
	int channels;
	unsigned char *cover; /* embedded picture, or NULL */
	size_t cover_len;
	const char *cover_mime;
};

void track_meta_free(struct track_meta *m);

/*
 * Where a file's bytes are: blob names the object prefix in the origin, key
 * opens its chunks, content_hash (SHA-256 of the whole file) is the strong
 * ETag. A new key and blob are made for every new content, never reused for
 * different bytes.
 */
struct manifest {
	uint64_t size;
	uint32_t chunk_size;
	uint32_t chunk_count;
	uint8_t key[SEAL_KEY_LEN];
	char blob[BLOB_ID_LEN + 1];
	char content_hash[65];
};

/* Chunks needed for size bytes (an empty file has none). */
uint32_t manifest_chunk_count(uint64_t size, uint32_t chunk_size);
/* Plaintext length of chunk index (0 past the end). */
uint32_t manifest_chunk_len(const struct manifest *m, uint32_t index);
/* Offset of chunk index in the file. */
uint64_t manifest_chunk_offset(const struct manifest *m, uint32_t index);
/* The chunk holding byte offset (offset < size). */
uint32_t manifest_chunk_at(const struct manifest *m, uint64_t offset);

/*
 * The record of ingest runs (the ingests and ingest_errors tables): a run
 * writes its row when it starts, every CATALOG_RUN_HEARTBEAT_MS while it
 * goes, and when it ends, and keeps its first CATALOG_RUN_ERRORS_MAX
 * failures. A row never finished whose last beat is older than
 * CATALOG_RUN_STALE_MS by the reader's clock is a run that died (killed,
 * crashed, its host gone): six beats missed, which leaves room for the
 * clocks of two hosts to disagree by most of a minute.
 */
#define CATALOG_RUN_HEARTBEAT_MS 10000
#define CATALOG_RUN_STALE_MS 60000
#define CATALOG_RUN_ERRORS_MAX 20

/* Deterministic ids (see above). */
int64_t catalog_artist_id(const char *name_key);
int64_t catalog_album_id(int64_t artist_id, const char *title_key);
int64_t catalog_random_id(void);
/* id as 16 hex digits; parse returns -1 when s is not exactly that. */
void catalog_id_str(int64_t id, char out[17]);
int catalog_id_parse(const char *s, size_t len, int64_t *id);

#endif
