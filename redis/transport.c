/* A client byte stream over libuv TCP, optionally TLS through OpenSSL memory BIOs (see transport.h). */
#include "transport.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Addresses of one name tried in turn (e.g. ::1 then 127.0.0.1 for localhost). */
#define MAX_ADDRS 8
/* Each read lands here; with TLS, each decrypted record too. */
#define READ_BUF_SIZE (16 * 1024)

struct wsg_tls {
    SSL_CTX *ctx;
};

typedef enum transport_state {
    T_RESOLVING,
    T_CONNECTING,
    T_HANDSHAKING,
    T_OPEN,
    T_FAILED, /* on_error was delivered; waiting for the owner's close */
    T_CLOSING,
} transport_state_t;

struct wsg_transport {
    uv_loop_t *loop;
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } handle;
    uv_getaddrinfo_t resolve_req;
    uv_connect_t connect_req;
    uv_write_t write_req; /* one write in flight at a time: what comes meanwhile goes out in the next one */
    const wsg_transport_handler_t *handler;
    void *arg;
    SSL *ssl;              /* NULL in the clear */
    BIO *net_in, *net_out; /* owned by ssl: bytes from the socket, bytes for the socket */
    transport_state_t state;
    int refs;               /* the socket handle until closed, and the name lookup while it runs */
    bool is_handle_closing; /* a failed attempt's handle is closing before the next address is tried */
    bool is_unix;
    bool is_writing;     /* write_req is in flight */
    bool is_read_paused; /* the owner stopped reading */
    uint16_t port;
    uint8_t naddrs, next_addr;
    struct sockaddr_storage addrs[MAX_ADDRS];
    char *read_buf;
    char *out; /* plaintext (in the clear) waiting for the write in flight */
    size_t out_len, out_cap;
    char *writing; /* the bytes of the write in flight */
    size_t writing_len;
    void (*on_closed)(void *arg);
    void *closed_arg;
    char tls_name[256];
    char host[256]; /* or the unix socket path */
};

static uv_stream_t *stream_of(wsg_transport_t *t)
{
    return (uv_stream_t *)&t->handle;
}

/* ---- TLS settings ---------------------------------------------------------------------------------------
 */

static void openssl_reason(char *out, size_t cap)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        snprintf(out, cap, "unknown error");
    else
        ERR_error_string_n(e, out, cap);
    ERR_clear_error();
}

