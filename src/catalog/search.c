/*
 * Search as you type.
 *
 * Index. Three FTS5 tables (search_artists, search_albums, search_tracks;
 * rowid = the entity id) hold the searchable text, kept by the catalog's
 * triggers (catalog/db.c), and a table of typo terms kept by writers
 * (catalog/search_index.c); this file only reads them.
 *
 * Typos. search_terms holds every indexed term of SEARCH_TERM_MIN
 * characters or more, with its reverse and its length. A word of n
 * characters with one edit keeps either its first (n-1)/2 characters or
 * its last n-1-(n-1)/2 intact, and a length of n-1 to n+1, so its
 * candidates are range scans on (len, term) and (len, rterm), short since
 * each is of one length; a word still being typed (the last) also scans
 * terms of any length on its start for a prefix within one edit. Each
 * candidate is verified with the optimal-string-alignment distance.
 *
 * Ranking. Per list, tier by tier (all words whole, then prefixes, then
 * typos), candidates are collected in rowid order, at most
 * SEARCH_CANDIDATES per tier; the next tier runs only while fewer than
 * limit were found. For one word, the name column's matches come first and
 * the other columns are read only when those are fewer than that (a column
 * filter, costly over an AND of common words, so not for several words).
 * No query asks FTS5 to rank:
 * bm25 counts every row of each term to weigh it, which for "b" is most of
 * the table. The candidates are scored in C from their own text: for each
 * word, its best match (whole word 3, prefix 2, typo 1) times its field's
 * weight (name 4, artist 2, album 1), plus bonuses when the name is the
 * query or starts with it, less a little per word of the name. Tier first,
 * then score, then id. An exact name match ("the" before it ignored) makes
 * a hit the "top" one, artists before albums before tracks; without one,
 * the head of the list with the best tier, in the same order.
 */
#include "catalog/search.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "util/log.h"
#include "util/xalloc.h"

/* ------------------------------------------------------------ UTF-8 */

/* Bytes of the first chars code points of s. */
static size_t utf8_prefix(const char *s, size_t len, size_t chars)
{
	size_t i = 0;

	while (i < len && chars > 0) {
		i++;
		while (i < len && ((unsigned char)s[i] & 0xc0) == 0x80)
			i++;
		chars--;
	}
	return i;
}

/* Decodes up to max code points (lenient: tokens are valid UTF-8); returns
 * the count, or max + 1 when there are more. */
static size_t utf8_decode(const char *s, size_t len, uint32_t *out, size_t max)
{
	size_t n = 0, i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i++];
		uint32_t cp = c;
		int more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;

		if (more)
			cp = c & (0x3f >> more);
		while (more-- > 0 && i < len)
			cp = (cp << 6) | ((unsigned char)s[i++] & 0x3f);
		if (n == max)
			return max + 1;
		out[n++] = cp;
	}
	return n;
}
/* ------------------------------------------------------------ typo distance */

int search_distance(const char *a, size_t alen, const char *b, size_t blen, bool prefix)
{
	uint32_t x[SEARCH_WORD_CHARS], y[SEARCH_WORD_CHARS];
	/* Three rows of the OSA matrix: i-2, i-1, i. */
	int r0[SEARCH_WORD_CHARS + 1], r1[SEARCH_WORD_CHARS + 1], r2[SEARCH_WORD_CHARS + 1];
	int *pp = r0, *p = r1, *c = r2;
	size_t n = utf8_decode(a, alen, x, SEARCH_WORD_CHARS);
	size_t m = utf8_decode(b, blen, y, SEARCH_WORD_CHARS);
	int best;

	if (n > SEARCH_WORD_CHARS)
		return 2;
	if (m > SEARCH_WORD_CHARS) {
		if (!prefix)
			return 2;
		m = SEARCH_WORD_CHARS; /* a prefix within one edit is at most n + 1 long */
	}
	if (prefix && m > n + 1)
		m = n + 1;
	if (!prefix && (n > m + 1 || m > n + 1))
		return 2;
	for (size_t j = 0; j <= m; j++)
		p[j] = (int)j;
	for (size_t i = 1; i <= n; i++) {
		int rowmin;
		c[0] = (int)i;
		rowmin = c[0];
		for (size_t j = 1; j <= m; j++) {
			int cost = x[i - 1] != y[j - 1];
			int v = p[j - 1] + cost;
			if (p[j] + 1 < v)
				v = p[j] + 1;
			if (c[j - 1] + 1 < v)
				v = c[j - 1] + 1;
			if (i > 1 && j > 1 && x[i - 1] == y[j - 2] && x[i - 2] == y[j - 1] &&
			    pp[j - 2] + 1 < v)
				v = pp[j - 2] + 1;
			c[j] = v;
			if (v < rowmin)
				rowmin = v;
		}
		/* Every later cell is at least this row's minimum, less one for a
		 * transposition that reaches back a row. */
		if (rowmin >= 3)
			return 2;
		int *t = pp;
		pp = p;
		p = c;
		c = t;
	}
	best = p[m];
	if (prefix)
		for (size_t j = 0; j <= m; j++)
			if (p[j] < best)
				best = p[j];
	return best > 2 ? 2 : best;
}

