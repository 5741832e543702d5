/*
 * Search: the query tokenizer, the typo distance, the MATCH expressions,
 * and search_json against a real catalog (triggers keeping the index on
 * insert, update and delete; the v1 -> v2 migration indexing old rows).
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "catalog/db.h"
#include "catalog/read.h"
#include "catalog/search.h"
#include "unit.h"

static char dir[] = "/tmp/chorus-test-search-XXXXXX";
static sqlite3 *mem; /* an in-memory database: its FTS5 module */

static void exec_sql(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "setup: %s\n  in %s\n", msg, sql);
		exit(2);
	}
}

/* The words of q joined by '|', or "E<errno>" on an error. */
static const char *words(const char *q, size_t len)
{
	static char out[2048];
	static struct search_query sq;
	search_tokenizer_t *t = NULL;
	size_t n = 0;
	int rc;

	out[0] = '\0';
	if (search_tokenizer_open(mem, &t) < 0)
		return "no tokenizer";
	rc = search_query_parse(t, q, len, &sq);
	search_tokenizer_close(t);
	if (rc < 0) {
		snprintf(out, sizeof(out), "E%d", -rc);
		return out;
	}
	for (int i = 0; i < sq.n; i++) {
		if (sq.w[i].len != strlen(sq.w[i].p))
			return "bad length";
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", i ? "|" : "", sq.w[i].p);
	}
	return out;
}

#define W(s) words(s, strlen(s))

static void test_query_words(void)
{
	char big[SEARCH_QUERY_MAX + 2];
	char many[200] = "";

	CHECK_STR(W("Beyoncé"), "beyonce");
	CHECK_STR(W("  Sigur   Rós "), "sigur|ros");
	CHECK_STR(W("The BEATLES help!"), "the|beatles|help");
	CHECK_STR(W("東京の夜"), "東京の夜");
	CHECK_STR(W("Мумий Тролль"), "мумий|тролль");
	CHECK_STR(W("!!! ,,, ... ---"), "");
	CHECK_STR(W("\"*^:()"), "");
	CHECK_STR(W("\"help\" NEAR(a b) OR AND *"), "help|near|a|b|or|and");
	CHECK_STR(W("'; DROP TABLE tracks; --"), "drop|table|tracks");
	CHECK_STR(W("Motörhead Ünder"), "motorhead|under");
	/* Invalid UTF-8 is not a word, and does not break the ones around it. */
	CHECK_STR(words("ab\xff\xfe cd", 7), "ab|cd");
	memset(big, 'a', sizeof(big));
	big[SEARCH_QUERY_MAX + 1] = '\0';
	CHECK(strlen(words(big, SEARCH_QUERY_MAX)) == SEARCH_QUERY_MAX);
	CHECK_STR(words(big, SEARCH_QUERY_MAX + 1), "E7"); /* E2BIG */
	for (int i = 0; i < 20; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "w%d ", i);
	CHECK_STR(W(many), "w0|w1|w2|w3|w4|w5|w6|w7|w8|w9|w10|w11|w12|w13|w14|w15");
	/* A word given twice is kept once. */
	CHECK_STR(W("love Love LÖVE night love"), "love|night");
}

/* One-letter words: prefixes when at most two, else whole words but the
 * last. */
static void test_query_letters(void)
{
	search_tokenizer_t *t = NULL;
	struct search_query q;
	buf_t b;

	buf_init(&b, 4096);
	CHECK(search_tokenizer_open(mem, &t) == 0);
	CHECK(search_query_parse(t, "b l", 3, &q) == 0 && q.n == 2);
	CHECK(!q.w[0].whole && !q.w[1].whole);
	CHECK(search_match_expr(&q, SEARCH_PREFIX, NULL, NULL, &b) == 0);
	CHECK_STR(b.data, "\"b\"* AND \"l\"*");
	CHECK(search_query_parse(t, "j s bach x", 10, &q) == 0 && q.n == 4);
	CHECK(q.w[0].whole && q.w[1].whole && !q.w[2].whole && !q.w[3].whole);
	buf_reset(&b);
	CHECK(search_match_expr(&q, SEARCH_PREFIX, NULL, NULL, &b) == 0);
	CHECK_STR(b.data, "\"j\" AND \"s\" AND \"bach\"* AND \"x\"*");
	buf_free(&b);
	search_tokenizer_close(t);
}

#define D(a, b) search_distance(a, strlen(a), b, strlen(b), false)
#define DP(a, b) search_distance(a, strlen(a), b, strlen(b), true)

