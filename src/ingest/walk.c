#include "ingest/walk.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ingest/probe.h"
#include "util/xalloc.h"

struct seen {
	dev_t dev;
	ino_t ino;
};

struct walker {
	struct walk_list *list;
	struct seen *dirs; /* directories on the current path: a loop guard */
	size_t ndirs, capdirs;
};

/* A notice about a path passed over; failures go to list->fail. */
static void report(const struct walk_list *l, const char *path, const char *why)
{
	fprintf(stderr, "chorus: %s: %s: %s\n", l->cmd ? l->cmd : "ingest", path, why);
}

static void add_file(struct walk_list *l, const char *path, const struct stat *st)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->files = xrealloc(l->files, l->cap * sizeof(*l->files));
	}
	l->files[l->n].path = xstrdup(path);
	l->files[l->n].size = (uint64_t)st->st_size;
	l->files[l->n].mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	l->n++;
	l->total_bytes += (uint64_t)st->st_size;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void walk(struct walker *w, const char *path, bool explicit);

static void walk_dir(struct walker *w, const char *path, const struct stat *st)
{
	DIR *d;
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < w->ndirs; i++)
		if (w->dirs[i].dev == st->st_dev && w->dirs[i].ino == st->st_ino)
			return; /* a symbolic link back up the tree */
	d = opendir(path);
	if (!d) {
		w->list->fail(w->list->ud, path, strerror(errno));
		return;
	}
	if (w->ndirs == w->capdirs) {
		w->capdirs = w->capdirs ? w->capdirs * 2 : 16;
		w->dirs = xrealloc(w->dirs, w->capdirs * sizeof(*w->dirs));
	}
	w->dirs[w->ndirs++] = (struct seen){st->st_dev, st->st_ino};
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' &&
		    (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(e->d_name);
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		char child[PATH_MAX];
		if ((size_t)snprintf(child, sizeof(child), "%s/%s", path, names[i]) < sizeof(child))
			walk(w, child, false);
		else
			report(w->list, path, "path too long");
		free(names[i]);
	}
	free(names);
	w->ndirs--;
}

static void walk(struct walker *w, const char *path, bool explicit)
{
	struct stat st;
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (stat(path, &st) < 0) {
		/* A dangling link inside a tree is not worth a failure; a path
		 * given on the command line is. */
		if (explicit || errno != ENOENT) {
			w->list->fail(w->list->ud, path, strerror(errno));
		}
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		walk_dir(w, path, &st);
		return;
	}
	if (!S_ISREG(st.st_mode))
		return;
	/* AppleDouble "._x.mp3" files hold Finder metadata, not audio. */
	if (strncmp(base, "._", 2) == 0 ||
	    !(w->list->accept ? w->list->accept(base) : probe_is_audio_name(base))) {
		if (explicit) {
			report(w->list, path,
			       w->list->skipped ? w->list->skipped
						: "not an audio file name (skipped)");
		}
		return;
	}
	add_file(w->list, path, &st);
}

void walk_path(const char *path, struct walk_list *list)
{
	struct walker w = {.list = list};
	char abs[PATH_MAX];

	if (!realpath(path, abs)) {
		list->fail(list->ud, path, strerror(errno));
		return;
	}
	walk(&w, abs, true);
	free(w.dirs);
}

void walk_list_free(struct walk_list *list)
{
	for (size_t i = 0; i < list->n; i++)
		free(list->files[i].path);
	free(list->files);
	memset(list, 0, sizeof(*list));
}
