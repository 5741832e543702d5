/* Sealing and opening chunks: round trip, and every kind of tampering fails. */
#include <errno.h>
#include <stdlib.h>

#include "crypto/seal.h"
#include "unit.h"

static unsigned char key[SEAL_KEY_LEN];
static unsigned char plain[100000];

static void test_round_trip(void)
{
	unsigned char sealed[sizeof(plain) + SEAL_TAG_LEN], out[sizeof(plain)];

	CHECK(seal_chunk(key, 7, plain, sizeof(plain), sealed) == 0);
	CHECK(memcmp(sealed, plain, 64) != 0); /* not stored in the clear */
	CHECK(seal_open(key, 7, sealed, sizeof(sealed), out) == 0);
	CHECK(memcmp(out, plain, sizeof(plain)) == 0);
}

static void test_flipped_bit_fails(void)
{
	unsigned char sealed[sizeof(plain) + SEAL_TAG_LEN], out[sizeof(plain)];
	/* A bit in the first byte, the middle, and the tag. */
	size_t where[] = {0, sizeof(plain) / 2, sizeof(sealed) - 1};

	CHECK(seal_chunk(key, 3, plain, sizeof(plain), sealed) == 0);
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		sealed[where[i]] ^= 0x10;
		CHECK(seal_open(key, 3, sealed, sizeof(sealed), out) == -EBADMSG);
		sealed[where[i]] ^= 0x10;
	}
	CHECK(seal_open(key, 3, sealed, sizeof(sealed), out) == 0);
}

static void test_wrong_index_or_key_fails(void)
{
	unsigned char sealed[64 + SEAL_TAG_LEN], out[64], other[SEAL_KEY_LEN];

	CHECK(seal_chunk(key, 1, plain, 64, sealed) == 0);
	CHECK(seal_open(key, 2, sealed, sizeof(sealed), out) == -EBADMSG);
	memcpy(other, key, sizeof(other));
	other[5] ^= 1;
	CHECK(seal_open(other, 1, sealed, sizeof(sealed), out) == -EBADMSG);
}

static void test_truncated_fails(void)
{
	unsigned char sealed[64 + SEAL_TAG_LEN], out[64];

	CHECK(seal_chunk(key, 0, plain, 64, sealed) == 0);
	CHECK(seal_open(key, 0, sealed, sizeof(sealed) - 1, out) == -EBADMSG);
	CHECK(seal_open(key, 0, sealed, SEAL_TAG_LEN - 1, out) == -EBADMSG);
}

static void test_open_in_place(void)
{
	static unsigned char buf[sizeof(plain) + SEAL_TAG_LEN];

	CHECK(seal_chunk(key, 9, plain, sizeof(plain), buf) == 0);
	CHECK(seal_open(key, 9, buf, sizeof(buf), buf) == 0);
	CHECK(memcmp(buf, plain, sizeof(plain)) == 0);
}

static void test_empty_chunk(void)
{
	unsigned char sealed[SEAL_TAG_LEN], out[1];

	CHECK(seal_chunk(key, 0, plain, 0, sealed) == 0);
	CHECK(seal_open(key, 0, sealed, SEAL_TAG_LEN, out) == 0);
}

int main(void)
{
	crypto_random(key, sizeof(key));
	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (unsigned char)(i * 31 + 7);
	TEST_RUN(test_round_trip);
	TEST_RUN(test_flipped_bit_fails);
	TEST_RUN(test_wrong_index_or_key_fails);
	TEST_RUN(test_truncated_fails);
	TEST_RUN(test_open_in_place);
	TEST_RUN(test_empty_chunk);
	TEST_EXIT();
}
