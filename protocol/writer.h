/* An append-only writer over a caller's buffer that remembers overflow instead of failing at each step. */
#ifndef WSG_PROTOCOL_WRITER_H
#define WSG_PROTOCOL_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct wsg_writer {
    char *buf;     /**< borrowed */
    size_t cap;
    size_t len;
    bool overflow; /**< a put did not fit: nothing after it was written */
} wsg_writer_t;

/** A writer of at most `cap` bytes into `buf` (borrowed). */
static inline wsg_writer_t wsg_writer_init(char *buf, size_t cap)
{
    return (wsg_writer_t){buf, cap, 0, false};
}

/** Appends `n` bytes (borrowed), or marks overflow when they do not fit. */
static inline void wsg_writer_put(wsg_writer_t *w, const void *p, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    if (n > 0)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
}

/** Appends a NUL-terminated string (without its NUL). */
static inline void wsg_writer_puts(wsg_writer_t *w, const char *s)
{
    wsg_writer_put(w, s, strlen(s));
}

#endif
