/*
 * The worker pool (pool.h has the contract).
 *
 * One mutex and one condition variable guard two FIFO queues, fast and
 * slow. A worker takes the oldest fast job, or else the oldest slow job if
 * fewer than slow_max slow jobs are running (libuv's threadpool.c keeps
 * slow I/O to half its threads the same way). Work runs outside the lock;
 * its done is posted to the job's loop, so the worker never waits on a
 * loop and a loop never waits on a worker.
 *
 * Shutdown is decided under the lock, at one instant: every job queued
 * then is cancelled (its done gets -ECANCELED, its work never runs), every
 * job running then completes and gets 0. Workers notice the stop when they
 * next look at the queue and leave; pool_stop joins them. The pool stays
 * allocated until pool_free, so a late pool_submit (a request arriving
 * during the drain) gets -ESHUTDOWN rather than touching freed memory.
 */
#include "loop/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/thread.h"
#include "util/xalloc.h"

struct job {
	struct job *next;
	loop_t *loop;
	pool_work_fn work;
	pool_done_fn done;
	void *arg;
	int status;
	enum pool_kind kind;
};

struct queue {
	struct job *head, **tail;
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct queue fast, slow;
	int queued, max_queued;
	int slow_running, slow_max;
	int nthreads;
	pthread_t *threads;
	bool stopping; /* no more jobs; workers leave */
	bool joined;
	char name[16];
};

static void queue_init(struct queue *q)
{
	q->head = NULL;
	q->tail = &q->head;
}

static void queue_push(struct queue *q, struct job *j)
{
	j->next = NULL;
	*q->tail = j;
	q->tail = &j->next;
}

static struct job *queue_pop(struct queue *q)
{
	struct job *j = q->head;

	if (j) {
		q->head = j->next;
		if (!q->head)
			q->tail = &q->head;
	}
	return j;
}

static void run_done(void *arg)
{
	struct job *j = arg;

	j->done(j->arg, j->status);
	free(j);
}

/* j's done, where it belongs; j is gone after this. */
static void deliver(struct job *j)
{
	if (!j->done)
		free(j);
	else if (j->loop)
		loop_post(j->loop, run_done, j);
	else
		run_done(j);
}

/* Under the lock: the next job this worker may run, or NULL. */
static struct job *next_job(struct pool *p)
{
	struct job *j = queue_pop(&p->fast);

	if (!j && p->slow_running < p->slow_max) {
		j = queue_pop(&p->slow);
		if (j)
			p->slow_running++;
	}
	if (j)
		p->queued--;
	return j;
}

static void *worker_main(void *arg)
{
	struct pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct job *j = NULL;
		enum pool_kind kind;

		while (!p->stopping && !(j = next_job(p)))
			pthread_cond_wait(&p->cond, &p->lock);
		if (!j)
			break; /* stopping: what is queued is pool_stop's to cancel */
		pthread_mutex_unlock(&p->lock);
		kind = j->kind;
		j->work(j->arg);
		j->status = 0;
		deliver(j);
		pthread_mutex_lock(&p->lock);
		if (kind == POOL_SLOW) {
			p->slow_running--;
			/* A slow job may wait for this slot while others sleep. */
			if (p->slow.head)
				pthread_cond_signal(&p->cond);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int pool_start(const char *name, int threads, int max_queued, pool_t **out)
{
	struct pool *p;
	int rc;

	if (threads < 1 || max_queued < 1)
		return -EINVAL;
	p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	queue_init(&p->fast);
	queue_init(&p->slow);
	p->max_queued = max_queued;
	p->slow_max = threads / 2 > 0 ? threads / 2 : 1;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->threads = xcalloc((size_t)threads, sizeof(*p->threads));
	for (int i = 0; i < threads; i++) {
		rc = thread_start(&p->threads[i], worker_main, p);
		if (rc != 0) {
			pool_free(p); /* stops and joins the ones started */
			return -rc;
		}
		pthread_setname_np(p->threads[i], p->name);
		p->nthreads++;
	}
	*out = p;
	return 0;
}

int pool_submit(pool_t *p, loop_t *l, enum pool_kind kind, pool_work_fn work, pool_done_fn done,
		void *arg)
{
	struct job *j = xmalloc(sizeof(*j));
	int rc = 0;

	j->loop = l;
	j->work = work;
	j->done = done;
	j->arg = arg;
	j->status = 0;
	j->kind = kind;
	pthread_mutex_lock(&p->lock);
	if (p->stopping)
		rc = -ESHUTDOWN;
	else if (p->queued >= p->max_queued)
		rc = -EAGAIN;
	if (rc == 0) {
		queue_push(kind == POOL_SLOW ? &p->slow : &p->fast, j);
		p->queued++;
		pthread_cond_signal(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	if (rc < 0)
		free(j);
	return rc;
}

void pool_stop(pool_t *p)
{
	struct queue cancel;
	struct job *j;

	if (!p)
		return;
	queue_init(&cancel);
	pthread_mutex_lock(&p->lock);
	if (p->joined) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	p->stopping = true;
	/* Queue order: the fast jobs, then the slow. */
	while ((j = queue_pop(&p->fast)) != NULL)
		queue_push(&cancel, j);
	while ((j = queue_pop(&p->slow)) != NULL)
		queue_push(&cancel, j);
	p->queued = 0;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);

	while ((j = queue_pop(&cancel)) != NULL) {
		j->status = -ECANCELED;
		deliver(j);
	}
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_lock(&p->lock);
	p->joined = true;
	pthread_mutex_unlock(&p->lock);
}

void pool_free(pool_t *p)
{
	if (!p)
		return;
	pool_stop(p);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}
