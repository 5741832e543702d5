/*
 * Search's index side: what writers and the schema upgrade need, apart
 * from the queries (catalog/search.c) so that the catalog's schema code
 * (catalog/db.c) can use it without reaching the read side.
 *
 * The index is three FTS5 tables (search_artists, search_albums,
 * search_tracks; rowid = the entity id), kept by triggers on artists,
 * albums and tracks (their DDL is the catalog's, version 2, in
 * catalog/db.c), so whatever writes the catalog keeps them in its own
 * transaction. The triggers cannot reach the tokenizer, so the typo terms
 * table (search_terms: every indexed term of SEARCH_TERM_MIN characters or
 * more, with its reverse and its length) is filled from C, here, by
 * search_index_terms in the writer's transaction, and in bulk from FTS5's
 * own vocabulary by search_schema_fill when a catalog is first indexed.
 */
#include "catalog/search_index.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

/* ------------------------------------------------------------ tokenizer */

struct search_tokenizer {
	fts5_tokenizer api;
	Fts5Tokenizer *tok;
};

static fts5_api *fts5_api_of(sqlite3 *db)
{
	fts5_api *api = NULL;
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
	sqlite3_step(st);
	sqlite3_finalize(st);
	return api;
}

int search_tokenizer_open(sqlite3 *db, search_tokenizer_t **out)
{
	const char *args[] = {SEARCH_TOKENIZER_ARGS};
	search_tokenizer_t *t = xcalloc(1, sizeof(*t));
	fts5_api *api = fts5_api_of(db);
	void *ud = NULL;

	if (!api || api->iVersion < 2 ||
	    api->xFindTokenizer(api, SEARCH_TOKENIZER, &ud, &t->api) != SQLITE_OK ||
	    t->api.xCreate(ud, args, (int)(sizeof(args) / sizeof(args[0])), &t->tok) != SQLITE_OK) {
		log_error("search: no FTS5 %s tokenizer in this SQLite", SEARCH_TOKENIZER);
		free(t);
		return -EIO;
	}
	*out = t;
	return 0;
}

void search_tokenizer_close(search_tokenizer_t *t)
{
	if (!t)
		return;
	t->api.xDelete(t->tok);
	free(t);
}

struct tok_call {
	search_token_fn fn;
	void *ctx;
	int rc;
};

static int tok_cb(void *p, int flags, const char *tok, int n, int start, int end)
{
	struct tok_call *c = p;

	if ((flags & FTS5_TOKEN_COLOCATED) || n <= 0)
		return SQLITE_OK;
	c->rc = c->fn(c->ctx, tok, (size_t)n);
	return c->rc ? SQLITE_DONE : SQLITE_OK;
}

int search_tokenize(search_tokenizer_t *t, const char *text, size_t len, search_token_fn fn,
		    void *ctx)
{
	struct tok_call c = {fn, ctx, 0};
	int rc;

	if (len == 0)
		return 0;
	if (len > INT32_MAX)
		return -EIO;
	rc = t->api.xTokenize(t->tok, &c, FTS5_TOKENIZE_DOCUMENT, text, (int)len, tok_cb);
	if (c.rc)
		return c.rc;
	return rc == SQLITE_OK || rc == SQLITE_DONE ? 0 : -EIO;
}

/* ------------------------------------------------------------ UTF-8 */

size_t search__utf8_chars(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xc0) != 0x80;
	return n;
}

/* s reversed by code point into out (len + 1 bytes). */
void search__utf8_reverse(const char *s, size_t len, char *out)
{
	size_t i = 0;

	while (i < len) {
		size_t j = i + 1;
		while (j < len && ((unsigned char)s[j] & 0xc0) == 0x80)
			j++;
		memcpy(out + len - j, s + i, j - i);
		i = j;
	}
	out[len] = '\0';
}

/* ------------------------------------------------------------ terms */

struct terms_ctx {
	sqlite3_stmt *ins;
	int rc;
};

