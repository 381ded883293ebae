/* cli.c - `logsift score` and `logsift templates`: the anomaly code on
 * files, for evaluation and for trying settings out.
 *
 * The one design choice to know: both commands run the pipeline's own code
 * paths - `score` creates a detector exactly as the anomaly stage does
 * (defaults, or a named detector of a config file) and feeds each row through
 * the same per-key functions (detect.c); `templates` uses the miner the
 * rare_template detector uses. Both are strictly streaming: a row's output is
 * written before the next row is read, so it depends only on rows up to it.
 *
 * Threads: main thread only.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "anomaly/anomaly.h"
#include "core/log.h"

/* ---- logsift score ---------------------------------------------------------------- */

static void score_usage(FILE *f)
{
    fprintf(f, "usage: logsift score [--detector NAME] [-c CONFIG] FILE.csv\n"
               "  Reads a CSV with `timestamp` and `value` columns (NAB's format; - for stdin)\n"
               "  and writes timestamp,value,anomaly_score to stdout, one row per input row.\n"
               "  NAME: numeric (default) or rate, or the name of a numeric/rate detector of the\n"
               "  anomaly stage in CONFIG (its settings are used).\n");
}

/* "YYYY-MM-DD[ T]HH:MM[:SS[.frac]][Z]" or seconds since the epoch. */
static bool parse_time(const char *s, int64_t *ns)
{
    int y, mo, d, h = 0, mi = 0, n = 0;
    double sec = 0;
    if (sscanf(s, "%d-%d-%d%n", &y, &mo, &d, &n) == 3) {
        const char *p = s + n;
        if (*p == ' ' || *p == 'T') {
            int m2 = 0;
            if (sscanf(p + 1, "%d:%d%n", &h, &mi, &m2) != 2)
                return false;
            p += 1 + m2;
            if (*p == ':') {
                char *end;
                sec = strtod(p + 1, &end);
                p = end;
            }
        }
        if (*p == 'Z')
            p++;
        if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec >= 61)
            return false;
        struct tm tmv = {0};
        tmv.tm_year = y - 1900;
        tmv.tm_mon = mo - 1;
        tmv.tm_mday = d;
        tmv.tm_hour = h;
        tmv.tm_min = mi;
        int64_t t = (int64_t)timegm(&tmv);
        *ns = t * 1000000000LL + (int64_t)llround(sec * 1e9);
        return true;
    }
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v))
        return false;
    *ns = (int64_t)(v * 1e9);
    return true;
}

/* Splits a CSV line in place (no embedded commas in quotes; quotes around a
 * field are stripped). Returns the number of fields. */
static int split_csv(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        char *start = p;
        while (*p && *p != ',')
            p++;
        char *end = p;
        if (end - start >= 2 && *start == '"' && end[-1] == '"') {
            start++;
            end--;
        }
        f[n++] = start;
        if (!*p) {
            *end = 0;
            break;
        }
        *end = 0;
        p++;
    }
    return n;
}

static void chomp(char *s, ssize_t *n)
{
    while (*n > 0 && (s[*n - 1] == '\n' || s[*n - 1] == '\r'))
        s[--*n] = 0;
}

