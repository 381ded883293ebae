/* test_parsers.c - the parsers in parsers/ through lsf_parse_event.
 *
 * Design: one table per format; each row is a record, the options, and the
 * expected event (every well-known member, flags, and chosen fields). A
 * member given as NULL is not checked, ABSENT means "must be absent".
 * Robustness cases (NUL bytes, invalid UTF-8, 1 MB lines, garbage, lying
 * PRIs) also check that every slice stays inside the record.
 * Threads: single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parsers/parse.h"

#define NS 1000000000LL
#define S(x) ((int64_t)(x) * NS)
#define REF S(1530576000) /* 2018-07-03T00:00:00Z, the received time */
#define GUESS (-1)         /* expected time: the received time */
#define NOCHECK INT64_MIN

static const char ABSENT[] = "<absent>";

enum { AUTO = LSF_FMT_NONE, F5424 = LSF_FMT_RFC5424, F3164 = LSF_FMT_RFC3164, FJSON = LSF_FMT_JSON,
       FKV = LSF_FMT_KV, FRAW = LSF_FMT_RAW };
enum { PF = LSF_EV_PARSE_FAILURE, TG = LSF_EV_TIME_GUESSED };

typedef struct fexp {
    const char *name;
    int type;        /* enum lsf_type */
    const char *s;   /* LSF_T_STR / LSF_T_JSON */
    int64_t i;       /* LSF_T_INT / LSF_T_BOOL */
} fexp;

typedef struct pcase {
    const char *in;
    int format;      /* configured format */
    int body_json;
    int fmt;         /* expected ev->format */
    int pri;
    const char *host, *app, *procid, *msgid, *sd, *msg;
    int64_t time_ns; /* GUESS, NOCHECK or ns */
    uint16_t flags;  /* exactly these of PF|TG */
    fexp f[6];
} pcase;

static int check_slice(const char *what, const char *in, lsf_str got, const char *want)
{
    if (!want)
        return 0;
    if (want == ABSENT) {
        if (got.ptr) {
            print_error("'%s': %s should be absent, got '%.*s'\n", in, what, (int)got.len, got.ptr);
            return 1;
        }
        return 0;
    }
    if (!got.ptr || got.len != strlen(want) || memcmp(got.ptr, want, got.len) != 0) {
        print_error("'%s': %s = '%.*s', want '%s'\n", in, what, got.ptr ? (int)got.len : 6,
                    got.ptr ? got.ptr : "<null>", want);
        return 1;
    }
    return 0;
}

static int check_case(const pcase *c)
{
    lsf_batch *b = lsf_batch_new(4);
    lsf_event *ev = lsf_batch_push_record(b, c->in, strlen(c->in), REF);
    lsf_parse_opts o = {.format = c->format, .tz_mode = LSF_TZ_UTC, .body_json = c->body_json != 0};
    lsf_parse_event(b, ev, &o);
    int bad = 0;
    if (ev->format != c->fmt) {
        print_error("'%s': format %d, want %d\n", c->in, ev->format, c->fmt);
        bad++;
    }
    if (ev->pri != c->pri) {
        print_error("'%s': pri %d, want %d\n", c->in, ev->pri, c->pri);
        bad++;
    }
    bad += check_slice("host", c->in, ev->host, c->host);
    bad += check_slice("app", c->in, ev->app, c->app);
    bad += check_slice("procid", c->in, ev->procid, c->procid);
    bad += check_slice("msgid", c->in, ev->msgid, c->msgid);
    bad += check_slice("sd", c->in, ev->sd, c->sd);
    bad += check_slice("message", c->in, ev->message, c->msg);
    int64_t want_t = c->time_ns == GUESS ? REF : c->time_ns;
    if (c->time_ns != NOCHECK && ev->time_ns != want_t) {
        print_error("'%s': time %lld, want %lld\n", c->in, (long long)ev->time_ns, (long long)want_t);
        bad++;
    }
    if ((ev->flags & (PF | TG)) != c->flags) {
        print_error("'%s': flags %#x, want %#x\n", c->in, ev->flags & (PF | TG), c->flags);
        bad++;
    }
    for (int k = 0; k < 6 && c->f[k].name; k++) {
        const fexp *fe = &c->f[k];
        lsf_field *f = lsf_event_find(ev, lsf_str_make(fe->name, strlen(fe->name)));
        if (!f) {
            if (fe->type != -1) {
                print_error("'%s': field %s missing\n", c->in, fe->name);
                bad++;
            }
            continue;
        }
        if (fe->type == -1) {
            print_error("'%s': field %s should be absent\n", c->in, fe->name);
            bad++;
            continue;
        }
        if (f->type != fe->type) {
            print_error("'%s': field %s type %d, want %d\n", c->in, fe->name, f->type, fe->type);
            bad++;
            continue;
        }
        if ((f->type == LSF_T_STR || f->type == LSF_T_JSON) &&
            (f->v.s.len != strlen(fe->s) || memcmp(f->v.s.ptr, fe->s, f->v.s.len) != 0)) {
            print_error("'%s': field %s = '%.*s', want '%s'\n", c->in, fe->name, (int)f->v.s.len, f->v.s.ptr,
                        fe->s);
            bad++;
        }
        if ((f->type == LSF_T_INT && f->v.i != fe->i) || (f->type == LSF_T_BOOL && f->v.b != (fe->i != 0))) {
            print_error("'%s': field %s wrong value\n", c->in, fe->name);
            bad++;
        }
    }
    lsf_batch_free(b);
    return bad;
}

