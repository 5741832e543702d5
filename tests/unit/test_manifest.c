/* Manifest arithmetic, ids, and the tag number parsers. */
#include "catalog/model.h"
#include "ingest/probe.h"
#include "origin/origin.h"
#include "unit.h"

static void test_chunk_count(void)
{
	CHECK(manifest_chunk_count(0, 1024) == 0);
	CHECK(manifest_chunk_count(1, 1024) == 1);
	CHECK(manifest_chunk_count(1024, 1024) == 1);
	CHECK(manifest_chunk_count(1025, 1024) == 2);
	CHECK(manifest_chunk_count(5ull << 30, 1u << 20) == 5120);
}

static void test_chunk_len_and_offset(void)
{
	struct manifest m = {.size = 2500, .chunk_size = 1000};

	m.chunk_count = manifest_chunk_count(m.size, m.chunk_size);
	CHECK(m.chunk_count == 3);
	CHECK(manifest_chunk_len(&m, 0) == 1000);
	CHECK(manifest_chunk_len(&m, 1) == 1000);
	CHECK(manifest_chunk_len(&m, 2) == 500);
	CHECK(manifest_chunk_len(&m, 3) == 0);
	CHECK(manifest_chunk_offset(&m, 2) == 2000);
	CHECK(manifest_chunk_at(&m, 0) == 0);
	CHECK(manifest_chunk_at(&m, 999) == 0);
	CHECK(manifest_chunk_at(&m, 1000) == 1);
	CHECK(manifest_chunk_at(&m, 2499) == 2);
	/* Every byte belongs to exactly the chunk that covers it. */
	for (uint64_t off = 0; off < m.size; off += 7) {
		uint32_t c = manifest_chunk_at(&m, off);
		CHECK(off >= manifest_chunk_offset(&m, c));
		CHECK(off < manifest_chunk_offset(&m, c) + manifest_chunk_len(&m, c));
	}
}

static void test_ids(void)
{
	char s[17];
	int64_t id;

	CHECK(catalog_artist_id("the beatles") == catalog_artist_id("the beatles"));
	CHECK(catalog_artist_id("the beatles") != catalog_artist_id("the beatle"));
	CHECK(catalog_album_id(1, "help!") != catalog_album_id(2, "help!"));
	CHECK(catalog_artist_id("x") > 0);
	catalog_id_str(0x0123456789abcdefLL, s);
	CHECK_STR(s, "0123456789abcdef");
	CHECK(catalog_id_parse(s, 16, &id) == 0 && id == 0x0123456789abcdefLL);
	CHECK(catalog_id_parse("0123456789ABCDEF", 16, &id) == -1);
	CHECK(catalog_id_parse("ffffffffffffffff", 16, &id) == -1); /* past INT64_MAX */
	CHECK(catalog_id_parse("0000000000000000", 16, &id) == -1);
	CHECK(catalog_id_parse("123", 3, &id) == -1);
}

static void test_chunk_key(void)
{
	char key[ORIGIN_KEY_MAX];

	origin_chunk_key("0123456789abcdef0123456789abcdef", 26, key);
	CHECK_STR(key, "c/01/0123456789abcdef0123456789abcdef/0000001a");
}

static void test_tag_numbers(void)
{
	CHECK(probe_parse_number("3") == 3);
	CHECK(probe_parse_number("03/12") == 3);
	CHECK(probe_parse_number(" 7 of 9") == 7);
	CHECK(probe_parse_number("A1") == 0);
	CHECK(probe_parse_number("") == 0);
	CHECK(probe_parse_number("99999999999999999999") == 0);
	CHECK(probe_parse_year("2019") == 2019);
	CHECK(probe_parse_year("2019-05-01") == 2019);
	CHECK(probe_parse_year("19") == 0);
	CHECK(probe_parse_year("20190") == 0);
	CHECK(probe_parse_year("abcd") == 0);
}

static void test_audio_names(void)
{
	CHECK(probe_is_audio_name("a.mp3"));
	CHECK(probe_is_audio_name("a.FLAC"));
	CHECK(probe_is_audio_name("x.y.opus"));
	CHECK(!probe_is_audio_name("cover.jpg"));
	CHECK(!probe_is_audio_name("list.m3u"));
	CHECK(!probe_is_audio_name(".mp3"));
	CHECK(!probe_is_audio_name("mp3"));
}

int main(void)
{
	TEST_RUN(test_chunk_count);
	TEST_RUN(test_chunk_len_and_offset);
	TEST_RUN(test_ids);
	TEST_RUN(test_chunk_key);
	TEST_RUN(test_tag_numbers);
	TEST_RUN(test_audio_names);
	TEST_EXIT();
}
