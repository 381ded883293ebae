/* test_sinks.c - unit tests of the `stdout` and `file` sinks.
 *
 * Stages are built the way the pipeline builds them (YAML text -> keys bound
 * with lsf_conf_bind -> init), then batches of real JSON lines are delivered.
 * Covers: key defaults and errors with positions, appending, file mode,
 * reopen after a rename (and while a reopen fails), a reopen storm racing
 * deliveries, write errors (/dev/full, EPIPE) and their counters, and a
 * non-blocking stdout that forces partial writes.
 * Threads: the reopen test runs a second thread calling reopen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/metrics.h"
#include "core/stage.h"
#include "sinks/json_out.h"
#include "tmpdir.h"

extern const lsf_stage_def lsf_stage_stdout, lsf_stage_file;

/* ---- helpers ------------------------------------------------------------ */

typedef struct sink {
    lsf_stage st;
    lsf_node *root;
    bool bound;
} sink;

/* Builds and inits a stage from YAML; returns init's (or binding's) result. */
static int sink_open(sink *s, const lsf_stage_def *def, const char *name, const char *yaml,
                     lsf_errbuf *err)
{
    memset(s, 0, sizeof(*s));
    s->root = lsf_yaml_load_string("t.yaml", yaml, err);
    if (!s->root)
        fail_msg("test YAML did not load: %s", err->msg);
    s->st.def = def;
    s->st.node = s->root;
    s->st.name = strdup(name);
    s->st.conf = calloc(1, def->conf_size ? def->conf_size : 1);
    s->st.ctx = calloc(1, def->ctx_size ? def->ctx_size : 1);
    static const char *const common[] = {"type", "name", NULL};
    s->bound = true; /* a failed bind may have set some keys: free them too */
    if (lsf_conf_bind(s->st.conf, def->keys, s->root, common, err) < 0)
        return -1;
    return def->init(&s->st, err);
}

static void sink_close(sink *s)
{
    if (s->st.def->destroy)
        s->st.def->destroy(&s->st);
    if (s->bound)
        lsf_conf_free(s->st.conf, s->st.def->keys);
    free(s->st.conf);
    free(s->st.ctx);
    free(s->st.name);
    lsf_node_free(s->root);
}

static uint64_t counter(const sink *s, const char *what)
{
    return lsf_counter_get(lsf_counter_new(s->st.name, what));
}

/* A batch of n events "<tag> <i>" serialised into o. */
static lsf_batch *make_batch(lsf_outbuf *o, int n, const char *tag)
{
    lsf_batch *b = lsf_batch_new((uint32_t)n);
    for (int i = 0; i < n; i++) {
        char rec[64];
        int len = snprintf(rec, sizeof(rec), "%s %d", tag, i);
        lsf_batch_push_record(b, rec, (size_t)len, 1772532001000000000);
    }
    lsf_json_write_batch(o, b);
    return b;
}

static int deliver(sink *s, const lsf_batch *b, const lsf_outbuf *o)
{
    return s->st.def->deliver(&s->st, b, o);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    *len = n;
    return buf;
}

static void assert_file_is(const char *path, const char *want, size_t want_len)
{
    size_t n;
    char *got = slurp(path, &n);
    if (!got)
        fail_msg("cannot read %s", path);
    if (n != want_len || memcmp(got, want, n))
        fail_msg("%s: %zu bytes, want %zu", path, n, want_len);
    free(got);
}

static int make_tmpdir(void **state)
{
    (void)state;
    return tmpdir_make("sinks");
}

