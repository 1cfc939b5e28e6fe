/* Reference-counted message buffers shared between the Redis side and every subscriber's write queue. */
#include "msg.h"

#include <stdlib.h>
#include <string.h>

wsg_msg_t *wsg_msg_new(const void *payload, size_t payload_len, const char *channel, size_t channel_len)
{
    if (payload_len > SIZE_MAX / 2 || channel_len > UINT32_MAX - 1)
        return NULL;
    wsg_msg_t *msg = malloc(sizeof(*msg) + WSG_MSG_HEADROOM + payload_len + channel_len + 1);
    if (msg == NULL)
        return NULL;
    msg->refcount = 1;
    msg->payload_len = payload_len;
    msg->channel_len = (uint32_t)channel_len;
    msg->nmsgs = 1;
    msg->frame = NULL;
    msg->frame_len = 0;
    msg->recv_ns = 0;
    msg->hash = 0;
    if (payload != NULL && payload_len > 0)
        memcpy(msg->storage + WSG_MSG_HEADROOM, payload, payload_len);
    char *chan = (char *)msg->storage + WSG_MSG_HEADROOM + payload_len;
    if (channel_len > 0)
        memcpy(chan, channel, channel_len);
    chan[channel_len] = '\0';
    msg->channel = chan;
    return msg;
}

void wsg_msg_unref(wsg_msg_t *msg)
{
    if (msg != NULL && --msg->refcount == 0)
        free(msg);
}
