/* main.c - mediarelay-worker: runs media jobs (docs/jobs.md).  Skeleton:
 * loads the configuration and waits for SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"

int main(int argc, char **argv)
{
    struct mr_conf *conf = NULL;
    struct mr_buf errors;
    const char *path;
    sigset_t set;
    int sig = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--version")) {
            printf("mediarelay-worker %s\n", PACKAGE_VERSION);
            return 0;
        }
    }
    mr_log_setup("mediarelay-worker", "info", "stderr");
    path = mr_conf_path(argc, argv);
    mr_buf_init(&errors, 64 << 10);
    if (mr_conf_load(path, &conf, &errors)) {
        fprintf(stderr, "mediarelay-worker: refusing to start: the configuration %s has "
                "errors:\n%s", path, errors.p ? errors.p : "");
        mr_buf_free(&errors);
        return 1;
    }
    mr_buf_free(&errors);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    sigwait(&set, &sig);
    mr_conf_free(conf);
    return 0;
}
