"""Redis → clients: persisted message, live fan-out, echo rules, text/binary, prefix, ordering, unsubscribe, and
compatibility with Django ws4redis's RedisPublisher."""

import asyncio

import harness as h
from harness import with_env

SUB = "?subscribe-broadcast"


# -- Persisted message -----------------------------------------------------------------------------------------

def test_persisted_message_is_sent_on_connect(gateway, redis):
    redis.setex("broadcast:news", 60, "stored")
    ws = gateway.open_raw("/ws/news" + SUB)
    assert ws.recv_text() == "stored"
    ws.close_handshake()


def test_persisted_message_is_resent_on_every_new_connection(gateway, redis):
    redis.set("broadcast:news", "stored")
    for _ in range(3):
        ws = gateway.open_raw("/ws/news" + SUB)
        assert ws.recv_text() == "stored"
        ws.close_handshake()


def test_persisted_message_comes_before_live_messages(gateway, redis):
    redis.set("broadcast:news", "old")
    ws = gateway.open_raw("/ws/news" + SUB)
    h.wait_numsub("broadcast:news", 1)
    h.publish("broadcast:news", "live")
    assert ws.recv_text() == "old"
    assert ws.recv_text() == "live"


def test_empty_or_missing_persisted_value_sends_nothing(gateway, redis):
    redis.set("broadcast:empty", "")
    ws = gateway.open_raw("/ws/empty" + SUB)
    ws2 = gateway.open_raw("/ws/missing" + SUB)
    h.wait_numsub("broadcast:empty", 1)
    h.wait_numsub("broadcast:missing", 1)
    h.publish("broadcast:empty", "first-live")
    h.publish("broadcast:missing", "first-live-2")
    assert ws.recv_text() == "first-live"
    assert ws2.recv_text() == "first-live-2"


def test_binary_persisted_message_is_sent_as_binary(gateway, redis):
    redis.set("broadcast:bin", b"\x00\xff\xfe")
    ws = gateway.open_raw("/ws/bin" + SUB)
    assert ws.recv_message() == (h.OP_BINARY, b"\x00\xff\xfe")


def test_no_persisted_message_without_subscribe(gateway, redis):
    redis.set("broadcast:news", "stored")
    ws = gateway.open_raw("/ws/news?publish-broadcast")
    assert ws.ping_roundtrip() == []
    ws.expect_silence(0.2)


# -- Live messages ---------------------------------------------------------------------------------------------

async def test_live_message_reaches_all_20_subscribers(gateway):
    clients = await asyncio.gather(*[gateway.connect("/ws/fan" + SUB) for _ in range(20)])
    await h.await_numsub("broadcast:fan", 1)  # one shared subscription
    assert h.publish("broadcast:fan", "hello all") == 1
    got = await asyncio.gather(*[h.recv(ws) for ws in clients])
    assert got == ["hello all"] * 20


async def test_facilities_are_isolated(gateway):
    a = await gateway.connect("/ws/alpha" + SUB)
    b = await gateway.connect("/ws/beta" + SUB)
    await h.await_numsub("broadcast:alpha", 1)
    await h.await_numsub("broadcast:beta", 1)
    h.publish("broadcast:alpha", "for alpha")
    h.publish("broadcast:beta", "for beta")
    assert await h.recv(a) == "for alpha"
    assert await h.recv(b) == "for beta"
    await h.expect_silence(a, 0.2)
    await h.expect_silence(b, 0.0)


async def test_client_without_subscribe_gets_no_live_messages(gateway):
    listener = await gateway.connect("/ws/news" + SUB)
    silent = await gateway.connect("/ws/news?publish-broadcast")
    await h.await_numsub("broadcast:news", 1)
    h.publish("broadcast:news", "x")
    assert await h.recv(listener) == "x"
    await h.expect_silence(silent, 0.2)


