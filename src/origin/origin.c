#include "origin/origin.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int origin_open(const char *spec, const char *data_dir, origin_t **out, char *err, size_t errlen)
{
	char path[4096];

	if (!spec || !*spec) {
		snprintf(path, sizeof(path), "%s/origin", data_dir);
		return origin_dir_open(path, out, err, errlen);
	}
	if (strncmp(spec, "dir:", 4) == 0 && spec[4])
		return origin_dir_open(spec + 4, out, err, errlen);
	snprintf(err, errlen, "unsupported origin \"%s\" (expected dir:PATH)", spec);
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
