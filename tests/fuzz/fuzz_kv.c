/* fuzz_kv.c - libFuzzer target: lsf_parse_kv alone on arbitrary bytes, then
 * the JSON writer (see fuzz_parser.h). */
#define FUZZ_PARSER lsf_parse_kv
#include "fuzz_parser.h"
