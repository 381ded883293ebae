/* syslog_vectors.c - checks logsift's parsers against rsyslog's own parser
 * test vectors (JSON lines: id, suite, input, expected{property: value},
 * config, needs_local_hostname, ambiguous_split).
 *
 *   build/tools/syslog_vectors FILE.jsonl
 *
 * Every input goes through lsf_parse_event with auto-detection, UTC for
 * zone-less times and 2018-07-03T00:00:00Z as the received time (the date
 * of the vectors, for year inference). Each expected property is compared:
 * pri, facility, severity, hostname, programname, syslogtag, msg, pid,
 * severity_num and the timestamp renderings.
 *
 * Design: rsyslog escapes control characters (and, if configured, 8-bit
 * bytes) on receipt, before parsing, while logsift keeps the bytes and lets
 * the JSON writer escape them; so logsift's values are escaped here the way
 * the vector's config tells rsyslog to (#ooo, \ooo, C style, TAB on/off).
 * rsyslog's MSG of an RFC 3164 line keeps the space after the tag; logsift's
 * message does not, so one leading space is dropped from the expectation.
 * rsyslog's syslogtag is rebuilt from the event: the record bytes from
 * process.name to the message (RFC 3164), or APP-NAME[PROCID] (RFC 5424).
 * Deliberate differences (tests/fixtures/syslog-vectors-deviations.md) are
 * recognised by precise conditions and reported as "pass (deviation)".
 *
 * Exit status: 0 when the core suites (parse1, parse2, parse_8bit_escape,
 * parse-nodate, ts3164, ts3339, subsecond, rfctag, nolimittag; vectors not
 * marked ambiguous_split) pass at >= 95%, 1 otherwise, 77 when the file is
 * missing, 2 on a malformed file. The other suites are reported only.
 * Threads: single-threaded.
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/event.h"
#include "parsers/parse.h"

#define REF_NS (1530576000LL * 1000000000LL) /* 2018-07-03T00:00:00Z */

static const char *const core_suites[] = {"parse1",  "parse2", "parse_8bit_escape", "parse-nodate", "ts3164",
                                          "ts3339",  "subsecond", "rfctag",        "nolimittag"};

static bool is_core_suite(const char *s)
{
    for (size_t i = 0; i < sizeof(core_suites) / sizeof(core_suites[0]); i++)
        if (strcmp(s, core_suites[i]) == 0)
            return true;
    return false;
}

/* ---- growable string ---------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_put(sbuf *s, const void *p, size_t n)
{
    if (s->n + n + 1 > s->cap) {
        size_t c = s->cap ? s->cap : 64;
        while (c < s->n + n + 1)
            c *= 2;
        s->p = realloc(s->p, c);
        if (!s->p) {
            perror("realloc");
            exit(2);
        }
        s->cap = c;
    }
    memcpy(s->p + s->n, p, n);
    s->n += n;
    s->p[s->n] = 0;
}

static void sb_putc(sbuf *s, char c)
{
    sb_put(s, &c, 1);
}

static void sb_clear(sbuf *s)
{
    s->n = 0;
    if (s->p)
        s->p[0] = 0;
}

/* ---- rsyslog's receive-time escaping ---------------------------------------- */

typedef struct escmode {
    bool cc;     /* escape control characters */
    bool tab;    /* ... including TAB */
    bool bit8;   /* escape bytes > 127 */
    bool cstyle; /* \t, \xHH instead of #ooo */
    char prefix; /* of #ooo */
} escmode;

static bool cfg_on(const char *v)
{
    while (*v == ' ' || *v == '"' || *v == '=')
        v++;
    return strncasecmp(v, "on", 2) == 0 || strncasecmp(v, "yes", 3) == 0 || strncmp(v, "1", 1) == 0;
}

/* Value after a legacy "$Directive " or a RainerScript "name=" */
static const char *cfg_match(const char *line, const char *legacy, const char *rs)
{
    size_t n = strlen(legacy);
    if (strncasecmp(line, legacy, n) == 0 && line[n] == ' ')
        return line + n + 1;
    n = strlen(rs);
    if (strncasecmp(line, rs, n) == 0 && line[n] == '=')
        return line + n + 1;
    return NULL;
}

