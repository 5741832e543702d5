/* libFuzzer: the stores' bodies (api/zones_body.h: a location, a zone, a
 * playlist, a command, a device's status) and a rules playlist's rules
 * (catalog/rules.h) on the same bytes. Every answer is 200, 400 or 422
 * with a reason; what passes obeys its rules (texts within bounds and
 * free of controls, volumes 0-100, a known licence, a country of two
 * upper-case letters); a playlist is tracks or rules, never both; rules
 * that parse give canonical JSON that parses again to the same bytes,
 * and matching a track never crashes whatever the rules. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/zones_body.h"
#include "catalog/rules.h"
#include "util/buf.h"

static void check_text(const char *s, size_t max, bool empty_ok)
{
	size_t n = strnlen(s, max + 1);

	if (n > max || (!empty_ok && n == 0))
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

static void check_status(int st, const char *err)
{
	if (st != 200 && st != 400 && st != 422)
		abort();
	if (st != 200 && !err[0])
		abort();
}

static void rules(const uint8_t *data, size_t size)
{
	struct rules r, again;
	char err[256];
	buf_t a, b;

	if (rules_parse(data, size, &r, err, sizeof(err)) < 0) {
		if (!err[0])
			abort();
		return;
	}
	buf_init(&a, 1 << 20);
	buf_init(&b, 1 << 20);
	if (rules_json(&r, &a) < 0)
		abort();
	if (rules_parse(a.data, a.len, &again, err, sizeof(err)) < 0)
		abort();
	if (rules_json(&again, &b) < 0 || a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		abort();
	{
		struct rules_track t = {.id = 1,
					.artist = 2,
					.year = 1999,
					.genre = "Jazz Funk",
					.label = "Blue Note",
					.explicit_flag = -1};
		(void)rules_match(&r, &t);
		t.genre = t.label = NULL;
		(void)rules_match(&again, &t);
	}
	rules_free(&r);
	rules_free(&again);
	buf_free(&a);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	int st;

	for (int patch = 0; patch < 2; patch++) {
		struct store_location l = {0};
		struct store_zone z = {0};

		err[0] = '\0';
		st = zones_body_location(data, size, patch, &l, err, sizeof(err));
		check_status(st, err);
		if (st == 200) {
			check_text(l.name, STORE_NAME_MAX, patch);
			check_text(l.address, STORE_TEXT_MAX, true);
			if (!patch && (strlen(l.country) != 2 || !l.timezone[0]))
				abort();
			if (strcmp(l.licence, "interactive") != 0 &&
			    strcmp(l.licence, "non-interactive") != 0 && (!patch || l.licence[0]))
				abort();
		}
		err[0] = '\0';
		st = zones_body_zone(data, size, patch, &z, err, sizeof(err));
		check_status(st, err);
		if (st == 200) {
			check_text(z.name, STORE_NAME_MAX, patch);
			if (z.volume < 0 || z.volume > 100 || (!patch && !z.location_id))
				abort();
		}
	}
	{
		struct store_playlist p = {0};
		int64_t *ids;
		char *tracks, *rtext;
		int n;

		err[0] = '\0';
		st = zones_body_playlist(data, size, &p, &ids, &n, &tracks, &rtext, err,
					 sizeof(err));
		check_status(st, err);
		if (st == 200) {
			check_text(p.name, STORE_NAME_MAX, false);
			if (p.rules_kind ? (!p.rules || p.tracks) : (!p.tracks || p.rules))
				abort();
			if (!p.rules_kind && strlen(p.tracks) != (n ? (size_t)n * 17 - 1 : 0))
				abort();
		}
		free(ids);
		free(tracks);
		free(rtext);
	}
	{
		bool skip;
		int volume;

		err[0] = '\0';
		st = zones_body_command(data, size, &skip, &volume, err, sizeof(err));
		check_status(st, err);
		if (st == 200 && skip == (volume >= 0))
			abort();
	}
	{
		struct zones_status s;

		err[0] = '\0';
		st = zones_body_status(data, size, &s, err, sizeof(err));
		check_status(st, err);
		if (st == 200) {
			check_text(s.error, sizeof(s.error) - 1, true);
			check_text(s.version, sizeof(s.version) - 1, true);
		}
	}
	rules(data, size);
	return 0;
}
