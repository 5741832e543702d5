#ifndef CHORUS_CRYPTO_SEAL_H
#define CHORUS_CRYPTO_SEAL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Chunks at rest and between peers are sealed with ChaCha20-Poly1305 under a
 * random per-content key. The 96-bit nonce is the chunk index (big-endian,
 * zero-padded): a key seals exactly one version of one file, so a (key,
 * index) pair never seals two different plaintexts. A sealed chunk is the
 * ciphertext followed by the 16-byte tag; nothing else is stored.
 */
#define SEAL_KEY_LEN 32
#define SEAL_TAG_LEN 16

/* Loads OpenSSL's configuration and ciphers now rather than inside the
 * first request that needs them (about 2 ms, paid by a listener's first
 * byte otherwise). */
void crypto_warm_up(void);

/* Fills p with n bytes from the OS CSPRNG; aborts if none is available. */
void crypto_random(void *p, size_t n);

/* Seals len bytes of in into out (len + SEAL_TAG_LEN bytes). 0 or -EIO. */
int seal_chunk(const uint8_t key[SEAL_KEY_LEN], uint64_t index, const void *in, size_t len,
	       void *out);

/* Opens a sealed chunk of len bytes into out (len - SEAL_TAG_LEN bytes);
 * out may be in itself (opening in place).
 * 0, or -EBADMSG when the tag does not verify (wrong key, index, or any
 * flipped bit): out then holds no usable data. */
int seal_open(const uint8_t key[SEAL_KEY_LEN], uint64_t index, const void *in, size_t len,
	      void *out);

/* SHA-256 of a buffer, as 64 lower-case hex digits plus NUL. */
void crypto_sha256_hex(const void *p, size_t len, char out[65]);

#endif
