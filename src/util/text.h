#ifndef CHORUS_UTIL_TEXT_H
#define CHORUS_UTIL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..len) is well-formed UTF-8 (no overlongs, surrogates or
 * code points past U+10FFFF). */
bool text_is_utf8(const char *s, size_t len);

/*
 * Tag text as valid UTF-8: a copy when it already is; otherwise it is read
 * as Latin-1 (what untagged-encoding ID3v1/v2 and many Vorbis writers really
 * hold) and converted. Surrounding white space and control characters are
 * removed. Returns a malloc'd string (possibly empty).
 */
char *text_clean(const char *s, size_t len);

/*
 * The identity key of an artist, album or track name: the clean text with
 * every letter lower-cased (full Unicode simple case mapping). Two names are
 * the same entity when their keys are equal. Returns a malloc'd string.
 */
char *text_name_key(const char *s);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void text_hex(const unsigned char *p, size_t n, char *out);
/* The value of one hex digit (either case), or -1. */
int text_hexval(char c);
/* Parses 2n hex digits into n bytes; 0 or -1. */
int text_unhex(const char *hex, unsigned char *out, size_t n);

/* Decodes standard base64 (RFC 4648, padded, no whitespace) of s[0..len)
 * into out (cap bytes): the decoded length, or -1 when malformed or when
 * it does not fit. */
int text_base64_decode(const char *s, size_t len, unsigned char *out, size_t cap);

#endif
