/* test_file_ckpt.c - the file input's checkpoint machinery
 * (ingest/file_ckpt.c): acks returning out of order advance a file's
 * delivered offset only over contiguously acknowledged batches; a failed
 * batch holds it; a tracker closed with acks still out frees itself with
 * the last one; fingerprints; checkpoint files round-trip and tolerate
 * garbage lines.
 * Threads: single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/metrics.h"
#include "ingest/file_tail.h"

static lsf_batch *mkbatch(void)
{
    return lsf_batch_new(4);
}

static void out_of_order(void **state)
{
    (void)state;
    lsf_ftrack *t = lsf_ftrack_new(lsf_counter_new("t", "held"));
    tfile a = {.path = "a"}, b = {.path = "b"};
    lsf_batch *bs[5];
    off_t ends[5] = {100, 200, 50, 300, 80};
    tfile *fs[5] = {&a, &a, &b, &a, &b};
    for (int i = 0; i < 5; i++) {
        bs[i] = mkbatch();
        lsf_ftrack_submit(t, bs[i], fs[i], ends[i]);
    }
    assert_int_equal(a.pending, 3);
    assert_int_equal(b.pending, 2);
    lsf_ack *ack[5];
    for (int i = 0; i < 5; i++)
        ack[i] = bs[i]->ack;
    lsf_ack_release(ack[1]); /* a@200 back first: nothing moves */
    assert_int_equal(a.acked_off, 0);
    assert_false(lsf_ftrack_take_dirty(t));
    lsf_ack_release(ack[0]); /* a@100, then a@200 */
    assert_int_equal(a.acked_off, 200);
    assert_true(lsf_ftrack_take_dirty(t));
    lsf_ack_retain(ack[3]); /* a sink holds a@300 (Kafka, awaiting its report) */
    lsf_ack_release(ack[3]);
    lsf_ack_release(ack[4]); /* b@80 waits behind b@50 */
    assert_int_equal(b.acked_off, 0);
    lsf_ack_release(ack[2]); /* b@50, then a@300 is still held */
    assert_int_equal(b.acked_off, 50);
    assert_int_equal(a.acked_off, 200);
    lsf_ack_release(ack[3]); /* delivery report: a@300, b@80 */
    assert_int_equal(a.acked_off, 300);
    assert_int_equal(b.acked_off, 80);
    assert_int_equal(a.pending, 0);
    assert_int_equal(b.pending, 0);
    for (int i = 0; i < 5; i++) {
        bs[i]->ack = NULL;
        lsf_batch_free(bs[i]);
    }
    lsf_ftrack_close(t);
}

static void failure_holds(void **state)
{
    (void)state;
    lsf_counter *held = lsf_counter_new("t2", "held");
    lsf_ftrack *t = lsf_ftrack_new(held);
    tfile a = {.path = "a"};
    lsf_batch *b1 = mkbatch(), *b2 = mkbatch();
    lsf_ftrack_submit(t, b1, &a, 10);
    lsf_ftrack_submit(t, b2, &a, 20);
    lsf_ack_fail(b1->ack);
    lsf_ack_release(b1->ack);
    lsf_ack_release(b2->ack);
    assert_int_equal(a.acked_off, 0); /* held before the batch a sink gave up on */
    assert_true(a.ack_failed);
    assert_int_equal(lsf_counter_get(held), 1);
    b1->ack = b2->ack = NULL;
    lsf_batch_free(b1);
    lsf_batch_free(b2);
    lsf_ftrack_close(t);
}

/* The input goes away before its last acks: they free the tracker (ASan
 * checks) and touch no file. */
static void close_with_acks_out(void **state)
{
    (void)state;
    lsf_ftrack *t = lsf_ftrack_new(lsf_counter_new("t3", "held"));
    tfile *a = calloc(1, sizeof(*a));
    lsf_batch *b1 = mkbatch();
    lsf_ftrack_submit(t, b1, a, 10);
    lsf_ack *k = b1->ack;
    b1->ack = NULL;
    lsf_ftrack_close(t);
    free(a); /* the input freed its files */
    lsf_ack_release(k);
    lsf_batch_free(b1);
}

static void fingerprints(void **state)
{
    (void)state;
    char path[] = "/tmp/lsf-fp-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    lsf_fp empty, fp, again;
    assert_int_equal(lsf_fp_compute(fd, 0, &empty), 0);
    assert_int_equal(empty.len, 0);
    assert_false(lsf_fp_matches(fd, &empty)); /* no identity yet */
    char buf[600];
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(write(fd, buf, 100), 100);
    assert_int_equal(lsf_fp_compute(fd, 100, &fp), 0);
    assert_int_equal(fp.len, 100);
    assert_true(lsf_fp_matches(fd, &fp));
    assert_int_equal(write(fd, buf, 500), 500);
    assert_true(lsf_fp_matches(fd, &fp)); /* growing keeps the first 100 bytes */
    assert_int_equal(lsf_fp_compute(fd, 600, &again), 0);
    assert_int_equal(again.len, LSF_FP_BYTES);
    assert_int_equal(pwrite(fd, "y", 1, 5), 1);
    assert_false(lsf_fp_matches(fd, &fp)); /* rewritten */
    assert_int_equal(ftruncate(fd, 50), 0);
    assert_false(lsf_fp_matches(fd, &fp)); /* shorter than the fingerprint */
    close(fd);
    unlink(path);
}

static void save_load(void **state)
{
    (void)state;
    char dir[] = "/tmp/lsf-ckpt-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/in.checkpoints", dir);
    lsf_ftrack *t = lsf_ftrack_new(lsf_counter_new("t4", "held"));
    tfile a = {.dev = 7, .ino = 42, .fp = {256, 0xabcdef0123456789ULL}, .path = "/var/log/a b.log",
               .acked_off = 1000, .persisted_sub = 1500};
    tfile r = {.dev = 7, .ino = 43, .path = "/x", .retired = true};
    tfile f = {.dev = 7, .ino = 44, .path = "/y", .finished = true}; /* finished, acks in */
    a.next = &r;
    r.next = &f;
    lsf_ckpt keep[2] = {{.dev = 1, .ino = 2, .fp = {10, 5}, .acked = 3, .submitted = 4, .path = "/old"},
                        {.dev = 9, .ino = 9, .path = "/claimed", .claimed = true}};
    assert_int_equal(lsf_ckpt_save(path, t, &a, keep, 2, true), 0);
    FILE *fp = fopen(path, "a");
    fputs("not a checkpoint line\n", fp);
    fclose(fp);
    lsf_ckpt *v;
    size_t n;
    char err[256];
    assert_int_equal(lsf_ckpt_load(path, &v, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].ino, 42);
    assert_int_equal(v[0].fp.len, 256);
    assert_true(v[0].fp.hash == 0xabcdef0123456789ULL);
    assert_int_equal(v[0].acked, 1000);
    assert_int_equal(v[0].submitted, 1500);
    assert_string_equal(v[0].path, "/var/log/a b.log");
    assert_string_equal(v[1].path, "/old");
    lsf_ckpt_free(v, n);
    unlink(path);
    assert_int_equal(lsf_ckpt_load(path, &v, &n, err, sizeof(err)), 0); /* missing: none */
    assert_int_equal(n, 0);
    rmdir(dir);
    lsf_ftrack_close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(out_of_order),        cmocka_unit_test(failure_holds),
        cmocka_unit_test(close_with_acks_out), cmocka_unit_test(fingerprints),
        cmocka_unit_test(save_load),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    lsf_metrics_free();
    return rc;
}
