/* The heartbeat dialects a client may speak: ws4redis's magic string, the JSON heartbeat / heartbeat_response
 * exchange, and a client-side JSON ping / pong. Classifies inbound messages and builds the JSON frames. */
#ifndef WSG_PROTOCOL_HEARTBEAT_H
#define WSG_PROTOCOL_HEARTBEAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "str.h"

/** Messages longer than this are never parsed as JSON control messages: real heartbeats are tiny, and a
 *  channel that carries large JSON documents pays nothing. */
#define WSG_HEARTBEAT_JSON_MAX 512

typedef enum wsg_inbound_kind {
    WSG_INBOUND_DATA,               /**< an ordinary message: publish it */
    WSG_INBOUND_MAGIC_HEARTBEAT,    /**< equal to the magic string: drop it */
    WSG_INBOUND_HEARTBEAT_RESPONSE, /**< {"type":"heartbeat_response",...}: drop it */
    WSG_INBOUND_JSON_PING,          /**< {"type":"ping",...}: answer {"type":"pong"} and drop it */
} wsg_inbound_kind_t;

/** Which dialects the classifier recognises. */
typedef struct wsg_heartbeat_rules {
    wsg_str_t magic;          /**< the magic heartbeat string; empty = none */
    bool json_heartbeat;      /**< recognise {"type":"heartbeat_response"} */
    bool json_ping;           /**< recognise {"type":"ping"} */
} wsg_heartbeat_rules_t;

/** Classifies an inbound text or binary message (`data` borrowed). Only messages of at most
 *  WSG_HEARTBEAT_JSON_MAX bytes whose first non-space byte is '{' are parsed, and only as a JSON object whose
 *  "type" member is a string; anything else is WSG_INBOUND_DATA. */
wsg_inbound_kind_t wsg_heartbeat_classify(const wsg_heartbeat_rules_t *rules, const uint8_t *data, size_t len);

/** Writes {"type":"heartbeat","timestamp":<unix_ms>,"timeout":<timeout_ms>} into `out` (capacity `cap`).
 *  Returns its length or -ENOSPC. */
ssize_t wsg_heartbeat_write_json(char *out, size_t cap, uint64_t unix_ms, uint64_t timeout_ms);

/** The answer to a JSON ping. */
#define WSG_HEARTBEAT_JSON_PONG "{\"type\":\"pong\"}"

/** The default shutdown notice of the JSON dialect. */
#define WSG_HEARTBEAT_JSON_SHUTDOWN "{\"type\":\"server_shutdown\",\"message\":\"Server is shutting down\"}"

#endif
