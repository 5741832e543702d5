#ifndef CHORUS_UTIL_FSUTIL_H
#define CHORUS_UTIL_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Creates dir and its parents (mode 0755 unless given). 0 or -errno. */
int fs_mkdir_p(const char *dir, mode_t mode);

/*
 * Writes data to path atomically and durably: a temporary file, fdatasync,
 * rename over path, fsync of path's directory. Readers see the old file or
 * the new one, never a part. The temporary file is tmp_dir/PID.N (tmp_dir
 * must be on path's file system), or path.tmp.PID.N when tmp_dir is NULL;
 * the pid lets a later process tell a crashed writer's leftovers
 * (fs_sweep_temporaries). 0 or -errno; on failure the temporary is removed.
 */
int fs_write_atomic(const char *path, const char *tmp_dir, const void *data, size_t len,
		    mode_t mode);

/* The same without any sync: the rename is atomic but nothing is durable
 * yet. *fd_out is the file, still open, for the caller to fdatasync (and
 * then fsync path's directory) before relying on it. */
int fs_write_renamed(const char *path, const char *tmp_dir, const void *data, size_t len,
		     mode_t mode, int *fd_out);

/* Removes the files of tmp_dir whose writer (the PID in "PID.N") is no
 * longer running. Returns how many were removed. */
int fs_sweep_temporaries(const char *tmp_dir);

/* Reads a whole file of at most max bytes into a malloc'd buffer. 0 or -errno
 * (-EFBIG past max). */
int fs_read_all(const char *path, size_t max, char **out, size_t *outlen);

/* Reads exactly len bytes from fd (retrying short reads and EINTR). 0 or -errno
 * (-EIO on a premature end of file). */
int fs_read_full(int fd, void *p, size_t len);
/* The same at an offset, leaving the fd's position alone (shared fds). */
int fs_pread_full(int fd, void *p, size_t len, off_t off);
int fs_write_full(int fd, const void *p, size_t len);

/* fsync of a directory, so a rename or unlink in it is durable. */
int fs_sync_dir(const char *dir);

#endif
