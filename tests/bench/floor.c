/* floor: the yardstick for the benchmarks. A deliberately minimal libuv WebSocket broadcaster: it answers any
 * upgrade (accept key with OpenSSL SHA-1, no other check), holds one Redis subscription (PSUBSCRIBE
 * broadcast:*), frames every message once and writes everything one read of Redis brought to every socket
 * with one uv_try_write (or uv_write for the rest) per socket per loop turn. No validation, no limits, no
 * routing by facility: every client gets every message. When Redis drops the subscription (its pubsub output
 * buffer limit, under overload) it reconnects and subscribes again after 100 ms; messages meanwhile are lost,
 * the clients stay connected. Not a product; what wsgate does beyond this is the
 * price of correctness.
 *
 * Settings as wsgate's: WSGATE_LISTEN (default 127.0.0.1:8080), REDIS_URL (default redis://127.0.0.1:6379);
 * FLOOR_PATTERN (default "broadcast:*"). Stops on SIGINT/SIGTERM. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <uv.h>

#define HEAD_CAP 8192
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

typedef struct fconn {
    uv_tcp_t tcp; /* embedded; freed in the close callback */
    char *head;   /* request head until the upgrade is answered */
    size_t head_len;
    uint32_t slot; /* index in the open list */
    bool is_open;
} fconn_t;

/* Frames of one loop turn, shared by every socket's write. */
typedef struct batch {
    uint32_t refs;
    size_t len, cap;
    char data[];
} batch_t;

typedef struct batch_write {
    uv_write_t req;
    batch_t *batch;
} batch_write_t;

static struct {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_check_t flush;
    uv_signal_t sig_int, sig_term;
    redisAsyncContext *redis;
    fconn_t **open;
    uint32_t open_count, open_cap;
    batch_t *pending;
    bool is_stopping;
    uv_timer_t retry;
    char rhost[64];
    int rport;
    const char *pattern;
    uint64_t messages, writes_queued, redis_losses;
} F;

static char read_buf[64 * 1024];

static void batch_unref(batch_t *b)
{
    if (--b->refs == 0)
        free(b);
}

static void on_conn_closed(uv_handle_t *h)
{
    fconn_t *c = h->data;
    free(c->head);
    free(c);
}

static void conn_close(fconn_t *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (c->is_open) {
        fconn_t *last = F.open[--F.open_count];
        F.open[c->slot] = last;
        last->slot = c->slot;
        c->is_open = false;
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_write_done(uv_write_t *req, int status)
{
    batch_write_t *w = (batch_write_t *)req;
    batch_unref(w->batch);
    if (status < 0 && status != UV_ECANCELED)
        conn_close(req->handle->data);
    free(w);
}

static void on_101_written(uv_write_t *req, int status)
{
    if (status < 0 && status != UV_ECANCELED)
        conn_close(req->handle->data);
    free(req);
}

/* Answers the upgrade: Sec-WebSocket-Key is the only header read. */
static void answer_upgrade(fconn_t *c, const char *head, const char *end)
{
    const char *key = NULL, *key_end = NULL;
    for (const char *line = head; line < end;) {
        const char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        if (!eol)
            break;
        if (strncasecmp(line, "sec-websocket-key:", 18) == 0) {
            key = line + 18;
            while (key < eol && (*key == ' ' || *key == '\t'))
                key++;
            key_end = eol;
            while (key_end > key && (key_end[-1] == ' ' || key_end[-1] == '\t'))
                key_end--;
        }
        line = eol + 2;
    }
    if (!key || key_end - key > 64) {
        conn_close(c);
        return;
    }
    char buf[64 + sizeof WS_GUID];
    size_t kl = (size_t)(key_end - key);
    memcpy(buf, key, kl);
    memcpy(buf + kl, WS_GUID, sizeof WS_GUID - 1);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)buf, kl + sizeof WS_GUID - 1, digest);
    char accept[32];
    EVP_EncodeBlock((unsigned char *)accept, digest, SHA_DIGEST_LENGTH);

    struct {
        uv_write_t req;
        char text[160];
    } *w = malloc(sizeof *w);
    if (!w)
        abort();
    int n = snprintf(w->text, sizeof w->text,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    uv_buf_t b = uv_buf_init(w->text, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_101_written) < 0) {
        free(w);
        conn_close(c);
        return;
    }
    free(c->head);
    c->head = NULL;
    if (F.open_count == F.open_cap) {
        F.open_cap = F.open_cap ? F.open_cap * 2 : 1024;
        F.open = realloc(F.open, F.open_cap * sizeof *F.open);
        if (!F.open)
            abort();
    }
    c->slot = F.open_count;
    F.open[F.open_count++] = c;
    c->is_open = true;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    fconn_t *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0 || c->is_open)
        return; /* whatever a client sends after the upgrade is ignored */
    if (!c->head) {
        /* the usual case: the whole head in one read, parsed in place (no buffer per connection) */
        const char *end = memmem(buf->base, (size_t)nread, "\r\n\r\n", 4);
        if (end) {
            answer_upgrade(c, buf->base, end);
            return;
        }
        c->head = malloc(HEAD_CAP);
        if (!c->head)
            abort();
    }
    size_t take = (size_t)nread < HEAD_CAP - c->head_len ? (size_t)nread : HEAD_CAP - c->head_len;
    memcpy(c->head + c->head_len, buf->base, take);
    c->head_len += take;
    const char *end = memmem(c->head, c->head_len, "\r\n\r\n", 4);
    if (end)
        answer_upgrade(c, c->head, end);
    else if (c->head_len == HEAD_CAP)
        conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    fconn_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    uv_tcp_init(F.loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
}

