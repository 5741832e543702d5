/*
 * IANA zones from TZif files (RFC 8536), see tz.h. A zone is its list of
 * transitions (the UTC instant and the offset from then on; consecutive
 * equal offsets merged, as only offsets matter here) and its footer's
 * POSIX rule for instants past the last one. Every lookup answers the
 * "piece" an instant falls in: its offset and the UTC bounds over which
 * that offset holds, which local_to_utc walks to find a wall time.
 */
#include "schedule/tz.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schedule/tz_int.h"
#include "util/fsutil.h"
#include "util/xalloc.h"

/* A rule date: Jn (1-365, no Feb 29), n (0-365), or Mm.w.d. */
struct tz_date {
	char kind; /* 'J', 'D' (the n form) or 'M' */
	int a, b, c;
	int32_t time; /* seconds after local midnight: -167 h..167 h (RFC 8536) */
};

struct tz_rule {
	int32_t std_off, dst_off; /* seconds east of UTC */
	bool has_dst;
	struct tz_date start, end;
};

struct tz {
	struct tz *next; /* the cache's list */
	char name[TZ_NAME_MAX + 1];
	int64_t *trans; /* strictly ascending UTC seconds */
	int32_t *toff;  /* the offset from trans[i] on */
	int ntrans;
	int32_t off0; /* before the first transition: time type 0 */
	bool has_rule;
	struct tz_rule rule;
};

/* An offset and the UTC seconds [start, end) over which it holds. */
struct piece {
	int32_t off;
	int64_t start, end;
};

/* Instants are clamped to about ±35 million years, so that calendar and
 * offset arithmetic cannot overflow whatever a caller passes. */
#define T_LIM ((int64_t)1 << 50)

