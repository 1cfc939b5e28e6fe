/* Fuzzes wsgate.v1 envelopes: the text is always JSON to cJSON, reads back to the label, id and payload
 * (base64 when the payload is not UTF-8), fits the bound, and every smaller capacity is refused. The input is
 * "<label>\0<payload>"; its first bytes also pick the id. */
#include <errno.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base64.h"
#include "envelope.h"
#include "utf8.h"

#include "envelope_parse.h"
#include "fuzz.h"

static void check_data(wsg_str_t label, const wsg_stream_id_t *id, const uint8_t *payload, size_t len,
                       uint64_t *rng)
{
    size_t bound = wsg_envelope_data_bound(label.len, len);
    char *out = malloc(bound), *a = malloc(bound), *b = malloc(bound), *c = malloc(bound);
    FUZZ_ASSERT(out && a && b && c);
    ssize_t n = wsg_envelope_data(out, bound, label, id, payload, len);
    FUZZ_ASSERT(n > 0 && (size_t)n <= bound);
    FUZZ_ASSERT(wsg_envelope_data(out, (size_t)n - 1, label, id, payload, len) == -ENOSPC);
    FUZZ_ASSERT(wsg_envelope_data(out, fuzz_next(rng) % (size_t)n, label, id, payload, len) == -ENOSPC);
    FUZZ_ASSERT(wsg_envelope_data(out, (size_t)n, label, id, payload, len) == n);

    const char *end = NULL;
    cJSON *json = cJSON_ParseWithLengthOpts(out, (size_t)n, &end, false);
    FUZZ_ASSERT(json != NULL && end == out + n && cJSON_IsObject(json));
    cJSON *ch = cJSON_GetObjectItemCaseSensitive(json, "ch");
    FUZZ_ASSERT(cJSON_IsString(ch));

    parsed_envelope_t e = {.label = a, .id = b, .data = c};
    FUZZ_ASSERT(envelope_parse(out, (size_t)n, &e));
    FUZZ_ASSERT(e.has_id == (id != NULL));
    if (id != NULL) {
        wsg_stream_id_t back;
        FUZZ_ASSERT(wsg_stream_id_parse(e.id, e.id_len, &back) == 0 && wsg_stream_id_cmp(back, *id) == 0);
    }
    /* The label reads back as itself when it is UTF-8; otherwise it is UTF-8 all the same. */
    FUZZ_ASSERT(wsg_utf8_is_valid((const uint8_t *)e.label, e.label_len));
    if (wsg_utf8_is_valid((const uint8_t *)label.ptr, label.len))
        FUZZ_ASSERT(e.label_len == label.len && memcmp(e.label, label.ptr, label.len) == 0);
    /* cJSON agrees with the strict reader up to the first NUL (its strings stop there). */
    size_t cut = strnlen(e.label, e.label_len);
    FUZZ_ASSERT(strlen(ch->valuestring) == cut && memcmp(ch->valuestring, e.label, cut) == 0);

    bool is_utf8 = wsg_utf8_is_valid(payload, len);
    FUZZ_ASSERT(e.is_b64 == !is_utf8);
    cJSON *d = cJSON_GetObjectItemCaseSensitive(json, is_utf8 ? "data" : "data_b64");
    FUZZ_ASSERT(cJSON_IsString(d));
    if (is_utf8) {
        FUZZ_ASSERT(e.data_len == len && memcmp(e.data, payload, len) == 0);
        cut = strnlen(e.data, e.data_len);
        FUZZ_ASSERT(strlen(d->valuestring) == cut && memcmp(d->valuestring, e.data, cut) == 0);
    } else {
        uint8_t *raw = malloc(len + 1);
        FUZZ_ASSERT(raw != NULL);
        FUZZ_ASSERT(wsg_base64_decode(e.data, e.data_len, raw, len + 1, false) == (ssize_t)len);
        FUZZ_ASSERT(memcmp(raw, payload, len) == 0);
        FUZZ_ASSERT(strlen(d->valuestring) == e.data_len);
        free(raw);
    }
    cJSON_Delete(json);
    free(out);
    free(a);
    free(b);
    free(c);
}

static void check_gap(wsg_str_t label, wsg_stream_id_t after, uint64_t *rng)
{
    const char *reason = fuzz_next(rng) & 1 ? "trimmed" : "replay_max";
    size_t cap = 6 * label.len + 128;
    char *out = malloc(cap);
    FUZZ_ASSERT(out != NULL);
    ssize_t n = wsg_envelope_gap(out, cap, label, after, reason);
    FUZZ_ASSERT(n > 0 && (size_t)n <= cap);
    FUZZ_ASSERT(wsg_envelope_gap(out, (size_t)n - 1, label, after, reason) == -ENOSPC);
    FUZZ_ASSERT(wsg_envelope_gap(out, (size_t)n, label, after, reason) == n);
    cJSON *json = cJSON_ParseWithLength(out, (size_t)n);
    FUZZ_ASSERT(json != NULL);
    FUZZ_ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(json, "gap")));
    cJSON *r = cJSON_GetObjectItemCaseSensitive(json, "reason");
    FUZZ_ASSERT(cJSON_IsString(r) && strcmp(r->valuestring, reason) == 0);
    cJSON *aft = cJSON_GetObjectItemCaseSensitive(json, "after");
    wsg_stream_id_t back;
    FUZZ_ASSERT(cJSON_IsString(aft) &&
                wsg_stream_id_parse(aft->valuestring, strlen(aft->valuestring), &back) == 0 &&
                wsg_stream_id_cmp(back, after) == 0);
    cJSON_Delete(json);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    uint64_t rng = fuzz_seed(data, size);
    const uint8_t *nul = memchr(data, '\0', size);
    wsg_str_t label = {(const char *)data, nul ? (size_t)(nul - data) : 0};
    const uint8_t *payload = nul ? nul + 1 : data;
    size_t len = nul ? size - label.len - 1 : size;
    wsg_stream_id_t id = {fuzz_next(&rng), fuzz_next(&rng)};
    if (rng & 2)
        id.ms %= 1000; /* short ids too */
    check_data(label, (rng & 1) ? &id : NULL, payload, len, &rng);
    check_gap(label, id, &rng);
    /* The payload as a label, and the label as a payload. */
    check_data((wsg_str_t){(const char *)payload, len}, &id, (const uint8_t *)label.ptr, label.len, &rng);
    return 0;
}