/* ------------------------------------------------------------ queries */

struct parse_ctx {
	struct search_query *q;
	size_t used;
};

static int word_cb(void *p, const char *tok, size_t len)
{
	struct parse_ctx *c = p;
	struct search_query *q = c->q;

	for (int i = 0; i < q->n; i++)
		if (q->w[i].len == len && memcmp(q->w[i].p, tok, len) == 0)
			return 0; /* again: no narrower */
	if (q->n == SEARCH_WORDS_MAX)
		return 1; /* the rest is dropped */
	if (c->used + len + 1 > sizeof(q->buf))
		return 1;
	memcpy(q->buf + c->used, tok, len);
	q->buf[c->used + len] = '\0';
	q->w[q->n].p = q->buf + c->used;
	q->w[q->n].len = len;
	q->w[q->n].chars = search__utf8_chars(tok, len);
	q->w[q->n].whole = false;
	q->n++;
	c->used += len + 1;
	return 0;
}

int search_query_parse(search_tokenizer_t *t, const char *q, size_t len, struct search_query *out)
{
	struct parse_ctx c = {out, 0};
	int rc, letters = 0;

	out->n = 0;
	if (len > SEARCH_QUERY_MAX)
		return -E2BIG;
	rc = search_tokenize(t, q, len, word_cb, &c);
	if (rc < 0)
		return rc;
	for (int i = 0; i < out->n; i++)
		letters += out->w[i].chars == 1;
	for (int i = 0; letters > 2 && i < out->n - 1; i++)
		out->w[i].whole = out->w[i].chars == 1;
	return 0;
}

/* A token as an FTS5 string: in double quotes, inner quotes doubled. */
static int put_quoted(buf_t *out, const char *s, size_t len, bool prefix)
{
	if (buf_append(out, "\"", 1) < 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' && buf_append(out, "\"", 1) < 0)
			return -1;
		if (buf_append(out, s + i, 1) < 0)
			return -1;
	}
	return buf_appends(out, prefix ? "\"*" : "\"");
}

int search_match_expr(const struct search_query *q, enum search_tier tier,
		      const struct search_alts *alts, const char *column, buf_t *out)
{
	size_t mark = out->len;

	if (q->n <= 0)
		return -1;
	if (column && buf_printf(out, "%s : (", column) < 0)
		goto fail;
	for (int i = 0; i < q->n; i++) {
		const struct search_word *w = &q->w[i];
		bool group = tier == SEARCH_TYPO && alts && alts[i].n > 0;

		if (i > 0 && buf_appends(out, " AND ") < 0)
			goto fail;
		if (group && buf_appends(out, "(") < 0)
			goto fail;
		if (put_quoted(out, w->p, w->len, tier != SEARCH_EXACT && !w->whole) < 0)
			goto fail;
		for (int k = 0; group && k < alts[i].n; k++)
			if (buf_appends(out, " OR ") < 0 ||
			    put_quoted(out, alts[i].alt[k].p, strlen(alts[i].alt[k].p),
				       alts[i].alt[k].prefix) < 0)
				goto fail;
		if (group && buf_appends(out, ")") < 0)
			goto fail;
	}
	if (column && buf_appends(out, ")") < 0)
		goto fail;
	return 0;
fail:
	out->len = mark;
	if (out->data)
		out->data[mark] = '\0';
	return -1;
}

