#include "origin/origin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int origin_open(const char *spec, const char *data_dir, origin_t **out, char *err, size_t errlen)
{
	char path[4096];

	if (!spec || !*spec) {
		snprintf(path, sizeof(path), "%s/origin", data_dir);
		return origin_dir_open(path, out, err, errlen);
	}
	if (strncmp(spec, "dir:", 4) == 0 && spec[4])
		return origin_dir_open(spec + 4, out, err, errlen);
	if (strncmp(spec, "s3://", 5) == 0)
		return origin_s3_open(spec, out, err, errlen);
	snprintf(err, errlen,
		 "unsupported origin \"%.200s\" (expected dir:PATH or"
		 " s3://BUCKET[/PREFIX][?endpoint=URL&region=REGION])",
		 spec);
	return -EINVAL;
}

void origin_close(origin_t *o)
{
	if (o)
		o->ops->close(o);
}

void origin_chunk_key(const char *blob, uint32_t index, char out[ORIGIN_KEY_MAX])
{
	snprintf(out, ORIGIN_KEY_MAX, "c/%.2s/%.32s/%08x", blob, blob, index);
}

int origin_put_batch(origin_t *o, struct origin_batch *b, const char *key, const void *data,
		     size_t len)
{
	if (!o->ops->put_batch)
		return o->ops->put(o, key, data, len);
	return o->ops->put_batch(o, b, key, data, len);
}

int origin_flush(origin_t *o, struct origin_batch *b)
{
	if (!o->ops->flush)
		return 0;
	return o->ops->flush(o, b);
}

void origin_batch_free(struct origin_batch *b)
{
	if (b->impl)
		b->impl_free(b->impl);
	for (size_t i = 0; i < b->nfds; i++)
		close(b->fds[i]);
	for (size_t i = 0; i < b->ndirs; i++)
		free(b->dirs[i]);
	free(b->fds);
	free(b->dirs);
	memset(b, 0, sizeof(*b));
}
