#ifndef CHORUS_LOOP_POOL_H
#define CHORUS_LOOP_POOL_H

#include "loop/loop.h"

/*
 * The worker pool: N threads for work that blocks (disk reads, sealing,
 * database scans), so no event loop ever does (libuv's uv_queue_work,
 * redis's bio.c). The node owns one pool and hands it to whoever needs it
 * (struct api, the cache).
 *
 * A job is work(arg) on a worker, then done(arg, status) on the loop that
 * was named at submission: the caller's context comes back to the thread
 * that owns it, and done is where it is freed. done is called exactly once
 * for every job pool_submit accepted, whatever happens:
 *
 *   status 0            work(arg) ran;
 *   status -ECANCELED   pool_stop came first: work was not run.
 *
 * The queue is bounded: a full queue refuses the job (-EAGAIN) and the
 * caller says so (a 503), rather than queueing without limit.
 *
 * Slow jobs (a report, an ingest) may occupy at most half the workers
 * (at least one), as libuv does with its slow I/O: short jobs (a chunk to
 * reseal for a peer, an unlink) always find a worker, however many reports
 * are running.
 */
typedef struct pool pool_t;

enum pool_kind {
	POOL_FAST, /* milliseconds: one chunk read and sealed, a file unlinked */
	POOL_SLOW, /* seconds or more: a report's scan, an upload, a transcode */
};

/* On a worker; may block. */
typedef void (*pool_work_fn)(void *arg);
/* On the submitting loop (or see pool_submit); must not block. */
typedef void (*pool_done_fn)(void *arg, int status);

/*
 * Starts threads (>= 1) workers named name (at most 15 characters, for
 * ps and gdb) with room for max_queued jobs waiting (>= 1). 0 or -errno.
 */
int pool_start(const char *name, int threads, int max_queued, pool_t **out);

/*
 * Queues work(arg); done(arg, status) follows on loop l's thread. Any
 * thread.
 *
 * l NULL (a caller with no loop, a cache thread say): done runs on the
 * worker right after work, or, cancelled, on the thread in pool_stop.
 * done NULL: nothing is called after work (a cancelled job is dropped;
 * only for arg that needs no freeing).
 *
 * Returns 0, or, with nothing called: -EAGAIN (the queue is full: refuse
 * or retry later), -ESHUTDOWN (pool_stop was called: do the work another
 * way or give it up).
 */
int pool_submit(pool_t *p, loop_t *l, enum pool_kind kind, pool_work_fn work, pool_done_fn done,
		void *arg);

/*
 * Refuses new jobs, cancels every queued one (its done gets -ECANCELED;
 * fast jobs first, each kind in the order queued), waits for the running
 * ones (their done gets 0) and stops the workers. The dones go to their
 * loops, which must still be running to take them (or loop_free runs
 * them). From one thread, not a worker; a second call returns at once;
 * NULL is allowed.
 */
void pool_stop(pool_t *p);

/* Frees p (stopping it first if needed), once no thread may call
 * pool_submit any more. NULL is allowed. */
void pool_free(pool_t *p);

#endif
