#ifndef CHORUS_API_API_H
#define CHORUS_API_API_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "api/access.h"
#include "api/memo.h"
#include "cache/cache.h"
#include "catalog/read.h"
#include "catalog/search.h"
#include "catalog/zones.h"
#include "cluster/join.h"
#include "cluster/membership.h"
#include "http/server.h"
#include "auth/limit.h"
#include "loop/pool.h"
#include "metrics/series.h"
#include "util/json.h"

/* Route classes, for the figures (http_conn_set_class): what kind of
 * request, never which track or who. API_OTHER: no route (404, 405) and
 * requests refused before routing. */
enum api_class {
	API_OTHER,
	API_CONSOLE,
	API_HEALTH,
	API_SESSION,
	API_CATALOG,
	API_SEARCH,
	API_STREAM,
	API_PLAYS,
	API_REPORTS,
	API_ADMIN,
	API_CLUSTER,
	API_INTERNAL,
	API_METRICS,
	API_UPLOADS,
	API_STORES,
	API_NCLASSES
};
/* "other", "console", ... as /metrics labels them. */
const char *api_class_name(int cls);

/* A stream in flight, for the console's "playing now" (api/live.c). */
struct api_live_stream {
	struct api_live_stream *prev, *next;
	int64_t track_id, started; /* Unix s */
	char who[CATALOG_LABEL_MAX + 8];
	char location[CATALOG_LABEL_MAX + 1], zone[CATALOG_LABEL_MAX + 1];
};

/*
 * The node's HTTP API: routing, the catalog endpoints, streams and the
 * node's own figures. One struct api per process; per-loop state (the
 * catalog reader) comes from api_loop_data_new.
 */
struct api {
	char db_path[4096];
	cache_t *cache;
	http_server_t *server;
	time_t started;
	int prefetch; /* chunks read ahead of a stream */
	char data_dir[4096];
	struct plays *plays; /* plays/plays.h */
	/* A cluster node (serve --db): */
	const char *db;                /* PostgreSQL conninfo; NULL when embedded */
	struct replica *replica;       /* catalog/replica.h */
	struct plays_shipper *shipper; /* plays/plays.h */
	pool_t *pool;                  /* blocking work: reports, peer reseals (node-owned) */
	struct membership *membership; /* cluster/membership.h; NULL when embedded */
	struct member self;            /* this node (id, address, site), embedded or not */
	/* Peer fill (a cluster node): the key peer requests are signed with. */
	uint8_t peer_key[32];
	bool peer_key_set;
	_Atomic uint64_t peer_served;       /* chunks sent to peers */
	_Atomic uint64_t peer_served_bytes; /* their sealed bytes */
	/* What /internal/join hands a new node (api/join.c), prepared by
	 * node/setup.c; NULL outside a cluster. */
	const struct join_config *join_offer;
	/* Who may do what (api/access.h): */
	bool public_read;                         /* anonymous catalog reads and streams */
	uint8_t url_key[AUTH_MAC_KEY_LEN];        /* signed stream URLs */
	uint8_t session_key[AUTH_MAC_KEY_LEN];    /* session cookies, CSRF tokens */
	struct principals *principals;            /* store/principals.h: users, keys, audit */
	char dummy_password[AUTH_PW_ENCODED_MAX]; /* verified for unknown users: same time */
	auth_limit_t *login_by_user, *login_by_addr;
	auth_limit_t *plays_quota; /* plays per principal */
	int plays_per_minute;
	/* The console (api/console.c, api/metrics.c, api/live.c): */
	series_t *series;        /* the last hour, second by second; NULL: none */
	atomic_bool drained;     /* /health fails and new streams are refused */
	atomic_bool stopping;    /* the node shuts down: event streams end */
	const char *origin_kind; /* "dir" or "s3" */
	pthread_mutex_t live_lock;
	struct api_live_stream live; /* list sentinel */
	struct api_asker *asker;     /* the peer asks' connections (api/console.c) */
	struct uploads *uploads;     /* uploads/uploads.h: tus uploads, their ingests */
	/* Catalog editing (api/edit.c): */
	origin_t *origin;    /* where deleted tracks' chunks are removed (node-owned) */
	struct store *store; /* store/store.h, opened at the first edit; workers only */
	/* The store devices this node talks to (api/devices.c). */
	struct api_devices *devices;
};

struct api_loop {
	catalog_reader_t *reader;
	catalog_principals_t *principals; /* on reader's connection */
	cache_files_t *files;             /* chunk fds shared by this loop's streams */
	struct memo memo;                 /* rendered catalog answers */
	search_t *search;                 /* on reader's connection */
	catalog_zones_t *zones;           /* on reader's connection: the stores */
	struct api_plans *plans;          /* api/queue.c: the zones' plans, made once */
	struct api_events *events;        /* api/events.c: this loop's event streams */
};

/* A cover's body at most (PUT /api/v1/albums/{id}/cover, taken as it
 * arrives); other bodies keep the server's 1 MiB. */