static int64_t clamp_t(int64_t t)
{
	return t < -T_LIM ? -T_LIM : t > T_LIM ? T_LIM : t;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = floor_div(y, 400);
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

static int64_t year_of_days(int64_t z)
{
	z += 719468;
	int64_t era = floor_div(z, 146097);
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int m = (int)(mp < 10 ? mp + 3 : mp - 9);

	return yoe + era * 400 + (m <= 2);
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
	static const int md[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : md[m - 1];
}

/* The local (wall) seconds at which date happens in year y. */
static int64_t rule_local(const struct tz_date *dt, int64_t y)
{
	int64_t day;

	if (dt->kind == 'J') {
		day = days_from_civil(y, 1, 1) + dt->a - 1 + (is_leap(y) && dt->a >= 60);
	} else if (dt->kind == 'D') {
		day = days_from_civil(y, 1, 1) + dt->a;
	} else {
		int64_t first = days_from_civil(y, dt->a, 1);
		int wd = (int)(((first + 4) % 7 + 7) %
			       7); /* 0 = Sunday; 1970-01-01 was a Thursday */
		int d = (dt->c - wd + 7) % 7 + (dt->b - 1) * 7;

		while (d >= month_days(y, dt->a))
			d -= 7;
		day = first + d;
	}
	return day * 86400 + dt->time;
}

/*
 * The rule's piece at t. The changes of years y-2..y+2 are computed (a
 * rule time may be up to 167 h past its date, so a change can fall in
 * the next year); the latest at or before t says the state. Ties go to
 * the later year, then to the end of DST: a rule of DST all year ends
 * its year at the very instant the next one starts.
 */
static void rule_lookup(const struct tz_rule *r, int64_t t, struct piece *p)
{
	int64_t y = year_of_days(floor_div(t, 86400));
	int64_t best = INT64_MIN, next = INT64_MAX;
	int64_t best_key = INT64_MIN;
	bool dst = false;

	if (!r->has_dst) {
		*p = (struct piece){r->std_off, INT64_MIN, INT64_MAX};
		return;
	}
	for (int64_t yy = y - 2; yy <= y + 2; yy++) {
		/* The start is in standard time, the end in daylight time. */
		int64_t ev[2] = {rule_local(&r->start, yy) - r->std_off,
				 rule_local(&r->end, yy) - r->dst_off};
		for (int k = 0; k < 2; k++) {
			int64_t key = (yy - y + 2) * 2 + k;
			if (ev[k] <= t) {
				if (ev[k] > best || (ev[k] == best && key > best_key)) {
					best = ev[k];
					best_key = key;
					dst = k == 0;
				}
			} else if (ev[k] < next) {
				next = ev[k];
			}
		}
	}
	*p = (struct piece){dst ? r->dst_off : r->std_off, best, next};
}

static void lookup(const tz_t *tz, int64_t t, struct piece *p)
{
	int n = tz->ntrans;

	if (n > 0 && t < tz->trans[0]) {
		*p = (struct piece){tz->off0, INT64_MIN, tz->trans[0]};
		return;
	}
	if (n > 0 && t < tz->trans[n - 1]) {
		int lo = 0, hi = n - 1; /* trans[lo] <= t < trans[hi] */
		while (hi - lo > 1) {
			int mid = lo + (hi - lo) / 2;
			if (tz->trans[mid] <= t)
				lo = mid;
			else
				hi = mid;
		}
		*p = (struct piece){tz->toff[lo], tz->trans[lo], tz->trans[hi]};
		return;
	}
	if (!tz->has_rule) {
		*p = (struct piece){n ? tz->toff[n - 1] : tz->off0,
				    n ? tz->trans[n - 1] : INT64_MIN, INT64_MAX};
		return;
	}
	rule_lookup(&tz->rule, t, p);
	if (n > 0 && p->start < tz->trans[n - 1])
		p->start = tz->trans[n - 1];
}

int32_t tz_offset(const tz_t *tz, int64_t utc_s)
{
	struct piece p;

	lookup(tz, clamp_t(utc_s), &p);
	return p.off;
}

int32_t tz_local_day(const tz_t *tz, int64_t utc_s)
{
	int64_t t = clamp_t(utc_s);
	int64_t d = floor_div(t + tz_offset(tz, t), 86400);

	return d < INT32_MIN ? INT32_MIN : d > INT32_MAX ? INT32_MAX : (int32_t)d;
}

/*
 * The pieces are walked in UTC order from one that surely starts before
 * local_s could happen (offsets are within TZ_OFFSET_MAX): the first
 * whose local span reaches past local_s holds it, unless local_s falls
 * short of that span's start, a gap, where the previous offset is kept
 * (the wall time read "the same distance after the change").
 */
int64_t tz_local_to_utc(const tz_t *tz, int64_t local_s)
{
	int64_t l = clamp_t(local_s);
	struct piece p;
	int32_t prev_off = 0;
	bool have_prev = false;

	lookup(tz, l - TZ_OFFSET_MAX - 3600, &p);
	for (;;) {
		if (p.end == INT64_MAX || l < p.end + p.off) {
			if (have_prev && l < p.start + p.off)
				return l - prev_off;
			return l - p.off;
		}
		prev_off = p.off;
		have_prev = true;
		lookup(tz, p.end, &p);
	}
}

const char *tz_name(const tz_t *tz)
{
	return tz->name;
}

bool tz_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n < 1 || n > TZ_NAME_MAX || name[0] == '/' || name[n - 1] == '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (c == '/') {
			if (name[i + 1] == '/')
				return false;
			continue;
		}
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '+' || c == '-'))
			return false;
	}
	/* '.' is not among the characters: no "." or ".." segment can occur. */
	return true;
}

/* ---- The POSIX TZ string (TZif footer) ---- */

static bool p_num(const char **s, const char *e, int max, int *out)
{
	int v = 0, nd = 0;

	while (*s < e && **s >= '0' && **s <= '9' && nd < 4) {
		v = v * 10 + (**s - '0');
		(*s)++;
		nd++;
	}
	if (nd == 0 || v > max || (*s < e && **s >= '0' && **s <= '9'))
		return false;
	*out = v;
	return true;
}

