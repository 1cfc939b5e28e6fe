/* wsload: opens N WebSocket connections to one loopback URL and measures what arrives on them (latency from
 * the timestamp in each payload, messages per connection, losses), with its own CPU time so that a saturated
 * client shows. Bounded in connections and time; stops by itself.
 *
 *   wsload --url ws://127.0.0.1:8080/ws/foo?subscribe-broadcast -n 1000 --idle --hold 5
 *   wsload --url ... -n 1000 --recv --expect 1000 --duration 30 [--control-stdin] [--ready-file F] [--drain S]
 *
 * Connections the server ends while the run goes on are counted by how they ended: close frame (by its status
 * code; 1005 when it had none), EOF without a close frame, reset, other read error.
 * One key=value line on stdout ("wsload mode=... p50_us=..."), a human summary on stderr. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <uv.h>

#include "payload.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_CONNS 15000u /* ~19,000 open files per process on the bench machine */
#define HS_CAP 4096      /* largest handshake response we accept */
#define MSG_CAP 32       /* bytes of a message kept: the timestamp head */
#define CTL_CAP 125      /* a control frame's whole payload */
#define TICK_MS 10
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* Latency histogram: log-linear buckets in ns, 64 per power of two (<= 1.6% relative error), up to 2^40 ns.
 */
#define HIST_SUB 64
#define HIST_SUB_BITS 6
#define HIST_ROWS 36
#define HIST_SIZE (HIST_SUB * HIST_ROWS)

enum conn_state { ST_NEW, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSED };
enum phase { PH_CONNECTING, PH_RUNNING, PH_FINISHING };
enum fail_kind { FAIL_CONNECT, FAIL_STATUS, FAIL_ACCEPT, FAIL_CLOSED, FAIL_TIMEOUT, FAIL_KINDS };
static const char *const fail_names[FAIL_KINDS] = {"connect", "status", "accept", "closed", "timeout"};

/* How an open connection ended before the end of the run: a close frame's status code (below 5000; 1005 when
 * the frame had none, as RFC 6455 says), or one of these past the code range ("protocol": wsload gave up on a
 * bad control frame, the only way not counted as closed by the server). */
#define CODE_MAX 5000u
enum end_kind { END_EOF = CODE_MAX, END_RESET, END_ERROR, END_PROTOCOL, END_KINDS };
static const char *const end_names[END_KINDS - CODE_MAX] = {"eof", "reset", "error", "protocol"};

struct load;

typedef struct conn {
    uv_tcp_t tcp; /* embedded; the conns array outlives the loop */
    uv_connect_t connect_req;
    struct load *load;
    uint32_t index;
    uint8_t state;
    bool is_init;
    bool was_open;
    bool was_closed; /* ended by the server before the end of the run */
    bool is_complete;
    /* handshake response, only until the 101 is parsed */
    char *hs;
    uint16_t hs_len;
    /* frame parser: header bytes, then payload; the head of a message and a control payload are kept */
    uint8_t hdr[14];
    uint8_t hdr_len;
    uint8_t hdr_need;
    uint8_t opcode;
    bool is_fin;
    bool in_payload;
    bool in_message;
    uint8_t msg_len;
    uint8_t ctl_len;
    uint64_t payload_left;
    char msg[MSG_CAP];
    char ctl[CTL_CAP];
    uint32_t received;
    uint32_t next_seq;
} conn_t;

typedef struct load {
    uv_loop_t *loop;
    uv_timer_t tick;
    uv_signal_t sig_int, sig_term;
    uv_pipe_t ctl_pipe;
    bool has_ctl_pipe;
    char ctl_buf[256];
    size_t ctl_len;

    /* options */
    const char *url;
    struct sockaddr_in dst;
    char host_port[64];
    char *path;
    uint32_t n;
    uint32_t sources;
    double rate;
    uint32_t inflight_max;
    double connect_timeout;
    bool is_idle;
    double hold;
    double duration;
    double quiet;
    double drain;
    bool has_expect;
    uint64_t expect;
    const char *ready_file;
    int rcvbuf; /* SO_RCVBUF of each connection; 0 = the kernel's autotuning */
    bool is_quiet_armed;
    uint64_t key_seed;

    conn_t *conns;
    enum phase phase;
    uint32_t started, opened, failed, inflight, closed_early, server_closes, complete;
    uint32_t fails[FAIL_KINDS];
    uint32_t closed;            /* ended by the server (close frame, EOF, reset, error) before the end */
    uint32_t ends[END_KINDS];   /* by close code or end_kind */
    uint64_t lost_on_closed;    /* expected messages missing on those connections (filled in by report) */
    int last_bad_status;
    uint64_t t_start, t_ready, t_end, t_first_msg, t_last_msg, t_quiet_from;
    bool timed_out;
    const char *end_reason;

    uint64_t total, untimed, order_errors, control_frames, protocol_errors, pongs_sent;
    uint64_t hist[HIST_SIZE];
    uint64_t lat_min, lat_max, lat_sum;
    uint64_t mask_state;
} load_t;

