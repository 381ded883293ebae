/* mmdb_walk.h - reads many paths of one MaxMind DB record in a single pass
 * over its data section (used by the geoip stage; see mmdb_walk.c).
 * Threads: a path set is built on one thread and then only read; walks and
 * value reads may run on any number of threads at once.
 */
#ifndef LSF_ENRICH_MMDB_WALK_H
#define LSF_ENRICH_MMDB_WALK_H

#include <maxminddb.h>
#include <stdbool.h>
#include <stdint.h>

#define LSF_MMDB_ABSENT UINT32_MAX

/* A set of record paths ("country", "names", "en"), each a "term". */
typedef struct lsf_mmdb_paths lsf_mmdb_paths;

lsf_mmdb_paths *lsf_mmdb_paths_new(void);
void lsf_mmdb_paths_free(lsf_mmdb_paths *p);
/* Adds a NULL-terminated path (numeric components index arrays) and
 * returns its term number (the same path twice gives the same term); -1 for
 * an empty path. */
int lsf_mmdb_paths_add(lsf_mmdb_paths *p, const char *const *path);
int lsf_mmdb_paths_count(const lsf_mmdb_paths *p);

/* Walks the record at data-section offset `offset` (an MMDB_entry_s's
 * offset) once and stores, per term, the offset of its value or
 * LSF_MMDB_ABSENT. term_off holds lsf_mmdb_paths_count(p) slots. Returns 0,
 * or -1 when the record is corrupt (slots found before that stay set). */
int lsf_mmdb_walk(const MMDB_s *db, uint32_t offset, const lsf_mmdb_paths *p, uint32_t *term_off);
/* Decodes the value at `off` (following a pointer) into v: type, and for
 * scalars the value (utf8_string/data_size point into the mapped file).
 * False when off is LSF_MMDB_ABSENT or the data is corrupt. */
bool lsf_mmdb_value(const MMDB_s *db, uint32_t off, MMDB_entry_data_s *v);

#endif
