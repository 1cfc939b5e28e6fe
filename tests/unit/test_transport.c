/* Unit tests for redis/transport.c against a server on the same loop (127.0.0.1, a free port): events, their
 * order, failures with their texts, and that every case ends with nothing left on the loop. */
#include "transport.h"

#include <errno.h>
#include <string.h>

#include "test.h"

typedef struct events {
    int opens, errors, closed;
    int last_err;
    char why[320];
    char data[256];
    size_t data_len;
    bool write_on_open;
    wsg_transport_t *t;
} events_t;

static void on_open(void *arg)
{
    events_t *ev = arg;
    ev->opens++;
    if (ev->write_on_open)
        ASSERT_INT_EQ(wsg_transport_write(ev->t, "hello", 5), 0);
}

static void on_data(void *arg, const char *data, size_t len)
{
    events_t *ev = arg;
    if (ev->data_len + len <= sizeof ev->data) {
        memcpy(ev->data + ev->data_len, data, len);
        ev->data_len += len;
    }
}

static void on_error(void *arg, int err, const char *why)
{
    events_t *ev = arg;
    ev->errors++;
    ev->last_err = err;
    snprintf(ev->why, sizeof ev->why, "%s", why);
}

static const wsg_transport_handler_t handler = {.on_open = on_open, .on_data = on_data, .on_error = on_error};

static void on_closed(void *arg)
{
    ((events_t *)arg)->closed++;
}

/* ---- a server on the loop: answers each connection with `reply` after reading once, then closes ----------
 */

typedef struct server {
    uv_tcp_t listener;
    uv_tcp_t peer;
    bool has_peer;
    const char *reply; /* NULL = echo what was read */
    uv_write_t write_req;
    char buf[256];
    uv_buf_t out;
} server_t;

static void on_server_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    server_t *s = handle->data;
    *buf = uv_buf_init(s->buf, sizeof s->buf);
}

static void on_server_written(uv_write_t *req, int status)
{
    server_t *s = req->data;
    uv_close((uv_handle_t *)&s->peer, NULL);
}

static void on_server_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    server_t *s = stream->data;
    if (nread == 0)
        return;
    uv_read_stop(stream);
    if (nread < 0) {
        uv_close((uv_handle_t *)&s->peer, NULL);
        return;
    }
    s->out =
        s->reply ? uv_buf_init((char *)s->reply, (unsigned)strlen(s->reply)) : uv_buf_init(buf->base, nread);
    s->write_req.data = s;
    uv_write(&s->write_req, stream, &s->out, 1, on_server_written);
}

static void on_connection(uv_stream_t *listener, int status)
{
    server_t *s = listener->data;
    if (status < 0 || s->has_peer)
        return;
    s->has_peer = true;
    uv_tcp_init(listener->loop, &s->peer);
    s->peer.data = s;
    if (uv_accept(listener, (uv_stream_t *)&s->peer) == 0)
        uv_read_start((uv_stream_t *)&s->peer, on_server_alloc, on_server_read);
}

static uint16_t server_start(uv_loop_t *loop, server_t *s, const char *reply)
{
    memset(s, 0, sizeof *s);
    s->reply = reply;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    uv_listen((uv_stream_t *)&s->listener, 8, on_connection);
    struct sockaddr_storage name;
    int len = sizeof name;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&name, &len);
    return ntohs(((struct sockaddr_in *)&name)->sin_port);
}

