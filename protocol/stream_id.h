/* Redis stream entry ids ("<ms>-<seq>"): parsing, formatting and ordering. */
#ifndef WSG_PROTOCOL_STREAM_ID_H
#define WSG_PROTOCOL_STREAM_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct wsg_stream_id {
    uint64_t ms, seq;
} wsg_stream_id_t;

#define WSG_STREAM_ID_MAX_LEN 41 /* "<20 digits>-<20 digits>" */

/** Parses a Redis stream id: "<ms>-<seq>" or "<ms>" (seq 0); decimal digits only (no sign, space, or empty
 *  part), each part fitting uint64_t. The whole `len` bytes must be the id. Leading zeros are accepted
 *  ("01-02" is 1-2), as Redis accepts them, and so an id's text has no length limit. Returns 0 or -EINVAL
 *  (`*out` untouched on error). Borrows `s`. */
int wsg_stream_id_parse(const char *s, size_t len, wsg_stream_id_t *out);

/** Writes "<ms>-<seq>" NUL-terminated into `out` (at least WSG_STREAM_ID_MAX_LEN + 1 bytes); returns its
 *  length. */
size_t wsg_stream_id_format(wsg_stream_id_t id, char *out);

/** -1, 0 or 1 as a is before, equal to, or after b. */
int wsg_stream_id_cmp(wsg_stream_id_t a, wsg_stream_id_t b);

/** The incremental form of wsg_stream_id_parse, for text that is decoded a byte at a time (a query value):
 *  init, feed every byte, then finish. Same rules, no buffer. */
typedef struct wsg_stream_id_reader {
    wsg_stream_id_t id;
    uint8_t part;   /**< 0 while reading ms, 1 while reading seq */
    bool has_digit; /**< the current part has at least one digit */
    bool is_bad;    /**< a byte already broke the rules */
} wsg_stream_id_reader_t;

/** A reader at the start of an id. */
static inline wsg_stream_id_reader_t wsg_stream_id_reader_init(void)
{
    return (wsg_stream_id_reader_t){{0, 0}, 0, false, false};
}

/** Feeds the next byte `c`. Returns false once the text can no longer be an id (further bytes change
 *  nothing). */
bool wsg_stream_id_reader_feed(wsg_stream_id_reader_t *r, char c);

/** Ends the text: returns 0 with `*out` set, or -EINVAL (`*out` untouched). */
int wsg_stream_id_reader_finish(const wsg_stream_id_reader_t *r, wsg_stream_id_t *out);

#endif
