/* fuzz_json_ok.h - the fuzz targets' check that the JSON writer's output is
 * valid JSON, read with jansson. Two things are valid JSON that jansson
 * refuses, and those two refusals are not writer errors: numbers too large
 * for a double or a 64-bit integer (RFC 8259 sets no limit; parsers/json.c
 * keeps arrays as their text), and "\u0000" in an object key (a JSON body
 * member named so keeps its name). */
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

static inline bool fuzz_json_ok(const char *buf, size_t len)
{
    json_error_t err;
    json_t *j = json_loadb(buf, len, JSON_DISABLE_EOF_CHECK | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &err);
    if (j) {
        json_decref(j);
        return true;
    }
    return strstr(err.text, "overflow") || strstr(err.text, "too big") ||
           strstr(err.text, "NUL byte in object key");
}
