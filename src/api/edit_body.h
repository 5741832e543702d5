#ifndef CHORUS_API_EDIT_BODY_H
#define CHORUS_API_EDIT_BODY_H

#include <stddef.h>

#include "store/store.h"

/*
 * The body of PATCH /api/v1/tracks/{id}, /albums/{id} and /artists/{id}
 * to a validated store_edit (store/store.h): pure, so libFuzzer calls it
 * without a server (tests/fuzz/fuzz_edit_body.c). Apart from util/json.h
 * because jansson's json_t is another type of the same name.
 *
 * The fields of each kind (docs/api.md, "Editing the catalog"):
 *   track   title, artist, album, album_artist, track_number, disc_number,
 *           year, genre, isrc, label, explicit
 *   album   title, artist (the album artist), year, genre, label
 *   artist  name
 * Every field is checked and every problem is listed, by field; a field
 * of no kind, or of another kind, is a problem too ("unknown field"), so
 * a misspelt one is never dropped silently.
 */
enum edit_kind { EDIT_TRACK, EDIT_ALBUM, EDIT_ARTIST };

#define EDIT_ERRORS_MAX 16
#define EDIT_FIELD_MAX 64 /* bytes of a field's name kept in its error */

struct edit_errors {
	size_t n;
	struct edit_error {
		char field[EDIT_FIELD_MAX + 1];
		char message[96];
	} items[EDIT_ERRORS_MAX];
};

/*
 * 200: *e holds the edit (at least one field). 400: not JSON, or not an
 * object, or a key given twice (msg says which). 422: the problems are
 * in errs (at most EDIT_ERRORS_MAX), msg is a summary.
 */
int edit_body_parse(const void *body, size_t len, enum edit_kind kind, struct store_edit *e,
		    struct edit_errors *errs, char *msg, size_t msglen);

/* The edit as a JSON object, for the audit trail (the fields as set, by
 * the body's names); malloc'd. */
char *edit_body_detail(const struct store_edit *e, enum edit_kind kind);

/* "track", "album", "artist". */
const char *edit_kind_name(enum edit_kind kind);

#endif