static void finish(load_t *L, const char *reason);

static double secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

/* ---- histogram ---- */

static unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    int e = 63 - __builtin_clzll(v);
    unsigned row = (unsigned)(e - HIST_SUB_BITS + 1);
    if (row >= HIST_ROWS)
        return HIST_SIZE - 1;
    unsigned top = (unsigned)(v >> (e - HIST_SUB_BITS)); /* in [64, 128) */
    return row * HIST_SUB + (top - HIST_SUB);
}

/* Highest value that lands in bucket i. */
static uint64_t hist_upper(unsigned i)
{
    unsigned row = i / HIST_SUB, col = i % HIST_SUB;
    if (row == 0)
        return col;
    uint64_t lo = (uint64_t)(HIST_SUB + col) << (row - 1);
    return lo + ((uint64_t)1 << (row - 1)) - 1;
}

static uint64_t hist_percentile(const load_t *L, double q)
{
    if (L->total == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)L->total + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_SIZE; i++) {
        seen += L->hist[i];
        if (seen >= rank) {
            uint64_t v = hist_upper(i);
            return v > L->lat_max ? L->lat_max : v;
        }
    }
    return L->lat_max;
}

/* ---- connections ---- */

static void on_close(uv_handle_t *h)
{
    (void)h; /* the conns array is freed after the loop */
}

static void conn_close(conn_t *c)
{
    if (c->is_init && !uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_close);
    free(c->hs);
    c->hs = NULL;
    c->state = ST_CLOSED;
}

/* A connection that never got to OPEN. */
static void conn_fail(conn_t *c, enum fail_kind kind)
{
    load_t *L = c->load;
    if (c->state != ST_CONNECTING && c->state != ST_HANDSHAKE)
        return;
    L->inflight--;
    L->failed++;
    L->fails[kind]++;
    conn_close(c);
}

/* A connection that was OPEN and is closed by the server or by an error before the end; `how` is a close code
 * or an end_kind. */
static void conn_lost(conn_t *c, unsigned how)
{
    load_t *L = c->load;
    if (c->state != ST_OPEN)
        return;
    if (L->phase != PH_FINISHING) {
        L->closed_early++;
        if (how != END_PROTOCOL)
            L->closed++;
        L->ends[how < END_KINDS ? how : END_ERROR]++;
        c->was_closed = true;
    }
    if (c->is_complete) {
        c->is_complete = false; /* "complete" counts the connections still open */
        L->complete--;
    }
    conn_close(c);
}

static void make_key(const load_t *L, uint32_t index, char out[25])
{
    unsigned char raw[16];
    uint64_t a = L->key_seed ^ ((uint64_t)index * 0x9E3779B97F4A7C15ull);
    uint64_t b = (a << 13) ^ (a >> 7) ^ index;
    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    EVP_EncodeBlock((unsigned char *)out, raw, 16);
}

static void expected_accept(const char key[25], char out[29])
{
    unsigned char digest[SHA_DIGEST_LENGTH];
    char buf[24 + sizeof WS_GUID];
    memcpy(buf, key, 24);
    memcpy(buf + 24, WS_GUID, sizeof WS_GUID - 1);
    SHA1((const unsigned char *)buf, 24 + sizeof WS_GUID - 1, digest);
    EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
}

typedef struct write_req {
    uv_write_t req;
    size_t len;
    char data[];
} write_req_t;

static void on_write_done(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows up as a read error */
    free(req);
}

static void conn_write(conn_t *c, const char *data, size_t len)
{
    write_req_t *w = malloc(sizeof *w + len);
    if (!w)
        abort();
    memcpy(w->data, data, len);
    w->len = len;
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write_done) < 0)
        free(w);
}

/* A masked pong carrying the ping's payload. */
static void send_pong(conn_t *c)
{
    load_t *L = c->load;
    char frame[2 + 4 + CTL_CAP];
    L->mask_state ^= L->mask_state << 13;
    L->mask_state ^= L->mask_state >> 7;
    L->mask_state ^= L->mask_state << 17;
    uint32_t mask = (uint32_t)L->mask_state;
    frame[0] = (char)0x8A;
    frame[1] = (char)(0x80 | c->ctl_len);
    memcpy(frame + 2, &mask, 4);
    for (unsigned i = 0; i < c->ctl_len; i++)
        frame[6 + i] = (char)(c->ctl[i] ^ ((const char *)&mask)[i & 3]);
    conn_write(c, frame, 6u + c->ctl_len);
    L->pongs_sent++;
}

