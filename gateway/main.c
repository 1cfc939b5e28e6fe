/* wsgate: a ws4redis-compatible WebSocket gateway for Redis pub/sub. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "worker.h"

#ifndef WSG_VERSION
#define WSG_VERSION "0.0.0"
#endif

/* Reachable for the whole run, so that leak checkers do not flag an early exit. */
static wsg_config_t config;
static wsg_worker_t *worker;

int main(int argc, char **argv)
{
    char err[512];
    wsg_config_action_t action;
    if (wsg_config_load(&config, argc, argv, 1, &action, err, sizeof err) < 0) {
        fprintf(stderr, "wsgate: %s\n", err);
        return 2;
    }
    if (action == WSG_CONFIG_HELP) {
        wsg_config_print_usage(argv[0]);
        return 0;
    }
    if (action == WSG_CONFIG_VERSION) {
        printf("wsgate %s\n", WSG_VERSION);
        return 0;
    }
    wsg_log_threshold = config.log_level;
    /* Writes to a socket the peer has reset must fail with EPIPE, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    WSG_INFO("start", "version=%s pid=%d", WSG_VERSION, (int)getpid());
    wsg_config_log(&config);

    worker = malloc(sizeof(*worker));
    if (worker == NULL) {
        fprintf(stderr, "wsgate: out of memory\n");
        return 1;
    }
    if (wsg_worker_init(worker, &config) < 0)
        return 1;
    int rc = wsg_worker_run(worker);
    free(worker);
    worker = NULL;
    WSG_INFO("exit", "status=%d", rc == 0 ? 0 : 1);
    return rc == 0 ? 0 : 1;
}
