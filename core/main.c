/* main.c - the `logsift` command: run, check, parse, help, version.
 *
 * Design: every command that processes lines builds the same pipeline from a
 * YAML config; `parse` is just "stdin -> parse -> stdout" expressed as a
 * config, so what it shows is exactly what `run` does with a line.
 * Threads: main thread; signal handlers only set flags (async-signal-safe).
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "detect/detect.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "anomaly/anomaly.h"
#include "rules/rules.h"
#include "sinks/spool.h"

static const char default_config[] =
    "# logsift built-in default configuration (print it with: logsift config)\n"
    "inputs:\n"
    "  - type: syslog_udp\n"
    "    listen: 127.0.0.1:5514\n"
    "  - type: syslog_tcp\n"
    "    listen: 127.0.0.1:5514\n"
    "transforms:\n"
    "  - {type: rules, packs: [rules/packs]}\n"
    "  - {type: detections, name: detections, packs: [rules/packs]}\n"
    "sinks:\n"
    "  - type: stdout\n"
    "  - {type: file, path: alerts.jsonl, kinds: [alert]}   # follow with: logsift tail\n";

static lsf_pipeline *running;

static void on_stop_signal(int sig)
{
    (void)sig;
    if (running)
        lsf_pipeline_request_stop(running);
}

static void on_hup(int sig)
{
    (void)sig;
    if (running)
        lsf_pipeline_request_reopen(running);
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: logsift COMMAND [options]\n"
            "\n"
            "commands:\n"
            "  run [-c FILE]          run a pipeline (default: the built-in configuration)\n"
            "  run [-c FILE] --replay LOGFILE\n"
            "                         the pipeline over an old log file (event time), then exit\n"
            "  tail [FILE | --brokers B --topic T] [--json] [--severity S] [--id ID]\n"
            "                         follow alerts (default: alerts.jsonl)\n"
            "  check -c FILE          validate a configuration; prints file:line:column: error\n"
            "  parse [-f FORMAT] [-z TIMEZONE] [-r PACK_DIR]\n"
            "                         read lines on stdin, print the JSON event of each\n"
            "                         (with -r, classified by the rule packs of PACK_DIR)\n"
            "  test [--stats] [PACK_OR_DIR ...]\n"
            "                         run the rule packs' inline tests (default: rules/packs)\n"
            "  spool DIR [--dump]     what a Kafka sink's spool directory holds\n"
            "  score [--detector NAME] FILE.csv\n"
            "                         anomaly scores of a timestamp,value CSV (NAB format)\n"
            "  templates [-s STATE] [FILE]\n"
            "                         log templates of one message per line, as CSV\n"
            "  help [STAGE]           list stages, or one stage's settings\n"
            "  config                 print the built-in default configuration\n"
            "  version, --version     print the version\n");
}

/* Loads the config file, or the built-in default when path is NULL. */
static lsf_node *load_config(const char *path, lsf_errbuf *err)
{
    if (path)
        return lsf_yaml_load_file(path, err);
    return lsf_yaml_load_string("<built-in config>", default_config, err);
}

/* Builds, starts and runs a pipeline until its inputs end or a signal. */
static int run_pipeline(const lsf_node *root, bool announce)
{
    lsf_errbuf err = {{0}};
    lsf_pipeline *p = lsf_pipeline_new(root, &err);
    if (!p) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    if (lsf_pipeline_init(p, &err) < 0 || lsf_pipeline_start(p, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        lsf_pipeline_free(p);
        return 1;
    }
    running = p;
    if (announce)
        lsf_info("listening on 127.0.0.1:5514 (UDP and TCP); send a test message with: "
                 "logger -n 127.0.0.1 -P 5514 -T 'hello logsift'");
    lsf_pipeline_wait(p);
    lsf_pipeline_stop(p);
    running = NULL;
    lsf_pipeline_free(p);
    if (lsf_log_threshold >= LSF_LOG_DEBUG)
        lsf_metrics_print(stderr, 0);
    return 0;
}

/* Reads `-c FILE` / `--config FILE` into *path; -1 (usage printed) on
 * anything else. */
static int config_option(int argc, char **argv, const char **path)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
        if (opt != 'c') {
            usage(stderr);
            return -1;
        }
        *path = optarg;
    }
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    const char *path = NULL;
    if (config_option(argc, argv, &path) < 0)
        return 2;
    lsf_errbuf err = {{0}};
    lsf_node *root = load_config(path, &err);
    if (!root) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    install_signals();
    int rc = run_pipeline(root, path == NULL);
    lsf_node_free(root);
    return rc;
}

static int cmd_check(int argc, char **argv)
{
    const char *path = NULL;
    if (config_option(argc, argv, &path) < 0)
        return 2;
    if (!path && optind < argc)
        path = argv[optind];
    lsf_errbuf err = {{0}};
    lsf_node *root = load_config(path, &err);
    lsf_pipeline *p = root ? lsf_pipeline_new(root, &err) : NULL;
    int rc = p && lsf_pipeline_check(p, &err) == 0 ? 0 : 1;
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    else
        printf("%s: OK\n", path ? path : "<built-in config>");
    lsf_pipeline_free(p);
    lsf_node_free(root);
    return rc;
}

