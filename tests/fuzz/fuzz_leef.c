/* fuzz_leef.c - libFuzzer target: lsf_parse_leef alone on arbitrary bytes, then
 * the JSON writer (see fuzz_parser.h). */
#define FUZZ_PARSER lsf_parse_leef
#include "fuzz_parser.h"
