/* test_spool.c - unit tests of the Kafka sink's disk spool (sinks/spool.c).
 *
 * Covers: CRC32C against the RFC 3720 check value and a bitwise reference;
 * append and read back in order (keys, no keys, flags, empty values) across
 * many segments; commit deleting segments and, at the end, every file;
 * the size cap (and `force` past it); restart resuming at the saved cursor
 * with new records after the old ones; a flipped byte in a value, in a
 * length and in a magic each skipped and counted once while the records
 * around it survive; a torn tail; a segment with a bad header; the lock
 * against a second writer; read-only inspection.
 * Threads: single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sinks/spool.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s/lsf-spool-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char p[600];
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
    return 0;
}

static lsf_spool *open_spool(uint64_t max, uint64_t segbytes)
{
    lsf_spool_opts o = {
        .dir = dir, .max_bytes = max, .segment_bytes = segbytes, .fsync = LSF_SPOOL_FSYNC_INTERVAL};
    char err[512];
    lsf_spool *s = NULL;
    if (lsf_spool_open(&s, &o, err, sizeof(err)) < 0)
        fail_msg("open: %s", err);
    return s;
}

/* Record i: topic "t<i%3>", key "k<i>" (none when i%5==0), value "v<i> ...",
 * flags i&1. */
static void make_rec(int i, lsf_spool_rec *r, char *topic, char *key, char *val)
{
    int tl = sprintf(topic, "t%d", i % 3);
    int kl = sprintf(key, "k%d", i);
    int vl = sprintf(val, "{\"message\":\"v%d\",\"pad\":\"%.*s\"}", i, i % 40,
                     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    r->topic = lsf_str_make(topic, (size_t)tl);
    r->has_key = i % 5 != 0;
    r->key = r->has_key ? lsf_str_make(key, (size_t)kl) : LSF_STR_NULL;
    r->value = lsf_str_make(val, (size_t)vl);
    r->flags = (uint8_t)(i & 1);
}

static void append_range(lsf_spool *s, int from, int to)
{
    char t[16], k[16], v[128];
    lsf_spool_rec r;
    for (int i = from; i < to; i++) {
        make_rec(i, &r, t, k, v);
        assert_int_equal(lsf_spool_append(s, &r, false), 0);
    }
    assert_int_equal(lsf_spool_flush(s), 0);
}

static void expect_rec(const lsf_spool_rec *got, int i)
{
    char t[16], k[16], v[128];
    lsf_spool_rec want;
    make_rec(i, &want, t, k, v);
    if (!lsf_str_eq(got->value, want.value))
        fail_msg("record %d: value '%.*s'", i, (int)got->value.len, got->value.ptr);
    assert_true(lsf_str_eq(got->topic, want.topic));
    assert_int_equal(got->has_key, want.has_key);
    if (want.has_key)
        assert_true(lsf_str_eq(got->key, want.key));
    assert_int_equal(got->flags, want.flags);
}

/* Reads everything from the head; checks the records are `ids` in order. */
static void expect_all(lsf_spool *s, const int *ids, int n)
{
    lsf_spool_pos p = lsf_spool_head(s);
    lsf_spool_rec r;
    int got = 0;
    while (lsf_spool_read(s, &p, &r, NULL) == 1) {
        if (got >= n)
            fail_msg("more than %d records", n);
        expect_rec(&r, ids[got]);
        got++;
    }
    assert_int_equal(got, n);
}

static int count_files(const char *suffix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name), sl = strlen(suffix);
        if (l > sl && strcmp(e->d_name + l - sl, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* Path of the n-th (0-based) segment file in name order. */
static void seg_file(int n, char *out, size_t cap)
{
    struct dirent **list;
    int k = scandir(dir, &list, NULL, alphasort), idx = 0;
    out[0] = 0;
    for (int i = 0; i < k; i++) {
        size_t l = strlen(list[i]->d_name);
        if (l > 6 && strcmp(list[i]->d_name + l - 6, ".spool") == 0 && idx++ == n)
            snprintf(out, cap, "%s/%s", dir, list[i]->d_name);
        free(list[i]);
    }
    free(list);
    assert_true(out[0]);
}

/* Offset in `path` of the first occurrence of `needle`. */
static long find_in_file(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    char *p = memmem(buf, n, needle, strlen(needle));
    assert_non_null(p);
    return p - buf;
}

static void poke(const char *path, long off, char c)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

/* ---- tests -------------------------------------------------------------- */

static uint32_t crc_ref(const char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= (unsigned char)p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
    }
    return ~c;
}

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(lsf_crc32c(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(lsf_crc32c_sw(0, "123456789", 9), 0xe3069283u);
    char buf[300];
    for (int i = 0; i < 300; i++)
        buf[i] = (char)(i * 7 + 3);
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n + off <= 300; n += 13) {
            assert_int_equal(lsf_crc32c(0, buf + off, n), crc_ref(buf + off, n));
            assert_int_equal(lsf_crc32c_sw(0, buf + off, n), crc_ref(buf + off, n));
        }
    /* Continuing a CRC equals computing it at once. */
    assert_int_equal(lsf_crc32c(lsf_crc32c(0, buf, 100), buf + 100, 200), crc_ref(buf, 300));
    assert_int_equal(lsf_crc32c_sw(lsf_crc32c_sw(0, buf, 100), buf + 100, 200), crc_ref(buf, 300));
}

static void test_order_segments_commit(void **state)
{
    (void)state;
    lsf_spool *s = open_spool(1 << 30, 4096);
    assert_true(lsf_spool_empty(s));
    append_range(s, 0, 2000);
    lsf_spool_stats st;
    lsf_spool_get_stats(s, &st);
    assert_int_equal(st.records, 2000);
    assert_true(st.segments > 10);
    assert_false(lsf_spool_empty(s));
    int ids[2000];
    for (int i = 0; i < 2000; i++)
        ids[i] = i;
    expect_all(s, ids, 2000);

    /* Commit the first 1000 records: earlier segments go away. */
    lsf_spool_pos p = lsf_spool_head(s);
    lsf_spool_rec r;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(lsf_spool_read(s, &p, &r, NULL), 1);
    int before = count_files(".spool");
    assert_int_equal(lsf_spool_commit(s, p, 1000), 0);
    assert_true(count_files(".spool") < before);
    lsf_spool_get_stats(s, &st);
    assert_int_equal(st.records, 1000);
    expect_all(s, ids + 1000, 1000);

    /* Commit the rest: no segment left, and appends start a new one. */
    while (lsf_spool_read(s, &p, &r, NULL) == 1)
        ;
    assert_int_equal(lsf_spool_commit(s, p, 1000), 0);
    assert_true(lsf_spool_empty(s));
    assert_int_equal(count_files(".spool"), 0);
    assert_int_equal(count_files("cursor"), 0);
    append_range(s, 5, 6);
    expect_all(s, (int[]){5}, 1);
    lsf_spool_close(s);
}

static void test_cap(void **state)
{
    (void)state;
    lsf_spool *s = open_spool(64 * 1024, 16 * 1024);
    char t[16], k[16], v[128];
    lsf_spool_rec r;
    int i = 0, rc;
    while ((rc = lsf_spool_append(s, (make_rec(i, &r, t, k, v), &r), false)) == 0)
        i++;
    assert_int_equal(rc, -ENOSPC);
    assert_true(i > 500 && i < 2000);
    assert_int_equal(lsf_spool_append(s, &r, true), 0); /* force ignores the cap */
    assert_int_equal(lsf_spool_flush(s), 0);
    lsf_spool_stats st;
    lsf_spool_get_stats(s, &st);
    assert_true(st.bytes > 64 * 1024);
    assert_int_equal(st.records, (uint64_t)i + 1);
    /* Delivering the oldest segments makes room again. */
    lsf_spool_pos p = lsf_spool_head(s);
    int n = 0;
    while (n < i / 2 && lsf_spool_read(s, &p, &r, NULL) == 1)
        n++;
    assert_int_equal(lsf_spool_commit(s, p, (uint64_t)n), 0);
    assert_int_equal(lsf_spool_append(s, (make_rec(0, &r, t, k, v), &r), false), 0);
    /* Too large a record. */
    static char big[70000];
    lsf_spool_rec huge = {.topic = lsf_str_make(big, sizeof(big)), .value = LSF_STR_LIT("x")};
    assert_int_equal(lsf_spool_append(s, &huge, true), -E2BIG);
    lsf_spool_close(s);
}

static void test_restart(void **state)
{
    (void)state;
    lsf_spool *s = open_spool(1 << 30, 8192);
    append_range(s, 0, 500);
    lsf_spool_pos p = lsf_spool_head(s);
    lsf_spool_rec r;
    for (int i = 0; i < 200; i++)
        assert_int_equal(lsf_spool_read(s, &p, &r, NULL), 1);
    assert_int_equal(lsf_spool_commit(s, p, 200), 0);
    lsf_spool_close(s); /* saves the cursor */

    s = open_spool(1 << 30, 8192);
    lsf_spool_stats st;
    lsf_spool_get_stats(s, &st);
    assert_int_equal(st.records, 300);
    assert_int_equal(st.corrupt, 0);
    append_range(s, 500, 600); /* a new segment after the old ones */
    int ids[400];
    for (int i = 0; i < 400; i++)
        ids[i] = 200 + i;
    expect_all(s, ids, 400);
    lsf_spool_close(s);

    /* Without a cursor file every segment is read from its start. */
    char c[600];
    snprintf(c, sizeof(c), "%s/cursor", dir);
    unlink(c);
    s = open_spool(1 << 30, 8192);
    lsf_spool_get_stats(s, &st);
    assert_true(st.records >= 400);
    lsf_spool_close(s);
}

static void test_corruption(void **state)
{
    (void)state;
    lsf_spool *s = open_spool(1 << 30, 1 << 20);
    append_range(s, 0, 100);
    lsf_spool_close(s);
    char path[600];
    seg_file(0, path, sizeof(path));
    /* A flipped byte in the value of record 50, in the length of 60 and in
     * the magic of 70. Those records have no key and a 2-byte topic, so a
     * record starts 33 bytes before its "vN": 12 (magic, length, CRC) + 8
     * (flags, topic and key lengths) + 2 (topic) + 11 ('{"message":'). */
    poke(path, find_in_file(path, "\"v50\""), 'X');
    poke(path, find_in_file(path, "\"v60\"") - 33 + 7, 0x7f); /* length's top byte */
    poke(path, find_in_file(path, "\"v70\"") - 33, 0x00);     /* magic's first byte */

    s = open_spool(1 << 30, 1 << 20);
    lsf_spool_stats st;
    lsf_spool_get_stats(s, &st);
    assert_int_equal(st.records, 97);
    assert_int_equal(st.corrupt, 3);
    int ids[97], n = 0;
    for (int i = 0; i < 100; i++)
        if (i != 50 && i != 60 && i != 70)
            ids[n++] = i;
    expect_all(s, ids, 97);
    expect_all(s, ids, 97); /* read again: counted once */
    lsf_spool_get_stats(s, &st);
    assert_int_equal(st.corrupt, 3);
    lsf_spool_close(s);
}

static void test_torn_tail_and_bad_header(void **state)
{
    (void)state;
    lsf_spool *s = open_spool(1 << 30, 1 << 20);
    append_range(s, 0, 10);
    lsf_spool_close(s);
    char path[600];
    seg_file(0, path, sizeof(path));
    struct stat sb;
    stat(path, &sb);
    assert_int_equal(truncate(path, sb.st_size - 5), 0);
    /* A stray file with a segment name but no header. */
    char bogus[600];
    snprintf(bogus, sizeof(bogus), "%s/seg-00000000000000000099.spool", dir);
    FILE *f = fopen(bogus, "w");
    fputs("not a spool", f);
    fclose(f);

    s = open_spool(1 << 30, 1 << 20);
    lsf_spool_stats st;
    lsf_spool_get_stats(s, &st);
    assert_int_equal(st.records, 9);
    assert_int_equal(st.torn, 1);
    assert_int_equal(st.corrupt, 1);
    assert_int_equal(count_files(".bad"), 1);
    int ids[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    expect_all(s, ids, 9);
    lsf_spool_close(s);
    unlink(strcat(bogus, ".bad"));
}

static void test_lock_and_readonly(void **state)
{
    (void)state;
    lsf_spool *s = open_spool(1 << 30, 1 << 20);
    append_range(s, 0, 7);
    lsf_spool_opts o = {.dir = dir, .max_bytes = 1 << 30, .segment_bytes = 1 << 20};
    char err[512];
    lsf_spool *s2;
    assert_int_equal(lsf_spool_open(&s2, &o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "in use by another process"));
    o.readonly = true;
    assert_int_equal(lsf_spool_open(&s2, &o, err, sizeof(err)), 0);
    lsf_spool_stats st;
    lsf_spool_get_stats(s2, &st);
    assert_int_equal(st.records, 7);
    lsf_spool_rec r = {.topic = LSF_STR_LIT("t")};
    assert_int_equal(lsf_spool_append(s2, &r, false), -EROFS);
    lsf_spool_close(s2);
    lsf_spool_close(s);
}

static void test_fsync_batch(void **state)
{
    (void)state;
    lsf_spool_opts o = {
        .dir = dir, .max_bytes = 1 << 30, .segment_bytes = 4096, .fsync = LSF_SPOOL_FSYNC_BATCH};
    char err[512];
    lsf_spool *s;
    assert_int_equal(lsf_spool_open(&s, &o, err, sizeof(err)), 0);
    append_range(s, 0, 300);
    assert_int_equal(lsf_spool_sync(s), 0);
    int ids[300];
    for (int i = 0; i < 300; i++)
        ids[i] = i;
    expect_all(s, ids, 300);
    lsf_spool_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test_setup_teardown(test_order_segments_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_and_bad_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_and_readonly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_batch, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
