/*
 * The stores' commands (see stores_cmd.h). The body of each is the one
 * the API builds from JSON, checked by the same parser
 * (api/zones_body.h), so a name or a time zone the API refuses is
 * refused here with the same words.
 */
#include "node/stores_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/zones_body.h"
#include "catalog/model.h"
#include "store/store.h"
#include "store/zones.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "util/json.h"

#define ACTOR "cli"

static store_t *open_store(const char *what, const struct stores_cmd *c)
{
	store_t *s = NULL;
	char err[512];

	if (!(c->db && *c->db) && fs_mkdir_p(c->data_dir, 0750) < 0) {
		fprintf(stderr, "chorus: %s: cannot create data directory %s: %s\n", what,
			c->data_dir, strerror(errno));
		return NULL;
	}
	if (store_open(c->data_dir, c->db, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "chorus: %s: %s\n", what, err);
		return NULL;
	}
	return s;
}

static int verb_add(const char *what, const struct stores_cmd *c)
{
	if (!c->verb || strcmp(c->verb, "add") != 0) {
		fprintf(stderr, "chorus: %s: unknown subcommand \"%s\" (add)\n", what,
			c->verb ? c->verb : "");
		return 2;
	}
	if (!c->name) {
		fprintf(stderr, "chorus: %s add: which name?\n", what);
		return 2;
	}
	return 0;
}

static void kv(json_t *j, const char *k, const char *v)
{
	if (v)
		json_kstr(j, k, v);
}

static int report(const char *what, int rc, const char *err, const struct store_change *out)
{
	char hex[17];

	if (rc < 0) {
		fprintf(stderr, "chorus: %s: %s\n", what, err);
		return 1;
	}
	catalog_id_str(out->id, hex);
	printf("%s\n", hex);
	return 0;
}

int stores_cmd_location(const struct stores_cmd *c)
{
	struct store_location l = {0};
	struct store_change out = {0};
	char err[256] = "";
	store_t *s;
	json_t j;
	buf_t b;
	int rc;

	if ((rc = verb_add("location", c)) != 0)
		return rc;
	buf_init(&b, 64 << 10);
	json_init(&j, &b);
	json_obj_begin(&j);
	kv(&j, "name", c->name);
	kv(&j, "timezone", c->timezone);
	kv(&j, "country", c->country);
	kv(&j, "licence", c->licence);
	kv(&j, "address", c->address);
	json_obj_end(&j);
	rc = zones_body_location(b.data, b.len, false, &l, err, sizeof(err));
	buf_free(&b);
	if (rc != 200) {
		fprintf(stderr, "chorus: location add: %s\n", err);
		return 2;
	}
	if (!(s = open_store("location add", c)))
		return 1;
	rc = store_location_put(s, ACTOR, &l, &out, err, sizeof(err));
	store_close(s);
	return report("location add", rc, err, &out);
}

int stores_cmd_zone(const struct stores_cmd *c)
{
	struct store_zone z = {.volume = 100};
	struct store_change out = {0};
	char err[256] = "";
	store_t *s;
	int rc;

	if ((rc = verb_add("zone", c)) != 0)
		return rc;
	if (!c->location) {
		fprintf(stderr, "chorus: zone add: which location? (--location ID or NAME)\n");
		return 2;
	}
	if (strlen(c->name) > STORE_NAME_MAX) {
		fprintf(stderr, "chorus: zone add: a name is 1 to %d bytes\n", STORE_NAME_MAX);
		return 2;
	}
	snprintf(z.name, sizeof(z.name), "%s", c->name);
	if (!(s = open_store("zone add", c)))
		return 1;
	rc = store_location_resolve(s, c->location, &z.location_id);
	if (rc == -ENOENT)
		snprintf(err, sizeof(err), "no location \"%s\"", c->location);
	else if (rc < 0)
		snprintf(err, sizeof(err), "the database could not be read");
	if (rc == 0)
		rc = store_zone_put(s, ACTOR, &z, &out, err, sizeof(err));
	store_close(s);
	return report("zone add", rc, err, &out);
}