/* ------------------------------------------------------------ the search */

enum { L_ARTISTS, L_ALBUMS, L_TRACKS, LISTS };

static const struct list_def {
	const char *name; /* JSON key */
	const char *kind; /* "top" kind */
	enum catalog_kind ckind;
	const char *table;
	int ncols;
	const char *primary; /* the name column */
	int weight[3];       /* per column */
} lists[LISTS] = {
	[L_ARTISTS] = {"artists", "artist", CATALOG_ARTIST, "search_artists", 1, "name", {4}},
	[L_ALBUMS] = {"albums", "album", CATALOG_ALBUM, "search_albums", 2, "title", {4, 2}},
	[L_TRACKS] = {"tracks", "track", CATALOG_TRACK, "search_tracks", 3, "title", {4, 2, 1}},
};

enum { ST_TERMS, ST_TERMS_LEN, ST_RTERMS_LEN, ST_LIST0, ST_N = ST_LIST0 + LISTS };

/* Rows a typo range scan reads at most. The scans for whole words are of
 * one length each, so they are short; the one for a word being typed is
 * not, and stops here. */
#define TERM_SCAN 1000

/* Candidates of one list: fewer than limit from earlier tiers, then a
 * tier's name matches and other rows. */
#define CAND_MAX (SEARCH_LIMIT_MAX + 2 * SEARCH_CANDIDATES)

struct cand {
	int64_t id;
	int tier, score, name_words;
	bool name_eq;
};

struct search {
	catalog_reader_t *reader;
	sqlite3 *db;
	search_tokenizer_t *tok;
	sqlite3_stmt *st[ST_N];
	/* Per request. */
	struct search_query q;
	struct search_alts alts[SEARCH_WORDS_MAX];
	bool alts_done, any_alts;
	struct cand cand[CAND_MAX];
	int ncand;
	buf_t expr;
};

int search_open(catalog_reader_t *r, search_t **out, char *err, size_t errlen)
{
	search_t *s = xcalloc(1, sizeof(*s));
	char sql[256];

	s->reader = r;
	s->db = catalog_reader_db(r);
	if (search_tokenizer_open(s->db, &s->tok) < 0) {
		snprintf(err, errlen, "search: no FTS5 %s tokenizer", SEARCH_TOKENIZER);
		goto fail;
	}
	for (int i = 0; i < ST_N; i++) {
		if (i == ST_TERMS)
			snprintf(sql, sizeof(sql),
				 "SELECT term FROM search_terms"
				 " WHERE term >= ?1 AND term < ?2 LIMIT %d",
				 TERM_SCAN);
		else if (i == ST_TERMS_LEN)
			snprintf(sql, sizeof(sql),
				 "SELECT term FROM search_terms"
				 " WHERE len = ?3 AND term >= ?1 AND term < ?2 LIMIT %d",
				 TERM_SCAN);
		else if (i == ST_RTERMS_LEN)
			snprintf(sql, sizeof(sql),
				 "SELECT term FROM search_terms"
				 " WHERE len = ?3 AND rterm >= ?1 AND rterm < ?2 LIMIT %d",
				 TERM_SCAN);
		else {
			const struct list_def *l = &lists[i - ST_LIST0];
			snprintf(sql, sizeof(sql),
				 "SELECT rowid, * FROM %s WHERE %s MATCH ?1 LIMIT ?2", l->table,
				 l->table);
		}
		if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
				       NULL) != SQLITE_OK) {
			snprintf(err, errlen, "search: %s", sqlite3_errmsg(s->db));
			goto fail;
		}
	}
	buf_init(&s->expr, 64 * 1024);
	*out = s;
	return 0;
fail:
	search_close(s);
	return -EIO;
}

static void alts_clear(search_t *s)
{
	for (int i = 0; i < SEARCH_WORDS_MAX; i++) {
		for (int k = 0; k < s->alts[i].n; k++)
			free(s->alts[i].alt[k].p);
		s->alts[i].n = 0;
	}
	s->alts_done = s->any_alts = false;
}

void search_close(search_t *s)
{
	if (!s)
		return;
	alts_clear(s);
	for (int i = 0; i < ST_N; i++)
		sqlite3_finalize(s->st[i]);
	search_tokenizer_close(s->tok);
	buf_free(&s->expr);
	free(s);
}

