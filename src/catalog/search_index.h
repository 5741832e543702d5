#ifndef CHORUS_CATALOG_SEARCH_INDEX_H
#define CHORUS_CATALOG_SEARCH_INDEX_H

#include <sqlite3.h>
#include <stddef.h>

/*
 * Search's index, as writers and the schema keep it (the queries are in
 * catalog/search.h). Text is split and folded by FTS5's own unicode61
 * tokenizer (lower case, diacritics removed), for the index tables and for
 * queries alike, so "Beyoncé" and "beyonce" are one term.
 */

/* The tokenizer of the index tables and of queries: they must agree. */
#define SEARCH_TOKENIZER "unicode61"
#define SEARCH_TOKENIZER_ARGS "remove_diacritics", "2"
/* The same, as the index tables' tokenize option (catalog/db.c). */
#define SEARCH_TOKENIZE_OPTION "unicode61 remove_diacritics 2"

#define SEARCH_TERM_MIN 4 /* characters of the terms kept for typo lookups */

/* ---- schema (catalog/db.c) ---- */

/*
 * Indexes the rows already in the catalog (the v1 -> v2 migration, whose
 * DDL made the tables empty): fills the FTS5 tables and the terms table.
 * Runs inside the caller's transaction. 0, or -EIO with a message in err.
 */
int search_schema_fill(sqlite3 *db, char *err, size_t errlen);

/* Merges each FTS5 table into one segment: after a bulk build (the
 * migration) or a large ingest. 0 or -EIO (logged). */
int search_optimize(sqlite3 *db);

/* ---- tokenizer ---- */

/*
 * FTS5's unicode61 tokenizer, configured as the index tables' one, from
 * db's FTS5 module. Use only while db is open, on db's thread.
 */
typedef struct search_tokenizer search_tokenizer_t;

int search_tokenizer_open(sqlite3 *db, search_tokenizer_t **out);
void search_tokenizer_close(search_tokenizer_t *t);

/* Called per token (folded, valid only during the call); non-zero stops. */
typedef int (*search_token_fn)(void *ctx, const char *tok, size_t len);
/* 0, or -EIO when the tokenizer failed, or fn's non-zero value. */
int search_tokenize(search_tokenizer_t *t, const char *text, size_t len, search_token_fn fn,
		    void *ctx);

/* ---- writers ---- */

/*
 * Adds text's terms of SEARCH_TERM_MIN characters or more to the typo
 * terms table. Call it in the transaction that writes the artist, album or
 * track named text (the triggers keep the FTS5 tables; this table is kept
 * from C because SQL cannot reach the tokenizer). Terms are never removed:
 * a stale one only costs a typo candidate that matches nothing. NULL text
 * is a no-op. 0 or -EIO (logged).
 */
int search_index_terms(sqlite3 *db, const char *text);

/* ---- shared with catalog/search.c ---- */

/* Code points in s[0..len). */
size_t search__utf8_chars(const char *s, size_t len);
/* s reversed by code point into out (len + 1 bytes). */
void search__utf8_reverse(const char *s, size_t len, char *out);

#endif
