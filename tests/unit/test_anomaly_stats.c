/* test_anomaly_stats.c - the streaming statistics of anomaly/: error bounds
 * with fixed seeds (never exact floats), against direct computations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly/hash.h"
#include "anomaly/stats.h"

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state += 0x9e3779b97f4a7c15ULL;
    return lsf_mix64(rng_state);
}
static double unif(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}
static double gauss(void)
{
    double u = unif(), v = unif();
    return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

/* ---- EWMA ------------------------------------------------------------------ */

/* lsf_hash64 by its definition: whole words, then the rest zero-padded. */
static uint64_t hash_by_definition(const void *data, size_t n, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed ^ (0x9e3779b97f4a7c15ULL * (n + 1));
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v |= (uint64_t)p[i] << (8 * i);
        h = lsf_mix64(h ^ v) + 0x9e3779b97f4a7c15ULL;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return lsf_mix64(h ^ v ^ ((uint64_t)n << 56));
}

/* Template ids and snapshot keys are these hashes: the fast tail reads must
 * give the definition's value at every length and alignment. */
static void test_hash_is_stable(void **state)
{
    (void)state;
    unsigned char buf[96];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i * 37 + 11);
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= 80; n++)
            assert_true(lsf_hash64(buf + off, n, off * 7) == hash_by_definition(buf + off, n, off * 7));
    assert_true(lsf_hash64("web-01", 6, 0) == 0xb2b2e8f6a52cff18ULL); /* pinned: snapshots hold them */
    assert_true(lsf_hash64("Accepted password for", 21, 1) == 0x2bd3b1c2cbe7337eULL);
}

static void test_ewma_matches_direct_weights(void **state)
{
    (void)state;
    rng_state = 1;
    const double hl = 20;
    lsf_ewma e;
    lsf_ewma_init(&e, hl);
    enum { N = 500 };
    double xs[N];
    for (int i = 0; i < N; i++) {
        xs[i] = 1000 + 50 * gauss();
        lsf_ewma_add(&e, xs[i]);
    }
    /* direct: weights alpha (1 - alpha)^(N-1-i), with the warm-up weights
     * folded in exactly by replaying the recurrence on weights */
    double a = 1 - exp2(-1.0 / hl);
    double w[N];
    for (int i = 0; i < N; i++) {
        double ai = 1.0 / (i + 1);
        if (ai < a)
            ai = a;
        for (int j = 0; j < i; j++)
            w[j] *= 1 - ai;
        w[i] = ai;
    }
    double m = 0, sw = 0;
    for (int i = 0; i < N; i++) {
        m += w[i] * xs[i];
        sw += w[i];
    }
    assert_true(fabs(sw - 1) < 1e-9);
    double v = 0;
    for (int i = 0; i < N; i++)
        v += w[i] * (xs[i] - m) * (xs[i] - m);
    assert_true(fabs(e.mean - m) < 1e-6 * fabs(m));
    /* the incremental variance equals the weighted one within 1 % */
    assert_true(fabs(e.var - v) < 0.01 * v);
    /* and the series' sd is about 50 */
    assert_true(fabs(lsf_ewma_sd(&e) - 50) < 15);
    assert_true(fabs(lsf_ewma_z(&e, e.mean + 3 * lsf_ewma_sd(&e), 10) - 3) < 1e-9);
    lsf_ewma f;
    lsf_ewma_init(&f, hl);
    lsf_ewma_add(&f, 5);
    assert_true(lsf_ewma_z(&f, 100, 10) == 0); /* warm-up */
}

static void test_ewma_half_life(void **state)
{
    (void)state;
    lsf_ewma e;
    lsf_ewma_init(&e, 10);
    for (int i = 0; i < 1000; i++)
        lsf_ewma_add(&e, 0);
    for (int i = 0; i < 10; i++)
        lsf_ewma_add(&e, 1);
    /* after one half-life of ones the mean is half-way */
    assert_true(fabs(e.mean - 0.5) < 1e-9);
}

/* ---- seasonal ------------------------------------------------------------------ */

