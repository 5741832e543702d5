#include "catalog/model.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void track_meta_free(struct track_meta *m)
{
	free(m->title);
	free(m->artist);
	free(m->album);
	free(m->album_artist);
	free(m->genre);
	free(m->isrc);
	free(m->label);
	free(m->codec);
	free(m->cover);
	memset(m, 0, sizeof(*m));
}

uint32_t manifest_chunk_count(uint64_t size, uint32_t chunk_size)
{
	return (uint32_t)((size + chunk_size - 1) / chunk_size);
}

uint32_t manifest_chunk_len(const struct manifest *m, uint32_t index)
{
	uint64_t off = manifest_chunk_offset(m, index);

	if (off >= m->size)
		return 0;
	return m->size - off < m->chunk_size ? (uint32_t)(m->size - off) : m->chunk_size;
}

uint64_t manifest_chunk_offset(const struct manifest *m, uint32_t index)
{
	return (uint64_t)index * m->chunk_size;
}

uint32_t manifest_chunk_at(const struct manifest *m, uint64_t offset)
{
	return (uint32_t)(offset / m->chunk_size);
}

static int64_t hash63(const void *p, size_t n)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	uint64_t v = 0;

	SHA256(p, n, md);
	for (int i = 0; i < 8; i++)
		v = v << 8 | md[i];
	v &= INT64_MAX;
	return v ? (int64_t)v : 1; /* 0 is never an id */
}

int64_t catalog_artist_id(const char *name_key)
{
	char buf[4096];
	int n = snprintf(buf, sizeof(buf), "artist\n%s", name_key);

	return hash63(buf, n < (int)sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

int64_t catalog_album_id(int64_t artist_id, const char *title_key)
{
	char buf[4096];
	int n = snprintf(buf, sizeof(buf), "album\n%lld\n%s", (long long)artist_id, title_key);

	return hash63(buf, n < (int)sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

int64_t catalog_random_id(void)
{
	uint64_t v;

	do {
		crypto_random(&v, sizeof(v));
		v &= INT64_MAX;
	} while (v == 0);
	return (int64_t)v;
}

void catalog_id_str(int64_t id, char out[17])
{
	snprintf(out, 17, "%016llx", (unsigned long long)id);
}

int catalog_id_parse(const char *s, size_t len, int64_t *id)
{
	uint64_t v = 0;

	if (len != 16)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	if (v == 0 || v > INT64_MAX)
		return -1;
	*id = (int64_t)v;
	return 0;
}
