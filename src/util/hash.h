#ifndef CHORUS_UTIL_HASH_H
#define CHORUS_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

/*
 * FNV-1a, 64-bit: for hash tables and the peers' rendezvous scores, never
 * for anything an attacker may choose to collide (keys are random blob
 * ids or our own request text). Chain calls to hash several fields:
 * h = hash_fnv1a(hash_fnv1a(HASH_FNV1A_INIT, a, n), b, m).
 */
#define HASH_FNV1A_INIT 14695981039346656037ULL

static inline uint64_t hash_fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return h;
}

static inline uint64_t hash_fnv1a_str(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* A 32-bit value's bytes, least significant first (the same on every
 * host, which the peers' scores need). */
static inline uint64_t hash_fnv1a_u32(uint64_t h, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		h = (h ^ ((v >> (8 * i)) & 0xff)) * 1099511628211ULL;
	return h;
}

#endif
