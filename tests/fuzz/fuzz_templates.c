/* fuzz_templates.c - libFuzzer target: the generic masking and the template
 * miner (anomaly/mask.c, anomaly/template.c) on arbitrary bytes.
 *
 * Each input is split at newlines; every line is masked and checked (tokens
 * and separators inside the line, in order, at most LSF_MASK_MAX_TOKENS),
 * then mined by one miner that lives across inputs, so templates are
 * created, generalised and evicted (a small max_templates) as in a long run;
 * a matched template's text must be readable back. A second miner with a
 * memo (lsf_miner_memo_add) mines the same lines and must answer the same.
 * Threads: single-threaded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly/template.h"

static lsf_miner *miner, *memo_miner;
static lsf_miner_memo *memo;

static void check_masked(size_t n, const lsf_masked *m)
{
    if (m->n == 0 || m->n > LSF_MASK_MAX_TOKENS)
        abort();
    uint32_t at = 0;
    for (uint32_t i = 0; i < m->n; i++) {
        const lsf_mtok *t = &m->tok[i];
        /* the separator runs from where the previous token ended to this one */
        if (t->sep_off != at || t->sep_off + t->sep_len != t->off)
            abort();
        if ((size_t)t->off + t->len > n)
            abort();
        at = t->off + t->len;
    }
    if (m->trail_off != at || m->trail_off > n)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!miner) {
        lsf_miner_opts o;
        lsf_miner_opts_default(&o);
        o.max_templates = 64;
        miner = lsf_miner_new(&o);
        memo_miner = lsf_miner_new(&o);
        memo = lsf_miner_memo_new(memo_miner);
    }
    static lsf_masked m;
    const char *p = (const char *)data, *end = p + size;
    while (p <= end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        lsf_mask_line(p, n, &m);
        check_masked(n, &m);
        lsf_template_match tm;
        lsf_miner_add(miner, p, n, &tm);
        lsf_template_match tm2;
        lsf_miner_memo_add(memo, p, n, &tm2);
        if (tm.id != tm2.id || tm.slot != tm2.slot || tm.count != tm2.count ||
            tm.created != tm2.created || tm.generalised != tm2.generalised)
            abort(); /* the memo answers as mining does */
        char text[512];
        if (lsf_miner_text(miner, tm.slot, tm.id, text, sizeof(text)) < 0)
            abort(); /* the template a line just matched cannot be gone */
        if (!nl)
            break;
        p = nl + 1;
    }
    return 0;
}
