/* ws4redis channel (and storage key) names: {prefix}broadcast:{facility} and the identity audiences. */
#ifndef WSG_PROTOCOL_CHANNEL_H
#define WSG_PROTOCOL_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "str.h"

typedef enum wsg_audience {
    WSG_AUDIENCE_BROADCAST,
    WSG_AUDIENCE_GROUP,
    WSG_AUDIENCE_USER,
    WSG_AUDIENCE_SESSION,
} wsg_audience_t;

/** Writes the channel name into `out` (capacity `cap`, NUL-terminated):
 *  broadcast: "{prefix:}broadcast:{facility}", group: "{prefix:}group:{ident}:{facility}",
 *  user: "{prefix:}user:{ident}:{facility}", session: "{prefix:}session:{ident}:{facility}", where "{prefix:}"
 *  is empty when `prefix` is empty and "<prefix>:" otherwise. `ident` is ignored for broadcast.
 *  Nothing is escaped. Returns the length without the NUL, or -ENOSPC. Borrows every view. */
ssize_t wsg_channel_name(char *out, size_t cap, wsg_str_t prefix, wsg_audience_t audience, wsg_str_t ident,
                         wsg_str_t facility);

/** True when `ident` may be used as a user, group or session name: not empty, at most 256 bytes, valid
 *  UTF-8, and without ':' or control characters (below 0x20, or 0x7f), so that a channel name has exactly
 *  one reading. */
bool wsg_channel_ident_is_valid(wsg_str_t ident);

/** Writes `name` (`len` bytes) into `out` (capacity `cap` >= 1, NUL-terminated) for a log line, with every
 *  segment that follows a "session" segment redacted: a session channel is "{prefix:}session:{key}:{facility}"
 *  and the key is as good as a login cookie. A redacted segment keeps its first 4 bytes (cut at a UTF-8
 *  boundary) and becomes "abcd~" followed by 6 hex digits of a hash of the whole segment, so that two
 *  sessions can still be told apart in a log. Cut to fit `cap`. Returns the length written. Borrows `name`. */
size_t wsg_channel_redact(const char *name, size_t len, char *out, size_t cap);

/** The channel's label as clients see it (the "ch" of wsgate.v1 messages, and the key suffix of
 *  `since.<label>`): `name` without the "<prefix>:" part (when `prefix` is not empty and `name` starts with
 *  "<prefix>:"), and a session channel "session:<key>:<facility>" becomes "session:<facility>", so that a
 *  session key never reaches a page's script. A name "session:<key>" without a facility becomes "session:"
 *  (the key is dropped all the same). Other names are kept as they are. Writes NUL-terminated into `out`
 *  (capacity `cap`); returns the length or -ENOSPC. Borrows `name` and `prefix`. */
ssize_t wsg_channel_label(const char *name, size_t len, wsg_str_t prefix, char *out, size_t cap);

#endif
