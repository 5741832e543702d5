/*
 * libFuzzer: the search query parser and MATCH expression builder. Any
 * input must parse into folded words that FTS5 accepts in every tier's
 * expression (so nothing in a query reaches FTS5 as syntax), and the typo
 * distance must be symmetric, 0 only for equal words, and capped at 2.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/search.h"

static sqlite3 *db;
static sqlite3_stmt *match;
static search_tokenizer_t *tok;

static void setup(void)
{
	if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
	    sqlite3_exec(
		    db,
		    "CREATE VIRTUAL TABLE s USING fts5(title, artist, album,"
		    " tokenize=\"unicode61 remove_diacritics 2\", prefix='1 2 3',"
		    " detail=column);"
		    "INSERT INTO s VALUES ('Help!', 'The Beatles', 'Help!'),"
		    " ('Hoppípolla', 'Sigur Rós', 'Takk'), ('群青日和', '東京事変', '東京の夜');",
		    NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT rowid FROM s WHERE s MATCH ?1", -1, &match, NULL) !=
		    SQLITE_OK ||
	    search_tokenizer_open(db, &tok) < 0)
		abort();
}

static void run(const char *expr, size_t len)
{
	int rc;

	sqlite3_reset(match);
	sqlite3_bind_text(match, 1, expr, (int)len, SQLITE_STATIC);
	while ((rc = sqlite3_step(match)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE)
		abort(); /* FTS5 read something of the query as syntax */
	sqlite3_reset(match);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct search_query q;
	struct search_alts alts[SEARCH_WORDS_MAX];
	buf_t b;
	int rc;

	if (!db)
		setup();
	rc = search_query_parse(tok, (const char *)data, size, &q);
	if (size > SEARCH_QUERY_MAX) {
		if (rc != -E2BIG)
			abort();
		return 0;
	}
	if (rc != 0 || q.n < 0 || q.n > SEARCH_WORDS_MAX)
		abort();
	/* Each word's neighbour stands in for a typo alternative. */
	memset(alts, 0, sizeof(alts));
	for (int i = 0; i < q.n; i++) {
		if (q.w[i].len == 0 || strlen(q.w[i].p) != q.w[i].len)
			abort();
		alts[i].n = 1;
		alts[i].alt[0].p = (char *)q.w[(i + 1) % q.n].p;
		alts[i].alt[0].prefix = i % 2;
	}
	buf_init(&b, 64 * 1024);
	for (int tier = 0; tier < SEARCH_TIERS; tier++)
		for (int col = 0; col < 2; col++) {
			buf_reset(&b);
			rc = search_match_expr(&q, tier, alts, col ? "title" : NULL, &b);
			if (q.n == 0) {
				if (rc != -1 || b.len != 0)
					abort();
				continue;
			}
			if (rc != 0)
				abort();
			run(b.data, b.len);
		}
	buf_free(&b);
	for (int i = 0; i + 1 < q.n; i++) {
		const struct search_word *x = &q.w[i], *y = &q.w[i + 1];
		int d = search_distance(x->p, x->len, y->p, y->len, false);
		bool same = x->len == y->len && memcmp(x->p, y->p, x->len) == 0;
		if (x->chars > SEARCH_WORD_CHARS || y->chars > SEARCH_WORD_CHARS)
			continue; /* never a typo match: 2 */
		if (d < 0 || d > 2 || d != search_distance(y->p, y->len, x->p, x->len, false) ||
		    (d == 0) != same || search_distance(x->p, x->len, x->p, x->len, true) != 0 ||
		    search_distance(x->p, x->len, y->p, y->len, true) > d)
			abort();
	}
	return 0;
}
