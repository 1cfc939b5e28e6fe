/* Stand-ins for the Redis link calls the router makes: each call is recorded (verb and key), and a GET's
 * callback waits until the test answers it. For router tests without a Redis server. */
#ifndef WSG_TESTS_UNIT_FAKE_REDIS_H
#define WSG_TESTS_UNIT_FAKE_REDIS_H

#include <stddef.h>

#include "commands.h"
#include "stream_cmds.h"
#include "stream_reader.h"
#include "subscriber.h"

#define FAKE_REDIS_MAX 256

typedef struct fake_call {
    char text[300];          /* "SUBSCRIBE broadcast:x", "GET broadcast:x", "UNSUBSCRIBE broadcast:x",
                                "XREVRANGE s", "XRANGE s (1-0", "XINFO s", "FOLLOW s 1-0", "UNFOLLOW s" */
    wsg_redis_get_cb get_cb; /* GET only; NULL once answered */
    void *get_arg;
    wsg_stream_entries_cb entries_cb; /* XREVRANGE and XRANGE */
    wsg_stream_info_cb info_cb;       /* XINFO */
} fake_call_t;

extern fake_call_t fake_calls[FAKE_REDIS_MAX];
extern int fake_ncalls;

/** Forgets every recorded call (pending GETs included). */
void fake_redis_reset(void);

/** The index of the first recorded call at or after `from` whose text is `text`, or -1. */
int fake_redis_find(int from, const char *text);

/** Answers the GET recorded at `index` with `value` (NULL: the key does not exist). */
void fake_redis_answer_get(int index, int status, const char *value);

/** Answers the XREVRANGE or XRANGE recorded at `index` with `n` entries "<ms>-<seq>" ids and payloads
 *  "p<ms>-<seq>" (status < 0: that error). */
void fake_redis_answer_entries(int index, int status, const wsg_stream_id_t *ids, size_t n);

/** Answers the XINFO recorded at `index`. */
void fake_redis_answer_info(int index, const wsg_stream_info_t *info);

#endif
