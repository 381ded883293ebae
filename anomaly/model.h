/* model.h - the per-key series model behind the `numeric` and `rate`
 * detectors and `logsift score`.
 *
 * One observation in, one calibrated score out, in a single pass with
 * bounded memory. See model.c for the method and the measurements behind
 * its defaults.
 * Threads: a model belongs to one key; the caller serialises access (the
 * anomaly stage holds the key's shard lock).
 */
#ifndef LSF_ANOMALY_MODEL_H
#define LSF_ANOMALY_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "anomaly/stats.h"

/* Settings shared by every key of a detector. */
typedef struct lsf_model_conf {
    uint32_t window;     /* values in the robust baseline (median/MAD) */
    uint32_t embed_len;  /* values in one shape window */
    uint32_t embed_dims; /* piecewise means the shape is reduced to (divides embed_len) */
    uint32_t history;    /* past shapes kept for nearest-neighbour search */
    uint32_t tail_block; /* calibration horizon = LSF_TAIL_BLOCKS * tail_block observations */
    uint32_t cooldown;   /* observations after a peak during which weaker evidence is halved */
    uint32_t learn;      /* observations before the first non-zero score */
    int season;          /* enum lsf_season: adds a seasonal-baseline measure */
    double season_half_life;
} lsf_model_conf;

/* The defaults measured on NAB (docs/anomaly.md). */
void lsf_model_conf_default(lsf_model_conf *c);
/* Checks the relations between the settings; 0, or -1 with a message. */
int lsf_model_conf_check(const lsf_model_conf *c, char *msg, size_t msglen);

enum lsf_model_measure {
    LSF_MEASURE_NONE = 0,
    LSF_MEASURE_SPIKE,  /* the value is far from the recent median */
    LSF_MEASURE_SHAPE,  /* the recent window has a shape not seen before */
    LSF_MEASURE_SEASON, /* the value is far from this hour's usual value */
};

/* "spike", "shape", "season" or "none". */
const char *lsf_model_measure_name(int m);

typedef struct lsf_model_result {
    double score;     /* 0..1: 1 - p, or 1 - sqrt(p) during a cooldown, or the
                       * second tier's 1 - p2 (model.c) */
    double p;         /* combined tail probability (Bonferroni over measures) */
    double expected;  /* recent median (the seasonal mean for LSF_MEASURE_SEASON) */
    double deviation; /* robust z-score: (x - median) / (1.4826 MAD), 0 without spread;
                       * NaN when p >= 0.5 (not worth the O(window) it costs) */
    int measure;      /* enum lsf_model_measure of the smallest p */
    bool learning;    /* fewer than `learn` observations: score is 0 */
    bool suppressed;  /* in a cooldown after a stronger peak, below the vigilance
                       * bar, or not backed by the recent raw scores */
    bool second_tier; /* reported in the second tier: only the cooldown failed, on a
                       * key quiet for at least `cooldown` observations (model.c) */
} lsf_model_result;

typedef struct lsf_model {
    lsf_slwin win;       /* recent values: baseline and shape source */
    lsf_novelty shapes;  /* past shape vectors */
    lsf_tailrank t_spike, t_shape, t_season;
    lsf_seasonal season;
    lsf_likely lik;      /* anomaly likelihood of the raw score (the report gate) */
    lsf_vigil vig[2];    /* vigilance bars of the spike and shape measures */
    float sup_max[4];    /* raw evidence maxima of the last 4 cooldown quarters */
    float sup_cur;
    uint32_t sup_n, sup_head;
    uint64_t n;          /* observations */
    uint64_t last_report; /* index of the key's last counted report (0: none yet) */
} lsf_model;

void lsf_model_init(lsf_model *m, const lsf_model_conf *c);
void lsf_model_free(lsf_model *m);
/* Scores x (observed at event time time_ns), then learns from it. Non-finite
 * values are ignored (result zeroed, returns -1); 0 otherwise. */
int lsf_model_update(lsf_model *m, const lsf_model_conf *c, double x, int64_t time_ns,
                     lsf_model_result *out);
/* Heap bytes held (grows with history up to the configured bounds). */
size_t lsf_model_bytes(const lsf_model *m);
/* Worst-case heap bytes of one key under conf c. */
size_t lsf_model_max_bytes(const lsf_model_conf *c);
void lsf_model_save(const lsf_model *m, lsf_wbuf *w);
/* Restores a model saved under the same settings; -1 (model reset) if the
 * buffer is malformed or was written with other settings. */
int lsf_model_load(lsf_model *m, const lsf_model_conf *c, lsf_rbuf *r);

/* The score of a tail probability: 1 - p, clamped to [0, 1]. Every
 * detector maps its p-value through this, so scores compare across them. */
double lsf_score_of_p(double p);

#endif
