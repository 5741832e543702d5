/* The event loop: posts (order, thread, never inline), timers, the
 * before-sleep hook, fds stopped in the middle of a round, deferred frees,
 * and posts left over after the loop stopped. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "loop/loop.h"
#include "loop_runner.h"
#include "unit.h"
#include "util/clock.h"

/* ---- posts ---- */

#define NPOSTS 200

struct posts {
	struct runner r;
	int order[NPOSTS];
	_Atomic int n;
	int wrong_thread;
	pthread_t seen[NPOSTS];
};

struct post_arg {
	struct posts *p;
	int i;
};

static struct post_arg post_args[NPOSTS];

static void record(void *arg)
{
	struct post_arg *a = arg;
	int n = atomic_load(&a->p->n);

	a->p->order[n] = a->i;
	a->p->seen[n] = pthread_self();
	atomic_store(&a->p->n, n + 1);
}

static void test_posts_in_order_on_the_loop_thread(void)
{
	struct posts p = {0};

	runner_start(&p.r);
	for (int i = 0; i < NPOSTS; i++) {
		post_args[i] = (struct post_arg){&p, i};
		loop_post(p.r.loop, record, &post_args[i]);
	}
	WAIT_FOR(atomic_load(&p.n) == NPOSTS, 5000);
	CHECK(atomic_load(&p.n) == NPOSTS);
	for (int i = 0; i < atomic_load(&p.n); i++) {
		CHECK(p.order[i] == i);
		CHECK(pthread_equal(p.seen[i], p.r.loop_thread));
	}
	CHECK(!loop_on_thread(p.r.loop));
	runner_join(&p.r);
}

struct inline_check {
	loop_t *loop;
	bool second_ran, ran_inline, on_thread;
	_Atomic bool done;
};

static void second(void *arg)
{
	struct inline_check *ic = arg;

	ic->second_ran = true;
	atomic_store(&ic->done, true);
}

static void first(void *arg)
{
	struct inline_check *ic = arg;

	ic->on_thread = loop_on_thread(ic->loop);
	loop_post(ic->loop, second, ic);
	ic->ran_inline = ic->second_ran; /* must still be false */
}

static void test_post_from_the_loop_is_not_inline(void)
{
	struct runner r;
	struct inline_check ic = {0};

	runner_start(&r);
	ic.loop = r.loop;
	loop_post(r.loop, first, &ic);
	WAIT_FOR(atomic_load(&ic.done), 5000);
	CHECK(atomic_load(&ic.done));
	CHECK(!ic.ran_inline);
	CHECK(ic.on_thread);
	runner_join(&r);
}

static int leftover_runs;

static void leftover(void *arg)
{
	leftover_runs++;
}

static void test_loop_free_runs_leftover_posts(void)
{
	loop_t *l;

	leftover_runs = 0;
	CHECK(loop_new(&l) == 0);
	loop_post(l, leftover, NULL);
	loop_post(l, leftover, NULL);
	loop_free(l);
	CHECK(leftover_runs == 2);
}

/* ---- timers and the before-sleep hook ---- */

struct timers {
	struct runner r;
	struct loop_timer t[3], spin;
	int order[3], n, stopped_fired;
	int spin_fires, rounds;
	_Atomic bool done;
};

static void timer_fired(struct loop_timer *t)
{
	struct timers *ts = t->ud;
	int i = (int)(t - ts->t);

	if (i == 1)
		ts->stopped_fired = 1;
	ts->order[ts->n++] = i;
	if (ts->n == 2)
		atomic_store(&ts->done, true);
}

/* Restarts itself with 0 ms: once per round at most, never a spin. */
static void spin_fired(struct loop_timer *t)
{
	struct timers *ts = t->ud;

	ts->spin_fires++;
	if (ts->spin_fires < 50)
		loop_timer_start(ts->r.loop, t, 0, spin_fired, ts);
}

static bool count_rounds(void *ud)
{
	struct timers *ts = ud;

	ts->rounds++;
	return false;
}

static void start_timers(void *arg)
{
	struct timers *ts = arg;

	loop_before_sleep(ts->r.loop, count_rounds, ts);
	loop_timer_start(ts->r.loop, &ts->t[0], 60, timer_fired, ts);
	loop_timer_start(ts->r.loop, &ts->t[1], 20, timer_fired, ts);
	loop_timer_start(ts->r.loop, &ts->t[2], 40, timer_fired, ts);
	loop_timer_stop(ts->r.loop, &ts->t[1]);
	loop_timer_start(ts->r.loop, &ts->spin, 0, spin_fired, ts);
}

