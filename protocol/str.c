/* Borrowed byte ranges: case-insensitive comparison, trimming and HTTP token lists. */
#include "str.h"

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* ASCII only, independent of the C locale (protocol code must not depend on setlocale()). */
static char to_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

bool wsg_str_eq_nocase(wsg_str_t a, wsg_str_t b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++)
        if (to_lower(a.ptr[i]) != to_lower(b.ptr[i]))
            return false;
    return true;
}

wsg_str_t wsg_str_trim(wsg_str_t s)
{
    if (s.ptr == NULL)
        return s;
    while (s.len > 0 && is_ws(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && is_ws(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

bool wsg_str_next_elem(wsg_str_t *rest, char sep, wsg_str_t *elem)
{
    if (rest->ptr == NULL)
        return false;
    const char *hit = memchr(rest->ptr, sep, rest->len);
    if (hit == NULL) {
        *elem = *rest;
        *rest = WSG_STR_NULL; /* the last element is out: the next call ends */
        return true;
    }
    *elem = (wsg_str_t){rest->ptr, (size_t)(hit - rest->ptr)};
    *rest = (wsg_str_t){hit + 1, rest->len - elem->len - 1};
    return true;
}

bool wsg_str_cut(wsg_str_t s, char c, wsg_str_t *before, wsg_str_t *after)
{
    const char *hit = s.ptr != NULL ? memchr(s.ptr, c, s.len) : NULL;
    if (hit == NULL)
        return false;
    *before = (wsg_str_t){s.ptr, (size_t)(hit - s.ptr)};
    *after = (wsg_str_t){hit + 1, s.len - before->len - 1};
    return true;
}

bool wsg_str_list_has_token(wsg_str_t list, wsg_str_t token)
{
    wsg_str_t elem;
    while (wsg_str_next_elem(&list, ',', &elem)) {
        elem = wsg_str_trim(elem);
        /* Empty elements (",,") are allowed by the list grammar (RFC 9110 5.6.1) and carry nothing. */
        if (elem.len > 0 && wsg_str_eq_nocase(elem, token))
            return true;
    }
    return false;
}
