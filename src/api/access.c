/*
 * Who is asking (see access.h): one credential per request, checked
 * against this loop's read model, then the route's rule.
 *
 * The messages say what is wrong with a credential without helping a
 * guesser: an unknown key id and a wrong secret are the same "invalid API
 * key" (a revoked key is named as such only once its secret matched).
 */
#include "api/access.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "catalog/model.h"
#include "util/clock.h"

#define JSON_TYPE "application/json; charset=utf-8"

const char *access_rule_name(enum access_rule r)
{
	static const char *const names[] = {
		[ACCESS_OPEN] = "open",       [ACCESS_READ] = "read",     [ACCESS_PLAYS] = "plays",
		[ACCESS_REPORTS] = "reports", [ACCESS_EDITOR] = "editor", [ACCESS_SELF] = "self",
		[ACCESS_ADMIN] = "admin",     [ACCESS_PEER] = "peer",     [ACCESS_ZONE] = "zone",
		[ACCESS_DEVICE] = "device",
	};

	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

static bool deny(struct access_denial *why, int status, const char *message)
{
	why->status = status;
	why->message = message;
	return false;
}

const char *access_cookie(const struct http_request *req, size_t *len)
{
	static const char name[] = "chorus_session=";
	const size_t n = sizeof(name) - 1;

	/* Every Cookie header, every "; "-separated pair. */
	for (size_t h = 0; h < req->nheaders; h++) {
		const struct http_header *hd = &req->headers[h];
		const char *p, *end;

		if (!http_str_eq(hd->name, "Cookie"))
			continue;
		p = hd->value.p;
		end = p + hd->value.len;
		while (p < end) {
			const char *q;
			while (p < end && (*p == ' ' || *p == ';'))
				p++;
			q = p;
			while (q < end && *q != ';')
				q++;
			if ((size_t)(q - p) >= n && memcmp(p, name, n) == 0) {
				*len = (size_t)(q - p) - n;
				return p + n;
			}
			p = q;
		}
	}
	*len = 0;
	return NULL;
}

static void key_principal(struct principal *who, const char *id, const struct catalog_key *k)
{
	who->role = k->role;
	snprintf(who->id, sizeof(who->id), "k%s", id);
	snprintf(who->actor, sizeof(who->actor), "key:%s", id);
	snprintf(who->location, sizeof(who->location), "%s", k->location);
	snprintf(who->zone, sizeof(who->zone), "%s", k->zone);
}

static void user_principal(struct principal *who, const struct catalog_user *u)
{
	char hex[17];

	catalog_id_str(u->id, hex);
	who->role = u->role;
	who->user_id = u->id;
	snprintf(who->id, sizeof(who->id), "u%s", hex);
	snprintf(who->actor, sizeof(who->actor), "%s", u->name);
}

static bool by_key(struct api_loop *al, const struct http_str *h, struct principal *who,
		   struct access_denial *why)
{
	char id[AUTH_KEY_ID_LEN + 1], hash[AUTH_HASH_HEX_LEN + 1];
	struct catalog_key k;
	const char *tok;
	size_t toklen;

	if (h->len < 7 || strncasecmp(h->p, "Bearer ", 7) != 0) {
		size_t sp = 0;
		while (sp < h->len && h->p[sp] != ' ')
			sp++;
		return deny(why, 401,
			    sp < h->len
				    ? "unsupported authorization scheme; use Bearer (or Session)"
				    : "malformed Authorization header");
	}
	if (auth_bearer(h->p, h->len, &tok, &toklen) < 0 ||
	    auth_key_parse(tok, toklen, id, hash) < 0)
		return deny(why, 401, "malformed API key");
	switch (catalog_key_check(al->principals, id, hash, &k)) {
	case 0:
		break;
	case -EKEYREVOKED:
		return deny(why, 401, "this API key is revoked");
	case -ENOENT:
	case -EACCES:
		return deny(why, 401, "invalid API key");
	default:
		return deny(why, 500, "credentials could not be checked");
	}
	who->via = VIA_KEY;
	key_principal(who, id, &k);
	return true;
}

static bool by_session(struct api *api, struct api_loop *al, const char *v, size_t len,
		       enum access_via via, struct principal *who, struct access_denial *why)
{
	int64_t uid, gen;
	struct catalog_user u;
	enum auth_verdict vd =
		auth_session_check(api->session_key, v, len, wall_ms() / 1000, &uid, &gen);

	if (vd == AUTH_EXPIRED)
		return deny(why, 401, "session expired; log in again");
	if (vd != AUTH_OK || len >= sizeof(who->session))
		return deny(why, 401, "invalid session");
	switch (catalog_user_find_id(al->principals, uid, &u)) {
	case 0:
		break;
	case -ENOENT:
		return deny(why, 401, "session ended; log in again");
	default:
		return deny(why, 500, "credentials could not be checked");
	}
	explicit_bzero(u.password, sizeof(u.password));
	if (u.generation != gen)
		return deny(why, 401, "session ended; log in again");
	who->via = via;
	user_principal(who, &u);
	memcpy(who->session, v, len);
	who->session[len] = '\0';
	return true;
}

static bool zone_ok(struct api_loop *al, int64_t zone, const struct principal *who,
		    struct access_denial *why);

/* ?exp=T&sig=S on a stream: good for that track, for as long as its
 * principal is. */
static bool by_url(struct api *api, struct api_loop *al, const struct http_request *req,
		   int64_t track_id, struct principal *who, struct access_denial *why)
{
	char exp[24], sig[AUTH_URL_SIG_MAX + 8], principal[ACCESS_ID_MAX], *end;
	int siglen = http_query_param(req->query, "sig", sig, sizeof(sig));
	int64_t zone = 0;
	long long t;

	if (siglen < 0 || http_query_param(req->query, "exp", exp, sizeof(exp)) <= 0)
		return deny(why, 403, "malformed stream link");
	errno = 0;
	t = strtoll(exp, &end, 10);
	if (*end || errno || t <= 0)
		return deny(why, 403, "malformed stream link");
	/* A zone's queue signs once for every track the zone plays. */
	if (http_query_has(req->query, "zone")) {
		char z[24];
		int zlen = http_query_param(req->query, "zone", z, sizeof(z));

		if (zlen < 0 || catalog_id_parse(z, (size_t)zlen, &zone) < 0)
			return deny(why, 403, "malformed stream link");
	}
	switch (zone ? auth_zone_url_check(api->url_key, zone, t, sig, (size_t)siglen,
					   wall_ms() / 1000, principal, sizeof(principal))
		     : auth_url_check(api->url_key, track_id, t, sig, (size_t)siglen,
				      wall_ms() / 1000, principal, sizeof(principal))) {
	case AUTH_OK:
		break;
	case AUTH_EXPIRED:
		return deny(why, 410, "this stream link has expired");
	default:
		return deny(why, 403, "invalid stream link signature");
	}
	/* The link lives no longer than who it was made for. */
	if (principal[0] == 'k') {
		struct catalog_key k;
		int rc = catalog_key_find(al->principals, principal + 1, &k);
		if (rc == -ENOENT || (rc == 0 && k.revoked))
			return deny(why, 403, "the key this link was made for is revoked");
		if (rc < 0)
			return deny(why, 500, "credentials could not be checked");
		key_principal(who, principal + 1, &k);
	} else {
		struct catalog_user u;
		int64_t uid;
		int rc = catalog_id_parse(principal + 1, strlen(principal + 1), &uid) < 0
				 ? -ENOENT
				 : catalog_user_find_id(al->principals, uid, &u);
		if (rc == -ENOENT)
			return deny(why, 403, "the user this link was made for is gone");
		if (rc < 0)
			return deny(why, 500, "credentials could not be checked");
		explicit_bzero(u.password, sizeof(u.password));
		user_principal(who, &u);
	}
	who->via = VIA_URL;
	/* A zone's link: a track that zone plays, for a principal that may
	 * still play the zone. */
	if (zone && !api_zone_plays(al, zone, track_id))
		return deny(why, 403, "this link is for the tracks of its zone");
	if (zone && who->role == AUTH_STORE && !zone_ok(al, zone, who, why))
		return false;
	return true;
}

static bool identify(struct api *api, struct api_loop *al, const struct http_request *req,
		     enum access_rule rule, int64_t track_id, struct principal *who,
		     struct access_denial *why)
{
	const struct http_str *h = http_header_get(req, "Authorization");
	const char *cookie;
	size_t len;

	if (h && h->len > 8 && strncasecmp(h->p, "Session ", 8) == 0) {
		size_t skip = 8;
		while (skip < h->len && h->p[skip] == ' ')
			skip++;
		return by_session(api, al, h->p + skip, h->len - skip, VIA_SESSION_HEADER, who,
				  why);
	}
	if (h)
		return by_key(al, h, who, why);
	if ((cookie = access_cookie(req, &len)))
		return by_session(api, al, cookie, len, VIA_SESSION, who, why);
	if (rule == ACCESS_READ && track_id &&
	    (http_query_has(req->query, "sig") || http_query_has(req->query, "exp")))
		return by_url(api, al, req, track_id, who, why);
	return true; /* anonymous */
}

static bool is_write(const struct http_request *req)
{
	return req->method != HTTP_GET && req->method != HTTP_HEAD;
}

/* A store key plays the zones of its location, or only its zone. */
static bool zone_ok(struct api_loop *al, int64_t zone, const struct principal *who,
		    struct access_denial *why)
{
	int64_t location;
	char hex[17];
	int rc = catalog_zone_location(al->zones, zone, &location);

	if (rc == -ENOENT)
		return deny(why, 404, "no such zone");
	if (rc < 0)
		return deny(why, 500, "the zone could not be read");
	catalog_id_str(location, hex);
	if (strcmp(who->location, hex) != 0)
		return deny(why, 403, "this key is for another location");
	catalog_id_str(zone, hex);
	if (who->zone[0] && strcmp(who->zone, hex) != 0)
		return deny(why, 403, "this key is for another zone");
	return true;
}

bool access_check(struct api *api, struct api_loop *al, const struct http_request *req,
		  enum access_rule rule, int64_t object, struct principal *who,
		  struct access_denial *why)
{
	enum auth_role r;

	memset(who, 0, sizeof(*who));
	if (rule == ACCESS_OPEN || rule == ACCESS_PEER)
		return true;
	if (!identify(api, al, req, rule, object, who, why))
		return false;
	r = who->role;
	if (r == AUTH_ANONYMOUS && !(rule == ACCESS_READ && api->public_read))
		return deny(why, 401, "authentication required");
	/* A cookie rides along with any request the browser makes: a write
	 * must also prove it comes from the page that logged in. */
	if (who->via == VIA_SESSION && is_write(req)) {
		const struct http_str *t = http_header_get(req, "X-CSRF-Token");
		if (!t || !auth_csrf_check(api->session_key, who->session, strlen(who->session),
					   t->p, t->len))
			return deny(why, 403, "missing or wrong X-CSRF-Token");
	}
	switch (rule) {
	case ACCESS_READ:
	case ACCESS_PLAYS:
	case ACCESS_SELF:
		return true;
	case ACCESS_REPORTS:
		if (r == AUTH_STORE || r == AUTH_EDITOR || r == AUTH_ADMIN)
			return true;
		return deny(why, 403, "reports are for editors, admins and store keys");
	case ACCESS_EDITOR:
		if (r == AUTH_EDITOR || r == AUTH_ADMIN)
			return true;
		return deny(why, 403, "this needs an editor or an admin");
	case ACCESS_ADMIN:
		if (r == AUTH_ADMIN)
			return true;
		return deny(why, 403, "this needs an admin");
	case ACCESS_ZONE:
		if (r == AUTH_STORE)
			return zone_ok(al, object, who, why);
		if (r == AUTH_EDITOR || r == AUTH_ADMIN) {
			int64_t location;
			int rc = catalog_zone_location(al->zones, object, &location);

			if (rc == 0)
				return true;
			return deny(why, rc == -ENOENT ? 404 : 500,
				    rc == -ENOENT ? "no such zone" : "the zone could not be read");
		}
		return deny(why, 403, "this is for the zone's devices, editors and admins");
	case ACCESS_DEVICE:
		if (r == AUTH_STORE)
			return zone_ok(al, object, who, why);
		return deny(why, 403, "only a store key's device reports its status");
	default:
		return deny(why, 500, "no access rule");
	}
}

void access_deny(http_conn_t *c, const struct access_denial *why)
{
	char body[256];
	int n = snprintf(body, sizeof(body), "{\"error\":{\"status\":%d,\"message\":\"%s\"}}\n",
			 why->status, why->message);

	http_send(c, why->status, JSON_TYPE,
		  why->status == 401 ? "WWW-Authenticate: Bearer realm=\"chorus\"\r\n"
				       "Cache-Control: no-store\r\n"
				     : "Cache-Control: no-store\r\n",
		  body, (size_t)n);
}
