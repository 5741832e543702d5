/*
 * The streams in flight on this node, for the console's "playing now":
 * one entry per stream with a body, linked when its response starts and
 * unlinked when it ends. A mutex, not a per-loop list: a stream takes it
 * twice in its life, the console once a second or two.
 */
#include "api/api.h"

#include "catalog/model.h"

void api_live_init(struct api *api)
{
	pthread_mutex_init(&api->live_lock, NULL);
	api->live.prev = api->live.next = &api->live;
}

void api_live_add(struct api *api, struct api_live_stream *e)
{
	pthread_mutex_lock(&api->live_lock);
	e->next = api->live.next;
	e->prev = &api->live;
	api->live.next->prev = e;
	api->live.next = e;
	pthread_mutex_unlock(&api->live_lock);
}

void api_live_remove(struct api *api, struct api_live_stream *e)
{
	if (!e->next)
		return; /* never linked */
	pthread_mutex_lock(&api->live_lock);
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->prev = e->next = NULL;
	pthread_mutex_unlock(&api->live_lock);
}

void api_live_json(struct api *api, json_t *j)
{
	char id[17];

	json_arr_begin(j);
	pthread_mutex_lock(&api->live_lock);
	for (const struct api_live_stream *e = api->live.next; e != &api->live; e = e->next) {
		catalog_id_str(e->track_id, id);
		json_obj_begin(j);
		json_kstr(j, "track_id", id);
		json_kstr(j, "who", e->who);
		json_kstr(j, "location", e->location);
		json_kstr(j, "zone", e->zone);
		json_kint(j, "started", e->started);
		json_obj_end(j);
	}
	pthread_mutex_unlock(&api->live_lock);
	json_arr_end(j);
}
