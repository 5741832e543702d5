/*
 * Cover pictures' headers (see image.h): PNG by its signature and IHDR
 * (RFC 2083: the first chunk, 13 bytes, CRC-32 over type and data), JPEG
 * by SOI and its marker segments up to a SOFn (ITU T.81 B.2), each length
 * checked against what is left, so no read leaves the buffer.
 */
#include "util/image.h"

#include <stdbool.h>
#include <string.h>

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t be16(const unsigned char *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

/* CRC-32 (ISO 3309, PNG's), bit by bit: it covers 17 bytes here. */
static uint32_t crc32_of(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return c ^ 0xffffffffu;
}

static int png(const unsigned char *p, size_t n, struct image_info *out, const char **why)
{
	uint32_t w, h;

	/* signature (8), length (4), "IHDR" (4), data (13), CRC (4) */
	if (n < 33 || be32(p + 8) != 13 || memcmp(p + 12, "IHDR", 4) != 0) {
		*why = "not a PNG image: no IHDR chunk after the signature";
		return -1;
	}
	if (crc32_of(p + 12, 17) != be32(p + 29)) {
		*why = "not a PNG image: its IHDR chunk fails its CRC";
		return -1;
	}
	w = be32(p + 16);
	h = be32(p + 20);
	/* Bit depth and colour type as the specification pairs them. */
	{
		unsigned depth = p[24], type = p[25];
		bool ok = (type == 0 &&
			   (depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16)) ||
			  (type == 3 && (depth == 1 || depth == 2 || depth == 4 || depth == 8)) ||
			  ((type == 2 || type == 4 || type == 6) && (depth == 8 || depth == 16));
		if (!ok || p[26] != 0 || p[27] != 0 || p[28] > 1) {
			*why = "not a PNG image: an invalid IHDR";
			return -1;
		}
	}
	out->mime = "image/png";
	out->width = w;
	out->height = h;
	return 0;
}

static int jpeg(const unsigned char *p, size_t n, struct image_info *out, const char **why)
{
	size_t i = 2;

	*why = "not a JPEG image: no frame header (SOF) before its data";
	while (i + 4 <= n) {
		unsigned m;
		uint32_t len;

		if (p[i] != 0xff) {
			*why = "not a JPEG image: a damaged marker";
			return -1;
		}
		while (i < n && p[i] == 0xff) /* fill bytes */
			i++;
		if (i >= n)
			return -1;
		m = p[i++];
		if (m == 0xd8 || m == 0xd9 || m == 0x01 || (m >= 0xd0 && m <= 0xd7))
			continue; /* markers without a segment; EOI before a frame fails below */
		if (i + 2 > n)
			return -1;
		len = be16(p + i);
		if (len < 2 || i + len > n) {
			*why = "not a JPEG image: a segment runs past the end";
			return -1;
		}
		/* SOF0-15, but not DHT (c4), JPG (c8) or DAC (cc). */
		if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
			if (len < 8) {
				*why = "not a JPEG image: a short frame header";
				return -1;
			}
			out->mime = "image/jpeg";
			out->height = be16(p + i + 3);
			out->width = be16(p + i + 5);
			return 0;
		}
		if (m == 0xda) /* scan data before any frame */
			return -1;
		i += len;
	}
	return -1;
}

int image_probe(const void *data, size_t len, struct image_info *out, const char **why)
{
	static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	const unsigned char *p = data;
	int rc;

	memset(out, 0, sizeof(*out));
	if (len >= 8 && memcmp(p, png_sig, 8) == 0)
		rc = png(p, len, out, why);
	else if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
		rc = jpeg(p, len, out, why);
	else {
		*why = "not a JPEG or PNG image";
		return -1;
	}
	if (rc == 0 && (out->width < 1 || out->height < 1 || out->width > IMAGE_SIDE_MAX ||
			out->height > IMAGE_SIDE_MAX)) {
		*why = "the image's dimensions are out of range (1 to 20000 pixels a side)";
		rc = -1;
	}
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	return rc;
}
