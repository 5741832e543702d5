#ifndef CHORUS_INGEST_WALK_H
#define CHORUS_INGEST_WALK_H

#include <stddef.h>
#include <stdint.h>

/* A file ingest will read: absolute path, size and mtime at walk time. */
struct walk_file {
	char *path;
	uint64_t size;
	int64_t mtime_ns;
};

struct walk_list {
	struct walk_file *files;
	size_t n, cap;
	uint64_t total_bytes;
	size_t errors; /* paths that could not be read (already reported) */
};

/*
 * Adds every audio file (by name, see probe_is_audio_name) under path, or
 * path itself, to list: directories recursively in name order, symbolic
 * links followed, each directory visited once. Unreadable paths are
 * reported on stderr and counted in list->errors.
 */
void walk_path(const char *path, struct walk_list *list);
void walk_list_free(struct walk_list *list);

#endif