static void run(const pcase *c, size_t n)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += check_case(&c[i]);
    assert_int_equal(bad, 0);
}

#define N(t) (sizeof(t) / sizeof((t)[0]))
#define STR(n, v) {n, LSF_T_STR, v, 0}
#define INT(n, v) {n, LSF_T_INT, NULL, v}
#define NONE(n) {n, -1, NULL, 0}

/* ---- RFC 5424 --------------------------------------------------------------- */

static void test_rfc5424(void **state)
{
    (void)state;
    static const pcase t[] = {
        /* RFC 5424 6.5, example 1: NIL fields, BOM removed */
        {"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8",
         AUTO, 0, F5424, 34, "mymachine.example.com", "su", ABSENT, "ID47", ABSENT,
         "'su root' failed for lonvick on /dev/pts/8", S(1065910455) + 3000000, 0, {{0}}},
        /* example 2: offset, PROCID */
        {"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
         AUTO, 0, F5424, 165, "192.0.2.1", "myproc", "8710", ABSENT, ABSENT,
         "%% It's time to make the do-nuts.", S(1061727255) + 3000, 0, {{0}}},
        /* example 3: SD kept verbatim */
        {"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \xEF\xBB\xBF" "An application event log entry...",
         AUTO, 0, F5424, 165, "mymachine.example.com", "evntslog", ABSENT, "ID47",
         "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]",
         "An application event log entry...", S(1065910455) + 3000000, 0, {{0}}},
        /* example 4: two elements, no MSG */
        {"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]",
         AUTO, 0, F5424, 165, NULL, NULL, NULL, NULL,
         "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]",
         "", NOCHECK, 0, {{0}}},
        /* escapes \" \\ \] inside a value, and an unescaped ] in quotes */
        {"<14>1 2018-07-03T00:00:01Z h a p m [x@1 q=\"a\\\"b\\\\c\\]d\" r=\"]\"] body",
         AUTO, 0, F5424, 14, "h", "a", "p", "m", "[x@1 q=\"a\\\"b\\\\c\\]d\" r=\"]\"]", "body", S(1530576001), 0,
         {{0}}},
        /* SD-ID without params */
        {"<14>1 2018-07-03T00:00:01Z h a p m [origin] text", AUTO, 0, F5424, 14, NULL, NULL, NULL, NULL,
         "[origin]", "text", S(1530576001), 0, {{0}}},
        /* malformed SD (space after '='): header kept, sd absent, flagged, MSG as rsyslog */
        {"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource= \"Application\" eventID=\"1011\"] BOMAn application",
         AUTO, 0, F5424, 165, "mymachine.example.com", "evntslog", ABSENT, "ID47", ABSENT, "BOMAn application",
         S(1065910455) + 3000000, PF, {{0}}},
        /* unterminated SD: MSG from the field on */
        {"<14>1 2018-07-03T00:00:01Z h a p m [x@1 k=\"oops no end", AUTO, 0, F5424, 14, "h", NULL, NULL, NULL,
         ABSENT, "[x@1 k=\"oops no end", S(1530576001), PF, {{0}}},
        /* SD missing altogether */
        {"<14>1 2018-07-03T00:00:01Z h a p m hello world", AUTO, 0, F5424, 14, "h", "a", "p", "m", ABSENT,
         "hello world", S(1530576001), PF, {{0}}},
        /* NIL timestamp: received time */
        {"<14>1 - h a - - - msg", AUTO, 0, F5424, 14, "h", "a", ABSENT, ABSENT, ABSENT, "msg", GUESS, TG, {{0}}},
        /* a bad timestamp stops the header */
        {"<14>1 yesterday h a - - - msg", AUTO, 0, F5424, 14, ABSENT, ABSENT, ABSENT, ABSENT, ABSENT,
         "yesterday h a - - - msg", GUESS, PF | TG, {{0}}},
        /* header cut short */
        {"<14>1 2018-07-03T00:00:01Z host", AUTO, 0, F5424, 14, "host", ABSENT, ABSENT, ABSENT, ABSENT, "",
         S(1530576001), 0, {{0}}},
        {"<14>1 2018-07-03T00:00:01Z", AUTO, 0, F5424, 14, ABSENT, ABSENT, ABSENT, ABSENT, ABSENT, "",
         S(1530576001), 0, {{0}}},
        {"<0>1 - - - - - -", AUTO, 0, F5424, 0, ABSENT, ABSENT, ABSENT, ABSENT, ABSENT, "", GUESS, TG, {{0}}},
        /* JSON body (@cee) becomes fields when asked */
        {"<14>1 2018-07-03T00:00:01Z h a - - - @cee: {\"message\":\"inner\",\"user\":{\"name\":\"bob\"},\"host\":\"other\"}",
         AUTO, 1, F5424, 14, "h", "a", NULL, NULL, NULL, "inner", S(1530576001), 0,
         {STR("user.name", "bob"), NONE("host")}},
        {"<14>1 2018-07-03T00:00:01Z h a - - - {\"message\":\"inner\"}", AUTO, 0, F5424, 14, NULL, NULL, NULL, NULL,
         NULL, "{\"message\":\"inner\"}", S(1530576001), 0, {{0}}},
        /* configured 5424 on a BSD line: raw */
        {"<13>Mar  1 10:00:00 h a: m", F5424, 0, FRAW, -1, ABSENT, ABSENT, NULL, NULL, NULL,
         "<13>Mar  1 10:00:00 h a: m", GUESS, PF | TG, {{0}}},
    };
    run(t, N(t));
}