static void test_seasonal_buckets(void **state)
{
    (void)state;
    lsf_seasonal s;
    lsf_seasonal_init(&s, LSF_SEASON_WEEKLY, 4);
    const int64_t H = 3600000000000LL;
    int64_t monday = 4 * 24 * H; /* 1970-01-05 was a Monday */
    assert_int_equal(lsf_seasonal_bucket(&s, monday), 0);
    assert_int_equal(lsf_seasonal_bucket(&s, monday + 10 * H + 59 * 60000000000LL), 10);
    assert_int_equal(lsf_seasonal_bucket(&s, monday - H), 167); /* Sunday 23:00 */
    assert_int_equal(lsf_seasonal_bucket(&s, monday + 7 * 24 * H), 0);
    double m, sd;
    assert_false(lsf_seasonal_expect(&s, monday, 1, &m, &sd));
    /* four weeks: Mondays 10:00 busy (100), everything else quiet (10) */
    for (int w = 0; w < 4; w++)
        for (int h = 0; h < 168; h++)
            lsf_seasonal_add(&s, monday + (int64_t)(w * 168 + h) * H, h == 10 ? 100 : 10);
    assert_true(lsf_seasonal_expect(&s, monday + 10 * H, 3, &m, &sd));
    assert_true(fabs(m - 100) < 1e-3);
    assert_true(lsf_seasonal_expect(&s, monday + 34 * H, 3, &m, &sd)); /* Tuesday 10:00 */
    assert_true(fabs(m - 10) < 1e-3);
    assert_false(lsf_seasonal_expect(&s, monday + 34 * H, 5, &m, &sd)); /* needs 5 weeks */
    /* a daily baseline folds the days together */
    lsf_seasonal dd;
    lsf_seasonal_init(&dd, LSF_SEASON_DAILY, 4);
    assert_int_equal(lsf_seasonal_bucket(&dd, monday + 34 * H), 10);
    lsf_wbuf w = {0};
    lsf_seasonal_save(&s, &w);
    lsf_seasonal t;
    lsf_seasonal_init(&t, LSF_SEASON_WEEKLY, 4);
    lsf_rbuf r = {w.p, w.len, 0, false};
    assert_int_equal(lsf_seasonal_load(&t, &r), 0);
    assert_true(lsf_seasonal_expect(&t, monday + 10 * H, 3, &m, &sd) && fabs(m - 100) < 1e-3);
    lsf_seasonal_free(&t);
    lsf_seasonal_free(&s);
    lsf_seasonal_free(&dd);
    lsf_wbuf_free(&w);
}

/* ---- robust window -------------------------------------------------------------- */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void test_sliding_median_and_mad(void **state)
{
    (void)state;
    rng_state = 7;
    for (uint32_t cap = 1; cap <= 130; cap += 43) {
        lsf_slwin w;
        lsf_slwin_init(&w, cap);
        double hist[2000];
        for (int i = 0; i < 2000; i++) {
            double x = (i % 97 == 0) ? 1e6 : floor(100 * gauss()); /* ties and outliers */
            hist[i] = (float)x;
            lsf_slwin_add(&w, x);
            int n = i + 1 < (int)cap ? i + 1 : (int)cap;
            double tmp[200], dev[200];
            memcpy(tmp, hist + i + 1 - n, (size_t)n * sizeof(double));
            double m = median_of(tmp, n);
            assert_true(fabs(lsf_slwin_median(&w) - m) <= 1e-9 * (1 + fabs(m)));
            if (i % 50 == 0 && n >= 2) {
                for (int k = 0; k < n; k++)
                    dev[k] = fabs(hist[i + 1 - n + k] - m);
                double mad = median_of(dev, n);
                assert_true(fabs(lsf_slwin_mad(&w) - mad) <= 1e-6 * (1 + mad));
            }
            assert_true(lsf_slwin_recent(&w, 0) == hist[i]);
        }
        lsf_wbuf b = {0};
        lsf_slwin_save(&w, &b);
        lsf_slwin v;
        lsf_slwin_init(&v, cap);
        lsf_rbuf r = {b.p, b.len, 0, false};
        assert_int_equal(lsf_slwin_load(&v, &r), 0);
        assert_true(lsf_slwin_median(&v) == lsf_slwin_median(&w));
        lsf_slwin_free(&v);
        lsf_slwin_free(&w);
        lsf_wbuf_free(&b);
    }
}

/* ---- tail rank ------------------------------------------------------------------ */

