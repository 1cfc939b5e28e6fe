/* Unit tests for gateway/msgq.c: the ring of message references behind an output. */
#include "msgq.h"

#include "test.h"

static wsg_msg_t *text(const char *s)
{
    return wsg_msg_new_data(s, strlen(s));
}

/* The payloads in order, joined with '|'. */
static const char *contents(const wsg_msgq_t *q, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < q->count; i++) {
        const wsg_msg_t *m = wsg_msgq_at(q, i);
        used += (size_t)snprintf(out + used, cap - used, "%s%.*s", i ? "|" : "", (int)m->payload_len,
                                 (const char *)wsg_msg_payload(m));
    }
    return out;
}

static void test_insert_pop_and_wrap(void)
{
    wsg_msgq_t q = {0};
    wsg_msg_t *a = text("a"), *b = text("b"), *c = text("c"), *p = text("p");
    char buf[256];
    for (int round = 0; round < 10; round++) { /* wraps around the ring several times */
        ASSERT_INT_EQ(wsg_msgq_insert(&q, q.count, a), 0);
        ASSERT_INT_EQ(wsg_msgq_insert(&q, q.count, b), 0);
        ASSERT_INT_EQ(wsg_msgq_insert(&q, q.count, c), 0);
        ASSERT_INT_EQ(wsg_msgq_insert(&q, 1, p), 0); /* in the middle */
        ASSERT_STR_EQ(contents(&q, buf, sizeof buf), "a|p|b|c");
        wsg_msgq_pop(&q, 2);
        ASSERT_STR_EQ(contents(&q, buf, sizeof buf), "b|c");
        wsg_msgq_pop(&q, 2);
    }
    ASSERT_UINT_EQ(a->refcount, 1); /* every reference the ring took was dropped */
    ASSERT_UINT_EQ(p->refcount, 1);
    wsg_msgq_dispose(&q);
    wsg_msg_unref(a);
    wsg_msg_unref(b);
    wsg_msg_unref(c);
    wsg_msg_unref(p);
}

static void test_a_burst_grows_the_ring_and_an_empty_ring_lets_it_go(void)
{
    wsg_msgq_t q = {0};
    wsg_msg_t *m = text("m");
    for (int i = 0; i < 1000; i++)
        ASSERT_INT_EQ(wsg_msgq_insert(&q, q.count, m), 0);
    ASSERT_UINT_EQ(m->refcount, 1001);
    ASSERT_TRUE(q.cap >= 1000);
    wsg_msgq_pop(&q, 1000);
    ASSERT_TRUE(q.items == NULL); /* an idle output holds no burst-sized ring */
    ASSERT_UINT_EQ(m->refcount, 1);
    wsg_msgq_insert(&q, 0, m);
    wsg_msgq_pop(&q, 1);
    ASSERT_TRUE(q.items != NULL); /* a small ring is kept */
    wsg_msgq_dispose(&q);
    wsg_msg_unref(m);
}

static bool drop_x(const wsg_msg_t *msg, void *arg)
{
    (*(int *)arg)++;
    return msg->payload_len == 1 && wsg_msg_payload(msg)[0] == 'x';
}

static void test_remove_if_keeps_the_order_of_the_rest(void)
{
    wsg_msgq_t q = {0};
    const char *items[] = {"a", "x", "b", "x", "x", "c", "x"};
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        wsg_msg_t *m = text(items[i]);
        wsg_msgq_insert(&q, q.count, m);
        wsg_msg_unref(m);
    }
    int asked = 0;
    ASSERT_UINT_EQ(wsg_msgq_remove_if(&q, 2, drop_x, &asked), 3); /* the first two are left alone */
    ASSERT_INT_EQ(asked, 5);
    char buf[64];
    ASSERT_STR_EQ(contents(&q, buf, sizeof buf), "a|x|b|c");
    wsg_msgq_dispose(&q); /* ASan: the removed messages were freed, the rest here */
}

TEST_MAIN("msgq", TEST_CASE(test_insert_pop_and_wrap),
          TEST_CASE(test_a_burst_grows_the_ring_and_an_empty_ring_lets_it_go),
          TEST_CASE(test_remove_if_keeps_the_order_of_the_rest))
