/* Process level: listening sockets, worker threads, signals. Workers share nothing on the data path. */
#include "server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "admin.h"
#include "log.h"
#include "worker.h"

typedef struct server {
    const wsg_config_t *cfg;
    uv_loop_t loop; /* the main thread's: signals and worker completion only */
    uv_signal_t sigterm, sigint;
    uv_async_t worker_done;
    unsigned nworkers;
    wsg_worker_t **workers;
    uv_thread_t *threads;
    int *worker_status;
    wsg_stats_t **stats;
    wsg_admin_t *admin;
    unsigned done;
    bool is_shutting_down;
} server_t;

/* Reachable for the whole run, so that leak checkers do not flag an early exit. */
static server_t *the_server;

/* Opens `n` sockets bound to the same address with SO_REUSEPORT, so that the kernel spreads incoming
 * connections over the workers' accept queues. Port 0 picks one port for all. */
static int bind_sockets(const wsg_config_t *cfg, int *fds, unsigned n, char *bound, size_t bound_cap)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", cfg->listen_port);
    int gai = getaddrinfo(cfg->listen_host, port, &hints, &res);
    if (gai != 0 || res == NULL) {
        WSG_ERROR("listen_failed", WSG_F_STR("addr", cfg->listen), WSG_F_STR("err", gai_strerror(gai)));
        return -EINVAL;
    }
    struct sockaddr_storage addr;
    socklen_t addr_len = (socklen_t)res->ai_addrlen;
    memcpy(&addr, res->ai_addr, res->ai_addrlen);
    int family = res->ai_family;
    freeaddrinfo(res);
    for (unsigned i = 0; i < n; i++) {
        int one = 1;
        int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
            bind(fd, (struct sockaddr *)&addr, addr_len) < 0) {
            int err = errno;
            WSG_ERROR("listen_failed", WSG_F_STR("addr", cfg->listen), WSG_F_STR("err", strerror(err)));
            if (fd >= 0)
                close(fd);
            while (i-- > 0)
                close(fds[i]);
            return -err;
        }
        fds[i] = fd;
        if (i == 0) {
            /* Later sockets bind the port the first one got (matters for port 0). */
            addr_len = sizeof addr;
            getsockname(fd, (struct sockaddr *)&addr, &addr_len);
        }
    }
    char ip[INET6_ADDRSTRLEN] = "?";
    int bound_port = 0;
    if (addr.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&addr, ip, sizeof ip);
        bound_port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
        snprintf(bound, bound_cap, "[%s]:%d", ip, bound_port);
    } else {
        uv_ip4_name((struct sockaddr_in *)&addr, ip, sizeof ip);
        bound_port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
        snprintf(bound, bound_cap, "%s:%d", ip, bound_port);
    }
    return 0;
}

static void worker_main(void *arg)
{
    wsg_worker_t *w = arg;
    server_t *srv = the_server;
    srv->worker_status[wsg_worker_index(w)] = wsg_worker_run(w);
    uv_async_send(&srv->worker_done);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    server_t *srv = handle->data;
    if (srv->is_shutting_down) {
        WSG_WARN("shutdown_forced", WSG_F_INT("signal", signum));
        _exit(1);
    }
    srv->is_shutting_down = true;
    WSG_INFO("shutdown", WSG_F_INT("signal", signum), WSG_F_UINT("workers", srv->nworkers),
             WSG_F_UINT("timeout_ms", srv->cfg->shutdown_timeout_ms));
    if (srv->admin != NULL)
        wsg_admin_set_draining(srv->admin);
    for (unsigned i = 0; i < srv->nworkers; i++)
        wsg_worker_request_shutdown(srv->workers[i]);
}

static void on_worker_done(uv_async_t *handle)
{
    server_t *srv = handle->data;
    /* uv_async_send coalesces: count the workers that really finished. */
    unsigned finished = 0;
    for (unsigned i = 0; i < srv->nworkers; i++)
        finished += srv->worker_status[i] != -1;
    srv->done = finished;
    if (srv->done < srv->nworkers)
        return;
    if (srv->admin != NULL)
        wsg_admin_stop(srv->admin);
    srv->admin = NULL;
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    uv_close((uv_handle_t *)&srv->sigint, NULL);
    uv_close((uv_handle_t *)&srv->worker_done, NULL);
}

int wsg_server_run(const wsg_config_t *cfg)
{
    server_t *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return 1;
    the_server = srv;
    srv->cfg = cfg;
    srv->nworkers = (unsigned)cfg->workers;
    srv->workers = calloc(srv->nworkers, sizeof(*srv->workers));
    srv->threads = calloc(srv->nworkers, sizeof(*srv->threads));
    srv->worker_status = malloc(srv->nworkers * sizeof(*srv->worker_status));
    srv->stats = calloc(srv->nworkers, sizeof(*srv->stats));
    int *fds = calloc(srv->nworkers, sizeof(*fds));
    if (srv->workers == NULL || srv->threads == NULL || srv->worker_status == NULL || srv->stats == NULL ||
        fds == NULL)
        return 1;
    char bound[80];
    if (bind_sockets(cfg, fds, srv->nworkers, bound, sizeof bound) < 0)
        return 1;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        srv->workers[i] = wsg_worker_new(i);
        if (srv->workers[i] == NULL)
            return 1;
        srv->stats[i] = wsg_worker_stats(srv->workers[i]);
    }
    /* The admin listener is up before any client is accepted, so a probe that sees the WebSocket port
     * open finds it too. */
    if (cfg->admin_listen[0] != '\0') {
        uv_loop_init(&srv->loop);
        srv->admin = wsg_admin_start(&srv->loop, cfg, srv->stats, srv->nworkers);
        if (srv->admin == NULL) {
            uv_run(&srv->loop, UV_RUN_NOWAIT); /* lets the failed listener close */
            return 1;
        }
    } else {
        uv_loop_init(&srv->loop);
    }
    for (unsigned i = 0; i < srv->nworkers; i++) {
        srv->worker_status[i] = -1;
        if (wsg_worker_init(srv->workers[i], cfg, fds[i]) < 0)
            return 1;
    }
    free(fds);
    WSG_INFO("listening", WSG_F_STR("addr", bound), WSG_F_STR("websocket_url", cfg->websocket_url),
             WSG_F_UINT("workers", srv->nworkers));

    uv_signal_init(&srv->loop, &srv->sigterm);
    uv_signal_init(&srv->loop, &srv->sigint);
    srv->sigterm.data = srv->sigint.data = srv;
    uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
    uv_signal_start(&srv->sigint, on_signal, SIGINT);
    uv_async_init(&srv->loop, &srv->worker_done, on_worker_done);
    srv->worker_done.data = srv;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        if (uv_thread_create(&srv->threads[i], worker_main, srv->workers[i]) != 0) {
            WSG_ERROR("start_failed", WSG_F_STR("msg", "cannot start a worker thread"), WSG_F_UINT("worker", i));
            _exit(1);
        }
    }
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    int status = 0;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        uv_thread_join(&srv->threads[i]);
        if (srv->worker_status[i] != 0)
            status = 1;
        wsg_worker_free(srv->workers[i]);
    }
    if (uv_loop_close(&srv->loop) != 0)
        status = 1;
    free(srv->workers);
    free(srv->threads);
    free(srv->worker_status);
    free(srv->stats);
    free(srv);
    the_server = NULL;
    return status;
}
