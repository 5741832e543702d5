#ifndef CHORUS_AUTH_LIMIT_H
#define CHORUS_AUTH_LIMIT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Rate limits by name (a user, a client address, an API key): a token
 * bucket per name in a fixed table, so memory is bounded whatever a
 * client sends. A full bucket is the same as no entry, so when a set of
 * the table is full the fullest bucket gives way and no limit is lost
 * unless every bucket of the set is draining; the table is sized so that
 * takes more names at once than a node sees. Thread-safe (one mutex: a
 * take is a hash and a few arithmetic operations).
 */
typedef struct auth_limit auth_limit_t;

/* burst: tokens a new name starts with; per_s: tokens regained per second. */
auth_limit_t *auth_limit_new(size_t slots, double burst, double per_s);
void auth_limit_free(auth_limit_t *l);

/* Takes one token for name: 0 when allowed, else the whole seconds (>= 1)
 * until the next token, for Retry-After. */
int auth_limit_take(auth_limit_t *l, const char *name, size_t len, int64_t now_ms);

/* Takes n tokens at once, or none: 0 when allowed, else the whole
 * seconds until n are there (n above the burst never is: the caller
 * bounds n by it). */
int auth_limit_take_n(auth_limit_t *l, const char *name, size_t len, double n, int64_t now_ms);

/* Gives name back its whole burst (a login that succeeded). */
void auth_limit_reset(auth_limit_t *l, const char *name, size_t len);

#endif