/* ---- RFC 3164 --------------------------------------------------------------- */

static void test_rfc3164(void **state)
{
    (void)state;
    static const pcase t[] = {
        {"<38>Apr  6 15:07:10 lxcvs07 sshd(pam_unix)[31738]: session closed for user cvsadmin", AUTO, 0, F3164,
         38, "lxcvs07", "sshd(pam_unix)", "31738", ABSENT, ABSENT, "session closed for user cvsadmin",
         S(1523027230), 0, {{0}}},
        /* no hostname */
        {"<13>Mar  1 10:00:00 sshd[42]: Accepted", AUTO, 0, F3164, 13, ABSENT, "sshd", "42", NULL, NULL,
         "Accepted", S(1519898400), 0, {{0}}},
        {"<13>Mar  1 10:00:00 su: x", AUTO, 0, F3164, 13, ABSENT, "su", ABSENT, NULL, NULL, "x", NOCHECK, 0,
         {{0}}},
        /* Cisco ASA without timestamp and host; event.code */
        {"<166>%ASA-6-302013: Built outbound TCP connection", AUTO, 0, F3164, 166, ABSENT, "%ASA-6-302013",
         ABSENT, NULL, NULL, "Built outbound TCP connection", GUESS, TG, {STR("event.code", "302013")}},
        /* ASA with "Mmm dd yyyy hh:mm:ss:" */
        {"<14>May 21 2017 00:00:00: %ASA-4-102030: Deny udp src", AUTO, 0, F3164, 14, ABSENT, "%ASA-4-102030",
         NULL, NULL, NULL, "Deny udp src", S(1495324800), 0, {STR("event.code", "102030")}},
        {"<167>Mar  6 16:57:54 172.20.245.8 %PIX-7-710005: UDP request discarded", AUTO, 0, F3164, 167,
         "172.20.245.8", "%PIX-7-710005", NULL, NULL, NULL, "UDP request discarded", S(1520355474), 0,
         {STR("event.code", "710005")}},
        /* not a Cisco tag */
        {"<13>Mar  1 10:00:00 h %foo: x", AUTO, 0, F3164, 13, "h", "%foo", NULL, NULL, NULL, "x", NOCHECK, 0,
         {NONE("event.code")}},
        /* ISO 8601 timestamps */
        {"<13>2018-07-03T10:00:00.5+02:00 web1 nginx: GET /", AUTO, 0, F3164, 13, "web1", "nginx", NULL, NULL,
         NULL, "GET /", S(1530604800) + 500000000, 0, {{0}}},
        {"<14>2010-08-30T23:00:05Z X4711", AUTO, 0, F3164, 14, "X4711", ABSENT, NULL, NULL, NULL, "",
         S(1283209205), 0, {{0}}},
        {"<14>2010-08-30T23:00:05Z ", AUTO, 0, F3164, 14, ABSENT, ABSENT, NULL, NULL, NULL, "", S(1283209205), 0,
         {{0}}},
        /* sub-seconds, upper-case month, year before the time */
        {"<13>Mar  6 16:57:54.123 h a: m", AUTO, 0, F3164, 13, "h", "a", NULL, NULL, NULL, "m",
         S(1520355474) + 123000000, 0, {{0}}},
        {"<6>AUG 10 22:18:24 2009  netips-warden2-p [audit] user=[*SMS]", AUTO, 0, F3164, 6, "2009", ABSENT,
         NULL, NULL, NULL, "netips-warden2-p [audit] user=[*SMS]", S(1533939504), 0, {{0}}},
        {"<38>Mar 7 2008 19:06:53: example tag: testmessage", AUTO, 0, F3164, 38, "example", "tag", NULL, NULL,
         NULL, "testmessage", S(1204916813), 0, {{0}}},
        /* HP ProCurve: a space before the timestamp */
        {"<14> Mar  6 16:57:54 h a: m", AUTO, 0, F3164, 14, "h", "a", NULL, NULL, NULL, "m", S(1520355474), 0,
         {{0}}},
        /* no PRI: a line that starts with its timestamp */
        {"Feb 18 16:01:59 serverX -- MARK --", AUTO, 0, F3164, -1, "serverX", "--", NULL, NULL, NULL, "MARK --",
         S(1518969719), 0, {{0}}},
        /* PRI but no timestamp */
        {"<13>host1 app: text", AUTO, 0, F3164, 13, "host1", "app", NULL, NULL, NULL, "text", GUESS, TG, {{0}}},
        {"<13>", AUTO, 0, F3164, 13, ABSENT, ABSENT, NULL, NULL, NULL, "", GUESS, TG, {{0}}},
        /* year inference (received 2018-07-03: Jan 1 lies in the past, 2018) */
        {"<13>Jan  1 00:00:00 h a: m", AUTO, 0, F3164, 13, NULL, NULL, NULL, NULL, NULL, "m", S(1514764800), 0,
         {{0}}},
        /* IPv6 hostname; a time is not an IPv6 hostname */
        {"<13>Mar  1 10:00:00 2001:db8::1 app: m", AUTO, 0, F3164, 13, "2001:db8::1", "app", NULL, NULL, NULL,
         "m", NOCHECK, 0, {{0}}},
        {"<13>12:34:56 rest", AUTO, 0, F3164, 13, ABSENT, "12", NULL, NULL, NULL, "34:56 rest", GUESS, TG, {{0}}},
        /* TAB ends the tag; '/' stays in the name */
        {"<13>Mar  1 10:00:00 h MSWinEventLog\t1\tSecurity", AUTO, 0, F3164, 13, "h", "MSWinEventLog", NULL, NULL,
         NULL, "1\tSecurity", NOCHECK, 0, {{0}}},
        {"<22>Mar  1 10:00:00 mx postfix/smtpd[123]: connect from x", AUTO, 0, F3164, 22, "mx", "postfix/smtpd",
         "123", NULL, NULL, "connect from x", NOCHECK, 0, {{0}}},
        /* tag without colon; tag at the end; nothing after the host */
        {"<13>Mar  1 10:00:00 h kernel blah", AUTO, 0, F3164, 13, "h", "kernel", NULL, NULL, NULL, "blah",
         NOCHECK, 0, {{0}}},
        {"<13>Mar  1 10:00:00 h app:", AUTO, 0, F3164, 13, "h", "app", NULL, NULL, NULL, "", NOCHECK, 0, {{0}}},
        {"<14>Aug 30 23:00:05 X4711", AUTO, 0, F3164, 14, "X4711", ABSENT, NULL, NULL, NULL, "", NOCHECK, 0,
         {{0}}},
        {"<14>Aug 30 23:00:05 X4711 ", AUTO, 0, F3164, 14, "X4711", ABSENT, NULL, NULL, NULL, "", NOCHECK, 0,
         {{0}}},
        /* [pid] edge cases */
        {"<13>Mar  1 10:00:00 h app[]: m", AUTO, 0, F3164, 13, "h", "app", ABSENT, NULL, NULL, "m", NOCHECK, 0,
         {{0}}},
        {"<13>Mar  1 10:00:00 h app[12: m", AUTO, 0, F3164, 13, "h", "app", ABSENT, NULL, NULL, "m", NOCHECK, 0,
         {{0}}},
        /* syslogd's repeat line is a message, not host+tag */
        {"<13>last message repeated 5 times", AUTO, 0, F3164, 13, ABSENT, ABSENT, NULL, NULL, NULL,
         "last message repeated 5 times", GUESS, TG, {{0}}},
        {"<13>Mar  1 10:00:00 h last message repeated 2 times", AUTO, 0, F3164, 13, "h", ABSENT, NULL, NULL, NULL,
         "last message repeated 2 times", NOCHECK, 0, {{0}}},
        /* JSON body */
        {"<13>Mar  1 10:00:00 h app: {\"msg\":\"hi\",\"n\":2,\"time\":\"2020-01-01T00:00:00Z\"}", AUTO, 1, F3164,
         13, "h", "app", NULL, NULL, NULL, "hi", S(1519898400), 0, {INT("n", 2), NONE("msg"), STR("time", "2020-01-01T00:00:00Z")}},
        {"<13>h app: {\"message\":\"hi\",\"ts\":1530576001}", AUTO, 1, F3164, 13, "h", "app", NULL, NULL, NULL, "hi",
         S(1530576001), 0, {NONE("ts")}},
        /* plain text is not RFC 3164 when configured either */
        {"This is a message!", F3164, 0, FRAW, -1, ABSENT, ABSENT, NULL, NULL, NULL, "This is a message!", GUESS,
         PF | TG, {{0}}},
    };
    run(t, N(t));
}

