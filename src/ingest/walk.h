#ifndef CHORUS_INGEST_WALK_H
#define CHORUS_INGEST_WALK_H

#include <stdbool.h>
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
	/* Called for each path that could not be read, with the reason: the
	 * caller reports and counts it as a failure of its run. */
	void (*fail)(void *ud, const char *path, const char *why);
	void *ud;
	/* Which file names to take, or NULL: audio (probe_is_audio_name);
	 * the notice for a named file not taken, or NULL: "not an audio file
	 * name (skipped)"; and the command notices name, or NULL: "ingest". */
	bool (*accept)(const char *name);
	const char *skipped;
	const char *cmd;
};

/*
 * Adds every audio file (by name, see probe_is_audio_name; or those
 * list->accept takes) under path, or path itself, to list: directories
 * recursively in name order, symbolic links followed, each directory
 * visited once. Unreadable paths go to list->fail; a file named on the
 * command line that is not taken by its name is noted on stderr and
 * skipped.
 */
void walk_path(const char *path, struct walk_list *list);
void walk_list_free(struct walk_list *list);

#endif