static void count_message(conn_t *c, uint64_t now)
{
    load_t *L = c->load;
    uint64_t ns;
    uint32_t seq;
    if (!bench_payload_read(c->msg, c->msg_len, &ns, &seq)) {
        L->untimed++;
        return;
    }
    uint64_t lat = now > ns ? now - ns : 0;
    L->hist[hist_index(lat)]++;
    if (L->total == 0 || lat < L->lat_min)
        L->lat_min = lat;
    if (lat > L->lat_max)
        L->lat_max = lat;
    L->lat_sum += lat;
    if (L->total == 0)
        L->t_first_msg = now;
    L->t_last_msg = now;
    L->total++;
    if (seq != c->next_seq && c->received > 0)
        L->order_errors++;
    c->next_seq = seq + 1;
    c->received++;
    if (L->has_expect && !c->is_complete && c->received >= L->expect) {
        c->is_complete = true;
        L->complete++;
    }
}

/* A whole frame is in: act on it. Returns false when the connection was closed. */
static bool frame_done(conn_t *c, uint64_t now)
{
    load_t *L = c->load;
    uint8_t op = c->opcode;
    if (op >= 0x8) {
        L->control_frames++;
        if (op == 0x9) {
            send_pong(c);
        } else if (op == 0x8) {
            L->server_closes++;
            unsigned code = 1005; /* no status code in the frame */
            if (c->ctl_len >= 2)
                code = ((unsigned)(uint8_t)c->ctl[0] << 8) | (uint8_t)c->ctl[1];
            conn_lost(c, code < CODE_MAX ? code : END_ERROR); /* an invalid code is shown as it is */
            return false;
        }
        return true;
    }
    if (c->is_fin) {
        count_message(c, now);
        c->in_message = false;
        c->msg_len = 0;
    }
    return true;
}

/* Feeds server bytes through the frame parser. Server frames are unmasked; a mask is skipped and counted. */
static void conn_feed(conn_t *c, const char *p, size_t len, uint64_t now)
{
    load_t *L = c->load;
    while (len > 0 && c->state == ST_OPEN) {
        if (!c->in_payload) {
            if (c->hdr_need == 0)
                c->hdr_need = 2;
            while (len > 0 && c->hdr_len < c->hdr_need) {
                c->hdr[c->hdr_len++] = (uint8_t)*p++;
                len--;
                if (c->hdr_len == 2) {
                    uint8_t l7 = c->hdr[1] & 0x7f;
                    c->hdr_need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((c->hdr[1] & 0x80) ? 4 : 0);
                }
            }
            if (c->hdr_len < c->hdr_need)
                return;
            uint8_t l7 = c->hdr[1] & 0x7f;
            uint64_t plen = l7;
            if (l7 == 126) {
                plen = ((uint64_t)c->hdr[2] << 8) | c->hdr[3];
            } else if (l7 == 127) {
                plen = 0;
                for (int i = 0; i < 8; i++)
                    plen = (plen << 8) | c->hdr[2 + i];
            }
            if (c->hdr[1] & 0x80)
                L->protocol_errors++;
            c->is_fin = (c->hdr[0] & 0x80) != 0;
            uint8_t op = c->hdr[0] & 0x0f;
            c->opcode = op;
            if (op >= 0x8) {
                if (plen > CTL_CAP) {
                    L->protocol_errors++;
                    conn_lost(c, END_PROTOCOL);
                    return;
                }
                c->ctl_len = 0;
            } else if (op != 0x0) {
                if (c->in_message)
                    L->protocol_errors++;
                c->in_message = true;
                c->msg_len = 0;
            } else if (!c->in_message) {
                L->protocol_errors++;
            }
            c->hdr_len = 0;
            c->hdr_need = 0;
            c->payload_left = plen;
            c->in_payload = true;
        }
        size_t take = len < c->payload_left ? len : (size_t)c->payload_left;
        if (c->opcode >= 0x8) {
            memcpy(c->ctl + c->ctl_len, p, take);
            c->ctl_len = (uint8_t)(c->ctl_len + take);
        } else if (c->msg_len < MSG_CAP) {
            size_t room = (size_t)MSG_CAP - c->msg_len;
            size_t keep = room < take ? room : take;
            memcpy(c->msg + c->msg_len, p, keep);
            c->msg_len = (uint8_t)(c->msg_len + keep);
        }
        p += take;
        len -= take;
        c->payload_left -= take;
        if (c->payload_left == 0) {
            c->in_payload = false;
            if (!frame_done(c, now))
                return;
        }
    }
}

