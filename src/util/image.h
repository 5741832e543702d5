#ifndef CHORUS_UTIL_IMAGE_H
#define CHORUS_UTIL_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/*
 * What kind of picture a cover upload is, from its bytes alone: the
 * format's magic, then its header decoded far enough to read the
 * dimensions (PNG: the IHDR chunk, with its CRC; JPEG: the markers up to
 * the first start-of-frame). The pixels are not decoded: a file cut
 * after its header passes. Pure; fuzzed (tests/fuzz/fuzz_edit_body.c).
 */
#define IMAGE_SIDE_MAX 20000 /* pixels, either side */

struct image_info {
	const char *mime; /* "image/jpeg" or "image/png" */
	uint32_t width, height;
};

/* 0 with *out filled, or -1 with why pointing to a static sentence. */
int image_probe(const void *data, size_t len, struct image_info *out, const char **why);

#endif