static int step(search_t *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return rc;
	log_error("search: %s (%d): %s", sqlite3_errmsg(s->db), rc, sqlite3_sql(st));
	return -1;
}

static void alt_add(struct search_alts *a, const char *p, size_t len, bool prefix)
{
	for (int k = 0; k < a->n; k++)
		if (a->alt[k].prefix == prefix && strlen(a->alt[k].p) == len &&
		    memcmp(a->alt[k].p, p, len) == 0)
			return;
	if (a->n == SEARCH_ALTS_MAX)
		return;
	a->alt[a->n].p = xmalloc(len + 1);
	memcpy(a->alt[a->n].p, p, len);
	a->alt[a->n].p[len] = '\0';
	a->alt[a->n].prefix = prefix;
	a->n++;
}

/* Scans terms for typo alternatives of w: with which ST_TERMS_LEN or
 * ST_RTERMS_LEN, the terms of len characters whose start (or reversed
 * end) is key[0..klen), within one edit of w; with ST_TERMS, the terms of
 * any length starting with key that have a prefix within one edit of w (w
 * is still being typed). 0 or -1. */
static int typo_scan(search_t *s, int which, int64_t len, const char *key, size_t klen,
		     const struct search_word *w, struct search_alts *a)
{
	sqlite3_stmt *st = s->st[which];
	char hi[SEARCH_QUERY_MAX + 2];
	int rc;

	memcpy(hi, key, klen);
	hi[klen] = (char)0xff; /* above any UTF-8 continuation of the key */
	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, key, (int)klen, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, hi, (int)klen + 1, SQLITE_STATIC);
	if (which != ST_TERMS)
		sqlite3_bind_int64(st, 3, len);
	while ((rc = step(s, st)) == SQLITE_ROW && a->n < SEARCH_ALTS_MAX) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		size_t tlen = (size_t)sqlite3_column_bytes(st, 0), n;

		if (!t || (tlen == w->len && memcmp(t, w->p, tlen) == 0))
			continue; /* the word itself: the other tiers have it */
		if (which != ST_TERMS) {
			if (search_distance(w->p, w->len, t, tlen, false) <= 1)
				alt_add(a, t, tlen, false);
			continue;
		}
		if (search_distance(w->p, w->len, t, tlen, true) > 1)
			continue;
		/* The term's prefix as long as the word (the typed part), or
		 * one longer when the word has a letter too many. */
		n = utf8_prefix(t, tlen, w->chars);
		if (search_distance(w->p, w->len, t, n, false) > 1)
			n = utf8_prefix(t, tlen, w->chars + 1);
		alt_add(a, t, n, n < tlen);
	}
	sqlite3_reset(st);
	return rc < 0 ? -1 : 0;
}

static int typo_alts(search_t *s)
{
	if (s->alts_done)
		return 0;
	s->alts_done = true;
	for (int i = 0; i < s->q.n; i++) {
		const struct search_word *w = &s->q.w[i];
		char rev[SEARCH_QUERY_MAX + 1];
		size_t p, sfx, pb, sb;

		if (w->chars < SEARCH_TYPO_MIN || w->chars > SEARCH_WORD_CHARS ||
		    w->len > SEARCH_QUERY_MAX)
			continue;
		/* One edit leaves the first p or the last sfx characters alone,
		 * and the length within one. */
		p = (w->chars - 1) / 2;
		sfx = w->chars - 1 - p;
		search__utf8_reverse(w->p, w->len, rev);
		pb = utf8_prefix(w->p, w->len, p);
		sb = utf8_prefix(rev, w->len, sfx);
		for (int64_t len = (int64_t)w->chars - 1; len <= (int64_t)w->chars + 1; len++)
			if (typo_scan(s, ST_TERMS_LEN, len, w->p, pb, w, &s->alts[i]) < 0 ||
			    typo_scan(s, ST_RTERMS_LEN, len, rev, sb, w, &s->alts[i]) < 0)
				return -1;
		if (i == s->q.n - 1 && typo_scan(s, ST_TERMS, 0, w->p, pb, w, &s->alts[i]) < 0)
			return -1;
		if (s->alts[i].n > 0)
			s->any_alts = true;
	}
	return 0;
}

/* ---- scoring a candidate from its own text ---- */