/* Looks for the end of the response head; on a complete head checks the status and the accept key. */
static void handshake_feed(conn_t *c, const char *p, size_t len, uint64_t now)
{
    load_t *L = c->load;
    if (!c->hs) {
        c->hs = malloc(HS_CAP);
        if (!c->hs)
            abort();
    }
    size_t room = HS_CAP - c->hs_len;
    size_t take = len < room ? len : room;
    memcpy(c->hs + c->hs_len, p, take);
    size_t old = c->hs_len;
    c->hs_len = (uint16_t)(c->hs_len + take);
    char *end = memmem(c->hs, c->hs_len, "\r\n\r\n", 4);
    if (!end) {
        if (c->hs_len == HS_CAP)
            conn_fail(c, FAIL_STATUS);
        return;
    }
    size_t head_len = (size_t)(end - c->hs) + 4;
    if (c->hs_len < 13 || memcmp(c->hs, "HTTP/1.1 101", 12) != 0) {
        if (c->hs_len >= 12)
            L->last_bad_status = atoi(c->hs + 9);
        conn_fail(c, FAIL_STATUS);
        return;
    }
    char key[25], want[29];
    make_key(L, c->index, key);
    expected_accept(key, want);
    bool is_ok = false;
    for (char *line = c->hs; line < end;) {
        char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        if (!eol)
            break;
        static const char name[] = "sec-websocket-accept:";
        if ((size_t)(eol - line) > sizeof name - 1 && strncasecmp(line, name, sizeof name - 1) == 0) {
            char *v = line + sizeof name - 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            char *ve = eol;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            is_ok = (size_t)(ve - v) == 28 && memcmp(v, want, 28) == 0;
        }
        line = eol + 2;
    }
    if (!is_ok) {
        conn_fail(c, FAIL_ACCEPT);
        return;
    }
    c->state = ST_OPEN;
    c->was_open = true;
    L->inflight--;
    L->opened++;
    /* bytes after the head (a first frame) came in this read: feed them from the caller's buffer */
    size_t used_from_this_read = head_len - old;
    free(c->hs);
    c->hs = NULL;
    c->hs_len = 0;
    if (used_from_this_read < len)
        conn_feed(c, p + used_from_this_read, len - used_from_this_read, now);
}

static char read_buf[256 * 1024];

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    /* One buffer for every connection: each read is consumed before the next alloc. */
    *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (c->state == ST_HANDSHAKE)
            conn_fail(c, FAIL_CLOSED);
        else
            conn_lost(c, nread == UV_EOF ? END_EOF : nread == UV_ECONNRESET ? END_RESET : END_ERROR);
        return;
    }
    uint64_t now = bench_now_ns();
    if (c->state == ST_HANDSHAKE)
        handshake_feed(c, buf->base, (size_t)nread, now);
    else if (c->state == ST_OPEN)
        conn_feed(c, buf->base, (size_t)nread, now);
}

static void on_connect(uv_connect_t *req, int status)
{
    conn_t *c = req->data;
    load_t *L = c->load;
    if (c->state != ST_CONNECTING)
        return; /* timed out and closed already */
    if (status < 0) {
        conn_fail(c, FAIL_CONNECT);
        return;
    }
    char key[25];
    make_key(L, c->index, key);
    char req_buf[2048];
    int n = snprintf(req_buf, sizeof req_buf,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     L->path, L->host_port, key);
    c->state = ST_HANDSHAKE;
    uv_tcp_nodelay(&c->tcp, 1);
    conn_write(c, req_buf, (size_t)n);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_fail(c, FAIL_CONNECT);
}

static void conn_start(load_t *L, uint32_t index)
{
    conn_t *c = &L->conns[index];
    c->load = L;
    c->index = index;
    c->state = ST_CONNECTING;
    L->inflight++;
    if (uv_tcp_init_ex(L->loop, &c->tcp, AF_INET) < 0) {
        c->state = ST_CONNECTING;
        conn_fail(c, FAIL_CONNECT);
        return;
    }
    c->is_init = true;
    c->tcp.data = c;
    c->connect_req.data = c;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
        int one = 1;
        /* the port is picked at connect time from the whole 4-tuple: more than 28k ports per source */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        /* Before connecting, so that the window scale fits it: every connection then holds at most this much
         * unread, and one loop turn reads about that much from each (libuv reads a socket until it is empty),
         * so all are read in turn instead of the first ones for seconds while the others wait. */
        if (L->rcvbuf > 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &L->rcvbuf, sizeof L->rcvbuf);
    }
    struct sockaddr_in src;
    memset(&src, 0, sizeof src);
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000001u + index % L->sources);
    if (uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0) < 0 ||
        uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&L->dst, on_connect) < 0)
        conn_fail(c, FAIL_CONNECT);
}

/* ---- phases ---- */

static void write_ready_file(load_t *L)
{
    if (!L->ready_file)
        return;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", L->ready_file);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "opened=%u failed=%u connect_s=%.3f\n", L->opened, L->failed, secs(L->t_ready - L->t_start));
    fclose(f);
    rename(tmp, L->ready_file);
}