/* [+-]hh[:mm[:ss]], hh up to hmax: seconds. */
static bool p_hms(const char **s, const char *e, int hmax, int32_t *out)
{
	int sign = 1, h, m = 0, sec = 0;

	if (*s < e && (**s == '+' || **s == '-')) {
		sign = **s == '-' ? -1 : 1;
		(*s)++;
	}
	if (!p_num(s, e, hmax, &h))
		return false;
	if (*s < e && **s == ':') {
		(*s)++;
		if (!p_num(s, e, 59, &m))
			return false;
		if (*s < e && **s == ':') {
			(*s)++;
			if (!p_num(s, e, 59, &sec))
				return false;
		}
	}
	*out = sign * (h * 3600 + m * 60 + sec);
	return true;
}

static bool p_name(const char **s, const char *e)
{
	const char *b = *s;

	if (*s < e && **s == '<') {
		(*s)++;
		b = *s;
		while (*s < e && ((**s >= 'A' && **s <= 'Z') || (**s >= 'a' && **s <= 'z') ||
				  (**s >= '0' && **s <= '9') || **s == '+' || **s == '-'))
			(*s)++;
		if (*s >= e || **s != '>' || *s - b < 3)
			return false;
		(*s)++;
		return true;
	}
	while (*s < e && ((**s >= 'A' && **s <= 'Z') || (**s >= 'a' && **s <= 'z')))
		(*s)++;
	return *s - b >= 3;
}

static bool p_date(const char **s, const char *e, struct tz_date *d)
{
	d->time = 2 * 3600;
	if (*s < e && **s == 'J') {
		(*s)++;
		d->kind = 'J';
		if (!p_num(s, e, 365, &d->a) || d->a < 1)
			return false;
	} else if (*s < e && **s == 'M') {
		(*s)++;
		d->kind = 'M';
		if (!p_num(s, e, 12, &d->a) || d->a < 1 || *s >= e || **s != '.')
			return false;
		(*s)++;
		if (!p_num(s, e, 5, &d->b) || d->b < 1 || *s >= e || **s != '.')
			return false;
		(*s)++;
		if (!p_num(s, e, 6, &d->c))
			return false;
	} else {
		d->kind = 'D';
		if (!p_num(s, e, 365, &d->a))
			return false;
	}
	if (*s < e && **s == '/') {
		(*s)++;
		if (!p_hms(s, e, 167, &d->time))
			return false;
	}
	return true;
}

/* A footer: 0 with *r, or -1. Offsets in POSIX are west of UTC. */
static int parse_rule(const char *s, size_t len, struct tz_rule *r)
{
	const char *e = s + len;
	int32_t v;

	memset(r, 0, sizeof(*r));
	if (!p_name(&s, e) || !p_hms(&s, e, 24, &v))
		return -1;
	r->std_off = -v;
	if (s == e)
		return 0;
	if (!p_name(&s, e))
		return -1;
	r->has_dst = true;
	r->dst_off = r->std_off + 3600;
	if (s < e && *s != ',') {
		if (!p_hms(&s, e, 24, &v))
			return -1;
		r->dst_off = -v;
	}
	if (s == e) {
		/* POSIX leaves the rule to the implementation: the US one, as glibc's
		 * default "posixrules" has it. */
		r->start = (struct tz_date){'M', 3, 2, 0, 7200};
		r->end = (struct tz_date){'M', 11, 1, 0, 7200};
		return 0;
	}
	if (*s++ != ',' || !p_date(&s, e, &r->start) || s >= e || *s++ != ',' ||
	    !p_date(&s, e, &r->end) || s != e)
		return -1;
	return 0;
}

/* ---- TZif ---- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct hdr {
	int version; /* 0, or the version's digit */
	uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static int read_hdr(const unsigned char *p, size_t len, struct hdr *h)
{
	if (len < 44 || memcmp(p, "TZif", 4) != 0)
		return -1;
	h->version = p[4] ? p[4] : 0;
	h->isutcnt = be32(p + 20);
	h->isstdcnt = be32(p + 24);
	h->leapcnt = be32(p + 28);
	h->timecnt = be32(p + 32);
	h->typecnt = be32(p + 36);
	h->charcnt = be32(p + 40);
	return 0;
}

