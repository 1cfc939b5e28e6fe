/* A strict parser of the gateway's logfmt lines, for tests and the log fuzz target: it undoes the renderer's
 * escapes and fails on anything the renderer must not produce. */
#ifndef WSG_TESTS_UNIT_LOGFMT_PARSE_H
#define WSG_TESTS_UNIT_LOGFMT_PARSE_H

#include <stdlib.h>
#include <string.h>

/* Parses a logfmt line back into at most 32 (key, value) pairs, undoing the renderer's escapes. Returns the
 * number of pairs, or -1 when the line is not well formed (one line, key=value tokens, quotes closed). */
typedef struct pair {
    char key[64];
    char value[2048];
    size_t value_len;
} pair_t;

static inline int parse_logfmt(const char *text, pair_t *pairs, int max)
{
    size_t len = strlen(text);
    if (len == 0 || text[len - 1] != '\n' || memchr(text, '\n', len - 1) != NULL)
        return -1;
    int n = 0;
    const char *p = text, *end = text + len - 1;
    while (p < end) {
        if (n == max)
            return -1;
        const char *eq = p;
        while (eq < end && *eq != '=' && *eq != ' ' && *eq != '"')
            eq++;
        if (eq >= end || *eq != '=' || eq == p || (size_t)(eq - p) >= sizeof pairs[n].key)
            return -1;
        memcpy(pairs[n].key, p, (size_t)(eq - p));
        pairs[n].key[eq - p] = '\0';
        p = eq + 1;
        size_t v = 0;
        if (p < end && *p == '"') {
            p++;
            while (p < end && *p != '"') {
                char c = *p++;
                if (c == '\\') {
                    if (p >= end)
                        return -1;
                    char e = *p++;
                    if (e == 'n')
                        c = '\n';
                    else if (e == 'r')
                        c = '\r';
                    else if (e == 't')
                        c = '\t';
                    else if (e == 'x' && end - p >= 2) {
                        char hex[3] = {p[0], p[1], 0};
                        c = (char)strtol(hex, NULL, 16);
                        p += 2;
                    } else
                        c = e;
                }
                if (v < sizeof pairs[n].value)
                    pairs[n].value[v++] = c;
            }
            if (p >= end)
                return -1; /* quote not closed */
            p++;
        } else {
            while (p < end && *p != ' ') {
                if (*p == '"' || *p == '=' || *p == '\\')
                    return -1;
                if (v < sizeof pairs[n].value)
                    pairs[n].value[v++] = *p;
                p++;
            }
        }
        if (v >= sizeof pairs[n].value)
            v = sizeof pairs[n].value - 1;
        pairs[n].value[v] = '\0'; /* values are also compared as strings */
        pairs[n].value_len = v;
        n++;
        if (p < end) {
            if (*p != ' ')
                return -1;
            p++;
        }
    }
    return n;
}

#endif
