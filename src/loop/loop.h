#ifndef CHORUS_LOOP_LOOP_H
#define CHORUS_LOOP_LOOP_H

#include <stdbool.h>
#include <stdint.h>

/*
 * An event loop: one epoll instance driven by one thread, after redis's
 * ae.c and libuv's uv_run. It knows file descriptors, timers, work posted
 * by other threads and frees that must wait; it knows nothing of HTTP.
 *
 * One round of loop_run:
 *   1. wait for events (not at all when the before-sleep hook asked for
 *      another round, otherwise until the next timer or a post);
 *   2. call the callbacks of ready fds, in the order epoll gave them; the
 *      wake-up eventfd is one of them and runs what loop_post queued, in
 *      posting order;
 *   3. run the timers that are due;
 *   4. call the before-sleep hook (batched work: writes that yielded);
 *   5. run the deferred frees (loop_defer).
 *
 * Threads: everything here is for the loop's own thread (the one inside
 * loop_run, or any one thread before loop_run starts, setting up), except
 * loop_post and loop_stop, which any thread may call.
 * Callbacks must not block: a slow disk read or a database query belongs
 * on a worker pool (loop/pool.h).
 *
 * Includes nothing above util/, so every subsystem may use it.
 */
typedef struct loop loop_t;

/* Creates a loop (epoll instance and wake-up eventfd). 0 or -errno. */
int loop_new(loop_t **out);

/*
 * Frees l once no thread runs it. Posts that arrived after loop_run
 * returned are run first, here on the caller's thread, so whatever they
 * own is released (their functions see connections already closed).
 * NULL is allowed.
 */
void loop_free(loop_t *l);

/* Runs rounds on the calling thread until loop_stop; returns after the
 * round that saw the stop (its timers, hook and frees included). */
void loop_run(loop_t *l);

/* Makes loop_run return after its current round. Any thread. */
void loop_stop(loop_t *l);

/* Whether the caller is l's thread (inside loop_run). */
bool loop_on_thread(const loop_t *l);

/* The monotonic time (util/clock.h), read once per wake-up: the same
 * value for every callback of a round. */
int64_t loop_now_ms(const loop_t *l);

/*
 * Runs fn(arg) on l's thread in the round after this call, in the order
 * posted. Any thread; never runs fn inline, even on l's own thread. Every
 * post runs exactly once: by the loop, or by loop_free after it stopped.
 */
void loop_post(loop_t *l, void (*fn)(void *arg), void *arg);

/* ---- file descriptors ---- */

enum {
	LOOP_IN = 1u << 0,   /* readable (or the peer closed its side) */
	LOOP_OUT = 1u << 1,  /* writable */
	LOOP_ERR = 1u << 2,  /* error or hang-up; reported whatever was asked */
	LOOP_EDGE = 1u << 3, /* registration only: edge-triggered */
};

struct loop_io;
/* events: LOOP_IN | LOOP_OUT | LOOP_ERR as they came. */
typedef void (*loop_io_fn)(struct loop_io *io, unsigned events);

/* Embedded in its owner; the loop keeps no copy. */
struct loop_io {
	loop_io_fn fn;
	void *ud; /* the owner's */
	int fd;   /* -1 while not registered */
};

/*
 * Watches fd for events (LOOP_IN, LOOP_OUT, LOOP_EDGE) and calls fn(io,
 * events) for them. io must stay valid until stopped and, after that,
 * until the round ends (see loop_defer). fd stays the caller's. 0 or
 * -errno.
 */
int loop_io_start(loop_t *l, struct loop_io *io, int fd, unsigned events, loop_io_fn fn, void *ud);

/* Stops watching io->fd (before the caller closes it). Events already
 * gathered for io in this round are dropped: fn is not called again. */
void loop_io_stop(loop_t *l, struct loop_io *io);

/* ---- timers ---- */

/* Embedded in its owner. Timers are kept in a list ordered by time:
 * meant for a few per loop (a once-a-second sweep), not one per request. */
struct loop_timer {
	int64_t due_ms;
	void (*fn)(struct loop_timer *t);
	void *ud; /* the owner's */
	struct loop_timer *next;
	bool armed;
};

/* Calls fn(t) once, in phase 3 of the first round at least after_ms
 * after loop_now_ms; one (re)started by a timer callback waits for the
 * next round, so a periodic timer restarts itself from fn. Restarting an
 * armed timer moves it. */
void loop_timer_start(loop_t *l, struct loop_timer *t, int64_t after_ms,
		      void (*fn)(struct loop_timer *t), void *ud);
void loop_timer_stop(loop_t *l, struct loop_timer *t);

/* ---- batching and deferred frees ---- */

/*
 * One hook per loop, called in every round after the callbacks and timers
 * (phase 4). It returns true when it left work for the next round (a
 * write that used its budget): the loop then polls without sleeping.
 * NULL removes it.
 */
void loop_before_sleep(loop_t *l, bool (*fn)(void *ud), void *ud);

/* Embedded in what is to be freed. */
struct loop_deferred {
	struct loop_deferred *next;
	void (*fn)(struct loop_deferred *d);
};

/*
 * Calls fn(d) at the end of the round (phase 5), when no callback of the
 * round can still hold a pointer to d's owner: how an object that is
 * closed inside its own callback gets freed (redis's freeClientAsync).
 * Deferred while the frees run, fn waits for the next round.
 */
void loop_defer(loop_t *l, struct loop_deferred *d, void (*fn)(struct loop_deferred *d));

#endif
