#ifndef CHORUS_CLIENT_RESUME_H
#define CHORUS_CLIENT_RESUME_H

#include <stddef.h>
#include <stdint.h>

/*
 * What `chorus upload` remembers between runs: the URL of each upload it
 * started and has not finished, so that the same command run again after
 * a kill or a lost connection goes on where the server stopped instead of
 * sending the file again. One small text file, by default
 * $XDG_STATE_HOME/chorus/uploads (~/.local/state/chorus/uploads), mode
 * 0600, one "KEY URL CREATED" line an upload, where KEY names the file
 * and the endpoint (resume_key) and CREATED is the Unix time it was
 * written; lines older than RESUME_MAX_AGE_S are dropped when the file is
 * written. Several runs may share it: every change is a locked
 * read-modify-write, written atomically.
 */

#define RESUME_MAX_AGE_S (30 * 86400)

typedef struct resume resume_t;

/*
 * Opens the state file at path, or the default one when path is NULL,
 * creating its directory (0700). 0, or -errno with the reason in err
 * (no $HOME and no $XDG_STATE_HOME: -ENOENT).
 */
int resume_open(const char *path, resume_t **out, char *err, size_t errlen);
void resume_close(resume_t *r);
const char *resume_path(const resume_t *r);

/* The key of a file at an endpoint: the hex sha256 of the endpoint, the
 * file's absolute path, size and mtime. A file changed since (another
 * size or mtime) has another key, so it is sent again from its start. */
void resume_key(const char *endpoint, const char *path, uint64_t size, int64_t mtime_ns,
		char key[65]);

/* The URL remembered for key into url: 1, 0 when there is none, or
 * -errno. */
int resume_get(resume_t *r, const char *key, char *url, size_t urllen);
/* Remembers url for key (replacing any). 0 or -errno. */
int resume_put(resume_t *r, const char *key, const char *url);
/* Forgets key. 0 or -errno. */
int resume_forget(resume_t *r, const char *key);

#endif
