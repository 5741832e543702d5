#include "crypto/seal.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/text.h"

/* Binds every tag to this format, so a chunk cannot be replayed as anything
 * else sealed with the same primitive. */
static const unsigned char aad[] = "chorus-chunk-v1";

void crypto_warm_up(void)
{
	unsigned char key[SEAL_KEY_LEN] = {0}, buf[64] = {0}, out[64 + SEAL_TAG_LEN];

	OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL);
	if (seal_chunk(key, 0, buf, sizeof(buf), out) != 0 ||
	    seal_open(key, 0, out, sizeof(out), buf) != 0)
		abort(); /* the library cannot seal: nothing would work */
}

void crypto_random(void *p, size_t n)
{
	if (RAND_bytes(p, (int)n) != 1) {
		fprintf(stderr, "chorus: no randomness available from OpenSSL\n");
		abort();
	}
}

static void make_nonce(uint64_t index, unsigned char nonce[12])
{
	memset(nonce, 0, 4);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (unsigned char)(index >> (56 - 8 * i));
}

/* One cipher context per thread: creating one per chunk costs more than
 * sealing a small chunk. */
static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void ctx_free(void *ctx)
{
	EVP_CIPHER_CTX_free(ctx);
}

static void ctx_key_init(void)
{
	if (pthread_key_create(&ctx_key, ctx_free) != 0)
		abort();
}

static EVP_CIPHER_CTX *thread_ctx(void)
{
	EVP_CIPHER_CTX *ctx;

	pthread_once(&ctx_once, ctx_key_init);
	ctx = pthread_getspecific(ctx_key);
	if (!ctx) {
		ctx = EVP_CIPHER_CTX_new();
		if (!ctx || pthread_setspecific(ctx_key, ctx) != 0)
			abort();
	}
	return ctx;
}

int seal_chunk(const uint8_t key[SEAL_KEY_LEN], uint64_t index, const void *in, size_t len,
	       void *out)
{
	EVP_CIPHER_CTX *ctx = thread_ctx();
	unsigned char nonce[12];
	unsigned char *o = out;
	int n, fin;

	if (len > INT32_MAX)
		return -EINVAL;
	make_nonce(index, nonce);
	if (EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key, nonce) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &n, aad, sizeof(aad) - 1) != 1 ||
	    EVP_EncryptUpdate(ctx, o, &n, in, (int)len) != 1 ||
	    EVP_EncryptFinal_ex(ctx, o + n, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, SEAL_TAG_LEN, o + len) != 1)
		return -EIO;
	return 0;
}

int seal_open(const uint8_t key[SEAL_KEY_LEN], uint64_t index, const void *in, size_t len,
	      void *out)
{
	EVP_CIPHER_CTX *ctx = thread_ctx();
	const unsigned char *i = in;
	unsigned char nonce[12], tag[SEAL_TAG_LEN];
	int n, fin;
	size_t plen;

	if (len < SEAL_TAG_LEN || len - SEAL_TAG_LEN > INT32_MAX)
		return -EBADMSG;
	plen = len - SEAL_TAG_LEN;
	memcpy(tag, i + plen, SEAL_TAG_LEN);
	make_nonce(index, nonce);
	if (EVP_DecryptInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key, nonce) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, SEAL_TAG_LEN, tag) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &n, aad, sizeof(aad) - 1) != 1 ||
	    EVP_DecryptUpdate(ctx, out, &n, i, (int)plen) != 1)
		return -EBADMSG;
	if (EVP_DecryptFinal_ex(ctx, (unsigned char *)out + n, &fin) != 1)
		return -EBADMSG;
	return 0;
}

void crypto_sha256_hex(const void *p, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(p, len, md);
	text_hex(md, sizeof(md), out);
}