static void go_ready(load_t *L)
{
    L->phase = PH_RUNNING;
    L->t_ready = bench_now_ns();
    fprintf(stderr, "wsload: ready opened=%u failed=%u in %.2fs\n", L->opened, L->failed,
            secs(L->t_ready - L->t_start));
    write_ready_file(L);
    if (L->opened == 0)
        finish(L, "no_connection");
}

static void arm_quiet(load_t *L)
{
    if (!L->is_quiet_armed) {
        L->is_quiet_armed = true;
        L->t_quiet_from = bench_now_ns();
    }
}

static void recount_complete(load_t *L)
{
    L->complete = 0;
    for (uint32_t i = 0; i < L->n; i++) {
        conn_t *c = &L->conns[i];
        c->is_complete = L->has_expect && c->state == ST_OPEN && c->received >= L->expect;
        L->complete += c->is_complete;
    }
}

static void on_tick(uv_timer_t *t)
{
    load_t *L = t->data;
    uint64_t now = bench_now_ns();
    if (L->phase == PH_CONNECTING) {
        double el = secs(now - L->t_start);
        uint64_t allowed = (uint64_t)(L->rate * el) + 1;
        while (L->started < L->n && L->started < allowed && L->inflight < L->inflight_max)
            conn_start(L, L->started++);
        if (el > L->connect_timeout) {
            for (uint32_t i = 0; i < L->started; i++)
                conn_fail(&L->conns[i], FAIL_TIMEOUT);
            L->failed += L->n - L->started;
            L->fails[FAIL_TIMEOUT] += L->n - L->started;
            L->started = L->n;
        }
        if (L->opened + L->failed >= L->n)
            go_ready(L);
        return;
    }
    if (L->phase != PH_RUNNING)
        return;
    double run = secs(now - L->t_ready);
    if (L->is_idle) {
        if (run >= L->hold)
            finish(L, "hold");
        return;
    }
    uint32_t alive = L->opened - L->closed_early;
    if (alive == 0) {
        finish(L, "all_closed");
    } else if (L->has_expect && L->complete >= alive) {
        finish(L, "complete");
    } else if (run >= L->duration) {
        L->timed_out = true;
        finish(L, "duration");
    } else if (L->is_quiet_armed) {
        uint64_t from = L->t_last_msg > L->t_quiet_from ? L->t_last_msg : L->t_quiet_from;
        if (secs(now - from) >= L->quiet)
            finish(L, "quiet");
        else if (L->drain > 0 && secs(now - L->t_quiet_from) >= L->drain)
            finish(L, "drain"); /* messages still coming: a backlog the target has not worked off */
    } else if (!L->has_ctl_pipe && L->total > 0) {
        arm_quiet(L);
    }
}

/* stdin control lines: "expect <M>" sets the per-connection count, "done" (or EOF) arms the quiet timeout. */
static void on_ctl_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    load_t *L = h->data;
    (void)suggested;
    *buf = uv_buf_init(L->ctl_buf + L->ctl_len, (unsigned)(sizeof L->ctl_buf - 1 - L->ctl_len));
}

static void on_ctl_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    load_t *L = s->data;
    (void)buf;
    if (nread < 0) {
        uv_read_stop(s);
        arm_quiet(L);
        return;
    }
    L->ctl_len += (size_t)nread;
    L->ctl_buf[L->ctl_len] = 0;
    char *nl;
    while ((nl = strchr(L->ctl_buf, '\n'))) {
        *nl = 0;
        if (strncmp(L->ctl_buf, "expect ", 7) == 0) {
            L->expect = strtoull(L->ctl_buf + 7, NULL, 10);
            L->has_expect = true;
            recount_complete(L);
        } else if (strcmp(L->ctl_buf, "done") == 0) {
            arm_quiet(L);
        }
        size_t rest = L->ctl_len - (size_t)(nl + 1 - L->ctl_buf);
        memmove(L->ctl_buf, nl + 1, rest + 1);
        L->ctl_len = rest;
    }
    if (L->ctl_len >= sizeof L->ctl_buf - 1)
        L->ctl_len = 0;
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    finish(s->data, "signal");
}

static void finish(load_t *L, const char *reason)
{
    if (L->phase == PH_FINISHING)
        return;
    if (L->phase == PH_CONNECTING)
        L->t_ready = bench_now_ns();
    L->phase = PH_FINISHING;
    L->end_reason = reason;
    L->t_end = bench_now_ns();
    uv_close((uv_handle_t *)&L->tick, NULL);
    uv_close((uv_handle_t *)&L->sig_int, NULL);
    uv_close((uv_handle_t *)&L->sig_term, NULL);
    if (L->has_ctl_pipe)
        uv_close((uv_handle_t *)&L->ctl_pipe, NULL);
    for (uint32_t i = 0; i < L->started; i++) {
        conn_t *c = &L->conns[i];
        if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE)
            conn_fail(c, FAIL_TIMEOUT);
        else
            conn_close(c);
    }
}

