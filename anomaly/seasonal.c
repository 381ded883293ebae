/* seasonal.c - hour-of-day and hour-of-week baselines for rate series.
 *
 * Design essay. Log volumes follow people: a web tier at 10:00 on a Monday
 * is busier than at 03:00 on a Sunday, and a count that is normal for one is
 * a spike for the other. The classical remedy is a seasonal baseline: split
 * time into the phases of the cycle and keep a separate estimate per phase,
 * as in Holt-Winters' seasonal indices (Winters, "Forecasting sales by
 * exponentially weighted moving averages", Management Science 1960) or the
 * per-slot baselines of Brutlag ("Aberrant behavior detection in time series
 * for network monitoring", LISA 2000). Here a phase is one UTC hour of the
 * day (24 buckets) or of the week (168), and each bucket holds an EWMA mean
 * and variance with its own half-life counted in that bucket's observations,
 * so "expected at this hour" follows a slow drift over weeks without being
 * moved by one odd day. A bucket is trusted only after min_n observations;
 * a daily baseline needs about a week of data to be useful, a weekly one a
 * month, which is why the rate detector treats the seasonal deviation as one
 * more member of its ensemble and not as the whole model. Buckets are floats
 * (12 bytes each: 288 bytes daily, 2 KiB weekly per key), allocated on the
 * first observation.
 *
 * Threads: the caller owns each instance.
 */
#include <math.h>
#include <stdlib.h>

#include "anomaly/stats.h"
#include "core/log.h"

void lsf_seasonal_init(lsf_seasonal *s, enum lsf_season period, double half_life)
{
    s->b = NULL;
    s->period = (uint16_t)period;
    if (!(half_life > 0))
        half_life = 1;
    s->alpha = (float)(1 - exp2(-1.0 / half_life));
}

void lsf_seasonal_free(lsf_seasonal *s)
{
    free(s->b);
    s->b = NULL;
}

int lsf_seasonal_bucket(const lsf_seasonal *s, int64_t time_ns)
{
    if (!s->period)
        return 0;
    int64_t hours = time_ns / 3600000000000LL;
    if (time_ns < 0 && time_ns % 3600000000000LL)
        hours--;
    /* 1970-01-01 was a Thursday; bucket 0 of the week is Monday 00:00 UTC */
    int64_t h = (hours + 3 * 24) % s->period;
    return (int)(h < 0 ? h + s->period : h);
}

void lsf_seasonal_add(lsf_seasonal *s, int64_t time_ns, double x)
{
    if (!s->period)
        return;
    if (!s->b) {
        s->b = calloc(s->period, sizeof(*s->b));
        if (!s->b)
            lsf_die("out of memory (seasonal baseline)");
    }
    lsf_season_bucket *b = &s->b[lsf_seasonal_bucket(s, time_ns)];
    double mean = b->mean, var = b->var;
    lsf_ewma_step(&mean, &var, ++b->n, s->alpha, x); /* ewma.c, kept in floats */
    b->mean = (float)mean;
    b->var = (float)var;
}

bool lsf_seasonal_expect(const lsf_seasonal *s, int64_t time_ns, uint32_t min_n, double *mean,
                         double *sd)
{
    if (!s->b)
        return false;
    const lsf_season_bucket *b = &s->b[lsf_seasonal_bucket(s, time_ns)];
    if (b->n < min_n || b->n == 0)
        return false;
    *mean = b->mean;
    *sd = b->var > 0 ? sqrt(b->var) : 0;
    return true;
}

size_t lsf_seasonal_bytes(const lsf_seasonal *s)
{
    return s->b ? s->period * sizeof(*s->b) : 0;
}

void lsf_seasonal_save(const lsf_seasonal *s, lsf_wbuf *w)
{
    lsf_wbuf_u8(w, s->b ? 1 : 0);
    if (s->b)
        lsf_wbuf_put(w, s->b, s->period * sizeof(*s->b));
}

int lsf_seasonal_load(lsf_seasonal *s, lsf_rbuf *r)
{
    lsf_seasonal_free(s);
    uint8_t has = lsf_rbuf_u8(r);
    if (has > 1)
        r->bad = true;
    if (has == 1 && s->period) {
        const void *p = lsf_rbuf_view(r, s->period * sizeof(*s->b));
        if (p) {
            s->b = malloc(s->period * sizeof(*s->b));
            if (!s->b)
                lsf_die("out of memory (seasonal baseline)");
            memcpy(s->b, p, s->period * sizeof(*s->b));
        }
    } else if (has == 1)
        r->bad = true;
    if (r->bad) {
        lsf_seasonal_free(s);
        return -1;
    }
    return 0;
}