static void test_rfc3164_zones(void **state)
{
    (void)state;
    lsf_batch *b = lsf_batch_new(4);
    const char *in = "<13>Mar  6 18:57:54 h a: m";
    lsf_event *ev = lsf_batch_push_record(b, in, strlen(in), REF);
    lsf_parse_opts o = {.tz_mode = LSF_TZ_FIXED, .tz_offset_s = 7200};
    lsf_parse_event(b, ev, &o);
    assert_true(ev->time_ns == S(1520355474));
    /* Dec 31 received on Jan 1 is last year */
    in = "<13>Dec 31 23:59:59 h a: m";
    ev = lsf_batch_push_record(b, in, strlen(in), S(1546300805));
    o.tz_mode = LSF_TZ_UTC;
    lsf_parse_event(b, ev, &o);
    assert_true(ev->time_ns == S(1546300799));
    lsf_batch_free(b);
}

/* ---- JSON ------------------------------------------------------------------------ */

static void test_json(void **state)
{
    (void)state;
    static const pcase t[] = {
        {"{\"@timestamp\":\"2018-07-03T00:00:01.5Z\",\"message\":\"hello\",\"host\":\"web1\",\"level\":\"warn\","
         "\"http\":{\"status\":404,\"ok\":false,\"ms\":1.5},\"tags\":[\"a\",1],\"x\":null,\"e\":{}}",
         AUTO, 0, FJSON, -1, "web1", ABSENT, NULL, NULL, NULL, "hello", S(1530576001) + 500000000, 0,
         {STR("log.level", "warn"), INT("http.status", 404), {"http.ok", LSF_T_BOOL, NULL, 0},
          {"tags", LSF_T_JSON, "[\"a\",1]", 0}, {"x", LSF_T_NULL, NULL, 0}, {"e", LSF_T_JSON, "{}", 0}}},
        /* msg, epoch milliseconds, hostname, severity */
        {"{\"msg\":\"m\",\"ts\":1530576001250,\"hostname\":\"h\",\"severity\":3}", AUTO, 0, FJSON, -1, "h", NULL,
         NULL, NULL, NULL, "m", S(1530576001) + 250000000, 0, {INT("log.level", 3), NONE("ts"), NONE("msg")}},
        /* epoch seconds as float; ECS host object */
        {"{\"time\":1530576001.5,\"host\":{\"name\":\"h2\",\"ip\":\"10.0.0.1\"}}", AUTO, 0, FJSON, -1, "h2", NULL,
         NULL, NULL, NULL, NULL, S(1530576001) + 500000000, 0, {STR("host.ip", "10.0.0.1"), NONE("host.name")}},
        /* without message: the line stays the message; unparseable time stays a field */
        {"{\"a\":\"b\",\"time\":\"soon\"}", AUTO, 0, FJSON, -1, ABSENT, NULL, NULL, NULL, NULL,
         "{\"a\":\"b\",\"time\":\"soon\"}", GUESS, TG, {STR("a", "b"), STR("time", "soon")}},
        /* "message" wins over "msg"; non-string message as JSON text */
        {"{\"msg\":\"m1\",\"message\":\"m2\"}", AUTO, 0, FJSON, -1, NULL, NULL, NULL, NULL, NULL, "m2", GUESS, TG,
         {STR("msg", "m1")}},
        {"{\"message\":{\"k\":1}}", AUTO, 0, FJSON, -1, NULL, NULL, NULL, NULL, NULL, "{\"k\":1}", GUESS, TG, {{0}}},
        /* an integer beyond int64 is kept as a float */
        {"{\"big\":123456789012345678901234567890}", AUTO, 0, FJSON, -1, NULL, NULL, NULL, NULL, NULL, NULL, GUESS,
         TG, {{"big", LSF_T_FLOAT, NULL, 0}}},
        /* deep nesting flattens */
        {"{\"a\":{\"b\":{\"c\":{\"d\":\"deep\"}}}}", AUTO, 0, FJSON, -1, NULL, NULL, NULL, NULL, NULL, NULL, GUESS,
         TG, {STR("a.b.c.d", "deep")}},
        /* not JSON objects: fall through */
        {"{not json", AUTO, 0, FRAW, -1, ABSENT, NULL, NULL, NULL, NULL, "{not json", GUESS, PF | TG, {{0}}},
        {"[1,2,3]", AUTO, 0, FRAW, -1, NULL, NULL, NULL, NULL, NULL, "[1,2,3]", GUESS, PF | TG, {{0}}},
        {"{\"a\":1} trailing", AUTO, 0, FRAW, -1, NULL, NULL, NULL, NULL, NULL, NULL, GUESS, PF | TG, {{0}}},
        {"{\"a\":\"\xff\"}", AUTO, 0, FRAW, -1, NULL, NULL, NULL, NULL, NULL, NULL, GUESS, PF | TG, {{0}}},
        /* configured JSON tolerates leading blanks */
        {"  {\"message\":\"x\"}", FJSON, 0, FJSON, -1, NULL, NULL, NULL, NULL, NULL, "x", GUESS, TG, {{0}}},
        {"a=1 b=2", FJSON, 0, FRAW, -1, NULL, NULL, NULL, NULL, NULL, "a=1 b=2", GUESS, PF | TG, {{0}}},
    };
    run(t, N(t));

    /* Strings are copied into the arena; \u0000 keeps its length. */
    lsf_batch *b = lsf_batch_new(4);
    const char *in = "{\"k\":\"a\\u0000b\"}";
    lsf_event *ev = lsf_batch_push_record(b, in, strlen(in), REF);
    lsf_parse_event(b, ev, NULL);
    lsf_field *f = lsf_event_find(ev, LSF_STR_LIT("k"));
    assert_non_null(f);
    assert_int_equal(f->v.s.len, 3);
    assert_memory_equal(f->v.s.ptr, "a\0b", 3);

    /* lsf_json_object_to_fields: the header keeps host and time */
    ev = lsf_batch_push(b);
    ev->host = LSF_STR_LIT("hdr");
    ev->time_ns = 42;
    const char *body = "{\"host\":\"body\",\"time\":1530576001,\"message\":\"m\",\"n\":[1]}";
    assert_int_equal(lsf_json_object_to_fields(b, ev, body, strlen(body)), 0);
    assert_true(lsf_str_eq_cstr(ev->host, "hdr"));
    assert_true(ev->time_ns == 42);
    assert_true(lsf_str_eq_cstr(ev->message, "m"));
    assert_null(lsf_event_find(ev, LSF_STR_LIT("host"))); /* the header won: no clash */
    f = lsf_event_find(ev, LSF_STR_LIT("n"));
    assert_non_null(f);
    assert_int_equal(f->type, LSF_T_JSON);
    uint16_t nf = ev->nfields;
    assert_int_equal(lsf_json_object_to_fields(b, ev, "[1]", 3), -1);
    assert_int_equal(lsf_json_object_to_fields(b, ev, "{", 1), -1);
    assert_int_equal(ev->nfields, nf);
    lsf_batch_free(b);
}

