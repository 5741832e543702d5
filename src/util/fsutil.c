#include "util/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/xalloc.h"

int fs_mkdir_p(const char *dir, mode_t mode)
{
	char path[PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, n + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int fs_read_full(int fd, void *p, size_t len)
{
	char *c = p;

	while (len > 0) {
		ssize_t r = read(fd, c, len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		c += r;
		len -= (size_t)r;
	}
	return 0;
}

int fs_pread_full(int fd, void *p, size_t len, off_t off)
{
	char *c = p;

	while (len > 0) {
		ssize_t r = pread(fd, c, len, off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		c += r;
		off += r;
		len -= (size_t)r;
	}
	return 0;
}

int fs_write_full(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len > 0) {
		ssize_t w = write(fd, c, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += w;
		len -= (size_t)w;
	}
	return 0;
}

int fs_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Writes a temporary file and renames it to path; with sync, the data is
 * made durable before the rename and the directory after it. */
static int write_rename(const char *path, const char *tmp_dir, const void *data, size_t len,
			mode_t mode, bool sync, int *fd_out)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	int fd = -1, rc, n;

	/* The pid and a counter keep concurrent writers of one path apart. */
	static _Atomic unsigned long seq;
	if (tmp_dir)
		n = snprintf(tmp, sizeof(tmp), "%s/%ld.%lu", tmp_dir, (long)getpid(), seq++);
	else
		n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.%lu", path, (long)getpid(), seq++);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	rc = fs_write_full(fd, data, len);
	if (rc == 0 && sync && fdatasync(fd) < 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		close(fd);
		unlink(tmp);
		return rc;
	}
	if (fd_out) {
		*fd_out = fd;
	} else if (close(fd) < 0) {
		return -errno;
	}
	if (!sync)
		return 0;
	snprintf(dir, sizeof(dir), "%s", path);
	return fs_sync_dir(dirname(dir));
}

int fs_write_atomic(const char *path, const char *tmp_dir, const void *data, size_t len,
		    mode_t mode)
{
	return write_rename(path, tmp_dir, data, len, mode, true, NULL);
}

int fs_write_renamed(const char *path, const char *tmp_dir, const void *data, size_t len,
		     mode_t mode, int *fd_out)
{
	return write_rename(path, tmp_dir, data, len, mode, false, fd_out);
}

int fs_sweep_temporaries(const char *tmp_dir)
{
	DIR *d = opendir(tmp_dir);
	struct dirent *e;
	int removed = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char *end, path[PATH_MAX];
		long pid = strtol(e->d_name, &end, 10);

		if (end == e->d_name || *end != '.' || pid <= 0)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
			continue; /* its writer may still be at work */
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", tmp_dir, e->d_name) <
			    sizeof(path) &&
		    unlink(path) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

int fs_read_all(const char *path, size_t max, char **out, size_t *outlen)
{
	struct stat st;
	char *p;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if ((size_t)st.st_size > max) {
		close(fd);
		return -EFBIG;
	}
	p = xmalloc((size_t)st.st_size + 1);
	rc = fs_read_full(fd, p, (size_t)st.st_size);
	close(fd);
	if (rc < 0) {
		free(p);
		return rc;
	}
	p[st.st_size] = '\0';
	*out = p;
	*outlen = (size_t)st.st_size;
	return 0;
}