/* ---- report ---- */

/* "1008:997,eof:3" (close codes, then the other ways a connection ended), or "-". */
static void print_ends(const load_t *L, FILE *f)
{
    bool any = false;
    for (unsigned k = 0; k < END_KINDS; k++) {
        if (!L->ends[k])
            continue;
        if (k < CODE_MAX)
            fprintf(f, "%s%u:%u", any ? "," : "", k, L->ends[k]);
        else
            fprintf(f, "%s%s:%u", any ? "," : "", end_names[k - CODE_MAX], L->ends[k]);
        any = true;
    }
    if (!any)
        fputs("-", f);
}

static void report(load_t *L)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu_user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    double cpu_sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    double wall = secs(bench_now_ns() - L->t_start);
    double run_wall = secs(L->t_end - L->t_ready);
    uint32_t cmin = UINT32_MAX, cmax = 0, short_conns = 0;
    uint64_t lost = 0, counted = 0;
    /* per-connection counts over the connections that reached OPEN */
    for (uint32_t i = 0; i < L->n; i++) {
        conn_t *c = &L->conns[i];
        if (!c->was_open)
            continue;
        counted++;
        if (c->received < cmin)
            cmin = c->received;
        if (c->received > cmax)
            cmax = c->received;
        if (L->has_expect && c->received < L->expect) {
            lost += L->expect - c->received;
            short_conns++;
            if (c->was_closed)
                L->lost_on_closed += L->expect - c->received;
        }
    }
    if (counted == 0)
        cmin = 0;
    double span = L->total > 1 ? secs(L->t_last_msg - L->t_first_msg) : 0;
    double rate = span > 0 ? (double)L->total / span : 0;
    double us = 1e3;
    printf("wsload mode=%s conns=%u opened=%u failed=%u", L->is_idle ? "idle" : "recv", L->n, L->opened,
           L->failed);
    for (int k = 0; k < FAIL_KINDS; k++)
        printf(" fail_%s=%u", fail_names[k], L->fails[k]);
    printf(" last_bad_status=%d closed_early=%u server_closes=%u closed=%u codes=", L->last_bad_status,
           L->closed_early, L->server_closes, L->closed);
    print_ends(L, stdout);
    printf(" connect_s=%.3f run_s=%.3f end=%s", secs(L->t_ready - L->t_start), run_wall, L->end_reason);
    char expect_s[24] = "-", lost_s[24] = "-";
    if (L->has_expect) {
        snprintf(expect_s, sizeof expect_s, "%" PRIu64, L->expect);
        snprintf(lost_s, sizeof lost_s, "%" PRIu64, lost);
    }
    char lost_closed_s[24] = "-";
    if (L->has_expect)
        snprintf(lost_closed_s, sizeof lost_closed_s, "%" PRIu64, L->lost_on_closed);
    printf(" msgs=%" PRIu64 " expect=%s per_conn_min=%u per_conn_max=%u short_conns=%u lost=%s lost_on_closed=%s",
           L->total, expect_s, cmin, cmax, short_conns, lost_s, lost_closed_s);
    printf(" untimed=%" PRIu64 " order_errors=%" PRIu64 " control_frames=%" PRIu64
           " protocol_errors=%" PRIu64,
           L->untimed, L->order_errors, L->control_frames, L->protocol_errors);
    printf(" p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f min_us=%.1f",
           (double)hist_percentile(L, 0.50) / us, (double)hist_percentile(L, 0.90) / us,
           (double)hist_percentile(L, 0.99) / us, (double)hist_percentile(L, 0.999) / us,
           (double)L->lat_max / us, L->total ? (double)L->lat_sum / (double)L->total / us : 0.0,
           (double)L->lat_min / us);
    printf(" span_s=%.3f msgs_per_s=%.0f cpu_user_s=%.3f cpu_sys_s=%.3f cpu_pct=%.1f wall_s=%.3f\n", span,
           rate, cpu_user, cpu_sys, wall > 0 ? 100.0 * (cpu_user + cpu_sys) / wall : 0.0, wall);
    fflush(stdout);

    fprintf(stderr, "wsload: %s %s: %u/%u connections opened (%u failed", L->is_idle ? "idle" : "recv",
            L->url, L->opened, L->n, L->failed);
    for (int k = 0; k < FAIL_KINDS; k++)
        if (L->fails[k])
            fprintf(stderr, ", %s %u", fail_names[k], L->fails[k]);
    fprintf(stderr, ") in %.2fs, %u closed early (%u by the server: ", secs(L->t_ready - L->t_start),
            L->closed_early, L->closed);
    print_ends(L, stderr);
    fprintf(stderr, "); ended by %s after %.2fs\n", L->end_reason, run_wall);
    if (!L->is_idle) {
        fprintf(stderr, "wsload: %" PRIu64 " messages (%u..%u per connection", L->total, cmin, cmax);
        if (L->has_expect)
            fprintf(stderr, ", expected %" PRIu64 ", lost %" PRIu64 " on %u connections", L->expect, lost,
                    short_conns);
        fprintf(stderr, "), %.0f msg/s over %.2fs\n", rate, span);
        fprintf(stderr, "wsload: latency us p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
                (double)hist_percentile(L, 0.50) / us, (double)hist_percentile(L, 0.90) / us,
                (double)hist_percentile(L, 0.99) / us, (double)hist_percentile(L, 0.999) / us,
                (double)L->lat_max / us);
    }
    fprintf(stderr, "wsload: own CPU %.2fs user + %.2fs sys = %.0f%% of %.2fs%s\n", cpu_user, cpu_sys,
            wall > 0 ? 100.0 * (cpu_user + cpu_sys) / wall : 0.0, wall,
            wall > 0 && (cpu_user + cpu_sys) / wall > 0.9 ? "  (client saturated: numbers are the client's)"
                                                          : "");
}