/* The detector to score with: built from defaults or from a config file. */
static int score_detector(lsf_anom *a, const char *name, const char *config, lsf_anom_det **out)
{
    lsf_errbuf err = {{0}};
    if (!config) {
        int type = strcmp(name, "numeric") == 0 ? LSF_ANOM_NUMERIC
                   : strcmp(name, "rate") == 0  ? LSF_ANOM_RATE
                                                : -1;
        if (type < 0) {
            fprintf(stderr, "logsift score: --detector %s: use numeric or rate, or name a detector "
                            "of a config file with -c\n", name);
            return -1;
        }
        if (lsf_anom_default(a, type, name, &err) < 0) {
            fprintf(stderr, "logsift score: %s\n", err.msg);
            return -1;
        }
        *out = &a->det[0];
        return 0;
    }
    lsf_node *root = lsf_yaml_load_file(config, &err);
    if (!root) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    int rc = -1;
    const lsf_node *tr = lsf_node_get(root, "transforms");
    for (const lsf_node *t = tr ? tr->child : NULL; t; t = t->next) {
        const lsf_node *type = lsf_node_get(t, "type");
        if (!type || !type->str || strcmp(type->str, "anomaly") != 0)
            continue;
        if (lsf_anom_parse(a, lsf_node_get(t, "detectors"), 1, "score", &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            goto out;
        }
        lsf_anom_det *d = lsf_anom_find(a, name);
        if (d && (d->def.type == LSF_ANOM_NUMERIC || d->def.type == LSF_ANOM_RATE)) {
            *out = d;
            rc = 0;
        } else
            fprintf(stderr, "logsift score: %s has no numeric or rate detector named '%s'\n",
                    config, name);
        goto out;
    }
    fprintf(stderr, "logsift score: %s has no anomaly transform\n", config);
out:
    lsf_node_free(root);
    return rc;
}

int lsf_anomaly_cmd_score(int argc, char **argv)
{
    const char *detector = "numeric", *config = NULL;
    static const struct option longopts[] = {{"detector", required_argument, NULL, 'd'},
                                             {"config", required_argument, NULL, 'c'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "d:c:h", longopts, NULL)) != -1) {
        if (opt == 'd')
            detector = optarg;
        else if (opt == 'c')
            config = optarg;
        else {
            score_usage(opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind != argc - 1) {
        score_usage(stderr);
        return 2;
    }
    const char *path = argv[optind];
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!in) {
        fprintf(stderr, "logsift score: %s: %s\n", path, strerror(errno));
        return 1;
    }
    lsf_anom a;
    memset(&a, 0, sizeof(a));
    lsf_anom_det *d = NULL;
    int rc = 1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    if (score_detector(&a, detector, config, &d) < 0)
        goto out;
    if ((n = getline(&line, &cap, in)) <= 0) {
        fprintf(stderr, "logsift score: %s: empty file\n", path);
        goto out;
    }
    chomp(line, &n);
    char *f[64];
    int nf = split_csv(line, f, 64), ti = -1, vi = -1;
    for (int i = 0; i < nf; i++) {
        if (strcasecmp(f[i], "timestamp") == 0)
            ti = i;
        else if (strcasecmp(f[i], "value") == 0)
            vi = i;
    }
    if (ti < 0 || vi < 0) {
        fprintf(stderr, "logsift score: %s: the header needs `timestamp` and `value` columns\n",
                path);
        goto out;
    }
    printf("timestamp,value,anomaly_score\n");
    bool created;
    lsf_anom_entry *e = lsf_anom_entry_get(d, &d->shard[0], 0, "", 0, &created);
    int64_t t = 0;
    uint64_t row = 1, bad_time = 0, bad_value = 0;
    while ((n = getline(&line, &cap, in)) > 0) {
        row++;
        chomp(line, &n);
        if (n == 0)
            continue;
        nf = split_csv(line, f, 64);
        const char *ts = ti < nf ? f[ti] : "", *vs = vi < nf ? f[vi] : "";
        int64_t tt;
        if (parse_time(ts, &tt))
            t = tt;
        else if (!bad_time++)
            fprintf(stderr, "logsift score: %s:%" PRIu64 ": cannot read timestamp '%s' (the "
                            "previous one is used)\n", path, row, ts);
        char *end;
        double x = strtod(vs, &end);
        lsf_anom_result res;
        memset(&res, 0, sizeof(res));
        if (end == vs || *end || !isfinite(x)) {
            if (!bad_value++)
                fprintf(stderr, "logsift score: %s:%" PRIu64 ": '%s' is not a number (scored 0)\n",
                        path, row, vs);
        } else /* a row is one observation: a count (rate) or a value (numeric) */
            lsf_anom_series_value(d, e, x, t, &res);
        lsf_anom_entry_touched(d, &d->shard[0], e);
        printf("%s,%s,%.8f\n", ts, vs, res.score);
    }
    if (bad_time || bad_value)
        fprintf(stderr, "logsift score: %s: %" PRIu64 " unreadable timestamps, %" PRIu64
                        " unreadable values\n", path, bad_time, bad_value);
    rc = ferror(in) ? 1 : 0;
    if (rc)
        fprintf(stderr, "logsift score: %s: %s\n", path, strerror(errno));
out:
    free(line);
    lsf_anom_free(&a);
    if (in != stdin)
        fclose(in);
    if (fflush(stdout) != 0)
        rc = 1;
    return rc;
}

/* ---- logsift templates ------------------------------------------------------------- */

static void templates_usage(FILE *f)
{
    fprintf(f, "usage: logsift templates [-s STATE] [FILE]\n"
               "  Reads one log message per line (FILE or stdin) and writes\n"
               "  line,template_id,template CSV, mined online in one pass.\n"
               "  -s STATE: restore the templates from STATE if it exists, save them there at the\n"
               "  end (template ids then stay the same across runs).\n");
}

static void put_csv_quoted(const char *s, size_t n)
{
    putchar_unlocked('"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            putchar_unlocked('"');
        putchar_unlocked(s[i]);
    }
    putchar_unlocked('"');
}

int lsf_anomaly_cmd_templates(int argc, char **argv)
{
    const char *state = NULL;
    static const struct option longopts[] = {{"state", required_argument, NULL, 's'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "s:h", longopts, NULL)) != -1) {
        if (opt == 's')
            state = optarg;
        else {
            templates_usage(opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (argc - optind > 1) {
        templates_usage(stderr);
        return 2;
    }
    const char *path = optind < argc ? argv[optind] : "-";
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!in) {
        fprintf(stderr, "logsift templates: %s: %s\n", path, strerror(errno));
        return 1;
    }
    /* the rare_template detector's miner, and the stage's snapshot format for -s */
    lsf_anom a;
    memset(&a, 0, sizeof(a));
    lsf_errbuf err = {{0}};
    if (lsf_anom_default(&a, LSF_ANOM_RARE_TEMPLATE, "templates", &err) < 0) {
        fprintf(stderr, "logsift templates: %s\n", err.msg);
        if (in != stdin)
            fclose(in);
        return 1;
    }
    lsf_miner *m = a.det[0].miner;
    lsf_miner_memo *memo = lsf_miner_memo_new(m);
    if (state && lsf_anom_snapshot_load(&a, state, &err) < 0)
        fprintf(stderr, "logsift templates: %s\n", err.msg);
    static char obuf[1 << 16];
    setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
    printf("line,template_id,template\n");
    char *line = NULL, text[8192];
    size_t cap = 0;
    ssize_t n;
    uint64_t no = 0;
    while ((n = getline(&line, &cap, in)) > 0) {
        chomp(line, &n);
        lsf_template_match tm;
        lsf_miner_memo_add(memo, line, (size_t)n, &tm);
        int tl = lsf_miner_text(m, tm.slot, tm.id, text, sizeof(text));
        printf("%" PRIu64 ",%016" PRIx64 ",", ++no, tm.id);
        put_csv_quoted(text, tl > 0 ? (size_t)tl : 0);
        putchar_unlocked('\n');
    }
    int rc = ferror(in) ? 1 : 0;
    if (rc)
        fprintf(stderr, "logsift templates: %s: %s\n", path, strerror(errno));
    if (state && lsf_anom_snapshot_save(&a, state, &err) < 0) {
        fprintf(stderr, "logsift templates: %s\n", err.msg);
        rc = 1;
    }
    free(line);
    lsf_miner_memo_free(memo);
    lsf_anom_free(&a);
    if (in != stdin)
        fclose(in);
    if (fflush(stdout) != 0)
        rc = 1;
    return rc;
}
