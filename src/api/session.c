/*
 * /api/v1/session: a person logs in with a name and a password and gets a
 * session cookie any node verifies (auth/auth.h), plus the CSRF token the
 * console sends back on writes.
 *
 * A login is rate-limited twice before any hashing: per user name (a
 * guesser of one account) and per client address (a guesser of many).
 * Argon2id takes tens of milliseconds of CPU, so it runs on the worker
 * pool as a slow job, which also bounds how many run at once; an unknown
 * user costs the same verification against a dummy hash, so the time of
 * an answer does not say whether the name exists.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/body.h"
#include "http/later.h"
#include "store/principals.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/xalloc.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define SESSION_LIFE_S (12 * 3600)

struct login {
	struct api *api;
	http_later_t *later;
	char user[PRINCIPAL_NAME_MAX + 2]; /* as folded for the limits */
	char addr[64];                     /* the client's address */
	struct catalog_user u;             /* id 0: no such user */
	char pw[AUTH_PW_MAX + 1];
	size_t pwlen;
	bool ok;
};

static void login_free(struct login *l)
{
	explicit_bzero(l, sizeof(*l));
	free(l);
}

static void send_429(http_conn_t *c, int wait)
{
	static const char body[] = "{\"error\":{\"status\":429,\"message\":"
				   "\"too many failed logins; retry later\"}}\n";
	char hdr[64];

	snprintf(hdr, sizeof(hdr), "Retry-After: %d\r\nCache-Control: no-store\r\n", wait);
	http_send(c, 429, JSON_TYPE, hdr, body, sizeof(body) - 1);
}

/* The session's answer: who, and the CSRF token for the console. */
static int session_body(struct api *api, const char *session, const char *name, enum auth_role role,
			int64_t expires, buf_t *b)
{
	char csrf[65];
	json_t j;

	auth_csrf_token(api->session_key, session, strlen(session), csrf);
	json_init(&j, b);
	json_obj_begin(&j);
	json_kstr(&j, "user", name);
	json_kstr(&j, "role", auth_role_name(role));
	json_kstr(&j, "csrf_token", csrf);
	/* For "Authorization: Session" on another node of the member list,
	 * should this one go away: its cookie does not go there. */
	json_kstr(&j, "token", session);
	if (expires)
		json_kint(&j, "expires_at", expires);
	json_obj_end(&j);
	explicit_bzero(csrf, sizeof(csrf));
	return json_failed(&j) || buf_append(b, "\n", 1) < 0 ? -1 : 0;
}

static void login_answer(struct login *l, http_conn_t *c)
{
	struct api *api = l->api;
	char session[AUTH_SESSION_MAX], hdr[AUTH_SESSION_MAX + 160];
	int64_t expires = wall_ms() / 1000 + SESSION_LIFE_S;
	buf_t b;

	if (!l->ok) {
		static const char body[] = "{\"error\":{\"status\":401,\"message\":"
					   "\"wrong user name or password\"}}\n";
		http_send(
			c, 401, JSON_TYPE,
			"WWW-Authenticate: Bearer realm=\"chorus\"\r\nCache-Control: no-store\r\n",
			body, sizeof(body) - 1);
		return;
	}
	/* A good login clears the failures counted against the name (not
	 * the address: one right password must not reopen a guesser's
	 * address). */
	auth_limit_reset(api->login_by_user, l->user, strlen(l->user));
	auth_session_make(api->session_key, l->u.id, l->u.generation, expires, session);
	snprintf(
		hdr, sizeof(hdr),
		"Set-Cookie: chorus_session=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict%s\r\n"
		"Cache-Control: no-store\r\n",
		session, SESSION_LIFE_S, http_conn_tls(c) ? "; Secure" : "");
	buf_init(&b, 4096);
	if (session_body(api, session, l->u.name, l->u.role, expires, &b) < 0)
		http_send_error(c, 500, "internal error");
	else
		http_send(c, 200, JSON_TYPE, hdr, b.data, b.len);
	buf_free(&b);
	explicit_bzero(session, sizeof(session));
	explicit_bzero(hdr, sizeof(hdr));
}

/* On a worker. */
static void login_work(void *arg)
{
	struct login *l = arg;
	const char *encoded = l->u.id ? l->u.password : l->api->dummy_password;
	bool ok = auth_password_verify(encoded, l->pw, l->pwlen);

	l->ok = ok && l->u.id != 0;
}

