/* fuzz_json.c - libFuzzer target: lsf_parse_json alone on arbitrary bytes, then
 * the JSON writer (see fuzz_parser.h). */
#define FUZZ_PARSER lsf_parse_json
#include "fuzz_parser.h"
