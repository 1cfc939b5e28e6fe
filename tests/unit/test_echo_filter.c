/* Unit tests for gateway/echo_filter.c: a client's own publications recognised when they come back. */
#include "echo_filter.h"

#include "test.h"

static int ch_a, ch_b; /* channels are compared by address */

static void test_the_oldest_publication_of_a_channel_comes_back_first(void)
{
    wsg_echo_filter_t f = {0};
    ASSERT_TRUE(wsg_echo_filter_is_empty(&f));
    wsg_echo_filter_note(&f, &ch_a, 1, 10);
    wsg_echo_filter_note(&f, &ch_b, 2, 20);
    wsg_echo_filter_note(&f, &ch_a, 3, 30);
    ASSERT_FALSE(wsg_echo_filter_take(&f, &ch_a, 3, 30)); /* not the oldest of channel a: someone else's */
    ASSERT_FALSE(wsg_echo_filter_take(&f, &ch_a, 1, 11)); /* same hash, other length */
    ASSERT_TRUE(wsg_echo_filter_take(&f, &ch_a, 1, 10));
    ASSERT_TRUE(wsg_echo_filter_take(&f, &ch_a, 3, 30));  /* now the oldest of a */
    ASSERT_FALSE(wsg_echo_filter_take(&f, &ch_a, 3, 30)); /* taken once only */
    ASSERT_TRUE(wsg_echo_filter_take(&f, &ch_b, 2, 20));
    ASSERT_TRUE(wsg_echo_filter_is_empty(&f));
    wsg_echo_filter_dispose(&f);
}

static void test_it_forgets_the_oldest_past_its_bound(void)
{
    wsg_echo_filter_t f = {0};
    for (uint64_t i = 0; i < WSG_ECHO_FILTER_MAX + 10; i++)
        wsg_echo_filter_note(&f, &ch_a, i, 1);
    ASSERT_UINT_EQ(f.count, WSG_ECHO_FILTER_MAX);
    ASSERT_FALSE(wsg_echo_filter_take(&f, &ch_a, 0, 1)); /* forgotten: its echo reaches the client */
    ASSERT_TRUE(wsg_echo_filter_take(&f, &ch_a, 10, 1));
    wsg_echo_filter_clear(&f);
    ASSERT_TRUE(wsg_echo_filter_is_empty(&f));
    ASSERT_FALSE(wsg_echo_filter_take(&f, &ch_a, 11, 1));
    wsg_echo_filter_dispose(&f);
}

static void test_publications_lost_with_the_subscription(void)
{
    wsg_echo_filter_t f = {0};
    wsg_echo_filter_note(&f, &ch_a, 1, 10);
    wsg_echo_filter_note(&f, &ch_a, 2, 10);
    wsg_echo_filter_note(&f, &ch_b, 3, 10);
    wsg_echo_filter_lose(&f, &ch_a);
    wsg_echo_filter_note(&f, &ch_a, 4, 10);                    /* noted after the loss */
    ASSERT_FALSE(wsg_echo_filter_take_lost(&f, &ch_a, 4, 10)); /* not lost */
    ASSERT_FALSE(wsg_echo_filter_take_lost(&f, &ch_b, 3, 10)); /* channel b was not lost */
    ASSERT_TRUE(wsg_echo_filter_take(&f, &ch_a, 4, 10));       /* live: the oldest noted since the loss */
    ASSERT_TRUE(wsg_echo_filter_take(&f, &ch_a, 1, 10));       /* live: the oldest lost one */
    wsg_echo_filter_note(&f, &ch_a, 5, 10);
    ASSERT_TRUE(wsg_echo_filter_take_lost(&f, &ch_a, 2, 10)); /* the key held the last lost one */
    ASSERT_FALSE(wsg_echo_filter_take_lost(&f, &ch_a, 2, 10));
    wsg_echo_filter_note(&f, &ch_a, 6, 10);
    wsg_echo_filter_lose(&f, &ch_b);
    wsg_echo_filter_forget_lost(&f, &ch_a); /* nothing lost on a remains; 5 and 6 stay */
    wsg_echo_filter_forget_lost(&f, &ch_b);
    ASSERT_UINT_EQ(f.count, 2);
    ASSERT_FALSE(wsg_echo_filter_take(&f, &ch_a, 6, 10));
    ASSERT_TRUE(wsg_echo_filter_take(&f, &ch_a, 5, 10));
    ASSERT_TRUE(wsg_echo_filter_take(&f, &ch_a, 6, 10));
    ASSERT_TRUE(wsg_echo_filter_is_empty(&f));
    wsg_echo_filter_dispose(&f);
}

static void test_forgetting_lost_ones_keeps_order_across_the_ring_end(void)
{
    wsg_echo_filter_t f = {0};
    for (uint64_t i = 0; i < 6; i++)
        wsg_echo_filter_note(&f, &ch_a, i, 1);
    for (uint64_t i = 0; i < 6; i++)
        ASSERT_TRUE(wsg_echo_filter_take(&f, &ch_a, i, 1)); /* head moves to 6 of 8 */
    wsg_echo_filter_note(&f, &ch_b, 10, 1);
    wsg_echo_filter_note(&f, &ch_a, 11, 1);
    wsg_echo_filter_note(&f, &ch_b, 12, 1); /* wraps */
    wsg_echo_filter_note(&f, &ch_a, 13, 1);
    wsg_echo_filter_lose(&f, &ch_b);
    wsg_echo_filter_forget_lost(&f, &ch_b);
    ASSERT_UINT_EQ(f.count, 2);
    ASSERT_TRUE(wsg_echo_filter_take(&f, &ch_a, 11, 1));
    ASSERT_TRUE(wsg_echo_filter_take(&f, &ch_a, 13, 1));
    ASSERT_TRUE(wsg_echo_filter_is_empty(&f));
    wsg_echo_filter_dispose(&f);
}

TEST_MAIN("echo_filter", TEST_CASE(test_the_oldest_publication_of_a_channel_comes_back_first),
          TEST_CASE(test_it_forgets_the_oldest_past_its_bound),
          TEST_CASE(test_publications_lost_with_the_subscription),
          TEST_CASE(test_forgetting_lost_ones_keeps_order_across_the_ring_end))
