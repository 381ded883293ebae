/* fuzz_rfc5424.c - libFuzzer target: lsf_parse_rfc5424 alone on arbitrary bytes, then
 * the JSON writer (see fuzz_parser.h). */
#define FUZZ_PARSER lsf_parse_rfc5424
#include "fuzz_parser.h"
