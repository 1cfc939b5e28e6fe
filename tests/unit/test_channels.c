/* Unit tests for gateway/channels.c: the table of one loop's channels. */
#include "channels.h"

#include <stdio.h>

#include "test.h"

static void count_channel(wsg_channel_t *ch, void *arg)
{
    (*(int *)arg)++;
}

static void remove_odd(wsg_channel_t *ch, void *arg)
{
    wsg_channels_t *table = arg;
    if (ch->name[ch->name_len - 1] % 2 == 1)
        wsg_channels_remove(table, ch);
}

static void test_get_find_remove_across_growth(void)
{
    wsg_channels_t t;
    ASSERT_INT_EQ(wsg_channels_init(&t), 0);
    char name[32];
    for (int i = 0; i < 1000; i++) { /* the table grows several times */
        snprintf(name, sizeof name, "broadcast:%d", i);
        wsg_channel_t *ch = wsg_channels_get(&t, wsg_str_c(name));
        ASSERT_TRUE(ch != NULL);
        ASSERT_TRUE(wsg_channels_get(&t, wsg_str_c(name)) == ch); /* the same one again */
    }
    ASSERT_UINT_EQ(t.count, 1000);
    wsg_channel_t *ch = wsg_channels_find(&t, "broadcast:500", 13);
    ASSERT_TRUE(ch != NULL && strcmp(ch->name, "broadcast:500") == 0 &&
                ch->state == WSG_CHANNEL_UNSUBSCRIBED);
    ASSERT_TRUE(wsg_channels_find(&t, "broadcast:50", 13) == NULL); /* the length is part of the name */
    ASSERT_TRUE(wsg_channels_find(&t, "broadcast:1000", 14) == NULL);
    wsg_channels_each(&t, remove_odd, &t); /* removing the channel in hand is allowed */
    int n = 0;
    wsg_channels_each(&t, count_channel, &n);
    ASSERT_INT_EQ(n, 500);
    ASSERT_UINT_EQ(t.count, 500);
    ASSERT_TRUE(wsg_channels_find(&t, "broadcast:501", 13) == NULL);
    wsg_channels_dispose(&t);
}

static void test_names_past_the_limit_are_refused(void)
{
    wsg_channels_t t;
    wsg_channels_init(&t);
    char name[WSG_CHANNEL_NAME_MAX + 2];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    ASSERT_TRUE(wsg_channels_get(&t, wsg_str_c(name)) == NULL);
    name[WSG_CHANNEL_NAME_MAX] = '\0';
    ASSERT_TRUE(wsg_channels_get(&t, wsg_str_c(name)) != NULL);
    wsg_channels_dispose(&t);
}

TEST_MAIN("channels", TEST_CASE(test_get_find_remove_across_growth),
          TEST_CASE(test_names_past_the_limit_are_refused))
