/* fuzz_cef.c - libFuzzer target: lsf_parse_cef alone on arbitrary bytes, then
 * the JSON writer (see fuzz_parser.h). */
#define FUZZ_PARSER lsf_parse_cef
#include "fuzz_parser.h"
