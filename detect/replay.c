/* replay.c - `logsift run [-c FILE] --replay LOGFILE [--format F]`: runs the
 * configuration's transforms and sinks over an old log file instead of its
 * inputs, and exits at the file's end.
 *
 * The one design choice to know: nothing about the pipeline changes but its
 * input (the config's `inputs:` are replaced by one stdin input reading the
 * file), and detections run on event time in input order (detect.h), so a
 * replay gives the alerts the live stream gave. Detections neither restore
 * nor save snapshots during a replay, so an investigation never disturbs the
 * live state.
 *
 * Threads: the main thread; signal handlers only ask the pipeline to stop.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/pipeline.h"
#include "detect/detect.h"

static lsf_pipeline *replaying;

static void on_stop(int sig)
{
    (void)sig;
    if (replaying)
        lsf_pipeline_request_stop(replaying);
}

void lsf_det_cli_signals(void (*on_stop)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

bool lsf_replay_requested(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--replay") == 0 || strncmp(argv[i], "--replay=", 9) == 0)
            return true;
    return false;
}

/* Replaces the root's `inputs` with one stdin input of `format`. */
static int swap_inputs(lsf_node *root, const char *format, lsf_errbuf *err)
{
    char yaml[160];
    snprintf(yaml, sizeof(yaml), "inputs: [{type: stdin, format: \"%s\"}]\n", format);
    lsf_node *tmp = lsf_yaml_load_string("<replay>", yaml, err);
    if (!tmp)
        return -1;
    lsf_node *in = tmp->child;
    tmp->child = NULL;
    lsf_node_free(tmp);
    if (root->kind != LSF_NODE_MAP) {
        lsf_node_free(in);
        return lsf_node_error(err, root, "the configuration must be a map");
    }
    lsf_node **pp = &root->child;
    while (*pp && strcmp((*pp)->key, "inputs") != 0)
        pp = &(*pp)->next;
    if (*pp) {
        lsf_node *old = *pp;
        in->next = old->next;
        old->next = NULL;
        lsf_node_free(old);
    } else {
        root->nchild++;
    }
    *pp = in;
    return 0;
}

int lsf_replay_cmd(int argc, char **argv, const char *default_config)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"replay", required_argument, NULL, 'r'},
                                             {"format", required_argument, NULL, 'f'},
                                             {NULL, 0, NULL, 0}};
    const char *path = NULL, *log = NULL, *format = "auto";
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:r:f:", longopts, NULL)) != -1) {
        if (opt == 'c')
            path = optarg;
        else if (opt == 'r')
            log = optarg;
        else if (opt == 'f')
            format = optarg;
        else {
            fprintf(stderr, "usage: logsift run [-c FILE] --replay LOGFILE [--format FORMAT]\n");
            return 2;
        }
    }
    if (!log || optind < argc) {
        fprintf(stderr, "usage: logsift run [-c FILE] --replay LOGFILE [--format FORMAT]\n");
        return 2;
    }
    int fd = open(log, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "logsift: --replay %s: %s\n", log, strerror(errno));
        return 1;
    }
    if (dup2(fd, STDIN_FILENO) < 0) {
        fprintf(stderr, "logsift: --replay: %s\n", strerror(errno));
        close(fd);
        return 1;
    }
    close(fd);
    lsf_errbuf err = {{0}};
    lsf_node *root = path ? lsf_yaml_load_file(path, &err)
                          : lsf_yaml_load_string("<built-in config>", default_config, &err);
    lsf_pipeline *p = NULL;
    int rc = 1;
    if (!root || swap_inputs(root, format, &err) < 0)
        goto fail;
    atomic_store(&lsf_detect_replay_mode, true);
    if (!(p = lsf_pipeline_new(root, &err)) || lsf_pipeline_init(p, &err) < 0 ||
        lsf_pipeline_start(p, &err) < 0)
        goto fail;
    lsf_det_cli_signals(on_stop);
    replaying = p;
    lsf_pipeline_wait(p);
    lsf_pipeline_stop(p);
    replaying = NULL;
    rc = 0;
fail:
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    lsf_pipeline_free(p);
    lsf_node_free(root);
    return rc;
}