def test_utf8_payload_is_text_and_other_bytes_are_binary(gateway):
    ws = gateway.open_raw("/ws/mixed" + SUB)
    h.wait_numsub("broadcast:mixed", 1)
    payloads = ["plain", "ünïcödé ✓ 😀", b"\xff\xfe\x00\x01", b"\xc3\x28", b"caf\xc3", b"\x00text"]
    for p in payloads:
        h.publish("broadcast:mixed", p)
    for p in payloads:
        raw = p.encode() if isinstance(p, str) else p
        try:
            raw.decode("utf-8")
            expected = h.OP_TEXT
        except UnicodeDecodeError:
            expected = h.OP_BINARY
        assert ws.recv_message() == (expected, raw), p


def test_large_message_is_relayed_byte_for_byte(gateway):
    ws = gateway.open_raw("/ws/big" + SUB)
    h.wait_numsub("broadcast:big", 1)
    text = ("0123456789abcdef" * 16384)  # 256 KiB, 64-bit length on the wire
    blob = bytes(range(256)) * 1024 + b"\xff"
    h.publish("broadcast:big", text)
    h.publish("broadcast:big", blob)
    assert ws.recv_message(10) == (h.OP_TEXT, text.encode())
    assert ws.recv_message(10) == (h.OP_BINARY, blob)


@with_env(WS4REDIS_PREFIX="myprefix")
def test_prefix_applies_to_channels_and_keys(gateway, redis):
    redis.set("myprefix:broadcast:news", "stored")
    redis.set("broadcast:news", "wrong key")
    ws = gateway.open_raw("/ws/news" + SUB)
    assert ws.recv_text() == "stored"
    h.wait_numsub("myprefix:broadcast:news", 1)
    assert h.numsub("broadcast:news") == 0
    h.publish("broadcast:news", "unprefixed")
    h.publish("myprefix:broadcast:news", "prefixed")
    assert ws.recv_text() == "prefixed"


def test_1000_messages_arrive_complete_and_in_order(gateway, redis):
    ws = gateway.open_raw("/ws/burst" + SUB)
    h.wait_numsub("broadcast:burst", 1)
    pipe = redis.pipeline(transaction=False)
    for i in range(1000):
        pipe.publish("broadcast:burst", f"msg-{i}")
    pipe.execute()
    got = [ws.recv_text() for _ in range(1000)]
    assert got == [f"msg-{i}" for i in range(1000)]


async def test_1000_messages_arrive_in_order_at_20_clients(gateway, redis):
    clients = await asyncio.gather(*[gateway.connect("/ws/burst" + SUB) for _ in range(20)])
    await h.await_numsub("broadcast:burst", 1)
    pipe = redis.pipeline(transaction=False)
    for i in range(1000):
        pipe.publish("broadcast:burst", f"msg-{i}")
    pipe.execute()
    results = await asyncio.gather(*[h.recv_n(ws, 1000, timeout=20) for ws in clients])
    expected = [f"msg-{i}" for i in range(1000)]
    for n, got in enumerate(results):
        assert got == expected, f"client {n}: first difference at {next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)}"


# -- Echo ------------------------------------------------------------------------------------------------------

async def test_without_echo_own_messages_do_not_come_back_but_others_do(gateway):
    me = await gateway.connect("/ws/room?subscribe-broadcast&publish-broadcast")
    other = await gateway.connect("/ws/room?subscribe-broadcast&publish-broadcast")
    await h.await_numsub("broadcast:room", 1)
    sub = h.Subscriber("broadcast:room")
    await me.send("from me")
    assert sub.get() == b"from me"
    assert await h.recv(other) == "from me"
    await other.send("from other")
    assert sub.get() == b"from other"
    # "from me" was relayed before "from other": if it were coming back to me, it would arrive first.
    assert await h.recv(me) == "from other"
    await h.expect_silence(me, 0.1)


async def test_with_echo_own_messages_come_back(gateway):
    me = await gateway.connect("/ws/room?subscribe-broadcast&publish-broadcast&echo")
    await h.await_numsub("broadcast:room", 1)
    await me.send("one")
    await me.send(b"\xff\x02")  # not UTF-8, so it comes back as a binary frame
    got = await h.recv_n(me, 2)
    assert got == ["one", b"\xff\x02"], got


