/* Outbound message buffers: one allocation each, header first, bytes after it. */
#include "msg.h"

#include <stdlib.h>
#include <string.h>

#include "envelope.h"

/* A message with `room` bytes of storage right after its header; refcount 1, nothing framed yet. */
static wsg_msg_t *alloc_msg(size_t room, wsg_msg_kind_t kind)
{
    if (room > SIZE_MAX - sizeof(wsg_msg_t))
        return NULL;
    wsg_msg_t *msg = malloc(sizeof(*msg) + room);
    if (msg == NULL)
        return NULL;
    memset(msg, 0, sizeof *msg);
    msg->refcount = 1;
    msg->nmsgs = 1;
    msg->kind = (uint8_t)kind;
    return msg;
}

static uint8_t *storage(wsg_msg_t *msg)
{
    return (uint8_t *)(msg + 1);
}

wsg_msg_t *wsg_msg_new_data(const void *payload, size_t len)
{
    if (len > SIZE_MAX / 2)
        return NULL;
    wsg_msg_t *msg = alloc_msg(WSG_FRAME_HEADER_MAX + len, WSG_MSG_DATA);
    if (msg == NULL)
        return NULL;
    uint8_t *body = storage(msg) + WSG_FRAME_HEADER_MAX;
    if (len > 0)
        memcpy(body, payload, len);
    size_t header = wsg_frame_prepend_data_header(body, len);
    msg->frame = body - header;
    msg->frame_len = header + len;
    msg->payload_len = len;
    return msg;
}

wsg_msg_t *wsg_msg_new_envelope(wsg_str_t label, const wsg_stream_id_t *id, const void *payload, size_t len)
{
    if (len > SIZE_MAX / 4)
        return NULL;
    size_t bound = wsg_envelope_data_bound(label.len, len);
    wsg_msg_t *msg = alloc_msg(WSG_FRAME_HEADER_MAX + bound, WSG_MSG_DATA);
    if (msg == NULL)
        return NULL;
    uint8_t *body = storage(msg) + WSG_FRAME_HEADER_MAX;
    ssize_t n = wsg_envelope_data((char *)body, bound, label, id, payload, len);
    if (n < 0) {
        free(msg);
        return NULL;
    }
    size_t header = wsg_frame_prepend_data_header(body, (size_t)n); /* JSON: a text frame */
    msg->frame = body - header;
    msg->frame_len = header + (size_t)n;
    msg->payload_len = (size_t)n;
    if (id != NULL) {
        msg->has_id = true;
        msg->id = *id;
    }
    return msg;
}

wsg_msg_t *wsg_msg_new_gap(wsg_str_t label, wsg_stream_id_t after, const char *reason)
{
    char text[8192]; /* a label of at most WSG_CHANNEL_NAME_MAX bytes, each escaped to at most 6 */
    ssize_t n = wsg_envelope_gap(text, sizeof text, label, after, reason);
    return n < 0 ? NULL : wsg_msg_new_data(text, (size_t)n);
}

wsg_msg_t *wsg_msg_new_run(wsg_msg_t *const *msgs, uint32_t n)
{
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += msgs[i]->frame_len;
    wsg_msg_t *run = alloc_msg(total, WSG_MSG_DATA);
    if (run == NULL)
        return NULL;
    uint8_t *out = storage(run);
    for (uint32_t i = 0; i < n; i++) {
        memcpy(out, msgs[i]->frame, msgs[i]->frame_len);
        out += msgs[i]->frame_len;
    }
    run->frame = storage(run);
    run->frame_len = total;
    run->nmsgs = n;
    run->recv_ns = msgs[0]->recv_ns; /* the oldest: latency is counted from it for every message */
    return run;
}

wsg_msg_t *wsg_msg_new_control(enum wsg_opcode opcode, const uint8_t *payload, size_t len)
{
    if (len > 125)
        return NULL;
    wsg_msg_t *msg = alloc_msg(WSG_FRAME_CONTROL_MAX, WSG_MSG_CONTROL);
    if (msg == NULL)
        return NULL;
    msg->frame_len = (size_t)wsg_frame_write_control(storage(msg), opcode, payload, len);
    msg->frame = storage(msg);
    return msg;
}

wsg_msg_t *wsg_msg_new_http(const void *head, size_t head_len, const void *body, size_t body_len)
{
    if (head_len > SIZE_MAX / 2 || body_len > SIZE_MAX / 2)
        return NULL;
    wsg_msg_t *msg = alloc_msg(head_len + body_len, WSG_MSG_HTTP);
    if (msg == NULL)
        return NULL;
    memcpy(storage(msg), head, head_len);
    if (body_len > 0)
        memcpy(storage(msg) + head_len, body, body_len);
    msg->frame = storage(msg);
    msg->frame_len = head_len + body_len;
    return msg;
}

void wsg_msg_init_borrowed(wsg_msg_t *msg, wsg_msg_kind_t kind, const uint8_t *frame, size_t len)
{
    memset(msg, 0, sizeof *msg);
    msg->refcount = 1;
    msg->nmsgs = 1;
    msg->kind = (uint8_t)kind;
    msg->frame = frame;
    msg->frame_len = len;
}

void wsg_msg_unref(wsg_msg_t *msg)
{
    if (msg != NULL && --msg->refcount == 0) {
        wsg_msg_unref(msg->alt);
        free(msg);
    }
}
