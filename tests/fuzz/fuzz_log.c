/* Fuzz target: the log renderer. Fields decoded from the input (keys from the code's alphabet and forged
 * ones, string values of any bytes, numbers, channel names) are rendered as logfmt and as JSON into buffers
 * of any size. Invariants: one line, newline-terminated, NUL-terminated, within the buffer; the logfmt line
 * parses back strictly with each key once, and every string field written whole comes back byte for byte; the
 * JSON line is one valid object with each key once. */
#include <cjson/cJSON.h>
#include <string.h>

#include "fuzz.h"
#include "log.h"
#include "logfmt_parse.h"

static const char *const keys[] = {"conn", "why",   "facility", "user", "channel", "x",   "event",
                                   "ts",   "level", "Bad Key",  "",     "k=v",     "conn"};
#define NKEYS (sizeof keys / sizeof keys[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wsg_log_field_t fields[8];
    size_t n = 0, at = 0;
    while (n < 8 && at + 3 <= size) {
        uint8_t key = data[at], type = data[at + 1] % 4, len = data[at + 2];
        at += 3;
        size_t take = len <= size - at ? len : size - at;
        wsg_log_field_t f = {
            .key = keys[key % NKEYS], .type = type, .len = take, .v.str = (const char *)data + at};
        if (type == WSG_LOG_INT || type == WSG_LOG_UINT) {
            uint64_t v = 0;
            memcpy(&v, data + at, take < 8 ? take : 8);
            f.v.u = v;
        }
        at += take;
        fields[n++] = f;
    }
    static char out[4200];
    size_t cap = WSG_LOG_LINE_MIN + (size ? data[0] * 15u : 0);
    for (int is_json = 0; is_json < 2; is_json++) {
        size_t len = wsg_log_render(out, cap, is_json, 1796052731617ull, WSG_LOG_INFO, "ev", fields, n);
        FUZZ_ASSERT(len > 0 && len < cap && out[len] == '\0' && out[len - 1] == '\n');
        FUZZ_ASSERT(memchr(out, '\n', len - 1) == NULL && strlen(out) == len);
        if (is_json) {
            cJSON *j = cJSON_Parse(out);
            FUZZ_ASSERT(j != NULL && cJSON_IsObject(j));
            for (cJSON *a = j->child; a != NULL; a = a->next)
                for (cJSON *b = a->next; b != NULL; b = b->next)
                    FUZZ_ASSERT(strcmp(a->string, b->string) != 0); /* each key once */
            FUZZ_ASSERT(strcmp(cJSON_GetObjectItemCaseSensitive(j, "event")->valuestring, "ev") == 0);
            cJSON_Delete(j);
            continue;
        }
        static pair_t pairs[32];
        int np = parse_logfmt(out, pairs, 32);
        FUZZ_ASSERT(np >= 3);
        FUZZ_ASSERT(strcmp(pairs[2].key, "event") == 0 && strcmp(pairs[2].value, "ev") == 0);
        for (int a = 0; a < np; a++)
            for (int b = a + 1; b < np; b++)
                FUZZ_ASSERT(strcmp(pairs[a].key, pairs[b].key) != 0);
        /* A string written whole (not cut) reads back as it was. */
        for (int p = 3; p < np; p++) {
            if (strcmp(pairs[p].key, "truncated") == 0) {
                FUZZ_ASSERT(p == np - 1 && strcmp(pairs[p].value, "true") == 0);
                continue;
            }
            size_t i = 0;
            while (i < n && strcmp(fields[i].key, pairs[p].key) != 0)
                i++; /* the first field of a key is the one written */
            FUZZ_ASSERT(i < n);
            if (fields[i].type == WSG_LOG_STR && fields[i].len <= WSG_LOG_VALUE_MAX) {
                FUZZ_ASSERT(pairs[p].value_len == fields[i].len);
                FUZZ_ASSERT(memcmp(pairs[p].value, fields[i].v.str, fields[i].len) == 0);
            }
        }
    }
    return 0;
}
