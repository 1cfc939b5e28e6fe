/* Setting values with units: durations ("250ms", "4s", "1m") and sizes ("16KiB"). */
#ifndef WSG_PROTOCOL_UNITS_H
#define WSG_PROTOCOL_UNITS_H

#include <stdbool.h>
#include <stdint.h>

/** Parses a duration: a whole number followed by "ms", "s", "m" or "h"; a bare number means seconds.
 *  Writes milliseconds into `*out_ms`. Returns 0, or -EINVAL for anything else (empty, negative, fractions,
 *  unknown unit, trailing text) and -ERANGE on overflow. Borrows `text`. */
int wsg_parse_duration_ms(const char *text, uint64_t *out_ms);

/** Parses a size: a whole number optionally followed by "B", "KiB", "MiB", "GiB", "K", "M", "G", "KB", "MB" or
 *  "GB" (all binary multiples, case-insensitive). Writes bytes into `*out`. Returns 0, -EINVAL or -ERANGE.
 *  Borrows `text`. */
int wsg_parse_size(const char *text, uint64_t *out);

/** Parses a whole decimal number in [min, max] into `*out`. Returns 0, -EINVAL or -ERANGE. Borrows `text`. */
int wsg_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out);

/** Parses a boolean: 1/0, true/false, yes/no, on/off (case-insensitive). Returns 0 or -EINVAL. */
int wsg_parse_bool(const char *text, bool *out);

#endif
