/*
 * Play reports: per track, artist, album, location, UTC day or hour, or one line
 * per play (the census), as JSON or CSV.
 *
 * One node reads DATA_DIR/plays.db with the catalog attached; a cluster
 * reads PostgreSQL, which holds every node's shipped plays and the catalog.
 * The queries are the same in both dialects and the rows go through one
 * formatter (struct row hides which database a row came from).
 */
#include <errno.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog/model.h"
#include "sql/pg.h"
#include "plays/plays.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"

static const char *const group_names[] = {
	[PLAYS_GROUP_NONE] = "none",         [PLAYS_GROUP_TRACK] = "track",
	[PLAYS_GROUP_ARTIST] = "artist",     [PLAYS_GROUP_ALBUM] = "album",
	[PLAYS_GROUP_LOCATION] = "location", [PLAYS_GROUP_DAY] = "day",
	[PLAYS_GROUP_HOUR] = "hour",
};

int plays_query_parse(const char *from, const char *to, const char *group, const char *format,
		      struct plays_query *q, char *err, size_t errlen)
{
	memset(q, 0, sizeof(*q));
	q->group = PLAYS_GROUP_TRACK;
	q->format = PLAYS_FORMAT_JSON;
	if (from) {
		if (plays_rfc3339_parse(from, strlen(from), &q->from_ms) < 0) {
			snprintf(err, errlen,
				 "from must be an RFC 3339 date-time with a time zone");
			return -EINVAL;
		}
		q->has_from = true;
	}
	if (to) {
		if (plays_rfc3339_parse(to, strlen(to), &q->to_ms) < 0) {
			snprintf(err, errlen, "to must be an RFC 3339 date-time with a time zone");
			return -EINVAL;
		}
		q->has_to = true;
	}
	if (group) {
		size_t g;
		for (g = 0; g < sizeof(group_names) / sizeof(group_names[0]); g++)
			if (strcmp(group, group_names[g]) == 0)
				break;
		if (g == sizeof(group_names) / sizeof(group_names[0])) {
			snprintf(err, errlen,
				 "group must be track, artist, album, location, day, hour or none");
			return -EINVAL;
		}
		q->group = (enum plays_group)g;
	}
	if (format) {
		if (strcmp(format, "json") == 0) {
			q->format = PLAYS_FORMAT_JSON;
		} else if (strcmp(format, "csv") == 0) {
			q->format = PLAYS_FORMAT_CSV;
		} else {
			snprintf(err, errlen, "format must be json or csv");
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * The queries, written once for both dialects: CAT is where the catalog
 * tables are ("cat." when attached to plays.db), P1/P2 the placeholders,
 * DAY the UTC date of started_at.
 */
/* A deleted track's plays still count, under the names its tombstone
 * kept (deleted_tracks, store/edit.c): COALESCE(t.x, d.x) is the track's
 * x, or its tombstone's. */
#define JOINS(CAT, P1, P2, P3)                                                                     \
	" FROM plays p LEFT JOIN " CAT "tracks t ON t.id = p.track_id"                             \
	" LEFT JOIN " CAT "deleted_tracks d ON d.id = p.track_id AND t.id IS NULL"                 \
	" LEFT JOIN " CAT "artists ar ON ar.id = COALESCE(t.artist_id, d.artist_id)"               \
	" LEFT JOIN " CAT "albums al ON al.id = COALESCE(t.album_id, d.album_id)"                  \
	" WHERE p.started_at >= " P1 " AND p.started_at < " P2 " AND (" P3 " IS NULL OR"           \
	" p.location = " P3 ")"

/* Grouped: key, name, plays, ms_played. */
#define GROUP_SQL(CAT, P1, P2, P3, DAY, HOUR)                                                      \
	{                                                                                          \
		[PLAYS_GROUP_NONE] = NULL,                                                         \
		[PLAYS_GROUP_TRACK] =                                                              \
			"SELECT p.track_id, MAX(COALESCE(t.title, d.title)), COUNT(*),"            \
			" SUM(p.ms_played)" JOINS(                                                 \
				CAT, P1, P2,                                                       \
				P3) " GROUP BY p.track_id ORDER BY 3 DESC, 4 DESC, 1",             \
		[PLAYS_GROUP_ARTIST] =                                                             \
			"SELECT COALESCE(t.artist_id, d.artist_id),"                               \
			" MAX(COALESCE(ar.name, d.artist)), COUNT(*), SUM(p.ms_played)" JOINS(     \
				CAT, P1, P2, P3) " GROUP BY 1 ORDER BY 3 DESC, 4 DESC, 1",         \
		[PLAYS_GROUP_ALBUM] =                                                              \
			"SELECT COALESCE(t.album_id, d.album_id),"                                 \
			" MAX(COALESCE(al.title, d.album)), COUNT(*), SUM(p.ms_played)" JOINS(     \
				CAT, P1, P2, P3) " GROUP BY 1 ORDER BY 3 DESC, 4 DESC, 1",         \
		[PLAYS_GROUP_LOCATION] =                                                           \
			"SELECT p.location, p.location, COUNT(*),"                                 \
			" SUM(p.ms_played)" JOINS(                                                 \
				CAT, P1, P2,                                                       \
				P3) " GROUP BY p.location ORDER BY 3 DESC, 4 DESC, 1",             \
		[PLAYS_GROUP_DAY] = "SELECT " DAY ", " DAY ", COUNT(*), SUM(p.ms_played)" JOINS(   \
			CAT, P1, P2, P3) " GROUP BY 1 ORDER BY 1",                                 \
		[PLAYS_GROUP_HOUR] =                                                               \
			"SELECT " HOUR ", " HOUR ", COUNT(*), SUM(p.ms_played)" JOINS(             \
				CAT, P1, P2, P3) " GROUP BY 1 ORDER BY 1",                         \
	}

/* One line per play, for royalty societies. */
#define CENSUS_SQL(CAT, P1, P2, P3, OFFLINE)                                                       \
	"SELECT COALESCE(ar.name, d.artist), COALESCE(t.title, d.title),"                          \
	" COALESCE(t.isrc, d.isrc), COALESCE(al.title, d.album), COALESCE(t.label, d.label),"      \
	" COALESCE(t.duration_ms, d.duration_ms), p.ms_played,"                                    \
	" p.location, p.zone, p.started_at, p.track_id, p.event_id, p.device, " OFFLINE            \
	JOINS(CAT, P1, P2, P3) " ORDER BY p.started_at, p.event_id"

#define SQLITE_DAY "strftime('%Y-%m-%d', p.started_at / 1000, 'unixepoch')"
#define PG_DAY "to_char(to_timestamp(p.started_at / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
#define SQLITE_HOUR "strftime('%Y-%m-%dT%H', p.started_at / 1000, 'unixepoch')"
#define PG_HOUR                                                                                    \
	"to_char(to_timestamp(p.started_at / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24')"

static const char *const sqlite_group_sql[] =
	GROUP_SQL("cat.", "?1", "?2", "?3", SQLITE_DAY, SQLITE_HOUR);
static const char *const pg_group_sql[] =
	GROUP_SQL("", "$1::bigint", "$2::bigint", "$3::text", PG_DAY, PG_HOUR);
static const char sqlite_census_sql[] = CENSUS_SQL("cat.", "?1", "?2", "?3", "p.offline");
static const char pg_census_sql[] =
	CENSUS_SQL("", "$1::bigint", "$2::bigint", "$3::text", "p.offline::int");

enum {
	C_ARTIST,
	C_TITLE,
	C_ISRC,
	C_ALBUM,
	C_LABEL,
	C_DURATION,
	C_MS_PLAYED,
	C_LOCATION,
	C_ZONE,
	C_STARTED,
	C_TRACK,
	C_EVENT,
	C_DEVICE,
	C_OFFLINE,
	C_NCOLS
};

static const char *const census_names[C_NCOLS] = {
	"artist",   "title", "isrc",       "album",    "label",    "duration_ms", "ms_played",
	"location", "zone",  "started_at", "track_id", "event_id", "device",      "offline",
};

/* A result row of either database. */
struct row {
	sqlite3_stmt *st; /* SQLite, or */
	PGresult *res;    /* PostgreSQL (single-row mode: row 0) */
};

static bool row_null(const struct row *w, int i)
{
	return w->st ? sqlite3_column_type(w->st, i) == SQLITE_NULL : PQgetisnull(w->res, 0, i);
}

static int64_t row_int(const struct row *w, int i)
{
	return w->st ? sqlite3_column_int64(w->st, i) : strtoll(PQgetvalue(w->res, 0, i), NULL, 10);
}

static const char *row_text(const struct row *w, int i)
{
	if (row_null(w, i))
		return NULL;
	return w->st ? (const char *)sqlite3_column_text(w->st, i) : PQgetvalue(w->res, 0, i);
}

/* The sink: output gathered in a buffer, handed over in pieces. */
struct out {
	buf_t b;
	plays_write_fn write;
	void *ud;
	int rc;
};

static void out_flush(struct out *o, bool all)
{
	if (o->rc == 0 && o->b.len && (all || o->b.len >= (64u << 10))) {
		o->rc = o->write(o->ud, o->b.data, o->b.len);
		buf_reset(&o->b);
	}
}

static void out_raw(struct out *o, const char *s, size_t n)
{
	if (o->rc == 0 && buf_append(&o->b, s, n) < 0)
		o->rc = -EFBIG;
}

static void out_str(struct out *o, const char *s)
{
	out_raw(o, s, strlen(s));
}

/* An RFC 4180 field: quoted when it holds a comma, quote, CR or LF. */
static void csv_field(struct out *o, const char *s, bool first)
{
	if (!first)
		out_raw(o, ",", 1);
	if (!s)
		return;
	if (!strpbrk(s, ",\"\r\n")) {
		out_str(o, s);
		return;
	}
	out_raw(o, "\"", 1);
	for (const char *c = s; *c; c++) {
		if (*c == '"')
			out_raw(o, "\"", 1);
		out_raw(o, c, 1);
	}
	out_raw(o, "\"", 1);
}

/* A catalog id column as 16 hex digits into buf; NULL when null. */
static const char *col_id(const struct row *w, int i, char buf[17])
{
	if (row_null(w, i))
		return NULL;
	catalog_id_str(row_int(w, i), buf);
	return buf;
}

static const char *col_int(const struct row *w, int i, char buf[24])
{
	if (row_null(w, i))
		return NULL;
	snprintf(buf, 24, "%lld", (long long)row_int(w, i));
	return buf;
}

static void json_opt_int(json_t *j, const char *k, const struct row *w, int i)
{
	json_key(j, k);
	if (row_null(w, i))
		json_nil(j);
	else
		json_int(j, row_int(w, i));
}

static void row_grouped(struct out *o, json_t *j, const struct plays_query *q, const struct row *st)
{
	char idbuf[17], n1[24], n2[24];
	bool catalog_id = q->group == PLAYS_GROUP_TRACK || q->group == PLAYS_GROUP_ARTIST ||
			  q->group == PLAYS_GROUP_ALBUM;
	const char *id = catalog_id ? col_id(st, 0, idbuf) : row_text(st, 0);

	if (q->format == PLAYS_FORMAT_CSV) {
		csv_field(o, id, true);
		csv_field(o, row_text(st, 1), false);
		csv_field(o, col_int(st, 2, n1), false);
		csv_field(o, col_int(st, 3, n2), false);
		out_raw(o, "\r\n", 2);
		return;
	}
	json_obj_begin(j);
	json_kstr(j, "id", id);
	json_kstr(j, "name", row_text(st, 1));
	json_kint(j, "plays", row_int(st, 2));
	json_kint(j, "ms_played", row_int(st, 3));
	json_obj_end(j);
}

static void row_census(struct out *o, json_t *j, const struct plays_query *q, const struct row *st)
{
	char ts[32], idbuf[17], n1[24], n2[24];
	const char *v[C_NCOLS];

	plays_rfc3339_format(row_int(st, C_STARTED), ts);
	for (int i = 0; i < C_NCOLS; i++)
		v[i] = row_text(st, i);
	v[C_STARTED] = ts;
	v[C_TRACK] = col_id(st, C_TRACK, idbuf);
	v[C_DURATION] = col_int(st, C_DURATION, n1);
	v[C_MS_PLAYED] = col_int(st, C_MS_PLAYED, n2);
	v[C_OFFLINE] = row_int(st, C_OFFLINE) ? "true" : "false";
	if (q->format == PLAYS_FORMAT_CSV) {
		for (int i = 0; i < C_NCOLS; i++)
			csv_field(o, v[i], i == 0);
		out_raw(o, "\r\n", 2);
		return;
	}
	json_obj_begin(j);
	for (int i = 0; i < C_NCOLS; i++) {
		if (i == C_DURATION || i == C_MS_PLAYED)
			json_opt_int(j, census_names[i], st, i);
		else if (i == C_OFFLINE)
			json_kbool(j, census_names[i], row_int(st, i) != 0);
		else
			json_kstr(j, census_names[i], v[i]);
	}
	json_obj_end(j);
}

static void emit_head(struct out *o, json_t *j, const struct plays_query *q)
{
	char ts[32];

	if (q->format == PLAYS_FORMAT_CSV) {
		if (q->group == PLAYS_GROUP_NONE) {
			for (int i = 0; i < C_NCOLS; i++)
				csv_field(o, census_names[i], i == 0);
			out_raw(o, "\r\n", 2);
		} else {
			out_str(o, "id,name,plays,ms_played\r\n");
		}
		return;
	}
	json_obj_begin(j);
	json_key(j, "from");
	if (q->has_from) {
		plays_rfc3339_format(q->from_ms, ts);
		json_str(j, ts);
	} else {
		json_nil(j);
	}
	json_key(j, "to");
	if (q->has_to) {
		plays_rfc3339_format(q->to_ms, ts);
		json_str(j, ts);
	} else {
		json_nil(j);
	}
	json_kstr(j, "group", group_names[q->group]);
	json_key(j, "rows");
	json_arr_begin(j);
}

static void emit_row(struct out *o, json_t *j, const struct plays_query *q, const struct row *w)
{
	if (q->group == PLAYS_GROUP_NONE)
		row_census(o, j, q, w);
	else
		row_grouped(o, j, q, w);
	if (json_failed(j))
		o->rc = -EFBIG;
	out_flush(o, false);
}

static int emit_tail(struct out *o, json_t *j, const struct plays_query *q, char *err,
		     size_t errlen)
{
	if (q->format == PLAYS_FORMAT_JSON) {
		json_arr_end(j);
		json_obj_end(j);
		out_raw(o, "\n", 1);
		if (json_failed(j) && o->rc == 0)
			o->rc = -EFBIG;
	}
	out_flush(o, true);
	if (o->rc < 0)
		snprintf(err, errlen, "plays: report: output failed: %s", strerror(-o->rc));
	return o->rc;
}

/* One node: plays.db with the catalog attached, in one read transaction
 * (the rows and the names are one snapshot of both files). */
static int report_sqlite(const char *data_dir, const struct plays_query *q, struct out *o,
			 char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	struct row w = {0};
	char cat[4096];
	json_t j;
	int rc;

	snprintf(cat, sizeof(cat), "%s/catalog.db", data_dir);
	if (access(cat, F_OK) != 0) {
		snprintf(err, errlen, "no catalog at %s", cat);
		return -ENOENT;
	}
	if ((rc = plays_db_open(data_dir, &db, err, errlen)) < 0)
		return rc;
	if ((rc = plays_db_exec(db, "PRAGMA query_only = 1", err, errlen)) < 0)
		goto out;
	if (sqlite3_prepare_v2(db, "ATTACH ?1 AS cat", -1, &w.st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(w.st, 1, cat, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_step(w.st) != SQLITE_DONE) {
		snprintf(err, errlen, "plays: attach %s: %s", cat, sqlite3_errmsg(db));
		rc = -EIO;
		goto out;
	}
	sqlite3_finalize(w.st);
	w.st = NULL;
	if ((rc = plays_db_exec(db, "BEGIN", err, errlen)) < 0)
		goto out;
	if (sqlite3_prepare_v2(db,
			       q->group == PLAYS_GROUP_NONE ? sqlite_census_sql
							    : sqlite_group_sql[q->group],
			       -1, &w.st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "plays: report: %s", sqlite3_errmsg(db));
		rc = -EIO;
		goto out;
	}
	sqlite3_bind_int64(w.st, 1, q->has_from ? q->from_ms : INT64_MIN);
	sqlite3_bind_int64(w.st, 2, q->has_to ? q->to_ms : INT64_MAX);
	if (q->location[0])
		sqlite3_bind_text(w.st, 3, q->location, -1, SQLITE_STATIC);
	json_init(&j, &o->b);
	emit_head(o, &j, q);
	while ((rc = sqlite3_step(w.st)) == SQLITE_ROW && o->rc == 0)
		emit_row(o, &j, q, &w);
	if (rc != SQLITE_DONE && o->rc == 0) {
		snprintf(err, errlen, "plays: report: %s", sqlite3_errmsg(db));
		rc = -EIO;
		goto out;
	}
	rc = emit_tail(o, &j, q, err, errlen);
out:
	sqlite3_finalize(w.st);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

/* A cluster: PostgreSQL, rows streamed one at a time. */
static int report_pg(const char *conninfo, const struct plays_query *q, struct out *o, char *err,
		     size_t errlen)
{
	char from[24], to[24];
	const char *params[3] = {from, to, q->location[0] ? q->location : NULL};
	struct row w = {0};
	PGconn *c;
	json_t j;
	int rc = 0;
	bool begun = false;

	if (!(c = pg_connect(conninfo, err, errlen)))
		return -EIO;
	snprintf(from, sizeof(from), "%lld", (long long)(q->has_from ? q->from_ms : INT64_MIN));
	snprintf(to, sizeof(to), "%lld", (long long)(q->has_to ? q->to_ms : INT64_MAX));
	if (!PQsendQueryParams(
		    c, q->group == PLAYS_GROUP_NONE ? pg_census_sql : pg_group_sql[q->group], 3,
		    NULL, params, NULL, NULL, 0) ||
	    !PQsetSingleRowMode(c)) {
		snprintf(err, errlen, "plays: report: %s", PQerrorMessage(c));
		PQfinish(c);
		return -EIO;
	}
	json_init(&j, &o->b);
	while ((w.res = PQgetResult(c)) != NULL) {
		ExecStatusType st = PQresultStatus(w.res);
		if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
			if (!begun)
				emit_head(o, &j, q);
			begun = true;
			if (st == PGRES_SINGLE_TUPLE && o->rc == 0)
				emit_row(o, &j, q, &w);
		} else if (rc == 0) {
			snprintf(err, errlen, "plays: report: %s", PQresultErrorMessage(w.res));
			rc = -EIO;
		}
		PQclear(w.res);
	}
	PQfinish(c);
	if (rc < 0)
		return rc;
	return emit_tail(o, &j, q, err, errlen);
}

int plays_report(const char *data_dir, const char *conninfo, const struct plays_query *q,
		 plays_write_fn write, void *ud, char *err, size_t errlen)
{
	struct out o = {.write = write, .ud = ud};
	int rc;

	buf_init(&o.b, (size_t)1 << 20); /* one row is far less; flushed at 64 KiB */
	if (conninfo && *conninfo)
		rc = report_pg(conninfo, q, &o, err, errlen);
	else
		rc = report_sqlite(data_dir, q, &o, err, errlen);
	buf_free(&o.b);
	return rc;
}