/* On the connection's loop. */
static void login_done(void *arg, int status)
{
	struct login *l = arg;
	http_conn_t *c = http_later_end(l->later);

	if (c) {
		if (status < 0)
			http_send_error(c, 503, "the node is busy; retry");
		else
			login_answer(l, c);
	}
	login_free(l);
}

void api_session_login(struct api_call *x)
{
	struct api *api = x->api;
	http_conn_t *c = x->c;
	char user[PRINCIPAL_NAME_MAX + 2], err[256];
	struct login *l = xcalloc(1, sizeof(*l));
	struct body_field f[] = {
		{.name = "user", .required = true, .out = user, .cap = sizeof(user)},
		{.name = "password",
		 .required = true,
		 .out = l->pw,
		 .cap = sizeof(l->pw),
		 .len = &l->pwlen},
	};
	int wait, wait2, rc;
	size_t i;

	l->api = api;
	if (api_body_fields(x->req->body.p, x->req->body.len, f, 2, err, sizeof(err)) < 0 ||
	    !user[0] || l->pwlen == 0) {
		http_send_error(c, 400, "a login is {\"user\": NAME, \"password\": PASSWORD}");
		login_free(l);
		return;
	}
	for (i = 0; user[i]; i++)
		l->user[i] =
			user[i] >= 'A' && user[i] <= 'Z' ? (char)(user[i] - 'A' + 'a') : user[i];
	l->user[i] = '\0';
	snprintf(l->addr, sizeof(l->addr), "%s", http_conn_peer(c));

	/* Both limits, always: Retry-After then covers the one that waits
	 * longer, so a client that honours it is let in. */
	wait = auth_limit_take(api->login_by_addr, l->addr, strlen(l->addr), mono_ms());
	wait2 = auth_limit_take(api->login_by_user, l->user, strlen(l->user), mono_ms());
	if (wait2 > wait)
		wait = wait2;
	if (wait > 0) {
		send_429(c, wait);
		login_free(l);
		return;
	}
	rc = catalog_user_find(x->al->principals, l->user, &l->u);
	if (rc == -EIO) {
		http_send_error(c, 500, "credentials could not be checked");
		login_free(l);
		return;
	}
	if (rc < 0)
		memset(&l->u, 0, sizeof(l->u));
	l->later = http_later(c);
	rc = pool_submit(api->pool, http_conn_loop(c), POOL_SLOW, login_work, login_done, l);
	if (rc < 0) {
		http_later_end(l->later);
		http_send_error(c, 503, "the node is busy; retry");
		login_free(l);
	}
}

void api_session_get(struct api_call *x)
{
	const struct principal *w = &x->who;
	buf_t b;
	json_t j;

	buf_init(&b, 4096);
	if (w->via == VIA_SESSION || w->via == VIA_SESSION_HEADER) {
		struct catalog_user u;
		const char *name = catalog_user_find_id(x->al->principals, w->user_id, &u) == 0
					   ? u.name
					   : w->actor;
		explicit_bzero(u.password, sizeof(u.password));
		if (session_body(x->api, w->session, name, w->role, 0, &b) < 0) {
			http_send_error(x->c, 500, "internal error");
			buf_free(&b);
			return;
		}
	} else {
		json_init(&j, &b);
		json_obj_begin(&j);
		json_kstr(&j, "key", w->id + 1);
		json_kstr(&j, "role", auth_role_name(w->role));
		if (w->location[0])
			json_kstr(&j, "location", w->location);
		if (w->zone[0])
			json_kstr(&j, "zone", w->zone);
		json_obj_end(&j);
		if (json_failed(&j) || buf_append(&b, "\n", 1) < 0) {
			http_send_error(x->c, 500, "internal error");
			buf_free(&b);
			return;
		}
	}
	http_send(x->c, 200, JSON_TYPE, "Cache-Control: no-store\r\n", b.data, b.len);
	buf_free(&b);
}

/*
 * Logging out clears the cookie in this browser. The session itself is
 * stateless: ending every session of a user everywhere is a password
 * change (the generation moves), as `chorus user passwd` does.
 */
void api_session_logout(struct api_call *x)
{
	static const char body[] = "{\"logged_out\":true}\n";

	http_send(x->c, 200, JSON_TYPE,
		  http_conn_tls(x->c) ? "Set-Cookie: chorus_session=; Path=/; Max-Age=0; HttpOnly;"
					" SameSite=Strict; Secure\r\nCache-Control: no-store\r\n"
				      : "Set-Cookie: chorus_session=; Path=/; Max-Age=0; HttpOnly;"
					" SameSite=Strict\r\nCache-Control: no-store\r\n",
		  body, sizeof(body) - 1);
}