/* ---- options ---- */

static int parse_url(load_t *L, const char *url)
{
    if (strncmp(url, "ws://", 5) != 0)
        return -EINVAL;
    const char *h = url + 5;
    const char *slash = strchr(h, '/');
    size_t hp_len = slash ? (size_t)(slash - h) : strlen(h);
    if (hp_len == 0 || hp_len >= sizeof L->host_port)
        return -EINVAL;
    memcpy(L->host_port, h, hp_len);
    L->host_port[hp_len] = 0;
    char host[64];
    const char *colon = strrchr(L->host_port, ':');
    int port = 80;
    size_t host_len = hp_len;
    if (colon) {
        port = atoi(colon + 1);
        host_len = (size_t)(colon - L->host_port);
    }
    memcpy(host, L->host_port, host_len);
    host[host_len] = 0;
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (port <= 0 || port > 65535 || uv_ip4_addr(host, port, &L->dst) < 0)
        return -EINVAL;
    /* loopback only: this tool is a load generator */
    if ((ntohl(L->dst.sin_addr.s_addr) >> 24) != 127)
        return -EPERM;
    L->path = strdup(slash ? slash : "/");
    return L->path ? 0 : -ENOMEM;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: wsload --url ws://127.0.0.1:PORT/PATH -n N (--idle --hold S | --recv [--expect M])\n"
            "  --rate R            connections started per second (default 5000)\n"
            "  --inflight K        handshakes in progress at most (default 512)\n"
            "  --sources K         spread over source addresses 127.0.0.1..127.0.0.K (default 4)\n"
            "  --connect-timeout S give up on connections not open after S seconds (default 60)\n"
            "  --hold S            --idle: hold the connections S seconds (default 5)\n"
            "  --expect M          --recv: stop when every open connection got M messages\n"
            "  --duration S        --recv: hard limit after all connections are open (default 60)\n"
            "  --quiet S           --recv: stop S seconds after the last message once armed (default 1)\n"
            "  --drain S           --recv: stop S seconds after --quiet was armed even if messages still come\n"
            "                      (end=drain; default 0 = no such limit)\n"
            "  --control-stdin     read 'expect M' and 'done' lines on stdin ('done' or EOF arms --quiet);\n"
            "                      without it --quiet is armed by the first message\n"
            "  --ready-file F      write 'opened=.. failed=..' to F once every connection is open or failed\n"
            "  --rcvbuf BYTES      SO_RCVBUF of each connection (default: the kernel's autotuning)\n"
            "Loopback targets only; at most %u connections.\n",
            MAX_CONNS);
}

