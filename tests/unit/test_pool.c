/* The worker pool: work on a worker and done on the submitting loop,
 * exactly once per job in every order of events: run, cancelled by
 * pool_stop, refused by a full queue or a stopped pool; slow jobs never
 * take the last worker from fast ones. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "loop/loop.h"
#include "loop/pool.h"
#include "loop_runner.h"
#include "unit.h"
#include "util/clock.h"

/* Work held until the test opens the gate. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};

static void gate_set(bool open)
{
	pthread_mutex_lock(&gate.lock);
	gate.open = open;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
}

static void gate_wait(void)
{
	pthread_mutex_lock(&gate.lock);
	while (!gate.open)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
}

#define NJOBS 20

struct job {
	int id;
	bool wait_gate;
	_Atomic int worked, dones;
	_Atomic int status;
	pthread_t work_thread, done_thread;
	struct runner *r;
};

static _Atomic int done_order[NJOBS], ndone;

static void work(void *arg)
{
	struct job *j = arg;

	j->work_thread = pthread_self();
	atomic_fetch_add(&j->worked, 1);
	if (j->wait_gate)
		gate_wait();
}

static void done(void *arg, int status)
{
	struct job *j = arg;

	j->done_thread = pthread_self();
	atomic_store(&j->status, status);
	atomic_fetch_add(&j->dones, 1);
	done_order[atomic_fetch_add(&ndone, 1) % NJOBS] = j->id;
}

static void jobs_init(struct job *jobs, int n, struct runner *r)
{
	memset(jobs, 0, sizeof(*jobs) * (size_t)n);
	for (int i = 0; i < n; i++) {
		jobs[i].id = i;
		jobs[i].status = 1; /* neither 0 nor -errno: not yet */
		jobs[i].r = r;
	}
	atomic_store(&ndone, 0);
}

static void test_work_on_a_worker_done_on_the_loop(void)
{
	static struct job jobs[NJOBS];
	struct runner r;
	pool_t *p;

	runner_start(&r);
	CHECK(pool_start("test-pool", 3, 64, &p) == 0);
	jobs_init(jobs, NJOBS, &r);
	for (int i = 0; i < NJOBS; i++)
		CHECK(pool_submit(p, r.loop, POOL_FAST, work, done, &jobs[i]) == 0);
	WAIT_FOR(atomic_load(&ndone) == NJOBS, 5000);
	for (int i = 0; i < NJOBS; i++) {
		CHECK(jobs[i].worked == 1 && jobs[i].dones == 1 && jobs[i].status == 0);
		CHECK(pthread_equal(jobs[i].done_thread, r.loop_thread));
		CHECK(!pthread_equal(jobs[i].work_thread, r.loop_thread));
		CHECK(!pthread_equal(jobs[i].work_thread, pthread_self()));
	}
	pool_free(p);
	runner_join(&r);
}

static void test_without_a_loop_done_follows_work(void)
{
	static struct job jobs[4];
	pool_t *p;

	CHECK(pool_start("test-pool", 2, 8, &p) == 0);
	jobs_init(jobs, 4, NULL);
	for (int i = 0; i < 4; i++)
		CHECK(pool_submit(p, NULL, POOL_FAST, work, done, &jobs[i]) == 0);
	WAIT_FOR(atomic_load(&ndone) == 4, 5000);
	for (int i = 0; i < 4; i++) {
		CHECK(jobs[i].dones == 1 && jobs[i].status == 0);
		CHECK(pthread_equal(jobs[i].done_thread, jobs[i].work_thread));
	}
	pool_free(p);
}

struct stopper {
	pool_t *p;
	_Atomic bool returned;
};

static void *stop_main(void *arg)
{
	struct stopper *s = arg;

	pool_stop(s->p);
	atomic_store(&s->returned, true);
	return NULL;
}

/* One worker held by job 0; jobs 1-5 queued. pool_stop cancels 1-5 (done
 * with -ECANCELED, in order, work never run) at once, waits for job 0,
 * which completes with 0. Every done exactly once, on the loop. */
static void test_stop_cancels_queued_and_finishes_running(void)
{
	static struct job jobs[6];
	struct stopper st = {0};
	struct runner r;
	pthread_t t;
	pool_t *p;

	runner_start(&r);
	gate_set(false);
	CHECK(pool_start("test-pool", 1, 16, &p) == 0);
	jobs_init(jobs, 6, &r);
	jobs[0].wait_gate = true;
	CHECK(pool_submit(p, r.loop, POOL_FAST, work, done, &jobs[0]) == 0);
	WAIT_FOR(atomic_load(&jobs[0].worked) == 1, 5000);
	for (int i = 1; i < 6; i++)
		CHECK(pool_submit(p, r.loop, i % 2 ? POOL_FAST : POOL_SLOW, work, done, &jobs[i]) ==
		      0);
	st.p = p;
	pthread_create(&t, NULL, stop_main, &st);
	WAIT_FOR(atomic_load(&ndone) == 5, 5000);
	CHECK(atomic_load(&ndone) == 5);
	CHECK(!atomic_load(&st.returned)); /* job 0 still runs */
	CHECK(pool_submit(p, r.loop, POOL_FAST, work, done, &jobs[1]) == -ESHUTDOWN);
	gate_set(true);
	pthread_join(t, NULL);
	WAIT_FOR(atomic_load(&ndone) == 6, 5000);
	CHECK(jobs[0].worked == 1 && jobs[0].dones == 1 && jobs[0].status == 0);
	for (int i = 1; i < 6; i++) {
		CHECK(jobs[i].worked == 0);
		CHECK(jobs[i].dones == 1);
		CHECK(jobs[i].status == -ECANCELED);
		CHECK(pthread_equal(jobs[i].done_thread, r.loop_thread));
	}
	/* Fast ones first, each kind in queue order. */
	CHECK(done_order[0] == 1 && done_order[1] == 3 && done_order[2] == 5);
	CHECK(done_order[3] == 2 && done_order[4] == 4 && done_order[5] == 0);
	pool_stop(p); /* a second call returns at once */
	CHECK(pool_submit(p, r.loop, POOL_FAST, work, done, &jobs[1]) == -ESHUTDOWN);
	pool_free(p);
	runner_join(&r);
	CHECK(jobs[1].dones == 1); /* the refused submissions called nothing */
}

