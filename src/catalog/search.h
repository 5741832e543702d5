#ifndef CHORUS_CATALOG_SEARCH_H
#define CHORUS_CATALOG_SEARCH_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "catalog/read.h"
#include "util/buf.h"

/*
 * Search as you type over artists, albums and tracks (GET /api/v1/search).
 *
 * The index is three FTS5 tables kept current by SQL triggers on the
 * catalog tables (so any writer, inside its own transaction, keeps it), and
 * a table of indexed terms for typo lookups that writers fill with
 * search_index_terms. Text is split and folded by FTS5's own unicode61
 * tokenizer (lower case, diacritics removed): the query goes through the
 * same one, so "Beyoncé" and "beyonce" are one term.
 *
 * A query is a list of words; every word must match, each in any field
 * (title, artist, album), as a whole word or a prefix, and words of
 * SEARCH_TYPO_MIN characters or more also with one typo (Damerau-Levenshtein
 * distance 1). Matches are found tier by tier (all words whole, then
 * prefixes, then typos), each tier's query bounded to SEARCH_CANDIDATES
 * rows, and ranked in C; see search.c.
 */

/* The tokenizer of the index tables and of queries: they must agree. */
#define SEARCH_TOKENIZER "unicode61"
#define SEARCH_TOKENIZER_ARGS "remove_diacritics", "2"

#define SEARCH_QUERY_MAX 256 /* bytes of q */
#define SEARCH_WORDS_MAX 16  /* words past this are ignored */
#define SEARCH_TYPO_MIN 5    /* characters a word needs to forgive a typo */
#define SEARCH_TERM_MIN 4    /* characters of the terms kept for typo lookups */
#define SEARCH_WORD_CHARS 64 /* longer words never match with a typo */
#define SEARCH_ALTS_MAX 8    /* typo alternatives per word */
#define SEARCH_LIMIT_MAX 50
#define SEARCH_CANDIDATES 32 /* rows a tier ranks per list, at most */

/* ---- schema (catalog/db.c) ---- */

/* Schema version 2: the FTS5 tables, their triggers, the terms table. */
extern const char search_schema_sql[];

/*
 * Indexes the rows already in the catalog (the v1 -> v2 migration): fills
 * the FTS5 tables and the terms table. Runs inside the caller's
 * transaction. 0, or -EIO with a message in err.
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

/* ---- queries ---- */

struct search_word {
	const char *p; /* folded, NUL-terminated, inside the query's buffer */
	size_t len;    /* bytes */
	size_t chars;  /* code points */
	bool whole;    /* never a prefix (see search_query_parse) */
};

struct search_query {
	int n;
	struct search_word w[SEARCH_WORDS_MAX];
	char buf[4 * SEARCH_QUERY_MAX + 2 * SEARCH_WORDS_MAX];
};

/*
 * Splits q into folded words. A word given twice is kept once; words past
 * SEARCH_WORDS_MAX are dropped; q of only punctuation or spaces gives
 * n == 0. With more than two one-letter words, those before the last are
 * whole words ("j s bach"), never prefixes: each one-letter prefix matches
 * a third of a catalog, and an AND of four of them that finds nothing is a
 * walk of them all (14 ms on 1M tracks). 0, -E2BIG when len >
 * SEARCH_QUERY_MAX, -EIO when the tokenizer failed.
 */
int search_query_parse(search_tokenizer_t *t, const char *q, size_t len, struct search_query *out);

/*
 * Optimal-string-alignment distance (Damerau-Levenshtein where a
 * transposition of neighbours is one edit) between two UTF-8 strings,
 * counted in code points and capped at 2 (2 means "2 or more"). With
 * prefix, the distance from a to the nearest prefix of b. Strings longer
 * than SEARCH_WORD_CHARS code points give 2.
 */
int search_distance(const char *a, size_t alen, const char *b, size_t blen, bool prefix);

/* Typo alternatives of one word: terms (exact) or term prefixes. */
struct search_alts {
	int n;
	struct {
		char *p; /* owned */
		bool prefix;
	} alt[SEARCH_ALTS_MAX];
};

enum search_tier {
	SEARCH_EXACT,  /* every word a whole word */
	SEARCH_PREFIX, /* every word a prefix */
	SEARCH_TYPO,   /* every word a prefix or one of its alternatives */
	SEARCH_TIERS
};

/*
 * The FTS5 MATCH expression of a tier: every word quoted (so nothing in a
 * query reaches FTS5 as syntax), joined by AND, and restricted to column
 * when not NULL. alts (one per word) only for SEARCH_TYPO. 0, or -1 when
 * out's cap is passed or q has no words.
 */
int search_match_expr(const struct search_query *q, enum search_tier tier,
                      const struct search_alts *alts, const char *column, buf_t *out);

/* ---- the endpoint ---- */

/*
 * A search context on a catalog reader's connection: its statements and
 * tokenizer. One per reader, on the reader's thread.
 */
typedef struct search search_t;

int search_open(catalog_reader_t *r, search_t **out, char *err, size_t errlen);
void search_close(search_t *s);

/*
 * Appends {"artists":[...],"albums":[...],"tracks":[...],"top":...} for q
 * (at most SEARCH_QUERY_MAX bytes, not only white space: the caller checks)
 * with at most limit (1..SEARCH_LIMIT_MAX) objects per list, best first.
 * The objects are those of the catalog endpoints; "top" is
 * {"kind":"artist"|"album"|"track","id":ID} naming the single best hit, or
 * null. Returns an HTTP status: 200, 400 for a bad q or limit, 500 on a
 * database error or past out's cap (out then as it was).
 */
int search_json(search_t *s, const char *q, size_t len, int limit, buf_t *out);

#endif
