/* Admin HTTP endpoints: one short request per connection, answered and closed. */
#include "admin.h"

#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "handshake.h"
#include "http_request.h"
#include "log.h"
#include "url.h"

/* Admin clients are few (a scraper, a health probe) and send their request at once: a client that has not
 * sent it within ADMIN_READ_TIMEOUT_MS is dropped, and past ADMIN_MAX_CLIENTS the oldest client still silent
 * makes room for the newcomer, so that silent connections cannot keep a health probe out. */
#define ADMIN_READ_TIMEOUT_MS 1000
#define ADMIN_WRITE_TIMEOUT_MS 5000
#define ADMIN_MAX_CLIENTS 64
#define METRICS_BUF_SIZE (64 * 1024)

typedef struct admin_client {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write_req;
    struct wsg_admin *admin;
    struct admin_client *prev, *next; /* newest first */
    wsg_http_request_t request;
    char *response;
    int pending_closes;
    bool is_closing;
    bool is_answering; /* its request is in: a response is on its way */
} admin_client_t;

struct wsg_admin {
    uv_tcp_t listener;
    wsg_stats_t *const *stats;
    unsigned nstats;
    admin_client_t *clients, *oldest;
    unsigned nclients;
    double start_time; /* Unix time the admin listener started (process_start_time_seconds) */
    bool is_draining;
    bool is_stopping;
};

static void on_client_handle_closed(uv_handle_t *handle)
{
    admin_client_t *c = handle->data;
    if (--c->pending_closes > 0)
        return;
    free(c->response);
    free(c);
}

static void close_client(admin_client_t *c)
{
    if (c->is_closing)
        return;
    c->is_closing = true;
    wsg_admin_t *admin = c->admin;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        admin->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        admin->oldest = c->prev;
    admin->nclients--;
    c->pending_closes = 2;
    uv_close((uv_handle_t *)&c->tcp, on_client_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_client_handle_closed);
}

static void on_written(uv_write_t *req, int status)
{
    close_client(req->data);
}

static void on_timeout(uv_timer_t *timer)
{
    close_client(timer->data);
}

/* Makes room: drops the oldest client that has not sent its request yet (a busy one keeps its place). */
static void evict_oldest_silent(wsg_admin_t *admin)
{
    for (admin_client_t *c = admin->oldest; c != NULL; c = c->prev) {
        if (!c->is_answering) {
            close_client(c);
            return;
        }
    }
}

/* The standard process metrics of Prometheus client libraries, and the build. Returns the length written. */
static size_t render_process_metrics(const wsg_admin_t *admin, char *out, size_t cap)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                 (double)ru.ru_stime.tv_usec / 1e6;
    long pages = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (statm != NULL) {
        if (fscanf(statm, "%*s %ld", &pages) != 1)
            pages = 0;
        fclose(statm);
    }
    unsigned fds = 0;
    DIR *dir = opendir("/proc/self/fd");
    if (dir != NULL) {
        for (struct dirent *e = readdir(dir); e != NULL; e = readdir(dir))
            fds += e->d_name[0] != '.';
        closedir(dir);
        fds--; /* the descriptor of the listing itself */
    }
    struct rlimit nofile = {0};
    getrlimit(RLIMIT_NOFILE, &nofile);
    int n =
        snprintf(out, cap,
                 "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
                 "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.3f\n"
                 "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                 "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %lld\n"
                 "# HELP process_open_fds Number of open file descriptors.\n"
                 "# TYPE process_open_fds gauge\nprocess_open_fds %u\n"
                 "# HELP process_max_fds Maximum number of open file descriptors.\n"
                 "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n"
                 "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
                 "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n"
                 "# HELP wsgate_build_info The running build: version label, value 1.\n"
                 "# TYPE wsgate_build_info gauge\nwsgate_build_info{version=\"%s\"} 1\n",
                 cpu, (long long)pages * sysconf(_SC_PAGESIZE), fds, (unsigned long long)nofile.rlim_cur,
                 admin->start_time, WSG_VERSION);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

static void respond(admin_client_t *c, int status, const char *content_type, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n"
                     "Cache-Control: no-store\r\n\r\n",
                     status, wsg_http_reason_phrase(status), content_type, len);
    c->response = malloc((size_t)n + len);
    if (c->response == NULL) {
        close_client(c);
        return;
    }
    memcpy(c->response, head, (size_t)n);
    memcpy(c->response + n, body, len);
    uv_buf_t buf = uv_buf_init(c->response, (unsigned)((size_t)n + len));
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->is_answering = true;
    uv_timer_start(&c->timer, on_timeout, ADMIN_WRITE_TIMEOUT_MS, 0); /* a reader that never reads */
    c->write_req.data = c;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &buf, 1, on_written) < 0)
        close_client(c);
}

