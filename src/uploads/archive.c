/*
 * Archive unpacking (archive.h) with libarchive, from memory, in two
 * passes: the first reads every entry through (counting, keeping
 * nothing), so a bomb or a hostile name is refused before any track is
 * made; the second hands the files out.
 */
#include "uploads/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

bool archive_sniff(const void *data, size_t len)
{
	const unsigned char *p = data;

	if (len >= 4 && memcmp(p, "PK\x03\x04", 4) == 0)
		return true; /* zip */
	if (len >= 262 && memcmp(p + 257, "ustar", 5) == 0)
		return true; /* tar */
	if (len >= 6 && memcmp(p, "7z\xbc\xaf\x27\x1c", 6) == 0)
		return true;
	/* gzip, bzip2, xz: an audio file never starts so; libarchive says
	 * whether a tar is inside. */
	return len >= 3 && ((p[0] == 0x1f && p[1] == 0x8b) || memcmp(p, "BZh", 3) == 0 ||
			    (len >= 6 && memcmp(p,
						"\xfd"
						"7zXZ\0",
						6) == 0));
}

static struct archive *open_reader(const void *data, size_t len)
{
	struct archive *a = archive_read_new();

	if (!a)
		return NULL;
	archive_read_support_filter_all(a);
	archive_read_support_format_zip(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_7zip(a);
	if (archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
		archive_read_free(a);
		return NULL;
	}
	return a;
}

/* Names a file inside: relative, no "..", no empty or odd components. */
static bool name_ok(const char *name)
{
	const char *p = name;

	if (!*name || *name == '/' || strchr(name, '\\'))
		return false;
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p += n;
		if (*p == '/')
			p++;
	}
	return true;
}

static bool passed_over(const char *name)
{
	const char *base = strrchr(name, '/');

	base = base ? base + 1 : name;
	return strncmp(name, "__MACOSX/", 9) == 0 || strncmp(base, "._", 2) == 0 || !*base;
}

/* One pass. With fn, the files' bytes go to it; without, they are only
 * counted. */
static int pass(const void *data, size_t len, const struct archive_limits *lim,
		int (*fn)(void *, const char *, const unsigned char *, size_t), void *ud, char *err,
		size_t errlen)
{
	struct archive *a = open_reader(data, len);
	struct archive_entry *e;
	unsigned char *buf = NULL;
	size_t cap = 0, entries = 0;
	uint64_t total = 0;
	int rc = 0, r;

	if (!a) {
		snprintf(err, errlen, "not an archive chorus can read");
		return -1;
	}
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		mode_t type = archive_entry_filetype(e);
		size_t n = 0;

		if (++entries > lim->max_entries) {
			snprintf(err, errlen, "archive has more than %zu entries",
				 lim->max_entries);
			rc = -1;
			break;
		}
		if (!name || !name_ok(name)) {
			snprintf(err, errlen, "archive entry \"%.200s\" points outside the archive",
				 name ? name : "");
			rc = -1;
			break;
		}
		if (type == AE_IFDIR)
			continue;
		if (type != AE_IFREG || archive_entry_hardlink(e)) {
			snprintf(err, errlen, "archive entry \"%.200s\" is not a regular file",
				 name);
			rc = -1;
			break;
		}
		for (;;) {
			ssize_t got;

			if (fn && cap - n < 65536) {
				cap = cap ? 2 * cap : (1u << 20);
				buf = xrealloc(buf, cap);
			}
			if (fn) {
				got = archive_read_data(a, buf + n, cap - n);
			} else {
				unsigned char sink[16384];
				got = archive_read_data(a, sink, sizeof(sink));
			}
			if (got < 0) {
				snprintf(err, errlen, "archive entry \"%.200s\": %s", name,
					 archive_error_string(a) ? archive_error_string(a)
								 : "unreadable");
				rc = -1;
				break;
			}
			if (got == 0)
				break;
			total += (uint64_t)got;
			n += (size_t)got; /* counted in both passes, kept in the second */
			if (total > lim->max_total || n > lim->max_entry) {
				snprintf(err, errlen,
					 "archive unpacks to more than %llu bytes (entry "
					 "\"%.200s\")",
					 (unsigned long long)(n > lim->max_entry ? lim->max_entry
										 : lim->max_total),
					 name);
				rc = -1;
				break;
			}
		}
		if (rc < 0)
			break;
		if (fn && !passed_over(name) && (rc = fn(ud, name, buf, n)) != 0)
			break;
	}
	if (rc == 0 && r != ARCHIVE_EOF) {
		snprintf(err, errlen, "broken archive: %s",
			 archive_error_string(a) ? archive_error_string(a) : "unreadable");
		rc = -1;
	}
	free(buf);
	archive_read_free(a);
	return rc;
}

int archive_each(const void *data, size_t len, const struct archive_limits *lim,
		 int (*fn)(void *ud, const char *name, const unsigned char *p, size_t n), void *ud,
		 char *err, size_t errlen)
{
	int rc = pass(data, len, lim, NULL, NULL, err, errlen);

	return rc ? rc : pass(data, len, lim, fn, ud, err, errlen);
}