#define FIELD_WORDS 64

struct field {
	int n;
	const char *p[FIELD_WORDS];
	size_t len[FIELD_WORDS];
	char buf[1024];
	size_t used;
};

static int field_cb(void *p, const char *tok, size_t len)
{
	struct field *f = p;

	if (f->n == FIELD_WORDS || f->used + len + 1 > sizeof(f->buf))
		return 1;
	memcpy(f->buf + f->used, tok, len);
	f->buf[f->used + len] = '\0';
	f->p[f->n] = f->buf + f->used;
	f->len[f->n++] = len;
	f->used += len + 1;
	return 0;
}

/* 3 whole word, 2 prefix, 1 typo, 0 none. */
static int word_match(const struct search_word *w, bool last, const char *t, size_t tlen)
{
	if (tlen == w->len && memcmp(t, w->p, tlen) == 0)
		return 3;
	if (tlen > w->len && memcmp(t, w->p, w->len) == 0)
		return 2;
	if (w->chars >= SEARCH_TYPO_MIN && search_distance(w->p, w->len, t, tlen, last) <= 1)
		return 1;
	return 0;
}

static bool is_the(const struct field *f, int i)
{
	return f->len[i] == 3 && memcmp(f->p[i], "the", 3) == 0;
}

static void score(search_t *s, const struct list_def *l, sqlite3_stmt *st, struct cand *c)
{
	const struct search_query *q = &s->q;
	struct field f[3];
	int total = 0, skip, starts = 1;

	for (int k = 0; k < l->ncols; k++) {
		const char *text = (const char *)sqlite3_column_text(st, 1 + k);
		f[k].n = 0;
		f[k].used = 0;
		if (text)
			search_tokenize(s->tok, text, (size_t)sqlite3_column_bytes(st, 1 + k),
					field_cb, &f[k]);
	}
	for (int i = 0; i < q->n; i++) {
		int best = 0;
		for (int k = 0; k < l->ncols; k++)
			for (int j = 0; j < f[k].n; j++) {
				int m = word_match(&q->w[i], i == q->n - 1, f[k].p[j], f[k].len[j]);
				if (m * l->weight[k] > best)
					best = m * l->weight[k];
			}
		total += best;
	}
	/* The name is the query ("The Beatles" for "beatles" too), or starts
	 * with it word by word. */
	skip = f[0].n > q->n && is_the(&f[0], 0) ? 1 : 0;
	c->name_eq = f[0].n - skip == q->n;
	for (int i = 0; i < q->n; i++) {
		int m = i + skip < f[0].n ? word_match(&q->w[i], i == q->n - 1, f[0].p[i + skip],
						       f[0].len[i + skip])
					  : 0;
		if (m != 3)
			c->name_eq = false;
		if (m < 2)
			starts = 0;
	}
	c->name_words = f[0].n;
	c->score = 10 * total + (c->name_eq ? 1000 : 0) + (starts ? 100 : 0) - f[0].n;
}

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->tier != y->tier)
		return x->tier - y->tier;
	if (x->score != y->score)
		return y->score - x->score;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Runs one MATCH expression, adding up to SEARCH_CANDIDATES rows not yet
 * seen; the number of rows FTS5 returned, or -1. An expression FTS5
 * refuses (it should not happen: every word is quoted) is logged and adds
 * nothing. */
static int collect(search_t *s, int list, int tier)
{
	const struct list_def *l = &lists[list];
	sqlite3_stmt *st = s->st[ST_LIST0 + list];
	int rc, rows = 0;

	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, s->expr.data, (int)s->expr.len, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, SEARCH_CANDIDATES);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		bool seen = false;

		rows++;
		for (int i = 0; i < s->ncand && !seen; i++)
			seen = s->cand[i].id == id;
		if (seen || s->ncand == CAND_MAX)
			continue;
		s->cand[s->ncand].id = id;
		s->cand[s->ncand].tier = tier;
		score(s, l, st, &s->cand[s->ncand]);
		s->ncand++;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return rows;
	if ((rc & 0xff) == SQLITE_ERROR) {
		log_warn("search: FTS5 refused %s: %s", s->expr.data, sqlite3_errmsg(s->db));
		return 0;
	}
	log_error("search: %s (%d)", sqlite3_errmsg(s->db), rc);
	return -1;
}

