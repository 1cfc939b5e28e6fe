/* wspub: publishes timestamped payloads (payload.h) to one channel, paced at R msg/s or as fast as a bounded
 * window allows, either with Redis PUBLISH (hiredis, pipelined) or with HTTP POST to an Nchan publisher
 * location (keep-alive, pipelined). Loopback only; bounded in count and time.
 *
 *   wspub --redis redis://127.0.0.1:6379 --channel broadcast:foo --rate 100 --duration 10
 *   wspub --http http://127.0.0.1:8080/pub/foo --unpaced --duration 5 --probe ws://127.0.0.1:8080/ws/foo
 *   wspub --redis redis://127.0.0.1:6379 --channel broadcast:foo --flood --duration 5
 *
 * With --probe, the unpaced window also counts messages not yet seen by four WebSocket subscribers of its own
 * (through the target), so that the publisher runs at the speed of the target's fan-out instead of piling up
 * a backlog. With --go-stdin, two probes subscribe at once and two only after a line on stdin: the
 * subscribers under test, connected in between, lie between them in whatever order the target serves them,
 * and with several workers the probes are likely to land on more than one.
 * With --flood (Redis only) there is no window at all: PUBLISH commands are written, pipelined, as fast as Redis
 * reads them (non-blocking writes, replies read as they come), whatever the subscribers do: the gateway may fall
 * behind and build a backlog (the overload scenario of scripts/bench).
 * With --command SPUBLISH the Redis messages go out as sharded publishes (Redis Cluster, sharded pub/sub: point
 * --redis at the master that owns the channel's slot). With --command XADD each message is an entry of the
 * stream named by --channel, `XADD <channel> MAXLEN ~ <--maxlen> * payload <payload>` (wsgate's stream channels),
 * in every mode; its reply is the entry's id, not a count of receivers, so zero_receivers is "-".
 * One key=value line on stdout ("wspub mode=... sent=..."), a human summary on stderr. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "payload.h"

#define MAX_SIZE 65536
#define MAX_COUNT 100000000ull
#define BATCH 64 /* messages written with one write() in unpaced and flood mode */
#define PROBES 4 /* half subscribe before the subscribers under test, half after */

/* A WebSocket subscriber of the publisher's own: the highest sequence number it has seen. */
typedef struct probe {
    int fd;
    bool is_open;
    char *in;
    size_t in_len;
    uint64_t seen; /* highest sequence number seen + 1 */
    uint64_t msgs;
} probe_t;

typedef struct pub {
    /* options */
    bool is_http;
    bool is_unpaced;
    bool is_flood;
    double rate;
    double duration;
    double drain;
    uint64_t count;
    uint32_t window;
    size_t size;
    const char *channel;
    const char *command; /* PUBLISH (default), SPUBLISH or XADD */
    bool is_xadd;
    uint64_t maxlen; /* XADD: MAXLEN ~ this */
    char host[64];
    int port;
    char path[1024];
    char probe_host_port[64];
    char probe_path[1024];
    bool has_probe;
    bool is_go_stdin;

    /* Redis */
    redisContext *rc;
    /* HTTP */
    int hfd;
    char *hin;
    size_t hin_len;
    probe_t probes[PROBES];

    char *out;
    size_t out_len, out_cap;
    uint64_t sent, acked, errors, zero_receivers;
    uint64_t t_start, t_end_send, t_end;
    const char *err;
} pub_t;

static double secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

static int parse_host_port(const char *s, size_t len, char *host, size_t host_cap, int *port, int def_port)
{
    const char *colon = memchr(s, ':', len);
    size_t hl = colon ? (size_t)(colon - s) : len;
    if (hl == 0 || hl >= host_cap)
        return -EINVAL;
    memcpy(host, s, hl);
    host[hl] = 0;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, host_cap, "127.0.0.1");
    *port = colon ? atoi(colon + 1) : def_port;
    struct in_addr a;
    if (*port <= 0 || *port > 65535 || inet_pton(AF_INET, host, &a) != 1)
        return -EINVAL;
    if ((ntohl(a.s_addr) >> 24) != 127)
        return -EPERM; /* a load generator talks to this machine only */
    return 0;
}

