/* libFuzzer: PATCH bodies of tracks, albums and artists (edit_body_parse,
 * which parses with jansson and applies every field's rule), and cover
 * uploads' headers (image_probe) on the same bytes. An edit that passes
 * must obey every rule (set only the kind's fields, texts within their
 * bounds and free of controls, numbers and years in range, an ISRC of 12
 * upper-case characters), and its audit detail must be JSON that parses
 * back; a refusal leaves nothing set and stays within its cap. A picture
 * taken is a JPEG or PNG by its first bytes, with dimensions in range. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/edit_body.h"
#include "util/image.h"

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

static void check_image(const uint8_t *data, size_t size)
{
	struct image_info info;
	const char *why = NULL;

	if (image_probe(data, size, &info, &why) < 0) {
		if (!why || info.mime || info.width || info.height)
			abort();
		return;
	}
	if (info.width < 1 || info.height < 1 || info.width > IMAGE_SIDE_MAX ||
	    info.height > IMAGE_SIDE_MAX)
		abort();
	if (strcmp(info.mime, "image/png") == 0) {
		if (size < 33 || data[0] != 0x89 || memcmp(data + 1, "PNG", 3) != 0)
			abort();
	} else if (strcmp(info.mime, "image/jpeg") == 0) {
		if (size < 3 || data[0] != 0xff || data[1] != 0xd8)
			abort();
	} else {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_image(data, size);
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