/* ---- key=value --------------------------------------------------------------------- */

static void test_kv(void **state)
{
    (void)state;
    static const pcase t[] = {
        {"time=2018-07-03T00:00:01Z level=info msg=\"hello \\\"x\\\" world\" user=bob empty= count=5", AUTO, 0,
         FKV, -1, ABSENT, ABSENT, NULL, NULL, NULL, "hello \"x\" world", S(1530576001), 0,
         {STR("log.level", "info"), STR("user", "bob"), STR("empty", ""), STR("count", "5"), NONE("time"),
          NONE("msg")}},
        {"ts=1530576001 message='it is' path=/a/b", AUTO, 0, FKV, -1, NULL, NULL, NULL, NULL, NULL, "it is",
         S(1530576001), 0, {STR("path", "/a/b"), NONE("ts")}},
        /* without msg the line is the message; unparseable time is a field */
        {"a=1 time=later", AUTO, 0, FKV, -1, NULL, NULL, NULL, NULL, NULL, "a=1 time=later", GUESS, TG,
         {STR("a", "1"), STR("time", "later")}},
        /* escapes: \n \t \\ and unknown ones kept */
        {"a=\"x\\ny\\tz\\\\w\\q\" b=2", AUTO, 0, FKV, -1, NULL, NULL, NULL, NULL, NULL, NULL, GUESS, TG,
         {STR("a", "x\ny\tz\\w\\q")}},
        /* unterminated quote runs to the end */
        {"a=1 b=\"open value", AUTO, 0, FKV, -1, NULL, NULL, NULL, NULL, NULL, NULL, GUESS, TG,
         {STR("b", "open value")}},
        /* auto-detection needs two pairs, a key at the start, no bare words */
        {"a=1", AUTO, 0, FRAW, -1, NULL, NULL, NULL, NULL, NULL, "a=1", GUESS, PF | TG, {{0}}},
        {" a=1 b=2", AUTO, 0, FRAW, -1, NULL, NULL, NULL, NULL, NULL, " a=1 b=2", GUESS, PF | TG, {{0}}},
        {"a=1 b=2 oops", AUTO, 0, FRAW, -1, NULL, NULL, NULL, NULL, NULL, NULL, GUESS, PF | TG, {{0}}},
        {"user logged in from a=b", AUTO, 0, FRAW, -1, NULL, NULL, NULL, NULL, NULL, NULL, GUESS, PF | TG, {{0}}},
        {"a=\"x\"y b=2", AUTO, 0, FRAW, -1, NULL, NULL, NULL, NULL, NULL, NULL, GUESS, PF | TG, {{0}}},
        /* configured kv: one pair is enough, bare words are skipped */
        {"a=1", FKV, 0, FKV, -1, NULL, NULL, NULL, NULL, NULL, NULL, GUESS, TG, {STR("a", "1")}},
        {"a=1 b=2 oops c=3", FKV, 0, FKV, -1, NULL, NULL, NULL, NULL, NULL, NULL, GUESS, TG,
         {STR("a", "1"), STR("c", "3"), NONE("oops")}},
        {"no pairs here", FKV, 0, FRAW, -1, NULL, NULL, NULL, NULL, NULL, "no pairs here", GUESS, PF | TG, {{0}}},
    };
    run(t, N(t));
}