/* scheme://host:port/path -> host, port, path ("/" when absent). */
static int parse_url(const char *url, const char *scheme, char *host, size_t host_cap, int *port, char *path,
                     size_t path_cap, int def_port)
{
    size_t sl = strlen(scheme);
    if (strncmp(url, scheme, sl) != 0)
        return -EINVAL;
    const char *h = url + sl;
    const char *slash = strchr(h, '/');
    size_t hp = slash ? (size_t)(slash - h) : strlen(h);
    int rc = parse_host_port(h, hp, host, host_cap, port, def_port);
    if (rc < 0)
        return rc;
    if (path) {
        const char *p = slash ? slash : "/";
        if (strlen(p) >= path_cap)
            return -EINVAL;
        strcpy(path, p);
    }
    return 0;
}

static int tcp_connect(const char *host, int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct timeval tv = {5, 0}; /* no write or connect waits longer than this */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static bool write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static void out_reserve(pub_t *P, size_t more)
{
    if (P->out_len + more <= P->out_cap)
        return;
    size_t cap = P->out_cap ? P->out_cap : 4096;
    while (cap < P->out_len + more)
        cap *= 2;
    P->out = realloc(P->out, cap);
    if (!P->out)
        abort();
    P->out_cap = cap;
}

/* ---- probe WebSocket ---- */

static int probe_open(pub_t *P, probe_t *pr)
{
    char hostbuf[64];
    int port;
    const char *hp = P->probe_host_port;
    if (parse_host_port(hp, strlen(hp), hostbuf, sizeof hostbuf, &port, 80) < 0)
        return -EINVAL;
    pr->fd = tcp_connect(hostbuf, port);
    if (pr->fd < 0)
        return pr->fd;
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: d3NwdWItcHJvYmUta2V5IQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     P->probe_path, P->probe_host_port);
    if (!write_all(pr->fd, req, (size_t)n))
        return -EIO;
    pr->in = malloc(MAX_SIZE + 64);
    if (!pr->in)
        abort();
    /* read the head synchronously, bounded by a 5 s poll */
    uint64_t deadline = bench_now_ns() + 5000000000ull;
    while (bench_now_ns() < deadline) {
        struct pollfd pf = {pr->fd, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t r = read(pr->fd, pr->in + pr->in_len, MAX_SIZE - pr->in_len);
        if (r <= 0)
            return -ECONNRESET;
        pr->in_len += (size_t)r;
        char *end = memmem(pr->in, pr->in_len, "\r\n\r\n", 4);
        if (!end)
            continue;
        if (pr->in_len < 12 || memcmp(pr->in, "HTTP/1.1 101", 12) != 0)
            return -EPROTO;
        size_t head = (size_t)(end - pr->in) + 4;
        memmove(pr->in, pr->in + head, pr->in_len - head);
        pr->in_len -= head;
        pr->is_open = true;
        return 0;
    }
    return -ETIMEDOUT;
}

/* Parses every complete frame in the probe's buffer. */
static void probe_parse(probe_t *pr)
{
    size_t off = 0;
    while (pr->in_len - off >= 2) {
        const uint8_t *h = (const uint8_t *)pr->in + off;
        size_t avail = pr->in_len - off;
        uint64_t plen = h[1] & 0x7f;
        size_t hl = 2;
        if (plen == 126) {
            if (avail < 4)
                break;
            plen = ((uint64_t)h[2] << 8) | h[3];
            hl = 4;
        } else if (plen == 127) {
            if (avail < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = (plen << 8) | h[2 + i];
            hl = 10;
        }
        if (plen > MAX_SIZE) {
            pr->is_open = false; /* not ours to measure: give up on this probe */
            return;
        }
        if (avail < hl + plen)
            break;
        uint8_t op = h[0] & 0x0f;
        uint64_t ns;
        uint32_t seq;
        if ((op == 1 || op == 2) && bench_payload_read((const char *)h + hl, (size_t)plen, &ns, &seq)) {
            pr->msgs++;
            if ((uint64_t)seq + 1 > pr->seen)
                pr->seen = (uint64_t)seq + 1;
        }
        off += hl + (size_t)plen;
    }
    memmove(pr->in, pr->in + off, pr->in_len - off);
    pr->in_len -= off;
}

static void probe_read(probe_t *pr)
{
    ssize_t r = read(pr->fd, pr->in + pr->in_len, MAX_SIZE + 64 - pr->in_len);
    if (r <= 0) {
        pr->is_open = false;
        return;
    }
    pr->in_len += (size_t)r;
    probe_parse(pr);
}

/* The lowest count seen by an open probe; false when no probe is open. */
static bool probes_seen(const pub_t *P, uint64_t *seen)
{
    bool any = false;
    for (int i = 0; i < PROBES; i++) {
        const probe_t *pr = &P->probes[i];
        if (pr->is_open && (!any || pr->seen < *seen)) {
            *seen = pr->seen;
            any = true;
        }
    }
    return any;
}

/* ---- Redis ---- */

static void redis_read(pub_t *P)
{
    if (redisBufferRead(P->rc) != REDIS_OK) {
        P->err = P->rc->errstr[0] ? P->rc->errstr : "redis read error";
        return;
    }
    void *rep;
    while (redisGetReplyFromReader(P->rc, &rep) == REDIS_OK && rep) {
        redisReply *r = rep;
        P->acked++;
        if (r->type == REDIS_REPLY_ERROR)
            P->errors++;
        else if (P->is_xadd)
            P->errors += r->type != REDIS_REPLY_STRING; /* the new entry's id */
        else if (r->type == REDIS_REPLY_INTEGER && r->integer == 0)
            P->zero_receivers++;
        freeReplyObject(r);
    }
}

/* ---- HTTP ---- */

/* Consumes complete responses from the input buffer. */
static void http_parse(pub_t *P)
{
    size_t off = 0;
    for (;;) {
        char *base = P->hin + off;
        size_t avail = P->hin_len - off;
        char *end = memmem(base, avail, "\r\n\r\n", 4);
        if (!end)
            break;
        size_t head = (size_t)(end - base) + 4;
        size_t body = 0;
        bool is_chunked = false;
        for (char *line = base; line < end;) {
            char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
            if (!eol)
                break;
            if (strncasecmp(line, "content-length:", 15) == 0)
                body = strtoul(line + 15, NULL, 10);
            else if (strncasecmp(line, "transfer-encoding:", 18) == 0 &&
                     memmem(line, (size_t)(eol - line), "chunked", 7))
                is_chunked = true;
            line = eol + 2;
        }
        size_t total = head + body;
        if (is_chunked) {
            /* chunks until the zero-size one */
            size_t p = head;
            for (;;) {
                char *ce = memmem(base + p, avail > p ? avail - p : 0, "\r\n", 2);
                if (!ce)
                    goto Incomplete;
                size_t sz = strtoul(base + p, NULL, 16);
                p = (size_t)(ce - base) + 2 + sz + 2;
                if (p > avail)
                    goto Incomplete;
                if (sz == 0)
                    break;
            }
            total = p;
        }
        if (total > avail)
            break;
        int status = avail >= 12 ? atoi(base + 9) : 0;
        P->acked++;
        if (status < 200 || status > 299)
            P->errors++;
        off += total;
    }
Incomplete:
    memmove(P->hin, P->hin + off, P->hin_len - off);
    P->hin_len -= off;
}

static void http_read(pub_t *P)
{
    if (P->hin_len == MAX_SIZE) {
        P->err = "HTTP response too large";
        return;
    }
    ssize_t r = read(P->hfd, P->hin + P->hin_len, MAX_SIZE - P->hin_len);
    if (r <= 0) {
        P->err = "HTTP publisher connection closed";
        return;
    }
    P->hin_len += (size_t)r;
    http_parse(P);
}

/* ---- sending ---- */

static void append_message(pub_t *P)
{
    char payload[MAX_SIZE];
    bench_payload_write(payload, P->size, bench_now_ns(), (uint32_t)P->sent);
    if (P->is_http) {
        char head[1200];
        int n =
            snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: text/plain\r\nAccept: text/plain\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     P->path, P->host, P->port, P->size);
        out_reserve(P, (size_t)n + P->size);
        memcpy(P->out + P->out_len, head, (size_t)n);
        memcpy(P->out + P->out_len + (size_t)n, payload, P->size);
        P->out_len += (size_t)n + P->size;
    } else {
        char *cmd;
        int n = P->is_xadd ? redisFormatCommand(&cmd, "XADD %s MAXLEN ~ %llu * payload %b", P->channel,
                                                (unsigned long long)P->maxlen, payload, P->size)
                           : redisFormatCommand(&cmd, "%s %s %b", P->command, P->channel, payload, P->size);
        if (n < 0)
            abort();
        out_reserve(P, (size_t)n);
        memcpy(P->out + P->out_len, cmd, (size_t)n);
        P->out_len += (size_t)n;
        free(cmd);
    }
    P->sent++;
}

static void flush_out(pub_t *P)
{
    if (P->out_len == 0)
        return;
    int fd = P->is_http ? P->hfd : P->rc->fd;
    if (!write_all(fd, P->out, P->out_len))
        P->err = "write to the publisher connection failed or timed out";
    P->out_len = 0;
}

/* Waits for input on the publisher connection and the probe up to `deadline` (CLOCK_MONOTONIC ns) and handles
 * what arrives; returns after the first batch of input or at the deadline. */
static void wait_input(pub_t *P, uint64_t deadline)
{
    uint64_t now = bench_now_ns();
    struct timespec ts = {0, 0};
    if (deadline > now) {
        uint64_t d = deadline - now;
        ts.tv_sec = (time_t)(d / 1000000000u);
        ts.tv_nsec = (long)(d % 1000000000u);
    }
    struct pollfd pf[1 + PROBES];
    probe_t *who[1 + PROBES];
    int nf = 0;
    pf[nf++] = (struct pollfd){P->is_http ? P->hfd : P->rc->fd, POLLIN, 0};
    for (int i = 0; i < PROBES; i++) {
        if (P->probes[i].is_open) {
            who[nf] = &P->probes[i];
            pf[nf++] = (struct pollfd){P->probes[i].fd, POLLIN, 0};
        }
    }
    int r = ppoll(pf, (nfds_t)nf, &ts, NULL);
    if (r <= 0)
        return;
    if (pf[0].revents) {
        if (P->is_http)
            http_read(P);
        else
            redis_read(P);
    }
    for (int i = 1; i < nf; i++)
        if (pf[i].revents)
            probe_read(who[i]);
}

static uint64_t in_flight(const pub_t *P)
{
    uint64_t f = P->sent - P->acked, seen = 0;
    if (probes_seen(P, &seen) && P->sent - seen > f)
        f = P->sent - seen;
    return f;
}

static void run_paced(pub_t *P)
{
    uint64_t period = (uint64_t)(1e9 / P->rate);
    for (uint64_t i = 0; i < P->count && !P->err; i++) {
        uint64_t deadline = P->t_start + i * period;
        while (!P->err && bench_now_ns() < deadline)
            wait_input(P, deadline);
        append_message(P);
        flush_out(P);
    }
}

static void run_unpaced(pub_t *P)
{
    uint64_t end = P->t_start + (uint64_t)(P->duration * 1e9);
    while (!P->err && P->sent < P->count) {
        uint64_t now = bench_now_ns();
        if (now >= end)
            break;
        uint64_t f = in_flight(P);
        if (f < P->window) {
            uint64_t k = P->window - f;
            if (k > BATCH)
                k = BATCH;
            if (k > P->count - P->sent)
                k = P->count - P->sent;
            for (uint64_t i = 0; i < k; i++)
                append_message(P);
            flush_out(P);
            wait_input(P, now); /* take what is there without waiting */
        } else {
            wait_input(P, end);
        }
    }
}

/* --flood: no window, no probe. Batches of BATCH PUBLISH commands are written with non-blocking writes as fast
 * as the Redis connection takes them; replies are read whenever they are there (so that they do not pile up in
 * Redis). Stops appending at the end of --duration, then finishes the batch it has begun (bounded by --drain),
 * so that every message counted as sent was written whole. */
static void run_flood(pub_t *P)
{
    uint64_t end = P->t_start + (uint64_t)(P->duration * 1e9);
    uint64_t finish_by = end + (uint64_t)(P->drain * 1e9);
    int fd = P->rc->fd;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        P->err = "cannot make the Redis connection non-blocking";
        return;
    }
    P->rc->flags &= ~REDIS_BLOCK; /* redisBufferRead: EAGAIN means "nothing yet", not an error */
    size_t off = 0;
    while (!P->err) {
        uint64_t now = bench_now_ns();
        if (off == P->out_len) {
            off = P->out_len = 0;
            if (now >= end || P->sent >= P->count)
                break;
            for (int i = 0; i < BATCH && P->sent < P->count; i++)
                append_message(P);
        }
        ssize_t n = write(fd, P->out + off, P->out_len - off);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            P->err = "write to Redis failed";
            break;
        }
        /* replies that are there; when the socket is full, wait until it takes more (or until the end) */
        bool is_blocked = off < P->out_len;
        uint64_t limit = now < end ? end : finish_by;
        if (is_blocked && now >= finish_by) {
            P->err = "Redis took no more bytes before the end of --drain";
            break;
        }
        struct pollfd pf = {fd, (short)(POLLIN | (is_blocked ? POLLOUT : 0)), 0};
        struct timespec ts = {0, 0};
        if (is_blocked && limit > now) {
            ts.tv_sec = (time_t)((limit - now) / 1000000000u);
            ts.tv_nsec = (long)((limit - now) % 1000000000u);
        }
        if (ppoll(&pf, 1, &ts, NULL) > 0 && (pf.revents & (POLLIN | POLLERR | POLLHUP)))
            redis_read(P);
    }
    P->out_len = 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: wspub (--redis redis://127.0.0.1:PORT --channel NAME | --http "
            "http://127.0.0.1:PORT/pub/NAME)\n"
            "             (--rate R --duration S | --unpaced --duration S [--window W] [--probe ws://...]\n"
            "              | --flood --duration S)\n"
            "  --count N    at most N messages (paced: default R*S)\n"
            "  --size B     payload bytes (default 64, at least %d)\n"
            "  --window W   unpaced: messages unanswered (and not yet seen by a probe) at most (default 64)\n"
            "  --flood      no window (Redis only): PUBLISH as fast as Redis reads, pipelined, for --duration S\n"
            "  --command C  Redis command of each message: PUBLISH (default), SPUBLISH (sharded pub/sub) or\n"
            "               XADD (an entry of the stream --channel: XADD <channel> MAXLEN ~ M * payload <msg>)\n"
            "  --maxlen M   XADD: trim the stream to about M entries (default 1000)\n"
            "  --go-stdin   connect (and half the probes), print 'wspub ready', wait for a line on stdin,\n"
            "               then the other probes and the first message\n"
            "  --drain S    after sending, wait up to S seconds for replies and the probe (default 10)\n"
            "Loopback only.\n",
            BENCH_PAYLOAD_MIN);
}