static void test_distance(void)
{
	char l1[80], l2[80];

	CHECK(D("beatles", "beatles") == 0);
	CHECK(D("beatels", "beatles") == 1);  /* a transposition is one typo */
	CHECK(D("beatls", "beatles") == 1);   /* deletion */
	CHECK(D("beattles", "beatles") == 1); /* insertion */
	CHECK(D("beatlys", "beatles") == 1);  /* substitution */
	CHECK(D("baetels", "beatles") == 2);  /* two transpositions */
	CHECK(D("kitten", "sitting") == 2);
	CHECK(D("beat", "beatles") == 2);
	CHECK(D("", "") == 0);
	CHECK(D("", "a") == 1);
	CHECK(D("a", "") == 1);
	/* Code points, not bytes: ó is two bytes but one edit. */
	CHECK(D("sigúr", "sigur") == 1);
	CHECK(D("東京の夜", "東京の昼") == 1);
	CHECK(D("東京の夜", "京東の夜") == 1);
	/* Symmetric. */
	CHECK(D("beatles", "beatels") == 1);
	CHECK(D("sigur", "sigúr") == 1);
	/* Prefix: the nearest prefix of the second. */
	CHECK(DP("beatel", "beatlemania") == 1);
	CHECK(DP("beatl", "beatlemania") == 0);
	CHECK(DP("bxatl", "beatlemania") == 1);
	CHECK(DP("bxxtl", "beatlemania") == 2);
	CHECK(D("beatel", "beatlemania") == 2);
	/* Past SEARCH_WORD_CHARS: never a typo match. */
	memset(l1, 'a', 70);
	l1[70] = '\0';
	memcpy(l2, l1, 71);
	l2[0] = 'b';
	CHECK(D(l1, l2) == 2);
}

static void test_match_expr(void)
{
	struct search_query q = {0};
	struct search_alts alts[SEARCH_WORDS_MAX] = {0};
	buf_t b, small;

	buf_init(&b, 4096);
	q.n = 2;
	q.w[0] = (struct search_word){"beatels", 7, 7, false};
	q.w[1] = (struct search_word){"help", 4, 4, false};
	CHECK(search_match_expr(&q, SEARCH_EXACT, NULL, NULL, &b) == 0);
	CHECK_STR(b.data, "\"beatels\" AND \"help\"");
	buf_reset(&b);
	CHECK(search_match_expr(&q, SEARCH_PREFIX, NULL, NULL, &b) == 0);
	CHECK_STR(b.data, "\"beatels\"* AND \"help\"*");
	buf_reset(&b);
	CHECK(search_match_expr(&q, SEARCH_PREFIX, NULL, "title", &b) == 0);
	CHECK_STR(b.data, "title : (\"beatels\"* AND \"help\"*)");
	alts[0].n = 2;
	alts[0].alt[0].p = "beatles";
	alts[0].alt[0].prefix = false;
	alts[0].alt[1].p = "beatle";
	alts[0].alt[1].prefix = true;
	buf_reset(&b);
	CHECK(search_match_expr(&q, SEARCH_TYPO, alts, NULL, &b) == 0);
	CHECK_STR(b.data, "(\"beatels\"* OR \"beatles\" OR \"beatle\"*) AND \"help\"*");
	/* Alternatives are for the typo tier only. */
	buf_reset(&b);
	CHECK(search_match_expr(&q, SEARCH_EXACT, alts, NULL, &b) == 0);
	CHECK_STR(b.data, "\"beatels\" AND \"help\"");
	/* A quote inside a word (the tokenizer never makes one) stays a string. */
	q.n = 1;
	q.w[0] = (struct search_word){"a\"b", 3, 3, false};
	buf_reset(&b);
	CHECK(search_match_expr(&q, SEARCH_EXACT, NULL, NULL, &b) == 0);
	CHECK_STR(b.data, "\"a\"\"b\"");
	/* No words, or past the cap: -1 and the buffer as it was. */
	q.n = 0;
	buf_reset(&b);
	CHECK(search_match_expr(&q, SEARCH_EXACT, NULL, NULL, &b) == -1);
	CHECK(b.len == 0);
	q.n = 1;
	q.w[0] = (struct search_word){"beatles", 7, 7, false};
	buf_init(&small, 8);
	CHECK(buf_appends(&small, "xy") == 0);
	CHECK(search_match_expr(&q, SEARCH_PREFIX, NULL, NULL, &small) == -1);
	CHECK_STR(small.data, "xy");
	buf_free(&small);
	buf_free(&b);
}

/* ---- against a catalog ---- */

