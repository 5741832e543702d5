/*
 * The event loop (loop.h has the phases of a round).
 *
 * The design is redis's ae.c with libuv's discipline: one epoll instance
 * per loop, callbacks registered per fd in a struct the owner embeds
 * (libuv's uv__io_t), so dispatching an event costs one indirect call and
 * no lookup or allocation. Other threads reach the loop through a queue
 * guarded by a mutex and an eventfd that wakes the loop; the queue is taken
 * whole under the lock and run outside it, so a posted function may post
 * again or take other locks.
 *
 * An fd stopped in the middle of a round may still have an event in the
 * array epoll returned: loop_io_stop sets io->fd to -1 and the dispatch
 * skips such entries, which is why the io's memory must outlive the round
 * and why frees are deferred to its end (phase 5).
 *
 * Timers are a sorted singly-linked list: chorus has one or two per loop,
 * and a heap would be code without a user.
 */
#include "loop/loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/xalloc.h"

#define MAX_EVENTS 256

struct post {
	void (*fn)(void *);
	void *arg;
	struct post *next;
};

struct loop {
	int epfd;
	struct loop_io wake; /* the eventfd that loop_post writes */
	pthread_mutex_t post_lock;
	struct post *posts, **posts_tail; /* in posting order */
	struct loop_timer *timers;        /* by due_ms */
	struct loop_deferred *deferred;
	bool (*before_sleep)(void *ud);
	void *before_sleep_ud;
	int64_t now_ms;
	pthread_t thread;
	_Atomic bool running; /* thread is valid */
	_Atomic bool stopping;
};

/* Takes the whole queue; NULL when empty. */
static struct post *take_posts(struct loop *l)
{
	struct post *p;

	pthread_mutex_lock(&l->post_lock);
	p = l->posts;
	l->posts = NULL;
	l->posts_tail = &l->posts;
	pthread_mutex_unlock(&l->post_lock);
	return p;
}

static void run_post_list(struct post *p)
{
	while (p) {
		struct post *next = p->next;
		p->fn(p->arg);
		free(p);
		p = next;
	}
}

static void wake_cb(struct loop_io *io, unsigned events)
{
	struct loop *l = io->ud;
	uint64_t v;

	/* Reset the counter before taking the queue: a post after the take
	 * writes again and wakes the next round. */
	if (read(l->wake.fd, &v, sizeof(v)) < 0)
		(void)0; /* EAGAIN: another round already took it */
	run_post_list(take_posts(l));
}

int loop_new(loop_t **out)
{
	struct loop *l = xcalloc(1, sizeof(*l));
	int efd, rc;

	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	l->wake.fd = -1;
	if (l->epfd < 0 || efd < 0) {
		rc = -errno;
		goto fail;
	}
	pthread_mutex_init(&l->post_lock, NULL);
	l->posts_tail = &l->posts;
	l->now_ms = mono_ms();
	rc = loop_io_start(l, &l->wake, efd, LOOP_IN, wake_cb, l);
	if (rc < 0) {
		pthread_mutex_destroy(&l->post_lock);
		goto fail;
	}
	*out = l;
	return 0;
fail:
	if (efd >= 0)
		close(efd);
	if (l->epfd >= 0)
		close(l->epfd);
	free(l);
	return rc;
}

static void run_deferred(struct loop *l)
{
	struct loop_deferred *d = l->deferred;

	l->deferred = NULL;
	while (d) {
		struct loop_deferred *next = d->next;
		d->fn(d);
		d = next;
	}
}

void loop_free(loop_t *l)
{
	struct post *p;

	if (!l)
		return;
	/* A post may post again (an answer that frees, say); run until none. */
	while ((p = take_posts(l)) != NULL || l->deferred) {
		run_post_list(p);
		run_deferred(l);
	}
	close(l->wake.fd);
	close(l->epfd);
	pthread_mutex_destroy(&l->post_lock);
	free(l);
}

void loop_post(loop_t *l, void (*fn)(void *arg), void *arg)
{
	struct post *p = xmalloc(sizeof(*p));
	uint64_t one = 1;

	p->fn = fn;
	p->arg = arg;
	p->next = NULL;
	pthread_mutex_lock(&l->post_lock);
	*l->posts_tail = p;
	l->posts_tail = &p->next;
	pthread_mutex_unlock(&l->post_lock);
	if (write(l->wake.fd, &one, sizeof(one)) < 0)
		(void)0; /* the counter is saturated: a wake-up is pending anyway */
}

static void stop_now(void *arg)
{
	struct loop *l = arg;

	l->stopping = true;
}