static size_t block_len(const struct hdr *h, size_t tsize)
{
	return (size_t)h->timecnt * tsize + h->timecnt + (size_t)h->typecnt * 6 + h->charcnt +
	       (size_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

void tz_free(tz_t *tz)
{
	if (!tz)
		return;
	free(tz->trans);
	free(tz->toff);
	free(tz);
}

static void set_name(tz_t *tz, const char *name)
{
	snprintf(tz->name, sizeof(tz->name), "%s", name ? name : "");
}

/* The data block at p (tsize 4 for v1, 8 for v2+) into tz. */
static int read_block(const unsigned char *p, const struct hdr *h, size_t tsize, tz_t *tz,
		      char *err, size_t errlen)
{
	const unsigned char *idx = p + (size_t)h->timecnt * tsize;
	const unsigned char *types = idx + h->timecnt;
	int n = 0;

	if (h->typecnt == 0 || h->typecnt > 256 || h->charcnt == 0 ||
	    (h->isutcnt && h->isutcnt != h->typecnt) ||
	    (h->isstdcnt && h->isstdcnt != h->typecnt)) {
		set_err(err, errlen, "inconsistent TZif counts");
		return -EINVAL;
	}
	if (h->leapcnt) {
		/* right/ zones count leap seconds; Unix time (the schedule's) does not. */
		set_err(err, errlen, "leap-second TZif files are not supported");
		return -EINVAL;
	}
	for (uint32_t i = 0; i < h->typecnt; i++) {
		const unsigned char *tt = types + (size_t)i * 6;
		int32_t off = (int32_t)be32(tt);
		if (off < -TZ_OFFSET_MAX || off > TZ_OFFSET_MAX || tt[4] > 1 ||
		    tt[5] >= h->charcnt) {
			set_err(err, errlen, "bad TZif time type %u", i);
			return -EINVAL;
		}
	}
	tz->off0 = (int32_t)be32(types);
	tz->trans = xmalloc(((size_t)h->timecnt + 1) * sizeof(*tz->trans));
	tz->toff = xmalloc(((size_t)h->timecnt + 1) * sizeof(*tz->toff));
	for (uint32_t i = 0; i < h->timecnt; i++) {
		int64_t t = tsize == 8 ? be64(p + (size_t)i * 8) : (int32_t)be32(p + (size_t)i * 4);
		int32_t off;
		if (i > 0 && t <= (tsize == 8 ? be64(p + (size_t)(i - 1) * 8)
					      : (int32_t)be32(p + (size_t)(i - 1) * 4))) {
			set_err(err, errlen, "TZif transitions out of order");
			return -EINVAL;
		}
		if (idx[i] >= h->typecnt) {
			set_err(err, errlen, "bad TZif type index");
			return -EINVAL;
		}
		off = (int32_t)be32(types + (size_t)idx[i] * 6);
		/* Instants past the clamp are never asked: one before it is
		 * where the zone's first offset starts (zic's "big bang"). */
		if (t > T_LIM)
			break;
		if (t < -T_LIM) {
			tz->off0 = off;
			continue;
		}
		/* Only offsets matter here: a change of name or DST flag alone
		 * is no transition. */
		if (off == (n ? tz->toff[n - 1] : tz->off0))
			continue;
		tz->trans[n] = t;
		tz->toff[n] = off;
		n++;
	}
	tz->ntrans = n;
	return 0;
}

int tz_parse(const void *data, size_t len, const char *name, tz_t **out, char *err, size_t errlen)
{
	const unsigned char *p = data;
	struct hdr h;
	size_t blen;
	tz_t *tz;
	int rc;

	*out = NULL;
	if (len > TZ_FILE_MAX || read_hdr(p, len, &h) < 0) {
		set_err(err, errlen, "not a TZif file");
		return -EINVAL;
	}
	blen = block_len(&h, 4);
	if (blen > len - 44) {
		set_err(err, errlen, "truncated TZif file");
		return -EINVAL;
	}
	tz = xcalloc(1, sizeof(*tz));
	set_name(tz, name);
	if (h.version == 0 || h.version < '2') {
		/* Version 1: 32-bit data, no footer. */
		rc = read_block(p + 44, &h, 4, tz, err, errlen);
		if (rc < 0)
			goto fail;
		*out = tz;
		return 0;
	}
	p += 44 + blen;
	len -= 44 + blen;
	if (read_hdr(p, len, &h) < 0 || h.version < '2') {
		set_err(err, errlen, "no TZif version 2+ header");
		rc = -EINVAL;
		goto fail;
	}
	blen = block_len(&h, 8);
	if (blen > len - 44) {
		set_err(err, errlen, "truncated TZif file");
		rc = -EINVAL;
		goto fail;
	}
	rc = read_block(p + 44, &h, 8, tz, err, errlen);
	if (rc < 0)
		goto fail;
	p += 44 + blen;
	len -= 44 + blen;
	/* The footer: "\nTZ\n", TZ possibly empty (no rule: the last offset stays). */
	if (len > 0) {
		const unsigned char *nl = len > 1 ? memchr(p + 1, '\n', len - 1) : NULL;
		if (p[0] != '\n' || !nl) {
			set_err(err, errlen, "bad TZif footer");
			rc = -EINVAL;
			goto fail;
		}
		if (nl > p + 1) {
			if (parse_rule((const char *)p + 1, (size_t)(nl - p - 1), &tz->rule) < 0) {
				set_err(err, errlen, "bad TZif footer rule \"%.*s\"",
					(int)(nl - p - 1 > 64 ? 64 : nl - p - 1), p + 1);
				rc = -EINVAL;
				goto fail;
			}
			tz->has_rule = true;
		}
	}
	*out = tz;
	return 0;
fail:
	tz_free(tz);
	return rc;
}

int tz_parse_posix(const char *s, const char *name, tz_t **out)
{
	tz_t *tz = xcalloc(1, sizeof(*tz));

	*out = NULL;
	if (parse_rule(s, strlen(s), &tz->rule) < 0) {
		free(tz);
		return -EINVAL;
	}
	set_name(tz, name);
	tz->has_rule = true;
	tz->off0 = tz->rule.std_off;
	*out = tz;
	return 0;
}

/* ---- The cache ---- */

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static tz_t *cache;

static int load(const char *name, tz_t **out, char *err, size_t errlen)
{
	const char *dir = getenv("TZDIR");
	char path[4096];
	char *data;
	size_t len;
	int rc;

	if (!dir || !*dir)
		dir = "/usr/share/zoneinfo";
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
		set_err(err, errlen, "zone %s: path too long", name);
		return -EINVAL;
	}
	rc = fs_read_all(path, TZ_FILE_MAX, &data, &len);
	if (rc == -ENOENT || rc == -ENOTDIR || rc == -EISDIR) {
		set_err(err, errlen, "no such zone: %s", name);
		return -ENOENT;
	}
	if (rc < 0) {
		set_err(err, errlen, "zone %s: %s", name, strerror(-rc));
		return rc == -EFBIG ? -EINVAL : rc;
	}
	rc = tz_parse(data, len, name, out, err, errlen);
	free(data);
	if (rc < 0) {
		char why[128];
		snprintf(why, sizeof(why), "%s", err && errlen ? err : "bad TZif file");
		set_err(err, errlen, "zone %s: %s", name, why);
	}
	return rc;
}

int tz_get(const char *name, const tz_t **out, char *err, size_t errlen)
{
	tz_t *tz;
	int rc = 0;

	*out = NULL;
	if (!tz_name_ok(name)) {
		set_err(err, errlen, "not a zone name");
		return -EINVAL;
	}
	/* Loading under the lock: a zone is read once, however many ask. */
	pthread_mutex_lock(&cache_mu);
	for (tz = cache; tz; tz = tz->next)
		if (strcmp(tz->name, name) == 0)
			break;
	if (!tz) {
		rc = load(name, &tz, err, errlen);
		if (rc == 0) {
			tz->next = cache;
			cache = tz;
		}
	}
	pthread_mutex_unlock(&cache_mu);
	if (rc == 0)
		*out = tz;
	return rc;
}
