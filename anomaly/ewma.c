/* ewma.c - exponentially weighted mean and variance.
 *
 * Design essay. An exponentially weighted moving average gives the newest
 * observation weight alpha and every older one (1 - alpha) times the weight
 * of its successor, so memory is two numbers and the past fades with a
 * half-life of ln 2 / -ln(1 - alpha) observations. The variance uses the
 * same weights, updated incrementally as in West ("Updating mean and
 * variance estimates: an improved method", CACM 1979) and Finch
 * ("Incremental calculation of weighted mean and variance", 2009):
 *     d = x - mean;  mean += alpha d;  var = (1 - alpha) (var + alpha d^2)
 * which never subtracts two large sums, so it stays accurate for values far
 * from zero (byte counters). Warm-up: while 1/n > alpha the weight is 1/n,
 * i.e. the plain running mean, so the first observations do not anchor the
 * average at the first value (the bias an EWMA started at x0 carries for
 * several half-lives). A z-score is (x - mean) / sd once `warmup`
 * observations have been seen. Roberts ("Control chart tests based on
 * geometric moving averages", Technometrics 1959) introduced the EWMA chart
 * this is the streaming form of.
 *
 * Threads: the caller owns each instance.
 */
#include <math.h>

#include "anomaly/stats.h"

void lsf_ewma_init(lsf_ewma *e, double half_life)
{
    e->mean = e->var = 0;
    e->n = 0;
    if (!(half_life > 0))
        half_life = 1;
    e->alpha = 1 - exp2(-1.0 / half_life);
}

void lsf_ewma_step(double *mean, double *var, uint64_t n, double alpha, double x)
{
    double a = 1.0 / (double)n;
    if (a < alpha)
        a = alpha;
    double d = x - *mean;
    *mean += a * d;
    *var = (1 - a) * (*var + a * d * d);
}

void lsf_ewma_add(lsf_ewma *e, double x)
{
    lsf_ewma_step(&e->mean, &e->var, ++e->n, e->alpha, x);
}

double lsf_ewma_sd(const lsf_ewma *e)
{
    return e->var > 0 ? sqrt(e->var) : 0;
}

double lsf_ewma_z(const lsf_ewma *e, double x, uint64_t warmup)
{
    double sd = lsf_ewma_sd(e);
    if (e->n < warmup || e->n == 0 || !(sd > 0))
        return 0;
    return (x - e->mean) / sd;
}