async def test_without_echo_same_content_from_backend_is_still_delivered(gateway):
    """Own publications are tracked, not compared by content: the backend may publish the same text."""
    me = await gateway.connect("/ws/room?subscribe-broadcast&publish-broadcast")
    await h.await_numsub("broadcast:room", 1)
    sub = h.Subscriber("broadcast:room")
    await me.send("same")
    assert sub.get() == b"same"
    h.publish("broadcast:room", "same")
    assert await h.recv(me) == "same"


# -- Unsubscribe and shared Redis connection -------------------------------------------------------------------

def test_last_client_leaving_unsubscribes(gateway):
    a = gateway.open_raw("/ws/leave" + SUB)
    b = gateway.open_raw("/ws/leave" + SUB)
    h.wait_numsub("broadcast:leave", 1)
    a.close_handshake()
    h.assert_numsub_stays("broadcast:leave", 1, 0.3)
    h.publish("broadcast:leave", "still here")
    assert b.recv_text() == "still here"
    b.close_handshake()
    h.wait_numsub("broadcast:leave", 0)


def test_abrupt_disconnect_unsubscribes(gateway):
    a = gateway.open_raw("/ws/leave" + SUB)
    h.wait_numsub("broadcast:leave", 1)
    a.close()  # TCP close without a close frame
    h.wait_numsub("broadcast:leave", 0)


def test_resubscribes_after_channel_was_dropped(gateway):
    a = gateway.open_raw("/ws/again" + SUB)
    h.wait_numsub("broadcast:again", 1)
    a.close_handshake()
    h.wait_numsub("broadcast:again", 0)
    b = gateway.open_raw("/ws/again" + SUB)
    h.wait_numsub("broadcast:again", 1)
    h.publish("broadcast:again", "back")
    assert b.recv_text() == "back"


def test_50_clients_share_few_redis_connections(gateway):
    clients = [gateway.open_raw(f"/ws/many{i % 25}" + SUB) for i in range(50)]
    for i in range(25):
        h.wait_numsub(f"broadcast:many{i}", 1)
    conns = h.gateway_redis_clients()
    assert 1 <= len(conns) <= 3, f"{len(conns)} gateway connections to Redis: {conns}"
    h.publish("broadcast:many7", "m")
    assert clients[7].recv_text() == "m"
    assert clients[32].recv_text() == "m"


# -- Django ws4redis RedisPublisher emulation ------------------------------------------------------------------

def ws4redis_publish(redis, channel, message, expire=3600):
    """RedisPublisher.publish_message: PUBLISH, then SETEX."""
    redis.publish(channel, message)
    if expire > 0:
        redis.setex(channel, expire, message)


def ws4redis_publish_pipelined(redis, channel, message, expire=3600):
    """The pipelined variant: both commands in MULTI/EXEC."""
    pipe = redis.pipeline(transaction=True)
    pipe.publish(channel, message)
    pipe.setex(channel, expire, message)
    pipe.execute()


def test_ws4redis_publisher_reaches_connected_and_later_clients(gateway, redis):
    early = gateway.open_raw("/ws/django" + SUB)
    h.wait_numsub("broadcast:django", 1)
    ws4redis_publish(redis, "broadcast:django", "from django")
    assert early.recv_text() == "from django"
    late = gateway.open_raw("/ws/django" + SUB)
    assert late.recv_text() == "from django"
    early.expect_silence(0.1)


def test_ws4redis_pipelined_publisher_reaches_connected_and_later_clients(gateway, redis):
    early = gateway.open_raw("/ws/django" + SUB)
    h.wait_numsub("broadcast:django", 1)
    ws4redis_publish_pipelined(redis, "broadcast:django", "pipelined")
    assert early.recv_text() == "pipelined"
    late = gateway.open_raw("/ws/django" + SUB)
    assert late.recv_text() == "pipelined"


def test_only_latest_persisted_message_is_sent(gateway, redis):
    for m in ("first", "second", "third"):
        ws4redis_publish(redis, "broadcast:django", m)
    ws = gateway.open_raw("/ws/django" + SUB)
    assert ws.recv_text() == "third"
    ws.expect_silence(0.2)
