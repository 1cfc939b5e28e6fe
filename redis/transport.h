/* A client byte stream to host:port on the libuv loop, in the clear or over TLS: the name is looked up off
 * the loop, each of its addresses is tried in turn, and a TLS handshake verifies the server's certificate
 * chain and its name (or IP address). OpenSSL runs on memory buffers: all socket I/O is libuv's. Used by the
 * Redis links and by the authorization callback client. */
#ifndef WSG_REDIS_TRANSPORT_H
#define WSG_REDIS_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/** TLS client settings shared by the transports of one loop: trusted CAs and an optional client certificate.
 */
typedef struct wsg_tls wsg_tls_t;

typedef struct wsg_tls_options {
    const char *ca_file;   /**< PEM file of trusted CAs; NULL or "" = the system's store */
    const char *cert_file; /**< PEM client certificate (chain); NULL or "" = none */
    const char *key_file;  /**< PEM private key of cert_file; NULL or "" = the key is in cert_file */
    bool skip_verify;      /**< accept any certificate and name (self-signed test servers only) */
} wsg_tls_options_t;

/** Loads the settings (reads files now). Returns 0 and `*out`, or a negative errno with a message naming the
 *  file and OpenSSL's reason in `err`. Borrows `opts`. */
int wsg_tls_new(const wsg_tls_options_t *opts, wsg_tls_t **out, char *err, size_t err_cap);

/** Frees `tls`; transports using it must be closed first. NULL is ignored. */
void wsg_tls_free(wsg_tls_t *tls);

typedef struct wsg_transport wsg_transport_t;

/** Events of a transport, from the loop, never from inside a wsg_transport_* call. After on_error nothing
 *  more is delivered: the owner closes the transport. */
typedef struct wsg_transport_handler {
    /** Connected (and, with TLS, the server verified): wsg_transport_write() may be used. */
    void (*on_open)(void *arg);
    /** Bytes from the server (decrypted), borrowed for the call. The owner may write or close from here. */
    void (*on_data)(void *arg, const char *data, size_t len);
    /** The stream failed or ended: `err` is UV_EOF when the server closed it cleanly (a TCP end of stream, or
     *  a TLS close_notify), another negative errno otherwise (UV_EPROTO for TLS failures, among them a
     *  certificate that does not verify). `why` (borrowed for the call) says it for a log line. */
    void (*on_error)(void *arg, int err, const char *why);
    /** Optional: everything the socket held has been delivered (the end of one readiness event's reads, not
     *  called when the owner stopped reading). Lets the owner act once per batch of on_data calls. */
    void (*on_read_end)(void *arg);
} wsg_transport_handler_t;

/** Starts connecting to `host` (a numeric IPv4/IPv6 address, or a name looked up with uv_getaddrinfo) on
 *  `port`, over TLS when `tls` is not NULL, verifying the certificate against `tls_name` (NULL = `host`).
 *  Borrows `loop`, `handler`, `arg` and `tls` for the transport's life; copies the strings. Returns 0 and
 *  `*out`, or a negative errno (and no transport, no callback). */
int wsg_transport_open(uv_loop_t *loop, const char *host, uint16_t port, wsg_tls_t *tls, const char *tls_name,
                       const wsg_transport_handler_t *handler, void *arg, wsg_transport_t **out);

/** Like wsg_transport_open, to a unix socket at `path`, in the clear. */
int wsg_transport_open_unix(uv_loop_t *loop, const char *path, const wsg_transport_handler_t *handler,
                            void *arg, wsg_transport_t **out);

/** Sends `len` bytes (copied). One write is in flight at a time: bytes written meanwhile are gathered (and
 * with TLS, encrypted) into the next, so that many small writes of one loop turn leave in one system call.
 * Returns 0, -ENOTCONN before on_open or after on_error, or another negative errno; a failure of the stream
 * later comes as on_error. */
int wsg_transport_write(wsg_transport_t *t, const char *data, size_t len);

/** Bytes written and not yet accepted by the kernel: gathered for the next write, or in the one in flight. */
size_t wsg_transport_write_queue_size(const wsg_transport_t *t);

/** Stops delivering data (on_data may be called no more until read_start): the owner bounds the work of one
 *  loop turn. Also before on_open: reading then starts paused. */
void wsg_transport_read_stop(wsg_transport_t *t);

/** Resumes delivering: data already received and decrypted comes first, from inside this call. */
void wsg_transport_read_start(wsg_transport_t *t);

/** True between on_open and on_error or close. */
bool wsg_transport_is_open(const wsg_transport_t *t);

/** Closes `t` at once (no TLS close_notify is waited for). No handler event follows; `cb` (may be NULL) runs
 *  once its memory is gone. */
void wsg_transport_close(wsg_transport_t *t, void (*cb)(void *cb_arg), void *cb_arg);

#endif
