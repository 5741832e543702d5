#ifndef CHORUS_SQL_SQL_H
#define CHORUS_SQL_SQL_H

/* The two SQL dialects chorus speaks: SQLite (a node's own catalog.db,
 * the source of truth on a single node) and PostgreSQL (a cluster's). */
enum sql_dialect { SQL_SQLITE, SQL_PG };

#endif