static escmode escmode_of(json_t *config)
{
    escmode m = {true, true, false, false, '#'};
    size_t i;
    json_t *v;
    json_array_foreach(config, i, v)
    {
        const char *l = json_string_value(v), *x;
        if (!l)
            continue;
        while (*l == ' ')
            l++;
        if ((x = cfg_match(l, "$EscapeControlCharactersOnReceive", "parser.escapeControlCharactersOnReceive")))
            m.cc = cfg_on(x);
        else if ((x = cfg_match(l, "$EscapeControlCharacterTab", "parser.escapeControlCharacterTab")))
            m.tab = cfg_on(x);
        else if ((x = cfg_match(l, "$Escape8BitCharactersOnReceive", "parser.escape8BitCharactersOnReceive")))
            m.bit8 = cfg_on(x);
        else if ((x = cfg_match(l, "$EscapeControlCharactersCStyle", "parser.escapeControlCharactersCStyle")))
            m.cstyle = cfg_on(x);
        else if ((x = cfg_match(l, "$ControlCharacterEscapePrefix", "parser.controlCharacterEscapePrefix"))) {
            if (*x == '"')
                x++;
            if (*x)
                m.prefix = *x;
        }
    }
    return m;
}

static void escape(const escmode *m, const char *p, size_t n, sbuf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    sb_clear(out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        bool esc = (c < 32 && (c != '\t' || m->tab) && (c == 0 || m->cc)) || (c > 127 && m->bit8);
        if (!esc) {
            sb_putc(out, (char)c);
        } else if (m->cstyle) {
            const char *cs = NULL;
            switch (c) {
            case 0: cs = "\\0"; break;
            case '\a': cs = "\\a"; break;
            case '\b': cs = "\\b"; break;
            case 27: cs = "\\e"; break;
            case '\f': cs = "\\f"; break;
            case '\n': cs = "\\n"; break;
            case '\r': cs = "\\r"; break;
            case '\t': cs = "\\t"; break;
            case '\v': cs = "\\v"; break;
            }
            if (cs && c < 32) {
                sb_put(out, cs, 2);
            } else {
                char x[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
                sb_put(out, x, 4);
            }
        } else {
            char o[4] = {m->prefix, (char)('0' + (c >> 6)), (char)('0' + ((c >> 3) & 7)), (char)('0' + (c & 7))};
            sb_put(out, o, 4);
        }
    }
    if (!out->p)
        sb_put(out, "", 0);
}

/* ---- time renderings -------------------------------------------------------- */

/* The sender's UTC offset in seconds when the record's timestamp is an RFC
 * 3339 one with a numeric zone (rsyslog renders times in that zone). */
static long sender_offset(const char *in, size_t n)
{
    size_t i = 0;
    if (i < n && in[i] == '<') {
        while (i < n && in[i] != '>')
            i++;
        i++;
    }
    if (i + 1 < n && in[i] == '1' && in[i + 1] == ' ')
        i += 2;
    size_t s = i;
    while (i < n && in[i] != ' ')
        i++;
    if (i - s < 20 || in[s + 10] != 'T')
        return 0;
    for (size_t k = s + 19; k < i; k++) {
        if (in[k] == '+' || in[k] == '-') {
            int hh = 0, mm = 0;
            if (sscanf(in + k + 1, "%2d:%2d", &hh, &mm) != 2)
                return 0;
            return (in[k] == '-' ? -1 : 1) * (hh * 3600L + mm * 60L);
        }
    }
    return 0;
}

static void broken_down(int64_t ns, long off, struct tm *tm)
{
    time_t t = (time_t)((ns >= 0 ? ns : ns - 999999999) / 1000000000LL) + off;
    gmtime_r(&t, tm);
}

static const char *const mon[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static void render_3164(int64_t ns, long off, char *buf)
{
    struct tm tm;
    broken_down(ns, off, &tm);
    sprintf(buf, "%s %2d %02d:%02d:%02d", mon[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* An independent RFC 3339 reader for the expectations (sscanf + timegm). */
static bool expected_3339(const char *s, int64_t *ns)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
        return false;
    const char *p = s + n;
    int64_t frac = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 9)
                frac = frac * 10 + (*p - '0');
        for (; digits < 9; digits++)
            frac *= 10;
    }
    long off = 0;
    if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
            return false;
        off = (*p == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
    } else if (*p != 'Z') {
        return false;
    }
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *ns = ((int64_t)timegm(&tm) - off) * 1000000000LL + frac;
    return true;
}

/* ---- one vector -------------------------------------------------------------- */

enum { R_SKIP, R_MATCH, R_DEV, R_FAIL };

typedef struct result {
    int worst; /* R_MATCH, R_DEV or R_FAIL */
    sbuf report;
    sbuf devs;
} result;

static void note_dev(result *r, const char *name)
{
    if (r->devs.p && strstr(r->devs.p, name))
        return;
    if (r->devs.n)
        sb_put(&r->devs, ",", 1);
    sb_put(&r->devs, name, strlen(name));
}

static void show(sbuf *out, const char *s, size_t n)
{
    sb_putc(out, '"');
    for (size_t i = 0; i < n && i < 160; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 32 || c == 127 || c == '"' || c == '\\') {
            char x[8];
            snprintf(x, sizeof x, "\\x%02x", c);
            sb_put(out, x, strlen(x));
        } else {
            sb_putc(out, (char)c);
        }
    }
    if (n > 160)
        sb_put(out, "...", 3);
    sb_putc(out, '"');
}

static void verdict(result *r, const char *prop, int v, const char *exp, const char *got, size_t gotn)
{
    if (v == R_DEV && r->worst < R_DEV)
        r->worst = R_DEV;
    if (v == R_FAIL) {
        r->worst = R_FAIL;
        sb_put(&r->report, "      ", 6);
        sb_put(&r->report, prop, strlen(prop));
        sb_put(&r->report, ": expected ", 11);
        show(&r->report, exp, strlen(exp));
        sb_put(&r->report, " got ", 5);
        show(&r->report, got, gotn);
        sb_putc(&r->report, '\n');
    }
}

/* rsyslog's syslogtag, rebuilt from the event. */
static void syslogtag(const lsf_event *ev, sbuf *out)
{
    sb_clear(out);
    if (ev->format == LSF_FMT_RFC5424) {
        if (ev->app.ptr)
            sb_put(out, ev->app.ptr, ev->app.len);
        else
            sb_put(out, "-", 1);
        if (ev->procid.ptr) {
            sb_putc(out, '[');
            sb_put(out, ev->procid.ptr, ev->procid.len);
            sb_putc(out, ']');
        }
    } else if (ev->format == LSF_FMT_RFC3164) {
        const char *s = ev->app.ptr ? ev->app.ptr : ev->procid.ptr ? ev->procid.ptr - 1 : NULL;
        const char *e = ev->message.ptr;
        if (s && e > s) {
            if (e[-1] == ' ' || e[-1] == '\t')
                e--;
            sb_put(out, s, (size_t)(e - s));
        }
    }
    if (!out->p)
        sb_put(out, "", 0);
}

static int check(json_t *vec, const char *input, size_t inlen, result *r, bool *core)
{
    const char *suite = json_string_value(json_object_get(vec, "suite"));
    json_t *exp = json_object_get(vec, "expected");
    if (!suite || !json_is_object(exp))
        return -1;
    bool local_host = json_is_true(json_object_get(vec, "needs_local_hostname"));
    *core = is_core_suite(suite) && !json_is_true(json_object_get(vec, "ambiguous_split"));
    escmode em = escmode_of(json_object_get(vec, "config"));

    lsf_batch *b = lsf_batch_new(4);
    lsf_event *ev = lsf_batch_push_record(b, input, inlen, REF_NS);
    lsf_parse_opts opts = {.format = LSF_FMT_NONE, .tz_mode = LSF_TZ_UTC};
    lsf_parse_event(b, ev, &opts);

    sbuf got = {0}, tmp = {0}, tag = {0};
    char num[64];
    long off = sender_offset(input, inlen);
    syslogtag(ev, &tag);
    const char *e_host = json_string_value(json_object_get(exp, "hostname"));
    const char *e_tag = json_string_value(json_object_get(exp, "syslogtag"));
    const char *e_msg = json_string_value(json_object_get(exp, "msg"));

    /* Vector-wide deviations. */
    bool dev_plain = false, dev_tabtag = false;
    if (ev->format == LSF_FMT_RAW && ev->pri < 0 && input[0] != '<' && e_host && e_tag && e_msg) {
        /* D3: plain text is not split into host and tag; the text is kept whole. */
        sbuf whole = {0};
        sb_put(&whole, e_host, strlen(e_host));
        sb_putc(&whole, ' ');
        sb_put(&whole, e_tag, strlen(e_tag));
        sb_put(&whole, e_msg, strlen(e_msg));
        escape(&em, ev->message.ptr, ev->message.len, &tmp);
        dev_plain = strcmp(whole.p, tmp.p) == 0;
        free(whole.p);
    }
    if (ev->format == LSF_FMT_RFC3164 && ev->app.ptr && e_tag && e_msg &&
        ev->app.ptr + ev->app.len < ev->raw.ptr + ev->raw.len && ev->app.ptr[ev->app.len] == '\t') {
        /* D5: a TAB ends the tag. */
        sbuf whole = {0}, ours = {0};
        sb_put(&whole, e_tag, strlen(e_tag));
        sb_put(&whole, e_msg, strlen(e_msg));
        sb_put(&ours, ev->app.ptr, (size_t)(ev->message.ptr + ev->message.len - ev->app.ptr));
        escape(&em, ours.p, ours.n, &tmp);
        dev_tabtag = strcmp(whole.p, tmp.p) == 0;
        free(whole.p);
        free(ours.p);
    }
    if (dev_plain)
        note_dev(r, "D3-plain-text");
    if (dev_tabtag)
        note_dev(r, "D5-tab-ends-tag");

    const char *prop;
    json_t *jv;
    json_object_foreach(exp, prop, jv)
    {
        const char *e = json_string_value(jv);
        if (!e)
            continue;
        int v = R_SKIP;
        sb_clear(&got);
        if (!strcmp(prop, "pri") || !strcmp(prop, "facility") || !strcmp(prop, "severity") ||
            !strcmp(prop, "severity_num")) {
            const char *s = NULL;
            if (ev->pri >= 0) {
                if (!strcmp(prop, "pri"))
                    snprintf(num, sizeof num, "%d", ev->pri), s = num;
                else if (!strcmp(prop, "severity_num"))
                    snprintf(num, sizeof num, "%d", ev->pri & 7), s = num;
                else
                    s = !strcmp(prop, "facility") ? lsf_facility_name(ev->pri >> 3) : lsf_severity_name(ev->pri & 7);
            }
            sb_put(&got, s ? s : "", s ? strlen(s) : 0);
            if (s && !strcmp(s, e)) {
                v = R_MATCH;
            } else if (!s && input[0] != '<' &&
                       (!strcmp(e, "13") || !strcmp(e, "user") || !strcmp(e, "notice") || !strcmp(e, "5"))) {
                v = R_DEV; /* D1: no PRI in the record: none invented */
                note_dev(r, "D1-no-pri");
            } else if (!s && ev->format == LSF_FMT_RAW && input[0] == '<' &&
                       (!strcmp(e, "199") || !strcmp(e, "invld") || !strcmp(e, "debug") || !strcmp(e, "7"))) {
                v = R_DEV; /* D2: an invalid PRI leaves the record raw, pri absent */
                note_dev(r, "D2-invalid-pri");
            } else {
                v = R_FAIL;
            }
        } else if (!strcmp(prop, "hostname")) {
            if (ev->host.ptr)
                escape(&em, ev->host.ptr, ev->host.len, &got);
            if (local_host || !strcmp(e, "<LOCAL_HOSTNAME>")) {
                v = ev->host.ptr ? R_FAIL : R_MATCH;
            } else if (got.p && !strcmp(got.p, e)) {
                v = R_MATCH;
            } else if (!ev->host.ptr && ev->format == LSF_FMT_RFC5424 && !strcmp(e, "-")) {
                v = R_DEV; /* D7: NILVALUE is an absent field */
                note_dev(r, "D7-nil-hostname");
            } else {
                v = R_FAIL;
            }
            if (v == R_FAIL && dev_plain)
                v = R_DEV;
        } else if (!strcmp(prop, "programname")) {
            if (ev->app.ptr)
                escape(&em, ev->app.ptr, ev->app.len, &got);
            else
                sb_put(&got, "", 0);
            if (!strcmp(got.p, e)) {
                v = R_MATCH;
            } else if (ev->format == LSF_FMT_RFC5424 && e[0] == 0) {
                v = R_DEV; /* D4: rsyslog 8.37 leaves programname empty for RFC 5424 */
                note_dev(r, "D4-5424-programname");
            } else if (strchr(got.p, '/') && strncmp(got.p, e, strlen(e)) == 0 && got.p[strlen(e)] == '/') {
                v = R_DEV; /* D6: process.name keeps the '/' */
                note_dev(r, "D6-slash-in-programname");
            } else {
                v = (dev_plain || dev_tabtag) ? R_DEV : R_FAIL;
            }
        } else if (!strcmp(prop, "syslogtag") || !strcmp(prop, "syslogtag_1_32")) {
            escape(&em, tag.p, tag.n, &got);
            if (!strcmp(prop, "syslogtag_1_32") && got.n > 32)
                got.p[got.n = 32] = 0;
            v = !strcmp(got.p, e) ? R_MATCH : (dev_plain || dev_tabtag) ? R_DEV : R_FAIL;
        } else if (!strcmp(prop, "msg")) {
            escape(&em, ev->message.ptr, ev->message.len, &got);
            const char *ee = e;
            if (ev->format == LSF_FMT_RFC3164 && ee[0] == ' ')
                ee++; /* rsyslog keeps the space after the tag */
            v = !strcmp(got.p, ee) ? R_MATCH : (dev_plain || dev_tabtag) ? R_DEV : R_FAIL;
        } else if (!strcmp(prop, "pid")) {
            if (ev->procid.ptr)
                sb_put(&got, ev->procid.ptr, ev->procid.len);
            else
                sb_put(&got, "", 0);
            v = !strcmp(got.p, e) ? R_MATCH : R_FAIL;
        } else if (!strcmp(prop, "timestamp") || !strcmp(prop, "timestamp_rfc3164")) {
            if (ev->flags & LSF_EV_TIME_GUESSED)
                continue; /* rsyslog shows its own receive time: not comparable */
            render_3164(ev->time_ns, off, num);
            sb_put(&got, num, strlen(num));
            v = !strcmp(num, e) ? R_MATCH : R_FAIL;
        } else if (!strcmp(prop, "timestamp_rfc3339")) {
            int64_t ens;
            snprintf(num, sizeof num, "%lld ns", (long long)ev->time_ns);
            sb_put(&got, num, strlen(num));
            v = expected_3339(e, &ens) && ens == ev->time_ns ? R_MATCH : R_FAIL;
        } else if (!strcmp(prop, "timestamp_subseconds")) {
            int64_t fr = ev->time_ns % 1000000000LL, want = 0;
            int digits = 0;
            for (const char *q = e; *q >= '0' && *q <= '9'; q++, digits++)
                want = want * 10 + (*q - '0');
            while (digits < 9 && digits > 0)
                want *= 10, digits++;
            snprintf(num, sizeof num, "%09lld", (long long)fr);
            sb_put(&got, num, strlen(num));
            v = fr == want ? R_MATCH : R_FAIL;
        } else if (!strcmp(prop, "timestamp_mysql") || !strcmp(prop, "timestamp_pgsql") ||
                   !strcmp(prop, "timereported_rfc3339_1_19")) {
            struct tm tm;
            broken_down(ev->time_ns, off, &tm);
            const char *fmt = !strcmp(prop, "timestamp_mysql")   ? "%Y%m%d%H%M%S"
                              : !strcmp(prop, "timestamp_pgsql") ? "%Y-%m-%d %H:%M:%S"
                                                                 : "%Y-%m-%dT%H:%M:%S";
            strftime(num, sizeof num, fmt, &tm);
            sb_put(&got, num, strlen(num));
            /* The year of an RFC 3164 time is the test run's: compare the rest. */
            bool no_year = ev->format == LSF_FMT_RFC3164 && strlen(e) == strlen(num);
            v = !strcmp(num, e) || (no_year && !strcmp(num + 4, e + 4)) ? R_MATCH : R_FAIL;
        } else {
            continue; /* a property logsift has no equivalent for */
        }
        verdict(r, prop, v, e, got.p ? got.p : "", got.n);
    }
    free(got.p);
    free(tmp.p);
    free(tag.p);
    lsf_batch_free(b);
    return 0;
}

/* ---- input ------------------------------------------------------------------- */

/* Bytes that are not UTF-8 are written as lone surrogates \udcXX, which
 * jansson rejects: map them to U+F8XX here and back to the byte after
 * decoding. */
static void mark_surrogates(char *line)
{
    for (char *p = line; *p; p++) {
        if (*p != '\\')
            continue;
        if (p[1] == 'u' && (p[2] == 'd' || p[2] == 'D') && (p[3] == 'c' || p[3] == 'C')) {
            p[2] = 'f';
            p[3] = '8';
        }
        p++; /* skip the escaped character */
        if (!*p)
            break;
    }
}

static size_t unmark_surrogates(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0xEF && i + 2 < n && (unsigned char)s[i + 1] >= 0xA0 && (unsigned char)s[i + 1] <= 0xA3) {
            unsigned cp = ((unsigned)(s[i + 1] & 0x3F) << 6) | (unsigned)(s[i + 2] & 0x3F);
            out[o++] = (char)(cp & 0xFF);
            i += 2;
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

typedef struct tally {
    char suite[64];
    int n, strict, dev, fail;
    bool core;
} tally;

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s VECTORS.jsonl\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        if (errno == ENOENT) {
            printf("dataset missing: %s\n", argv[1]);
            return 77;
        }
        perror(argv[1]);
        return 2;
    }
    tally t[64];
    int nt = 0;
    int core_n = 0, core_pass = 0, other_n = 0, other_pass = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0;
    sbuf failures = {0};
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[0] == '\n')
            continue;
        mark_surrogates(line);
        json_error_t err;
        json_t *vec = json_loads(line, JSON_ALLOW_NUL, &err);
        json_t *jin = vec ? json_object_get(vec, "input") : NULL;
        const char *suite = vec ? json_string_value(json_object_get(vec, "suite")) : NULL;
        if (!json_is_string(jin) || !suite) {
            fprintf(stderr, "%s:%d: not a vector (%s)\n", argv[1], lineno, vec ? "fields" : err.text);
            return 2;
        }
        size_t inlen = json_string_length(jin);
        char *input = malloc(inlen + 1);
        inlen = unmark_surrogates(json_string_value(jin), inlen, input);
        input[inlen] = 0;

        result r = {R_MATCH, {0}, {0}};
        bool core = false;
        if (check(vec, input, inlen, &r, &core) < 0) {
            fprintf(stderr, "%s:%d: malformed vector\n", argv[1], lineno);
            return 2;
        }
        tally *ty = NULL;
        for (int i = 0; i < nt; i++)
            if (strcmp(t[i].suite, suite) == 0 && t[i].core == core)
                ty = &t[i];
        if (!ty && nt < 64) {
            ty = &t[nt++];
            memset(ty, 0, sizeof(*ty));
            snprintf(ty->suite, sizeof ty->suite, "%s", suite);
            ty->core = core;
        }
        if (ty) {
            ty->n++;
            ty->strict += r.worst == R_MATCH;
            ty->dev += r.worst == R_DEV;
            ty->fail += r.worst == R_FAIL;
        }
        bool pass = r.worst != R_FAIL;
        if (core) {
            core_n++;
            core_pass += pass;
        } else {
            other_n++;
            other_pass += pass;
        }
        const char *id = json_string_value(json_object_get(vec, "id"));
        if (!pass) {
            char hdr[256];
            snprintf(hdr, sizeof hdr, "  FAIL %s%s\n    input: ", id ? id : "?", core ? "" : " (report only)");
            sb_put(&failures, hdr, strlen(hdr));
            show(&failures, input, inlen);
            sb_putc(&failures, '\n');
            sb_put(&failures, r.report.p, r.report.n);
        } else if (r.worst == R_DEV) {
            char hdr[512];
            snprintf(hdr, sizeof hdr, "  pass (deviation %s) %s\n", r.devs.p ? r.devs.p : "", id ? id : "?");
            sb_put(&failures, hdr, strlen(hdr));
        }
        free(r.report.p);
        free(r.devs.p);
        free(input);
        json_decref(vec);
    }
    free(line);
    fclose(f);

    printf("rsyslog parser vectors: %s\n\n", argv[1]);
    printf("  %-28s %5s %6s %9s %5s\n", "suite", "n", "strict", "deviation", "fail");
    for (int pass_core = 1; pass_core >= 0; pass_core--)
        for (int i = 0; i < nt; i++)
            if (t[i].core == (bool)pass_core) {
                printf("  %-19.19s %-8s %5d %6d %9d %5d\n", t[i].suite, t[i].core ? "" : "(report)", t[i].n,
                       t[i].strict, t[i].dev, t[i].fail);
            }
    printf("\n");
    if (failures.n)
        fputs(failures.p, stdout);
    free(failures.p);
    double core_rate = core_n ? 100.0 * core_pass / core_n : 0;
    double other_rate = other_n ? 100.0 * other_pass / other_n : 0;
    printf("\ncore suites: %d/%d pass (%.1f%%, need >= 95%%)\n", core_pass, core_n, core_rate);
    printf("other suites (report only): %d/%d pass (%.1f%%)\n", other_pass, other_n, other_rate);
    bool ok = core_n > 0 && core_rate >= 95.0;
    printf("%s - rsyslog parser vectors: core suites %.1f%%\n", ok ? "ok" : "not ok", core_rate);
    return ok ? 0 : 1;
}
