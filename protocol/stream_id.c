/* Redis stream ids, read and written as Redis does (XADD, XRANGE): two unsigned 64-bit decimal parts. */
#include "stream_id.h"

#include <errno.h>

bool wsg_stream_id_reader_feed(wsg_stream_id_reader_t *r, char c)
{
    if (r->is_bad)
        return false;
    uint64_t *part = r->part == 0 ? &r->id.ms : &r->id.seq;
    if (c >= '0' && c <= '9') {
        uint64_t d = (uint64_t)(c - '0');
        if (*part > (UINT64_MAX - d) / 10) {
            r->is_bad = true;
            return false;
        }
        *part = *part * 10 + d;
        r->has_digit = true;
        return true;
    }
    if (c == '-' && r->part == 0 && r->has_digit) {
        r->part = 1;
        r->has_digit = false;
        return true;
    }
    r->is_bad = true;
    return false;
}

int wsg_stream_id_reader_finish(const wsg_stream_id_reader_t *r, wsg_stream_id_t *out)
{
    /* An empty part is refused wherever it is: "", "-1", "1-". */
    if (r->is_bad || !r->has_digit)
        return -EINVAL;
    *out = r->id;
    return 0;
}

int wsg_stream_id_parse(const char *s, size_t len, wsg_stream_id_t *out)
{
    wsg_stream_id_reader_t r = wsg_stream_id_reader_init();
    for (size_t i = 0; i < len; i++)
        if (!wsg_stream_id_reader_feed(&r, s[i]))
            return -EINVAL;
    return wsg_stream_id_reader_finish(&r, out);
}

/* Writes the decimal digits of `v` at `out` and returns how many (1 to 20). */
static size_t put_u64(uint64_t v, char *out)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

size_t wsg_stream_id_format(wsg_stream_id_t id, char *out)
{
    size_t n = put_u64(id.ms, out);
    out[n++] = '-';
    n += put_u64(id.seq, out + n);
    out[n] = '\0';
    return n;
}

int wsg_stream_id_cmp(wsg_stream_id_t a, wsg_stream_id_t b)
{
    if (a.ms != b.ms)
        return a.ms < b.ms ? -1 : 1;
    if (a.seq != b.seq)
        return a.seq < b.seq ? -1 : 1;
    return 0;
}