int main(int argc, char **argv)
{
    static pub_t pub;
    pub_t *P = &pub;
    P->size = 64;
    P->window = 64;
    P->drain = 10;
    P->hfd = -1;
    P->command = "PUBLISH";
    P->maxlen = 1000;
    for (int i = 0; i < PROBES; i++)
        P->probes[i].fd = -1;
    const char *redis_url = NULL, *http_url = NULL, *probe_url = NULL;
    bool has_count = false;
    enum {
        O_REDIS = 256,
        O_CHAN,
        O_HTTP,
        O_RATE,
        O_DUR,
        O_UNPACED,
        O_FLOOD,
        O_COUNT,
        O_SIZE,
        O_WIN,
        O_PROBE,
        O_DRAIN,
        O_GO,
        O_CMD,
        O_MAXLEN
    };
    static const struct option opts[] = {{"redis", required_argument, 0, O_REDIS},
                                         {"channel", required_argument, 0, O_CHAN},
                                         {"http", required_argument, 0, O_HTTP},
                                         {"rate", required_argument, 0, O_RATE},
                                         {"duration", required_argument, 0, O_DUR},
                                         {"unpaced", no_argument, 0, O_UNPACED},
                                         {"flood", no_argument, 0, O_FLOOD},
                                         {"count", required_argument, 0, O_COUNT},
                                         {"size", required_argument, 0, O_SIZE},
                                         {"window", required_argument, 0, O_WIN},
                                         {"probe", required_argument, 0, O_PROBE},
                                         {"drain", required_argument, 0, O_DRAIN},
                                         {"go-stdin", no_argument, 0, O_GO},
                                         {"command", required_argument, 0, O_CMD},
                                         {"maxlen", required_argument, 0, O_MAXLEN},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case O_REDIS:
            redis_url = optarg;
            break;
        case O_CHAN:
            P->channel = optarg;
            break;
        case O_HTTP:
            http_url = optarg;
            break;
        case O_RATE:
            P->rate = strtod(optarg, NULL);
            break;
        case O_DUR:
            P->duration = strtod(optarg, NULL);
            break;
        case O_UNPACED:
            P->is_unpaced = true;
            break;
        case O_FLOOD:
            P->is_unpaced = P->is_flood = true;
            break;
        case O_COUNT:
            P->count = strtoull(optarg, NULL, 10);
            has_count = true;
            break;
        case O_SIZE:
            P->size = strtoul(optarg, NULL, 10);
            break;
        case O_WIN:
            P->window = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case O_PROBE:
            probe_url = optarg;
            break;
        case O_DRAIN:
            P->drain = strtod(optarg, NULL);
            break;
        case O_GO:
            P->is_go_stdin = true;
            break;
        case O_CMD:
            P->command = optarg;
            break;
        case O_MAXLEN:
            P->maxlen = strtoull(optarg, NULL, 10);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if ((!redis_url == !http_url) || (redis_url && !P->channel) || P->duration <= 0 || P->duration > 3600 ||
        P->size < BENCH_PAYLOAD_MIN || P->size > MAX_SIZE || P->window == 0 || P->drain < 0 ||
        P->drain > 600 || (!P->is_unpaced && (P->rate <= 0 || P->rate > 1e6))) {
        usage(stderr);
        return 2;
    }
    P->is_xadd = strcasecmp(P->command, "XADD") == 0;
    if (strcasecmp(P->command, "PUBLISH") != 0 && strcasecmp(P->command, "SPUBLISH") != 0 && !P->is_xadd) {
        fprintf(stderr, "wspub: --command must be PUBLISH, SPUBLISH or XADD\n");
        return 2;
    }
    if (P->is_xadd && (P->maxlen == 0 || P->maxlen > 1000000000)) {
        fprintf(stderr, "wspub: --maxlen must be 1..1000000000\n");
        return 2;
    }
    if (P->is_flood && (http_url || probe_url)) {
        fprintf(stderr, "wspub: --flood publishes to Redis only, without --probe\n");
        return 2;
    }
    if (!has_count)
        P->count = P->is_unpaced ? MAX_COUNT : (uint64_t)(P->rate * P->duration + 0.5);
    if (P->count > MAX_COUNT)
        P->count = MAX_COUNT;
    P->is_http = http_url != NULL;
    int rc = P->is_http ? parse_url(http_url, "http://", P->host, sizeof P->host, &P->port, P->path,
                                    sizeof P->path, 80)
                        : parse_url(redis_url, "redis://", P->host, sizeof P->host, &P->port, NULL, 0, 6379);
    if (rc < 0) {
        fprintf(stderr, "wspub: %s: %s\n", P->is_http ? http_url : redis_url,
                rc == -EPERM ? "only loopback targets (127.0.0.0/8)" : "bad URL");
        return 2;
    }
    if (probe_url) {
        char ph[64];
        int pp;
        rc = parse_url(probe_url, "ws://", ph, sizeof ph, &pp, P->probe_path, sizeof P->probe_path, 80);
        const char *h = probe_url + 5;
        size_t hl = strcspn(h, "/");
        if (rc < 0 || hl >= sizeof P->probe_host_port) {
            fprintf(stderr, "wspub: --probe %s: %s\n", probe_url,
                    rc == -EPERM ? "only loopback targets (127.0.0.0/8)" : "bad URL");
            return 2;
        }
        memcpy(P->probe_host_port, h, hl);
        P->probe_host_port[hl] = 0;
        P->has_probe = true;
    }

    if (P->is_http) {
        P->hfd = tcp_connect(P->host, P->port);
        if (P->hfd < 0) {
            fprintf(stderr, "wspub: connect %s:%d: %s\n", P->host, P->port, strerror(-P->hfd));
            return 1;
        }
        P->hin = malloc(MAX_SIZE);
        if (!P->hin)
            abort();
    } else {
        struct timeval tv = {5, 0};
        P->rc = redisConnectWithTimeout(P->host, P->port, tv);
        if (!P->rc || P->rc->err) {
            fprintf(stderr, "wspub: redis %s:%d: %s\n", P->host, P->port,
                    P->rc ? P->rc->errstr : "out of memory");
            return 1;
        }
        redisSetTimeout(P->rc, tv);
    }
    for (int i = 0; i < PROBES; i++) {
        if (i == PROBES / 2 && P->is_go_stdin) {
            /* the subscribers under test connect now; a line on stdin says they are in */
            printf("wspub ready\n"); /* a line of its own before the result line */
            fflush(stdout);
            char line[64];
            if (!fgets(line, sizeof line, stdin))
                fprintf(stderr, "wspub: stdin closed: starting\n");
        }
        if (!P->has_probe)
            continue;
        rc = probe_open(P, &P->probes[i]);
        if (rc < 0)
            fprintf(stderr, "wspub: probe %d %s: %s (running without it)\n", i + 1, probe_url, strerror(-rc));
    }

    P->t_start = bench_now_ns();
    if (P->is_flood)
        run_flood(P);
    else if (P->is_unpaced)
        run_unpaced(P);
    else
        run_paced(P);
    P->t_end_send = bench_now_ns();
    /* drain: every reply, and the probe up to the last message */
    uint64_t drain_end = P->t_end_send + (uint64_t)(P->drain * 1e9);
    uint64_t seen = 0;
    while (!P->err && bench_now_ns() < drain_end &&
           (P->acked < P->sent || (probes_seen(P, &seen) && seen < P->sent)))
        wait_input(P, drain_end);
    int probes_open = 0;
    uint64_t probe_msgs = 0;
    for (int i = 0; i < PROBES; i++) {
        probes_open += P->probes[i].is_open;
        probe_msgs += P->probes[i].msgs;
    }
    if (!probes_seen(P, &seen))
        seen = 0;
    P->t_end = bench_now_ns();

    double send_s = secs(P->t_end_send - P->t_start);
    char zero[24];
    snprintf(zero, sizeof zero, "%" PRIu64, P->zero_receivers);
    printf("wspub mode=%s via=%s command=%s sent=%" PRIu64 " acked=%" PRIu64 " errors=%" PRIu64
           " zero_receivers=%s send_s=%.3f rate=%.0f probes=%d probe_msgs=%" PRIu64
           " probe_seen=%" PRIu64 " drain_s=%.3f error=%s\n",
           P->is_flood ? "flood" : P->is_unpaced ? "unpaced" : "paced", P->is_http ? "http" : "redis",
           P->is_http ? "POST" : P->is_xadd ? "XADD" : P->command, P->sent, P->acked, P->errors,
           P->is_xadd ? "-" : zero, send_s, send_s > 0 ? (double)P->sent / send_s : 0.0, probes_open, probe_msgs,
           seen, secs(P->t_end - P->t_end_send), P->err ? "1" : "0");
    fflush(stdout);
    fprintf(stderr,
            "wspub: %" PRIu64 " messages of %zu bytes in %.2fs (%.0f msg/s) via %s, %" PRIu64
            " answered, %" PRIu64 " errors%s%s\n",
            P->sent, P->size, send_s, send_s > 0 ? (double)P->sent / send_s : 0.0,
            P->is_http ? "HTTP" : "Redis", P->acked, P->errors, P->err ? ": " : "", P->err ? P->err : "");
    if (P->zero_receivers)
        fprintf(stderr, "wspub: %" PRIu64 " PUBLISH replies said nobody was subscribed\n", P->zero_receivers);

    bool is_ok = !P->err && P->acked == P->sent && P->errors == 0;
    if (P->rc)
        redisFree(P->rc);
    if (P->hfd >= 0)
        close(P->hfd);
    for (int i = 0; i < PROBES; i++) {
        if (P->probes[i].fd >= 0)
            close(P->probes[i].fd);
        free(P->probes[i].in);
    }
    free(P->hin);
    free(P->out);
    return is_ok ? 0 : 1;
}
