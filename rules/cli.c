/* cli.c - `logsift test` and the rules part of `logsift parse -r DIR`.
 *
 * The one design choice to know: `logsift test` loads the packs exactly as
 * the rules stage does (same loader, same compiler, same prefilter) and runs
 * the same test code a reload runs, so "passes in CI" means "would be
 * accepted by a running logsift".
 *
 * Threads: main thread only.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: logsift test [--stats] [--strict] [--quiet] [PACK_OR_DIR ...]\n"
               "  runs every inline test of the packs (default: rules/packs); prints each\n"
               "  failure with a field-by-field diff and exits 1 if any test fails.\n"
               "  --stats   per-rule counts and time over the test lines\n"
               "  --strict  ambiguous lines and rules without a test fail too\n"
               "  --quiet   only failures and the summary (no warnings)\n");
}

int lsf_rules_cmd_test(int argc, char **argv)
{
    bool stats = false, strict = false, quiet = false;
    static const struct option longopts[] = {{"stats", no_argument, NULL, 's'},
                                             {"strict", no_argument, NULL, 'S'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "sqh", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            stats = true;
            break;
        case 'S':
            strict = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    static const char *const def[] = {"rules/packs"};
    const char *const *paths = optind < argc ? (const char *const *)argv + optind : def;
    size_t npaths = optind < argc ? (size_t)(argc - optind) : 1;

    lsf_rules_opts o = {.nworkers = 1, .quiet = quiet, .time_every = stats};
    lsf_errbuf err = {{0}};
    lsf_ruleset *rs = lsf_ruleset_load(paths, npaths, &o, &err);
    if (!rs) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    lsf_rules_test_result res;
    FILE *report = stdout;
    char *quiet_buf = NULL;
    size_t quiet_len = 0;
    if (quiet) { /* keep FAIL blocks, drop WARN lines */
        report = open_memstream(&quiet_buf, &quiet_len);
        if (!report)
            report = stdout;
    }
    int rc = lsf_ruleset_run_tests(rs, report, strict, &res);
    if (report != stdout) {
        fclose(report);
        bool in_fail = false;
        for (char *line = strtok(quiet_buf, "\n"); line; line = strtok(NULL, "\n")) {
            if (strncmp(line, "FAIL ", 5) == 0)
                in_fail = true;
            else if (strncmp(line, "WARN ", 5) == 0)
                in_fail = false;
            if (in_fail)
                printf("%s\n", line);
        }
        free(quiet_buf);
    }
    if (stats)
        lsf_ruleset_print_stats(rs, stdout);
    printf("%s: %zu packs, %zu rules (%zu without prefilter), %u tests: %u passed, %u failed; "
           "%u ambiguous lines, %u rules without a test%s\n",
           rc == 0 ? "ok" : "FAILED", lsf_ruleset_npacks(rs), lsf_ruleset_nrules(rs),
           lsf_ruleset_nalways(rs), res.tests, res.passed, res.failed + res.engine,
           res.ambiguous, res.untested, strict ? " (strict)" : "");
    lsf_ruleset_unref(rs);
    return rc == 0 ? 0 : 1;
}

int lsf_rules_parse_transform(const char *dir, char *buf, size_t n)
{
    size_t len = 0;
    int w = snprintf(buf, n, "transforms: [{type: rules, packs: [\"");
    if (w < 0 || (size_t)w >= n)
        return -1;
    len = (size_t)w;
    for (const char *p = dir; *p; p++) {
        if ((unsigned char)*p < 0x20)
            return -1;
        if (len + 3 >= n)
            return -1;
        if (*p == '"' || *p == '\\')
            buf[len++] = '\\';
        buf[len++] = *p;
    }
    w = snprintf(buf + len, n - len,
                 "\"], watch: false, test_on_load: false, apply_drop: false}]\n");
    return w < 0 || (size_t)w >= n - len ? -1 : 0;
}