/* ---- detection, raw, and bad input --------------------------------------------------- */

static void test_detect(void **state)
{
    (void)state;
    static const pcase t[] = {
        {"", AUTO, 0, FRAW, -1, ABSENT, ABSENT, ABSENT, ABSENT, ABSENT, "", GUESS, PF | TG, {{0}}},
        {"\r\n", AUTO, 0, FRAW, -1, NULL, NULL, NULL, NULL, NULL, "", GUESS, PF | TG, {{0}}},
        {"This is a message!", AUTO, 0, FRAW, -1, ABSENT, ABSENT, NULL, NULL, NULL, "This is a message!", GUESS,
         PF | TG, {{0}}},
        /* configured raw: not a failure */
        {"<13>Mar  1 10:00:00 h a: m", FRAW, 0, FRAW, -1, ABSENT, ABSENT, NULL, NULL, NULL,
         "<13>Mar  1 10:00:00 h a: m", GUESS, TG, {{0}}},
        /* trailing CR/LF are not part of the message */
        {"<13>Mar  1 10:00:00 h a: m\r\n", AUTO, 0, F3164, 13, NULL, NULL, NULL, NULL, NULL, "m", NOCHECK, 0,
         {{0}}},
        {"{\"message\":\"j\"}\n", AUTO, 0, FJSON, -1, NULL, NULL, NULL, NULL, NULL, "j", GUESS, TG, {{0}}},
        /* lying and malformed PRIs: raw, as rsyslog keeps the whole line */
        {"<192>Mar  1 10:00:00 h a: m", AUTO, 0, FRAW, -1, ABSENT, ABSENT, NULL, NULL, NULL,
         "<192>Mar  1 10:00:00 h a: m", GUESS, PF | TG, {{0}}},
        {"<1910>x", AUTO, 0, FRAW, -1, NULL, NULL, NULL, NULL, NULL, "<1910>x", GUESS, PF | TG, {{0}}},
        {"<99999999999999999999>x", AUTO, 0, FRAW, -1, NULL, NULL, NULL, NULL, NULL, NULL, GUESS, PF | TG, {{0}}},
        {"<>x", AUTO, 0, FRAW, -1, NULL, NULL, NULL, NULL, NULL, "<>x", GUESS, PF | TG, {{0}}},
        {"<13", AUTO, 0, FRAW, -1, NULL, NULL, NULL, NULL, NULL, "<13", GUESS, PF | TG, {{0}}},
        {"<1a>x", AUTO, 0, FRAW, -1, NULL, NULL, NULL, NULL, NULL, "<1a>x", GUESS, PF | TG, {{0}}},
        {"<", AUTO, 0, FRAW, -1, NULL, NULL, NULL, NULL, NULL, "<", GUESS, PF | TG, {{0}}},
        {"<191>x y", AUTO, 0, F3164, 191, "x", "y", NULL, NULL, NULL, "", GUESS, TG, {{0}}},
        {"<0>x", AUTO, 0, F3164, 0, "x", NULL, NULL, NULL, NULL, "", GUESS, TG, {{0}}},
        {"<00013>Mar  1 10:00:00 h a: m", AUTO, 0, F3164, 13, "h", NULL, NULL, NULL, NULL, "m", NOCHECK, 0, {{0}}},
        /* invalid UTF-8 and control bytes pass through as bytes */
        {"<13>Mar  1 10:00:00 h a: \xff\xfe\x01 ok", AUTO, 0, F3164, 13, "h", "a", NULL, NULL, NULL,
         "\xff\xfe\x01 ok", NOCHECK, 0, {{0}}},
        {"\xff\xfe\xfd garbage", AUTO, 0, FRAW, -1, NULL, NULL, NULL, NULL, NULL, "\xff\xfe\xfd garbage", GUESS,
         PF | TG, {{0}}},
        /* a line starting with a month's letter that is no timestamp */
        {"Many things happened", AUTO, 0, FRAW, -1, NULL, NULL, NULL, NULL, NULL, NULL, GUESS, PF | TG, {{0}}},
    };
    run(t, N(t));

    /* An event without a record, under every configured format. */
    lsf_batch *b = lsf_batch_new(8);
    for (int f = LSF_FMT_NONE; f <= LSF_FMT_RAW; f++) {
        lsf_event *ev = lsf_batch_push(b);
        ev->ingested_ns = REF;
        lsf_parse_opts o = {.format = f};
        lsf_parse_event(b, ev, &o);
        assert_int_equal(ev->format, LSF_FMT_RAW);
        assert_int_equal(ev->message.len, 0);
        assert_true(ev->time_ns == REF);
        assert_int_equal(ev->flags & PF, f == LSF_FMT_RAW ? 0 : PF);
    }
    lsf_batch_free(b);
}