static void test_tailrank_matches_exact_rank_in_the_tail(void **state)
{
    (void)state;
    rng_state = 11;
    lsf_tailrank t;
    lsf_tailrank_init(&t, 64);
    enum { N = 5000, SPAN = 64 * LSF_TAIL_BLOCKS };
    static double hist[N];
    for (int i = 0; i < N; i++) {
        double a = fabs(gauss());
        if (i > SPAN) {
            /* exact conformal p over the same span of full blocks + current */
            double best = 0;
            for (int k = 0; k < i; k++)
                if (hist[k] > best && k >= i - SPAN)
                    best = hist[k];
            /* a new maximum of the horizon gets the smallest p */
            double p = lsf_tailrank_p(&t, best + 1);
            assert_true(p <= 1.0 / SPAN + 1e-12);
            /* p is never below the exact rank in the tail (conservative) */
            int c = 0;
            for (int k = i - SPAN; k < i; k++)
                c += hist[k] >= a;
            double exact = (c + 1.0) / (SPAN + 1.0);
            double got = lsf_tailrank_p(&t, a);
            if (exact < 0.01)
                assert_true(got <= exact * 1.5 + 2.0 / SPAN);
            assert_true(got <= 1);
        }
        hist[i] = a;
        lsf_tailrank_add(&t, a);
    }
    /* a value every block has reached is not rare */
    assert_true(lsf_tailrank_p(&t, 0) == 1);
    lsf_tailrank_init(&t, 4);
    assert_true(lsf_tailrank_p(&t, 5) == 1);
}

/* ---- novelty ------------------------------------------------------------------- */

static void test_novelty_nearest_neighbour(void **state)
{
    (void)state;
    rng_state = 5;
    lsf_novelty nv;
    lsf_novelty_init(&nv, 5, 100);
    float mem[300][5];
    assert_true(isinf(lsf_novelty_nn(&nv, mem[0])));
    for (int i = 0; i < 300; i++) {
        for (int d = 0; d < 5; d++)
            mem[i][d] = (float)gauss();
        float q[5];
        for (int d = 0; d < 5; d++)
            q[d] = (float)gauss();
        if (i > 0) {
            double best = INFINITY;
            int from = i > 100 ? i - 100 : 0;
            for (int k = from; k < i; k++) {
                double s = 0;
                for (int d = 0; d < 5; d++)
                    s += (q[d] - mem[k][d]) * (q[d] - mem[k][d]);
                if (s < best)
                    best = s;
            }
            assert_true(fabs(lsf_novelty_nn(&nv, q) - sqrt(best)) < 1e-4);
        }
        lsf_novelty_add(&nv, mem[i]);
    }
    /* 100 vectors, rounded up to whole blocks of 8 */
    assert_true(lsf_novelty_bytes(&nv) == 104 * 5 * sizeof(float));
    lsf_novelty_free(&nv);
}

/* ---- anomaly likelihood ---------------------------------------------------------- */

static void test_likely_short_mean_against_long_fit(void **state)
{
    (void)state;
    rng_state = 17;
    enum { K = 20 };
    lsf_likely l;
    lsf_likely_init(&l, K, 256);
    /* the direct computation: short mean of the last K, EWMA of earlier means */
    lsf_ewma fit;
    lsf_ewma_init(&fit, 256);
    double ring[K];
    int low = 0, n = 0;
    for (int i = 0; i < 3000; i++) {
        double raw = 0.5 * unif();
        ring[i % K] = raw;
        bool ready = lsf_likely_ready(&l, 50);
        double p = lsf_likely_add(&l, raw, 50);
        if (i < K - 1) {
            assert_true(p == 1 && !ready);
            continue;
        }
        double m = 0;
        for (int k = 0; k < K; k++)
            m += (float)ring[k];
        m /= K;
        double want = 1;
        if (fit.n >= 50) {
            double sd = lsf_ewma_sd(&fit) < 0.05 ? 0.05 : lsf_ewma_sd(&fit);
            want = 0.5 * erfc((m - fit.mean) / sd / M_SQRT2);
            assert_true(ready);
        } else
            assert_false(ready);
        lsf_ewma_add(&fit, m);
        assert_true(fabs(p - want) < 1e-6);
        if (fit.n > 50) {
            n++;
            low += p < 0.01;
        }
    }
    /* on a stationary raw score the likelihood is rarely extreme */
    if (low > n * 0.03)
        fail_msg("p < 0.01 for %d of %d stationary points", low, n);
    /* one wild raw score among low ones moves the short mean little... */
    double p1 = lsf_likely_add(&l, 1.0, 50);
    assert_true(p1 > 0.01);
    /* ...a run of them is what the likelihood reports */
    double p2 = 1;
    for (int i = 0; i < K; i++)
        p2 = lsf_likely_add(&l, 1.0, 50);
    assert_true(p2 < 1e-4);
    /* non-finite raw scores are ignored */
    assert_true(lsf_likely_add(&l, NAN, 50) == 1);

    /* snapshot round trip: the restored copy answers the same */
    lsf_wbuf w = {0};
    lsf_likely_save(&l, &w);
    lsf_likely l2;
    lsf_likely_init(&l2, K, 256);
    lsf_rbuf rb = {w.p, w.len, 0, false};
    assert_int_equal(lsf_likely_load(&l2, &rb), 0);
    assert_true(lsf_likely_add(&l, 0.3, 50) == lsf_likely_add(&l2, 0.3, 50));
    /* saved with another short length or half-life: refused, left empty */
    lsf_likely l3;
    lsf_likely_init(&l3, K - 1, 256);
    rb = (lsf_rbuf){w.p, w.len, 0, false};
    assert_int_equal(lsf_likely_load(&l3, &rb), -1);
    assert_false(lsf_likely_ready(&l3, 0));
    lsf_likely_init(&l3, K, 100);
    rb = (lsf_rbuf){w.p, w.len, 0, false};
    assert_int_equal(lsf_likely_load(&l3, &rb), -1);
    lsf_wbuf_free(&w);
}

