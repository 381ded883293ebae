/* registry.c - the one list of every stage logsift knows.
 * Adding a stage: define its lsf_stage_def in its own file (named after its
 * config type) and add it here. Threads: read-only data.
 */
#include <string.h>

#include "stage.h"

extern const lsf_stage_def lsf_stage_syslog_udp, lsf_stage_syslog_tcp, lsf_stage_stdin,
    lsf_stage_file_input, lsf_stage_unix_dgram, lsf_stage_relp, lsf_stage_kafka_input;
extern const lsf_stage_def lsf_stage_parse, lsf_stage_rules;
extern const lsf_stage_def lsf_stage_geoip, lsf_stage_cidr, lsf_stage_lookup, lsf_stage_fields;
extern const lsf_stage_def lsf_stage_anomaly, lsf_stage_detections;
extern const lsf_stage_def lsf_stage_stdout, lsf_stage_file, lsf_stage_kafka;

const lsf_stage_def *const lsf_stage_registry[] = {
    /* inputs */
    &lsf_stage_syslog_udp,
    &lsf_stage_syslog_tcp,
    &lsf_stage_stdin,
    &lsf_stage_file_input,
    &lsf_stage_unix_dgram,
    &lsf_stage_relp,
    &lsf_stage_kafka_input,
    /* transforms */
    &lsf_stage_parse,
    &lsf_stage_rules,
    &lsf_stage_geoip,
    &lsf_stage_cidr,
    &lsf_stage_lookup,
    &lsf_stage_fields,
    &lsf_stage_anomaly,
    &lsf_stage_detections,
    /* sinks */
    &lsf_stage_stdout,
    &lsf_stage_file,
    &lsf_stage_kafka,
    NULL,
};

const lsf_stage_def *lsf_stage_find(const char *name)
{
    for (int i = 0; lsf_stage_registry[i]; i++)
        if (strcmp(lsf_stage_registry[i]->name, name) == 0)
            return lsf_stage_registry[i];
    return NULL;
}
