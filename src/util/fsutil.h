#ifndef CHORUS_UTIL_FSUTIL_H
#define CHORUS_UTIL_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Creates dir and its parents (mode 0755 unless given). 0 or -errno. */
int fs_mkdir_p(const char *dir, mode_t mode);

/*
 * Writes data to path atomically and durably: a temporary name in the same
 * directory, fdatasync, rename over path, fsync of the directory. Readers see
 * the old file or the new one, never a part. 0 or -errno; on failure the
 * temporary file is removed.
 */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Reads a whole file of at most max bytes into a malloc'd buffer. 0 or -errno
 * (-EFBIG past max). */
int fs_read_all(const char *path, size_t max, char **out, size_t *outlen);

/* Reads exactly len bytes from fd (retrying short reads and EINTR). 0 or -errno
 * (-EIO on a premature end of file). */
int fs_read_full(int fd, void *p, size_t len);
int fs_write_full(int fd, const void *p, size_t len);

/* fsync of a directory, so a rename or unlink in it is durable. */
int fs_sync_dir(const char *dir);

#endif
