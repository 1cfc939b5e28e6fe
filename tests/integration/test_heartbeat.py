"""Server heartbeat: WS4REDIS_HEARTBEAT sent as a text frame every WSGATE_HEARTBEAT_INTERVAL (default 4 s)."""

import asyncio
import time

import harness as h
from harness import with_env

HB = "--heartbeat--"


def heartbeat_times(ws, count, timeout):
    """Arrival times of the next `count` messages, each of which must be the heartbeat text."""
    deadline = time.monotonic() + timeout
    times = []
    while len(times) < count:
        text = ws.recv_text(max(0.001, deadline - time.monotonic()))
        assert text == HB, f"expected the heartbeat, got {text!r}"
        times.append(time.monotonic())
    return times


@with_env(WS4REDIS_HEARTBEAT=HB)
def test_default_heartbeat_interval_is_4_seconds(gateway):
    ws = gateway.open_raw("/ws/hb?subscribe-broadcast")
    start = time.monotonic()
    t1, t2 = heartbeat_times(ws, 2, 12)
    assert t1 - start <= 5.0, f"first heartbeat after {t1 - start:.2f}s"
    assert 3.0 <= t2 - t1 <= 5.0, f"heartbeats {t2 - t1:.2f}s apart, expected 4 +- 1"


@with_env(WS4REDIS_HEARTBEAT=HB, WSGATE_HEARTBEAT_INTERVAL="300ms")
def test_heartbeat_follows_configured_interval(gateway):
    ws = gateway.open_raw("/ws/hb")  # no switches at all: heartbeats still flow
    times = heartbeat_times(ws, 5, 4)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(0.15 <= g <= 0.9 for g in gaps), f"gaps {gaps}"
    assert 0.2 <= sum(gaps) / len(gaps) <= 0.6, f"mean gap {sum(gaps) / len(gaps):.3f}s"


@with_env(WS4REDIS_HEARTBEAT=HB, WSGATE_HEARTBEAT_INTERVAL="300ms")
async def test_every_client_receives_heartbeats(gateway):
    clients = await asyncio.gather(*[gateway.connect(f"/ws/hb{i % 3}?subscribe-broadcast") for i in range(10)])
    got = await asyncio.gather(*[h.recv_n(ws, 2, timeout=3) for ws in clients])
    assert got == [[HB, HB]] * 10


@with_env(WSGATE_HEARTBEAT_INTERVAL="300ms")
def test_no_heartbeat_when_unset(gateway):
    ws = gateway.open_raw("/ws/hb?subscribe-broadcast")
    ws.expect_silence(1.2)


@with_env(WS4REDIS_HEARTBEAT=HB, WSGATE_HEARTBEAT_INTERVAL="300ms")
def test_heartbeats_do_not_touch_redis_and_mix_with_messages(gateway, redis):
    sub = h.Subscriber("broadcast:hb")
    ws = gateway.open_raw("/ws/hb?subscribe-broadcast")
    h.wait_numsub("broadcast:hb", 2)
    assert ws.recv_text(3) == HB
    h.publish("broadcast:hb", "payload")
    assert sub.get() == b"payload"
    seen = []
    while "payload" not in seen or seen.count(HB) < 2:
        seen.append(ws.recv_text(3))
    assert set(seen) == {HB, "payload"}, seen
    assert seen.count("payload") == 1, seen
    sub.expect_none(0.1)  # heartbeats are never PUBLISHed
    assert redis.get("broadcast:hb") is None  # nor stored

