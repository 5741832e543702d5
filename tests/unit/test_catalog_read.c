/*
 * The catalog read side against a real SQLite catalog: JSON bodies (order,
 * nulls, escaping, paging), covers, stream manifests, 404s, and that a
 * reader sees what a writer commits after the reader was opened.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "catalog/db.h"
#include "catalog/read.h"
#include "unit.h"

static char dir[] = "/tmp/chorus-test-catalog-read-XXXXXX";
static char path[256];
static catalog_reader_t *reader;

/* Artists: sorted by name_key they are aurora, Beyoncé, 東京; sorted by the
 * raw name "Beyoncé" would come before "aurora". */
#define AURORA 0xa3
#define BEYONCE 0xa1
#define TOKYO 0xa2
/* Albums by title_key: 4, b-sides, lemonade, shinjuku ("Lemonade" would come
 * before "b-sides" by raw title). */
#define LEMONADE 0xb1
#define FOUR 0xb2
#define BSIDES 0xb3
#define SHINJUKU 0xb4
#define NO_SUCH 0x0123456789abcdefLL

static const char cover_png[] = "\x89PNG\r\n\x1a\n\0\x01\x02";

static void exec_sql(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "setup: %s\n  in %s\n", msg, sql);
		exit(2);
	}
}

/* A track with every optional field known; numbers of 0 store NULL. */
static void add_track(sqlite3 *db, int64_t id, const char *title, const char *title_key,
		      int64_t artist, int64_t album, int disc, int track, int64_t duration_ms)
{
	char *sql = sqlite3_mprintf(
		"INSERT INTO tracks (id, title, title_key, artist_id, album_id, track_number,"
		" disc_number, year, genre, isrc, label, duration_ms, codec, mime_type, bitrate,"
		" sample_rate, channels, size, chunk_size, chunk_count, key, blob, content_hash,"
		" created_at, updated_at) VALUES (%lld, %Q, %Q, %lld, %lld, NULLIF(%d, 0),"
		" NULLIF(%d, 0), 2016, 'R&B', 'USSM11600001', 'Parkwood', %lld, 'flac',"
		" 'audio/flac', 905000, 44100, 2, 2500000, 1048576, 3,"
		" x'000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',"
		" printf('%%032x', %lld), printf('%%064x', %lld), 0, 0)",
		(long long)id, title, title_key, (long long)artist, (long long)album, track, disc,
		(long long)duration_ms, (long long)id, (long long)id);

	exec_sql(db, sql);
	sqlite3_free(sql);
}

static void setup(void)
{
	char err[256];
	sqlite3 *db;
	sqlite3_stmt *st;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(2);
	}
	snprintf(path, sizeof(path), "%s/catalog.db", dir);
	if (catalog_db_open(path, true, &db, err, sizeof(err)) < 0) {
		fprintf(stderr, "setup: %s\n", err);
		exit(2);
	}
	exec_sql(db, "BEGIN;"
		     "INSERT INTO artists VALUES (161, 'Beyoncé', 'beyoncé');"
		     "INSERT INTO artists VALUES (162, '東京', '東京');"
		     "INSERT INTO artists VALUES (163, 'aurora', 'aurora');"
		     "INSERT INTO albums VALUES (177, 'Lemonade', 'lemonade', 161, 2016);"
		     "INSERT INTO albums VALUES (178, '4', '4', 161, NULL);"
		     "INSERT INTO albums VALUES (179, 'b-sides', 'b-sides', 161, 2003);"
		     "INSERT INTO albums VALUES (180, 'Shinjuku', 'shinjuku', 162, 2001);");
	/* Lemonade: two discs, inserted out of order; one track by a guest. */
	add_track(db, 0x1001, "Zeta", "zeta", BEYONCE, LEMONADE, 2, 1, 1000);
	add_track(db, 0x1002, "Beta", "beta", BEYONCE, LEMONADE, 1, 2, 2000);
	add_track(db, 0x1003, "Alpha \"Q\"\x01x", "alpha \"q\"\x01x", BEYONCE, LEMONADE, 1, 1,
		  3000);
	add_track(db, 0x1004, "Kyoto", "kyoto", TOKYO, LEMONADE, 1, 3, 4000);
	add_track(db, 0x1006, "B", "b", BEYONCE, BSIDES, 1, 1, 100);
	add_track(db, 0x1007, "Neon", "neon", TOKYO, SHINJUKU, 1, 1, 200);
	add_track(db, INT64_MAX, "aurora song", "aurora song", AURORA, SHINJUKU, 1, 2, 300);
	/* Everything optional unknown. */
	exec_sql(db, "INSERT INTO tracks (id, title, title_key, artist_id, album_id, duration_ms,"
		     " codec, mime_type, size, chunk_size, chunk_count, key, blob, content_hash,"
		     " created_at, updated_at) VALUES (4101, 'Untitled', 'untitled', 161, 178, 500,"
		     " 'mp3', 'audio/mpeg', 0, 1048576, 0, zeroblob(32),"
		     " '0000000000000000000000000000beef', printf('%064x', 4101), 0, 0);");
	if (sqlite3_prepare_v2(db, "INSERT INTO covers VALUES (177, 'image/png', 'x', ?)", -1, &st,
			       NULL) != SQLITE_OK) {
		fprintf(stderr, "setup: %s\n", sqlite3_errmsg(db));
		exit(2);
	}
	sqlite3_bind_blob(st, 1, cover_png, sizeof(cover_png) - 1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		fprintf(stderr, "setup: %s\n", sqlite3_errmsg(db));
		exit(2);
	}
	sqlite3_finalize(st);
	exec_sql(db, "COMMIT");
	/* The last connection closing removes -wal and -shm: the reader must
	 * open such a file read-only too. */
	sqlite3_close(db);
	if (catalog_reader_open(path, &reader, err, sizeof(err)) < 0) {
		fprintf(stderr, "setup: catalog_reader_open: %s\n", err);
		exit(2);
	}
}

