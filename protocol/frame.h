/* Outbound WebSocket frames of a server (never masked), close codes, and inbound frame-boundary tracking. */
#ifndef WSG_PROTOCOL_FRAME_H
#define WSG_PROTOCOL_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/** The longest header of an unmasked frame (2 + 8 bytes). */
#define WSG_FRAME_HEADER_MAX 10
/** The longest control frame: header 2 bytes + payload 125 bytes. */
#define WSG_FRAME_CONTROL_MAX 127

enum wsg_opcode {
    WSG_OP_CONTINUATION = 0x0,
    WSG_OP_TEXT = 0x1,
    WSG_OP_BINARY = 0x2,
    WSG_OP_CLOSE = 0x8,
    WSG_OP_PING = 0x9,
    WSG_OP_PONG = 0xa,
};

/** Close codes used by the gateway. */
enum wsg_close_code {
    WSG_CLOSE_NORMAL = 1000,
    WSG_CLOSE_GOING_AWAY = 1001,
    WSG_CLOSE_PROTOCOL_ERROR = 1002,
    WSG_CLOSE_UNSUPPORTED = 1003,
    WSG_CLOSE_NO_STATUS = 1005,
    WSG_CLOSE_ABNORMAL = 1006,
    WSG_CLOSE_INVALID_PAYLOAD = 1007,
    WSG_CLOSE_POLICY = 1008,
    WSG_CLOSE_TOO_BIG = 1009,
    WSG_CLOSE_INTERNAL_ERROR = 1011,
    WSG_CLOSE_TRY_AGAIN_LATER = 1013,
    WSG_CLOSE_STALE = 4000,
};

/** Size of the header of an unmasked frame carrying `payload_len` bytes: 2, 4 or 10. */
size_t wsg_frame_header_size(uint64_t payload_len);

/** Writes the header of an unmasked frame (FIN per `fin`, RSV bits 0) into `out` (at least
 *  wsg_frame_header_size(payload_len) bytes). Returns the header length. */
size_t wsg_frame_write_header(uint8_t *out, enum wsg_opcode opcode, bool fin, uint64_t payload_len);

/** Frames a server data message in place: writes the header into the bytes right before `payload`, where the
 *  caller left at least WSG_FRAME_HEADER_MAX bytes of room. Text when the payload is valid UTF-8, binary
 *  otherwise (ws4redis sent everything as text; a browser would close on invalid UTF-8 in a text frame).
 *  Returns the header length: the frame starts that many bytes before `payload`. */
size_t wsg_frame_prepend_data_header(uint8_t *payload, size_t len);

/** Writes a whole unmasked control frame (`opcode` CLOSE, PING or PONG) with `payload` into `out` (at least
 *  WSG_FRAME_CONTROL_MAX bytes). Returns the frame length, or -EMSGSIZE when `len` > 125. Borrows `payload`. */
ssize_t wsg_frame_write_control(uint8_t *out, enum wsg_opcode opcode, const uint8_t *payload, size_t len);

/** Writes a whole close frame with `code` and `reason` into `out` (at least WSG_FRAME_CONTROL_MAX bytes). A
 *  reason longer than 123 bytes is cut at the last UTF-8 character boundary that fits. `code` 0 writes an
 *  empty close frame. Returns the frame length. Borrows `reason`. */
size_t wsg_frame_write_close(uint8_t *out, uint16_t code, const char *reason, size_t reason_len);

/** True when a peer may send `code` in a close frame (RFC 6455 7.4): 1000-1003, 1007-1011, 3000-4999. */
bool wsg_close_code_is_valid(uint16_t code);

/** Tracks where the inbound byte stream of a server stands relative to frame and message boundaries, by
 *  reading frame headers only. Small enough to live in every connection. */
typedef struct wsg_frame_tracker {
    uint64_t payload_left;  /**< payload bytes of the current frame not yet seen */
    uint8_t header[14];     /**< bytes of a header seen so far */
    uint8_t header_len;     /**< how many of `header` are filled; 0 between frames */
    bool in_fragmented_msg; /**< a data message with FIN 0 is open */
    bool saw_close;         /**< a whole close frame header was seen */
} wsg_frame_tracker_t;

/** Resets the tracker to a frame boundary with no message open. */
void wsg_frame_tracker_init(wsg_frame_tracker_t *t);

/** Feeds the next `len` inbound bytes. Returns 0, or -EPROTO for a header no valid client sends: RSV bits
 *  set, unknown opcode, unmasked frame, control frame over 125 bytes (an extended length field counts as
 *  over, whatever it holds) or fragmented, continuation without an open message, data frame inside an open
 *  message, or a 64-bit length with its top bit set. Each is reported as soon as the byte that shows it is
 *  fed. After an error the tracker is in an undefined state: reset it or stop. Borrows `data`. */
int wsg_frame_tracker_feed(wsg_frame_tracker_t *t, const uint8_t *data, size_t len);

/** True when the bytes fed so far end inside a close frame (in its header or its payload). */
bool wsg_frame_tracker_in_close_frame(const wsg_frame_tracker_t *t);

/** True when the bytes fed so far end exactly between two frames (a fragmented message may be open). */
bool wsg_frame_tracker_at_frame_start(const wsg_frame_tracker_t *t);

/** True when every byte fed so far completes a frame and no fragmented message is open. */
bool wsg_frame_tracker_is_idle(const wsg_frame_tracker_t *t);

#endif