static void test_timers(void)
{
	struct timers ts = {0};
	int64_t t0 = mono_ms();

	runner_start(&ts.r);
	loop_post(ts.r.loop, start_timers, &ts);
	WAIT_FOR(atomic_load(&ts.done), 5000);
	runner_join(&ts.r);
	CHECK(ts.n == 2);
	CHECK(ts.order[0] == 2 && ts.order[1] == 0); /* 40 ms, then 60 ms */
	CHECK(!ts.stopped_fired);
	CHECK(mono_ms() - t0 >= 60);
	CHECK(ts.spin_fires == 50);
	CHECK(ts.spin_fires <= ts.rounds); /* one fire per round */
}

struct more {
	struct runner r;
	_Atomic int calls;
};

/* Asks for five more rounds, with nothing else to wake the loop: if the
 * loop slept anyway it would never come back (no timer, no post). */
static bool want_more(void *ud)
{
	struct more *m = ud;

	return atomic_fetch_add(&m->calls, 1) + 1 < 5;
}

static void install_more(void *arg)
{
	struct more *m = arg;

	loop_before_sleep(m->r.loop, want_more, m);
}

static void test_before_sleep_more_means_no_sleep(void)
{
	struct more m = {0};

	runner_start(&m.r);
	loop_post(m.r.loop, install_more, &m);
	WAIT_FOR(atomic_load(&m.calls) >= 5, 3000);
	CHECK(atomic_load(&m.calls) == 5);
	sleep_ms(50);
	CHECK(atomic_load(&m.calls) == 5); /* then it sleeps */
	runner_join(&m.r);
}

/* ---- fds stopped mid-round and deferred frees ---- */

struct watched {
	struct loop_io io;
	struct loop_deferred dead;
	struct round *rd;
	int fd, calls;
};

struct round {
	struct runner r;
	struct watched *w[2];
	int events_seen, freed, freed_before_callbacks_done;
	bool in_callbacks;
	_Atomic bool done;
};

static void watched_free(struct loop_deferred *d)
{
	struct watched *w = (struct watched *)((char *)d - offsetof(struct watched, dead));
	struct round *rd = w->rd;

	rd->freed++;
	if (rd->in_callbacks)
		rd->freed_before_callbacks_done = 1;
	close(w->fd);
	free(w);
	if (rd->freed == 2)
		atomic_store(&rd->done, true);
}

/* Whichever of the two comes first stops and frees both: the other's
 * event, gathered in the same round, must not be delivered. */
static void watched_event(struct loop_io *io, unsigned events)
{
	struct watched *w = io->ud;
	struct round *rd = w->rd;

	rd->events_seen++;
	rd->in_callbacks = true;
	for (int i = 0; i < 2; i++) {
		loop_io_stop(rd->r.loop, &rd->w[i]->io);
		loop_defer(rd->r.loop, &rd->w[i]->dead, watched_free);
	}
}

static bool end_of_callbacks(void *ud)
{
	struct round *rd = ud;

	rd->in_callbacks = false;
	return false;
}

static void arm(void *arg)
{
	struct round *rd = arg;
	uint64_t one = 1;

	loop_before_sleep(rd->r.loop, end_of_callbacks, rd);
	for (int i = 0; i < 2; i++) {
		struct watched *w = calloc(1, sizeof(*w));
		w->rd = rd;
		w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		CHECK(loop_io_start(rd->r.loop, &w->io, w->fd, LOOP_IN, watched_event, w) == 0);
		rd->w[i] = w;
	}
	/* Both readable before the loop waits again: one round sees both. */
	for (int i = 0; i < 2; i++)
		CHECK(write(rd->w[i]->fd, &one, sizeof(one)) == sizeof(one));
}

static void test_stop_in_round_and_deferred_free(void)
{
	struct round rd = {0};

	runner_start(&rd.r);
	loop_post(rd.r.loop, arm, &rd);
	WAIT_FOR(atomic_load(&rd.done), 5000);
	runner_join(&rd.r);
	CHECK(rd.events_seen == 1);
	CHECK(rd.freed == 2);
	CHECK(!rd.freed_before_callbacks_done);
}

int main(void)
{
	TEST_RUN(test_posts_in_order_on_the_loop_thread);
	TEST_RUN(test_post_from_the_loop_is_not_inline);
	TEST_RUN(test_loop_free_runs_leftover_posts);
	TEST_RUN(test_timers);
	TEST_RUN(test_before_sleep_more_means_no_sleep);
	TEST_RUN(test_stop_in_round_and_deferred_free);
	TEST_EXIT();
}