/* Appends one text frame (binary when asked) with `payload` to the pending batch. */
static void frame_append(const char *payload, size_t len)
{
    size_t need = len + 10;
    batch_t *b = F.pending;
    if (!b || b->len + need > b->cap) {
        size_t cap = b ? b->cap * 2 : 16384;
        while (cap < (b ? b->len : 0) + need)
            cap *= 2;
        b = realloc(b, sizeof *b + cap);
        if (!b)
            abort();
        if (!F.pending) {
            b->len = 0;
            b->refs = 1;
        }
        b->cap = cap;
        F.pending = b;
    }
    uint8_t *p = (uint8_t *)b->data + b->len;
    size_t h = 2;
    p[0] = 0x81;
    if (len < 126) {
        p[1] = (uint8_t)len;
    } else if (len < 65536) {
        p[1] = 126;
        p[2] = (uint8_t)(len >> 8);
        p[3] = (uint8_t)len;
        h = 4;
    } else {
        p[1] = 127;
        for (int i = 0; i < 8; i++)
            p[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        h = 10;
    }
    memcpy(p + h, payload, len);
    b->len += h + len;
}

/* After the poll phase: the frames of this turn go to every socket in one write each. */
static void on_flush(uv_check_t *h)
{
    (void)h;
    batch_t *b = F.pending;
    if (!b || b->len == 0)
        return;
    F.pending = NULL;
    for (uint32_t i = 0; i < F.open_count; i++) {
        fconn_t *c = F.open[i];
        uv_buf_t buf = uv_buf_init(b->data, (unsigned)b->len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
        if (n == (int)b->len)
            continue;
        if (n < 0 && n != UV_EAGAIN) {
            conn_close(c); /* swaps the last one into slot i */
            i--;
            continue;
        }
        size_t done = n > 0 ? (size_t)n : 0;
        batch_write_t *w = malloc(sizeof *w);
        if (!w)
            abort();
        w->batch = b;
        b->refs++;
        buf = uv_buf_init(b->data + done, (unsigned)(b->len - done));
        if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write_done) < 0) {
            b->refs--;
            free(w);
            conn_close(c);
            i--;
            continue;
        }
        F.writes_queued++;
    }
    batch_unref(b);
}

static void on_redis_message(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    (void)priv;
    redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 4)
        return;
    redisReply *kind = reply->element[0], *payload = reply->element[3];
    if (kind->type != REDIS_REPLY_STRING || strcmp(kind->str, "pmessage") != 0 ||
        payload->type != REDIS_REPLY_STRING)
        return;
    F.messages++;
    frame_append(payload->str, (size_t)payload->len);
}

static int redis_start(void);

static void on_retry(uv_timer_t *t)
{
    (void)t;
    if (!F.is_stopping && F.redis == NULL && redis_start() < 0)
        uv_timer_start(&F.retry, on_retry, 100, 0);
}

static void on_redis_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK) {
        fprintf(stderr, "floor: redis connect failed: %s\n", ac->errstr);
        if (F.redis_losses == 0)
            exit(1); /* at start-up: the harness sees the exit */
        F.redis = NULL; /* hiredis frees the context */
        if (!F.is_stopping)
            uv_timer_start(&F.retry, on_retry, 100, 0);
    }
}

static void on_redis_disconnect(const redisAsyncContext *ac, int status)
{
    F.redis = NULL;
    if (!F.is_stopping) {
        /* Redis closes a subscriber that does not read fast enough (client-output-buffer-limit pubsub) */
        F.redis_losses++;
        fprintf(stderr, "floor: redis connection lost (%llu): %s; reconnecting in 100 ms\n",
                (unsigned long long)F.redis_losses, status == REDIS_OK ? "closed" : ac->errstr);
        uv_timer_start(&F.retry, on_retry, 100, 0);
    }
}

