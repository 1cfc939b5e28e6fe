"""Clients → Redis: publish-broadcast does PUBLISH then SETEX <expire>; storage is done before the close reply;
fragmented messages; the heartbeat string is never published."""

import asyncio

import harness as h
from harness import with_env

PUB = "?publish-broadcast"


def stored(redis, key):
    return redis.get(key)


def test_client_text_message_is_published_and_stored_with_default_expire(gateway, redis):
    sub = h.Subscriber("broadcast:chat")
    ws = gateway.open_raw("/ws/chat" + PUB)
    ws.send_text("hello redis")
    assert sub.get() == b"hello redis"
    h.wait_until(lambda: redis.get("broadcast:chat") == b"hello redis", 5, what="SETEX of the message")
    ttl = redis.ttl("broadcast:chat")
    assert 3590 <= ttl <= 3600, ttl


def test_client_binary_message_is_published_and_stored_byte_for_byte(gateway, redis):
    data = bytes(range(256))
    sub = h.Subscriber("broadcast:chat")
    ws = gateway.open_raw("/ws/chat" + PUB)
    ws.send_binary(data)
    assert sub.get() == data
    h.wait_until(lambda: redis.get("broadcast:chat") == data, 5, what="SETEX of the binary message")


def test_client_message_reaches_other_clients_as_same_frame_type(gateway):
    listener = gateway.open_raw("/ws/chat?subscribe-broadcast")
    h.wait_numsub("broadcast:chat", 1)
    ws = gateway.open_raw("/ws/chat" + PUB)
    ws.send_text("txt")
    ws.send_binary(b"\x80\x81")
    assert listener.recv_message() == (h.OP_TEXT, b"txt")
    assert listener.recv_message() == (h.OP_BINARY, b"\x80\x81")


def test_later_client_gets_message_published_by_a_client(gateway):
    ws = gateway.open_raw("/ws/chat" + PUB)
    ws.send_text("leave a note")
    ws.close_handshake()
    late = gateway.open_raw("/ws/chat?subscribe-broadcast")
    assert late.recv_text() == "leave a note"


@with_env(WS4REDIS_EXPIRE="60")
def test_custom_expire_is_used_for_setex(gateway, redis):
    ws = gateway.open_raw("/ws/chat" + PUB)
    ws.send_text("short-lived")
    ws.close_handshake()
    assert redis.get("broadcast:chat") == b"short-lived"
    ttl = redis.ttl("broadcast:chat")
    assert 55 <= ttl <= 60, ttl


@with_env(WS4REDIS_EXPIRE="0")
def test_expire_zero_publishes_without_storing(gateway, redis):
    sub = h.Subscriber("broadcast:chat")
    ws = gateway.open_raw("/ws/chat" + PUB)
    ws.send_text("ephemeral")
    assert sub.get() == b"ephemeral"
    ws.close_handshake()  # storage (if any) would be done before the close reply
    assert redis.get("broadcast:chat") is None
    assert redis.ttl("broadcast:chat") == -2


def test_message_is_stored_before_close_reply(gateway, redis):
    for i in range(20):
        key = f"broadcast:bye{i}"
        ws = gateway.open_raw(f"/ws/bye{i}" + PUB)
        msg = f"last words {i} " + "x" * (i * 500)
        ws.send_text(msg)
        ws.send_close(1000)
        assert ws.recv_close()[0] == 1000
        assert redis.get(key) == msg.encode(), f"iteration {i}: message not stored when the close reply came"
        ws.wait_eof()


def test_last_of_many_messages_is_stored_before_close_reply(gateway, redis):
    ws = gateway.open_raw("/ws/many" + PUB)
    for i in range(50):
        ws.send_text(f"m{i}")
    ws.send_close(1000)
    assert ws.recv_close()[0] == 1000
    assert redis.get("broadcast:many") == b"m49"
    assert redis.ttl("broadcast:many") > 3500


def test_client_messages_are_published_in_order(gateway):
    sub = h.Subscriber("broadcast:order")
    ws = gateway.open_raw("/ws/order" + PUB)
    ws.send_raw(b"".join(h.build_frame(h.OP_TEXT, f"n{i}") for i in range(200)))
    assert [sub.get() for _ in range(200)] == [f"n{i}".encode() for i in range(200)]


def test_fragmented_text_message_is_published_whole(gateway, redis):
    sub = h.Subscriber("broadcast:frag")
    ws = gateway.open_raw("/ws/frag" + PUB)
    ws.send_frame(h.OP_TEXT, "Hel", fin=False)
    ws.send_frame(h.OP_CONT, "lo, ", fin=False)
    ws.send_frame(h.OP_CONT, "", fin=False)
    ws.send_frame(h.OP_CONT, "wörld", fin=True)
    assert sub.get() == "Hello, wörld".encode()
    ws.close_handshake()
    assert redis.get("broadcast:frag") == "Hello, wörld".encode()