#define BEATLES 0x71
#define BEYONCE 0x72
#define SIGUR 0x73
#define TOKYO 0x74
#define HELPERS 0x75
#define A_HELP 0x81
#define A_LOVE 0x82
#define A_TAKK 0x83
#define A_TOKYO 0x84
#define A_MISC 0x85
#define T_HELP 0x91
#define T_YESTERDAY 0x92
#define T_CRAZY 0x93
#define T_HOPPI 0x94
#define T_GUNJO 0x95
#define T_BEATLES_SONG 0x96
#define T_HELPING 0x97

static void add_track(sqlite3 *db, int64_t id, const char *title, int64_t artist, int64_t album)
{
	char *sql = sqlite3_mprintf(
		"INSERT INTO tracks (id, title, title_key, artist_id, album_id, duration_ms, codec,"
		" mime_type, size, chunk_size, chunk_count, key, blob, content_hash, created_at,"
		" updated_at) VALUES (%lld, %Q, lower(%Q), %lld, %lld, 1000, 'flac', 'audio/flac',"
		" 10, 1048576, 1, zeroblob(32), printf('%%032x', %lld), printf('%%064x', %lld), 0,"
		" 0)",
		(long long)id, title, title, (long long)artist, (long long)album, (long long)id,
		(long long)id);

	exec_sql(db, sql);
	sqlite3_free(sql);
}

static const char *const names[] = {
	"The Beatles", "Beyoncé",  "Sigur Rós",           "東京事変",
	"The Helpers", "Help!",    "Dangerously in Love", "Takk",
	"東京の夜",    "Misc",     "Yesterday",           "Crazy in Love",
	"Hoppípolla",  "群青日和", "Beatles Song",        "Helping Hands"};

static void fill(sqlite3 *db, bool terms)
{
	exec_sql(db, "BEGIN;"
		     "INSERT INTO artists VALUES (113, 'The Beatles', 'the beatles');"
		     "INSERT INTO artists VALUES (114, 'Beyoncé', 'beyoncé');"
		     "INSERT INTO artists VALUES (115, 'Sigur Rós', 'sigur rós');"
		     "INSERT INTO artists VALUES (116, '東京事変', '東京事変');"
		     "INSERT INTO artists VALUES (117, 'The Helpers', 'the helpers');"
		     "INSERT INTO albums VALUES (129, 'Help!', 'help!', 113, 1965);"
		     "INSERT INTO albums VALUES (130, 'Dangerously in Love', 'dangerously in love',"
		     " 114, 2003);"
		     "INSERT INTO albums VALUES (131, 'Takk', 'takk', 115, 2005);"
		     "INSERT INTO albums VALUES (132, '東京の夜', '東京の夜', 116, 2004);"
		     "INSERT INTO albums VALUES (133, 'Misc', 'misc', 117, 2000);");
	add_track(db, T_HELP, "Help!", BEATLES, A_HELP);
	add_track(db, T_YESTERDAY, "Yesterday", BEATLES, A_HELP);
	add_track(db, T_CRAZY, "Crazy in Love", BEYONCE, A_LOVE);
	add_track(db, T_HOPPI, "Hoppípolla", SIGUR, A_TAKK);
	add_track(db, T_GUNJO, "群青日和", TOKYO, A_TOKYO);
	add_track(db, T_BEATLES_SONG, "Beatles Song", HELPERS, A_MISC);
	add_track(db, T_HELPING, "Helping Hands", HELPERS, A_MISC);
	for (size_t i = 0; terms && i < sizeof(names) / sizeof(names[0]); i++)
		CHECK(search_index_terms(db, names[i]) == 0);
	exec_sql(db, "COMMIT");
}

struct conn {
	catalog_reader_t *r;
	search_t *s;
};

static void conn_open(const char *path, struct conn *c)
{
	char err[256];

	if (catalog_reader_open(path, &c->r, err, sizeof(err)) < 0 ||
	    search_open(c->r, &c->s, err, sizeof(err)) < 0) {
		fprintf(stderr, "setup: %s\n", err);
		exit(2);
	}
}

static void conn_close(struct conn *c)
{
	search_close(c->s);
	catalog_reader_close(c->r);
}

/* search_json for q; the parsed body (NULL unless 200). */
static json_t *search(struct conn *c, const char *q, int limit, int *status)
{
	buf_t b;
	json_t *j = NULL;
	json_error_t e;

	buf_init(&b, 1 << 20);
	*status = search_json(c->s, q, strlen(q), limit, &b);
	if (*status == 200) {
		j = json_loadb(b.data, b.len, 0, &e);
		if (!j)
			fprintf(stderr, "  body is not JSON (%s): %s\n", e.text, b.data);
	} else if (b.len != 0) {
		fprintf(stderr, "  status %d with a body\n", *status);
		unit_failed_checks++;
	}
	buf_free(&b);
	return j;
}