int wsg_tls_new(const wsg_tls_options_t *opts, wsg_tls_t **out, char *err, size_t err_cap)
{
    char reason[200];
    *out = NULL;
    ERR_clear_error();
    wsg_tls_t *tls = calloc(1, sizeof(*tls));
    if (tls == NULL || (tls->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
        free(tls);
        snprintf(err, err_cap, "TLS: out of memory");
        return -ENOMEM;
    }
    SSL_CTX_set_min_proto_version(tls->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(tls->ctx, opts->skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    /* Idle connections give their record buffers back. */
    SSL_CTX_set_mode(tls->ctx, SSL_MODE_RELEASE_BUFFERS);
    const char *ca = opts->ca_file != NULL && opts->ca_file[0] != '\0' ? opts->ca_file : NULL;
    if (ca != NULL ? SSL_CTX_load_verify_locations(tls->ctx, ca, NULL) != 1
                   : SSL_CTX_set_default_verify_paths(tls->ctx) != 1) {
        openssl_reason(reason, sizeof reason);
        snprintf(err, err_cap, "cannot load the CA certificates of %s: %s", ca ? ca : "the system store",
                 reason);
        goto Error;
    }
    if (opts->cert_file != NULL && opts->cert_file[0] != '\0') {
        const char *key =
            opts->key_file != NULL && opts->key_file[0] != '\0' ? opts->key_file : opts->cert_file;
        if (SSL_CTX_use_certificate_chain_file(tls->ctx, opts->cert_file) != 1) {
            openssl_reason(reason, sizeof reason);
            snprintf(err, err_cap, "cannot load the client certificate %s: %s", opts->cert_file, reason);
            goto Error;
        }
        if (SSL_CTX_use_PrivateKey_file(tls->ctx, key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(tls->ctx) != 1) {
            openssl_reason(reason, sizeof reason);
            snprintf(err, err_cap, "cannot load the private key %s: %s", key, reason);
            goto Error;
        }
    }
    *out = tls;
    return 0;

Error:
    SSL_CTX_free(tls->ctx);
    free(tls);
    return -EINVAL;
}

void wsg_tls_free(wsg_tls_t *tls)
{
    if (tls == NULL)
        return;
    SSL_CTX_free(tls->ctx);
    free(tls);
}

/* ---- lifetime -------------------------------------------------------------------------------------------
 */

static void release(wsg_transport_t *t)
{
    if (--t->refs > 0)
        return;
    void (*cb)(void *) = t->on_closed;
    void *cb_arg = t->closed_arg;
    SSL_free(t->ssl); /* frees both BIOs */
    free(t->read_buf);
    free(t->out);
    free(t->writing);
    free(t);
    if (cb != NULL)
        cb(cb_arg);
}

static void on_handle_closed(uv_handle_t *handle);

/* Reports the end of the stream once; the owner closes. Reading stops so that nothing more arrives. */
static void fail(wsg_transport_t *t, int err, const char *why)
{
    if (t->state == T_FAILED || t->state == T_CLOSING)
        return;
    t->state = T_FAILED;
    if (!t->is_handle_closing)
        uv_read_stop(stream_of(t));
    t->handler->on_error(t->arg, err, why);
}

/* ---- writing --------------------------------------------------------------------------------------------
 */

static void start_write(wsg_transport_t *t);

static void on_written(uv_write_t *req, int status)
{
    wsg_transport_t *t = req->data;
    t->is_writing = false;
    free(t->writing);
    t->writing = NULL;
    t->writing_len = 0;
    if (status < 0) {
        if (status != UV_ECANCELED) {
            char why[96];
            snprintf(why, sizeof why, "write: %s", uv_strerror(status));
            fail(t, status, why);
        }
        return;
    }
    if (t->state < T_FAILED)
        start_write(t);
}

/* Starts a write of everything waiting: the plaintext buffer in the clear, OpenSSL's output with TLS. One
 * write is in flight at a time; what is written meanwhile is gathered into the next, so that many small
 * commands made in one loop turn leave in one system call. */
static void start_write(wsg_transport_t *t)
{
    if (t->is_writing || t->is_handle_closing)
        return;
    if (t->ssl != NULL) {
        size_t pending = BIO_ctrl_pending(t->net_out);
        if (pending == 0)
            return;
        char *bytes = malloc(pending);
        if (bytes == NULL || BIO_read(t->net_out, bytes, (int)pending) != (int)pending) {
            free(bytes);
            fail(t, UV_ENOMEM, "write: out of memory");
            return;
        }
        t->writing = bytes;
        t->writing_len = pending;
    } else {
        if (t->out_len == 0)
            return;
        t->writing = t->out;
        t->writing_len = t->out_len;
        t->out = NULL;
        t->out_len = t->out_cap = 0;
    }
    uv_buf_t buf = uv_buf_init(t->writing, (unsigned)t->writing_len);
    t->write_req.data = t;
    int rc = uv_write(&t->write_req, stream_of(t), &buf, 1, on_written);
    if (rc < 0) {
        free(t->writing);
        t->writing = NULL;
        t->writing_len = 0;
        char why[96];
        snprintf(why, sizeof why, "write: %s", uv_strerror(rc));
        fail(t, rc, why);
        return;
    }
    t->is_writing = true;
}

static int append_out(wsg_transport_t *t, const char *data, size_t len)
{
    if (t->out_len + len > t->out_cap) {
        size_t cap = t->out_cap ? t->out_cap : 4096;
        while (cap < t->out_len + len)
            cap *= 2;
        char *out = realloc(t->out, cap);
        if (out == NULL)
            return -ENOMEM;
        t->out = out;
        t->out_cap = cap;
    }
    memcpy(t->out + t->out_len, data, len);
    t->out_len += len;
    return 0;
}

int wsg_transport_write(wsg_transport_t *t, const char *data, size_t len)
{
    if (t->state != T_OPEN)
        return -ENOTCONN;
    if (len == 0)
        return 0;
    if (t->ssl == NULL) {
        if (append_out(t, data, len) < 0)
            return -ENOMEM;
    } else {
        ERR_clear_error();
        /* Into a memory BIO a write is taken whole (or fails for good). */
        if (len > INT32_MAX || SSL_write(t->ssl, data, (int)len) != (int)len) {
            ERR_clear_error();
            return -EIO;
        }
    }
    start_write(t); /* a failure comes as on_error from the loop (uv_write reports it in its callback) */
    return 0;
}

size_t wsg_transport_write_queue_size(const wsg_transport_t *t)
{
    size_t queued = t->is_writing ? stream_of((wsg_transport_t *)t)->write_queue_size : 0;
    return queued + t->out_len + (t->ssl != NULL ? BIO_ctrl_pending(t->net_out) : 0);
}

bool wsg_transport_is_open(const wsg_transport_t *t)
{
    return t->state == T_OPEN;
}

/* ---- reading --------------------------------------------------------------------------------------------
 */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    wsg_transport_t *t = handle->data;
    *buf = uv_buf_init(t->read_buf, READ_BUF_SIZE);
}

/* Why a TLS operation failed, for the log: the certificate check first, since that is the usual cause. */
static void tls_failure(wsg_transport_t *t, const char *during, char *why, size_t cap)
{
    long verify = SSL_get_verify_result(t->ssl);
    if (verify != X509_V_OK) {
        snprintf(why, cap, "TLS %s: certificate verify failed: %s", during,
                 X509_verify_cert_error_string(verify));
        ERR_clear_error();
        return;
    }
    char reason[200];
    openssl_reason(reason, sizeof reason);
    snprintf(why, cap, "TLS %s: %s", during, reason);
}

/* Delivers what the records received so far decrypt to, while the owner reads. */
static void drain_tls(wsg_transport_t *t)
{
    char why[320];
    while (t->state == T_OPEN && !t->is_read_paused) {
        ERR_clear_error();
        int n = SSL_read(t->ssl, t->read_buf, READ_BUF_SIZE);
        if (n > 0) {
            t->handler->on_data(t->arg, t->read_buf, (size_t)n);
            continue;
        }
        int e = SSL_get_error(t->ssl, n);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            fail(t, UV_EOF, "closed by the server (TLS close_notify)");
            return;
        }
        tls_failure(t, "read", why, sizeof why);
        fail(t, UV_EPROTO, why);
        return;
    }
    /* Reading may have produced records to send (key updates, alerts). */
    if (t->state == T_OPEN)
        start_write(t);
}

static void continue_handshake(wsg_transport_t *t)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(t->ssl);
    start_write(t);
    if (t->state != T_HANDSHAKING)
        return;
    if (rc == 1) {
        t->state = T_OPEN;
        t->handler->on_open(t->arg);
        drain_tls(t); /* application data may have come with the last handshake flight */
        return;
    }
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ)
        return;
    char why[320];
    tls_failure(t, "handshake", why, sizeof why);
    fail(t, UV_EPROTO, why);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    wsg_transport_t *t = stream->data;
    if (t->state >= T_FAILED)
        return;
    if (nread < 0) {
        if (nread == UV_EOF) {
            /* In TLS an end without close_notify may be a truncation: the owner decides what it can trust. */
            if (t->ssl != NULL)
                fail(t, t->state == T_OPEN ? UV_EOF : UV_EPROTO,
                     t->state == T_OPEN ? "closed by the server" : "TLS handshake: closed by the server");
            else
                fail(t, UV_EOF, "closed by the server");
        } else {
            char why[96];
            snprintf(why, sizeof why, "read: %s", uv_strerror((int)nread));
            fail(t, (int)nread, why);
        }
        return;
    }
    if (nread > 0) {
        if (t->ssl == NULL) {
            t->handler->on_data(t->arg, buf->base, (size_t)nread);
        } else if (BIO_write(t->net_in, buf->base, (int)nread) != (int)nread) {
            fail(t, UV_ENOMEM, "TLS: out of memory");
            return;
        } else if (t->state == T_HANDSHAKING) {
            continue_handshake(t);
        } else {
            drain_tls(t);
        }
    }
    /* libuv stops reading for this readiness event after a read that did not fill the buffer (or found
     * nothing): everything the socket held has been delivered. */
    if (nread < READ_BUF_SIZE && t->state == T_OPEN && !t->is_read_paused && t->handler->on_read_end != NULL)
        t->handler->on_read_end(t->arg);
}