#define API_COVER_MAX ((size_t)10 << 20)

/* One request, as its route's handler gets it. */
struct api_call {
	struct api *api;
	struct api_loop *al;
	http_conn_t *c;
	const struct http_request *req;
	struct principal who; /* checked against the route's rule */
	int64_t id;           /* the path's {id}, when it has one */
	struct http_str name; /* the path's first {name} */
	int64_t url_expires;  /* of the stream URLs signed for who */
	struct catalog_signer signer;
};

typedef void (*api_route_fn)(struct api_call *x);

struct api_route {
	const char *path; /* "/api/v1/tracks/{id}/stream" */
	unsigned methods; /* 1 << enum http_method */
	enum access_rule rule;
	unsigned flags;
	api_route_fn handler;
};

/* The route table (api/router.c), for `chorus routes` and its tests. */
const struct api_route *api_routes(size_t *n);
/* "GET, HEAD" for a methods mask. */
void api_route_methods(unsigned methods, char *out, size_t len);

void api_handle(void *ud, http_conn_t *c, const struct http_request *req);

/* The memo key of x's answer (target, and who it was signed for: 0 or
 * -1), and a 200 answer remembered under it. */
int api_memo_key(const struct api_call *x, buf_t *key);
void api_memo_put(struct api_call *x, int status, const char *ctype, const void *body, size_t len);
void *api_loop_data_new(void *ud, int index);
void api_loop_data_free(void *ud, void *data);

/* The console page, embedded at build time from web/console/ with uPlot
 * (Makefile: scripts/web-bundle.sh, then scripts/embed.sh). */
extern const unsigned char web_index_html[];
extern const size_t web_index_html_len;

/* The store player (api/player.c): GET /player, its page, and GET
 * /player-sw.js, its Service Worker, embedded from web/player/. */
extern const unsigned char web_player_html[];
extern const size_t web_player_html_len;
extern const unsigned char web_player_sw_js[];
extern const size_t web_player_sw_js_len;
void api_player(struct api_call *x);
void api_player_sw(struct api_call *x);

/* GET/HEAD /api/v1/search (api/search.c), after the memo missed. */
void api_search(struct api_call *x);

/* GET/HEAD /api/v1/tracks/{id}/stream, for who */
void api_stream(struct api *api, http_conn_t *c, const struct http_request *req, int64_t id,
		const struct principal *who);

/* The streams in flight (api/live.c): the list's set-up, a stream's
 * entry in it and out of it (any loop), and the list as JSON. */
void api_live_init(struct api *api);
void api_live_add(struct api *api, struct api_live_stream *e);
void api_live_remove(struct api *api, struct api_live_stream *e);
void api_live_json(struct api *api, json_t *j);

/* GET /metrics (api/metrics.c), and the figures the series thread reads
 * once a second (a series_sample_fn; ud: the api). */
void api_uploads_options(struct api_call *x);
void api_uploads(struct api_call *x);
void api_upload_one(struct api_call *x);
void api_upload_status(struct api_call *x);
/* Whether req's body is an upload's, taken as it arrives (http/server.h's
 * stream_body). */
bool api_uploads_stream_body(void *ud, const struct http_request *req);

void api_metrics(struct api_call *x);
void api_series_sample(void *ud, struct series_sample *out);
/* The handler of serve --metrics-listen's server: /metrics, nothing
 * else, no credentials (an http_handler_fn; ud: the api). */
void api_metrics_listener(void *ud, http_conn_t *c, const struct http_request *req);
/* The body of /metrics into b: 200, or 500 when it did not fit. */
int api_metrics_text(struct api *api, buf_t *b);

/* The console's endpoints (api/console.c): this node's figures, series,
 * log, streams and drain; any node's through this one; the overview, the
 * streams of all, join tokens. */
void api_node(struct api_call *x);
void api_node_series(struct api_call *x);
void api_node_log(struct api_call *x);
void api_node_live(struct api_call *x);
void api_node_drain(struct api_call *x);
void api_nodes_one(struct api_call *x);
void api_node_internal(struct api_call *x);
void api_overview(struct api_call *x);
void api_live_all(struct api_call *x);
void api_cluster_token(struct api_call *x);
/* The connections the console's asks of other nodes keep open, shared
 * by the workers; freed once no job can run (after the pool stops). */
struct api_asker *api_asker_new(void);
void api_asker_free(struct api_asker *k);

/* The principals' store, opened at the first need (api/principals.c);
 * NULL while it cannot be (PostgreSQL down). Workers only: it may block. */
struct principals *api_principals_store(struct api *api);

/* Whether req carries a valid peer signature for method and path (the
 * path without its query), /internal's rule (api/internal.c). */
bool api_peer_signed(struct api *api, const struct http_request *req, const char *method,
		     const char *path);

/* GET /internal/chunks/BLOB/INDEX: a peer's request (api/internal.c). */
void api_internal(struct api *api, struct api_loop *al, http_conn_t *c,
		  const struct http_request *req);

