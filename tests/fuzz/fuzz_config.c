/* fuzz_config.c - libFuzzer target: YAML loading and pipeline construction
 * (key binding, validation) on arbitrary text must fail cleanly or succeed,
 * never crash. Nothing is started: no ports are bound. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/pipeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lsf_log_threshold = -1; /* silence */
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    lsf_errbuf err = {{0}};
    lsf_node *root = lsf_yaml_load_string("fuzz.yaml", text, &err);
    if (root) {
        lsf_pipeline *p = lsf_pipeline_new(root, &err);
        if (p)
            lsf_pipeline_check(p, &err);
        lsf_pipeline_free(p);
        lsf_node_free(root);
    }
    free(text);
    return 0;
}