void wsg_transport_read_stop(wsg_transport_t *t)
{
    if (t->is_read_paused)
        return;
    t->is_read_paused = true;
    if (t->state == T_OPEN)
        uv_read_stop(stream_of(t));
}

void wsg_transport_read_start(wsg_transport_t *t)
{
    if (!t->is_read_paused)
        return;
    t->is_read_paused = false;
    if (t->state != T_OPEN)
        return;
    if (t->ssl != NULL)
        drain_tls(t); /* records already received come first */
    if (t->state == T_OPEN && !t->is_read_paused && uv_read_start(stream_of(t), on_alloc, on_read) < 0)
        fail(t, UV_EIO, "read start failed");
}

/* ---- connecting -----------------------------------------------------------------------------------------
 */

static bool is_ip_literal(const char *host)
{
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    return uv_ip4_addr(host, 0, &a4) == 0 || uv_ip6_addr(host, 0, &a6) == 0;
}

static int start_tls(wsg_transport_t *t, wsg_tls_t *tls)
{
    t->ssl = SSL_new(tls->ctx);
    t->net_in = BIO_new(BIO_s_mem());
    t->net_out = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->net_in == NULL || t->net_out == NULL) {
        BIO_free(t->net_in);
        BIO_free(t->net_out);
        t->net_in = t->net_out = NULL;
        return -ENOMEM;
    }
    SSL_set_bio(t->ssl, t->net_in, t->net_out);
    SSL_set_connect_state(t->ssl);
    /* The name the certificate must carry: a DNS name (also sent as SNI) or an IP address. */
    X509_VERIFY_PARAM *param = SSL_get0_param(t->ssl);
    if (is_ip_literal(t->tls_name)) {
        if (X509_VERIFY_PARAM_set1_ip_asc(param, t->tls_name) != 1)
            return -EINVAL;
    } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(t->ssl, t->tls_name) != 1 || SSL_set_tlsext_host_name(t->ssl, t->tls_name) != 1)
            return -EINVAL;
    }
    return 0;
}