static int cmd_parse(int argc, char **argv)
{
    const char *format = "auto", *tz = "local";
    char rules[1024] = "";
    int opt;
    static const struct option longopts[] = {{"format", required_argument, NULL, 'f'},
                                             {"timezone", required_argument, NULL, 'z'},
                                             {"rules", required_argument, NULL, 'r'},
                                             {NULL, 0, NULL, 0}};
    while ((opt = getopt_long(argc, argv, "f:z:r:", longopts, NULL)) != -1) {
        if (opt == 'f')
            format = optarg;
        else if (opt == 'z')
            tz = optarg;
        else if (opt == 'r') {
            if (lsf_rules_parse_transform(optarg, rules, sizeof(rules)) < 0) {
                fprintf(stderr, "logsift: -r: path too long or with control characters\n");
                return 2;
            }
        } else {
            usage(stderr);
            return 2;
        }
    }
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "log_level: warn\n"
             "parse: {timezone: \"%s\"}\n"
             "inputs: [{type: stdin, format: \"%s\"}]\n"
             "%s"
             "sinks: [{type: stdout}]\n",
             tz, format, rules);
    lsf_errbuf err = {{0}};
    lsf_node *root = lsf_yaml_load_string("<parse options>", yaml, &err);
    if (!root) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    install_signals();
    int rc = run_pipeline(root, false);
    lsf_node_free(root);
    return rc;
}

static const char *kind_title(enum lsf_stage_kind k)
{
    return k == LSF_STAGE_INPUT ? "inputs" : k == LSF_STAGE_TRANSFORM ? "transforms" : "sinks";
}

/* Keys the pipeline reads for every sink, shown with each sink's own. */
static const lsf_key sink_common_keys[] = {
    {"codec", LSF_K_ENUM, "json",
     "json: one JSON event per line; raw: each record as received, one per line.", 0,
     LSF_CODEC_CHOICES, 0, 0, false},
    LSF_KEYS_END,
};

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        for (int k = LSF_STAGE_INPUT; k <= LSF_STAGE_SINK; k++) {
            printf("\n%s:\n", kind_title(k));
            for (int i = 0; lsf_stage_registry[i]; i++)
                if ((int)lsf_stage_registry[i]->kind == k)
                    printf("  %-14s %s\n", lsf_stage_registry[i]->name, lsf_stage_registry[i]->help);
        }
        printf("\nSettings of one stage: logsift help STAGE; top-level settings: logsift help "
               "pipeline\n");
        return 0;
    }
    const char *name = argv[1];
    if (strcmp(name, "pipeline") == 0) {
        printf("pipeline: top-level settings of a configuration file\n\n");
        lsf_keys_print(lsf_pipeline_keys, "  ");
        printf("\nsections: inputs, transforms, sinks (lists of stages), parse (settings of the "
               "parse stage)\n");
        return 0;
    }
    bool found = false;
    for (int i = 0; lsf_stage_registry[i]; i++) {
        const lsf_stage_def *d = lsf_stage_registry[i];
        if (strcmp(d->name, name) != 0)
            continue;
        found = true;
        printf("%s (%s): %s\n\n", d->name, kind_title(d->kind), d->help);
        if (d->keys && d->keys[0].name)
            lsf_keys_print(d->keys, "  ");
        else if (d->kind != LSF_STAGE_SINK)
            printf("  (no settings)\n");
        if (d->kind == LSF_STAGE_SINK)
            lsf_keys_print(sink_common_keys, "  ");
        printf("\n");
    }
    if (!found) {
        fprintf(stderr, "logsift: no stage named '%s' (see 'logsift help')\n", name);
        return 1;
    }
    return 0;
}

/* Batch-sized buffers (a Kafka sink's chunk of JSON lines, librdkafka's
 * message sets and their compressed copies) are 100 KiB to a few MiB, above
 * glibc's default mmap threshold: each was a fresh mmap, faulted in and
 * zeroed page by page, then unmapped, at every batch. Served from the heap
 * and kept there, they are reused warm; scenario 5 of `make bench` spent
 * ~15% less CPU. An operator's own GLIBC_TUNABLES for malloc win. */
static void keep_batch_buffers_in_heap(void)
{
    const char *t = getenv("GLIBC_TUNABLES");
    if (t && strstr(t, "glibc.malloc."))
        return;
    mallopt(M_MMAP_THRESHOLD, 16 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    keep_batch_buffers_in_heap();
    const char *cmd = argv[1];
    int rc;
    if (strcmp(cmd, "run") == 0 && lsf_replay_requested(argc, argv))
        rc = lsf_replay_cmd(argc - 1, argv + 1, default_config);
    else if (strcmp(cmd, "run") == 0)
        rc = cmd_run(argc - 1, argv + 1);
    else if (strcmp(cmd, "tail") == 0)
        rc = lsf_tail_cmd(argc - 1, argv + 1);
    else if (strcmp(cmd, "check") == 0)
        rc = cmd_check(argc - 1, argv + 1);
    else if (strcmp(cmd, "parse") == 0)
        rc = cmd_parse(argc - 1, argv + 1);
    else if (strcmp(cmd, "test") == 0)
        rc = lsf_rules_cmd_test(argc - 1, argv + 1);
    else if (strcmp(cmd, "score") == 0)
        rc = lsf_anomaly_cmd_score(argc - 1, argv + 1);
    else if (strcmp(cmd, "templates") == 0)
        rc = lsf_anomaly_cmd_templates(argc - 1, argv + 1);
    else if (strcmp(cmd, "spool") == 0)
        rc = lsf_spool_cmd(argc - 1, argv + 1);
    else if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        rc = cmd_help(argc - 1, argv + 1);
    else if (strcmp(cmd, "config") == 0) {
        fputs(default_config, stdout);
        rc = 0;
    } else if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("logsift %s\n", LSF_VERSION);
        rc = 0;
    } else {
        fprintf(stderr, "logsift: unknown command '%s'\n\n", cmd);
        usage(stderr);
        rc = 2;
    }
    lsf_metrics_free();
    return rc;
}
