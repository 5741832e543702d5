#ifndef CHORUS_API_ACCESS_H
#define CHORUS_API_ACCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth.h"
#include "catalog/principals.h"
#include "http/server.h"

/*
 * Who is asking, and whether they may. Every route of the API names one
 * rule (api/router.c); a request is identified only when its route needs
 * it, from the node's read model alone (catalog/principals.h), so a node
 * authenticates with PostgreSQL down.
 *
 * Credentials, in order: "Authorization: Bearer chorus_<id>_<secret>" (an
 * API key) or "Authorization: Session S" (a console's session, where its
 * cookie does not go), the chorus_session cookie (a user logged in at POST
 * /api/v1/session), and, on a stream only, ?exp=T&sig=S (a signed URL).
 * A credential that is present but not good is refused (401) rather than
 * read as anonymous: a client with a broken key must be told.
 */
struct api;
struct api_loop;

enum access_rule {
	ACCESS_OPEN,    /* anyone: /health, the console's page, logging in */
	ACCESS_READ,    /* the catalog and streams: any principal; anonymous under --public-read */
	ACCESS_PLAYS,   /* posting plays: any principal (a store key for its own location) */
	ACCESS_REPORTS, /* editors and admins; a store key for its own location */
	ACCESS_EDITOR,  /* editors and admins: the library's figures and ingest runs */
	ACCESS_SELF,    /* any principal, about itself: who am I, log out */
	ACCESS_ADMIN,   /* users, keys, the audit trail, node and cluster state */
	ACCESS_PEER,    /* /internal: the handler checks the peer's signature or join token */
	ACCESS_ZONE, /* a zone's queue, events, status: editors, admins, its location's store keys
		      */
};

/* "open", "read", "plays", "reports", "editor", "self", "admin", "peer",
 * "zone". */
const char *access_rule_name(enum access_rule r);

/* VIA_SESSION: the cookie (writes need the CSRF token); VIA_SESSION_HEADER:
 * the same session sent as "Authorization: Session S" by a console that
 * moved to another node (no cookie goes there, and a header is not sent
 * by the browser on its own, so no CSRF token is needed). */
enum access_via { VIA_NONE, VIA_KEY, VIA_SESSION, VIA_SESSION_HEADER, VIA_URL };

#define ACCESS_ID_MAX (2 + AUTH_KEY_ID_LEN + 16)

struct principal {
	enum auth_role role; /* AUTH_ANONYMOUS when nobody */
	enum access_via via;
	/* "k<key id>" or "u<user id, 16 hex>": what signed URLs and play event
	 * ids are bound to; "" for anonymous. */
	char id[ACCESS_ID_MAX];
	/* For the audit: a user's name, or "key:<id>". */
	char actor[CATALOG_LABEL_MAX + 8];
	char location[CATALOG_LABEL_MAX + 1]; /* a store key's; "" otherwise */
	char zone[CATALOG_LABEL_MAX + 1];
	int64_t user_id;
	char session[AUTH_SESSION_MAX]; /* the cookie, for its CSRF token */
};

/* The answer to a request that may not go on. */
struct access_denial {
	int status; /* 401, 403, 410 or 500 */
	const char *message;
};

/*
 * Identifies req's principal (into *who) and checks it against rule.
 * object: the path's id, which rule "read" takes as a stream's track (a
 * signed URL is good for that track only) and rule "zone" as the zone
 * (404 when it does not exist); 0 for none. True when the request may go
 * on; false with *why filled otherwise.
 */
bool access_check(struct api *api, struct api_loop *al, const struct http_request *req,
		  enum access_rule rule, int64_t object, struct principal *who,
		  struct access_denial *why);

/* Sends why: a JSON error; a 401 names the scheme (WWW-Authenticate). */
void access_deny(http_conn_t *c, const struct access_denial *why);

/* The chorus_session cookie's value in req, or NULL (len set). */
const char *access_cookie(const struct http_request *req, size_t *len);

#endif
