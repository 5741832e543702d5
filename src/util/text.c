#include "util/text.h"

#include <locale.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "util/xalloc.h"

/* Decodes one UTF-8 sequence at s (n bytes left). Returns its length and the
 * code point, or 0 when malformed. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c = s[0];
	size_t len, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		len = 2;
		c &= 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3;
		c &= 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4;
		c &= 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

static size_t utf8_encode(uint32_t c, char *out)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	} else if (c < 0x800) {
		out[0] = (char)(0xc0 | (c >> 6));
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	} else if (c < 0x10000) {
		out[0] = (char)(0xe0 | (c >> 12));
		out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (c >> 18));
	out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

bool text_is_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;

	while (len > 0) {
		size_t n = utf8_decode(p, len, &cp);
		if (n == 0)
			return false;
		p += n;
		len -= n;
	}
	return true;
}

/* White space at either end: ASCII space and controls, NBSP, the Unicode
 * spaces U+2000..U+200B, U+3000 and the BOM that some taggers leave in. */
static bool is_space(uint32_t c)
{
	return c <= 0x20 || c == 0x7f || c == 0xa0 || (c >= 0x2000 && c <= 0x200b) || c == 0x202f ||
	       c == 0x205f || c == 0x3000 || c == 0xfeff;
}

char *text_clean(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	bool utf8 = text_is_utf8(s, len);
	/* Latin-1 grows at most 2x; UTF-8 is copied. */
	char *out = xmalloc(len * 2 + 1);
	size_t o = 0, keep = 0, i = 0;

	while (i < len) {
		uint32_t c;
		size_t n;

		if (utf8) {
			n = utf8_decode(p + i, len - i, &c);
		} else {
			c = p[i];
			n = 1;
		}
		i += n;
		if (c == 0)
			break; /* an embedded NUL ends tag text */
		if (o == 0 && is_space(c))
			continue;
		if (c < 0x20 || c == 0x7f)
			c = ' '; /* tabs and newlines inside a name become spaces */
		o += utf8_encode(c, out + o);
		if (!is_space(c))
			keep = o;
	}
	out[keep] = '\0';
	return out;
}

static locale_t utf8_locale;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;

static void utf8_locale_init(void)
{
	utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

char *text_name_key(const char *s)
{
	char *clean = text_clean(s, strlen(s));
	size_t len = strlen(clean), i = 0, o = 0;
	char *out = xmalloc(len * 2 + 1); /* a lower-case form is at most 2x longer */

	pthread_once(&utf8_once, utf8_locale_init);
	while (i < len) {
		uint32_t c;
		size_t n = utf8_decode((const unsigned char *)clean + i, len - i, &c);
		if (n == 0)
			break; /* cannot happen: clean is valid UTF-8 */
		i += n;
		if (c < 0x80) {
			if (c >= 'A' && c <= 'Z')
				c += 'a' - 'A';
		} else if (utf8_locale) {
			uint32_t l = (uint32_t)towlower_l((wint_t)c, utf8_locale);
			if (l <= 0x10ffff && !(l >= 0xd800 && l <= 0xdfff))
				c = l;
		}
		o += utf8_encode(c, out + o);
	}
	out[o] = '\0';
	free(clean);
	return out;
}

void text_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int text_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int text_unhex(const char *hex, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = text_hexval(hex[2 * i]), lo;
		if (hi < 0)
			return -1;
		lo = text_hexval(hex[2 * i + 1]);
		if (lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int text_base64_decode(const char *s, size_t len, unsigned char *out, size_t cap)
{
	size_t n = 0;

	if (len % 4)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;

		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)s[i + k];
			/* '=' only at the very end: "xx==" or "xxx=". */
			if (c == '=' && i + 4 == len && k >= 2 && (k == 3 || s[i + 3] == '=')) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad || (v[k] = b64val(c)) < 0)
				return -1;
		}
		unsigned long w = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 |
				  (unsigned long)v[2] << 6 | (unsigned long)v[3];
		if (n + 3 - (size_t)pad > cap)
			return -1;
		out[n++] = (unsigned char)(w >> 16);
		if (pad < 2)
			out[n++] = (unsigned char)(w >> 8);
		if (pad < 1)
			out[n++] = (unsigned char)w;
	}
	return n > INT32_MAX ? -1 : (int)n;
}