/* Fills s->cand with the best of one list, sorted; 0 or -1. */
static int rank_list(search_t *s, int list, int limit)
{
	const struct list_def *l = &lists[list];

	s->ncand = 0;
	for (int tier = 0; tier < SEARCH_TIERS && s->ncand < limit; tier++) {
		int rows;

		if (tier == SEARCH_TYPO) {
			if (typo_alts(s) < 0)
				return -1;
			if (!s->any_alts)
				break;
		}
		/* One word: its name-column matches first, since they rank above
		 * the rest of their tier; when there are more of them than are
		 * ranked, the other columns could add nothing that ranks higher.
		 * Not for several words: a column filter is checked row by row,
		 * and over an AND of common words that is a walk of all their
		 * rows (15 ms for "love night heart" on 1M tracks). */
		if (l->ncols > 1 && s->q.n == 1) {
			buf_reset(&s->expr);
			if (search_match_expr(&s->q, tier, s->alts, l->primary, &s->expr) < 0)
				return 0; /* an expression past 64 KiB: nothing found */
			rows = collect(s, list, tier);
			if (rows < 0)
				return -1;
			if (rows == SEARCH_CANDIDATES)
				continue;
		}
		buf_reset(&s->expr);
		if (search_match_expr(&s->q, tier, s->alts, NULL, &s->expr) < 0)
			return 0;
		if (collect(s, list, tier) < 0)
			return -1;
	}
	qsort(s->cand, (size_t)s->ncand, sizeof(s->cand[0]), cand_cmp);
	if (s->ncand > limit)
		s->ncand = limit;
	return 0;
}

int search_json(search_t *s, const char *q, size_t len, int limit, buf_t *out)
{
	size_t mark = out->len;
	struct {
		bool any, name_eq;
		int tier;
		int64_t id;
	} head[LISTS] = {0};
	int status = 500, top = -1, rc;
	json_t j;

	if (limit < 1 || limit > SEARCH_LIMIT_MAX)
		return 400;
	rc = search_query_parse(s->tok, q, len, &s->q);
	if (rc < 0)
		return rc == -E2BIG ? 400 : 500;
	alts_clear(s);
	if (catalog_reader_begin(s->reader) < 0)
		goto out;
	json_init(&j, out);
	json_obj_begin(&j);
	for (int li = 0; li < LISTS; li++) {
		json_key(&j, lists[li].name);
		json_arr_begin(&j);
		if (s->q.n > 0 && rank_list(s, li, limit) < 0)
			goto out;
		for (int i = 0; s->q.n > 0 && i < s->ncand; i++) {
			int got =
				catalog_json_object(s->reader, lists[li].ckind, s->cand[i].id, &j);
			if (got < 0)
				goto out;
			if (got == 0 || head[li].any)
				continue; /* a row deleted since the index was read: never */
			head[li].any = true;
			head[li].name_eq = s->cand[i].name_eq;
			head[li].tier = s->cand[i].tier;
			head[li].id = s->cand[i].id;
		}
		json_arr_end(&j);
		if (json_failed(&j))
			break;
	}
	/* The best hit: a name equal to the query, artists first; else the
	 * best tier, artists first. */
	for (int li = 0; li < LISTS && top < 0; li++)
		if (head[li].any && head[li].name_eq)
			top = li;
	if (top < 0)
		for (int li = 0; li < LISTS; li++)
			if (head[li].any && (top < 0 || head[li].tier < head[top].tier))
				top = li;
	json_key(&j, "top");
	if (top < 0) {
		json_nil(&j);
	} else {
		char hex[17];
		catalog_id_str(head[top].id, hex);
		json_obj_begin(&j);
		json_kstr(&j, "kind", lists[top].kind);
		json_kstr(&j, "id", hex);
		json_obj_end(&j);
	}
	json_obj_end(&j);
	if (json_failed(&j))
		log_error("search: response body over the %zu byte cap", out->max);
	else
		status = 200;
out:
	for (int i = 0; i < ST_N; i++)
		sqlite3_reset(s->st[i]);
	catalog_reader_end(s->reader);
	alts_clear(s);
	if (status != 200) {
		out->len = mark;
		if (out->data)
			out->data[mark] = '\0';
	}
	return status;
}
