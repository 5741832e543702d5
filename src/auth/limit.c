#include "auth/limit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "util/hash.h"
#include "util/xalloc.h"

#define WAYS 8 /* a name lives in one set of WAYS slots */

struct bucket {
	uint64_t hash; /* 0: free */
	double tokens;
	int64_t at_ms;
};

struct auth_limit {
	pthread_mutex_t lock;
	struct bucket *b;
	size_t sets;
	double burst, per_ms;
};

auth_limit_t *auth_limit_new(size_t slots, double burst, double per_s)
{
	auth_limit_t *l = xcalloc(1, sizeof(*l));

	l->sets = slots / WAYS ? slots / WAYS : 1;
	l->b = xcalloc(l->sets * WAYS, sizeof(*l->b));
	l->burst = burst;
	l->per_ms = per_s / 1000.0;
	pthread_mutex_init(&l->lock, NULL);
	return l;
}

void auth_limit_free(auth_limit_t *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->lock);
	free(l->b);
	free(l);
}

static double level(const auth_limit_t *l, const struct bucket *b, int64_t now_ms)
{
	double t = b->tokens + (double)(now_ms - b->at_ms) * l->per_ms;

	return t > l->burst ? l->burst : t;
}

/* The bucket of h, made (or taken from the fullest of its set) when new.
 * Lock held. */
static struct bucket *find(auth_limit_t *l, uint64_t h, int64_t now_ms)
{
	struct bucket *set = &l->b[(h >> 3) % l->sets], *spare = NULL;
	double spare_level = -1;

	for (int i = 0; i < WAYS; i++) {
		if (set[i].hash == h)
			return &set[i];
		double lv = set[i].hash ? level(l, &set[i], now_ms) : l->burst + 1;
		if (lv > spare_level) {
			spare = &set[i];
			spare_level = lv;
		}
	}
	spare->hash = h;
	spare->tokens = l->burst;
	spare->at_ms = now_ms;
	return spare;
}

static uint64_t name_hash(const char *name, size_t len)
{
	uint64_t h = hash_fnv1a(HASH_FNV1A_INIT, name, len);

	return h ? h : 1;
}

int auth_limit_take(auth_limit_t *l, const char *name, size_t len, int64_t now_ms)
{
	return auth_limit_take_n(l, name, len, 1, now_ms);
}

int auth_limit_take_n(auth_limit_t *l, const char *name, size_t len, double n, int64_t now_ms)
{
	struct bucket *b;
	double t;
	int wait = 0;

	pthread_mutex_lock(&l->lock);
	b = find(l, name_hash(name, len), now_ms);
	t = level(l, b, now_ms);
	if (t >= n) {
		t -= n;
	} else {
		double s = l->per_ms > 0 ? (n - t) / l->per_ms / 1000.0 : 3600;
		wait = s < 1 ? 1 : (int)ceil(s);
	}
	b->tokens = t;
	b->at_ms = now_ms;
	pthread_mutex_unlock(&l->lock);
	return wait;
}

void auth_limit_reset(auth_limit_t *l, const char *name, size_t len)
{
	uint64_t h = name_hash(name, len);
	struct bucket *set;

	pthread_mutex_lock(&l->lock);
	set = &l->b[(h >> 3) % l->sets];
	for (int i = 0; i < WAYS; i++)
		if (set[i].hash == h)
			set[i].hash = 0;
	pthread_mutex_unlock(&l->lock);
}
