/* Fuzzes stream ids: parsing any bytes against a plain reference, format/parse round trips, and the order. */
#include <errno.h>
#include <string.h>

#include "stream_id.h"

#include "fuzz.h"

/* The reference: digits, at most one '-' with digits on both sides, each part at most UINT64_MAX once its
 * leading zeros are dropped (compared as text). */
static bool reference_part(const char *s, size_t n, uint64_t *v)
{
    static const char max[] = "18446744073709551615";
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    while (n > 1 && s[0] == '0') {
        s++;
        n--;
    }
    if (n > 20 || (n == 20 && memcmp(s, max, 20) > 0))
        return false;
    *v = 0;
    for (size_t i = 0; i < n; i++)
        *v = *v * 10 + (uint64_t)(s[i] - '0');
    return true;
}

static bool reference_parse(const char *s, size_t n, wsg_stream_id_t *id)
{
    const char *dash = memchr(s, '-', n);
    id->seq = 0;
    if (dash == NULL)
        return reference_part(s, n, &id->ms);
    size_t a = (size_t)(dash - s);
    return reference_part(s, a, &id->ms) && reference_part(dash + 1, n - a - 1, &id->seq);
}

static wsg_stream_id_t take_id(const uint8_t *p)
{
    wsg_stream_id_t id;
    memcpy(&id.ms, p, 8);
    memcpy(&id.seq, p + 8, 8);
    return id;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    wsg_stream_id_t id = {1, 2}, want;
    int rc = wsg_stream_id_parse(s, size, &id);
    bool ok = size > 0 && reference_parse(s, size, &want);
    FUZZ_ASSERT(rc == 0 || rc == -EINVAL);
    FUZZ_ASSERT((rc == 0) == ok);
    if (ok) {
        FUZZ_ASSERT(wsg_stream_id_cmp(id, want) == 0);
        char out[WSG_STREAM_ID_MAX_LEN + 1];
        size_t n = wsg_stream_id_format(id, out);
        FUZZ_ASSERT(n <= WSG_STREAM_ID_MAX_LEN && n <= size + (memchr(s, '-', size) ? 0 : 2));
        FUZZ_ASSERT(out[n] == '\0' && strlen(out) == n);
        wsg_stream_id_t back;
        FUZZ_ASSERT(wsg_stream_id_parse(out, n, &back) == 0 && wsg_stream_id_cmp(back, id) == 0);
    } else {
        FUZZ_ASSERT(id.ms == 1 && id.seq == 2);
    }

    /* Binary ids from the input: format, parse back, and compare both ways. */
    if (size >= 32) {
        wsg_stream_id_t a = take_id(data), b = take_id(data + 16), back;
        char out[WSG_STREAM_ID_MAX_LEN + 1];
        size_t n = wsg_stream_id_format(a, out);
        FUZZ_ASSERT(n <= WSG_STREAM_ID_MAX_LEN);
        FUZZ_ASSERT(wsg_stream_id_parse(out, n, &back) == 0 && back.ms == a.ms && back.seq == a.seq);
        int ab = wsg_stream_id_cmp(a, b), ba = wsg_stream_id_cmp(b, a);
        FUZZ_ASSERT(ab == -ba && (ab == -1 || ab == 0 || ab == 1));
        FUZZ_ASSERT((ab == 0) == (a.ms == b.ms && a.seq == b.seq));
        FUZZ_ASSERT(ab != -1 || a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq));
    }
    return 0;
}
