/*
 * The chunk cache against a real directory origin holding really sealed
 * chunks. The origin is wrapped in a gate that counts gets and can hold
 * them, so tests can make sure requests overlap a fill in flight. The
 * open-chunk table's tests count the process's open fds in /proc/self/fd.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "crypto/seal.h"
#include "loop/pool.h"
#include "origin/origin.h"
#include "util/text.h"
#include "unit.h"

#define WAIT_SECONDS 10

/* An origin that forwards to a dir origin, counts gets, and holds them
 * while closed. */
struct gate {
	origin_t base;
	origin_t *inner;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool closed;
	int gets, held;
};

static struct gate *as_gate(origin_t *o)
{
	return (struct gate *)o;
}

static int gate_get(origin_t *o, const char *key, char **data, size_t *len)
{
	struct gate *g = as_gate(o);

	pthread_mutex_lock(&g->lock);
	g->gets++;
	g->held++;
	pthread_cond_broadcast(&g->cond);
	while (g->closed)
		pthread_cond_wait(&g->cond, &g->lock);
	g->held--;
	pthread_mutex_unlock(&g->lock);
	return origin_get(g->inner, key, data, len);
}

static int gate_put(origin_t *o, const char *key, const void *data, size_t len)
{
	return origin_put(as_gate(o)->inner, key, data, len);
}

static int gate_size(origin_t *o, const char *key, uint64_t *len)
{
	return origin_size(as_gate(o)->inner, key, len);
}

static int gate_remove(origin_t *o, const char *key)
{
	return origin_remove(as_gate(o)->inner, key);
}

static void gate_close(origin_t *o)
{
}

static const struct origin_ops gate_ops = {
	.get = gate_get,
	.put = gate_put,
	.size = gate_size,
	.remove = gate_remove,
	.close = gate_close,
};