static void test_full_queue_refuses(void)
{
	static struct job jobs[4];
	struct runner r;
	pool_t *p;

	runner_start(&r);
	gate_set(false);
	CHECK(pool_start("test-pool", 1, 2, &p) == 0);
	jobs_init(jobs, 4, &r);
	jobs[0].wait_gate = true;
	CHECK(pool_submit(p, r.loop, POOL_FAST, work, done, &jobs[0]) == 0);
	WAIT_FOR(atomic_load(&jobs[0].worked) == 1, 5000); /* running: not queued */
	CHECK(pool_submit(p, r.loop, POOL_FAST, work, done, &jobs[1]) == 0);
	CHECK(pool_submit(p, r.loop, POOL_SLOW, work, done, &jobs[2]) == 0);
	CHECK(pool_submit(p, r.loop, POOL_FAST, work, done, &jobs[3]) == -EAGAIN);
	gate_set(true);
	WAIT_FOR(atomic_load(&ndone) == 3, 5000);
	CHECK(atomic_load(&ndone) == 3);
	CHECK(jobs[3].dones == 0 && jobs[3].worked == 0);
	/* Room again. */
	CHECK(pool_submit(p, r.loop, POOL_FAST, work, done, &jobs[3]) == 0);
	WAIT_FOR(atomic_load(&ndone) == 4, 5000);
	CHECK(jobs[3].dones == 1);
	pool_free(p);
	runner_join(&r);
}

/* Two workers: slow jobs get one of them, so a fast job runs while two
 * slow ones are held. */
static void test_slow_jobs_leave_a_worker_to_fast_ones(void)
{
	static struct job jobs[3];
	struct runner r;
	pool_t *p;

	runner_start(&r);
	gate_set(false);
	CHECK(pool_start("test-pool", 2, 8, &p) == 0);
	jobs_init(jobs, 3, &r);
	jobs[0].wait_gate = jobs[1].wait_gate = true;
	CHECK(pool_submit(p, r.loop, POOL_SLOW, work, done, &jobs[0]) == 0);
	CHECK(pool_submit(p, r.loop, POOL_SLOW, work, done, &jobs[1]) == 0);
	WAIT_FOR(atomic_load(&jobs[0].worked) == 1, 5000);
	CHECK(pool_submit(p, r.loop, POOL_FAST, work, done, &jobs[2]) == 0);
	WAIT_FOR(atomic_load(&jobs[2].dones) == 1, 5000);
	CHECK(jobs[2].dones == 1 && jobs[2].status == 0);
	CHECK(jobs[1].worked == 0); /* the second slow job waits its turn */
	gate_set(true);
	WAIT_FOR(atomic_load(&ndone) == 3, 5000);
	CHECK(jobs[0].dones == 1 && jobs[1].dones == 1);
	pool_free(p);
	runner_join(&r);
}

/* Dones posted to a loop that stopped are run by loop_free: the job's
 * context is still released exactly once. */
static void noop(void *arg)
{
}

static void test_done_after_the_loop_stopped(void)
{
	static struct job jobs[3];
	struct stopper st = {0};
	struct runner r;
	pthread_t t;
	pool_t *p;
	int rc;

	runner_start(&r);
	gate_set(false);
	CHECK(pool_start("test-pool", 1, 8, &p) == 0);
	jobs_init(jobs, 3, &r);
	jobs[0].wait_gate = true;
	for (int i = 0; i < 3; i++)
		CHECK(pool_submit(p, r.loop, POOL_FAST, work, done, &jobs[i]) == 0);
	WAIT_FOR(atomic_load(&jobs[0].worked) == 1, 5000);
	loop_stop(r.loop);
	pthread_join(r.thread, NULL);
	st.p = p;
	pthread_create(&t, NULL, stop_main, &st);
	/* The stop refuses jobs and cancels the queued ones in one step:
	 * once refused, jobs 1 and 2 are cancelled. The probes (no done)
	 * are dropped by the cancel. */
	while ((rc = pool_submit(p, NULL, POOL_FAST, noop, NULL, NULL)) != -ESHUTDOWN)
		sleep_ms(1);
	gate_set(true);
	pthread_join(t, NULL);
	CHECK(atomic_load(&ndone) == 0); /* nobody runs the loop */
	loop_free(r.loop);
	CHECK(atomic_load(&ndone) == 3);
	CHECK(jobs[0].status == 0 && jobs[1].status == -ECANCELED && jobs[2].status == -ECANCELED);
	pool_free(p);
}

int main(void)
{
	TEST_RUN(test_work_on_a_worker_done_on_the_loop);
	TEST_RUN(test_without_a_loop_done_follows_work);
	TEST_RUN(test_stop_cancels_queued_and_finishes_running);
	TEST_RUN(test_full_queue_refuses);
	TEST_RUN(test_slow_jobs_leave_a_worker_to_fast_ones);
	TEST_RUN(test_done_after_the_loop_stopped);
	TEST_EXIT();
}