static void connect_next(wsg_transport_t *t);

/* An address could not be connected to: the next one is tried in a fresh handle (a handle that failed to
 * connect cannot be reused), or the failure is reported when none is left. */
static void connect_failed(wsg_transport_t *t, int status)
{
    char why[400], ip[64] = "?";
    if (t->is_unix) {
        snprintf(why, sizeof why, "connect to unix:%s: %s", t->host, uv_strerror(status));
        fail(t, status, why);
        return;
    }
    if (t->next_addr < t->naddrs) {
        t->is_handle_closing = true;
        uv_close((uv_handle_t *)&t->handle, on_handle_closed);
        return;
    }
    const struct sockaddr *a = (const struct sockaddr *)&t->addrs[t->next_addr - 1];
    if (a->sa_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)a, ip, sizeof ip);
    else
        uv_ip4_name((const struct sockaddr_in *)a, ip, sizeof ip);
    snprintf(why, sizeof why, a->sa_family == AF_INET6 ? "connect to [%s]:%u: %s" : "connect to %s:%u: %s",
             ip, t->port, uv_strerror(status));
    fail(t, status, why);
}

static void on_connected(uv_connect_t *req, int status)
{
    wsg_transport_t *t = req->data;
    if (t->state != T_CONNECTING)
        return;
    if (status < 0) {
        connect_failed(t, status);
        return;
    }
    if (!t->is_unix)
        uv_tcp_nodelay(&t->handle.tcp, 1); /* small writes are gathered here, not by Nagle */
    int rc = t->is_read_paused ? 0 : uv_read_start(stream_of(t), on_alloc, on_read);
    if (rc < 0) {
        fail(t, rc, "read start failed");
        return;
    }
    if (t->ssl == NULL) {
        t->state = T_OPEN;
        t->handler->on_open(t->arg);
        return;
    }
    t->state = T_HANDSHAKING;
    continue_handshake(t);
}

static void connect_next(wsg_transport_t *t)
{
    const struct sockaddr *addr = (const struct sockaddr *)&t->addrs[t->next_addr++];
    int rc = uv_tcp_connect(&t->connect_req, &t->handle.tcp, addr, on_connected);
    if (rc < 0)
        connect_failed(t, rc);
}

/* The socket handle is closed: for good (the transport goes), or after a failed attempt (the next address is
 * tried in a fresh handle in the same memory, which is why it waits for this callback). */
static void on_handle_closed(uv_handle_t *handle)
{
    wsg_transport_t *t = handle->data;
    t->is_handle_closing = false;
    if (t->state == T_CLOSING) {
        release(t);
        return;
    }
    uv_tcp_init(t->loop, &t->handle.tcp);
    t->handle.tcp.data = t;
    connect_next(t);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    wsg_transport_t *t = req->data;
    if (t->state == T_RESOLVING) {
        for (struct addrinfo *ai = status == 0 ? res : NULL; ai != NULL && t->naddrs < MAX_ADDRS;
             ai = ai->ai_next) {
            struct sockaddr_storage *a = &t->addrs[t->naddrs];
            if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof *a)
                continue;
            memcpy(a, ai->ai_addr, ai->ai_addrlen);
            if (ai->ai_family == AF_INET6)
                ((struct sockaddr_in6 *)a)->sin6_port = htons(t->port);
            else
                ((struct sockaddr_in *)a)->sin_port = htons(t->port);
            t->naddrs++;
        }
        if (t->naddrs > 0) {
            t->state = T_CONNECTING;
            connect_next(t);
        } else {
            char why[320];
            snprintf(why, sizeof why, "cannot resolve %s: %s", t->host,
                     status < 0 ? uv_strerror(status) : "no IPv4 or IPv6 address");
            fail(t, status < 0 ? status : UV_EAI_NONAME, why);
        }
    }
    uv_freeaddrinfo(res);
    release(t); /* the lookup no longer holds the transport */
}

