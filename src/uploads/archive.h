#ifndef CHORUS_UPLOADS_ARCHIVE_H
#define CHORUS_UPLOADS_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Archives of an album (zip, tar, tar.gz, ...: whatever Debian's
 * libarchive reads), unpacked from memory with bounds, since the bytes are
 * a stranger's: at most max_entries entries, at most max_total bytes once
 * unpacked (measured while unpacking, not as the headers claim: a zip
 * bomb lies), no entry named outside the archive (absolute, "..") and
 * nothing but regular files and directories.
 */
struct archive_limits {
	size_t max_entries;
	uint64_t max_total;
	uint64_t max_entry; /* one file */
};

/* Whether data looks like an archive libarchive reads (by its magic). */
bool archive_sniff(const void *data, size_t len);

/*
 * Checks the whole archive against lim first (every entry read once),
 * then calls fn for each regular file in order, with its path in the
 * archive and its bytes (valid during the call). Directories, and the
 * resource forks macOS adds (__MACOSX/, ._*), are passed over. fn's
 * non-zero result stops and is returned. 0, or -1 with a sentence in err
 * (nothing was passed to fn when the check failed).
 */
int archive_each(const void *data, size_t len, const struct archive_limits *lim,
		 int (*fn)(void *ud, const char *name, const unsigned char *p, size_t n), void *ud,
		 char *err, size_t errlen);

#endif