/* Every slice of a syslog event lies inside the record. */
static void assert_inside(const lsf_event *ev, size_t n, bool body_json)
{
    const lsf_str *sl[] = {&ev->host, &ev->app, &ev->procid, &ev->msgid, &ev->sd};
    for (size_t i = 0; i < sizeof(sl) / sizeof(sl[0]); i++) {
        if (!sl[i]->ptr || ev->format == LSF_FMT_JSON)
            continue;
        assert_true(sl[i]->ptr >= ev->raw.ptr && sl[i]->ptr + sl[i]->len <= ev->raw.ptr + n);
    }
    if (ev->format != LSF_FMT_JSON && ev->format != LSF_FMT_KV && !body_json)
        assert_true(ev->message.ptr >= ev->raw.ptr && ev->message.ptr + ev->message.len <= ev->raw.ptr + n);
    assert_true(ev->format >= LSF_FMT_RFC5424 && ev->format <= LSF_FMT_RAW);
}

static lsf_event *parse_bytes(lsf_batch *b, const char *p, size_t n, const lsf_parse_opts *o)
{
    lsf_event *ev = lsf_batch_push_record(b, p, n, REF);
    if (!ev) {
        lsf_batch_reset(b);
        ev = lsf_batch_push_record(b, p, n, REF);
    }
    lsf_parse_event(b, ev, o);
    assert_inside(ev, n, o && o->body_json);
    return ev;
}

static void test_nul_bytes(void **state)
{
    (void)state;
    lsf_batch *b = lsf_batch_new(8);
    static const char rec[] = "<13>Mar  1 10:00:00 h a: m\0x\0y\0\0";
    lsf_event *ev = parse_bytes(b, rec, sizeof(rec) - 1, NULL);
    assert_int_equal(ev->format, LSF_FMT_RFC3164);
    assert_int_equal(ev->message.len, 5); /* trailing NULs dropped, inner ones kept */
    assert_memory_equal(ev->message.ptr, "m\0x\0y", 5);
    static const char rec2[] = "<14>1 2018-07-03T00:00:01Z h\0st a - - - m";
    ev = parse_bytes(b, rec2, sizeof(rec2) - 1, NULL);
    assert_int_equal(ev->format, LSF_FMT_RFC5424);
    assert_int_equal(ev->host.len, 4);
    static const char rec3[] = "\0\0\0";
    ev = parse_bytes(b, rec3, sizeof(rec3) - 1, NULL);
    assert_int_equal(ev->format, LSF_FMT_RAW);
    assert_int_equal(ev->message.len, 0);
    static const char rec4[] = "a=\0 b=2";
    ev = parse_bytes(b, rec4, sizeof(rec4) - 1, NULL);
    assert_int_equal(ev->format, LSF_FMT_KV);
    lsf_batch_free(b);
}

