/*
 * The queue of a zone's week (see schedule.h). A local day's plan is made
 * from its first daypart on, in order: each daypart picks tracks from its
 * pool while its time lasts (its last track may run past its end: the
 * next daypart starts when it ends), announcements due by a boundary
 * play there, and whatever runs past local midnight is cut. A window is
 * a slice of the day plans it touches, so every node and every request
 * see the same items.
 *
 * Picks walk a deterministic sequence: the pool's tracks shuffled per
 * round (a lazy Fisher-Yates, so a day that plays 300 of 10,000 tracks
 * draws 300 numbers, not 10,000) or in their order. A candidate played
 * (or whose artist played) within the separation is passed over for the
 * next that is not, within a bounded lookahead; when none is, the one
 * heard longest ago plays, marked relaxed.
 */
#include "schedule/schedule.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schedule/sched_int.h"
#include "util/xalloc.h"

#define DAY_MS 86400000LL
#define MS_MAX 253402300800000LL /* 10000-01-01T00:00:00Z */
#define WINDOW_MAX (8 * DAY_MS)
/* How far a pick looks ahead for one that keeps the separation: enough
 * for real playlists, and a bound on the cost of one that cannot. */
#define LOOKAHEAD 128
/* The reference day of schedule_check: a Monday (2001-01-01). */
#define REF_DAY 11323

/* ---- The shuffle: splitmix64 ---- */

static uint64_t sm_mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t sm_next(uint64_t *s)
{
	uint64_t z = sm_mix(*s);

	*s += 0x9e3779b97f4a7c15ULL;
	return z;
}

/* The state of a round's stream: splitmix64's mix chained over
 * (zone, local date, playlist, round). */
static uint64_t seed_of(int64_t zone, int32_t date, int64_t playlist, int64_t round)
{
	uint64_t h = sm_mix((uint64_t)zone);

	h = sm_mix(h ^ (uint64_t)(int64_t)date);
	h = sm_mix(h ^ (uint64_t)playlist);
	return sm_mix(h ^ (uint64_t)round);
}

/* A number in [0, n): Lemire's multiply-shift (its bias, under 2^-40 for
 * any pool, does not matter; that it is the same everywhere does). */
static uint32_t below(uint64_t *s, uint32_t n)
{
	return (uint32_t)(((unsigned __int128)sm_next(s) * n) >> 64);
}

/* ---- When a track or an artist last stopped playing ---- */

struct slot {
	int64_t key, val;
	uint32_t gen;
};

/* Open addressing; a slot of another generation is free, so a new day
 * empties the map without touching it. */
struct map {
	struct slot *s;
	size_t cap, n;
	uint32_t gen;
};

static void map_reset(struct map *m)
{
	if (++m->gen == 0) {
		memset(m->s, 0, m->cap * sizeof(*m->s));
		m->gen = 1;
	}
	m->n = 0;
}

static size_t map_hash(int64_t key, size_t cap)
{
	return (size_t)(sm_mix((uint64_t)key) & (cap - 1));
}

static bool map_get(const struct map *m, int64_t key, int64_t *val)
{
	for (size_t h = map_hash(key, m->cap);; h = (h + 1) & (m->cap - 1)) {
		if (m->s[h].gen != m->gen)
			return false;
		if (m->s[h].key == key) {
			*val = m->s[h].val;
			return true;
		}
	}
}

static void map_put(struct map *m, int64_t key, int64_t val);

static void map_grow(struct map *m)
{
	struct slot *old = m->s;
	size_t ocap = m->cap;
	uint32_t gen = m->gen;

	m->cap *= 2;
	m->s = xcalloc(m->cap, sizeof(*m->s));
	m->gen = 1;
	m->n = 0;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].gen == gen)
			map_put(m, old[i].key, old[i].val);
	free(old);
}

static void map_put(struct map *m, int64_t key, int64_t val)
{
	size_t h;

	if ((m->n + 1) * 2 > m->cap)
		map_grow(m);
	for (h = map_hash(key, m->cap); m->s[h].gen == m->gen; h = (h + 1) & (m->cap - 1))
		if (m->s[h].key == key) {
			m->s[h].val = val;
			return;
		}
	m->s[h] = (struct slot){key, val, m->gen};
	m->n++;
}

