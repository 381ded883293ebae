/* enrich.c - helpers shared by the enrichment stages (see enrich.h).
 * Threads: pure functions.
 */
#include "enrich/enrich.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

char *lsf_enrich_prefix(const char *field)
{
    const char *dot = strrchr(field, '.');
    size_t n = dot ? (size_t)(dot - field) : 0;
    char *p = malloc(n + 1);
    if (!p)
        lsf_die("out of memory");
    memcpy(p, field, n);
    p[n] = 0;
    return p;
}

char *lsf_enrich_join(const char *prefix, const char *suffix)
{
    size_t a = strlen(prefix), b = strlen(suffix);
    char *s = malloc(a + b + 2);
    if (!s)
        lsf_die("out of memory");
    if (a) {
        memcpy(s, prefix, a);
        s[a++] = '.';
    }
    memcpy(s + a, suffix, b + 1);
    return s;
}

bool lsf_enrich_name_ok(const char *name)
{
    if (!*name || *name == '.')
        return false;
    for (const char *p = name; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return false;
        if (*p == '.' && (p[1] == '.' || p[1] == 0))
            return false;
    }
    return true;
}

const lsf_node *lsf_enrich_at(const lsf_node *stage, const char *key)
{
    const lsf_node *n = lsf_node_get(stage, key);
    return n ? n : stage;
}

int lsf_enrich_load_error(lsf_errbuf *err, const lsf_node *at, const char *file)
{
    size_t n = strlen(file);
    if (strncmp(err->msg, file, n) == 0 && err->msg[n] == ':' &&
        isdigit((unsigned char)err->msg[n + 1]))
        return -1;
    lsf_errbuf inner = *err;
    return lsf_node_error(err, at, "%s", inner.msg);
}
