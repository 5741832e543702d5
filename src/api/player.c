/*
 * The store player (web/player/, docs/player.md): GET /player, the page a
 * store opens once with its device key, and GET /player-sw.js, its
 * Service Worker, which keeps the hours of audio ahead in the browser's
 * Cache API and answers the page's audio from there when no node does.
 * Both are embedded at build time (Makefile: scripts/web-bundle.sh and
 * scripts/embed.sh), as the console is.
 */
#include "api/api.h"

void api_player(struct api_call *x)
{
	http_conn_set_class(x->c, API_CONSOLE);
	http_send(x->c, 200, "text/html; charset=utf-8", "Cache-Control: no-cache\r\n",
		  web_player_html, web_player_html_len);
}

void api_player_sw(struct api_call *x)
{
	/* The worker's scope may be the whole origin (the page registers it
	 * for /player); no-cache: a new build's worker replaces the old one
	 * at the page's next load. */
	http_conn_set_class(x->c, API_CONSOLE);
	http_send(x->c, 200, "text/javascript; charset=utf-8",
		  "Cache-Control: no-cache\r\nService-Worker-Allowed: /\r\n", web_player_sw_js,
		  web_player_sw_js_len);
}
