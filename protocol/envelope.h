/* The JSON text of the "wsgate.v1" subprotocol's messages: data envelopes and gap notices. */
#ifndef WSG_PROTOCOL_ENVELOPE_H
#define WSG_PROTOCOL_ENVELOPE_H

#include <stddef.h>
#include <sys/types.h>

#include "str.h"
#include "stream_id.h"

/** An upper bound of the bytes wsg_envelope_data writes for a label of `label_len` and payload of `len` bytes
 *  (SIZE_MAX when the bound itself would not fit a size_t). */
size_t wsg_envelope_data_bound(size_t label_len, size_t len);

/** Writes {"ch":"<label>","id":"<id>","data":"<payload>"} into `out` (capacity `cap`, not NUL-terminated),
 *  keys in that order, no spaces. `id` NULL writes "id":null (pub/sub channels). When `payload` is valid
 *  UTF-8 (protocol/utf8.h) it is a JSON string ("data"), escaped per RFC 8259: \" \\ \b \f \n \r \t, other
 *  bytes below 0x20 and 0x7f as \u00XX, and U+2028/U+2029 as \u2028/\u2029 (so the text is also valid
 *  JavaScript); otherwise the key is "data_b64" with standard padded base64 of the bytes. The label is
 *  escaped the same way (invalid UTF-8 bytes in it become \ufffd, one for each byte that does not start a
 *  valid character). '/' and every other byte are written as they are. Returns the length written or -ENOSPC
 *  (`out` may then hold a partial text). Borrows all. */
ssize_t wsg_envelope_data(char *out, size_t cap, wsg_str_t label, const wsg_stream_id_t *id,
                          const void *payload, size_t len);

/** A gap notice: {"ch":"<label>","gap":true,"after":"<after>","reason":"<reason>"}; `reason` is a short ASCII
 *  word ("trimmed": entries after `after` are no longer kept; "replay_max": more entries than a resume may
 *  replay), escaped like the label all the same. Returns the length (not NUL-terminated) or -ENOSPC. Borrows
 *  all. */
ssize_t wsg_envelope_gap(char *out, size_t cap, wsg_str_t label, wsg_stream_id_t after, const char *reason);

#endif