/* ---- The planner ---- */

/* A pool's place in the day's sequence. */
struct pst {
	const struct sched_pool *pool;
	int32_t *base; /* the playable tracks' indices, in the pool's order */
	int32_t *perm; /* this round's order: [0, mat) drawn, [0, pos) played */
	int n;
	int pos, mat;
	int64_t round;
	uint64_t rng;
	uint32_t day; /* the planner's day this state belongs to */
};

struct ann_st {
	const struct sched_announcement *a;
	int k;        /* the index (of every's steps, or of at) of next */
	int64_t next; /* UTC ms it is due, INT64_MAX when no more today */
	int played;   /* spots played today: the rotation */
};

struct day {
	int32_t date;
	int64_t start, end; /* UTC ms of its local midnight and the next */
	int64_t local0;     /* local seconds of its midnight */
	int64_t cursor;     /* where the last part's play ended; INT64_MIN before any */
	int64_t stop;       /* plan nothing that starts at or after this */
	size_t items;
	int relaxed;
	int nann;
	struct ann_st ann[SCHED_ANNOUNCE_MAX];
};

struct planner {
	const struct sched_input *in;
	int64_t sep_ms;
	const struct sched_pool **pools; /* by playlist; the first of equal ones */
	struct pst *pst;                 /* parallel to pools */
	int npools;
	struct sched_track *spots; /* by id */
	int nspots;
	int *week[7]; /* weekly parts by weekday, by from */
	int nweek[7];
	struct map tracks, artists;
	uint32_t day;
	/* What a day plan emits: kept when it overlaps [from, to). */
	struct sched_item *out;
	size_t n, cap;
	int64_t from, to;
	bool keep;
};

