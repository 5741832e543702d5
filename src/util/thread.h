#ifndef CHORUS_UTIL_THREAD_H
#define CHORUS_UTIL_THREAD_H

#include <pthread.h>

/*
 * pthread_create for every thread of chorus: the new thread starts with
 * every signal blocked. A process-directed SIGTERM goes to a thread that
 * does not block it, so it can only ever reach the main thread: before
 * `serve` blocks it (start-up: the default action ends the process, as
 * Ctrl-C should), or in its sigwait (the drain). A worker started early
 * that left it unblocked would take it and end the process mid-serve.
 * Returns pthread_create's result.
 */
int thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

#endif
