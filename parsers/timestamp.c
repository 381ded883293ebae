/* timestamp.c - RFC 3339, RFC 3164 ("Mmm dd hh:mm:ss") and epoch timestamps
 * to ns since the epoch, UTC.
 *
 * Design: hand-written scanners and civil-date arithmetic (days from a
 * proleptic Gregorian date), never sscanf/strptime/mktime. Zone-less times
 * take the zone of the options; for the local zone the UTC offset of each
 * 15-minute slot (every zone's DST switch falls on a quarter hour) is
 * computed once with localtime_r and kept in a small per-thread cache, so a
 * line costs a table look-up and DST changes are still honoured.
 * Threads: pure functions of their arguments; the offset cache is
 * thread-local.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "parsers/parse.h"

#define NS 1000000000LL
/* How far after the reception time a year-less timestamp may lie (clock
 * skew, queued and replayed logs; about "next month", as rsyslog allows)
 * before it is taken as last year's. */
#define FUTURE_SLACK_S (62 * 86400)

/* Seconds that still fit in int64 nanoseconds (years 1678..2262). */
#define MAX_S (INT64_MAX / NS - 1)

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int mdays(int64_t y, int m)
{
    static const int t[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : t[m - 1];
}

/* The UTC year of a time in seconds. */
static int64_t year_of(int64_t s)
{
    int64_t z = (s >= 0 ? s : s - 86399) / 86400 + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    return yoe + era * 400 + (mp >= 10);
}

/* ---- local zone offsets -------------------------------------------------- */

#define SLOT_S 900
#define NCACHE 61 /* prime: slots a day apart must not collide */
static _Thread_local struct {
    int64_t slot;
    int32_t off;
    bool used;
} off_cache[NCACHE];

/* UTC offset (seconds east) of the local zone at the UTC instant `t`. */
static int32_t local_offset_at(int64_t t)
{
    int64_t slot = (t >= 0 ? t : t - (SLOT_S - 1)) / SLOT_S;
    unsigned i = (unsigned)((uint64_t)slot % NCACHE);
    if (off_cache[i].used && off_cache[i].slot == slot)
        return off_cache[i].off;
    time_t tt = (time_t)(slot * SLOT_S);
    struct tm tm;
    int32_t off = 0;
    if (localtime_r(&tt, &tm))
        off = (int32_t)tm.tm_gmtoff;
    off_cache[i].slot = slot;
    off_cache[i].off = off;
    off_cache[i].used = true;
    return off;
}

/* Converts wall-clock seconds (a local time written as if it were UTC) in
 * the zone of the options to UTC seconds. Offsets a day before and after
 * bracket any DST switch: in an overlap the first occurrence wins, in a gap
 * the offset from before the switch is used. */
static int64_t wall_to_utc(int64_t wall, const lsf_parse_opts *opts)
{
    int mode = opts ? opts->tz_mode : LSF_TZ_UTC;
    if (mode == LSF_TZ_UTC)
        return wall;
    if (mode == LSF_TZ_FIXED)
        return wall - opts->tz_offset_s;
    int32_t oa = local_offset_at(wall - 86400), ob = local_offset_at(wall + 86400);
    int64_t ua = wall - oa;
    if (oa == ob)
        return ua;
    int64_t ub = wall - ob;
    bool va = local_offset_at(ua) == oa, vb = local_offset_at(ub) == ob;
    if (va && vb)
        return ua < ub ? ua : ub;
    if (vb)
        return ub;
    return ua;
}

/* ---- small scanners ------------------------------------------------------- */

static bool dig(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads exactly `w` digits at p[*i]. */
static bool fixed(const char *p, size_t n, size_t *i, int w, int *out)
{
    if (*i + (size_t)w > n)
        return false;
    int v = 0;
    for (int k = 0; k < w; k++) {
        char c = p[*i + (size_t)k];
        if (!dig(c))
            return false;
        v = v * 10 + (c - '0');
    }
    *i += (size_t)w;
    *out = v;
    return true;
}

/* Reads 1..maxw digits. */
static bool upto(const char *p, size_t n, size_t *i, int maxw, int *out)
{
    int v = 0, k = 0;
    while (*i < n && k < maxw && dig(p[*i])) {
        v = v * 10 + (p[*i] - '0');
        (*i)++;
        k++;
    }
    *out = v;
    return k > 0;
}

/* Reads ".ddd..." (at least one digit) into nanoseconds; extra digits beyond
 * nine are consumed and dropped. */
static bool frac(const char *p, size_t n, size_t *i, int64_t *ns)
{
    if (*i + 1 >= n || (p[*i] != '.' && p[*i] != ',') || !dig(p[*i + 1]))
        return false;
    size_t j = *i + 1;
    int64_t v = 0;
    int k = 0;
    while (j < n && dig(p[j])) {
        if (k < 9) {
            v = v * 10 + (p[j] - '0');
            k++;
        }
        j++;
    }
    while (k < 9) {
        v *= 10;
        k++;
    }
    *i = j;
    *ns = v;
    return true;
}

static bool finish(int64_t s, int64_t ns, int64_t *out)
{
    if (s > MAX_S || s < -MAX_S)
        return false;
    *out = s * NS + ns;
    return true;
}

/* ---- RFC 3339 --------------------------------------------------------------- */

/* YYYY-MM-DD(T|t|SP)HH:MM:SS[.frac][Z|z|+HH:MM|+HHMM|+HH]. Without a zone the
 * time is wall-clock time of opts' zone (NULL opts: UTC). Trailing text is
 * not consumed; the caller checks what follows. */
size_t lsf_ts_parse_rfc3339(const char *p, size_t n, const lsf_parse_opts *opts, int64_t *out_ns)
{
    size_t i = 0;
    int y, mo, d, h, mi, s;
    int64_t ns = 0;
    /* One-digit fields ("2003-9-1T1:0:0Z") are accepted, as rsyslog does. */
    if (!p || !fixed(p, n, &i, 4, &y) || i >= n || p[i++] != '-' || !upto(p, n, &i, 2, &mo) ||
        i >= n || p[i++] != '-' || !upto(p, n, &i, 2, &d) || i >= n)
        return 0;
    char sep = p[i++];
    if (sep != 'T' && sep != 't' && sep != ' ')
        return 0;
    if (!upto(p, n, &i, 2, &h) || i >= n || p[i++] != ':' || !upto(p, n, &i, 2, &mi) || i >= n ||
        p[i++] != ':' || !upto(p, n, &i, 2, &s))
        return 0;
    /* A day past the month's end (Feb 30) rolls over rather than making the
     * field a non-timestamp, as in rsyslog. */
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return 0;
    if (i < n && (p[i] == '.' || p[i] == ','))
        if (!frac(p, n, &i, &ns))
            return 0;
    int64_t wall = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    int64_t utc;
    if (i < n && (p[i] == 'Z' || p[i] == 'z')) {
        i++;
        utc = wall;
    } else if (i < n && (p[i] == '+' || p[i] == '-')) {
        int sign = p[i] == '-' ? -1 : 1;
        size_t j = i + 1;
        int oh, om = 0;
        if (!fixed(p, n, &j, 2, &oh) || oh > 23)
            return 0;
        if (j < n && p[j] == ':') {
            j++;
            if (!fixed(p, n, &j, 2, &om))
                return 0;
        } else if (j + 1 < n && dig(p[j]) && dig(p[j + 1])) {
            fixed(p, n, &j, 2, &om);
        }
        if (om > 59)
            return 0;
        i = j;
        utc = wall - sign * (oh * 3600 + om * 60);
    } else {
        utc = wall_to_utc(wall, opts);
    }
    if (!finish(utc, ns, out_ns))
        return 0;
    return i;
}

/* ---- RFC 3164 ---------------------------------------------------------------- */

/* Month from three letters, any case; 0 if none. */
static int month3(const char *p)
{
    char a = (char)(p[0] | 0x20), b = (char)(p[1] | 0x20), c = (char)(p[2] | 0x20);
    switch (a) {
    case 'j':
        if (b == 'a' && c == 'n')
            return 1;
        if (b == 'u' && c == 'n')
            return 6;
        if (b == 'u' && c == 'l')
            return 7;
        return 0;
    case 'f':
        return b == 'e' && c == 'b' ? 2 : 0;
    case 'm':
        if (b == 'a' && c == 'r')
            return 3;
        return b == 'a' && c == 'y' ? 5 : 0;
    case 'a':
        if (b == 'p' && c == 'r')
            return 4;
        return b == 'u' && c == 'g' ? 8 : 0;
    case 's':
        return b == 'e' && c == 'p' ? 9 : 0;
    case 'o':
        return b == 'c' && c == 't' ? 10 : 0;
    case 'n':
        return b == 'o' && c == 'v' ? 11 : 0;
    case 'd':
        return b == 'e' && c == 'c' ? 12 : 0;
    default:
        return 0;
    }
}

/* Reads "yyyy" (1970..2100) followed by a space. */
static bool year_sp(const char *p, size_t n, size_t *i, int *y)
{
    size_t j = *i;
    int v;
    if (!fixed(p, n, &j, 4, &v) || j >= n || p[j] != ' ' || v < 1970 || v > 2100)
        return false;
    *i = j + 1;
    *y = v;
    return true;
}

/* [yyyy SP] Mmm SP [SP] d[d] SP [yyyy SP] h[h]:mm:ss [.frac]
 * (the forms rsyslog accepts: leading year as Brocade sends, year before
 * the time as Cisco sends, sub-seconds as IOS sends). With no year in the
 * text, the year that puts the time nearest ref_ns is taken. */
/* The last year-less RFC 3164 time this thread resolved. Lines arrive in
 * bursts that share their second and their reference (arrival) second, and
 * the year inference below (up to six date conversions and three zone
 * lookups) then gives the same answer; the key holds everything it reads. */
static _Thread_local struct {
    int64_t tod, ref_s, utc;
    int mo, d, tz_mode;
    int32_t tz_offset_s;
    bool used;
} year_cache;

static void year_key(const lsf_parse_opts *opts, int *mode, int32_t *off)
{
    *mode = opts ? opts->tz_mode : LSF_TZ_UTC;
    *off = opts && *mode == LSF_TZ_FIXED ? opts->tz_offset_s : 0;
}

static bool year_cache_get(int mo, int d, int64_t tod, int64_t ref_ns, const lsf_parse_opts *opts,
                           int64_t *utc)
{
    int mode;
    int32_t off;
    year_key(opts, &mode, &off);
    if (!year_cache.used || year_cache.tod != tod || year_cache.d != d || year_cache.mo != mo ||
        year_cache.ref_s != ref_ns / NS || year_cache.tz_mode != mode ||
        year_cache.tz_offset_s != off)
        return false;
    *utc = year_cache.utc;
    return true;
}

static void year_cache_put(int mo, int d, int64_t tod, int64_t ref_ns, const lsf_parse_opts *opts,
                           int64_t utc)
{
    year_key(opts, &year_cache.tz_mode, &year_cache.tz_offset_s);
    year_cache.mo = mo;
    year_cache.d = d;
    year_cache.tod = tod;
    year_cache.ref_s = ref_ns / NS;
    year_cache.utc = utc;
    year_cache.used = true;
}

size_t lsf_ts_parse_3164(const char *p, size_t n, const lsf_parse_opts *opts, int64_t ref_ns,
                         int64_t *out_ns)
{
    size_t i = 0;
    int year = 0, mo, d, h, mi, s;
    int64_t ns = 0;
    if (!p || n < 3)
        return 0;
    if (dig(p[0]) && !year_sp(p, n, &i, &year))
        return 0;
    if (i + 4 > n || !(mo = month3(p + i)) || p[i + 3] != ' ')
        return 0;
    i += 4;
    if (i < n && p[i] == ' ')
        i++;
    if (!upto(p, n, &i, 2, &d) || i >= n || p[i++] != ' ')
        return 0;
    if (!year && i + 4 < n && dig(p[i + 2]))
        year_sp(p, n, &i, &year); /* "Mmm dd yyyy hh:mm:ss" */
    if (!upto(p, n, &i, 2, &h) || i >= n || p[i++] != ':' || !upto(p, n, &i, 2, &mi) || i >= n ||
        p[i++] != ':' || !upto(p, n, &i, 2, &s))
        return 0;
    if (d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return 0;
    if (i < n && p[i] == '.' && !frac(p, n, &i, &ns))
        return 0;
    int64_t tod = h * 3600 + mi * 60 + s;
    int64_t utc;
    if (!year && year_cache_get(mo, d, tod, ref_ns, opts, &utc)) {
        /* same date, time, reference second and zone as the last line */
    } else if (year) {
        utc = wall_to_utc(days_from_civil(year, mo, d) * 86400 + tod, opts);
    } else {
        /* The latest of next, this and last year that puts the time no
         * more than FUTURE_SLACK_S after the reference: logs come from the
         * past, give or take clock skew, so "Mar 3" received in November is
         * this March, and "Dec 31" received on Jan 1 is last year. A year
         * where the day exists (Feb 29) beats one where it does not. */
        int64_t ref = ref_ns / NS;
        int mode = opts ? opts->tz_mode : LSF_TZ_UTC;
        int64_t ref_wall = ref + (mode == LSF_TZ_FIXED ? opts->tz_offset_s
                                  : mode == LSF_TZ_LOCAL ? local_offset_at(ref) : 0);
        /* Compared in wall-clock time, one conversion at the end. */
        int64_t y0 = year_of(ref_wall), wall = 0;
        bool found = false;
        /* pass 0: the day exists and is not too far ahead; pass 1: the day
         * exists (Feb 29 seen in a common year); pass 2: last year. */
        for (int pass = 0; pass < 3 && !found; pass++) {
            for (int64_t y = y0 + 1; y >= y0 - 1; y--) {
                if (pass < 2 && d > mdays(y, mo))
                    continue;
                int64_t w = days_from_civil(y, mo, d) * 86400 + tod;
                if (pass == 1 || (pass == 0 && w <= ref_wall + FUTURE_SLACK_S) || y == y0 - 1) {
                    wall = w;
                    found = true;
                    break;
                }
            }
        }
        utc = wall_to_utc(wall, opts);
        year_cache_put(mo, d, tod, ref_ns, opts, utc);
    }
    if (!finish(utc, ns, out_ns))
        return 0;
    return i;
}

/* ---- epoch numbers ------------------------------------------------------------ */

/* The unit of an epoch number from its magnitude; see parse.h. */
static int64_t epoch_unit(double a)
{
    if (a < 1e11)
        return NS;      /* seconds (up to the year 5138) */
    if (a < 1e14)
        return 1000000; /* milliseconds */
    if (a < 1e17)
        return 1000;    /* microseconds */
    return 1;           /* nanoseconds */
}

int lsf_ts_from_epoch(double v, int64_t *out_ns)
{
    if (!(v > -9.2e18 && v < 9.2e18))
        return -1;
    int64_t unit = epoch_unit(v < 0 ? -v : v);
    int64_t iv = (int64_t)v;
    if ((double)iv == v) { /* integral: exact integer arithmetic */
        if (iv > INT64_MAX / unit || iv < -(INT64_MAX / unit))
            return -1;
        *out_ns = iv * unit;
        return 0;
    }
    double ns = v * (double)unit;
    if (!(ns > -9.2e18 && ns < 9.2e18))
        return -1;
    *out_ns = (int64_t)ns;
    return 0;
}

size_t lsf_ts_parse_epoch(const char *p, size_t n, int64_t *out_ns)
{
    size_t i = 0;
    if (!p)
        return 0;
    int64_t ip = 0;
    while (i < n && dig(p[i])) {
        if (ip > (INT64_MAX - 9) / 10)
            return 0;
        ip = ip * 10 + (p[i] - '0');
        i++;
    }
    if (i < 9) /* too short to be an epoch time (before 1973) */
        return 0;
    int64_t f = 0; /* the fraction, in billionths of the unit */
    if (i < n && p[i] == '.' && !frac(p, n, &i, &f))
        return 0;
    int64_t unit = epoch_unit((double)ip), fdiv = NS / unit;
    if (ip > INT64_MAX / unit - 1)
        return 0;
    *out_ns = ip * unit + f / fdiv;
    return i;
}