static void test_huge_lines(void **state)
{
    (void)state;
    const size_t n = 1 << 20;
    char *p = malloc(n + 64);
    assert_non_null(p);
    lsf_batch *b = lsf_batch_new(4);
    lsf_parse_opts o = {.tz_mode = LSF_TZ_UTC, .body_json = true};

    int k = sprintf(p, "<13>Mar  1 10:00:00 h a: ");
    memset(p + k, 'x', n - (size_t)k);
    lsf_event *ev = parse_bytes(b, p, n, &o);
    assert_int_equal(ev->format, LSF_FMT_RFC3164);
    assert_int_equal(ev->message.len, n - (size_t)k);

    /* one 1 MB token: not a tag, not a host */
    p[0] = '<', p[1] = '1', p[2] = '>';
    memset(p + 3, 'a', n - 3);
    ev = parse_bytes(b, p, n, &o);
    assert_int_equal(ev->format, LSF_FMT_RFC3164);
    assert_null(ev->app.ptr);
    assert_int_equal(ev->message.len, n - 3);

    /* scanners that could run away */
    const char *fills[] = {"<", "[", "a=", "\"", "{", "1", " ", "\\", "]", ":"};
    for (size_t f = 0; f < sizeof(fills) / sizeof(fills[0]); f++) {
        size_t fl = strlen(fills[f]);
        for (size_t i = 0; i + fl <= n; i += fl)
            memcpy(p + i, fills[f], fl);
        parse_bytes(b, p, n, &o);
        k = sprintf(p, "<14>1 2018-07-03T00:00:01Z h a p m ");
        parse_bytes(b, p, n, &o);
        k = sprintf(p, "{\"a\":");
        parse_bytes(b, p, n, &o);
    }
    /* a 1 MB JSON string and SD value */
    k = sprintf(p, "{\"message\":\"");
    memset(p + k, 'm', n - (size_t)k - 2);
    memcpy(p + n - 2, "\"}", 2);
    ev = parse_bytes(b, p, n, &o);
    assert_int_equal(ev->format, LSF_FMT_JSON);
    assert_int_equal(ev->message.len, n - (size_t)k - 2);
    k = sprintf(p, "<14>1 2018-07-03T00:00:01Z h a p m [x@1 v=\"");
    memset(p + k, 'v', n - (size_t)k - 2);
    memcpy(p + n - 2, "\"]", 2);
    ev = parse_bytes(b, p, n, &o);
    assert_int_equal(ev->format, LSF_FMT_RFC5424);
    assert_int_equal(ev->sd.len, n - 35);
    lsf_batch_free(b);
    free(p);
}

/* Random bytes and random mutations of valid lines (fixed seed). */
static void test_garbage(void **state)
{
    (void)state;
    static const char *const seeds[] = {
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 [a@1 b=\"c\\\"\"] msg",
        "<13>Mar  1 10:00:00 h app[12]: {\"message\":\"x\",\"a\":[1,{\"b\":2}]}",
        "{\"@timestamp\":\"2018-07-03T00:00:01Z\",\"host\":{\"name\":\"h\"},\"message\":\"m\"}",
        "time=2018-07-03T00:00:01Z level=info msg=\"a \\\"b\\\"\" k=v",
        "<166>%ASA-6-302013: Built",
        "Feb 18 16:01:59 serverX -- MARK --",
    };
    lsf_batch *b = lsf_batch_new(64);
    lsf_parse_opts o = {.tz_mode = LSF_TZ_UTC, .body_json = true};
    char buf[512];
    uint64_t x = 88172645463325252ULL;
    for (int it = 0; it < 200000; it++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n;
        if (it % 2) {
            n = x % sizeof(buf);
            for (size_t i = 0; i < n; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                buf[i] = (char)(x & 0xff);
            }
            if (n && it % 4 == 1)
                buf[0] = "<{JF2a"[x % 6];
        } else {
            const char *s = seeds[(x >> 8) % (sizeof(seeds) / sizeof(seeds[0]))];
            n = strlen(s);
            memcpy(buf, s, n);
            for (int m = 0; m < 3; m++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                size_t at = x % n;
                switch ((x >> 20) % 3) {
                case 0: buf[at] = (char)(x >> 32); break;
                case 1: n = at; break; /* truncate */
                default: buf[at] = "<>[]\"\\ :={}-"[(x >> 32) % 12]; break;
                }
                if (n == 0)
                    break;
            }
        }
        lsf_parse_opts oo = o;
        oo.body_json = (x >> 50) & 1;
        oo.format = (int)((x >> 40) % 7) == 6 ? LSF_FMT_NONE : (int)((x >> 40) % 7);
        parse_bytes(b, buf, n, &oo);
    }
    lsf_batch_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5424),   cmocka_unit_test(test_rfc3164), cmocka_unit_test(test_rfc3164_zones),
        cmocka_unit_test(test_json),      cmocka_unit_test(test_kv),      cmocka_unit_test(test_detect),
        cmocka_unit_test(test_nul_bytes), cmocka_unit_test(test_huge_lines), cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