static wsg_transport_t *transport_new(uv_loop_t *loop, const wsg_transport_handler_t *handler, void *arg)
{
    wsg_transport_t *t = calloc(1, sizeof(*t));
    if (t == NULL || (t->read_buf = malloc(READ_BUF_SIZE)) == NULL) {
        free(t);
        return NULL;
    }
    t->loop = loop;
    t->handler = handler;
    t->arg = arg;
    t->connect_req.data = t->resolve_req.data = t;
    t->refs = 1; /* the socket handle */
    return t;
}

/* A start that failed: nothing was reported, the handle closes and the memory goes. */
static int abandon(wsg_transport_t *t, int rc)
{
    t->state = T_CLOSING;
    uv_close((uv_handle_t *)&t->handle, on_handle_closed);
    return rc;
}

int wsg_transport_open(uv_loop_t *loop, const char *host, uint16_t port, wsg_tls_t *tls, const char *tls_name,
                       const wsg_transport_handler_t *handler, void *arg, wsg_transport_t **out)
{
    *out = NULL;
    if (strlen(host) >= sizeof((wsg_transport_t *)0)->host ||
        (tls_name != NULL && strlen(tls_name) >= sizeof((wsg_transport_t *)0)->tls_name))
        return -ENAMETOOLONG;
    wsg_transport_t *t = transport_new(loop, handler, arg);
    if (t == NULL)
        return -ENOMEM;
    t->port = port;
    snprintf(t->host, sizeof t->host, "%s", host);
    snprintf(t->tls_name, sizeof t->tls_name, "%s",
             tls_name != NULL && tls_name[0] != '\0' ? tls_name : host);
    int rc = tls != NULL ? start_tls(t, tls) : 0;
    if (rc < 0) {
        SSL_free(t->ssl);
        free(t->read_buf);
        free(t);
        return rc;
    }
    uv_tcp_init(loop, &t->handle.tcp);
    t->handle.tcp.data = t;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&t->addrs[0]) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&t->addrs[0]) == 0) {
        t->naddrs = t->next_addr = 1;
        t->state = T_CONNECTING;
        rc = uv_tcp_connect(&t->connect_req, &t->handle.tcp, (const struct sockaddr *)&t->addrs[0],
                            on_connected);
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        t->state = T_RESOLVING;
        rc = uv_getaddrinfo(loop, &t->resolve_req, on_resolved, host, NULL, &hints);
        if (rc == 0)
            t->refs++;
    }
    if (rc < 0)
        return abandon(t, rc);
    *out = t;
    return 0;
}

int wsg_transport_open_unix(uv_loop_t *loop, const char *path, const wsg_transport_handler_t *handler,
                            void *arg, wsg_transport_t **out)
{
    *out = NULL;
    if (strlen(path) >= sizeof((wsg_transport_t *)0)->host)
        return -ENAMETOOLONG;
    wsg_transport_t *t = transport_new(loop, handler, arg);
    if (t == NULL)
        return -ENOMEM;
    t->is_unix = true;
    snprintf(t->host, sizeof t->host, "%s", path);
    int rc = uv_pipe_init(loop, &t->handle.pipe, 0);
    if (rc < 0) {
        free(t->read_buf);
        free(t);
        return rc;
    }
    t->handle.pipe.data = t;
    t->state = T_CONNECTING;
    uv_pipe_connect(&t->connect_req, &t->handle.pipe, path, on_connected); /* errors come to on_connected */
    *out = t;
    return 0;
}

void wsg_transport_close(wsg_transport_t *t, void (*cb)(void *cb_arg), void *cb_arg)
{
    if (t->state == T_CLOSING)
        return;
    bool was_resolving = t->state == T_RESOLVING;
    t->state = T_CLOSING;
    t->on_closed = cb;
    t->closed_arg = cb_arg;
    if (was_resolving)
        uv_cancel((uv_req_t *)&t->resolve_req); /* on_resolved still runs (with UV_EAI_CANCELED) */
    if (!t->is_handle_closing)                  /* otherwise the closing handle's callback releases it */
        uv_close((uv_handle_t *)&t->handle, on_handle_closed);
}