static void path_in_tmp(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

/* ---- file: keys --------------------------------------------------------- */

struct key_error_case {
    const char *yaml;
    const char *want; /* substring of the error, position included */
};

static void test_file_key_errors(void **state)
{
    (void)state;
    static const struct key_error_case cases[] = {
        {"type: file\n", "path"},                                  /* required */
        {"type: file\npath: ''\n", "t.yaml:2:7: path: must not be empty"},
        {"type: file\npath: /nonexistent-dir-lsf/x.json\n", "t.yaml:2:7: path: cannot open"},
        {"type: file\npath: PATH\nmode: 0999\n", "t.yaml:3:7: mode: expected octal"},
        {"type: file\npath: PATH\nmode: rw-r-----\n", "t.yaml:3:7: mode: expected octal"},
        {"type: file\npath: PATH\nmode: 017777\n", "t.yaml:3:7: mode: expected octal"},
        {"type: file\npath: PATH\nfsync: maybe\n", "t.yaml:3:"},
        {"type: file\npath: PATH\nbogus: 1\n", "bogus"},
    };
    char path[300], yaml[512];
    path_in_tmp(path, sizeof(path), "keys.json");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *p = strstr(cases[i].yaml, "PATH");
        if (p)
            snprintf(yaml, sizeof(yaml), "%.*s%s%s", (int)(p - cases[i].yaml), cases[i].yaml, path,
                     p + 4);
        else
            snprintf(yaml, sizeof(yaml), "%s", cases[i].yaml);
        sink s;
        lsf_errbuf err = {{0}};
        int rc = sink_open(&s, &lsf_stage_file, "file_keys", yaml, &err);
        if (rc == 0 || !strstr(err.msg, cases[i].want))
            fail_msg("case %zu: rc %d, error '%s', want '%s'", i, rc, err.msg, cases[i].want);
        sink_close(&s);
    }
}

/* ---- file: writing ------------------------------------------------------ */

static void test_file_append_and_mode(void **state)
{
    (void)state;
    char path[300], yaml[512];
    path_in_tmp(path, sizeof(path), "append.json");
    unlink(path);
    snprintf(yaml, sizeof(yaml), "type: file\npath: %s\n", path);
    mode_t old_umask = umask(022);
    sink s;
    lsf_errbuf err = {{0}};
    assert_int_equal(sink_open(&s, &lsf_stage_file, "file_append", yaml, &err), 0);
    umask(old_umask);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0640);

    lsf_outbuf o1, o2;
    lsf_outbuf_init(&o1);
    lsf_outbuf_init(&o2);
    lsf_batch *b1 = make_batch(&o1, 10, "first");
    lsf_batch *b2 = make_batch(&o2, 5, "second");
    assert_int_equal(deliver(&s, b1, &o1), LSF_OK);
    assert_int_equal(deliver(&s, b2, &o2), LSF_OK);
    assert_int_equal(counter(&s, "events"), 15);
    assert_int_equal(counter(&s, "bytes"), o1.len + o2.len);
    assert_int_equal(counter(&s, "write_errors"), 0);
    assert_int_equal(s.st.def->flush(&s.st), LSF_OK);
    sink_close(&s);

    size_t n = o1.len + o2.len;
    char *want = malloc(n);
    memcpy(want, o1.buf, o1.len);
    memcpy(want + o1.len, o2.buf, o2.len);
    assert_file_is(path, want, n);

    /* a second sink on the same file appends, with fsync and an explicit mode */
    snprintf(yaml, sizeof(yaml), "type: file\npath: %s\nfsync: true\nmode: '600'\n", path);
    assert_int_equal(sink_open(&s, &lsf_stage_file, "file_append2", yaml, &err), 0);
    assert_int_equal(deliver(&s, b2, &o2), LSF_OK);
    assert_int_equal(s.st.def->flush(&s.st), LSF_OK);
    sink_close(&s);
    want = realloc(want, n + o2.len);
    memcpy(want + n, o2.buf, o2.len);
    assert_file_is(path, want, n + o2.len);

    free(want);
    lsf_batch_free(b1);
    lsf_batch_free(b2);
    lsf_outbuf_deinit(&o1);
    lsf_outbuf_deinit(&o2);
}

