/* Fuzzes the setting parsers: results stay within their contracts and agree with one another. */
#include <errno.h>
#include <string.h>

#include "units.h"

#include "fuzz.h"

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n > 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256)
        return 0;
    char text[257];
    memcpy(text, data, size);
    text[size] = '\0';
    size_t len = strlen(text);

    uint64_t plain = 0, ms = 0, bytes = 0;
    int rc_uint = wsg_parse_uint(text, 0, UINT64_MAX, &plain);
    int rc_dur = wsg_parse_duration_ms(text, &ms);
    int rc_size = wsg_parse_size(text, &bytes);
    FUZZ_ASSERT(rc_uint == 0 || rc_uint == -EINVAL || rc_uint == -ERANGE);
    FUZZ_ASSERT(rc_dur == 0 || rc_dur == -EINVAL || rc_dur == -ERANGE);
    FUZZ_ASSERT(rc_size == 0 || rc_size == -EINVAL || rc_size == -ERANGE);
    /* Anything accepted starts with a digit. */
    if (rc_uint != -EINVAL || rc_dur != -EINVAL || rc_size != -EINVAL)
        FUZZ_ASSERT(text[0] >= '0' && text[0] <= '9');
    /* A bare number is seconds for a duration and bytes for a size. */
    FUZZ_ASSERT((rc_uint != -EINVAL) == all_digits(text, len));
    if (rc_uint == 0) {
        FUZZ_ASSERT(rc_size == 0 && bytes == plain);
        FUZZ_ASSERT(plain > UINT64_MAX / 1000 ? rc_dur == -ERANGE : (rc_dur == 0 && ms == plain * 1000));
    }
    if (rc_uint == -ERANGE)
        FUZZ_ASSERT(rc_dur == -ERANGE && rc_size == -ERANGE);
    /* "<n>ms" agrees with the bare number. */
    if (len >= 3 && strcmp(text + len - 2, "ms") == 0 && all_digits(text, len - 2)) {
        text[len - 2] = '\0';
        uint64_t n;
        int rc = wsg_parse_uint(text, 0, UINT64_MAX, &n);
        FUZZ_ASSERT(rc == rc_dur && (rc != 0 || n == ms));
        text[len - 2] = 'm';
    }
    /* Bounds are honoured. */
    uint64_t lo = size > 0 ? data[0] : 0, hi = lo + (size > 1 ? data[1] : 0), v = 0;
    int rc = wsg_parse_uint(text, lo, hi, &v);
    if (rc == 0)
        FUZZ_ASSERT(v >= lo && v <= hi && rc_uint == 0 && v == plain);
    else if (rc_uint == 0)
        FUZZ_ASSERT(rc == -ERANGE && (plain < lo || plain > hi));

    bool b;
    rc = wsg_parse_bool(text, &b);
    FUZZ_ASSERT(rc == 0 || rc == -EINVAL);
    if (rc == 0)
        FUZZ_ASSERT(len >= 1 && len <= 5);
    return 0;
}
