/* A strict reader of wsgate.v1 data envelopes for the tests: checks the exact layout the builder promises and
 * decodes its strings byte for byte (cJSON checks the JSON, but its strings end at a "\u0000"). */
#ifndef WSG_TESTS_UNIT_ENVELOPE_PARSE_H
#define WSG_TESTS_UNIT_ENVELOPE_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "str.h"

typedef struct parsed_envelope {
    char *label, *id, *data; /* decoded; owned by the caller's buffers */
    size_t label_len, id_len, data_len;
    bool has_id, is_b64;
} parsed_envelope_t;

static inline bool env_lit(const char **p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
        return false;
    *p += n;
    return true;
}

/* Writes code point `cp` as UTF-8. */
static inline size_t env_put_utf8(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    out[0] = (char)(0xe0 | cp >> 12);
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
}

/* Decodes the JSON string at *p (opening quote included) into `out` (room for as many bytes as the text).
 * Only the escapes the builder writes are taken: \" \\ \b \f \n \r \t and \uXXXX below U+D800; a raw byte
 * below 0x20 or 0x7f, or a raw U+2028/U+2029, is refused too. */
static inline bool env_string(const char **p, const char *end, char *out, size_t *out_len)
{
    size_t n = 0;
    if (!env_lit(p, end, "\""))
        return false;
    while (*p < end) {
        unsigned char c = (unsigned char)*(*p)++;
        if (c == '"') {
            *out_len = n;
            return true;
        }
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c == 0xe2 && end - *p >= 2 && (unsigned char)(*p)[0] == 0x80 &&
            ((unsigned char)(*p)[1] == 0xa8 || (unsigned char)(*p)[1] == 0xa9))
            return false;
        if (c != '\\') {
            out[n++] = (char)c;
            continue;
        }
        if (*p == end)
            return false;
        char e = *(*p)++;
        const char *simple = strchr("\"\\bfnrt", e);
        if (e != '\0' && simple != NULL) {
            out[n++] = "\"\\\b\f\n\r\t"[simple - "\"\\bfnrt"];
            continue;
        }
        if (e != 'u' || end - *p < 4)
            return false;
        uint32_t cp = 0;
        for (int k = 0; k < 4; k++) {
            int v = wsg_hex_value(*(*p)++);
            if (v < 0 || (v >= 10 && (*p)[-1] >= 'A' && (*p)[-1] <= 'F'))
                return false; /* lower-case hex only, as written */
            cp = cp << 4 | (uint32_t)v;
        }
        if (cp >= 0xd800 && cp <= 0xdfff)
            return false;
        n += env_put_utf8(cp, out + n);
    }
    return false;
}

/* Reads a whole data envelope of `len` bytes; the three buffers need `len` bytes each. */
static inline bool envelope_parse(const char *text, size_t len, parsed_envelope_t *e)
{
    const char *p = text, *end = text + len;
    if (!env_lit(&p, end, "{\"ch\":") || !env_string(&p, end, e->label, &e->label_len))
        return false;
    if (!env_lit(&p, end, ",\"id\":"))
        return false;
    e->has_id = !env_lit(&p, end, "null");
    if (e->has_id && !env_string(&p, end, e->id, &e->id_len))
        return false;
    e->is_b64 = env_lit(&p, end, ",\"data_b64\":");
    if (!e->is_b64 && !env_lit(&p, end, ",\"data\":"))
        return false;
    if (!env_string(&p, end, e->data, &e->data_len))
        return false;
    return env_lit(&p, end, "}") && p == end;
}

#endif
