/* libFuzzer: probing arbitrary bytes as an audio file (tags, covers,
 * truncation check) must fail cleanly or give valid UTF-8 metadata. */
#include <libavutil/log.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/probe.h"
#include "util/text.h"

static const char *names[] = {"x.mp3", "x.flac", "x.ogg", "x.m4a", "x.wav", "x.opus"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct track_meta m;
	char err[256];

	av_log_set_level(AV_LOG_QUIET);
	if (size < 1)
		return 0;
	/* The first byte picks the file name the format probe sees. */
	if (probe_file(names[data[0] % 6], data + 1, size - 1, &m, err, sizeof(err)) == 0) {
		const char *s[] = {m.title, m.artist, m.album, m.album_artist, m.genre, m.label};
		for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
			if (s[i] && !text_is_utf8(s[i], strlen(s[i])))
				abort();
		if (!m.title || !m.artist || !m.album || !m.album_artist || m.duration_ms <= 0)
			abort();
		track_meta_free(&m);
	}
	return 0;
}