def test_fragmented_binary_message_is_published_whole(gateway):
    sub = h.Subscriber("broadcast:frag")
    ws = gateway.open_raw("/ws/frag" + PUB)
    ws.send_frame(h.OP_BINARY, b"\xff\x00", fin=False)
    ws.send_frame(h.OP_CONT, b"\x01\xfe", fin=True)
    assert sub.get() == b"\xff\x00\x01\xfe"


def test_ping_inside_fragmented_message_is_answered_and_message_published(gateway):
    sub = h.Subscriber("broadcast:frag")
    ws = gateway.open_raw("/ws/frag" + PUB)
    ws.send_frame(h.OP_TEXT, "part1-", fin=False)
    ws.send_ping(b"mid")
    assert ws.recv_message() == (h.OP_PONG, b"mid")
    ws.send_frame(h.OP_CONT, "part2", fin=True)
    assert sub.get() == b"part1-part2"


def test_message_of_exactly_default_max_payload_is_published(gateway, redis):
    sub = h.Subscriber("broadcast:max")
    ws = gateway.open_raw("/ws/max" + PUB)
    data = b"z" * 16384
    ws.send_text(data)
    assert sub.get() == data
    ws.close_handshake()
    assert redis.get("broadcast:max") == data


def test_without_publish_switch_messages_are_not_published(gateway, redis):
    sub = h.Subscriber("broadcast:ro")
    ws = gateway.open_raw("/ws/ro?subscribe-broadcast")
    ws.send_text("should go nowhere")
    assert ws.ping_roundtrip() == []  # the message was processed
    sub.expect_none(0.3)
    ws.close_handshake()
    assert redis.get("broadcast:ro") is None


@with_env(WS4REDIS_PREFIX="pfx")
def test_prefix_applies_to_client_publish(gateway, redis):
    sub = h.Subscriber("pfx:broadcast:chat", "broadcast:chat")
    ws = gateway.open_raw("/ws/chat" + PUB)
    ws.send_text("prefixed")
    assert sub.get() == b"prefixed"
    ws.close_handshake()
    assert redis.get("pfx:broadcast:chat") == b"prefixed"
    assert redis.get("broadcast:chat") is None
    sub.expect_none(0.1)  # nothing was published on the unprefixed channel


@with_env(WS4REDIS_HEARTBEAT="--heartbeat--", WSGATE_HEARTBEAT_INTERVAL="300ms")
def test_inbound_heartbeat_is_neither_published_nor_stored(gateway, redis):
    sub = h.Subscriber("broadcast:hb")
    ws = gateway.open_raw("/ws/hb" + PUB)
    ws.send_text("--heartbeat--")
    ws.send_text("real")
    ws.send_text("--heartbeat--")
    # In-order processing: a published heartbeat would show up before "real".
    assert sub.get() == b"real"
    ws.send_close(1000)
    assert ws.recv_close()[0] == 1000
    assert redis.get("broadcast:hb") == b"real"
    sub.expect_none(0.2)


@with_env(WS4REDIS_HEARTBEAT="--heartbeat--", WSGATE_HEARTBEAT_INTERVAL="300ms")
def test_only_heartbeats_sent_leaves_redis_untouched(gateway, redis):
    sub = h.Subscriber("broadcast:hb")
    ws = gateway.open_raw("/ws/hb" + PUB)
    for _ in range(3):
        ws.send_text("--heartbeat--")
    ws.send_close(1000)
    assert ws.recv_close()[0] == 1000
    assert redis.get("broadcast:hb") is None
    sub.expect_none(0.2)


async def test_real_client_publish_then_close_is_stored(gateway, redis):
    ws = await gateway.connect("/ws/real" + PUB)
    await ws.send("via websockets")
    await ws.send(b"\x00bin")
    await ws.close()
    assert ws.close_code == 1000
    assert redis.get("broadcast:real") == b"\x00bin"


async def test_20_publishers_all_get_through(gateway):
    sub = h.Subscriber("broadcast:crowd")
    clients = await asyncio.gather(*[gateway.connect("/ws/crowd" + PUB) for _ in range(20)])
    await asyncio.gather(*[ws.send(f"c{i}") for i, ws in enumerate(clients)])
    got = sorted(sub.get() for _ in range(20))
    assert got == sorted(f"c{i}".encode() for i in range(20))
