/* Setting values: whole numbers with an optional unit suffix, strictly (no signs, spaces or fractions). */
#include "units.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

static char to_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool eq_nocase(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (to_lower(*a) != to_lower(*b))
            return false;
    return *a == *b;
}

/* Reads the leading digits of `text` into `*value` and points `*end` past them. Returns 0, -EINVAL when
 * there is no digit, or -ERANGE when the number does not fit in 64 bits. The whole run of digits is
 * consumed even on overflow, so that a caller can still tell a bad suffix (-EINVAL) from a big number. */
static int read_digits(const char *text, uint64_t *value, const char **end)
{
    uint64_t v = 0;
    bool overflow = false;
    const char *p = text;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            overflow = true;
        else
            v = v * 10 + d;
    }
    *end = p;
    if (p == text)
        return -EINVAL;
    *value = v;
    return overflow ? -ERANGE : 0;
}

/* `value * mult` into `*out`, or -ERANGE. */
static int scale(uint64_t value, uint64_t mult, uint64_t *out)
{
    if (mult != 0 && value > UINT64_MAX / mult)
        return -ERANGE;
    *out = value * mult;
    return 0;
}

int wsg_parse_duration_ms(const char *text, uint64_t *out_ms)
{
    static const struct {
        const char *suffix;
        uint64_t ms;
    } units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    if (text == NULL)
        return -EINVAL;
    uint64_t v;
    const char *end;
    int rc = read_digits(text, &v, &end);
    if (rc == -EINVAL)
        return rc;
    /* Units are lower case only: "M" would read as months to some, and "MS" helps no one. */
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].suffix) == 0)
            return rc < 0 ? rc : scale(v, units[i].ms, out_ms);
    return -EINVAL;
}

int wsg_parse_size(const char *text, uint64_t *out)
{
    static const struct {
        const char *suffix;
        unsigned shift;
    } units[] = {{"", 0},    {"b", 0},    {"k", 10}, {"kb", 10}, {"kib", 10}, {"m", 20},
                 {"mb", 20}, {"mib", 20}, {"g", 30}, {"gb", 30}, {"gib", 30}};
    if (text == NULL)
        return -EINVAL;
    uint64_t v;
    const char *end;
    int rc = read_digits(text, &v, &end);
    if (rc == -EINVAL)
        return rc;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (eq_nocase(end, units[i].suffix))
            return rc < 0 ? rc : scale(v, (uint64_t)1 << units[i].shift, out);
    return -EINVAL;
}

int wsg_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    if (text == NULL)
        return -EINVAL;
    uint64_t v;
    const char *end;
    int rc = read_digits(text, &v, &end);
    if (rc == -EINVAL || *end != '\0')
        return -EINVAL;
    if (rc < 0 || v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int wsg_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    if (text == NULL)
        return -EINVAL;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (eq_nocase(text, yes[i])) {
            *out = true;
            return 0;
        }
        if (eq_nocase(text, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}
