#ifndef CHORUS_CATALOG_RULES_H
#define CHORUS_CATALOG_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/*
 * A rules playlist: which tracks of the catalog it plays, decided when a
 * queue is made, so new music that fits arrives by itself. Every rule
 * given must hold:
 *   {"genres": ["Jazz", ...],        the track's genre is one (case folded)
 *    "artists": ["16 hex", ...],     its artist is one
 *    "years": {"from": Y, "to": Y},  its year is within (either optional)
 *    "tags": ["chill", ...],         each is a word of its genre or label
 *    "exclude_explicit": true,       it is not marked explicit
 *    "exclude": ["16 hex", ...]}     it is not one of these tracks
 * Pure: the caller reads the tracks (catalog/zones.c), the fuzz harness
 * and the unit tests call it alone.
 */
#define RULES_LIST_MAX 256 /* entries of each list */
#define RULES_TEXT_MAX 128 /* bytes of a genre or tag */

struct rules {
	char **genres;     /* as given, for the canonical JSON */
	char **genre_keys; /* folded (text_name_key), for matching */
	int ngenres;
	int64_t *artists;
	int nartists;
	int year_from, year_to; /* 0: no bound */
	char **tags;            /* folded */
	int ntags;
	bool exclude_explicit;
	int64_t *exclude; /* sorted */
	int nexclude;
};

/* What a rule looks at of a track. */
struct rules_track {
	int64_t id, artist;
	int year;          /* 0: unknown */
	const char *genre; /* NULL: unknown */
	const char *label;
	int explicit_flag; /* 1, 0, or -1 unknown */
};

/* The rules object's JSON text: 0, or -EINVAL with the reason (naming
 * the field) in err: not an object, unknown keys, wrong types, empty or
 * over-long lists and texts, bad ids, years outside 1000-9999 or from >
 * to. */
int rules_parse(const void *json, size_t len, struct rules *out, char *err, size_t errlen);
/* The canonical JSON of r (keys in the order above, lists as given,
 * tags folded): 0, or -1 past b's cap. */
int rules_json(const struct rules *r, buf_t *b);
void rules_free(struct rules *r);

bool rules_match(const struct rules *r, const struct rules_track *t);

#endif
