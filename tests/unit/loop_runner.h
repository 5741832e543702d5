#ifndef CHORUS_TESTS_LOOP_RUNNER_H
#define CHORUS_TESTS_LOOP_RUNNER_H

/*
 * What the tests of loop/, the pool and the HTTP server share: an event
 * loop on a thread of its own, a sleep, and a bounded wait for a
 * condition another thread makes true.
 */
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "loop/loop.h"
#include "unit.h"
#include "util/clock.h"

struct runner {
	loop_t *loop;
	pthread_t thread;
	pthread_t loop_thread; /* as the loop thread saw itself */
};

static inline void *runner_main(void *arg)
{
	struct runner *r = arg;

	r->loop_thread = pthread_self();
	loop_run(r->loop);
	return NULL;
}

static inline void runner_start(struct runner *r)
{
	CHECK(loop_new(&r->loop) == 0);
	CHECK(pthread_create(&r->thread, NULL, runner_main, r) == 0);
}

static inline void runner_join(struct runner *r)
{
	loop_stop(r->loop);
	pthread_join(r->thread, NULL);
	loop_free(r->loop);
}

static inline void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* Polls cond for up to ms. */
#define WAIT_FOR(cond, ms)                                                                         \
	do {                                                                                       \
		int64_t until_ = mono_ms() + (ms);                                                 \
		while (!(cond) && mono_ms() < until_)                                              \
			sleep_ms(2);                                                               \
	} while (0)

#endif