/* POST /internal/join: a new node asks for the cluster's configuration
 * (api/join.c): api->join_offer with the address the request came from. */
void api_join(struct api *api, http_conn_t *c, const struct http_request *req);

/* GET /api/v1/cluster (api/cluster.c), and this node's figures as the
 * membership thread publishes them (a membership_stats_fn; ud: the api). */
void api_cluster(struct api *api, http_conn_t *c);
void api_cluster_stats(void *ud, struct member_stats *out);

/* POST /api/v1/plays; GET /api/v1/reports/plays (api/plays.c). */
void api_plays_post(struct api_call *x);
void api_plays_report(struct api_call *x);

/* /api/v1/session: log in (POST), who am I (GET), log out (DELETE)
 * (api/session.c). */
void api_session_login(struct api_call *x);
void api_session_get(struct api_call *x);
void api_session_logout(struct api_call *x);

/* /api/v1/users, /api/v1/keys, /api/v1/audit, for admins
 * (api/principals.c): each runs on the worker pool against the source of
 * truth. */
void api_users_list(struct api_call *x);
void api_users_add(struct api_call *x);
void api_users_remove(struct api_call *x);
void api_users_passwd(struct api_call *x);
void api_keys_list(struct api_call *x);
void api_keys_create(struct api_call *x);
void api_keys_revoke(struct api_call *x);
void api_audit_list(struct api_call *x);

/* Editing the catalog, for editors and admins (api/edit.c): PATCH of a
 * track, album or artist, DELETE of a track or album, PUT of an album's
 * cover; each runs on the worker pool against the source of truth. */
void api_track_edit(struct api_call *x);
void api_album_edit(struct api_call *x);
void api_artist_edit(struct api_call *x);
void api_track_delete(struct api_call *x);
void api_album_delete(struct api_call *x);
void api_cover_put(struct api_call *x);
/* Whether req is a cover's PUT, whose body its handler takes as it
 * arrives (http/server.h's stream_body, with the uploads'). */
bool api_cover_streams(const struct http_request *req);
/* The server's stream_body: uploads and covers. */
bool api_stream_body(void *ud, const struct http_request *req);
/* The catalog's source of truth for edits, opened at the first need;
 * NULL while it cannot be (PostgreSQL down). Workers only: it may block. */
struct store *api_catalog_store(struct api *api);
/* A blob the catalog no longer refers to (a replica_blob_fn; ud: the
 * api): its chunks leave this node's cache, on the worker pool. */
void api_blob_gone(void *ud, const char *blob, uint32_t chunks);

/* Until this node's read model shows change seq (a cluster node; 0 is
 * there at once), or 2 s. Workers only: it sleeps. */
void api_wait_applied(struct api *api, int64_t seq);
/* Whether req's Content-Type is want (parameters such as charset aside). */
bool api_content_type_is(const struct http_request *req, const char *want);

/* The stores (api/zones.c, docs/api.md "In the store"): locations, zones,
 * a zone's week and commands, playlists; writes on the worker pool. */
void api_locations(struct api_call *x);
void api_location_one(struct api_call *x);
void api_zones(struct api_call *x);
void api_zone_one(struct api_call *x);
void api_zone_schedule(struct api_call *x);
void api_zone_commands(struct api_call *x);
void api_playlists(struct api_call *x);
void api_playlist_one(struct api_call *x);
/* The name a store key's location (zone true: zone) of id_hex has now in
 * this loop's read model, into out; the id itself when it is gone. */
void api_place_name(struct api_loop *al, const char *id_hex, bool zone, char *out, size_t n);
/* GET /api/v1/zones/{id}/queue (api/queue.c), and the loop's plans. */
void api_zone_queue(struct api_call *x);
void api_plans_free(struct api_plans *ps);
/* Whether the zone's plan plays track (a zone link's stream). */
bool api_zone_plays(struct api_loop *al, int64_t zone, int64_t track);
/* GET /api/v1/zones/{id}/events (api/events.c), and the loop's streams
 * (freed after the server closed every connection). */
void api_zone_events(struct api_call *x);
void api_events_free(struct api_events *ev);
/* The devices (api/devices.c): POST /api/v1/zones/{id}/status, GET
 * /api/v1/devices; a device's event stream opened and closed (any loop);
 * the set and its writer thread, made before the server starts and freed
 * after it stopped (its last write marks the devices offline). */
void api_zone_status(struct api_call *x);
void api_devices_list(struct api_call *x);
void api_device_connect(struct api *api, const char *key, int64_t zone);
void api_device_disconnect(struct api *api, const char *key);
struct api_devices *api_devices_new(struct api *api);
void api_devices_free(struct api_devices *ds);

/* GET /api/v1/library, for editors and admins (api/library.c): the
 * catalog's figures and its latest ingest runs, from this loop's reader. */
void api_library(struct api_call *x);

#endif
