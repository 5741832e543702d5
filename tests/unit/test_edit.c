/* Cover pictures' headers (util/image.h) and PATCH bodies' rules
 * (api/edit_body.h): real files from ffmpeg (a 16x8 PNG and JPEG), each
 * damaged in the ways the parsers must catch. */
#include <stdlib.h>
#include <string.h>

#include "api/edit_body.h"
#include "util/image.h"
#include "unit.h"

static const unsigned char png16x8[] = {
	0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
	0x44, 0x52, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x08, 0x08, 0x02, 0x00, 0x00,
	0x00, 0x7f, 0x14, 0xe8, 0xc0, 0x00, 0x00, 0x00, 0x09, 0x70, 0x48, 0x59, 0x73, 0x00,
	0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x4f, 0x25, 0xc4, 0xd6, 0x00, 0x00,
	0x00, 0x14, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcb, 0xc0, 0x40, 0x12,
	0x22, 0x4d, 0xf5, 0xa8, 0x06, 0x22, 0x11, 0x00, 0x5f, 0xb7, 0x7e, 0x81, 0xfa, 0x6d,
	0x25, 0x9e, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

static const unsigned char jpeg16x8[] = {
	0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x02, 0x00, 0x00,
	0x01, 0x00, 0x01, 0x00, 0x00, 0xff, 0xfe, 0x00, 0x10, 0x4c, 0x61, 0x76, 0x63, 0x35, 0x39,
	0x2e, 0x33, 0x37, 0x2e, 0x31, 0x30, 0x30, 0x00, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x08, 0x04,
	0x04, 0x04, 0x04, 0x04, 0x05, 0x05, 0x05, 0x05, 0x05, 0x05, 0x06, 0x06, 0x06, 0x06, 0x06,
	0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x07, 0x07, 0x07, 0x08, 0x08, 0x08, 0x07,
	0x07, 0x07, 0x06, 0x06, 0x07, 0x07, 0x08, 0x08, 0x08, 0x08, 0x09, 0x09, 0x09, 0x08, 0x08,
	0x08, 0x08, 0x09, 0x09, 0x0a, 0x0a, 0x0a, 0x0c, 0x0c, 0x0b, 0x0b, 0x0e, 0x0e, 0x0e, 0x11,
	0x11, 0x14, 0xff, 0xc4, 0x00, 0x4c, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x01, 0x01, 0x01, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x07, 0x10,
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x11, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x08, 0x00, 0x10, 0x03,
	0x01, 0x22, 0x00, 0x02, 0x11, 0x00, 0x03, 0x11, 0x00, 0xff, 0xda, 0x00, 0x0c, 0x03, 0x01,
	0x00, 0x02, 0x11, 0x03, 0x11, 0x00, 0x3f, 0x00, 0x8b, 0x00, 0x51, 0x7f, 0x7f, 0xff, 0xd9};

static int probe(const void *p, size_t n, struct image_info *info)
{
	const char *why = NULL;
	int rc = image_probe(p, n, info, &why);

	CHECK(rc == 0 || (why && *why));
	return rc;
}

static void test_png(void)
{
	struct image_info info;
	unsigned char b[sizeof(png16x8)];

	CHECK(probe(png16x8, sizeof(png16x8), &info) == 0);
	CHECK_STR(info.mime, "image/png");
	CHECK(info.width == 16 && info.height == 8);
	/* The header alone is enough; one byte short of it is not. */
	CHECK(probe(png16x8, 33, &info) == 0);
	CHECK(probe(png16x8, 32, &info) < 0);
	CHECK(info.mime == NULL && info.width == 0);
	/* A flipped bit in IHDR fails its CRC. */
	memcpy(b, png16x8, sizeof(b));
	b[17] ^= 1;
	CHECK(probe(b, sizeof(b), &info) < 0);
	/* A colour type PNG has not. */
	memcpy(b, png16x8, sizeof(b));
	b[25] = 5;
	CHECK(probe(b, sizeof(b), &info) < 0);
	/* The signature alone. */
	CHECK(probe(png16x8, 8, &info) < 0);
}

static void test_jpeg(void)
{
	struct image_info info;
	unsigned char b[sizeof(jpeg16x8)];
	size_t sof = 0;

	CHECK(probe(jpeg16x8, sizeof(jpeg16x8), &info) == 0);
	CHECK_STR(info.mime, "image/jpeg");
	CHECK(info.width == 16 && info.height == 8);
	for (size_t i = 2; i + 1 < sizeof(jpeg16x8); i++)
		if (jpeg16x8[i] == 0xff && jpeg16x8[i + 1] == 0xc0) {
			sof = i;
			break;
		}
	CHECK(sof > 0);
	/* Cut inside the frame header, or before it. */
	CHECK(probe(jpeg16x8, sof + 6, &info) < 0);
	CHECK(probe(jpeg16x8, sof, &info) < 0);
	/* A progressive frame (SOF2) is a frame too. */
	memcpy(b, jpeg16x8, sizeof(b));
	b[sof + 1] = 0xc2;
	CHECK(probe(b, sizeof(b), &info) == 0 && info.width == 16);
	/* DHT (c4) is not a frame: with it there, no frame comes first. */
	b[sof + 1] = 0xc4;
	CHECK(probe(b, sizeof(b), &info) < 0);
	/* A segment length running past the end. */
	memcpy(b, jpeg16x8, sizeof(b));
	b[4] = 0xff;
	CHECK(probe(b, sizeof(b), &info) < 0);
	/* A zero width. */
	memcpy(b, jpeg16x8, sizeof(b));
	b[sof + 7] = 0;
	b[sof + 8] = 0;
	CHECK(probe(b, sizeof(b), &info) < 0);
}

static void test_not_images(void)
{
	struct image_info info;
	static const unsigned char gif[] = "GIF89a\x10\x00\x08\x00";

	CHECK(probe("", 0, &info) < 0);
	CHECK(probe(gif, sizeof(gif) - 1, &info) < 0);
	CHECK(probe("\xff\xd8", 2, &info) < 0);
	CHECK(probe("\xff\xd8\xff\xd9", 4, &info) < 0); /* SOI, EOI */
}

static int parse(const char *body, enum edit_kind kind, struct store_edit *e,
		 struct edit_errors *errs)
{
	char msg[256];

	return edit_body_parse(body, strlen(body), kind, e, errs, msg, sizeof(msg));
}

static void test_edit_body(void)
{
	struct store_edit e;
	struct edit_errors errs;

	CHECK(parse("{\"isrc\":\"us-rc1-76-07839\",\"track_number\":3,\"explicit\":false}",
		    EDIT_TRACK, &e, &errs) == 200);
	CHECK_STR(e.isrc, "USRC17607839");
	CHECK(e.set == (STORE_EDIT_ISRC | STORE_EDIT_TRACK_NUMBER | STORE_EDIT_EXPLICIT));
	CHECK(e.track_number == 3 && e.explicit_flag == 0 && e.nulls == 0);
	CHECK(parse("{\"genre\":null,\"year\":null}", EDIT_TRACK, &e, &errs) == 200);
	CHECK(e.nulls == (STORE_EDIT_GENRE | STORE_EDIT_YEAR) && e.set == e.nulls);
	/* An album's title and artist are its tracks' album and album artist. */
	CHECK(parse("{\"title\":\"Help!\",\"artist\":\"The Beatles\"}", EDIT_ALBUM, &e, &errs) ==
	      200);
	CHECK(e.set == (STORE_EDIT_ALBUM | STORE_EDIT_ALBUM_ARTIST));
	CHECK_STR(e.album, "Help!");
	CHECK_STR(e.album_artist, "The Beatles");
	CHECK(parse("{\"name\":\"Beyonc\xc3\xa9\"}", EDIT_ARTIST, &e, &errs) == 200);
	CHECK_STR(e.artist, "Beyonc\xc3\xa9");
	/* Every problem, by field; nothing set. */
	CHECK(parse("{\"year\":\"abc\",\"track_number\":-1,\"isrc\":\"US-RC1-76-0783X\","
		    "\"title\":\"\",\"explicit\":1,\"foo\":2}",
		    EDIT_TRACK, &e, &errs) == 422);
	CHECK(errs.n == 6 && e.set == 0);
	CHECK_STR(errs.items[0].field, "year");
	CHECK_STR(errs.items[5].field, "foo");
	CHECK_STR(errs.items[5].message, "unknown field");
	/* A track's field is no album's. */
	CHECK(parse("{\"isrc\":null}", EDIT_ALBUM, &e, &errs) == 422 && errs.n == 1);
	CHECK(parse("{}", EDIT_TRACK, &e, &errs) == 422 && errs.n == 0);
	CHECK(parse("[]", EDIT_TRACK, &e, &errs) == 400);
	CHECK(parse("{\"title\":\"a\",\"title\":\"b\"}", EDIT_TRACK, &e, &errs) == 400);
	CHECK(parse("{\"title\":\"a\\u0000b\"}", EDIT_TRACK, &e, &errs) == 400);
}

int main(void)
{
	TEST_RUN(test_png);
	TEST_RUN(test_jpeg);
	TEST_RUN(test_not_images);
	TEST_RUN(test_edit_body);
	TEST_EXIT();
}
