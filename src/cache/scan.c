/*
 * The start-up scan: the index rebuilt from the cache directory, so the
 * cache stays warm across restarts.
 *
 * A file at its final name is a whole, verified chunk (fills rename into
 * place), so the scan trusts the names it finds and takes the plaintext's
 * size from the file's; temporaries are what a crash left in the middle
 * of a fill, and go. There is no record of the LRU order: it is rebuilt
 * from the files' times, the later of atime and mtime, and the budget
 * applied (it may have shrunk since the last run). It runs in cache_open
 * before any thread starts, so it needs no lock; the directory lock keeps
 * other processes out.
 */
#include "cache/cache_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/xalloc.h"

/* "BLOB-IIIIIIII" in fan-out directory BB, as cache__chunk_path writes it. */
static int parse_name(const char *name, const char *fanout, char blob[BLOB_MAX + 1],
		      uint32_t *index)
{
	const char *dash = strrchr(name, '-');
	size_t blen;

	if (!dash || strlen(dash + 1) != 8)
		return -1;
	blen = (size_t)(dash - name);
	if (blen < 2 || blen > BLOB_MAX || strncmp(name, fanout, 2) != 0)
		return -1;
	memcpy(blob, name, blen);
	blob[blen] = '\0';
	if (!cache__blob_ok(blob, BLOB_MAX) || !cache__blob_ok(dash + 1, 8))
		return -1;
	*index = (uint32_t)strtoul(dash + 1, NULL, 16);
	return 0;
}

static bool is_fanout(const char *name)
{
	return strlen(name) == 2 && cache__blob_ok(name, 2);
}

static bool ends_with(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);

	return n >= s && strcmp(name + n - s, suffix) == 0;
}

/* A fill's temporary, or an evicted chunk a crash left renamed aside. */
static bool is_tmp(const char *name)
{
	return ends_with(name, TMP_SUFFIX) || ends_with(name, GONE_SUFFIX);
}

struct found {
	struct entry *e;
	struct timespec t;
};

static int found_cmp(const void *a, const void *b)
{
	const struct timespec *x = &((const struct found *)a)->t,
			      *y = &((const struct found *)b)->t;

	if (x->tv_sec != y->tv_sec)
		return x->tv_sec < y->tv_sec ? -1 : 1;
	return (x->tv_nsec > y->tv_nsec) - (x->tv_nsec < y->tv_nsec);
}

/* The later of access and modification: a fill sets the mtime, a read
 * the atime (at least daily under relatime), so this is when the chunk
 * was last known to be used. */
static struct timespec last_use(const struct stat *st)
{
	const struct timespec *a = &st->st_atim, *m = &st->st_mtim;

	if (a->tv_sec != m->tv_sec)
		return a->tv_sec > m->tv_sec ? *a : *m;
	return a->tv_nsec > m->tv_nsec ? *a : *m;
}

/* Scans one fan-out directory: removes temporaries, collects chunks. */
static int scan_fanout(struct cache *c, int topfd, const char *fanout, struct found **v, size_t *n,
		       size_t *cap, size_t *tmps)
{
	struct dirent *de;
	struct stat st;
	char blob[BLOB_MAX + 1];
	uint32_t index;
	DIR *d;
	int fd;

	fd = openat(topfd, fanout, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOTDIR ? 0 : -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (is_tmp(de->d_name)) {
			if (unlinkat(fd, de->d_name, 0) == 0)
				(*tmps)++;
			continue;
		}
		if (parse_name(de->d_name, fanout, blob, &index) < 0 ||
		    fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		/* The same name cannot appear twice in one directory. */
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 256;
			*v = xrealloc(*v, *cap * sizeof(**v));
		}
		(*v)[*n].e = xcalloc(1, sizeof(struct entry));
		cache__cnode_set(&(*v)[*n].e->node, blob, index);
		/* The plaintext's size: the file ends with the tag. (A shorter
		 * file has a size no manifest asks for, and is fetched again.) */
		(*v)[*n].e->size = st.st_size >= SEAL_TAG_LEN ? (uint64_t)st.st_size - SEAL_TAG_LEN
							      : UINT64_MAX;
		(*v)[*n].t = last_use(&st);
		(*n)++;
	}
	closedir(d);
	return 0;
}

/* Oldest use at the LRU tail: inserted first, pushed down by the others. */
int cache__scan(struct cache *c, char *err, size_t errlen)
{
	struct found *v = NULL;
	size_t n = 0, cap = 0, tmps = 0;
	struct dirent *de;
	DIR *top;
	int rc = 0;

	top = opendir(c->dir);
	if (!top) {
		rc = -errno;
		snprintf(err, errlen, "cannot read cache directory %s: %s", c->dir,
			 strerror(errno));
		return rc;
	}
	while (rc == 0 && (de = readdir(top)))
		if (is_fanout(de->d_name))
			rc = scan_fanout(c, dirfd(top), de->d_name, &v, &n, &cap, &tmps);
	closedir(top);
	if (rc < 0) {
		snprintf(err, errlen, "cannot read cache directory %s: %s", c->dir, strerror(-rc));
		for (size_t i = 0; i < n; i++)
			free(v[i].e);
		goto out;
	}
	if (n)
		qsort(v, n, sizeof(*v), found_cmp);
	for (size_t i = 0; i < n; i++)
		cache__index_insert(c, v[i].e);
	cache__evict_to_budget(c);
	log_info("cache: %s: %llu chunks, %llu bytes (%zu temporary files removed)", c->dir,
		 (unsigned long long)c->chunks, (unsigned long long)c->bytes, tmps);
out:
	free(v);
	return rc;
}