static int add_term(sqlite3_stmt *ins, const char *tok, size_t len)
{
	char rev[256];
	size_t chars = search__utf8_chars(tok, len);
	int rc;

	if (len >= sizeof(rev) || chars < SEARCH_TERM_MIN)
		return 0;
	search__utf8_reverse(tok, len, rev);
	sqlite3_reset(ins);
	sqlite3_bind_text(ins, 1, tok, (int)len, SQLITE_TRANSIENT);
	sqlite3_bind_text(ins, 2, rev, (int)len, SQLITE_TRANSIENT);
	sqlite3_bind_int64(ins, 3, (int64_t)chars);
	rc = sqlite3_step(ins);
	sqlite3_reset(ins);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static int term_cb(void *p, const char *tok, size_t len)
{
	struct terms_ctx *c = p;

	return add_term(c->ins, tok, len);
}

#define TERM_INSERT "INSERT OR IGNORE INTO search_terms (term, rterm, len) VALUES (?1, ?2, ?3)"

int search_index_terms(sqlite3 *db, const char *text)
{
	search_tokenizer_t *t = NULL;
	struct terms_ctx c = {0};
	int rc = -EIO;

	if (!text || !*text)
		return 0;
	if (search_tokenizer_open(db, &t) < 0)
		return -EIO;
	if (sqlite3_prepare_v2(db, TERM_INSERT, -1, &c.ins, NULL) != SQLITE_OK)
		goto out;
	rc = search_tokenize(t, text, strlen(text), term_cb, &c);
out:
	if (rc < 0)
		log_error("search: cannot index terms: %s", sqlite3_errmsg(db));
	sqlite3_finalize(c.ins);
	search_tokenizer_close(t);
	return rc < 0 ? -EIO : 0;
}

int search_optimize(sqlite3 *db)
{
	/* One segment per table instead of the many that bulk inserts leave,
	 * so a term lookup opens one segment. On 1M tracks: about 10 s, and
	 * 30 % more searches per second after it. */
	static const char sql[] = "INSERT INTO search_artists (search_artists) VALUES ('optimize');"
				  "INSERT INTO search_albums (search_albums) VALUES ('optimize');"
				  "INSERT INTO search_tracks (search_tracks) VALUES ('optimize');";
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	log_error("search: optimize: %s", msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return -EIO;
}

int search_schema_fill(sqlite3 *db, char *err, size_t errlen)
{
	static const char fill[] =
		/* No merging while filling: the optimize below merges once (a
		 * third of the fill's time on 100,000 tracks). */
		"INSERT INTO search_artists (search_artists, rank) VALUES ('automerge', 0);"
		"INSERT INTO search_albums (search_albums, rank) VALUES ('automerge', 0);"
		"INSERT INTO search_tracks (search_tracks, rank) VALUES ('automerge', 0);"
		"INSERT INTO search_tracks (search_tracks, rank) VALUES ('crisismerge', 1000);"
		"INSERT INTO search_artists (rowid, name) SELECT id, name FROM artists;"
		"INSERT INTO search_albums (rowid, title, artist) SELECT al.id, al.title, ar.name"
		" FROM albums al LEFT JOIN artists ar ON ar.id = al.artist_id;"
		"INSERT INTO search_tracks (rowid, title, artist, album)"
		" SELECT t.id, t.title, ar.name, al.title FROM tracks t"
		" LEFT JOIN artists ar ON ar.id = t.artist_id"
		" LEFT JOIN albums al ON al.id = t.album_id;";
	static const char *const tables[] = {"search_artists", "search_albums", "search_tracks"};
	sqlite3_stmt *ins = NULL, *sel = NULL;
	char *msg = NULL, sql[160];
	int rc = -EIO;

	if (sqlite3_exec(db, fill, NULL, NULL, &msg) != SQLITE_OK)
		goto out;
	if (sqlite3_prepare_v2(db, TERM_INSERT, -1, &ins, NULL) != SQLITE_OK)
		goto out;
	/* The terms as the index holds them, each once: FTS5's vocabulary. */
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		snprintf(sql, sizeof(sql),
			 "CREATE VIRTUAL TABLE temp.search_vocab USING fts5vocab(main, %s, row)",
			 tables[i]);
		if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
			goto out;
		if (sqlite3_prepare_v2(db, "SELECT term FROM temp.search_vocab", -1, &sel, NULL) !=
		    SQLITE_OK)
			goto out;
		while ((rc = sqlite3_step(sel)) == SQLITE_ROW)
			if (add_term(ins, (const char *)sqlite3_column_text(sel, 0),
				     (size_t)sqlite3_column_bytes(sel, 0)) < 0)
				break;
		sqlite3_finalize(sel);
		sel = NULL;
		if (rc != SQLITE_DONE) {
			rc = -EIO;
			goto out;
		}
		rc = -EIO;
		if (sqlite3_exec(db, "DROP TABLE temp.search_vocab", NULL, NULL, &msg) != SQLITE_OK)
			goto out;
	}
	rc = sqlite3_exec(
		     db,
		     "INSERT INTO search_artists (search_artists, rank) VALUES ('automerge', 4);"
		     "INSERT INTO search_albums (search_albums, rank) VALUES ('automerge', 4);"
		     "INSERT INTO search_tracks (search_tracks, rank) VALUES ('automerge', 4);"
		     "INSERT INTO search_tracks (search_tracks, rank) VALUES ('crisismerge', 16);",
		     NULL, NULL, &msg) == SQLITE_OK
		     ? search_optimize(db)
		     : -EIO;
out:
	if (rc < 0)
		snprintf(err, errlen, "catalog: indexing for search: %s",
			 msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	return rc;
}