static int64_t id_of(json_t *o)
{
	const char *s = json_string_value(json_object_get(o, "id"));

	return s ? strtoll(s, NULL, 16) : -1;
}

/* The ids of one list, as "id,id,..." in hex without leading zeros. */
static const char *ids(json_t *j, const char *list)
{
	static char out[512];
	size_t n = 0, i;
	json_t *v;

	out[0] = '\0';
	json_array_foreach(json_object_get(j, list), i, v) n += (size_t)snprintf(
		out + n, sizeof(out) - n, "%s%llx", i ? "," : "", (long long)id_of(v));
	return out;
}

static const char *top(json_t *j)
{
	static char out[64];
	json_t *t = json_object_get(j, "top");

	if (json_is_null(t))
		return "null";
	snprintf(out, sizeof(out), "%s:%llx", json_string_value(json_object_get(t, "kind")),
		 (long long)id_of(t));
	return out;
}

#define SEARCH(q, lim)                                                                             \
	do {                                                                                       \
		json_decref(j);                                                                    \
		j = search(&c, q, lim, &st);                                                       \
		CHECK(st == 200 && j);                                                             \
		if (!j)                                                                            \
			j = json_object();                                                         \
	} while (0)

static void check_catalog(const char *path)
{
	struct conn c;
	json_t *j = NULL, *t;
	int st;

	conn_open(path, &c);
	/* The objects are the catalog endpoints' ones. */
	SEARCH("beatles help", 10);
	/* Whole words first; then "Beatles Song" by The Helpers (a prefix). */
	CHECK_STR(ids(j, "tracks"), "91,92,96");
	CHECK_STR(ids(j, "albums"), "81");
	CHECK_STR(ids(j, "artists"), "");
	t = json_array_get(json_object_get(j, "tracks"), 0);
	CHECK_STR(json_string_value(json_object_get(t, "title")), "Help!");
	CHECK_STR(json_string_value(json_object_get(t, "artist")), "The Beatles");
	CHECK_STR(json_string_value(json_object_get(t, "album")), "Help!");
	CHECK_STR(json_string_value(json_object_get(t, "stream_url")),
		  "/api/v1/tracks/0000000000000091/stream");
	CHECK(json_object_get(t, "duration_ms") && json_object_get(t, "etag"));
	/* The artist's name: the artist is the top hit; a track titled with
	 * the name ranks above the artist's own tracks. */
	SEARCH("beatles", 10);
	CHECK_STR(ids(j, "artists"), "71");
	CHECK_STR(ids(j, "tracks"), "96,91,92");
	CHECK_STR(top(j), "artist:71");
	SEARCH("The Beatles", 10);
	CHECK_STR(top(j), "artist:71");
	/* Prefixes of every word. */
	SEARCH("beat", 10);
	CHECK_STR(ids(j, "artists"), "71");
	SEARCH("sig r", 10);
	CHECK_STR(ids(j, "artists"), "73");
	/* Accents and case. */
	SEARCH("BEYONCE", 10);
	CHECK_STR(ids(j, "artists"), "72");
	CHECK_STR(ids(j, "tracks"), "93");
	SEARCH("sigur ros", 10);
	CHECK_STR(ids(j, "artists"), "73");
	CHECK_STR(top(j), "artist:73");
	SEARCH("hoppipolla", 10);
	CHECK_STR(ids(j, "tracks"), "94");
	/* Non-Latin scripts, by prefix. */
	SEARCH("東京", 10);
	CHECK_STR(ids(j, "albums"), "84");
	CHECK_STR(ids(j, "artists"), "74");
	CHECK_STR(ids(j, "tracks"), "95");
	/* One typo in words of five letters or more, not fewer. */
	SEARCH("beatels", 10);
	CHECK_STR(ids(j, "artists"), "71");
	SEARCH("beyonse", 10);
	CHECK_STR(ids(j, "artists"), "72");
	SEARCH("beatels hlp", 10);
	CHECK_STR(ids(j, "tracks"), "");
	SEARCH("beatels help", 10);
	CHECK_STR(ids(j, "tracks"), "91,96,92");
	SEARCH("tkak", 10);
	CHECK_STR(ids(j, "albums"), "");
	SEARCH("baetels", 10); /* two typos */
	CHECK_STR(ids(j, "artists"), "");
	/* A typo in a word still being typed. */
	SEARCH("beatel", 10);
	CHECK_STR(ids(j, "artists"), "71");
	/* Whole words rank above prefixes: "help" before "helping"; the
	 * artist "The Helpers" only by prefix. */
	SEARCH("help", 10);
	CHECK_STR(ids(j, "tracks"), "91,92,97,96");
	CHECK_STR(ids(j, "artists"), "75");
	CHECK_STR(top(j), "album:81");
	/* limit per list. */
	SEARCH("help", 1);
	CHECK_STR(ids(j, "tracks"), "91");
	/* Nothing to find, or nothing searchable. */
	SEARCH("zzzzzz", 10);
	CHECK_STR(ids(j, "tracks"), "");
	CHECK_STR(top(j), "null");
	SEARCH("!!!", 10);
	CHECK_STR(ids(j, "tracks"), "");
	SEARCH("\" * NEAR( OR AND ^ : ) (", 10);
	CHECK(json_is_array(json_object_get(j, "tracks")));
	SEARCH("'; DROP TABLE tracks; --", 10);
	CHECK_STR(ids(j, "tracks"), "");
	json_decref(j);
	j = search(&c, "help", 0, &st);
	CHECK(st == 400 && !j);
	j = search(&c, "help", SEARCH_LIMIT_MAX + 1, &st);
	CHECK(st == 400 && !j);
	conn_close(&c);
}

