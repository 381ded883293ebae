/* vigil.c - vigilance: a per-series bar that rises with every report and
 * decays back.
 *
 * Design essay. A calibrated tail rank makes a new maximum of the recent
 * horizon equally surprising on every series - and a long noisy series makes
 * new maxima at a steady rate, each of which becomes a report. A person
 * watching such a series raises their bar after an alert: the next one has
 * to be worse than the last to be worth a page. Adaptive resonance theory
 * calls this vigilance (Carpenter & Grossberg, "A massively parallel
 * architecture for a self-organizing neural pattern recognition machine",
 * 1987); Hampton's ARTime detector on the Numenta benchmark adapts it per
 * series, and the "adaptive threshold" of streaming detectors (e.g. Siffer
 * et al., "Anomaly detection in streams with extreme value theory", KDD
 * 2017, who move the threshold with the observed peaks) is the same idea.
 *
 * Here the bar is the raw size of the measure (a distance, a deviation, in
 * the series' units) at the last report, multiplied by a decay factor at
 * every observation, so it halves after `half_life` observations: a report
 * must exceed what was last reported, and the demand fades as the report
 * ages. The series model (model.c) keeps one bar per measure, decays it
 * with the calibration horizon as half-life and applies it only to
 * report-level evidence; an observation below the bar reports half its
 * evidence, like the cooldown. Memory: one float. Scale-free: the bar is
 * compared only with the same measure of the same series.
 *
 * Threads: the caller owns each instance.
 */
#include <math.h>

#include "anomaly/stats.h"

double lsf_vigil_factor(double half_life)
{
    return half_life > 0 ? exp2(-1.0 / half_life) : 0;
}

void lsf_vigil_decay(lsf_vigil *v, double factor)
{
    v->bar = (float)(v->bar * factor);
    if (v->bar < 1e-30f) /* stay clear of denormals */
        v->bar = 0;
}

bool lsf_vigil_passes(const lsf_vigil *v, double a)
{
    return a > v->bar;
}

void lsf_vigil_raise(lsf_vigil *v, double a)
{
    if (isfinite(a) && a > v->bar)
        v->bar = (float)a;
}