static void teardown(void)
{
	char p[300];
	static const char *const suffix[] = {"", "-wal", "-shm"};

	catalog_reader_close(reader);
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
		unlink(p);
	}
	rmdir(dir);
}

/* True when every needle occurs in s, each after the one before it. */
static bool in_order(const char *s, const char *const *needles, size_t n)
{
	const char *at = s;

	for (size_t i = 0; i < n; i++) {
		const char *p = s ? strstr(at, needles[i]) : NULL;
		if (!p) {
			fprintf(stderr, "  missing or out of order: %s\n", needles[i]);
			return false;
		}
		at = p + strlen(needles[i]);
	}
	return true;
}

#define IN_ORDER(s, ...)                                                                           \
	in_order((s), (const char *const[]){__VA_ARGS__},                                          \
		 sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

static size_t count_of(const char *s, const char *needle)
{
	size_t n = 0;

	for (const char *p = s; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void test_artists_list(void)
{
	buf_t b;

	buf_init(&b, 1 << 20);
	CHECK(catalog_json_artists(reader, 100, 0, &b) == 200);
	CHECK_STR(b.data, "{\"artists\":["
			  "{\"id\":\"00000000000000a3\",\"name\":\"aurora\",\"album_count\":0,"
			  "\"track_count\":1},"
			  "{\"id\":\"00000000000000a1\",\"name\":\"Beyoncé\",\"album_count\":3,"
			  "\"track_count\":5},"
			  "{\"id\":\"00000000000000a2\",\"name\":\"東京\",\"album_count\":1,"
			  "\"track_count\":2}"
			  "],\"total\":3,\"limit\":100,\"offset\":0}");

	/* A page in the middle: total still counts everything. */
	buf_reset(&b);
	CHECK(catalog_json_artists(reader, 1, 1, &b) == 200);
	CHECK(b.data && strstr(b.data, "\"name\":\"Beyoncé\""));
	CHECK(count_of(b.data, "\"name\":") == 1);
	CHECK(b.data && strstr(b.data, "],\"total\":3,\"limit\":1,\"offset\":1}"));

	/* Past the end: an empty array, not a 404. */
	buf_reset(&b);
	CHECK(catalog_json_artists(reader, 10, 3, &b) == 200);
	CHECK_STR(b.data, "{\"artists\":[],\"total\":3,\"limit\":10,\"offset\":3}");

	/* Negative paging (SQLite would read LIMIT -1 as "all") is refused. */
	buf_reset(&b);
	CHECK(catalog_json_artists(reader, -1, 0, &b) == 500);
	CHECK(catalog_json_tracks(reader, 10, -1, &b) == 500);
	CHECK(b.len == 0);
	buf_free(&b);
}

static void test_artist_one(void)
{
	buf_t b;

	buf_init(&b, 1 << 20);
	CHECK(catalog_json_artist(reader, BEYONCE, &b) == 200);
	CHECK(b.data && strncmp(b.data,
				"{\"id\":\"00000000000000a1\",\"name\":\"Beyoncé\","
				"\"album_count\":3,\"track_count\":5,\"albums\":[",
				strlen("{\"id\":\"00000000000000a1\",\"name\":\"Beyoncé\","
				       "\"album_count\":3,\"track_count\":5,\"albums\":[")) == 0);
	/* By year, the unknown year last; only albums it is album artist of
	 * (Shinjuku, where 東京 is, is not listed). */
	CHECK(IN_ORDER(b.data, "\"title\":\"b-sides\"", "\"title\":\"Lemonade\"",
		       "\"title\":\"4\""));
	CHECK(count_of(b.data, "\"title\":") == 3);
	CHECK(b.data && strstr(b.data, "{\"id\":\"00000000000000b2\",\"title\":\"4\","
				       "\"artist\":\"Beyoncé\",\"artist_id\":\"00000000000000a1\","
				       "\"year\":null,\"track_count\":1,\"duration_ms\":500,"
				       "\"cover_url\":null}"));
	CHECK(b.data && strstr(b.data, "\"cover_url\":\"/api/v1/albums/00000000000000b1/cover\""));
	CHECK(b.data && b.len > 2 && strcmp(b.data + b.len - 2, "]}") == 0);

	/* An artist on no album as album artist: an empty list. */
	buf_reset(&b);
	CHECK(catalog_json_artist(reader, AURORA, &b) == 200);
	CHECK(b.data && strstr(b.data, "\"track_count\":1,\"albums\":[]}"));

	/* Unknown: 404 and the buffer as it was. */
	buf_reset(&b);
	CHECK(buf_appends(&b, "keep") == 0);
	CHECK(catalog_json_artist(reader, NO_SUCH, &b) == 404);
	CHECK_STR(b.data, "keep");
	buf_free(&b);
}

static void test_albums_list(void)
{
	buf_t b;

	buf_init(&b, 1 << 20);
	CHECK(catalog_json_albums(reader, 500, 0, &b) == 200);
	/* Case-insensitive title order. */
	CHECK(IN_ORDER(b.data, "{\"albums\":[", "\"title\":\"4\"", "\"title\":\"b-sides\"",
		       "\"title\":\"Lemonade\"", "\"title\":\"Shinjuku\"",
		       "],\"total\":4,\"limit\":500,\"offset\":0}"));
	CHECK(b.data && strstr(b.data, "{\"id\":\"00000000000000b1\",\"title\":\"Lemonade\","
				       "\"artist\":\"Beyoncé\",\"artist_id\":\"00000000000000a1\","
				       "\"year\":2016,\"track_count\":4,\"duration_ms\":10000,"
				       "\"cover_url\":\"/api/v1/albums/00000000000000b1/cover\"}"));
	/* The album artist, not the artist of a track on it. */
	CHECK(b.data &&
	      strstr(b.data, "\"title\":\"Shinjuku\",\"artist\":\"東京\","
			     "\"artist_id\":\"00000000000000a2\",\"year\":2001,"
			     "\"track_count\":2,\"duration_ms\":500,\"cover_url\":null}"));

	buf_reset(&b);
	CHECK(catalog_json_albums(reader, 2, 1, &b) == 200);
	CHECK(IN_ORDER(b.data, "\"title\":\"b-sides\"", "\"title\":\"Lemonade\"",
		       "],\"total\":4,\"limit\":2,\"offset\":1}"));
	CHECK(count_of(b.data, "\"title\":") == 2);
	buf_free(&b);
}

static void test_album_one(void)
{
	buf_t b;

	buf_init(&b, 1 << 20);
	CHECK(catalog_json_album(reader, LEMONADE, &b) == 200);
	/* Disc, then track number, whatever the insertion order. */
	CHECK(IN_ORDER(b.data, "{\"id\":\"00000000000000b1\",\"title\":\"Lemonade\",",
		       "\"cover_url\":\"/api/v1/albums/00000000000000b1/cover\",\"tracks\":[",
		       "\"id\":\"0000000000001003\"", "\"id\":\"0000000000001002\"",
		       "\"id\":\"0000000000001004\"", "\"id\":\"0000000000001001\"", "]}"));
	CHECK(count_of(b.data, "\"stream_url\":") == 4);
	/* A guest's track: its own artist, the album's album artist. */
	CHECK(b.data &&
	      strstr(b.data, "\"title\":\"Kyoto\",\"artist\":\"東京\","
			     "\"artist_id\":\"00000000000000a2\",\"album\":\"Lemonade\","
			     "\"album_id\":\"00000000000000b1\",\"album_artist\":\"Beyoncé\","));
	/* A quote and a control character in a title are escaped. */
	CHECK(b.data && strstr(b.data, "\"title\":\"Alpha \\\"Q\\\"\\u0001x\""));

	buf_reset(&b);
	CHECK(catalog_json_album(reader, FOUR, &b) == 200);
	CHECK(b.data &&
	      strstr(b.data, "\"year\":null,\"track_count\":1,\"duration_ms\":500,"
			     "\"cover_url\":null,\"tracks\":[{\"id\":\"0000000000001005\""));

	buf_reset(&b);
	CHECK(catalog_json_album(reader, NO_SUCH, &b) == 404);
	CHECK(b.len == 0);
	/* An artist's id is not an album's. */
	CHECK(catalog_json_album(reader, BEYONCE, &b) == 404);
	buf_free(&b);
}

static void test_tracks_list(void)
{
	buf_t b;

	buf_init(&b, 1 << 20);
	CHECK(catalog_json_tracks(reader, 500, 0, &b) == 200);
	CHECK(IN_ORDER(b.data, "{\"tracks\":[", "\"title\":\"Alpha", "\"title\":\"aurora song\"",
		       "\"title\":\"B\"", "\"title\":\"Beta\"", "\"title\":\"Kyoto\"",
		       "\"title\":\"Neon\"", "\"title\":\"Untitled\"", "\"title\":\"Zeta\"",
		       "],\"total\":8,\"limit\":500,\"offset\":0}"));
	/* The largest id still prints as 16 hex digits. */
	CHECK(b.data && strstr(b.data, "{\"id\":\"7fffffffffffffff\",\"title\":\"aurora song\","
				       "\"artist\":\"aurora\",\"artist_id\":\"00000000000000a3\","
				       "\"album\":\"Shinjuku\",\"album_id\":\"00000000000000b4\","
				       "\"album_artist\":\"東京\","));
	CHECK(b.data &&
	      strstr(b.data, "\"stream_url\":\"/api/v1/tracks/7fffffffffffffff/stream\""));

	buf_reset(&b);
	CHECK(catalog_json_tracks(reader, 3, 6, &b) == 200);
	CHECK(IN_ORDER(b.data, "\"title\":\"Untitled\"", "\"title\":\"Zeta\"",
		       "],\"total\":8,\"limit\":3,\"offset\":6}"));
	CHECK(count_of(b.data, "\"stream_url\":") == 2);
	buf_free(&b);
}

static void test_track_one(void)
{
	buf_t b;

	buf_init(&b, 1 << 20);
	CHECK(catalog_json_track(reader, 0x1001, &b) == 200);
	CHECK_STR(b.data,
		  "{\"id\":\"0000000000001001\",\"title\":\"Zeta\",\"artist\":\"Beyoncé\","
		  "\"artist_id\":\"00000000000000a1\",\"album\":\"Lemonade\","
		  "\"album_id\":\"00000000000000b1\",\"album_artist\":\"Beyoncé\","
		  "\"track_number\":1,\"disc_number\":2,\"year\":2016,\"genre\":\"R&B\","
		  "\"isrc\":\"USSM11600001\",\"label\":\"Parkwood\",\"duration_ms\":1000,"
		  "\"codec\":\"flac\",\"mime_type\":\"audio/flac\",\"bitrate\":905000,"
		  "\"sample_rate\":44100,\"channels\":2,\"size_bytes\":2500000,"
		  "\"stream_url\":\"/api/v1/tracks/0000000000001001/stream\","
		  "\"etag\":\"0000000000000000000000000000000000000000000000000000000000001001\","
		  "\"explicit\":null}");

	/* Unknown values are null, never 0 or "". */
	buf_reset(&b);
	CHECK(catalog_json_track(reader, 0x1005, &b) == 200);
	CHECK(b.data && strstr(b.data, "\"album_artist\":\"Beyoncé\",\"track_number\":null,"
				       "\"disc_number\":null,\"year\":null,\"genre\":null,"
				       "\"isrc\":null,\"label\":null,\"duration_ms\":500,"
				       "\"codec\":\"mp3\",\"mime_type\":\"audio/mpeg\","
				       "\"bitrate\":null,\"sample_rate\":null,\"channels\":null,"
				       "\"size_bytes\":0,"));

	buf_reset(&b);
	CHECK(catalog_json_track(reader, NO_SUCH, &b) == 404);
	CHECK(b.len == 0);
	CHECK(catalog_json_track(reader, LEMONADE, &b) == 404);
	buf_free(&b);
}

static void test_cover(void)
{
	char mime[32] = "", tiny[4];
	buf_t b;

	buf_init(&b, 1 << 20);
	CHECK(catalog_cover(reader, LEMONADE, &b, mime, sizeof(mime)) == 200);
	CHECK_STR(mime, "image/png");
	/* Binary, NUL included. */
	CHECK(b.len == sizeof(cover_png) - 1);
	CHECK(b.data && memcmp(b.data, cover_png, sizeof(cover_png) - 1) == 0);

	buf_reset(&b);
	CHECK(catalog_cover(reader, FOUR, &b, mime, sizeof(mime)) == 404);
	CHECK(catalog_cover(reader, NO_SUCH, &b, mime, sizeof(mime)) == 404);
	CHECK(b.len == 0);
	/* No room for the MIME type or the bytes: an error, nothing written. */
	CHECK(catalog_cover(reader, LEMONADE, &b, tiny, sizeof(tiny)) == 500);
	CHECK(b.len == 0);
	buf_free(&b);
	buf_init(&b, 4);
	CHECK(catalog_cover(reader, LEMONADE, &b, mime, sizeof(mime)) == 500);
	CHECK(b.len == 0);
	buf_free(&b);
}

static void test_stream_info(void)
{
	struct catalog_stream s;
	struct manifest m;

	memset(&s, 0xee, sizeof(s));
	CHECK(catalog_stream_info(reader, 0x1002, &s) == 200);
	CHECK(s.id == 0x1002);
	CHECK(s.size == 2500000);
	CHECK(s.chunk_size == 1048576);
	CHECK(s.chunk_count == 3);
	CHECK(s.key[0] == 0 && s.key[1] == 1 && s.key[31] == 31);
	CHECK_STR(s.blob, "00000000000000000000000000001002");
	CHECK_STR(s.content_hash,
		  "0000000000000000000000000000000000000000000000000000000000001002");
	CHECK_STR(s.mime_type, "audio/flac");
	catalog_stream_manifest(&s, &m);
	CHECK(manifest_chunk_len(&m, 2) == 2500000 - 2 * 1048576);

	/* An empty file: no chunks, still streamable (as zero bytes). */
	CHECK(catalog_stream_info(reader, 0x1005, &s) == 200);
	CHECK(s.size == 0 && s.chunk_count == 0);
	CHECK_STR(s.mime_type, "audio/mpeg");

	CHECK(catalog_stream_info(reader, NO_SUCH, &s) == 404);
}

/* A writer commits after the reader opened: the reader sees it (no snapshot
 * left open between calls), and a manifest that does not add up is a 500,
 * not a wrong stream. */
static void test_sees_later_commits(void)
{
	struct catalog_stream s;
	char err[256];
	sqlite3 *db;
	buf_t b;

	buf_init(&b, 1 << 20);
	CHECK(catalog_json_tracks(reader, 1, 0, &b) == 200);
	CHECK(b.data && strstr(b.data, "\"total\":8,"));
	if (catalog_db_open(path, true, &db, err, sizeof(err)) < 0) {
		fprintf(stderr, "  %s\n", err);
		CHECK(0);
		buf_free(&b);
		return;
	}
	exec_sql(db, "UPDATE tracks SET chunk_count = 7 WHERE id = 4098");
	CHECK(catalog_stream_info(reader, 0x1002, &s) == 500);
	exec_sql(db, "UPDATE tracks SET chunk_count = 3, key = x'00' WHERE id = 4098");
	CHECK(catalog_stream_info(reader, 0x1002, &s) == 500);
	exec_sql(db, "UPDATE tracks SET key = zeroblob(32), blob = 'short' WHERE id = 4098");
	CHECK(catalog_stream_info(reader, 0x1002, &s) == 500);
	exec_sql(db, "UPDATE tracks SET blob = printf('%032x', 4098) WHERE id = 4098");
	CHECK(catalog_stream_info(reader, 0x1002, &s) == 200);

	/* 0 and "" from elsewhere (a replica) mean unknown too. */
	exec_sql(db, "UPDATE tracks SET bitrate = 0, year = 0, track_number = 0, genre = ''"
		     " WHERE id = 4102");
	buf_reset(&b);
	CHECK(catalog_json_track(reader, 0x1006, &b) == 200);
	CHECK(b.data && strstr(b.data, "\"track_number\":null,\"disc_number\":1,\"year\":null,"
				       "\"genre\":null,"));
	CHECK(b.data && strstr(b.data, "\"bitrate\":null,\"sample_rate\":44100,"));

	/* explicit: said (true, false) or not (null). */
	exec_sql(db, "UPDATE tracks SET explicit = 1 WHERE id = 4102");
	buf_reset(&b);
	CHECK(catalog_json_track(reader, 0x1006, &b) == 200);
	CHECK(b.data && strstr(b.data, ",\"explicit\":true}"));
	exec_sql(db, "UPDATE tracks SET explicit = 0 WHERE id = 4102");
	buf_reset(&b);
	CHECK(catalog_json_track(reader, 0x1006, &b) == 200);
	CHECK(b.data && strstr(b.data, ",\"explicit\":false}"));

	exec_sql(db, "DELETE FROM covers WHERE album_id = 177");
	buf_reset(&b);
	CHECK(catalog_json_album(reader, LEMONADE, &b) == 200);
	CHECK(b.data && strstr(b.data, "\"duration_ms\":10000,\"cover_url\":null,"));
	exec_sql(db, "DELETE FROM tracks WHERE id = 4097");
	buf_reset(&b);
	CHECK(catalog_json_tracks(reader, 1, 0, &b) == 200);
	CHECK(b.data && strstr(b.data, "\"total\":7,"));
	sqlite3_close(db);
	buf_free(&b);
}

/* A body past the caller's cap is a 500 with nothing written. */
static void test_cap(void)
{
	buf_t b;

	buf_init(&b, 200);
	CHECK(buf_appends(&b, "x") == 0);
	CHECK(catalog_json_tracks(reader, 500, 0, &b) == 500);
	CHECK_STR(b.data, "x");
	CHECK(catalog_json_album(reader, SHINJUKU, &b) == 500);
	CHECK_STR(b.data, "x");
	CHECK(catalog_json_artists(reader, 1, 0, &b) == 200);
	buf_free(&b);
}

static void test_open_errors(void)
{
	catalog_reader_t *r = NULL;
	char err[256] = "", p[300];
	FILE *f;

	CHECK(catalog_reader_open("/nonexistent/chorus/catalog.db", &r, err, sizeof(err)) < 0);
	CHECK(r == NULL);
	CHECK(err[0] != '\0');
	/* An empty file is no catalog yet. */
	snprintf(p, sizeof(p), "%s/empty.db", dir);
	f = fopen(p, "w");
	CHECK(f != NULL);
	if (f)
		fclose(f);
	err[0] = '\0';
	CHECK(catalog_reader_open(p, &r, err, sizeof(err)) == -ENOENT);
	CHECK(strstr(err, "schema version 0") != NULL);
	unlink(p);
}

int main(void)
{
	setup();
	TEST_RUN(test_artists_list);
	TEST_RUN(test_artist_one);
	TEST_RUN(test_albums_list);
	TEST_RUN(test_album_one);
	TEST_RUN(test_tracks_list);
	TEST_RUN(test_track_one);
	TEST_RUN(test_cover);
	TEST_RUN(test_stream_info);
	TEST_RUN(test_sees_later_commits);
	TEST_RUN(test_cap);
	TEST_RUN(test_open_errors);
	teardown();
	TEST_EXIT();
}