/* ---- vigilance --------------------------------------------------------------------- */

static void test_vigil_bar_rises_and_decays(void **state)
{
    (void)state;
    lsf_vigil v = {0};
    double f = lsf_vigil_factor(100);
    assert_true(lsf_vigil_passes(&v, 1e-9));
    lsf_vigil_raise(&v, 10);
    assert_false(lsf_vigil_passes(&v, 10));
    assert_false(lsf_vigil_passes(&v, 9));
    assert_true(lsf_vigil_passes(&v, 10.5));
    /* a lower report does not lower the bar */
    lsf_vigil_raise(&v, 4);
    assert_false(lsf_vigil_passes(&v, 9.9));
    /* half-life: after 100 observations the bar is half */
    for (int i = 0; i < 100; i++)
        lsf_vigil_decay(&v, f);
    assert_true(fabs(v.bar - 5) < 1e-3);
    assert_true(lsf_vigil_passes(&v, 5.01) && !lsf_vigil_passes(&v, 4.99));
    /* it fades to nothing, never to a denormal */
    for (int i = 0; i < 20000; i++)
        lsf_vigil_decay(&v, f);
    assert_true(v.bar == 0);
    assert_true(lsf_vigil_factor(0) == 0);
}

/* ---- HyperLogLog ------------------------------------------------------------------ */

static void test_hll_relative_error(void **state)
{
    (void)state;
    const int p = 12; /* standard error 1.04 / 64 = 1.6 % */
    uint64_t cards[] = {10, 100, 1000, 5000, 10000, 50000, 200000, 1000000};
    for (int seed = 1; seed <= 3; seed++) {
        lsf_hll h;
        lsf_hll_init(&h, p);
        uint64_t added = 0;
        for (size_t c = 0; c < sizeof(cards) / sizeof(cards[0]); c++) {
            for (; added < cards[c]; added++)
                lsf_hll_add(&h, lsf_mix64(added * 1000003ULL + (uint64_t)seed * 0x1234567ULL));
            double est = lsf_hll_count(&h);
            double rel = fabs(est - (double)cards[c]) / (double)cards[c];
            /* 4 standard errors, and small sets are nearly exact */
            double bound = cards[c] <= 100 ? 0.03 : 4 * 1.04 / 64;
            if (rel > bound)
                fail_msg("seed %d, n=%llu: estimate %.1f (%.2f%%)", seed,
                         (unsigned long long)cards[c], est, 100 * rel);
        }
        /* duplicates change nothing */
        double before = lsf_hll_count(&h);
        for (uint64_t i = 0; i < 1000; i++)
            lsf_hll_add(&h, lsf_mix64(i * 1000003ULL + (uint64_t)seed * 0x1234567ULL));
        assert_true(lsf_hll_count(&h) == before);
        lsf_hll_free(&h);
    }
    lsf_hll a, b;
    lsf_hll_init(&a, 10);
    lsf_hll_init(&b, 10);
    assert_true(lsf_hll_count(&a) == 0);
    for (uint64_t i = 0; i < 20000; i++)
        lsf_hll_add(i < 12000 ? &a : &b, lsf_mix64(i + 99));
    assert_int_equal(lsf_hll_merge(&a, &b), 0);
    assert_true(fabs(lsf_hll_count(&a) - 20000) / 20000 < 4 * 1.04 / 32);
    lsf_wbuf w = {0};
    lsf_hll_save(&a, &w);
    lsf_hll c;
    lsf_hll_init(&c, 10);
    lsf_rbuf r = {w.p, w.len, 0, false};
    assert_int_equal(lsf_hll_load(&c, &r), 0);
    assert_true(lsf_hll_count(&c) == lsf_hll_count(&a));
    lsf_hll d;
    lsf_hll_init(&d, 11);
    assert_int_equal(lsf_hll_merge(&d, &a), -1);
    r = (lsf_rbuf){w.p, w.len, 0, false};
    assert_int_equal(lsf_hll_load(&d, &r), -1); /* other precision */
    lsf_hll_free(&a);
    lsf_hll_free(&b);
    lsf_hll_free(&c);
    lsf_hll_free(&d);
    lsf_wbuf_free(&w);
}