/* logrotate: rename, HUP, and the next batch lands in a new file. */
static void test_file_reopen_after_rename(void **state)
{
    (void)state;
    char path[300], rotated[300], yaml[512];
    path_in_tmp(path, sizeof(path), "rot.json");
    path_in_tmp(rotated, sizeof(rotated), "rot.json.1");
    unlink(path);
    snprintf(yaml, sizeof(yaml), "type: file\npath: %s\n", path);
    sink s;
    lsf_errbuf err = {{0}};
    assert_int_equal(sink_open(&s, &lsf_stage_file, "file_rot", yaml, &err), 0);
    lsf_outbuf o1, o2, o3;
    lsf_outbuf_init(&o1);
    lsf_outbuf_init(&o2);
    lsf_outbuf_init(&o3);
    lsf_batch *b1 = make_batch(&o1, 3, "before");
    lsf_batch *b2 = make_batch(&o2, 4, "after");
    lsf_batch *b3 = make_batch(&o3, 2, "later");

    assert_int_equal(deliver(&s, b1, &o1), LSF_OK);
    assert_int_equal(rename(path, rotated), 0);
    /* no reopen yet: the old file (now rotated) still gets data */
    assert_int_equal(deliver(&s, b1, &o1), LSF_OK);
    s.st.def->reopen(&s.st);
    assert_int_equal(deliver(&s, b2, &o2), LSF_OK);

    char *want = malloc(2 * o1.len);
    memcpy(want, o1.buf, o1.len);
    memcpy(want + o1.len, o1.buf, o1.len);
    assert_file_is(rotated, want, 2 * o1.len);
    assert_file_is(path, o2.buf, o2.len);

    /* reopen while the path cannot be opened (it is a directory): keep
     * writing to the current file, retry on later batches */
    assert_int_equal(rename(path, rotated), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    s.st.def->reopen(&s.st);
    assert_int_equal(deliver(&s, b3, &o3), LSF_OK);
    assert_int_equal(deliver(&s, b3, &o3), LSF_OK);
    assert_int_equal(rmdir(path), 0);
    assert_int_equal(deliver(&s, b1, &o1), LSF_OK); /* the retry succeeds */
    want = realloc(want, o2.len + 2 * o3.len);
    memcpy(want, o2.buf, o2.len);
    memcpy(want + o2.len, o3.buf, o3.len);
    memcpy(want + o2.len + o3.len, o3.buf, o3.len);
    assert_file_is(rotated, want, o2.len + 2 * o3.len);
    assert_file_is(path, o1.buf, o1.len);

    sink_close(&s);
    free(want);
    lsf_batch_free(b1);
    lsf_batch_free(b2);
    lsf_batch_free(b3);
    lsf_outbuf_deinit(&o1);
    lsf_outbuf_deinit(&o2);
    lsf_outbuf_deinit(&o3);
}

struct storm {
    sink *s;
    atomic_bool stop;
};

static void *reopen_storm(void *arg)
{
    struct storm *x = arg;
    while (!atomic_load(&x->stop)) {
        x->s->st.def->reopen(&x->s->st);
        usleep(50);
    }
    return NULL;
}

/* Reopens racing deliveries and renames: every line arrives whole, exactly
 * once, in order, spread over the rotated files. */
static void test_file_reopen_storm(void **state)
{
    (void)state;
    char path[300], rotated[320], yaml[512];
    path_in_tmp(path, sizeof(path), "storm.json");
    unlink(path);
    snprintf(yaml, sizeof(yaml), "type: file\npath: %s\n", path);
    sink s;
    lsf_errbuf err = {{0}};
    assert_int_equal(sink_open(&s, &lsf_stage_file, "file_storm", yaml, &err), 0);
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    struct storm x = {.s = &s};
    atomic_init(&x.stop, false);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reopen_storm, &x), 0);
    const int batches = 400, per = 50;
    int rotations = 0;
    for (int i = 0; i < batches; i++) {
        char tag[32];
        snprintf(tag, sizeof(tag), "b%d", i);
        lsf_batch *b = make_batch(&o, per, tag);
        assert_int_equal(deliver(&s, b, &o), LSF_OK);
        lsf_batch_free(b);
        if (i % 40 == 39) {
            snprintf(rotated, sizeof(rotated), "%s.%d", path, rotations++);
            assert_int_equal(rename(path, rotated), 0);
            s.st.def->reopen(&s.st); /* the HUP; the storm thread adds more */
        }
    }
    atomic_store(&x.stop, true);
    pthread_join(th, NULL);
    sink_close(&s);

    /* read the rotated files in order, then the current one */
    int seen = 0;
    for (int r = 0; r <= rotations; r++) {
        if (r < rotations)
            snprintf(rotated, sizeof(rotated), "%s.%d", path, r);
        else
            snprintf(rotated, sizeof(rotated), "%s", path);
        size_t n;
        char *buf = slurp(rotated, &n);
        if (!buf)
            continue; /* no batch came after the last rename */
        for (char *line = buf, *end = buf + n; line < end;) {
            char *nl = memchr(line, '\n', (size_t)(end - line));
            assert_non_null(nl);
            char want[64];
            snprintf(want, sizeof(want), "\"message\":\"b%d %d\"", seen / per, seen % per);
            if (!memmem(line, (size_t)(nl - line), want, strlen(want)))
                fail_msg("line %d: %.*s", seen, (int)(nl - line), line);
            seen++;
            line = nl + 1;
        }
        free(buf);
    }
    assert_int_equal(seen, batches * per);
    lsf_outbuf_deinit(&o);
}

