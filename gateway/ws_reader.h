/* Inbound WebSocket frames through wslay: masking, fragmentation, UTF-8, control frames, size limit.
 * The wslay context (about 9 KB) exists only while a frame or fragmented message is in progress; an idle
 * connection keeps just a frame-boundary tracker. Outbound frames are never produced here: the caller
 * builds replies (pong, close) itself, so that it decides their order and timing. */
#ifndef WSG_GATEWAY_WS_READER_H
#define WSG_GATEWAY_WS_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

struct ws_reader_active;

/** Embedded in each connection. */
typedef struct wsg_ws_reader {
    struct ws_reader_active *active; /**< wslay context and feed state; NULL while idle */
    wsg_frame_tracker_t tracker;
    bool is_done;                    /**< a close frame was received or an error found: input is ignored */
} wsg_ws_reader_t;

/** What a connection does with complete inbound messages; `arg` is the one given to wsg_ws_reader_feed. */
typedef struct wsg_ws_reader_handler {
    /** A complete text (`is_text`) or binary message; `data` borrowed for the call. Text is valid UTF-8. */
    void (*on_message)(void *arg, bool is_text, const uint8_t *data, size_t len);
    void (*on_ping)(void *arg, const uint8_t *data, size_t len);
    void (*on_pong)(void *arg, const uint8_t *data, size_t len);
    /** The peer's close frame: `code` is WSG_CLOSE_NO_STATUS (1005) for an empty one; `reason` is UTF-8. */
    void (*on_close)(void *arg, uint16_t code, const uint8_t *reason, size_t reason_len);
} wsg_ws_reader_handler_t;

/** Prepares an embedded reader (no allocation). */
void wsg_ws_reader_init(wsg_ws_reader_t *r);

/** Processes `len` inbound bytes (borrowed), calling `handler` synchronously for each complete message.
 *  `max_message` bounds one message's payload. Returns 0, or a negative errno with `*close_code` set to
 *  the close code to send: WSG_CLOSE_PROTOCOL_ERROR (malformed frame, bad close code), 
 *  WSG_CLOSE_INVALID_PAYLOAD (invalid UTF-8), WSG_CLOSE_TOO_BIG (message over `max_message`) or
 *  WSG_CLOSE_INTERNAL_ERROR (out of memory). After an error or a close frame, further input is ignored. */
int wsg_ws_reader_feed(wsg_ws_reader_t *r, const uint8_t *data, size_t len, uint64_t max_message,
                       const wsg_ws_reader_handler_t *handler, void *arg, uint16_t *close_code);

/** True while a wslay context is held (a frame or message is in progress). */
bool wsg_ws_reader_is_active(const wsg_ws_reader_t *r);

/** Frees the wslay context, if any. The reader may be re-initialised afterwards. */
void wsg_ws_reader_dispose(wsg_ws_reader_t *r);

#endif