static void serve(admin_client_t *c)
{
    wsg_admin_t *admin = c->admin;
    wsg_str_t path, query;
    wsg_url_split(c->request.target, &path, &query);
    if (!wsg_str_eq(c->request.upgrade.method, wsg_str_c("GET"))) {
        respond(c, 405, "text/plain; charset=utf-8", "method not allowed\n", 19);
    } else if (wsg_str_eq(path, wsg_str_c("/metrics"))) {
        char *body = malloc(METRICS_BUF_SIZE);
        if (body == NULL) {
            close_client(c);
            return;
        }
        size_t len = wsg_stats_render(admin->stats, admin->nstats, body, METRICS_BUF_SIZE);
        len += render_process_metrics(admin, body + len, METRICS_BUF_SIZE - len);
        respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
        free(body);
    } else if (wsg_str_eq(path, wsg_str_c("/healthz"))) {
        respond(c, 200, "text/plain; charset=utf-8", "ok\n", 3);
    } else if (wsg_str_eq(path, wsg_str_c("/readyz"))) {
        if (admin->is_draining)
            respond(c, 503, "text/plain; charset=utf-8", "shutting down\n", 14);
        else if (!wsg_stats_redis_ready(admin->stats, admin->nstats))
            respond(c, 503, "text/plain; charset=utf-8", "redis unavailable\n", 18);
        else
            respond(c, 200, "text/plain; charset=utf-8", "ready\n", 6);
    } else {
        respond(c, 404, "text/plain; charset=utf-8", "not found\n", 10);
    }
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    static char scratch[4096]; /* the main loop is single-threaded; bytes are copied into the request */
    buf->base = scratch;
    buf->len = sizeof scratch;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    admin_client_t *c = stream->data;
    if (nread < 0) {
        close_client(c);
        return;
    }
    if (nread == 0)
        return;
    int rc = wsg_http_request_feed(&c->request, (const uint8_t *)buf->base, (size_t)nread);
    if (rc == 0)
        return;
    if (rc < 0) {
        const char *msg = rc == -E2BIG ? "request too large\n" : "bad request\n";
        respond(c, rc == -E2BIG ? 431 : 400, "text/plain; charset=utf-8", msg, strlen(msg));
        return;
    }
    serve(c);
}

static void on_listener_closed(uv_handle_t *handle);

static void on_connection(uv_stream_t *server, int status)
{
    wsg_admin_t *admin = server->data;
    if (status < 0)
        return;
    admin_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->admin = admin;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    if (admin->nclients >= ADMIN_MAX_CLIENTS)
        evict_oldest_silent(admin);
    c->next = admin->clients;
    if (admin->clients != NULL)
        admin->clients->prev = c;
    else
        admin->oldest = c;
    admin->clients = c;
    admin->nclients++;
    wsg_http_request_init(&c->request);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || admin->nclients > ADMIN_MAX_CLIENTS) {
        close_client(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, ADMIN_READ_TIMEOUT_MS, 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

wsg_admin_t *wsg_admin_start(uv_loop_t *loop, const wsg_config_t *cfg, wsg_stats_t *const *stats, unsigned n)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", cfg->admin_port);
    int gai = getaddrinfo(cfg->admin_host, port, &hints, &res);
    if (gai != 0 || res == NULL) {
        WSG_ERROR("admin_listen_failed", WSG_F_STR("addr", cfg->admin_listen),
                  WSG_F_STR("err", gai_strerror(gai)));
        return NULL;
    }
    wsg_admin_t *admin = calloc(1, sizeof(*admin));
    if (admin == NULL) {
        freeaddrinfo(res);
        return NULL;
    }
    admin->stats = stats;
    admin->nstats = n;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    admin->start_time = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    uv_tcp_init(loop, &admin->listener);
    admin->listener.data = admin;
    int rc = uv_tcp_bind(&admin->listener, res->ai_addr, 0);
    freeaddrinfo(res);
    if (rc == 0)
        /* A backlog far above ADMIN_MAX_CLIENTS: under a burst of connections (a port scan) a health probe's
         * SYN waits in the queue to be accepted (and room made for it) instead of being dropped and sent again
         * a second later. */
        rc = uv_listen((uv_stream_t *)&admin->listener, 1024, on_connection);
    if (rc < 0) {
        WSG_ERROR("admin_listen_failed", WSG_F_STR("addr", cfg->admin_listen),
                  WSG_F_STR("err", uv_strerror(rc)));
        uv_close((uv_handle_t *)&admin->listener,
                 on_listener_closed); /* frees `admin` on the next loop turn */
        return NULL;
    }
    WSG_INFO("admin_listening", WSG_F_STR("addr", cfg->admin_listen),
             WSG_F_STR("endpoints", "/metrics,/healthz,/readyz"));
    return admin;
}

void wsg_admin_set_draining(wsg_admin_t *admin)
{
    admin->is_draining = true;
}

static void on_listener_closed(uv_handle_t *handle)
{
    free(handle->data);
}

void wsg_admin_stop(wsg_admin_t *admin)
{
    admin->is_stopping = true;
    while (admin->clients != NULL)
        close_client(admin->clients);
    uv_close((uv_handle_t *)&admin->listener, on_listener_closed);
}