/* ---- count-min ---------------------------------------------------------------------- */

static void test_cms_overestimate_bound(void **state)
{
    (void)state;
    rng_state = 3;
    const double eps = 0.001, delta = 0.01;
    lsf_cms c;
    lsf_cms_init(&c, eps, delta);
    enum { ITEMS = 20000 };
    static uint32_t truth[ITEMS];
    uint64_t total = 0;
    for (int i = 0; i < 300000; i++) {
        /* skewed: item k with weight ~ 1/(k+1) */
        uint32_t k = (uint32_t)(pow(ITEMS, unif()) - 1);
        if (k >= ITEMS)
            k = ITEMS - 1;
        truth[k]++;
        total++;
        uint32_t was = lsf_cms_estimate(&c, lsf_mix64(k + 17)), before;
        assert_int_equal(lsf_cms_add(&c, lsf_mix64(k + 17), 1, &before), was + 1);
        assert_int_equal(before, was);
    }
    assert_true(c.total == total);
    int over = 0;
    for (uint32_t k = 0; k < ITEMS; k++) {
        uint32_t est = lsf_cms_estimate(&c, lsf_mix64(k + 17));
        assert_true(est >= truth[k]); /* never undercounts */
        if (est - truth[k] > eps * (double)total)
            over++;
    }
    /* at most delta of the items exceed the eps * N bound (expect far fewer) */
    assert_true(over <= delta * ITEMS);
    lsf_wbuf w = {0};
    lsf_cms_save(&c, &w);
    lsf_cms d;
    lsf_cms_init(&d, eps, delta);
    lsf_rbuf r = {w.p, w.len, 0, false};
    assert_int_equal(lsf_cms_load(&d, &r), 0);
    assert_true(lsf_cms_estimate(&d, lsf_mix64(17)) == lsf_cms_estimate(&c, lsf_mix64(17)));
    lsf_cms_free(&c);
    lsf_cms_free(&d);
    lsf_wbuf_free(&w);
}

/* ---- space-saving ------------------------------------------------------------------- */