static void test_search_catalog(void)
{
	char path[256], err[256];
	struct conn c;
	sqlite3 *db;
	json_t *j = NULL;
	int st;

	snprintf(path, sizeof(path), "%s/catalog.db", dir);
	if (catalog_db_open(path, true, &db, err, sizeof(err)) < 0) {
		fprintf(stderr, "setup: %s\n", err);
		exit(2);
	}
	fill(db, true);
	check_catalog(path);

	/* The index follows updates and deletes, seen by an open reader. */
	conn_open(path, &c);
	SEARCH("yesterday", 10);
	CHECK_STR(ids(j, "tracks"), "92");
	exec_sql(db, "UPDATE tracks SET title = 'Tomorrow', title_key = 'tomorrow' WHERE id = 146");
	SEARCH("yesterday", 10);
	CHECK_STR(ids(j, "tracks"), "");
	SEARCH("tomorrow", 10);
	CHECK_STR(ids(j, "tracks"), "92");
	exec_sql(db, "UPDATE albums SET title = 'Rubber Soul' WHERE id = 129");
	SEARCH("rubber", 10);
	CHECK_STR(ids(j, "albums"), "81");
	CHECK_STR(ids(j, "tracks"), "91,92");
	exec_sql(db, "DELETE FROM tracks WHERE id = 145");
	SEARCH("help", 10);
	CHECK_STR(ids(j, "tracks"), "97,96");
	json_decref(j);
	conn_close(&c);
	sqlite3_close(db);
	unlink(path);
}

/* A catalog written by version 1 (no search tables) is indexed when it is
 * opened for writing. */
static void test_migration(void)
{
	char path[256], err[256];
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/v1.db", dir);
	if (catalog_db_open(path, true, &db, err, sizeof(err)) < 0) {
		fprintf(stderr, "setup: %s\n", err);
		exit(2);
	}
	exec_sql(db, "DROP TRIGGER search_artists_ins; DROP TRIGGER search_artists_upd;"
		     "DROP TRIGGER search_artists_del; DROP TRIGGER search_albums_ins;"
		     "DROP TRIGGER search_albums_upd; DROP TRIGGER search_albums_del;"
		     "DROP TRIGGER search_tracks_ins; DROP TRIGGER search_tracks_upd;"
		     "DROP TRIGGER search_tracks_del; DROP TABLE search_artists;"
		     "DROP TABLE search_albums; DROP TABLE search_tracks; DROP TABLE search_terms;"
		     "PRAGMA user_version = 1");
	fill(db, false);
	sqlite3_close(db);
	if (catalog_db_open(path, true, &db, err, sizeof(err)) < 0) {
		fprintf(stderr, "migration: %s\n", err);
		unit_failed_checks++;
		return;
	}
	sqlite3_close(db);
	check_catalog(path); /* typos included: the terms were filled */
}

int main(void)
{
	if (!mkdtemp(dir) || sqlite3_open(":memory:", &mem) != SQLITE_OK) {
		perror("setup");
		return 2;
	}
	TEST_RUN(test_query_words);
	TEST_RUN(test_query_letters);
	TEST_RUN(test_distance);
	TEST_RUN(test_match_expr);
	TEST_RUN(test_search_catalog);
	TEST_RUN(test_migration);
	sqlite3_close(mem);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	TEST_EXIT();
}
