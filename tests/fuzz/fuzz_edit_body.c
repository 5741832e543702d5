/* libFuzzer: PATCH bodies of tracks, albums and artists (edit_body_parse,
 * which parses with jansson and applies every field's rule). An edit that
 * passes must obey every rule (set only the kind's fields, texts within
 * their bounds and free of controls, numbers and years in range, an ISRC
 * of 12 upper-case characters), and its audit detail must be JSON that
 * parses back; a refusal leaves nothing set and stays within its cap. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/edit_body.h"

static const unsigned allowed[] = {
	[EDIT_TRACK] = STORE_EDIT_ALL,
	[EDIT_ALBUM] = STORE_EDIT_ALBUM | STORE_EDIT_ALBUM_ARTIST | STORE_EDIT_YEAR |
		       STORE_EDIT_GENRE | STORE_EDIT_LABEL,
	[EDIT_ARTIST] = STORE_EDIT_ARTIST,
};

static void check_text(const struct store_edit *e, unsigned bit, const char *s)
{
	size_t n = strnlen(s, STORE_TEXT_MAX + 1);

	if (!(e->set & bit) || (e->nulls & bit))
		return;
	if (n < 1 || n > STORE_TEXT_MAX)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int kind = EDIT_TRACK; kind <= EDIT_ARTIST; kind++) {
		struct store_edit e;
		struct edit_errors errs;
		char msg[256];
		int st = edit_body_parse(data, size, (enum edit_kind)kind, &e, &errs, msg,
					 sizeof(msg));

		if (st != 200 && st != 400 && st != 422)
			abort();
		if (errs.n > EDIT_ERRORS_MAX)
			abort();
		if (st != 200) {
			if (e.set || e.nulls || (st == 400 && errs.n))
				abort();
			continue;
		}
		if (!e.set || (e.set & ~allowed[kind]) || (e.nulls & ~e.set) || errs.n)
			abort();
		/* Names and titles cannot be cleared. */
		if (e.nulls & (STORE_EDIT_TITLE | STORE_EDIT_ARTIST | STORE_EDIT_ALBUM |
			       STORE_EDIT_ALBUM_ARTIST))
			abort();
		check_text(&e, STORE_EDIT_TITLE, e.title);
		check_text(&e, STORE_EDIT_ARTIST, e.artist);
		check_text(&e, STORE_EDIT_ALBUM, e.album);
		check_text(&e, STORE_EDIT_ALBUM_ARTIST, e.album_artist);
		check_text(&e, STORE_EDIT_GENRE, e.genre);
		check_text(&e, STORE_EDIT_LABEL, e.label);
		if ((e.set & ~e.nulls & STORE_EDIT_TRACK_NUMBER) &&
		    (e.track_number < 1 || e.track_number > 999))
			abort();
		if ((e.set & ~e.nulls & STORE_EDIT_DISC_NUMBER) &&
		    (e.disc_number < 1 || e.disc_number > 999))
			abort();
		if ((e.set & ~e.nulls & STORE_EDIT_YEAR) && (e.year < 1000 || e.year > 9999))
			abort();
		if (e.set & ~e.nulls & STORE_EDIT_ISRC) {
			if (strlen(e.isrc) != 12)
				abort();
			for (int i = 0; i < 12; i++)
				if (!((e.isrc[i] >= 'A' && e.isrc[i] <= 'Z') ||
				      (e.isrc[i] >= '0' && e.isrc[i] <= '9')))
					abort();
		}
		if ((e.set & ~e.nulls & STORE_EDIT_EXPLICIT) && e.explicit_flag != 0 &&
		    e.explicit_flag != 1)
			abort();
		{
			char *detail = edit_body_detail(&e, (enum edit_kind)kind);
			json_t *back = json_loads(detail, 0, NULL);

			if (!back || !json_is_object(back) || json_object_size(back) == 0)
				abort();
			json_decref(back);
			free(detail);
		}
	}
	return 0;
}