static int redis_start(void)
{
    F.redis = redisAsyncConnect(F.rhost, F.rport);
    if (!F.redis || F.redis->err || redisLibuvAttach(F.redis, F.loop) != REDIS_OK) {
        fprintf(stderr, "floor: redis %s:%d: %s\n", F.rhost, F.rport, F.redis ? F.redis->errstr : "out of memory");
        if (F.redis)
            redisAsyncFree(F.redis);
        F.redis = NULL;
        return -1;
    }
    redisAsyncSetConnectCallback(F.redis, on_redis_connect);
    redisAsyncSetDisconnectCallback(F.redis, on_redis_disconnect);
    redisAsyncCommand(F.redis, on_redis_message, NULL, "PSUBSCRIBE %s", F.pattern);
    return 0;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h))
        return;
    if (h->type == UV_TCP && h != (uv_handle_t *)&F.listener)
        conn_close(h->data);
    else
        uv_close(h, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    if (F.is_stopping)
        return;
    F.is_stopping = true;
    if (F.redis)
        redisAsyncDisconnect(F.redis); /* the adapter closes its own poll handle */
    uv_walk(F.loop, close_walk, NULL);
}

int main(void)
{
    const char *listen = getenv("WSGATE_LISTEN");
    const char *redis_url = getenv("REDIS_URL");
    const char *pattern = getenv("FLOOR_PATTERN");
    if (!listen || !*listen)
        listen = "127.0.0.1:8080";
    if (!redis_url || !*redis_url)
        redis_url = "redis://127.0.0.1:6379";
    if (!pattern || !*pattern)
        pattern = "broadcast:*";

    char host[64], rhost[64];
    int port, rport = 6379;
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host) {
        fprintf(stderr, "floor: WSGATE_LISTEN: expected host:port\n");
        return 2;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = 0;
    port = atoi(colon + 1);
    if (strncmp(redis_url, "redis://", 8) != 0) {
        fprintf(stderr, "floor: REDIS_URL: expected redis://host:port[/db]\n");
        return 2;
    }
    const char *rh = redis_url + 8;
    const char *at = strchr(rh, '@');
    if (at)
        rh = at + 1; /* no AUTH: the bench Redis has no password */
    size_t rhl = strcspn(rh, ":/");
    if (rhl == 0 || rhl >= sizeof rhost) {
        fprintf(stderr, "floor: REDIS_URL: bad host\n");
        return 2;
    }
    memcpy(rhost, rh, rhl);
    rhost[rhl] = 0;
    if (rh[rhl] == ':')
        rport = atoi(rh + rhl + 1);

    signal(SIGPIPE, SIG_IGN);
    F.loop = uv_default_loop();
    struct sockaddr_in addr;
    if (uv_ip4_addr(host, port, &addr) < 0) {
        fprintf(stderr, "floor: WSGATE_LISTEN: bad address %s\n", listen);
        return 2;
    }
    uv_tcp_init(F.loop, &F.listener);
    int rc = uv_tcp_bind(&F.listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&F.listener, 4096, on_connection);
    if (rc < 0) {
        fprintf(stderr, "floor: listen %s: %s\n", listen, uv_strerror(rc));
        return 1;
    }
    snprintf(F.rhost, sizeof F.rhost, "%s", rhost);
    F.rport = rport;
    F.pattern = pattern;
    uv_timer_init(F.loop, &F.retry);
    if (redis_start() < 0)
        return 1;

    uv_check_init(F.loop, &F.flush);
    uv_check_start(&F.flush, on_flush);
    uv_signal_init(F.loop, &F.sig_int);
    uv_signal_init(F.loop, &F.sig_term);
    uv_signal_start(&F.sig_int, on_signal, SIGINT);
    uv_signal_start(&F.sig_term, on_signal, SIGTERM);
    fprintf(stderr, "floor: listening on %s, PSUBSCRIBE %s at %s:%d\n", listen, pattern, rhost, rport);

    uv_run(F.loop, UV_RUN_DEFAULT);
    if (F.pending)
        batch_unref(F.pending);
    free(F.open);
    rc = uv_loop_close(F.loop);
    fprintf(stderr, "floor: stopped after %llu messages, %llu queued writes, %llu Redis connection losses%s\n",
            (unsigned long long)F.messages, (unsigned long long)F.writes_queued,
            (unsigned long long)F.redis_losses,
            rc == 0 ? "" : " (loop not empty)");
    return rc == 0 ? 0 : 1;
}
