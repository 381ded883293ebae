/* fuzz_rfc3164.c - libFuzzer target: lsf_parse_rfc3164 alone on arbitrary bytes, then
 * the JSON writer (see fuzz_parser.h). */
#define FUZZ_PARSER lsf_parse_rfc3164
#include "fuzz_parser.h"