/* A port nothing listens on: bound, then closed. */
static uint16_t closed_port(uv_loop_t *loop)
{
    server_t s;
    uint16_t port = server_start(loop, &s, NULL);
    uv_close((uv_handle_t *)&s.listener, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    return port;
}

static void finish_loop(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(uv_loop_close(loop), 0);
}

/* ---- cases ----------------------------------------------------------------------------------------------
 */

static void test_plain_roundtrip_then_end_of_stream(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_t s;
    uint16_t port = server_start(&loop, &s, NULL);
    events_t ev = {.write_on_open = true};
    ASSERT_INT_EQ(wsg_transport_open(&loop, "127.0.0.1", port, NULL, NULL, &handler, &ev, &ev.t), 0);
    ASSERT_INT_EQ(wsg_transport_write(ev.t, "x", 1), -ENOTCONN); /* not open yet */
    ASSERT_INT_EQ(ev.opens, 0);                                  /* nothing from inside the call */
    while (ev.errors == 0 && uv_run(&loop, UV_RUN_ONCE) != 0) {
    }
    ASSERT_INT_EQ(ev.opens, 1);
    ASSERT_INT_EQ((int)ev.data_len, 5);
    ASSERT_MEM_EQ(ev.data, "hello", 5);
    ASSERT_INT_EQ(ev.last_err, UV_EOF);
    ASSERT_INT_EQ(wsg_transport_write(ev.t, "x", 1), -ENOTCONN); /* after on_error */
    wsg_transport_close(ev.t, on_closed, &ev);
    ASSERT_INT_EQ(ev.closed, 0);
    uv_close((uv_handle_t *)&s.listener, NULL);
    finish_loop(&loop);
    ASSERT_INT_EQ(ev.closed, 1);
    ASSERT_INT_EQ(ev.errors, 1);
}

static void test_refused_connection_says_where(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    uint16_t port = closed_port(&loop);
    events_t ev = {0};
    ASSERT_INT_EQ(wsg_transport_open(&loop, "127.0.0.1", port, NULL, NULL, &handler, &ev, &ev.t), 0);
    while (ev.errors == 0 && uv_run(&loop, UV_RUN_ONCE) != 0) {
    }
    ASSERT_INT_EQ(ev.last_err, UV_ECONNREFUSED);
    char expected[64];
    snprintf(expected, sizeof expected, "connect to 127.0.0.1:%u: ", port);
    ASSERT_TRUE(strncmp(ev.why, expected, strlen(expected)) == 0);
    ASSERT_INT_EQ(ev.opens, 0);
    wsg_transport_close(ev.t, on_closed, &ev);
    finish_loop(&loop);
    ASSERT_INT_EQ(ev.closed, 1);
}

/* localhost may resolve to ::1 first while the server listens on 127.0.0.1 only: the next address is tried.
 */
static void test_a_name_is_resolved_and_its_addresses_tried_in_turn(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_t s;
    uint16_t port = server_start(&loop, &s, "pong");
    events_t ev = {.write_on_open = true};
    ASSERT_INT_EQ(wsg_transport_open(&loop, "localhost", port, NULL, NULL, &handler, &ev, &ev.t), 0);
    while (ev.errors == 0 && uv_run(&loop, UV_RUN_ONCE) != 0) {
    }
    ASSERT_INT_EQ(ev.opens, 1);
    ASSERT_MEM_EQ(ev.data, "pong", 4);
    wsg_transport_close(ev.t, on_closed, &ev);
    uv_close((uv_handle_t *)&s.listener, NULL);
    finish_loop(&loop);
    ASSERT_INT_EQ(ev.closed, 1);
}

static void test_close_while_resolving_or_connecting_delivers_nothing(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_t s;
    uint16_t port = server_start(&loop, &s, NULL);
    events_t a = {0}, b = {0};
    ASSERT_INT_EQ(wsg_transport_open(&loop, "localhost", port, NULL, NULL, &handler, &a, &a.t), 0);
    ASSERT_INT_EQ(wsg_transport_open(&loop, "127.0.0.1", port, NULL, NULL, &handler, &b, &b.t), 0);
    wsg_transport_close(a.t, on_closed, &a);
    wsg_transport_close(b.t, on_closed, &b);
    wsg_transport_close(b.t, on_closed, &b); /* idempotent */
    uv_close((uv_handle_t *)&s.listener, NULL);
    if (s.has_peer)
        uv_close((uv_handle_t *)&s.peer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (s.has_peer && !uv_is_closing((uv_handle_t *)&s.peer))
        uv_close((uv_handle_t *)&s.peer, NULL);
    finish_loop(&loop);
    ASSERT_INT_EQ(a.closed, 1);
    ASSERT_INT_EQ(b.closed, 1);
    ASSERT_INT_EQ(a.opens + a.errors + b.opens + b.errors, 0);
}

static void test_tls_to_a_plain_server_fails_in_the_handshake(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_t s;
    uint16_t port = server_start(&loop, &s, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    wsg_tls_t *tls = NULL;
    char err[256];
    wsg_tls_options_t opts = {0};
    ASSERT_INT_EQ(wsg_tls_new(&opts, &tls, err, sizeof err), 0);
    events_t ev = {0};
    ASSERT_INT_EQ(wsg_transport_open(&loop, "127.0.0.1", port, tls, NULL, &handler, &ev, &ev.t), 0);
    while (ev.errors == 0 && uv_run(&loop, UV_RUN_ONCE) != 0) {
    }
    ASSERT_INT_EQ(ev.opens, 0);
    ASSERT_INT_EQ(ev.last_err, UV_EPROTO);
    ASSERT_TRUE(strncmp(ev.why, "TLS handshake: ", 15) == 0);
    wsg_transport_close(ev.t, on_closed, &ev);
    uv_close((uv_handle_t *)&s.listener, NULL);
    finish_loop(&loop);
    wsg_tls_free(tls);
    ASSERT_INT_EQ(ev.closed, 1);
}

static void test_tls_settings_name_the_file_that_fails(void)
{
    wsg_tls_t *tls = (wsg_tls_t *)1;
    char err[400];
    wsg_tls_options_t opts = {.ca_file = "/nonexistent/ca.pem"};
    ASSERT_INT_EQ(wsg_tls_new(&opts, &tls, err, sizeof err), -EINVAL);
    ASSERT_TRUE(tls == NULL);
    ASSERT_TRUE(strstr(err, "/nonexistent/ca.pem") != NULL);
    opts = (wsg_tls_options_t){.cert_file = "/nonexistent/client.pem"};
    ASSERT_INT_EQ(wsg_tls_new(&opts, &tls, err, sizeof err), -EINVAL);
    ASSERT_TRUE(strstr(err, "/nonexistent/client.pem") != NULL);
}

static void test_names_too_long_are_refused_without_a_transport(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char host[300];
    memset(host, 'a', sizeof host - 1);
    host[sizeof host - 1] = '\0';
    events_t ev = {0};
    wsg_transport_t *t = (wsg_transport_t *)1;
    ASSERT_INT_EQ(wsg_transport_open(&loop, host, 1, NULL, NULL, &handler, &ev, &t), -ENAMETOOLONG);
    ASSERT_TRUE(t == NULL);
    finish_loop(&loop);
}

TEST_MAIN("transport", TEST_CASE(test_plain_roundtrip_then_end_of_stream),
          TEST_CASE(test_refused_connection_says_where),
          TEST_CASE(test_a_name_is_resolved_and_its_addresses_tried_in_turn),
          TEST_CASE(test_close_while_resolving_or_connecting_delivers_nothing),
          TEST_CASE(test_tls_to_a_plain_server_fails_in_the_handshake),
          TEST_CASE(test_tls_settings_name_the_file_that_fails),
          TEST_CASE(test_names_too_long_are_refused_without_a_transport))
