/* Redis-style glob patterns (as PSUBSCRIBE reads them), matched in bounded time, and lists of them. */
#ifndef WSG_PROTOCOL_GLOB_H
#define WSG_PROTOCOL_GLOB_H

#include <stdbool.h>
#include <stddef.h>

/** True when `s` matches `pattern`: '*' any run of bytes (also empty), '?' any one byte, '[abc]', '[^abc]',
 *  '[a-z]' sets (a ']' right after '[' or '[^' is literal; a '-' first or last in a set is literal; a
 *  reversed range such as '[z-a]' is read as '[a-z]', as Redis does; inside a set '\' makes the next byte
 *  literal), '\' makes the next byte literal. Bytes compare exactly (case matters). A malformed pattern (an
 *  unterminated '[' or a trailing '\', see wsg_glob_list_check) matches nothing, so that a configuration
 *  mistake never grants more than was meant. Runs in O(plen * slen) at worst (no exponential backtracking).
 *  Borrows both. */
bool wsg_glob_match(const char *pattern, size_t plen, const char *s, size_t slen);

/** True when `s` matches one of the comma-separated patterns of `list` (each trimmed of spaces and tabs;
 *  empty entries ignored; a pattern cannot contain ',', not even after '\'). Borrows both. */
bool wsg_glob_list_match(const char *list, size_t list_len, const char *s, size_t slen);

/** For configuration checks: 0 when every pattern of `list` is well formed; -EINVAL for an unterminated '['
 *  or a trailing '\', with `*bad_at` (when not NULL) set to the byte offset in `list` of the first bad
 *  pattern's start (after its leading spaces and tabs). An empty list, or one of empty entries only, is well
 *  formed. */
int wsg_glob_list_check(const char *list, size_t list_len, size_t *bad_at);

#endif