static int cmp_pool(const void *a, const void *b)
{
	const struct sched_pool *x = *(const struct sched_pool *const *)a;
	const struct sched_pool *y = *(const struct sched_pool *const *)b;

	if (x->playlist != y->playlist)
		return x->playlist < y->playlist ? -1 : 1;
	return (x > y) - (x < y); /* the first given wins */
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int cmp_track(const void *a, const void *b)
{
	const struct sched_track *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

static struct pst *pool_of(struct planner *P, int64_t playlist)
{
	int lo = 0, hi = P->npools;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (P->pools[mid]->playlist < playlist)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == P->npools || P->pools[lo]->playlist != playlist)
		return NULL;
	struct pst *s = &P->pst[lo];
	if (!s->pool) {
		const struct sched_pool *pool = P->pools[lo];
		s->pool = pool;
		s->base = xmalloc(((size_t)(pool->n > 0 ? pool->n : 0) + 1) * sizeof(*s->base));
		s->perm = xmalloc(((size_t)(pool->n > 0 ? pool->n : 0) + 1) * sizeof(*s->perm));
		for (int i = 0; i < pool->n; i++)
			if (pool->t[i].duration_ms > 0)
				s->base[s->n++] = i;
		s->day = P->day - 1;
	}
	return s;
}

static const struct sched_track *spot_of(const struct planner *P, int64_t id)
{
	int lo = 0, hi = P->nspots;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (P->spots[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < P->nspots && P->spots[lo].id == id ? &P->spots[lo] : NULL;
}

static void planner_init(struct planner *P, const struct sched_input *in)
{
	const struct schedule *s = in->s;
	int np = 0;

	memset(P, 0, sizeof(*P));
	P->in = in;
	P->sep_ms = (int64_t)s->separation * 60000;
	P->pools = xmalloc(((size_t)in->npools + 1) * sizeof(*P->pools));
	for (int i = 0; i < in->npools; i++)
		P->pools[i] = &in->pools[i];
	qsort(P->pools, (size_t)in->npools, sizeof(*P->pools), cmp_pool);
	for (int i = 0; i < in->npools; i++)
		if (np == 0 || P->pools[np - 1]->playlist != P->pools[i]->playlist)
			P->pools[np++] = P->pools[i];
	P->npools = np;
	P->pst = xcalloc((size_t)np + 1, sizeof(*P->pst));
	P->spots = xmalloc(((size_t)in->nspots + 1) * sizeof(*P->spots));
	if (in->nspots > 0)
		memcpy(P->spots, in->spots, (size_t)in->nspots * sizeof(*P->spots));
	qsort(P->spots, (size_t)in->nspots, sizeof(*P->spots), cmp_track);
	P->nspots = in->nspots;
	for (int w = 0; w < 7; w++) {
		P->week[w] = xmalloc(((size_t)s->nparts + 1) * sizeof(int));
		for (int i = 0; i < s->nparts; i++) {
			int j;
			if (!(s->parts[i].days & (1u << w)))
				continue;
			/* Insertion by from: a week has at most 168 parts. */
			for (j = P->nweek[w];
			     j > 0 && s->parts[P->week[w][j - 1]].from > s->parts[i].from; j--)
				P->week[w][j] = P->week[w][j - 1];
			P->week[w][j] = i;
			P->nweek[w]++;
		}
	}
	P->tracks.cap = P->artists.cap = 256;
	P->tracks.s = xcalloc(P->tracks.cap, sizeof(struct slot));
	P->artists.s = xcalloc(P->artists.cap, sizeof(struct slot));
	P->tracks.gen = P->artists.gen = 1;
}

static void planner_free(struct planner *P)
{
	for (int i = 0; i < P->npools; i++) {
		free(P->pst[i].base);
		free(P->pst[i].perm);
	}
	free(P->pst);
	free(P->pools);
	free(P->spots);
	for (int w = 0; w < 7; w++)
		free(P->week[w]);
	free(P->tracks.s);
	free(P->artists.s);
	free(P->out);
}

static void emit(struct planner *P, struct day *d, const struct sched_item *it)
{
	d->items++;
	d->relaxed += it->relaxed;
	if (!P->keep || it->start_ms >= P->to || it->start_ms + it->duration_ms <= P->from)
		return;
	if (P->n == P->cap) {
		P->cap = P->cap ? P->cap * 2 : 64;
		P->out = xrealloc(P->out, P->cap * sizeof(*P->out));
	}
	P->out[P->n++] = *it;
}

/* A play from t of dur, cut at the day's end. */
static int32_t cut(const struct day *d, int64_t t, int32_t dur)
{
	return t + dur > d->end ? (int32_t)(d->end - t) : dur;
}

/* ---- Announcements ---- */

/* Finds the first due time from index k on that exists today (a wall
 * time skipped by a change forward is not due at all). */
static void ann_seek(const struct planner *P, const struct day *d, struct ann_st *st, int k)
{
	const struct sched_announcement *a = st->a;
	const tz_t *tz = P->in->tz;

	for (;; k++) {
		int m;
		if (a->every > 0) {
			m = a->from + k * a->every;
			if (m >= a->to)
				break;
		} else {
			if (k >= a->nat)
				break;
			m = a->at[k];
		}
		int64_t l = d->local0 + (int64_t)m * 60;
		int64_t u = tz_local_to_utc(tz, l);
		if (u + tz_offset(tz, u) == l) {
			st->k = k;
			st->next = u * 1000;
			return;
		}
	}
	st->k = k;
	st->next = INT64_MAX;
}

/* Passes over every due time at or before lim. */
static void ann_skip(const struct planner *P, const struct day *d, struct ann_st *st, int64_t lim)
{
	while (st->next <= lim)
		ann_seek(P, d, st, st->k + 1);
}

/* The spots due by the boundary t, each announcement once, in the order
 * they fell due; where the next track starts. */
static int64_t spots(struct planner *P, struct day *d, int64_t t)
{
	int due[SCHED_ANNOUNCE_MAX], n = 0;
	int64_t t0 = t;

	for (int i = 0; i < d->nann; i++) {
		int j;
		if (d->ann[i].next > t0)
			continue;
		for (j = n; j > 0 && d->ann[due[j - 1]].next > d->ann[i].next; j--)
			due[j] = due[j - 1];
		due[j] = i;
		n++;
	}
	for (int k = 0; k < n; k++) {
		struct ann_st *st = &d->ann[due[k]];
		const struct sched_track *sp = NULL;
		for (int tries = 0; tries < st->a->ntracks && !sp; tries++) {
			sp = spot_of(P, st->a->tracks[(st->played + tries) % st->a->ntracks]);
			if (sp)
				st->played += tries + 1;
		}
		ann_skip(P, d, st, t0);
		if (!sp || sp->duration_ms <= 0 || t >= d->end || d->items >= SCHED_DAY_ITEMS_MAX)
			continue;
		struct sched_item it = {.track = sp->id,
					.start_ms = t,
					.duration_ms = cut(d, t, sp->duration_ms),
					.announcement = true};
		emit(P, d, &it);
		t += it.duration_ms;
	}
	return t;
}

/* ---- Picks ---- */

static void new_round(struct planner *P, const struct day *d, struct pst *s)
{
	s->round++;
	s->rng = seed_of(P->in->zone, d->date, s->pool->playlist, s->round);
	memcpy(s->perm, s->base, (size_t)s->n * sizeof(*s->perm));
	s->pos = 0;
	s->mat = s->pool->shuffle ? 0 : s->n;
}

static int32_t at_pos(struct pst *s, int q)
{
	while (s->mat <= q) {
		int j = s->mat + (int)below(&s->rng, (uint32_t)(s->n - s->mat));
		int32_t x = s->perm[s->mat];
		s->perm[s->mat] = s->perm[j];
		s->perm[j] = x;
		s->mat++;
	}
	return s->perm[q];
}

/* When tr could last be heard: the later of its own and its artist's
 * last end (artist 0 is unknown, never separated); INT64_MIN if never. */
static int64_t heard(const struct planner *P, const struct sched_track *tr, int64_t *own)
{
	int64_t a = INT64_MIN, b = INT64_MIN;

	map_get(&P->tracks, tr->id, &a);
	*own = a;
	if (tr->artist)
		map_get(&P->artists, tr->artist, &b);
	return a > b ? a : b;
}

static const struct sched_track *pick(struct planner *P, const struct day *d, struct pst *s,
				      int64_t t, bool *relaxed)
{
	const struct sched_track *T = s->pool->t;
	int best = -1;
	int64_t best_heard = INT64_MAX, best_own = INT64_MAX;

	*relaxed = false;
	if (s->pos >= s->n)
		new_round(P, d, s);
	if (P->sep_ms == 0)
		return &T[at_pos(s, s->pos++)];
	for (int pass = 0; pass < 2; pass++) {
		int q;
		best = -1;
		best_heard = best_own = INT64_MAX;
		for (q = s->pos; q < s->n && q - s->pos < LOOKAHEAD; q++) {
			const struct sched_track *tr = &T[at_pos(s, q)];
			int64_t own = INT64_MIN, h = heard(P, tr, &own);
			if (h == INT64_MIN || t - h >= P->sep_ms) {
				best = q;
				goto take;
			}
			/* Heard longest ago, and of those the track itself. */
			if (h < best_heard || (h == best_heard && own < best_own)) {
				best_heard = h;
				best_own = own;
				best = q;
			}
		}
		/* Lookahead spent within the round, or a fresh round that has
		 * none either: no pick keeps the separation. */
		if (q < s->n || pass == 1 || s->pos == 0)
			break;
		/* What is left of this round cannot: the next one starts early
		 * (its shuffle places the rest again). */
		new_round(P, d, s);
	}
	*relaxed = true;
take : {
	int32_t x = s->perm[best];
	s->perm[best] = s->perm[s->pos];
	s->perm[s->pos] = x;
	s->pos++;
	return &T[x];
}
}

/* Plays a part of the day over UTC ms [ps, pe) from its pool. */
static void play_part(struct planner *P, struct day *d, const struct sched_part *part, int64_t ps,
		      int64_t pe)
{
	int64_t t = d->cursor > ps ? d->cursor : ps;
	struct pst *s;

	if (pe > d->end)
		pe = d->end;
	if (t >= pe)
		return;
	s = pool_of(P, part->playlist);
	if (!s || s->n == 0)
		return; /* silent */
	if (s->day != P->day) {
		s->day = P->day;
		s->round = -1;
		s->pos = s->n; /* the first pick starts round 0 */
	}
	if (d->cursor < ps) {
		/* After silence: what fell due while nothing played is dropped. */
		for (int i = 0; i < d->nann; i++)
			ann_skip(P, d, &d->ann[i], t - 1);
	}
	while (t < pe && t < d->stop && d->items < SCHED_DAY_ITEMS_MAX) {
		bool relaxed;
		t = spots(P, d, t);
		if (t >= pe || t >= d->stop || d->items >= SCHED_DAY_ITEMS_MAX)
			break;
		const struct sched_track *tr = pick(P, d, s, t, &relaxed);
		struct sched_item it = {.track = tr->id,
					.playlist = part->playlist,
					.start_ms = t,
					.duration_ms = cut(d, t, tr->duration_ms),
					.relaxed = relaxed};
		emit(P, d, &it);
		t += it.duration_ms;
		map_put(&P->tracks, tr->id, t);
		if (tr->artist)
			map_put(&P->artists, tr->artist, t);
	}
	d->cursor = t;
}

static void day_begin(struct planner *P, struct day *d, int32_t date, int64_t stop)
{
	const tz_t *tz = P->in->tz;

	memset(d, 0, sizeof(*d));
	d->date = date;
	d->local0 = (int64_t)date * 86400;
	d->start = tz_local_to_utc(tz, d->local0) * 1000;
	d->end = tz_local_to_utc(tz, d->local0 + 86400) * 1000;
	d->cursor = INT64_MIN;
	d->stop = stop;
	P->day++;
	map_reset(&P->tracks);
	map_reset(&P->artists);
}

static void plan_day(struct planner *P, int32_t date, int64_t stop)
{
	const struct schedule *s = P->in->s;
	const struct sched_override *ov = NULL;
	const struct sched_part *parts = s->parts;
	unsigned wd = sched__weekday(date);
	int order[SCHED_PARTS_MAX], n = 0;
	struct day d;

	day_begin(P, &d, date, stop);
	for (int i = 0; i < s->noverrides && !ov; i++)
		if (date >= s->overrides[i].first && date <= s->overrides[i].last)
			ov = &s->overrides[i];
	if (ov) {
		if (ov->closed)
			return;
		parts = ov->parts;
		for (int i = 0; i < ov->nparts && n < SCHED_PARTS_MAX; i++) {
			int j;
			for (j = n; j > 0 && parts[order[j - 1]].from > parts[i].from; j--)
				order[j] = order[j - 1];
			order[j] = i;
			n++;
		}
	} else {
		int w = __builtin_ctz(wd);
		n = P->nweek[w] < SCHED_PARTS_MAX ? P->nweek[w] : SCHED_PARTS_MAX;
		memcpy(order, P->week[w], (size_t)n * sizeof(int));
	}
	for (int i = 0; i < s->nann && d.nann < SCHED_ANNOUNCE_MAX; i++) {
		if (!(s->ann[i].days & wd) || s->ann[i].ntracks <= 0)
			continue;
		struct ann_st *st = &d.ann[d.nann++];
		st->a = &s->ann[i];
		ann_seek(P, &d, st, 0);
	}
	for (int i = 0; i < n && d.cursor < stop; i++) {
		const struct sched_part *p = &parts[order[i]];
		int64_t ps = tz_local_to_utc(P->in->tz, d.local0 + (int64_t)p->from * 60) * 1000;
		int64_t pe = tz_local_to_utc(P->in->tz, d.local0 + (int64_t)p->to * 60) * 1000;
		play_part(P, &d, p, ps, pe);
	}
}

int schedule_queue(const struct sched_input *in, int64_t from_ms, int64_t to_ms,
		   struct sched_item **out, size_t *n)
{
	struct planner P;
	struct day d;
	int32_t day;

	*out = NULL;
	*n = 0;
	if (from_ms < 0 || to_ms > MS_MAX || from_ms > to_ms)
		return -EINVAL;
	if (to_ms - from_ms > WINDOW_MAX)
		return -E2BIG;
	if (from_ms == to_ms || !in->s)
		return 0;
	planner_init(&P, in);
	P.keep = true;
	P.from = from_ms;
	P.to = to_ms;
	/* The local days whose span [start, end) meets the window: the one
	 * of from_ms, corrected where a change crosses a midnight. */
	day = tz_local_day(in->tz, from_ms / 1000);
	for (;;) {
		day_begin(&P, &d, day, 0);
		if (d.start > from_ms)
			day--;
		else if (d.end <= from_ms)
			day++;
		else
			break;
	}
	for (;; day++) {
		day_begin(&P, &d, day, 0);
		if (d.start >= to_ms)
			break;
		plan_day(&P, day, to_ms);
	}
	*out = P.out;
	*n = P.n;
	P.out = NULL;
	planner_free(&P);
	return 0;
}

/* ---- schedule_check ---- */

static int check_part(struct planner *P, const struct sched_part *p, const char *what, char *err,
		      size_t errlen)
{
	char f[6], t[6], id[17];
	struct pst *s = pool_of(P, p->playlist);
	struct day d;

	sched__time_str(p->from, f);
	sched__time_str(p->to, t);
	sched__id_str(p->playlist, id);
	if (!s) {
		snprintf(err, errlen, "%s %s-%s): no playlist %s", what, f, t, id);
		return -EINVAL;
	}
	if (s->n == 0) {
		snprintf(err, errlen, "%s %s-%s): playlist %s has no playable tracks", what, f, t,
			 id);
		return -EINVAL;
	}
	/* The part alone on a day of plain UTC: how well its pool fills it,
	 * whatever its neighbours and the zone's changes. */
	day_begin(P, &d, REF_DAY, INT64_MAX);
	d.start = 0;
	d.end = DAY_MS;
	play_part(P, &d, p, (int64_t)p->from * 60000, (int64_t)p->to * 60000);
	if (d.relaxed == 0)
		return 0;

	int64_t ms = 0;
	int nartists = 0, distinct = 0;
	int64_t *artists = xmalloc(((size_t)s->n + 1) * sizeof(*artists));
	for (int i = 0; i < s->n; i++) {
		const struct sched_track *tr = &s->pool->t[s->base[i]];
		ms += tr->duration_ms;
		if (tr->artist)
			artists[nartists++] = tr->artist;
	}
	qsort(artists, (size_t)nartists, sizeof(*artists), cmp_i64);
	for (int i = 0; i < nartists; i++)
		distinct += i == 0 || artists[i] != artists[i - 1];
	free(artists);
	long long min = (ms + 30000) / 60000;
	snprintf(err, errlen,
		 "%s %s-%s): playlist %s has %d track%s by %d artist%s, %lld minute%s: not "
		 "enough for a %d-minute separation",
		 what, f, t, id, s->n, s->n == 1 ? "" : "s", distinct, distinct == 1 ? "" : "s",
		 min, min == 1 ? "" : "s", P->in->s->separation);
	return -EINVAL;
}

/* A part's key among those checked: its length and playlist, all its
 * reference plan depends on. */
struct ckey {
	int len;
	int64_t playlist;
};

int schedule_check(const struct sched_input *in, char *err, size_t errlen)
{
	const struct schedule *s = in->s;
	struct planner P;
	struct ckey *seen;
	int nseen = 0, total = s->nparts, rc = 0;

	if (err && errlen)
		err[0] = 0;
	for (int o = 0; o < s->noverrides; o++)
		total += s->overrides[o].nparts;
	seen = xmalloc(((size_t)total + 1) * sizeof(*seen));
	planner_init(&P, in);
	for (int o = -1; o < s->noverrides && rc == 0; o++) {
		const struct sched_part *parts = o < 0 ? s->parts : s->overrides[o].parts;
		int np = o < 0 ? s->nparts : s->overrides[o].nparts;
		if (o >= 0 && s->overrides[o].closed)
			continue;
		for (int i = 0; i < np && rc == 0; i++) {
			const struct sched_part *p = &parts[i];
			struct ckey k = {p->to - p->from, p->playlist};
			char what[96], days[32];
			int j;
			for (j = 0; j < nseen; j++)
				if (seen[j].len == k.len && seen[j].playlist == k.playlist)
					break;
			if (j < nseen)
				continue;
			seen[nseen++] = k;
			if (o < 0) {
				sched__days_str(p->days, days, sizeof(days));
				snprintf(what, sizeof(what), "dayparts[%d] (%s", i, days);
			} else {
				sched__date_str(s->overrides[o].first, days);
				snprintf(what, sizeof(what), "overrides[%d].dayparts[%d] (%s", o, i,
					 days);
			}
			rc = check_part(&P, p, what, err ? err : (char[1]){0}, err ? errlen : 1);
		}
	}
	free(seen);
	planner_free(&P);
	return rc;
}
