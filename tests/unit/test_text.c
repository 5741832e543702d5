/* Tag text cleaning and name normalisation. */
#include <stdlib.h>

#include "util/text.h"
#include "unit.h"

static void check_clean(const char *in, size_t len, const char *want)
{
	char *got = text_clean(in, len);
	CHECK_STR(got, want);
	CHECK(text_is_utf8(got, strlen(got)));
	free(got);
}

static void check_key(const char *in, const char *want)
{
	char *got = text_name_key(in);
	CHECK_STR(got, want);
	free(got);
}

static void test_utf8_validation(void)
{
	CHECK(text_is_utf8("Beyonc\xc3\xa9", 8));
	CHECK(text_is_utf8("\xe6\x9d\xb1\xe4\xba\xac", 6)); /* 東京 */
	CHECK(!text_is_utf8("Beyonc\xe9", 7));              /* Latin-1 é */
	CHECK(!text_is_utf8("\xc0\xaf", 2));                /* overlong '/' */
	CHECK(!text_is_utf8("\xed\xa0\x80", 3));            /* surrogate */
	CHECK(!text_is_utf8("\xf4\x90\x80\x80", 4));        /* past U+10FFFF */
	CHECK(!text_is_utf8("\xe6\x9d", 2));                /* cut short */
}

static void test_clean(void)
{
	check_clean("  Help!  ", 9, "Help!");
	check_clean("Beyonc\xe9", 7, "Beyonc\xc3\xa9");          /* Latin-1 to UTF-8 */
	check_clean("Sigur R\xc3\xb3s", 10, "Sigur R\xc3\xb3s"); /* UTF-8 kept */
	check_clean("\xef\xbb\xbf"
		    "Bj\xc3\xb6rk\xc2\xa0",
		    11, "Bj\xc3\xb6rk"); /* BOM, NBSP */
	check_clean("a\tb\nc", 5, "a b c");
	check_clean("ab\0cd", 5, "ab");
	check_clean("   ", 3, "");
	check_clean("", 0, "");
}

static void test_name_key(void)
{
	check_key("The Beatles", "the beatles");
	check_key("  THE BEATLES ", "the beatles");
	check_key("BEYONC\xc3\x89", "beyonc\xc3\xa9"); /* É -> é */
	check_key("\xce\xa3\xce\x99\xce\x93\xce\x9c\xce\x91",
		  "\xcf\x83\xce\xb9\xce\xb3\xce\xbc\xce\xb1"); /* ΣΙΓΜΑ -> σιγμα */
	check_key("\xd0\x9a\xd0\x98\xd0\x9d\xd0\x9e",
		  "\xd0\xba\xd0\xb8\xd0\xbd\xd0\xbe");                     /* КИНО */
	check_key("\xe6\x9d\xb1\xe4\xba\xac", "\xe6\x9d\xb1\xe4\xba\xac"); /* no case: as is */
	check_key("Beyonc\xe9", "beyonc\xc3\xa9"); /* Latin-1 input is converted first */
}

static void test_hex(void)
{
	unsigned char in[4] = {0x00, 0x7f, 0xa5, 0xff}, out[4];
	char hex[9];

	text_hex(in, 4, hex);
	CHECK_STR(hex, "007fa5ff");
	CHECK(text_unhex(hex, out, 4) == 0 && memcmp(in, out, 4) == 0);
	CHECK(text_unhex("0g", out, 1) == -1);
}

int main(void)
{
	TEST_RUN(test_utf8_validation);
	TEST_RUN(test_clean);
	TEST_RUN(test_name_key);
	TEST_RUN(test_hex);
	TEST_EXIT();
}
