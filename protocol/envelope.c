/* wsgate.v1 envelopes: JSON built straight into the caller's buffer, escaped so that any bytes give text that
 * both JSON and JavaScript parsers accept. */
#include "envelope.h"
#include "writer.h"

#include <errno.h>
#include <stdint.h>

#include "base64.h"
#include "utf8.h"

/* Every input byte becomes at most 6 output bytes ("\u00XX", or "\ufffd" for an invalid byte; U+2028 is 3
 * bytes in and 6 out), and base64 needs fewer than that for any non-empty input. */
#define ESCAPE_MAX 6

/* The bytes around label, id and payload: {"ch":"","id":"<41>","data_b64":""} is 72; "gap" notices are
 * measured by the writer. */
#define DATA_FIXED 80

size_t wsg_envelope_data_bound(size_t label_len, size_t len)
{
    size_t room = (SIZE_MAX - DATA_FIXED) / ESCAPE_MAX;
    if (label_len > room || len > room - label_len)
        return SIZE_MAX;
    return DATA_FIXED + ESCAPE_MAX * (label_len + len);
}

/* The length of the valid UTF-8 character at p (1 to 4), or 0 when p[0] does not start one. */
static size_t char_len(const uint8_t *p, size_t avail)
{
    size_t n = p[0] < 0x80 ? 1 : p[0] < 0xc2 ? 0 : p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : p[0] < 0xf5 ? 4 : 0;
    return n > 0 && n <= avail && wsg_utf8_is_valid(p, n) ? n : 0;
}

/* Appends `n` bytes as the inside of a JSON string. Bytes that do not start a valid character become
 * \ufffd (the payload is checked before, so only a label has them). */
static void put_escaped(wsg_writer_t *w, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0; /* start of the bytes that go out as they are */
    for (size_t i = 0; i < n;) {
        uint8_t c = p[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            i++;
            continue;
        }
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        size_t esc_len = 6, k = 1;
        if (c >= 0x80) {
            k = char_len(p + i, n - i);
            if (k == 3 && c == 0xe2 && p[i + 1] == 0x80 && (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
                /* U+2028 and U+2029 end a line in JavaScript (before ES2019) though not in JSON. */
                esc[2] = '2';
                esc[3] = '0';
                esc[4] = '2';
                esc[5] = p[i + 2] == 0xa8 ? '8' : '9';
            } else if (k == 0) {
                esc[2] = 'f';
                esc[3] = 'f';
                esc[4] = 'f';
                esc[5] = 'd';
                k = 1;
            } else {
                i += k;
                continue;
            }
        } else if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
            esc[1] = c == '"'    ? '"'
                     : c == '\\' ? '\\'
                     : c == '\b' ? 'b'
                     : c == '\f' ? 'f'
                     : c == '\n' ? 'n'
                     : c == '\r' ? 'r'
                                 : 't';
            esc_len = 2;
        }
        wsg_writer_put(w, p + run, i - run);
        wsg_writer_put(w, esc, esc_len);
        i += k;
        run = i;
    }
    wsg_writer_put(w, p + run, n - run);
}

static void put_string(wsg_writer_t *w, wsg_str_t s)
{
    wsg_writer_put(w, "\"", 1);
    put_escaped(w, (const uint8_t *)s.ptr, s.len);
    wsg_writer_put(w, "\"", 1);
}

static void put_id(wsg_writer_t *w, wsg_stream_id_t id)
{
    char buf[WSG_STREAM_ID_MAX_LEN + 1];
    size_t n = wsg_stream_id_format(id, buf);
    wsg_writer_put(w, "\"", 1);
    wsg_writer_put(w, buf, n);
    wsg_writer_put(w, "\"", 1);
}

/* Appends the base64 of `len` bytes. wsg_base64_encode writes a NUL after the text; the closing "} that
 * must follow has room for it, so the NUL is only written when those two bytes fit too. */
static void put_base64(wsg_writer_t *w, const uint8_t *p, size_t len)
{
    size_t n = WSG_BASE64_ENCODED_LEN(len);
    if (w->overflow || n + 2 > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    w->len += wsg_base64_encode(p, len, w->buf + w->len);
}

static ssize_t finish(const wsg_writer_t *w)
{
    return w->overflow ? -ENOSPC : (ssize_t)w->len;
}

ssize_t wsg_envelope_data(char *out, size_t cap, wsg_str_t label, const wsg_stream_id_t *id,
                          const void *payload, size_t len)
{
    wsg_writer_t w = wsg_writer_init(out, cap);
    wsg_writer_puts(&w, "{\"ch\":");
    put_string(&w, label);
    wsg_writer_puts(&w, ",\"id\":");
    if (id != NULL)
        put_id(&w, *id);
    else
        wsg_writer_puts(&w, "null");
    const uint8_t *p = payload;
    if (wsg_utf8_is_valid(p, len)) {
        wsg_writer_puts(&w, ",\"data\":");
        put_string(&w, (wsg_str_t){payload, len});
    } else {
        wsg_writer_puts(&w, ",\"data_b64\":\"");
        put_base64(&w, p, len);
        wsg_writer_puts(&w, "\"");
    }
    wsg_writer_puts(&w, "}");
    return finish(&w);
}

ssize_t wsg_envelope_gap(char *out, size_t cap, wsg_str_t label, wsg_stream_id_t after, const char *reason)
{
    wsg_writer_t w = wsg_writer_init(out, cap);
    wsg_writer_puts(&w, "{\"ch\":");
    put_string(&w, label);
    wsg_writer_puts(&w, ",\"gap\":true,\"after\":");
    put_id(&w, after);
    wsg_writer_puts(&w, ",\"reason\":");
    put_string(&w, wsg_str_c(reason));
    wsg_writer_puts(&w, "}");
    return finish(&w);
}
