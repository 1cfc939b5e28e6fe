/* wsgate: a ws4redis-compatible WebSocket gateway for Redis pub/sub. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "publish_cli.h"
#include "server.h"

#ifndef WSG_VERSION
#define WSG_VERSION "0.0.0"
#endif

static wsg_config_t config;

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "publish") == 0)
        return wsg_publish_cli_main(argc - 1, argv + 1);
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
    wsg_log_json = strcmp(config.log_format, "json") == 0;
    /* Writes to a socket the peer has reset must fail with EPIPE, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    WSG_INFO("start", WSG_F_STR("version", WSG_VERSION), WSG_F_INT("pid", getpid()));
    wsg_config_log(&config);

    int status = wsg_server_run(&config);
    WSG_INFO("exit", WSG_F_INT("status", status));
    return status;
}