static void test_topk_recall_on_zipf(void **state)
{
    (void)state;
    rng_state = 9;
    enum { ITEMS = 100000, N = 500000, K = 100, TOP = 20 };
    /* Zipf(1.3) by inversion of the cumulative weights */
    static double cum[ITEMS];
    double s = 0;
    for (int i = 0; i < ITEMS; i++) {
        s += 1 / pow(i + 1, 1.3);
        cum[i] = s;
    }
    static uint32_t truth[ITEMS];
    lsf_topk t;
    lsf_topk_init(&t, K);
    for (int n = 0; n < N; n++) {
        double u = unif() * s;
        int lo = 0, hi = ITEMS - 1;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (cum[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        truth[lo]++;
        lsf_topk_add(&t, (uint64_t)lo * 7919 + 1, 1, NULL);
    }
    lsf_topk_entry out[K];
    uint32_t m = lsf_topk_list(&t, out, K);
    assert_int_equal(m, K);
    for (uint32_t i = 1; i < m; i++)
        assert_true(out[i - 1].count >= out[i].count);
    /* the true top 20 (items 0..19 by construction, up to sampling) */
    int found = 0;
    for (int item = 0; item < TOP; item++)
        for (uint32_t i = 0; i < m; i++)
            if (out[i].id == (uint64_t)item * 7919 + 1) {
                found++;
                /* count - err <= truth <= count */
                assert_true(out[i].count >= truth[item]);
                assert_true(out[i].count - out[i].err <= truth[item]);
                break;
            }
    assert_true(found >= TOP * 95 / 100);
    /* every item above N / K is monitored */
    for (int item = 0; item < ITEMS; item++)
        if (truth[item] > N / K)
            assert_true(lsf_topk_count(&t, (uint64_t)item * 7919 + 1) >= truth[item]);
    lsf_wbuf w = {0};
    lsf_topk_save(&t, &w);
    lsf_topk u;
    lsf_topk_init(&u, K);
    lsf_rbuf r = {w.p, w.len, 0, false};
    assert_int_equal(lsf_topk_load(&u, &r), 0);
    assert_true(lsf_topk_count(&u, 1) == lsf_topk_count(&t, 1));
    lsf_topk_free(&t);
    lsf_topk_free(&u);
    lsf_wbuf_free(&w);
    /* a small summary (no index) keeps the same guarantees; evictions are reported */
    lsf_topk sm;
    lsf_topk_init(&sm, 4);
    lsf_topk_entry ev;
    for (int i = 0; i < 100; i++)
        assert_false(lsf_topk_add(&sm, (uint64_t)(i % 3), 1, &ev));
    assert_true(lsf_topk_add(&sm, 7, 1, NULL) == false); /* a fourth slot is still free */
    assert_true(lsf_topk_add(&sm, 8, 1, &ev));
    assert_true(ev.id == 7 && ev.count == 1);
    assert_true(lsf_topk_count(&sm, 0) == 34 && lsf_topk_count(&sm, 8) == 2);
    assert_null(lsf_topk_find(&sm, 7));
    /* with the heap in the caller's memory: the same summary, not counted, not freed */
    lsf_topk_entry mem[4 + 1];
    mem[4].id = 0x5e47;
    lsf_topk given;
    lsf_topk_init_in(&given, 4, mem);
    for (int i = 0; i < 100; i++)
        lsf_topk_add(&given, (uint64_t)(i % 3), 1, NULL);
    lsf_topk_add(&given, 7, 1, NULL);
    lsf_topk_add(&given, 8, 1, &ev);
    lsf_topk_entry a[4], b[4];
    uint32_t na = lsf_topk_list(&sm, a, 4), nb = lsf_topk_list(&given, b, 4);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof(a[0]));
    assert_int_equal(lsf_topk_bytes(&given), 0);
    assert_true(lsf_topk_bytes(&sm) == 4 * sizeof(lsf_topk_entry));
    assert_true(mem[4].id == 0x5e47); /* only k entries written */
    lsf_topk_free(&given);
    lsf_topk_free(&sm);
}

/* ---- first-seen ---------------------------------------------------------------------- */

static void test_firstseen_learning_period(void **state)
{
    (void)state;
    const int64_t S = 1000000000LL, learn = 3600 * S;
    lsf_firstseen f;
    lsf_firstseen_init(&f, 100);
    double p;
#define V(i) lsf_mix64((uint64_t)(i) + 100) /* value hashes, as the detector makes them */
    int64_t t0 = 1700000000 * S;
    /* three values learned in the first hour */
    assert_int_equal(lsf_firstseen_add(&f, V(1), t0, learn, &p), LSF_SEEN_LEARNING);
    assert_int_equal(lsf_firstseen_add(&f, V(2), t0 + 10 * S, learn, &p), LSF_SEEN_LEARNING);
    assert_int_equal(lsf_firstseen_add(&f, V(3), t0 + 3599 * S, learn, &p), LSF_SEEN_LEARNING);
    for (int i = 0; i < 997; i++)
        assert_int_equal(lsf_firstseen_add(&f, V(1 + (uint64_t)(i % 3)), t0 + 3600 * S + i, learn, &p),
                         LSF_SEEN_KNOWN);
    /* a new value after learning: Good-Turing p = (0 + 1) / (1000 + 2) */
    assert_int_equal(lsf_firstseen_add(&f, V(4), t0 + 7200 * S, learn, &p), LSF_SEEN_NEW);
    assert_true(fabs(p - 1.0 / 1002) < 1e-12);
    assert_int_equal(lsf_firstseen_add(&f, V(4), t0 + 7201 * S, learn, &p), LSF_SEEN_KNOWN);
    /* a key that keeps seeing new values has a high p_new */
    lsf_firstseen g;
    lsf_firstseen_init(&g, 10);
    for (uint64_t i = 1; i <= 10; i++)
        lsf_firstseen_add(&g, V(i * 31), t0, 0, &p);
    assert_int_equal(lsf_firstseen_add(&g, V(999), t0, 0, &p), LSF_SEEN_FULL);
    assert_true(p > 0.9);
    /* snapshot round trip keeps the set and the singletons */
    lsf_wbuf w = {0};
    lsf_firstseen_save(&f, &w);
    lsf_firstseen h;
    lsf_firstseen_init(&h, 100);
    lsf_rbuf r = {w.p, w.len, 0, false};
    assert_int_equal(lsf_firstseen_load(&h, &r), 0);
    assert_int_equal(h.n, 4);
    assert_int_equal(h.singletons, f.singletons);
    assert_int_equal(lsf_firstseen_add(&h, V(2), t0 + 9000 * S, learn, &p), LSF_SEEN_KNOWN);
    /* a truncated buffer is refused and leaves an empty set */
    lsf_rbuf bad = {w.p, w.len - 3, 0, false};
    assert_int_equal(lsf_firstseen_load(&h, &bad), -1);
    assert_int_equal(h.n, 0);
    lsf_firstseen_free(&f);
    lsf_firstseen_free(&g);
    lsf_firstseen_free(&h);
    lsf_wbuf_free(&w);
}

/* A memory that counts what it hands out and gets back. */
static size_t mem_out;
static void *counted_alloc(void *ctx, size_t n)
{
    (void)ctx;
    mem_out += n;
    return malloc(n); /* not zeroed: the set must clear it */
}
static void counted_release(void *ctx, void *p, size_t n)
{
    (void)ctx;
    mem_out -= n;
    free(p);
}

/* A set in the caller's memory takes every slot array from it and gives
 * each back with the size it got, and behaves as a malloc'd one. */
static void test_firstseen_in_callers_memory(void **state)
{
    (void)state;
    static const lsf_mem mem = {counted_alloc, counted_release, NULL};
    lsf_firstseen a, b;
    lsf_firstseen_init_in(&a, 1000, &mem);
    lsf_firstseen_init(&b, 1000);
    double pa, pb;
    for (uint64_t i = 0; i < 3000; i++) {
        uint64_t v = lsf_mix64(i % 700 + 1);
        assert_int_equal(lsf_firstseen_add(&a, v, 1, 0, &pa), lsf_firstseen_add(&b, v, 1, 0, &pb));
        assert_true(pa == pb);
        assert_int_equal(mem_out, lsf_firstseen_bytes(&a));
    }
    lsf_wbuf w = {0};
    lsf_firstseen_save(&a, &w);
    lsf_rbuf r = {w.p, w.len, 0, false};
    assert_int_equal(lsf_firstseen_load(&a, &r), 0); /* reloaded into the same memory */
    assert_int_equal(mem_out, lsf_firstseen_bytes(&a));
    lsf_firstseen_free(&a);
    lsf_firstseen_free(&b);
    assert_int_equal(mem_out, 0);
    lsf_wbuf_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_is_stable),
        cmocka_unit_test(test_ewma_matches_direct_weights),
        cmocka_unit_test(test_ewma_half_life),
        cmocka_unit_test(test_seasonal_buckets),
        cmocka_unit_test(test_sliding_median_and_mad),
        cmocka_unit_test(test_tailrank_matches_exact_rank_in_the_tail),
        cmocka_unit_test(test_novelty_nearest_neighbour),
        cmocka_unit_test(test_likely_short_mean_against_long_fit),
        cmocka_unit_test(test_vigil_bar_rises_and_decays),
        cmocka_unit_test(test_hll_relative_error),
        cmocka_unit_test(test_cms_overestimate_bound),
        cmocka_unit_test(test_topk_recall_on_zipf),
        cmocka_unit_test(test_firstseen_learning_period),
        cmocka_unit_test(test_firstseen_in_callers_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
