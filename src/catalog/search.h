#ifndef CHORUS_CATALOG_SEARCH_H
#define CHORUS_CATALOG_SEARCH_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "catalog/read.h"
#include "catalog/search_index.h"
#include "util/buf.h"

/*
 * Search as you type over artists, albums and tracks (GET /api/v1/search).
 *
 * The index is three FTS5 tables kept current by SQL triggers on the
 * catalog tables (so any writer, inside its own transaction, keeps it), and
 * a table of indexed terms for typo lookups that writers fill with
 * search_index_terms (catalog/search_index.h, with the tokenizer that
 * queries and the index share).
 *
 * A query is a list of words; every word must match, each in any field
 * (title, artist, album), as a whole word or a prefix, and words of
 * SEARCH_TYPO_MIN characters or more also with one typo (Damerau-Levenshtein
 * distance 1). Matches are found tier by tier (all words whole, then
 * prefixes, then typos), each tier's query bounded to SEARCH_CANDIDATES
 * rows, and ranked in C; see search.c.
 */

#define SEARCH_QUERY_MAX 256 /* bytes of q */
#define SEARCH_WORDS_MAX 16  /* words past this are ignored */
#define SEARCH_TYPO_MIN 5    /* characters a word needs to forgive a typo */
#define SEARCH_WORD_CHARS 64 /* longer words never match with a typo */
#define SEARCH_ALTS_MAX 8    /* typo alternatives per word */
#define SEARCH_LIMIT_MAX 50
#define SEARCH_CANDIDATES 32 /* rows a tier ranks per list, at most */

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
