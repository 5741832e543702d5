/*
 * Tags and stream properties through libavformat, reading from memory: the
 * file is already in memory for hashing and sealing, so it is read from
 * disk once. libavformat keeps Ogg Vorbis/Opus tags on the stream and the
 * others on the container; both are consulted.
 *
 * Demuxing every packet (no decoding) tells whether the audio is complete:
 * a FLAC or MP4 whose header promises more than the file holds is
 * truncated. It costs a memory scan, far less than reading the file.
 */
#include "ingest/probe.h"

#include <ctype.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/log.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/log.h"
#include "util/text.h"
#include "util/xalloc.h"

#define TAG_MAX 1024 /* longest tag text kept, in bytes */

static const struct {
	const char *ext;
} audio_exts[] = {{"mp3"}, {"flac"}, {"ogg"}, {"oga"}, {"opus"}, {"m4a"},
		  {"m4b"}, {"mp4"},  {"aac"}, {"wav"}, {"wave"}};

bool probe_is_audio_name(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (!dot || dot == name)
		return false;
	for (size_t i = 0; i < sizeof(audio_exts) / sizeof(audio_exts[0]); i++)
		if (strcasecmp(dot + 1, audio_exts[i].ext) == 0)
			return true;
	return false;
}

int probe_parse_number(const char *s)
{
	long v = 0;

	while (*s && isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return 0;
	while (isdigit((unsigned char)*s) && v < 100000)
		v = v * 10 + (*s++ - '0');
	return v < 100000 ? (int)v : 0;
}

int probe_parse_year(const char *s)
{
	int y;

	while (*s && isspace((unsigned char)*s))
		s++;
	for (int i = 0; i < 4; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	if (isdigit((unsigned char)s[4]))
		return 0;
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	return y >= 1000 ? y : 0;
}

struct mem_reader {
	const unsigned char *data;
	size_t len, pos;
};

static int mem_read(void *opaque, uint8_t *buf, int size)
{
	struct mem_reader *m = opaque;
	size_t n = m->len - m->pos;

	if (n == 0)
		return AVERROR_EOF;
	if (n > (size_t)size)
		n = (size_t)size;
	memcpy(buf, m->data + m->pos, n);
	m->pos += n;
	return (int)n;
}

static int64_t mem_seek(void *opaque, int64_t offset, int whence)
{
	struct mem_reader *m = opaque;
	int64_t pos;

	switch (whence & ~AVSEEK_FORCE) {
	case AVSEEK_SIZE:
		return (int64_t)m->len;
	case SEEK_SET:
		pos = offset;
		break;
	case SEEK_CUR:
		pos = (int64_t)m->pos + offset;
		break;
	case SEEK_END:
		pos = (int64_t)m->len + offset;
		break;
	default:
		return -1;
	}
	if (pos < 0 || pos > (int64_t)m->len)
		return -1;
	m->pos = (size_t)pos;
	return pos;
}

/* First non-empty value among keys, from the container then the stream. */
static const char *tag(AVFormatContext *fc, AVStream *st, const char *const *keys)
{
	for (const char *const *k = keys; *k; k++) {
		AVDictionaryEntry *e = av_dict_get(fc->metadata, *k, NULL, 0);
		if ((!e || !*e->value) && st)
			e = av_dict_get(st->metadata, *k, NULL, 0);
		if (e && *e->value)
			return e->value;
	}
	return NULL;
}

static char *tag_text(AVFormatContext *fc, AVStream *st, const char *const *keys)
{
	const char *v = tag(fc, st, keys);
	char *clean;

	if (!v)
		return NULL;
	clean = text_clean(v, strnlen(v, TAG_MAX));
	if (!*clean) {
		free(clean);
		return NULL;
	}
	return clean;
}

/* ISRC: 12 characters, letters and digits; dashes and spaces dropped. */
static char *tag_isrc(AVFormatContext *fc, AVStream *st)
{
	static const char *const keys[] = {"isrc", "TSRC", NULL};
	const char *v = tag(fc, st, keys);
	char out[13];
	size_t n = 0;

	if (!v)
		return NULL;
	for (; *v && n < 13; v++) {
		if (*v == '-' || *v == ' ')
			continue;
		if (!isalnum((unsigned char)*v))
			return NULL;
		out[n++] = (char)toupper((unsigned char)*v);
	}
	if (n != 12 || *v)
		return NULL;
	out[12] = '\0';
	return xstrdup(out);
}

static const char *mime_for(const char *format, enum AVCodecID codec)
{
	if (strcmp(format, "mp3") == 0 || codec == AV_CODEC_ID_MP3)
		return "audio/mpeg";
	if (strcmp(format, "flac") == 0)
		return "audio/flac";
	if (strcmp(format, "ogg") == 0)
		return codec == AV_CODEC_ID_OPUS ? "audio/ogg; codecs=opus" : "audio/ogg";
	if (strcmp(format, "wav") == 0)
		return "audio/wav";
	if (strcmp(format, "aac") == 0)
		return "audio/aac";
	if (strstr(format, "mp4"))
		return "audio/mp4";
	return "application/octet-stream";
}

/* The file name without directories or extension. */
static char *title_from_name(const char *name)
{
	const char *base = strrchr(name, '/');
	const char *dot;
	char *t;

	base = base ? base + 1 : name;
	dot = strrchr(base, '.');
	t = text_clean(base, dot && dot != base ? (size_t)(dot - base) : strlen(base));
	if (!*t) {
		free(t);
		t = xstrdup(base);
	}
	return t;
}

/* Demuxes every packet of stream idx; returns the end time in ms, or -1
 * when the demuxer fails before the end of the data. */
static int64_t audio_end_ms(AVFormatContext *fc, int idx, char *err, size_t errlen)
{
	AVPacket *pkt = av_packet_alloc();
	AVStream *st = fc->streams[idx];
	int64_t end = 0;
	int rc;

	if (!pkt)
		return -1;
	while ((rc = av_read_frame(fc, pkt)) >= 0) {
		if (pkt->stream_index == idx && pkt->pts != AV_NOPTS_VALUE) {
			int64_t e = pkt->pts + (pkt->duration > 0 ? pkt->duration : 0);
			if (st->start_time != AV_NOPTS_VALUE)
				e -= st->start_time;
			if (e > end)
				end = e;
		}
		av_packet_unref(pkt);
	}
	av_packet_free(&pkt);
	if (rc != AVERROR_EOF) {
		char msg[128];
		av_strerror(rc, msg, sizeof(msg));
		snprintf(err, errlen, "unreadable audio data: %s", msg);
		return -1;
	}
	return av_rescale_q(end, st->time_base, (AVRational){1, 1000});
}

/* A demuxer over a file held in memory. */
struct demux {
	struct mem_reader mem;
	AVFormatContext *fc;
	AVIOContext *io;
};

static void demux_close(struct demux *d)
{
	if (d->fc)
		avformat_close_input(&d->fc);
	if (d->io) {
		av_freep(&d->io->buffer);
		avio_context_free(&d->io);
	}
}

static int demux_open(struct demux *d, const char *name, const unsigned char *data, size_t len,
		      char *err, size_t errlen)
{
	unsigned char *iobuf = av_malloc(65536);

	memset(d, 0, sizeof(*d));
	d->mem = (struct mem_reader){data, len, 0};
	d->fc = avformat_alloc_context();
	d->io = iobuf ? avio_alloc_context(iobuf, 65536, 0, &d->mem, mem_read, NULL, mem_seek)
		      : NULL;
	if (!d->fc || !d->io) {
		if (!d->io)
			av_free(iobuf);
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	d->fc->pb = d->io;
	d->fc->flags |= AVFMT_FLAG_CUSTOM_IO;
	/* The name helps the format probe; nothing is opened by it. */
	if (avformat_open_input(&d->fc, name, NULL, NULL) < 0) {
		d->fc = NULL; /* freed by a failed open */
		snprintf(err, errlen, "not a recognised audio format");
		goto fail;
	}
	if (avformat_find_stream_info(d->fc, NULL) < 0) {
		snprintf(err, errlen, "cannot read the audio stream");
		goto fail;
	}
	return 0;
fail:
	demux_close(d);
	return -1;
}

/*
 * The end of the audio from its last seconds only: a seek near the end the
 * header promises, then packets to the end of the data. Returns -2 when
 * that gives no verdict (the seek or the read failed); the caller then
 * scans the whole file.
 */
static int64_t tail_end_ms(AVFormatContext *fc, int idx, int64_t header_ms)
{
	AVStream *st = fc->streams[idx];
	int64_t ts = av_rescale_q(header_ms - 10000, (AVRational){1, 1000}, st->time_base);
	char ignored[128];
	int64_t end;

	if (st->start_time != AV_NOPTS_VALUE)
		ts += st->start_time;
	if (av_seek_frame(fc, idx, ts, AVSEEK_FLAG_BACKWARD) < 0)
		return -2;
	end = audio_end_ms(fc, idx, ignored, sizeof(ignored));
	return end > 0 ? end : -2;
}

static bool cut_short(int64_t end_ms, int64_t header_ms)
{
	return end_ms + 500 < header_ms - header_ms / 50;
}

int probe_file(const char *name, const unsigned char *data, size_t len, struct track_meta *out,
	       char *err, size_t errlen)
{
	static const char *const k_title[] = {"title", NULL};
	static const char *const k_artist[] = {"artist", "performer", "album_artist", NULL};
	static const char *const k_album[] = {"album", NULL};
	static const char *const k_album_artist[] = {"album_artist", "albumartist", "album artist",
						     "TPE2", NULL};
	static const char *const k_track[] = {"track", "tracknumber", NULL};
	static const char *const k_disc[] = {"disc", "discnumber", "TPOS", NULL};
	static const char *const k_year[] = {"date", "year", "originaldate", "TDRC", "TYER",
					     "TORY", NULL};
	static const char *const k_genre[] = {"genre", NULL};
	static const char *const k_label[] = {"label", "publisher", "organization", "TPUB", NULL};
	struct demux d = {0};
	AVFormatContext *fc;
	AVStream *st;
	const char *v;
	int idx, rc = -1;
	int64_t header_ms, end_ms = -2;
	bool exact;

	memset(out, 0, sizeof(*out));
	if (len == 0) {
		snprintf(err, errlen, "empty file");
		return -1;
	}
	if (demux_open(&d, name, data, len, err, errlen) < 0)
		return -1;
	fc = d.fc;
	idx = av_find_best_stream(fc, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
	if (idx < 0) {
		snprintf(err, errlen, "no audio stream");
		goto out;
	}
	st = fc->streams[idx];
	if (st->codecpar->codec_id == AV_CODEC_ID_NONE || st->codecpar->sample_rate <= 0) {
		snprintf(err, errlen, "unknown or damaged audio codec");
		goto out;
	}

	out->title = tag_text(fc, st, k_title);
	if (!out->title)
		out->title = title_from_name(name);
	out->artist = tag_text(fc, st, k_artist);
	if (!out->artist)
		out->artist = xstrdup("Unknown Artist");
	out->album = tag_text(fc, st, k_album);
	if (!out->album)
		out->album = xstrdup("Unknown Album");
	out->album_artist = tag_text(fc, st, k_album_artist);
	if (!out->album_artist)
		out->album_artist = xstrdup(out->artist);
	out->genre = tag_text(fc, st, k_genre);
	out->label = tag_text(fc, st, k_label);
	out->isrc = tag_isrc(fc, st);
	if ((v = tag(fc, st, k_track)))
		out->track_number = probe_parse_number(v);
	if ((v = tag(fc, st, k_disc)))
		out->disc_number = probe_parse_number(v);
	if ((v = tag(fc, st, k_year)))
		out->year = probe_parse_year(v);

	out->codec = xstrdup(avcodec_get_name(st->codecpar->codec_id));
	out->mime_type = mime_for(fc->iformat->name, st->codecpar->codec_id);
	out->sample_rate = st->codecpar->sample_rate;
	out->channels = st->codecpar->ch_layout.nb_channels;

	/* Embedded cover art: the first attached picture. */
	for (unsigned i = 0; i < fc->nb_streams; i++) {
		AVStream *p = fc->streams[i];
		if (!(p->disposition & AV_DISPOSITION_ATTACHED_PIC) || p->attached_pic.size <= 0)
			continue;
		if (p->codecpar->codec_id == AV_CODEC_ID_MJPEG)
			out->cover_mime = "image/jpeg";
		else if (p->codecpar->codec_id == AV_CODEC_ID_PNG)
			out->cover_mime = "image/png";
		else if (p->codecpar->codec_id == AV_CODEC_ID_WEBP)
			out->cover_mime = "image/webp";
		else if (p->codecpar->codec_id == AV_CODEC_ID_GIF)
			out->cover_mime = "image/gif";
		else
			continue;
		out->cover_len = (size_t)p->attached_pic.size;
		out->cover = xmalloc(out->cover_len);
		memcpy(out->cover, p->attached_pic.data, out->cover_len);
		break;
	}

	/* Is all the audio there? With a duration read from the header (not
	 * guessed from the bitrate), the last seconds tell; anything but a
	 * clean answer is checked again by demuxing the whole file on a fresh
	 * demuxer, which also words the verdict. */
	header_ms = fc->duration != AV_NOPTS_VALUE ? fc->duration / 1000 : 0;
	exact = fc->duration_estimation_method != AVFMT_DURATION_FROM_BITRATE && header_ms > 0;
	if (exact && header_ms > 30000)
		end_ms = tail_end_ms(fc, idx, header_ms);
	if (end_ms == -2 || cut_short(end_ms, header_ms)) {
		struct demux full;
		if (demux_open(&full, name, data, len, err, errlen) < 0)
			goto out;
		end_ms = audio_end_ms(full.fc, idx, err, errlen);
		demux_close(&full);
	}
	if (end_ms < 0)
		goto out;
	if (end_ms == 0) {
		snprintf(err, errlen, "no audio data");
		goto out;
	}
	if (exact && cut_short(end_ms, header_ms)) {
		snprintf(err, errlen, "truncated: audio ends at %.1f s of %.1f s", end_ms / 1000.0,
			 header_ms / 1000.0);
		goto out;
	}
	out->duration_ms = header_ms > 0 ? header_ms : end_ms;
	out->bitrate = fc->bit_rate > 0
			       ? fc->bit_rate
			       : (int64_t)((double)len * 8000.0 / (double)out->duration_ms);
	rc = 0;
out:
	demux_close(&d);
	if (rc < 0)
		track_meta_free(out);
	return rc;
}

static void av_to_log(void *avcl, int level, const char *fmt, va_list vl)
{
	char line[1024];
	int prefix = 1; /* this call's own: every line gets its prefix */

	if (level > av_log_get_level())
		return;
	av_log_format_line2(avcl, level, fmt, vl, line, sizeof(line), &prefix);
	line[strcspn(line, "\n")] = '\0';
	if (line[0])
		log_debug("libav: %s", line);
}

void probe_log_setup(void)
{
	av_log_set_level(getenv("CHORUS_DEBUG") ? AV_LOG_WARNING : AV_LOG_QUIET);
	av_log_set_callback(av_to_log);
}
