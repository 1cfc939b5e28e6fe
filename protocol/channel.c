/* ws4redis channel names; the same string is the PUBLISH/SUBSCRIBE channel and the GET/SETEX key. */
#include "channel.h"
#include "writer.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>

#include "utf8.h"

/* The longest identity accepted; channel names stay far below Redis's limits. */
#define IDENT_MAX 256

/* Appends `s`; the writer's capacity leaves room for the NUL. */
static void put(wsg_writer_t *w, wsg_str_t s)
{
    wsg_writer_put(w, s.ptr, s.len);
}

ssize_t wsg_channel_name(char *out, size_t cap, wsg_str_t prefix, wsg_audience_t audience, wsg_str_t ident,
                         wsg_str_t facility)
{
    static const char *const kinds[] = {
        [WSG_AUDIENCE_BROADCAST] = "broadcast:",
        [WSG_AUDIENCE_GROUP] = "group:",
        [WSG_AUDIENCE_USER] = "user:",
        [WSG_AUDIENCE_SESSION] = "session:",
    };
    assert((unsigned)audience < sizeof kinds / sizeof kinds[0]);
    if ((unsigned)audience >= sizeof kinds / sizeof kinds[0])
        return -EINVAL; /* not an enum value: a caller bug, answered without touching memory */
    wsg_writer_t w = wsg_writer_init(out, cap > 0 ? cap - 1 : 0);
    w.overflow = cap == 0;
    if (prefix.len > 0) {
        put(&w, prefix);
        put(&w, wsg_str_c(":"));
    }
    put(&w, wsg_str_c(kinds[audience]));
    if (audience != WSG_AUDIENCE_BROADCAST) {
        put(&w, ident);
        put(&w, wsg_str_c(":"));
    }
    put(&w, facility);
    if (w.overflow)
        return -ENOSPC;
    out[w.len] = '\0';
    return (ssize_t)w.len;
}

bool wsg_channel_ident_is_valid(wsg_str_t ident)
{
    if (ident.len == 0 || ident.len > IDENT_MAX)
        return false;
    for (size_t i = 0; i < ident.len; i++) {
        unsigned char c = (unsigned char)ident.ptr[i];
        if (c == ':' || c < 0x20 || c == 0x7f)
            return false;
    }
    return wsg_utf8_is_valid((const uint8_t *)ident.ptr, ident.len);
}

size_t wsg_channel_redact(const char *name, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    wsg_writer_t w = wsg_writer_init(out, cap > 0 ? cap - 1 : 0);
    wsg_str_t rest = {name, len};
    bool follows_session = false;
    for (bool more = true; more;) {
        wsg_str_t segment;
        more = wsg_str_cut(rest, ':', &segment, &rest);
        if (!more)
            segment = rest;
        if (follows_session && segment.len > 0) {
            uint64_t h = wsg_hash_bytes(segment.ptr, segment.len);
            char tail[7] = {'~'};
            for (int i = 0; i < 6; i++)
                tail[1 + i] = hex[(h >> (4 * (5 - i))) & 15];
            wsg_writer_put(&w, segment.ptr, wsg_utf8_cut((const uint8_t *)segment.ptr, segment.len, 4));
            wsg_writer_put(&w, tail, sizeof tail);
        } else {
            wsg_writer_put(&w, segment.ptr, segment.len);
        }
        if (more)
            wsg_writer_put(&w, ":", 1);
        follows_session = wsg_str_eq(segment, wsg_str_c("session"));
    }
    if (cap > 0)
        out[w.len] = '\0';
    return w.len;
}

ssize_t wsg_channel_label(const char *name, size_t len, wsg_str_t prefix, char *out, size_t cap)
{
    wsg_str_t rest = {name, len}, key, facility;
    if (prefix.len > 0 && len > prefix.len && memcmp(name, prefix.ptr, prefix.len) == 0 &&
        name[prefix.len] == ':')
        rest = (wsg_str_t){name + prefix.len + 1, len - prefix.len - 1};
    wsg_writer_t w = wsg_writer_init(out, cap > 0 ? cap - 1 : 0);
    w.overflow = cap == 0;
    static const char session[] = "session:";
    size_t session_len = sizeof session - 1;
    if (rest.len >= session_len && memcmp(rest.ptr, session, session_len) == 0) {
        /* Idents never hold ':', so the key ends at the next one and the facility (which may hold ':') is all
         * that follows. Without a next ':' the whole rest is the key. */
        wsg_str_t after = {rest.ptr + session_len, rest.len - session_len};
        if (!wsg_str_cut(after, ':', &key, &facility))
            facility = (wsg_str_t){after.ptr + after.len, 0};
        wsg_writer_put(&w, session, session_len);
        put(&w, facility);
    } else {
        put(&w, rest);
    }
    if (w.overflow)
        return -ENOSPC;
    out[w.len] = '\0';
    return (ssize_t)w.len;
}
