/* A tiny unit-test harness: ASSERT_* macros that print file:line and both values, and a runner. */
#ifndef WSG_TESTS_UNIT_TEST_H
#define WSG_TESTS_UNIT_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures_in_case;

#define TEST_FAIL_AT(...)                                                                                \
    do {                                                                                                 \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                                                \
        fprintf(stderr, __VA_ARGS__);                                                                    \
        fputc('\n', stderr);                                                                             \
        test_failures_in_case++;                                                                         \
    } while (0)

#define ASSERT_TRUE(cond)                                                                                \
    do {                                                                                                 \
        if (!(cond))                                                                                     \
            TEST_FAIL_AT("expected true: %s", #cond);                                                    \
    } while (0)

#define ASSERT_FALSE(cond) ASSERT_TRUE(!(cond))

#define ASSERT_INT_EQ(a, b)                                                                              \
    do {                                                                                                 \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                            \
        if (va_ != vb_)                                                                                  \
            TEST_FAIL_AT("%s == %s: %lld != %lld", #a, #b, va_, vb_);                                    \
    } while (0)

#define ASSERT_UINT_EQ(a, b)                                                                             \
    do {                                                                                                 \
        unsigned long long va_ = (unsigned long long)(a), vb_ = (unsigned long long)(b);                 \
        if (va_ != vb_)                                                                                  \
            TEST_FAIL_AT("%s == %s: %llu != %llu", #a, #b, va_, vb_);                                    \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                              \
    do {                                                                                                 \
        const char *sa_ = (a), *sb_ = (b);                                                               \
        if (sa_ == NULL || sb_ == NULL || strcmp(sa_, sb_) != 0)                                         \
            TEST_FAIL_AT("%s == %s: \"%s\" != \"%s\"", #a, #b, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)"); \
    } while (0)

/* Compares `len` bytes; prints both as escaped text. */
#define ASSERT_MEM_EQ(a, b, len)                                                                         \
    do {                                                                                                 \
        const void *ma_ = (a), *mb_ = (b);                                                               \
        size_t ml_ = (len);                                                                              \
        if (memcmp(ma_, mb_, ml_) != 0) {                                                                \
            TEST_FAIL_AT("%s == %s (%zu bytes) differ", #a, #b, ml_);                                    \
            test_dump_bytes("    left ", ma_, ml_);                                                      \
            test_dump_bytes("    right", mb_, ml_);                                                      \
        }                                                                                                \
    } while (0)

static inline void test_dump_bytes(const char *label, const void *p, size_t len)
{
    const unsigned char *b = p;
    fprintf(stderr, "%s: ", label);
    for (size_t i = 0; i < len && i < 64; i++)
        fprintf(stderr, (b[i] >= 0x20 && b[i] < 0x7f) ? "%c" : "\\x%02x", b[i]);
    fputc('\n', stderr);
}

typedef struct test_case {
    const char *name;
    void (*fn)(void);
} test_case_t;

#define TEST_CASE(fn) {#fn, fn}

/* Runs every case, prints one line per case and a closing "N passed, N failed" line; exit status 1 on any
 * failure. */
static inline int test_run_all(const char *suite, const test_case_t *cases, size_t n)
{
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        test_failures_in_case = 0;
        cases[i].fn();
        if (test_failures_in_case == 0) {
            passed++;
            printf("ok   %s.%s\n", suite, cases[i].name);
        } else {
            failed++;
            printf("FAIL %s.%s\n", suite, cases[i].name);
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#define TEST_MAIN(suite, ...)                                                                            \
    int main(void)                                                                                       \
    {                                                                                                    \
        static const test_case_t cases_[] = {__VA_ARGS__};                                               \
        return test_run_all(suite, cases_, sizeof cases_ / sizeof cases_[0]);                            \
    }

#endif