/* /dev/full: every write fails with ENOSPC. */
static void test_file_write_error(void **state)
{
    (void)state;
    if (access("/dev/full", W_OK) != 0)
        skip();
    sink s;
    lsf_errbuf err = {{0}};
    assert_int_equal(sink_open(&s, &lsf_stage_file, "file_full", "type: file\npath: /dev/full\n",
                               &err),
                     0);
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    lsf_batch *b = make_batch(&o, 3, "x");
    assert_int_equal(deliver(&s, b, &o), LSF_ERR);
    assert_int_equal(deliver(&s, b, &o), LSF_ERR);
    assert_int_equal(counter(&s, "write_errors"), 2);
    assert_int_equal(counter(&s, "events"), 0);
    assert_int_equal(counter(&s, "bytes"), 0);
    sink_close(&s);
    lsf_batch_free(b);
    lsf_outbuf_deinit(&o);
}

/* ---- stdout ------------------------------------------------------------- */

struct reader {
    int fd;
    char *buf;
    size_t len, cap;
};

static void *slow_reader(void *arg)
{
    struct reader *r = arg;
    for (;;) {
        if (r->len == r->cap)
            r->buf = realloc(r->buf, r->cap = r->cap ? r->cap * 2 : 65536);
        ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len > 4096 ? 4096 : r->cap - r->len);
        if (n <= 0)
            break;
        r->len += (size_t)n;
        usleep(100);
    }
    return NULL;
}

/* Runs `fn` with fd 1 pointing at `fd`; restores stdout afterwards. */
static int with_stdout(int fd, int (*fn)(void *), void *arg)
{
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    int rc = fn(arg);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    return rc;
}

struct stdout_run {
    sink *s;
    const lsf_batch *b;
    const lsf_outbuf *o;
    int times;
    int results[4];
};

static int run_deliveries(void *arg)
{
    struct stdout_run *r = arg;
    for (int i = 0; i < r->times; i++)
        r->results[i] = deliver(r->s, r->b, r->o);
    return 0;
}

/* A non-blocking pipe with a slow reader: partial writes and EAGAIN, yet
 * every byte arrives in order. */