void loop_stop(loop_t *l)
{
	/* Through the queue: it wakes the loop, and posts made before the stop
	 * still run in this loop rather than in loop_free. */
	loop_post(l, stop_now, l);
}

bool loop_on_thread(const loop_t *l)
{
	return l->running && pthread_equal(l->thread, pthread_self());
}

int64_t loop_now_ms(const loop_t *l)
{
	return l->now_ms;
}

/* ---- file descriptors ---- */

int loop_io_start(loop_t *l, struct loop_io *io, int fd, unsigned events, loop_io_fn fn, void *ud)
{
	struct epoll_event ev = {0};

	if (events & LOOP_IN)
		ev.events |= EPOLLIN | EPOLLRDHUP;
	if (events & LOOP_OUT)
		ev.events |= EPOLLOUT;
	if (events & LOOP_EDGE)
		ev.events |= EPOLLET;
	ev.data.ptr = io;
	io->fn = fn;
	io->ud = ud;
	io->fd = fd;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		io->fd = -1;
		return -errno;
	}
	return 0;
}

void loop_io_stop(loop_t *l, struct loop_io *io)
{
	if (io->fd < 0)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->fd = -1;
}

/* ---- timers ---- */

void loop_timer_stop(loop_t *l, struct loop_timer *t)
{
	struct loop_timer **pp;

	if (!t->armed)
		return;
	for (pp = &l->timers; *pp != t; pp = &(*pp)->next)
		;
	*pp = t->next;
	t->next = NULL;
	t->armed = false;
}

void loop_timer_start(loop_t *l, struct loop_timer *t, int64_t after_ms,
		      void (*fn)(struct loop_timer *t), void *ud)
{
	struct loop_timer **pp;

	loop_timer_stop(l, t);
	t->due_ms = l->now_ms + (after_ms > 0 ? after_ms : 0);
	t->fn = fn;
	t->ud = ud;
	for (pp = &l->timers; *pp && (*pp)->due_ms <= t->due_ms; pp = &(*pp)->next)
		;
	t->next = *pp;
	*pp = t;
	t->armed = true;
}

/* Runs the timers due now. Those (re)started by a callback wait for the
 * next round even when due at once, so a timer of 0 ms cannot spin here. */
static void run_timers(struct loop *l)
{
	struct loop_timer *due = NULL, **tail = &due;

	while (l->timers && l->timers->due_ms <= l->now_ms) {
		struct loop_timer *t = l->timers;
		l->timers = t->next;
		t->armed = false;
		t->next = NULL;
		*tail = t;
		tail = &t->next;
	}
	while (due) {
		struct loop_timer *t = due;
		due = t->next;
		t->next = NULL;
		t->fn(t);
	}
}

/* ms until the next timer, -1 (no limit) without one. */
static int next_timeout(const struct loop *l)
{
	int64_t d;

	if (!l->timers)
		return -1;
	d = l->timers->due_ms - mono_ms();
	if (d <= 0)
		return 0;
	return d > 60000 ? 60000 : (int)d;
}

/* ---- batching and deferred frees ---- */

void loop_before_sleep(loop_t *l, bool (*fn)(void *ud), void *ud)
{
	l->before_sleep = fn;
	l->before_sleep_ud = ud;
}

void loop_defer(loop_t *l, struct loop_deferred *d, void (*fn)(struct loop_deferred *d))
{
	d->fn = fn;
	d->next = l->deferred;
	l->deferred = d;
}

/* ---- the rounds ---- */

void loop_run(loop_t *l)
{
	struct epoll_event events[MAX_EVENTS];
	bool more = false;

	l->thread = pthread_self();
	l->running = true;
	l->now_ms = mono_ms();
	while (!l->stopping) {
		int n = epoll_wait(l->epfd, events, MAX_EVENTS, more ? 0 : next_timeout(l));

		l->now_ms = mono_ms();
		for (int i = 0; i < n; i++) {
			struct loop_io *io = events[i].data.ptr;
			uint32_t e = events[i].events;
			unsigned got = 0;

			if (io->fd < 0)
				continue; /* stopped earlier in this round */
			if (e & (EPOLLIN | EPOLLRDHUP))
				got |= LOOP_IN;
			if (e & EPOLLOUT)
				got |= LOOP_OUT;
			if (e & (EPOLLERR | EPOLLHUP))
				got |= LOOP_ERR;
			io->fn(io, got);
		}
		run_timers(l);
		more = l->before_sleep && l->before_sleep(l->before_sleep_ud);
		run_deferred(l);
	}
	/* Frees deferred by the last frees: nothing runs after this. */
	while (l->deferred)
		run_deferred(l);
	l->running = false;
	l->stopping = false;
}