static void gate_set(struct gate *g, bool closed)
{
	pthread_mutex_lock(&g->lock);
	g->closed = closed;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

/* Waits until n gets are held at the gate; false on timeout. */
static bool gate_wait_held(struct gate *g, int n)
{
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_SECONDS;
	pthread_mutex_lock(&g->lock);
	while (g->held < n && rc == 0)
		rc = pthread_cond_timedwait(&g->cond, &g->lock, &until);
	rc = g->held >= n;
	pthread_mutex_unlock(&g->lock);
	return rc;
}

/* A temporary directory with an origin and a cache directory in it. */
struct env {
	char root[64], odir[128], cdir[128];
	struct gate gate;
};

static void env_setup(struct env *e)
{
	char err[256];

	memset(e, 0, sizeof(*e));
	snprintf(e->root, sizeof(e->root), "/tmp/chorus-test-cache-XXXXXX");
	if (!mkdtemp(e->root)) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(e->odir, sizeof(e->odir), "%s/origin", e->root);
	snprintf(e->cdir, sizeof(e->cdir), "%s/cache", e->root);
	if (origin_dir_open(e->odir, &e->gate.inner, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	e->gate.base.ops = &gate_ops;
	snprintf(e->gate.base.desc, sizeof(e->gate.base.desc), "gate:%s", e->odir);
	pthread_mutex_init(&e->gate.lock, NULL);
	pthread_cond_init(&e->gate.cond, NULL);
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static void env_teardown(struct env *e)
{
	origin_close(e->gate.inner);
	pthread_cond_destroy(&e->gate.cond);
	pthread_mutex_destroy(&e->gate.lock);
	nftw(e->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static cache_t *env_cache(struct env *e, uint64_t budget, int threads)
{
	char err[256] = "";
	cache_t *c = NULL;
	int rc = cache_open(e->cdir, budget, &e->gate.base, threads, &c, err, sizeof(err));

	if (rc < 0)
		fprintf(stderr, "  cache_open: %s\n", err);
	CHECK(rc == 0 && c);
	return c;
}

struct chunk {
	struct chunk_ref ref;
	unsigned char *plain;
};

/* A random chunk, sealed into the origin. */
static void chunk_make(struct env *e, struct chunk *ch, uint32_t index, uint32_t len)
{
	unsigned char id[16];
	unsigned char *sealed = malloc(len + SEAL_TAG_LEN);
	char key[ORIGIN_KEY_MAX];

	memset(ch, 0, sizeof(*ch));
	crypto_random(id, sizeof(id));
	text_hex(id, sizeof(id), ch->ref.blob);
	crypto_random(ch->ref.key, sizeof(ch->ref.key));
	ch->ref.index = index;
	ch->ref.len = len;
	ch->plain = malloc(len ? len : 1);
	crypto_random(ch->plain, len);
	CHECK(seal_chunk(ch->ref.key, index, ch->plain, len, sealed) == 0);
	origin_chunk_key(ch->ref.blob, index, key);
	CHECK(origin_put(e->gate.inner, key, sealed, len + SEAL_TAG_LEN) == 0);
	free(sealed);
}

static void chunk_free(struct chunk *ch)
{
	free(ch->plain);
}

static void chunk_file(struct env *e, const struct chunk *ch, char out[PATH_MAX])
{
	snprintf(out, PATH_MAX, "%s/%.2s/%s-%08x", e->cdir, ch->ref.blob, ch->ref.blob,
		 ch->ref.index);
}

static bool chunk_on_disk(struct env *e, const struct chunk *ch)
{
	char path[PATH_MAX];

	chunk_file(e, ch, path);
	return access(path, F_OK) == 0;
}

/* True when fd holds exactly the chunk's plaintext and then its tag, read
 * from its own offset (so fds sharing one file description would show). */
static bool fd_holds(int fd, const struct chunk *ch)
{
	size_t want = ch->ref.len + SEAL_TAG_LEN;
	unsigned char *buf = malloc(want + 1), *sealed = malloc(want);
	ssize_t n = 0, r;
	bool ok;

	while ((r = read(fd, buf + n, want + 1 - (size_t)n)) > 0)
		n += r;
	ok = r == 0 && (size_t)n == want && memcmp(buf, ch->plain, ch->ref.len) == 0 &&
	     seal_chunk(ch->ref.key, ch->ref.index, ch->plain, ch->ref.len, sealed) == 0 &&
	     memcmp(buf + ch->ref.len, sealed + ch->ref.len, SEAL_TAG_LEN) == 0;
	free(buf);
	free(sealed);
	return ok;
}

/* Callback results. */
struct results {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls;
};

struct slot {
	struct results *r;
	int fd, calls;
};

static void results_init(struct results *r)
{
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->calls = 0;
}

static void results_destroy(struct results *r)
{
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
}

static void on_ready(void *arg, int fd)
{
	struct slot *s = arg;

	pthread_mutex_lock(&s->r->lock);
	s->fd = fd;
	s->calls++;
	s->r->calls++;
	pthread_cond_broadcast(&s->r->cond);
	pthread_mutex_unlock(&s->r->lock);
}

/* Waits for n callbacks in all; false on timeout. */
static bool results_wait(struct results *r, int n)
{
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_SECONDS;
	pthread_mutex_lock(&r->lock);
	while (r->calls < n && rc == 0)
		rc = pthread_cond_timedwait(&r->cond, &r->lock, &until);
	rc = r->calls >= n;
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* cache_get, waiting for the fill on a miss. Returns the fd or -errno;
 * *hit says whether it came back at once. */
static int get_wait(cache_t *c, const struct chunk *ch, bool *hit)
{
	struct results r;
	struct slot s = {&r, -1, 0};
	int rc;

	results_init(&r);
	rc = cache_get(c, &ch->ref, on_ready, &s);
	*hit = rc >= 0;
	if (rc == -EINPROGRESS) {
		CHECK(results_wait(&r, 1));
		rc = s.fd;
	}
	results_destroy(&r);
	return rc;
}

/* Fills the chunk (expecting a miss) and closes the fd. */
static void fill(cache_t *c, const struct chunk *ch)
{
	bool hit = true;
	int fd = get_wait(c, ch, &hit);

	CHECK(!hit);
	CHECK(fd >= 0 && fd_holds(fd, ch));
	if (fd >= 0)
		close(fd);
}

/* Expects a hit with the right bytes. */
static void expect_hit(cache_t *c, const struct chunk *ch)
{
	struct results r;
	struct slot s = {&r, -1, 0};
	int fd;

	results_init(&r);
	fd = cache_get(c, &ch->ref, on_ready, &s);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(fd_holds(fd, ch));
		CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
		CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY);
		close(fd);
	} else if (fd == -EINPROGRESS) {
		results_wait(&r, 1);
		if (s.fd >= 0)
			close(s.fd);
	}
	results_destroy(&r);
}

static int count_files_in;

static int count_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	if (type == FTW_F && strcmp(path + ftw->base, ".lock") != 0)
		count_files_in++;
	return 0;
}

/* Regular files under the cache directory, its lock file aside. */
static int count_files(struct env *e)
{
	count_files_in = 0;
	nftw(e->cdir, count_one, 16, FTW_PHYS);
	return count_files_in;
}

static void test_miss_then_hit(void)
{
	struct env e;
	struct chunk a;
	struct cache_stats st;
	cache_t *c;
	bool hit = true;
	int fd;

	env_setup(&e);
	chunk_make(&e, &a, 3, 100000);
	c = env_cache(&e, 1 << 20, 2);
	if (!c)
		goto out;
	fd = get_wait(c, &a, &hit);
	CHECK(!hit);
	CHECK(fd >= 0 && fd_holds(fd, &a));
	if (fd >= 0)
		close(fd);
	CHECK(chunk_on_disk(&e, &a));
	expect_hit(c, &a);
	expect_hit(c, &a);
	cache_get_stats(c, &st);
	CHECK(st.misses == 1);
	CHECK(st.hits == 2);
	CHECK(st.origin_reads == 1);
	CHECK(st.origin_bytes == 100000 + SEAL_TAG_LEN);
	CHECK(st.chunks == 1);
	CHECK(st.bytes == 100000);
	CHECK(st.budget_bytes == 1 << 20);
	CHECK(e.gate.gets == 1);
	cache_close(c);
out:
	chunk_free(&a);
	env_teardown(&e);
}

#define GETTERS 5
#define GETS_EACH 10

struct getter {
	cache_t *c;
	const struct chunk *ch;
	pthread_barrier_t *start;
	struct slot slots[GETS_EACH];
	int rcs[GETS_EACH];
};

static void *getter_run(void *arg)
{
	struct getter *g = arg;

	pthread_barrier_wait(g->start);
	for (int i = 0; i < GETS_EACH; i++)
		g->rcs[i] = cache_get(g->c, &g->ch->ref, on_ready, &g->slots[i]);
	return NULL;
}

static void test_single_flight(void)
{
	struct env e;
	struct chunk a;
	struct cache_stats st;
	struct results r;
	struct getter g[GETTERS];
	pthread_t t[GETTERS];
	pthread_barrier_t start;
	cache_t *c;
	int fds[GETTERS * GETS_EACH], distinct = 0;

	env_setup(&e);
	results_init(&r);
	chunk_make(&e, &a, 0, 65536);
	c = env_cache(&e, 1 << 20, 3);
	if (!c)
		goto out;
	/* Hold the one origin read until every get is in. */
	gate_set(&e.gate, true);
	pthread_barrier_init(&start, NULL, GETTERS);
	for (int i = 0; i < GETTERS; i++) {
		g[i] = (struct getter){.c = c, .ch = &a, .start = &start};
		for (int j = 0; j < GETS_EACH; j++)
			g[i].slots[j] = (struct slot){&r, -1, 0};
		pthread_create(&t[i], NULL, getter_run, &g[i]);
	}
	for (int i = 0; i < GETTERS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&start);
	CHECK(gate_wait_held(&e.gate, 1));
	gate_set(&e.gate, false);
	CHECK(results_wait(&r, GETTERS * GETS_EACH));

	for (int i = 0; i < GETTERS; i++) {
		for (int j = 0; j < GETS_EACH; j++) {
			struct slot *s = &g[i].slots[j];

			CHECK(g[i].rcs[j] == -EINPROGRESS);
			CHECK(s->calls == 1);
			CHECK(s->fd >= 0 && fd_holds(s->fd, &a));
			fds[i * GETS_EACH + j] = s->fd;
		}
	}
	/* All open at once, so a repeated number means one fd handed out
	 * twice; fd_holds reading each from its start shows none share an
	 * offset either. */
	for (int i = 0; i < GETTERS * GETS_EACH; i++) {
		bool seen = false;

		for (int j = 0; j < i; j++)
			seen |= fds[j] == fds[i];
		distinct += !seen && fds[i] >= 0;
	}
	cache_get_stats(c, &st);
	CHECK(st.origin_reads == 1);
	CHECK(e.gate.gets == 1);
	CHECK(st.misses == GETTERS * GETS_EACH);
	CHECK(st.hits == 0);
	CHECK(st.chunks == 1);
	/* Each waiter has its own fd. */
	CHECK(distinct == GETTERS * GETS_EACH);
	for (int i = 0; i < GETTERS; i++)
		for (int j = 0; j < GETS_EACH; j++)
			if (g[i].slots[j].fd >= 0)
				CHECK(close(g[i].slots[j].fd) == 0);
	cache_close(c);
	CHECK(r.calls == GETTERS * GETS_EACH); /* nobody was called twice */
out:
	results_destroy(&r);
	chunk_free(&a);
	env_teardown(&e);
}

static void test_tampered_not_cached(void)
{
	struct env e;
	struct chunk a, shorter;
	struct cache_stats st;
	char key[ORIGIN_KEY_MAX], *sealed = NULL;
	size_t len = 0;
	cache_t *c;
	bool hit;

	env_setup(&e);
	chunk_make(&e, &a, 9, 5000);
	origin_chunk_key(a.ref.blob, a.ref.index, key);
	CHECK(origin_get(e.gate.inner, key, &sealed, &len) == 0);
	if (sealed) {
		sealed[len / 2] ^= 0x01;
		CHECK(origin_put(e.gate.inner, key, sealed, len) == 0);
		free(sealed);
	}
	c = env_cache(&e, 1 << 20, 2);
	if (!c)
		goto out;
	CHECK(get_wait(c, &a, &hit) == -EBADMSG);
	CHECK(!hit);
	CHECK(count_files(&e) == 0);
	/* Not cached: asking again goes to the origin again. */
	CHECK(get_wait(c, &a, &hit) == -EBADMSG);
	CHECK(!hit);
	cache_get_stats(c, &st);
	CHECK(st.origin_reads == 2);
	CHECK(st.chunks == 0 && st.bytes == 0);
	CHECK(st.misses == 2);

	/* A manifest length that is not the object's is no match either. */
	chunk_make(&e, &shorter, 0, 5000);
	shorter.ref.len = 4999;
	CHECK(get_wait(c, &shorter, &hit) == -EBADMSG);
	CHECK(count_files(&e) == 0);
	chunk_free(&shorter);
	cache_close(c);
out:
	chunk_free(&a);
	env_teardown(&e);
}

static void test_missing_object(void)
{
	struct env e;
	struct chunk a;
	struct cache_stats st;
	cache_t *c;
	bool hit;

	env_setup(&e);
	chunk_make(&e, &a, 1, 100);
	a.ref.index = 2; /* never put */
	c = env_cache(&e, 1 << 20, 1);
	if (!c)
		goto out;
	CHECK(get_wait(c, &a, &hit) == -ENOENT);
	cache_get_stats(c, &st);
	CHECK(st.chunks == 0);
	CHECK(st.origin_bytes == 0);
	CHECK(count_files(&e) == 0);
	cache_close(c);
out:
	chunk_free(&a);
	env_teardown(&e);
}

static void test_bad_arguments(void)
{
	struct env e;
	struct chunk a;
	struct slot s = {NULL, -1, 0};
	cache_t *c;

	env_setup(&e);
	chunk_make(&e, &a, 0, 100);
	c = env_cache(&e, 1 << 20, 1);
	if (!c)
		goto out;
	CHECK(cache_get(c, &a.ref, NULL, NULL) == -EINVAL);
	snprintf(a.ref.blob, sizeof(a.ref.blob), "../../etc");
	CHECK(cache_get(c, &a.ref, on_ready, &s) == -EINVAL);
	snprintf(a.ref.blob, sizeof(a.ref.blob), "A0");
	CHECK(cache_get(c, &a.ref, on_ready, &s) == -EINVAL);
	cache_prefetch(c, &a.ref);
	cache_close(c);
	CHECK(s.calls == 0);
out:
	chunk_free(&a);
	env_teardown(&e);
}

#define CH_LEN 1000

static void test_lru_eviction(void)
{
	struct env e;
	struct chunk ch[4]; /* A, B, C, D */
	struct cache_stats st;
	cache_t *c;

	env_setup(&e);
	for (int i = 0; i < 4; i++)
		chunk_make(&e, &ch[i], (uint32_t)i, CH_LEN);
	c = env_cache(&e, 3 * CH_LEN, 2);
	if (!c)
		goto out;
	fill(c, &ch[0]);
	fill(c, &ch[1]);
	fill(c, &ch[2]);
	expect_hit(c, &ch[0]); /* B is now the least recently used */
	fill(c, &ch[3]);
	cache_get_stats(c, &st);
	CHECK(st.evictions == 1);
	CHECK(st.chunks == 3);
	CHECK(st.bytes <= st.budget_bytes);
	CHECK(st.bytes == 3 * CH_LEN);
	CHECK(!chunk_on_disk(&e, &ch[1]));
	CHECK(chunk_on_disk(&e, &ch[0]));
	CHECK(chunk_on_disk(&e, &ch[2]));
	CHECK(chunk_on_disk(&e, &ch[3]));
	CHECK(count_files(&e) == 3);
	expect_hit(c, &ch[0]);
	expect_hit(c, &ch[2]);
	expect_hit(c, &ch[3]);
	/* B comes back from the origin, and A, the LRU now, makes room. */
	fill(c, &ch[1]);
	cache_get_stats(c, &st);
	CHECK(st.evictions == 2);
	CHECK(st.bytes <= st.budget_bytes);
	CHECK(!chunk_on_disk(&e, &ch[0]));
	CHECK(st.origin_reads == 5);
	cache_close(c);
out:
	for (int i = 0; i < 4; i++)
		chunk_free(&ch[i]);
	env_teardown(&e);
}

static void test_fd_survives_eviction(void)
{
	struct env e;
	struct chunk a, b;
	struct cache_stats st;
	cache_t *c;
	bool hit;
	int fd1, fd2 = -1;

	env_setup(&e);
	chunk_make(&e, &a, 0, CH_LEN);
	chunk_make(&e, &b, 1, CH_LEN);
	c = env_cache(&e, CH_LEN, 1);
	if (!c)
		goto out;
	fd1 = get_wait(c, &a, &hit); /* from the fill */
	CHECK(fd1 >= 0 && !hit);
	fd2 = get_wait(c, &a, &hit); /* from a hit */
	CHECK(fd2 >= 0 && hit);
	fill(c, &b);
	cache_get_stats(c, &st);
	CHECK(st.evictions == 1);
	CHECK(!chunk_on_disk(&e, &a));
	CHECK(fd1 >= 0 && fd_holds(fd1, &a));
	CHECK(fd2 >= 0 && fd_holds(fd2, &a));
	if (fd1 >= 0)
		close(fd1);
	if (fd2 >= 0)
		close(fd2);
	cache_close(c);
out:
	chunk_free(&a);
	chunk_free(&b);
	env_teardown(&e);
}

static void test_budget_below_one_chunk(void)
{
	struct env e;
	struct chunk a;
	struct cache_stats st;
	cache_t *c;
	bool hit;
	int fd;

	env_setup(&e);
	chunk_make(&e, &a, 0, CH_LEN);
	c = env_cache(&e, CH_LEN / 2, 1);
	if (!c)
		goto out;
	fd = get_wait(c, &a, &hit);
	CHECK(fd >= 0 && fd_holds(fd, &a));
	if (fd >= 0)
		close(fd);
	cache_get_stats(c, &st);
	CHECK(st.chunks == 0 && st.bytes == 0);
	CHECK(st.evictions == 1);
	CHECK(count_files(&e) == 0);
	cache_close(c);
out:
	chunk_free(&a);
	env_teardown(&e);
}

static void test_removed_behind_back(void)
{
	struct env e;
	struct chunk a;
	struct cache_stats st;
	char path[PATH_MAX];
	cache_t *c;
	bool hit = true;
	int fd;

	env_setup(&e);
	chunk_make(&e, &a, 0, CH_LEN);
	c = env_cache(&e, 1 << 20, 1);
	if (!c)
		goto out;
	fill(c, &a);
	chunk_file(&e, &a, path);
	CHECK(unlink(path) == 0);
	fd = get_wait(c, &a, &hit);
	CHECK(!hit);
	CHECK(fd >= 0 && fd_holds(fd, &a));
	if (fd >= 0)
		close(fd);
	cache_get_stats(c, &st);
	CHECK(st.misses == 2 && st.hits == 0);
	CHECK(st.origin_reads == 2);
	CHECK(st.chunks == 1 && st.bytes == CH_LEN);
	expect_hit(c, &a);
	cache_close(c);
out:
	chunk_free(&a);
	env_teardown(&e);
}

static void test_reopen_is_warm(void)
{
	struct env e;
	struct chunk a, b;
	struct cache_stats st;
	cache_t *c;

	env_setup(&e);
	chunk_make(&e, &a, 0, CH_LEN);
	chunk_make(&e, &b, 7, CH_LEN / 2);
	c = env_cache(&e, 1 << 20, 2);
	if (!c)
		goto out;
	fill(c, &a);
	fill(c, &b);
	cache_close(c);

	c = env_cache(&e, 1 << 20, 2);
	if (!c)
		goto out;
	cache_get_stats(c, &st);
	CHECK(st.chunks == 2);
	CHECK(st.bytes == CH_LEN + CH_LEN / 2);
	expect_hit(c, &a);
	expect_hit(c, &b);
	cache_get_stats(c, &st);
	CHECK(st.hits == 2 && st.misses == 0);
	CHECK(st.origin_reads == 0);
	CHECK(e.gate.gets == 2); /* the first cache's two fills only */
	cache_close(c);
out:
	chunk_free(&a);
	chunk_free(&b);
	env_teardown(&e);
}

static void set_time(struct env *e, const struct chunk *ch, time_t t)
{
	struct timespec ts[2] = {{t, 0}, {t, 0}};
	char path[PATH_MAX];

	chunk_file(e, ch, path);
	CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
}

static void test_reopen_applies_budget_in_lru_order(void)
{
	struct env e;
	struct chunk ch[3];
	struct cache_stats st;
	cache_t *c;

	env_setup(&e);
	for (int i = 0; i < 3; i++)
		chunk_make(&e, &ch[i], (uint32_t)i, CH_LEN);
	c = env_cache(&e, 1 << 20, 1);
	if (!c)
		goto out;
	for (int i = 0; i < 3; i++)
		fill(c, &ch[i]);
	cache_close(c);
	/* Used last: ch[0], then ch[2]; ch[1] longest ago. */
	set_time(&e, &ch[0], 1700003000);
	set_time(&e, &ch[1], 1700001000);
	set_time(&e, &ch[2], 1700002000);

	c = env_cache(&e, 2 * CH_LEN, 1);
	if (!c)
		goto out;
	cache_get_stats(c, &st);
	CHECK(st.chunks == 2 && st.bytes == 2 * CH_LEN);
	CHECK(st.evictions == 1);
	CHECK(!chunk_on_disk(&e, &ch[1]));
	expect_hit(c, &ch[0]);
	expect_hit(c, &ch[2]);
	cache_close(c);
out:
	for (int i = 0; i < 3; i++)
		chunk_free(&ch[i]);
	env_teardown(&e);
}

/* A cached chunk read back sealed is the origin's copy; once a bit of the
 * file flips it is refused and dropped, and the next get fills again. */
static void test_read_sealed_checks_the_file(void)
{
	struct env e;
	struct chunk a;
	char path[PATH_MAX];
	unsigned char *out = malloc(CH_LEN + SEAL_TAG_LEN), *origin = malloc(CH_LEN + SEAL_TAG_LEN);
	cache_t *c;
	int fd;

	env_setup(&e);
	chunk_make(&e, &a, 2, CH_LEN);
	c = env_cache(&e, 1 << 20, 1);
	if (!c)
		goto out;
	fill(c, &a);
	chunk_file(&e, &a, path);
	fd = open(path, O_RDONLY);
	CHECK(seal_chunk(a.ref.key, a.ref.index, a.plain, CH_LEN, origin) == 0);
	CHECK(cache_read_sealed(c, &a.ref, fd, out) == 0);
	CHECK(memcmp(out, origin, CH_LEN + SEAL_TAG_LEN) == 0);
	close(fd);
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	if (fd >= 0) {
		unsigned char b;
		CHECK(pread(fd, &b, 1, CH_LEN / 2) == 1);
		b ^= 0x04;
		CHECK(pwrite(fd, &b, 1, CH_LEN / 2) == 1);
		CHECK(cache_read_sealed(c, &a.ref, fd, out) == -EBADMSG);
		close(fd);
	}
	CHECK(!chunk_on_disk(&e, &a));
	fill(c, &a); /* a miss again: fetched from the origin */
	fd = open(path, O_RDONLY);
	CHECK(cache_read_sealed(c, &a.ref, fd, out) == 0);
	close(fd);
	cache_close(c);
out:
	free(out);
	free(origin);
	chunk_free(&a);
	env_teardown(&e);
}

static void write_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);

	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(write(fd, "partial", 7) == 7);
		close(fd);
	}
}

static void test_temp_files_removed_at_open(void)
{
	struct env e;
	struct chunk a;
	struct cache_stats st;
	char path[PATH_MAX], tmp[PATH_MAX + 8], other[PATH_MAX];
	cache_t *c;

	env_setup(&e);
	chunk_make(&e, &a, 4, CH_LEN);
	c = env_cache(&e, 1 << 20, 1);
	if (!c)
		goto out;
	fill(c, &a);
	cache_close(c);
	/* What a kill -9 during fills leaves, plus a file that is no chunk. */
	chunk_file(&e, &a, path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	write_file(tmp);
	snprintf(tmp, sizeof(tmp), "%s/%.2s/%s-00000005.tmp", e.cdir, a.ref.blob, a.ref.blob);
	write_file(tmp);
	snprintf(other, sizeof(other), "%s/%.2s/notes", e.cdir, a.ref.blob);
	write_file(other);
	CHECK(count_files(&e) == 4);

	c = env_cache(&e, 1 << 20, 1);
	if (!c)
		goto out;
	CHECK(count_files(&e) == 2); /* the chunk and the stranger */
	CHECK(access(tmp, F_OK) < 0 && errno == ENOENT);
	CHECK(access(other, F_OK) == 0);
	cache_get_stats(c, &st);
	CHECK(st.chunks == 1 && st.bytes == CH_LEN);
	expect_hit(c, &a);
	cache_close(c);
out:
	chunk_free(&a);
	env_teardown(&e);
}

/* With a pool, an evicted chunk leaves its final name under the lock and
 * its file is unlinked on a worker; a refill of the same chunk is never
 * removed by that late unlink, and a crash's leftovers go at the next open. */
static void test_eviction_on_the_pool(void)
{
	struct env e;
	struct chunk a, b;
	struct cache_stats st;
	char path[PATH_MAX], gone[PATH_MAX + 32];
	pool_t *p = NULL;
	cache_t *c;

	env_setup(&e);
	chunk_make(&e, &a, 0, CH_LEN);
	chunk_make(&e, &b, 1, CH_LEN);
	CHECK(pool_start("test-pool", 1, 16, &p) == 0);
	c = env_cache(&e, CH_LEN, 1);
	if (!c || !p)
		goto out;
	cache_set_pool(c, p);
	for (int round = 0; round < 20; round++) {
		fill(c, &a); /* evicts b (after the first round) */
		fill(c, &b); /* evicts a */
		CHECK(chunk_on_disk(&e, &b));
	}
	cache_get_stats(c, &st);
	CHECK(st.evictions == 39);
	CHECK(!chunk_on_disk(&e, &a));
	/* The worker's unlinks are done once the pool stops; only b is left. */
	pool_stop(p);
	CHECK(count_files(&e) == 1);
	CHECK(chunk_on_disk(&e, &b));
	/* A stopped pool refuses: evictions unlink in place again. */
	fill(c, &a);
	CHECK(!chunk_on_disk(&e, &b) && chunk_on_disk(&e, &a));
	CHECK(count_files(&e) == 1);
	cache_close(c);
	/* What a crash leaves renamed aside is removed at the next open. */
	chunk_file(&e, &a, path);
	snprintf(gone, sizeof(gone), "%s.7.gone", path);
	write_file(gone);
	CHECK(count_files(&e) == 2);
	c = env_cache(&e, CH_LEN, 1);
	CHECK(c && count_files(&e) == 1 && access(gone, F_OK) < 0);
	if (c)
		expect_hit(c, &a);
	cache_close(c);
out:
	pool_free(p);
	chunk_free(&a);
	chunk_free(&b);
	env_teardown(&e);
}

static bool wait_chunks(cache_t *c, uint64_t n)
{
	struct cache_stats st;

	for (int i = 0; i < WAIT_SECONDS * 100; i++) {
		cache_get_stats(c, &st);
		if (st.chunks == n)
			return true;
		usleep(10000);
	}
	return false;
}

static void test_prefetch(void)
{
	struct env e;
	struct chunk a, b;
	struct cache_stats st;
	struct results r;
	struct slot s = {&r, -1, 0};
	cache_t *c;

	env_setup(&e);
	results_init(&r);
	chunk_make(&e, &a, 0, CH_LEN);
	chunk_make(&e, &b, 1, CH_LEN);
	c = env_cache(&e, 1 << 20, 1);
	if (!c)
		goto out;
	cache_prefetch(c, &a.ref);
	CHECK(wait_chunks(c, 1));
	cache_prefetch(c, &a.ref); /* cached: nothing to do */
	expect_hit(c, &a);

	/* A get joins a prefetch in flight. */
	gate_set(&e.gate, true);
	cache_prefetch(c, &b.ref);
	CHECK(gate_wait_held(&e.gate, 1));
	cache_prefetch(c, &b.ref); /* in flight: nothing to do */
	CHECK(cache_get(c, &b.ref, on_ready, &s) == -EINPROGRESS);
	gate_set(&e.gate, false);
	CHECK(results_wait(&r, 1));
	CHECK(s.fd >= 0 && fd_holds(s.fd, &b));
	if (s.fd >= 0)
		close(s.fd);
	cache_get_stats(c, &st);
	CHECK(st.origin_reads == 2);
	CHECK(e.gate.gets == 2);
	CHECK(st.hits == 1 && st.misses == 1);
	cache_close(c);
out:
	results_destroy(&r);
	chunk_free(&a);
	chunk_free(&b);
	env_teardown(&e);
}

static void *closer(void *arg)
{
	cache_close(arg);
	return NULL;
}

static void test_close_cancels_queued(void)
{
	struct env e;
	struct chunk a, b;
	struct results r;
	struct slot sa = {&r, -1, 0}, sb = {&r, -1, 0}, sp = {&r, -1, 0};
	pthread_t t;
	cache_t *c;

	env_setup(&e);
	results_init(&r);
	chunk_make(&e, &a, 0, CH_LEN);
	chunk_make(&e, &b, 1, CH_LEN);
	c = env_cache(&e, 1 << 20, 1);
	if (!c)
		goto out;
	gate_set(&e.gate, true);
	CHECK(cache_get(c, &a.ref, on_ready, &sa) == -EINPROGRESS);
	CHECK(gate_wait_held(&e.gate, 1)); /* the only thread is busy with a */
	CHECK(cache_get(c, &b.ref, on_ready, &sb) == -EINPROGRESS);
	CHECK(cache_get(c, &b.ref, on_ready, &sp) == -EINPROGRESS);
	pthread_create(&t, NULL, closer, c);
	usleep(200000); /* let cache_close begin waiting for the thread */
	gate_set(&e.gate, false);
	pthread_join(t, NULL);
	CHECK(sa.calls == 1 && sa.fd >= 0 && fd_holds(sa.fd, &a));
	CHECK(sb.calls == 1 && sb.fd == -ECANCELED);
	CHECK(sp.calls == 1 && sp.fd == -ECANCELED);
	CHECK(e.gate.gets == 1);
	if (sa.fd >= 0)
		close(sa.fd);
out:
	results_destroy(&r);
	chunk_free(&a);
	chunk_free(&b);
	env_teardown(&e);
}

static void test_second_open_refused(void)
{
	struct env e;
	char err[256] = "";
	cache_t *c, *c2 = NULL;

	env_setup(&e);
	c = env_cache(&e, 1 << 20, 1);
	if (!c)
		goto out;
	CHECK(cache_open(e.cdir, 1 << 20, &e.gate.base, 1, &c2, err, sizeof(err)) == -EBUSY);
	CHECK(c2 == NULL);
	CHECK(err[0] != '\0');
	cache_close(c);
out:
	env_teardown(&e);
}

/* ---- the open-chunk table ---- */

/* Open fds of the process, the one counting them aside. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1;
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/* As fd_holds, but at offsets, as sendfile reads a shared fd: its
 * position must stay where it was. */
static bool shared_fd_holds(int fd, const struct chunk *ch)
{
	size_t want = ch->ref.len + SEAL_TAG_LEN;
	unsigned char *buf = malloc(want + 1);
	ssize_t n = pread(fd, buf, want + 1, 0);
	bool ok = n == (ssize_t)want && memcmp(buf, ch->plain, ch->ref.len) == 0 &&
		  lseek(fd, 0, SEEK_CUR) == 0;

	free(buf);
	return ok;
}

/* A chunk of the same blob (and key) as first, at another index. */
static void chunk_make_sibling(struct env *e, struct chunk *ch, const struct chunk *first,
			       uint32_t index, uint32_t len)
{
	unsigned char *sealed = malloc(len + SEAL_TAG_LEN);
	char key[ORIGIN_KEY_MAX];

	memset(ch, 0, sizeof(*ch));
	ch->ref = first->ref;
	ch->ref.index = index;
	ch->ref.len = len;
	ch->plain = malloc(len ? len : 1);
	crypto_random(ch->plain, len);
	CHECK(seal_chunk(ch->ref.key, index, ch->plain, len, sealed) == 0);
	origin_chunk_key(ch->ref.blob, index, key);
	CHECK(origin_put(e->gate.inner, key, sealed, len + SEAL_TAG_LEN) == 0);
	free(sealed);
}

#define STREAMS 100

/* Many streams of one cached chunk: one fd, one reference each, every use
 * a hit; the last release closes it. */
static void test_files_share_one_fd(void)
{
	struct env e;
	struct chunk a;
	struct cache_stats st;
	struct results r;
	struct slot s = {&r, -1, 0};
	struct cache_file *h[STREAMS] = {0}, *again = NULL;
	cache_files_t *t = NULL;
	cache_t *c;
	int base, fd;

	env_setup(&e);
	results_init(&r);
	chunk_make(&e, &a, 5, CH_LEN);
	c = env_cache(&e, 1 << 20, 1);
	if (!c)
		goto out;
	fill(c, &a);
	t = cache_files_new(c);
	base = count_fds();
	for (int i = 0; i < STREAMS; i++) {
		CHECK(cache_file_open(t, &a.ref, on_ready, &s, &h[i]) == 0);
		CHECK(h[i] && h[i] == h[0]);
	}
	CHECK(count_fds() == base + 1);
	if (!h[0])
		goto close;
	fd = h[0]->fd;
	CHECK(shared_fd_holds(fd, &a));
	CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
	CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY);
	cache_get_stats(c, &st);
	CHECK(st.hits == STREAMS); /* the open and every share */
	CHECK(st.misses == 1 && st.origin_reads == 1);
	for (int i = 0; i < STREAMS - 1; i++) {
		cache_file_release(t, h[i]);
		h[i] = NULL;
	}
	/* One holder left: still open, still the chunk. */
	CHECK(fd_open(fd) && shared_fd_holds(fd, &a));
	CHECK(count_fds() == base + 1);
	cache_file_release(t, h[STREAMS - 1]);
	h[STREAMS - 1] = NULL;
	CHECK(!fd_open(fd));
	CHECK(count_fds() == base);
	/* Gone from the table: the next holder opens it again, a hit. */
	CHECK(cache_file_open(t, &a.ref, on_ready, &s, &again) == 0);
	CHECK(again && shared_fd_holds(again->fd, &a));
	CHECK(count_fds() == base + 1);
	if (again)
		cache_file_release(t, again);
	CHECK(count_fds() == base);
	cache_get_stats(c, &st);
	CHECK(st.hits == STREAMS + 1 && st.misses == 1);
	CHECK(e.gate.gets == 1);
close:
	cache_files_free(t);
	cache_close(c);
	CHECK(s.calls == 0); /* every open was a hit */
out:
	results_destroy(&r);
	chunk_free(&a);
	env_teardown(&e);
}

/* Two streams miss one chunk together: one fill, and the second fd it
 * hands out is closed when adopted, the first shared. */
static void test_files_adopt_shares_a_fill(void)
{
	struct env e;
	struct chunk a;
	struct cache_stats st;
	struct results r;
	struct slot s1 = {&r, -1, 0}, s2 = {&r, -1, 0}, s3 = {&r, -1, 0};
	struct cache_file *h1 = NULL, *h2 = NULL, *h3 = NULL, *f1, *f2;
	cache_files_t *t = NULL;
	cache_t *c;
	int base;

	env_setup(&e);
	results_init(&r);
	chunk_make(&e, &a, 1, CH_LEN);
	c = env_cache(&e, 1 << 20, 1);
	if (!c)
		goto out;
	t = cache_files_new(c);
	gate_set(&e.gate, true);
	CHECK(cache_file_open(t, &a.ref, on_ready, &s1, &h1) == -EINPROGRESS);
	CHECK(cache_file_open(t, &a.ref, on_ready, &s2, &h2) == -EINPROGRESS);
	CHECK(!h1 && !h2);
	CHECK(gate_wait_held(&e.gate, 1));
	gate_set(&e.gate, false);
	CHECK(results_wait(&r, 2));
	CHECK(s1.fd >= 0 && s2.fd >= 0 && s1.fd != s2.fd);
	if (s1.fd < 0 || s2.fd < 0)
		goto close;
	base = count_fds();
	f1 = cache_file_adopt(t, a.ref.blob, a.ref.index, s1.fd);
	f2 = cache_file_adopt(t, a.ref.blob, a.ref.index, s2.fd);
	CHECK(f1 == f2 && f1->fd == s1.fd);
	CHECK(count_fds() == base - 1);
	CHECK(shared_fd_holds(f1->fd, &a));
	/* A third stream shares it too: a hit, no fill. */
	CHECK(cache_file_open(t, &a.ref, on_ready, &s3, &h3) == 0);
	CHECK(h3 == f1);
	CHECK(count_fds() == base - 1);
	cache_get_stats(c, &st);
	CHECK(st.origin_reads == 1 && e.gate.gets == 1);
	CHECK(st.misses == 2 && st.hits == 1);
	cache_file_release(t, f1);
	cache_file_release(t, f2);
	CHECK(fd_open(s1.fd));
	cache_file_release(t, h3);
	CHECK(count_fds() == base - 2);
close:
	cache_files_free(t);
	cache_close(c);
	CHECK(s3.calls == 0);
out:
	results_destroy(&r);
	chunk_free(&a);
	env_teardown(&e);
}

/* A chunk evicted while held: its handle still reads the chunk, and new
 * streams share it without a fill until the last holder lets go. */
static void test_files_handle_survives_eviction(void)
{
	struct env e;
	struct chunk a, b;
	struct cache_stats st;
	struct results r;
	struct slot s = {&r, -1, 0}, s2 = {&r, -1, 0};
	struct cache_file *h = NULL, *h2 = NULL, *h3 = NULL;
	cache_files_t *t = NULL;
	cache_t *c;
	int base, fd;

	env_setup(&e);
	results_init(&r);
	chunk_make(&e, &a, 0, CH_LEN);
	chunk_make(&e, &b, 1, CH_LEN);
	c = env_cache(&e, CH_LEN, 1);
	if (!c)
		goto out;
	t = cache_files_new(c);
	fill(c, &a);
	base = count_fds();
	CHECK(cache_file_open(t, &a.ref, on_ready, &s, &h) == 0);
	if (!h)
		goto close;
	fd = h->fd;
	fill(c, &b);
	cache_get_stats(c, &st);
	CHECK(st.evictions == 1);
	CHECK(!chunk_on_disk(&e, &a));
	CHECK(shared_fd_holds(fd, &a));
	CHECK(cache_file_open(t, &a.ref, on_ready, &s, &h2) == 0);
	CHECK(h2 == h);
	CHECK(e.gate.gets == 2); /* a's fill and b's */
	CHECK(count_fds() == base + 1);
	cache_file_release(t, h);
	CHECK(fd_open(fd) && shared_fd_holds(fd, &a));
	cache_file_release(t, h2);
	CHECK(!fd_open(fd));
	CHECK(count_fds() == base);
	/* Released for good: the next stream fills it again. */
	CHECK(cache_file_open(t, &a.ref, on_ready, &s2, &h3) == -EINPROGRESS);
	CHECK(results_wait(&r, 1));
	CHECK(s2.fd >= 0);
	if (s2.fd >= 0) {
		h3 = cache_file_adopt(t, a.ref.blob, a.ref.index, s2.fd);
		CHECK(shared_fd_holds(h3->fd, &a));
		cache_file_release(t, h3);
	}
	CHECK(e.gate.gets == 3);
	CHECK(count_fds() == base);
close:
	cache_files_free(t);
	cache_close(c);
	CHECK(s.calls == 0);
out:
	results_destroy(&r);
	chunk_free(&a);
	chunk_free(&b);
	env_teardown(&e);
}

/* A share is a use: it moves the chunk up the LRU, so eviction takes the
 * chunk nobody shared. */
static void test_files_share_refreshes_lru(void)
{
	struct env e;
	struct chunk a, b, d;
	struct results r;
	struct slot s = {&r, -1, 0};
	struct cache_file *h1 = NULL, *h2 = NULL;
	cache_files_t *t = NULL;
	cache_t *c;

	env_setup(&e);
	results_init(&r);
	chunk_make(&e, &a, 0, CH_LEN);
	chunk_make(&e, &b, 1, CH_LEN);
	chunk_make(&e, &d, 2, CH_LEN);
	c = env_cache(&e, 2 * CH_LEN, 1);
	if (!c)
		goto out;
	t = cache_files_new(c);
	fill(c, &a);
	CHECK(cache_file_open(t, &a.ref, on_ready, &s, &h1) == 0);
	fill(c, &b); /* a is the least recently used now */
	CHECK(cache_file_open(t, &a.ref, on_ready, &s, &h2) == 0);
	CHECK(h1 && h1 == h2);
	fill(c, &d); /* evicts b, not a */
	CHECK(chunk_on_disk(&e, &a));
	CHECK(!chunk_on_disk(&e, &b));
	CHECK(chunk_on_disk(&e, &d));
	if (h1)
		cache_file_release(t, h1);
	if (h2)
		cache_file_release(t, h2);
	cache_files_free(t);
	cache_close(c);
out:
	results_destroy(&r);
	chunk_free(&a);
	chunk_free(&b);
	chunk_free(&d);
	env_teardown(&e);
}

#define BLOBS 40
#define INDEXES 4

/* More chunks than the table's first buckets, four of each blob: each
 * handle is its own chunk's, and all close when released. */
static void test_files_many_chunks(void)
{
	struct env e;
	struct chunk ch[BLOBS * INDEXES];
	struct results r;
	struct slot s[BLOBS * INDEXES];
	struct cache_file *h[BLOBS * INDEXES] = {0}, *again;
	cache_files_t *t = NULL;
	cache_t *c;
	int base, n = BLOBS * INDEXES;

	env_setup(&e);
	results_init(&r);
	for (int i = 0; i < n; i++) {
		uint32_t index = (uint32_t)(i % INDEXES), len = 100 + (uint32_t)i;

		if (index == 0)
			chunk_make(&e, &ch[i], 0, len);
		else
			chunk_make_sibling(&e, &ch[i], &ch[i - (int)index], index, len);
		s[i] = (struct slot){&r, -1, 0};
	}
	c = env_cache(&e, 1 << 20, 2);
	if (!c)
		goto out;
	t = cache_files_new(c);
	base = count_fds();
	for (int i = 0; i < n; i++)
		CHECK(cache_file_open(t, &ch[i].ref, on_ready, &s[i], &h[i]) == -EINPROGRESS);
	CHECK(results_wait(&r, n));
	for (int i = 0; i < n; i++) {
		CHECK(s[i].fd >= 0);
		if (s[i].fd >= 0)
			h[i] = cache_file_adopt(t, ch[i].ref.blob, ch[i].ref.index, s[i].fd);
	}
	CHECK(count_fds() == base + n);
	for (int i = 0; i < n; i++) {
		CHECK(h[i] && shared_fd_holds(h[i]->fd, &ch[i]));
		again = NULL;
		CHECK(cache_file_open(t, &ch[i].ref, on_ready, &s[i], &again) == 0);
		CHECK(again == h[i]);
	}
	CHECK(count_fds() == base + n);
	/* Out of order: the odd ones' both references, then the rest. */
	for (int pass = 0; pass < 2; pass++)
		for (int i = pass == 0; i < n; i += 2)
			if (h[i]) {
				cache_file_release(t, h[i]);
				cache_file_release(t, h[i]);
			}
	CHECK(count_fds() == base);
	cache_files_free(t);
	cache_close(c);
	CHECK(r.calls == n);
out:
	results_destroy(&r);
	for (int i = 0; i < n; i++)
		chunk_free(&ch[i]);
	env_teardown(&e);
}

static void test_files_bad_arguments(void)
{
	struct env e;
	struct chunk a;
	struct chunk_ref bad;
	struct results r;
	struct slot s = {&r, -1, 0};
	struct cache_file *h = NULL;
	cache_files_t *t;
	cache_t *c;
	int base;

	env_setup(&e);
	results_init(&r);
	chunk_make(&e, &a, 0, CH_LEN);
	c = env_cache(&e, 1 << 20, 1);
	if (!c)
		goto out;
	fill(c, &a);
	t = cache_files_new(c);
	base = count_fds();
	CHECK(cache_file_open(t, &a.ref, NULL, NULL, &h) == -EINVAL);
	bad = a.ref;
	snprintf(bad.blob, sizeof(bad.blob), "../../etc");
	CHECK(cache_file_open(t, &bad, on_ready, &s, &h) == -EINVAL);
	CHECK(h == NULL && count_fds() == base);
	cache_files_free(t);
	cache_files_free(NULL);
	cache_close(c);
	CHECK(s.calls == 0);
out:
	results_destroy(&r);
	chunk_free(&a);
	env_teardown(&e);
}

/* A table freed with a handle still out (a caller's bug) closes its fd. */
static void test_files_free_closes_leftovers(void)
{
	struct env e;
	struct chunk a;
	struct results r;
	struct slot s = {&r, -1, 0};
	struct cache_file *h = NULL;
	cache_files_t *t;
	cache_t *c;
	int base;

	env_setup(&e);
	results_init(&r);
	chunk_make(&e, &a, 0, CH_LEN);
	c = env_cache(&e, 1 << 20, 1);
	if (!c)
		goto out;
	fill(c, &a);
	t = cache_files_new(c);
	base = count_fds();
	CHECK(cache_file_open(t, &a.ref, on_ready, &s, &h) == 0);
	CHECK(h != NULL && count_fds() == base + 1);
	cache_files_free(t);
	CHECK(count_fds() == base);
	cache_close(c);
out:
	results_destroy(&r);
	chunk_free(&a);
	env_teardown(&e);
}

/* A blob gone from the catalog: every chunk of it held is dropped, files
 * and all, and nothing else; an fd a stream holds still reads; the next
 * request fills it again. */
static void test_drop_blob(void)
{
	struct env e;
	struct chunk x0, x1, x2, y;
	struct cache_stats st;
	cache_t *c;
	bool hit;
	int fd = -1;

	env_setup(&e);
	chunk_make(&e, &x0, 0, CH_LEN);
	chunk_make_sibling(&e, &x1, &x0, 1, CH_LEN);
	chunk_make_sibling(&e, &x2, &x0, 2, CH_LEN / 2);
	chunk_make(&e, &y, 0, CH_LEN);
	c = env_cache(&e, 8 * CH_LEN, 2);
	if (!c)
		goto out;
	fill(c, &x0);
	fill(c, &x2); /* x1 never cached */
	fill(c, &y);
	fd = get_wait(c, &x0, &hit);
	CHECK(fd >= 0 && hit);
	CHECK(cache_drop_blob(c, x0.ref.blob, 3) == 2);
	CHECK(!chunk_on_disk(&e, &x0));
	CHECK(!chunk_on_disk(&e, &x2));
	CHECK(chunk_on_disk(&e, &y));
	CHECK(count_files(&e) == 1);
	cache_get_stats(c, &st);
	CHECK(st.chunks == 1);
	CHECK(st.bytes == CH_LEN);
	CHECK(st.evictions == 0); /* a drop is not an eviction */
	CHECK(fd >= 0 && fd_holds(fd, &x0));
	CHECK(cache_drop_blob(c, x0.ref.blob, 3) == 0); /* again: nothing */
	CHECK(cache_drop_blob(c, "../etc", 1) == 0);    /* not a blob id */
	if (fd >= 0)
		close(fd);
	fd = get_wait(c, &x0, &hit); /* filled again */
	CHECK(fd >= 0 && !hit);
	if (fd >= 0)
		close(fd);
	expect_hit(c, &y);
	cache_close(c);
out:
	chunk_free(&x0);
	chunk_free(&x1);
	chunk_free(&x2);
	chunk_free(&y);
	env_teardown(&e);
}

int main(void)
{
	TEST_RUN(test_miss_then_hit);
	TEST_RUN(test_single_flight);
	TEST_RUN(test_tampered_not_cached);
	TEST_RUN(test_missing_object);
	TEST_RUN(test_bad_arguments);
	TEST_RUN(test_lru_eviction);
	TEST_RUN(test_fd_survives_eviction);
	TEST_RUN(test_eviction_on_the_pool);
	TEST_RUN(test_budget_below_one_chunk);
	TEST_RUN(test_removed_behind_back);
	TEST_RUN(test_reopen_is_warm);
	TEST_RUN(test_reopen_applies_budget_in_lru_order);
	TEST_RUN(test_temp_files_removed_at_open);
	TEST_RUN(test_read_sealed_checks_the_file);
	TEST_RUN(test_prefetch);
	TEST_RUN(test_close_cancels_queued);
	TEST_RUN(test_second_open_refused);
	TEST_RUN(test_files_share_one_fd);
	TEST_RUN(test_files_adopt_shares_a_fill);
	TEST_RUN(test_files_handle_survives_eviction);
	TEST_RUN(test_files_share_refreshes_lru);
	TEST_RUN(test_files_many_chunks);
	TEST_RUN(test_files_bad_arguments);
	TEST_RUN(test_files_free_closes_leftovers);
	TEST_RUN(test_drop_blob);
	TEST_EXIT();
}