static void test_stdout_partial_writes(void **state)
{
    (void)state;
    sink s;
    lsf_errbuf err = {{0}};
    assert_int_equal(sink_open(&s, &lsf_stage_stdout, "stdout_partial", "type: stdout\n", &err), 0);
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    lsf_batch *b = make_batch(&o, 5000, "a fairly long message to make the batch big");
    assert_true(o.len > 512 * 1024); /* well past a pipe's 64 KiB */

    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fcntl(pfd[1], F_SETFL, fcntl(pfd[1], F_GETFL) | O_NONBLOCK);
    struct reader r = {.fd = pfd[0]};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, slow_reader, &r), 0);
    struct stdout_run run = {.s = &s, .b = b, .o = &o, .times = 2};
    with_stdout(pfd[1], run_deliveries, &run);
    close(pfd[1]);
    pthread_join(th, NULL);
    close(pfd[0]);
    assert_int_equal(run.results[0], LSF_OK);
    assert_int_equal(run.results[1], LSF_OK);
    assert_int_equal(r.len, 2 * o.len);
    assert_memory_equal(r.buf, o.buf, o.len);
    assert_memory_equal(r.buf + o.len, o.buf, o.len);
    assert_int_equal(counter(&s, "events"), 10000);
    assert_int_equal(counter(&s, "bytes"), 2 * o.len);
    free(r.buf);
    sink_close(&s);
    lsf_batch_free(b);
    lsf_outbuf_deinit(&o);
}

/* The reader went away: EPIPE fails the batch and is counted. */
static void test_stdout_epipe(void **state)
{
    (void)state;
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGPIPE, &ign, &old);
    sink s;
    lsf_errbuf err = {{0}};
    assert_int_equal(sink_open(&s, &lsf_stage_stdout, "stdout_epipe", "type: stdout\n", &err), 0);
    lsf_outbuf o;
    lsf_outbuf_init(&o);
    lsf_batch *b = make_batch(&o, 3, "x");
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    close(pfd[0]);
    struct stdout_run run = {.s = &s, .b = b, .o = &o, .times = 3};
    with_stdout(pfd[1], run_deliveries, &run);
    close(pfd[1]);
    for (int i = 0; i < 3; i++)
        assert_int_equal(run.results[i], LSF_ERR);
    assert_int_equal(counter(&s, "write_errors"), 3);
    assert_int_equal(counter(&s, "events"), 0);
    sigaction(SIGPIPE, &old, NULL);
    sink_close(&s);
    lsf_batch_free(b);
    lsf_outbuf_deinit(&o);
}

static int init_stdout_closed(void *arg)
{
    sink *s = arg;
    lsf_errbuf err = {{0}};
    int rc = sink_open(s, &lsf_stage_stdout, "stdout_closed", "type: stdout\n", &err);
    return rc < 0 && strstr(err.msg, "closed") ? 0 : -1;
}

static void test_stdout_keys_and_closed(void **state)
{
    (void)state;
    sink s;
    lsf_errbuf err = {{0}};
    assert_int_not_equal(sink_open(&s, &lsf_stage_stdout, "stdout_keys", "type: stdout\nflush: 1\n",
                                   &err),
                         0);
    assert_non_null(strstr(err.msg, "flush"));
    sink_close(&s);

    /* fd 1 closed at init: an error, not a crash later */
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    close(STDOUT_FILENO);
    int rc = init_stdout_closed(&s);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    assert_int_equal(rc, 0);
    sink_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_key_errors),
        cmocka_unit_test(test_file_append_and_mode),
        cmocka_unit_test(test_file_reopen_after_rename),
        cmocka_unit_test(test_file_reopen_storm),
        cmocka_unit_test(test_file_write_error),
        cmocka_unit_test(test_stdout_partial_writes),
        cmocka_unit_test(test_stdout_epipe),
        cmocka_unit_test(test_stdout_keys_and_closed),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, tmpdir_remove);
}