static bool parse_double(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (*s == 0 || *end != 0 || v < 0)
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    static load_t load;
    load_t *L = &load;
    L->rate = 5000;
    L->inflight_max = 512;
    L->sources = 4;
    L->connect_timeout = 60;
    L->hold = 5;
    L->duration = 60;
    L->quiet = 1;
    L->is_idle = true;
    bool has_mode = false;
    enum {
        O_URL = 256,
        O_IDLE,
        O_RECV,
        O_RATE,
        O_INFL,
        O_SRC,
        O_CTO,
        O_HOLD,
        O_EXP,
        O_DUR,
        O_QUIET,
        O_DRAIN,
        O_CTL,
        O_READY,
        O_RCVBUF
    };
    static const struct option opts[] = {{"url", required_argument, 0, O_URL},
                                         {"idle", no_argument, 0, O_IDLE},
                                         {"recv", no_argument, 0, O_RECV},
                                         {"rate", required_argument, 0, O_RATE},
                                         {"inflight", required_argument, 0, O_INFL},
                                         {"sources", required_argument, 0, O_SRC},
                                         {"connect-timeout", required_argument, 0, O_CTO},
                                         {"hold", required_argument, 0, O_HOLD},
                                         {"expect", required_argument, 0, O_EXP},
                                         {"duration", required_argument, 0, O_DUR},
                                         {"quiet", required_argument, 0, O_QUIET},
                                         {"drain", required_argument, 0, O_DRAIN},
                                         {"control-stdin", no_argument, 0, O_CTL},
                                         {"ready-file", required_argument, 0, O_READY},
                                         {"rcvbuf", required_argument, 0, O_RCVBUF},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int opt;
    double d;
    bool is_ctl = false;
    while ((opt = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            L->n = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case O_URL:
            L->url = optarg;
            break;
        case O_IDLE:
            L->is_idle = true;
            has_mode = true;
            break;
        case O_RECV:
            L->is_idle = false;
            has_mode = true;
            break;
        case O_RATE:
            if (!parse_double(optarg, &L->rate) || L->rate < 1)
                goto Usage;
            break;
        case O_INFL:
            L->inflight_max = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case O_SRC:
            L->sources = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case O_CTO:
            if (!parse_double(optarg, &L->connect_timeout))
                goto Usage;
            break;
        case O_HOLD:
            if (!parse_double(optarg, &L->hold))
                goto Usage;
            break;
        case O_EXP:
            L->expect = strtoull(optarg, NULL, 10);
            L->has_expect = true;
            break;
        case O_DUR:
            if (!parse_double(optarg, &L->duration))
                goto Usage;
            break;
        case O_QUIET:
            if (!parse_double(optarg, &d))
                goto Usage;
            L->quiet = d;
            break;
        case O_DRAIN:
            if (!parse_double(optarg, &L->drain) || L->drain > 3600)
                goto Usage;
            break;
        case O_CTL:
            is_ctl = true;
            break;
        case O_READY:
            L->ready_file = optarg;
            break;
        case O_RCVBUF: {
            double v;
            if (!parse_double(optarg, &v) || v < 4096 || v > 64 * 1024 * 1024)
                goto Usage;
            L->rcvbuf = (int)v;
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default:
            goto Usage;
        }
    }
    if (!has_mode || !L->url || L->n == 0 || L->n > MAX_CONNS || L->sources == 0 || L->sources > 250 ||
        L->inflight_max == 0 || L->duration > 3600 || L->hold > 3600 || L->connect_timeout > 3600)
        goto Usage;
    int rc = parse_url(L, L->url);
    if (rc < 0) {
        fprintf(stderr, "wsload: %s: %s\n", L->url,
                rc == -EPERM ? "only loopback targets (127.0.0.0/8)" : "bad URL (ws://127.0.0.1:PORT/path)");
        return 2;
    }

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < L->n + 64u) {
        rlim_t want = L->n + 64u;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || want < rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < L->n + 64u)
            fprintf(stderr, "wsload: warning: open-file limit %lu is below %u connections\n",
                    (unsigned long)rl.rlim_cur, L->n);
    }

    L->conns = calloc(L->n, sizeof *L->conns);
    if (!L->conns) {
        fprintf(stderr, "wsload: out of memory\n");
        return 1;
    }
    L->key_seed = bench_now_ns() * 0x2545F4914F6CDD1Dull;
    L->mask_state = L->key_seed | 1;
    L->loop = uv_default_loop();
    L->t_start = bench_now_ns();

    uv_timer_init(L->loop, &L->tick);
    L->tick.data = L;
    uv_signal_init(L->loop, &L->sig_int);
    uv_signal_init(L->loop, &L->sig_term);
    L->sig_int.data = L->sig_term.data = L;
    uv_signal_start(&L->sig_int, on_signal, SIGINT);
    uv_signal_start(&L->sig_term, on_signal, SIGTERM);
    if (is_ctl) {
        if (uv_pipe_init(L->loop, &L->ctl_pipe, 0) == 0 && uv_pipe_open(&L->ctl_pipe, 0) == 0) {
            L->has_ctl_pipe = true;
            L->ctl_pipe.data = L;
            uv_read_start((uv_stream_t *)&L->ctl_pipe, on_ctl_alloc, on_ctl_read);
        } else {
            fprintf(stderr, "wsload: --control-stdin needs stdin to be a pipe\n");
            return 2;
        }
    }
    uv_timer_start(&L->tick, on_tick, 0, TICK_MS);
    uv_run(L->loop, UV_RUN_DEFAULT);
    report(L);
    rc = uv_loop_close(L->loop);
    free(L->conns);
    free(L->path);
    if (rc != 0) {
        fprintf(stderr, "wsload: loop not empty at exit\n");
        return 1;
    }
    return 0;

Usage:
    usage(stderr);
    return 2;
}
