/* ws4redis URL scheme: the facility from the path, the channel switches from the query. */
#ifndef WSG_PROTOCOL_URL_H
#define WSG_PROTOCOL_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "str.h"
#include "stream_id.h"

/** Longest facility accepted, in bytes after percent-decoding. */
#define WSG_FACILITY_MAX 256

/** The query switches ws4redis knows, as bits. */
enum wsg_query_flag {
    WSG_Q_SUBSCRIBE_BROADCAST = 1u << 0,
    WSG_Q_SUBSCRIBE_USER = 1u << 1,
    WSG_Q_SUBSCRIBE_GROUP = 1u << 2,
    WSG_Q_SUBSCRIBE_SESSION = 1u << 3,
    WSG_Q_PUBLISH_BROADCAST = 1u << 4,
    WSG_Q_PUBLISH_USER = 1u << 5,
    WSG_Q_PUBLISH_GROUP = 1u << 6,
    WSG_Q_PUBLISH_SESSION = 1u << 7,
    WSG_Q_ECHO = 1u << 8,
};

#define WSG_Q_SUBSCRIBE_ANY                                                                              \
    (WSG_Q_SUBSCRIBE_BROADCAST | WSG_Q_SUBSCRIBE_USER | WSG_Q_SUBSCRIBE_GROUP | WSG_Q_SUBSCRIBE_SESSION)
#define WSG_Q_PUBLISH_ANY                                                                                \
    (WSG_Q_PUBLISH_BROADCAST | WSG_Q_PUBLISH_USER | WSG_Q_PUBLISH_GROUP | WSG_Q_PUBLISH_SESSION)

/** Splits a request target at the first '?' into its path and query (the query without the '?'; empty view
 *  when there is none; a '#' fragment, if any, is dropped from both). Results borrow `target`. */
void wsg_url_split(wsg_str_t target, wsg_str_t *path, wsg_str_t *query);

/** Percent-decodes `in` into `out` (capacity `cap`, not NUL-terminated). `%XX` with two hex digits becomes
 *  that byte; a '%' not followed by two hex digits is kept literally (as Python's unquote does). With
 *  `plus_is_space`, '+' becomes ' ' (query-string rules). Returns the decoded length or -ENOSPC.
 *  Borrows `in`. */
ssize_t wsg_url_decode(wsg_str_t in, char *out, size_t cap, bool plus_is_space);

/** Extracts the facility from the raw `path` of a request: the path is percent-decoded, must start with
 *  `prefix` (e.g. "/ws/"), and the facility is the rest, kept verbatim (a trailing '/' stays).
 *  Writes it into `out` (capacity at least WSG_FACILITY_MAX, not NUL-terminated) and its length into
 *  `*out_len`.
 *  Returns 0, -ENOENT when the decoded path does not start with `prefix`, -E2BIG when the facility is longer
 *  than WSG_FACILITY_MAX, or -EINVAL when it has control characters (below 0x20, or 0x7f) or is not valid
 *  UTF-8. Borrows `path` and `prefix`. */
int wsg_url_facility(wsg_str_t path, wsg_str_t prefix, char *out, size_t *out_len);

/** The ws4redis switches present in `query`: each '&'-separated key is percent-decoded ('+' as space),
 *  trimmed of ASCII white space as Python's str.strip() sees it (space, \t \n \v \f \r and 0x1c-0x1f) and
 *  ASCII-lower-cased, and compared with the switch names; values are ignored, unknown keys too. Keys of any
 *  length are handled without a fixed buffer.
 *  Returns the set of enum wsg_query_flag bits. Borrows `query`. */
uint32_t wsg_query_flags(wsg_str_t query);

/** The enum wsg_query_flag bit named exactly `name` ("subscribe-broadcast", ..., "echo"), or 0. */
uint32_t wsg_query_flag_by_name(const char *name);

/** Finds the first key of `query` that, normalised as in wsg_query_flags(), equals `name` (lower case), and
 *  writes its percent-decoded value ('+' as space, not trimmed) into `out` (capacity `cap`, not
 *  NUL-terminated).
 *  Returns the value's length (0 for a key without value), -ENOENT when absent, or -ENOSPC. Borrows all. */
ssize_t wsg_query_value(wsg_str_t query, const char *name, char *out, size_t cap);

/** The resume point for the channel labelled `label`: the value of key "since.<label>" when present (the key
 *  is percent-decoded ('+' as space) and stripped of white space as in wsg_query_flags(); "since." matched
 *  case-insensitively, the label part exactly, so a label that ends with white space can only be resumed by
 *  "since"), else of key "since" (normalised as in wsg_query_flags()). The first key of each kind counts. The
 *  value is percent-decoded ('+' as space, not trimmed) and parsed with wsg_stream_id_parse, with no length
 *  limit. Returns 0 (with *out set), -ENOENT when neither key is present, or -EINVAL when the value that
 *  applies is malformed (empty, not an id; "since.<label>" applies even when malformed). Borrows all. */
int wsg_query_since(wsg_str_t query, wsg_str_t label, wsg_stream_id_t *out);

/** 0 when every "since" and "since.<anything>" key of `query` (normalised as above, "since." matched
 *  case-insensitively; "since." with an empty label counts too) has a well-formed id, repeated keys included;
 *  -EINVAL otherwise (the upgrade refuses such a request with 400). Keys of any length, no fixed buffers that
 *  cut. Borrows `query`. */
int wsg_query_since_check(wsg_str_t query);

/** Finds the cookie `name` in a Cookie header value ("a=1; b=2") and points `*value` at its value (borrowed
 *  from `header`, surrounding double quotes removed). Returns true when found. */
bool wsg_cookie_value(wsg_str_t header, const char *name, wsg_str_t *value);

#endif
