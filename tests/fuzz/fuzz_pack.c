/* fuzz_pack.c - libFuzzer target: the rule-pack loader (YAML, validation,
 * pattern macros, PCRE2 and Hyperscan compilation, inline tests) on
 * arbitrary text must fail cleanly with a message or load, never crash.
 * The text is written to a private temporary file, as packs are files. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "rules/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0])
        snprintf(path, sizeof(path), "/tmp/lsf-fuzz-pack-%ld.yaml", (long)getpid());
    lsf_log_threshold = -1;
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);
    const char *paths[] = {path};
    lsf_rules_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.nworkers = 1;
    opts.quiet = true;
    lsf_errbuf err = {{0}};
    lsf_ruleset *rs = lsf_ruleset_load(paths, 1, &opts, &err);
    if (rs) {
        lsf_rules_test_result res;
        memset(&res, 0, sizeof(res));
        lsf_ruleset_run_tests(rs, NULL, false, &res);
        lsf_ruleset_unref(rs);
    } else if (!err.msg[0]) {
        abort(); /* failed without saying why */
    }
    unlink(path);
    return 0;
}
