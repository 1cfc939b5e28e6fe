"""Bursts from Redis: consecutive messages of one channel reach most subscribers as one shared buffer; these
tests check that every client still sees exactly the order Redis sent, across channel changes, with echo
filtering, while joining mid-burst, and that metrics count messages rather than writes."""

import asyncio
import os
import random
import sys
import threading
import time

import harness as h
from harness import with_env

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit"))
from mint_token import mint  # noqa: E402

SECRET = "s3cret-for-runs"


def interleaved(n, channels, seed):
    """`n` (channel, payload) pairs in runs of random length (1..40) on randomly chosen channels."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        ch = rng.choice(channels)
        for _ in range(min(rng.randint(1, 40), n - len(out))):
            out.append((ch, f"{ch}#{len(out)}"))
    return out


def publish_all(redis, pairs):
    pipe = redis.pipeline(transaction=False)
    for ch, payload in pairs:
        pipe.publish(ch, payload)
    pipe.execute()


@with_env(WSGATE_JWT_SECRET=SECRET)
async def test_a_client_on_two_channels_gets_redis_order_across_channel_changes(gateway, redis):
    t = mint(SECRET, {"sub": "john", "exp": int(time.time()) + 600})
    both = await gateway.connect(f"/ws/f?subscribe-broadcast&subscribe-user&token={t}")
    only_broadcast = await gateway.connect("/ws/f?subscribe-broadcast")
    other = await gateway.connect("/ws/g?subscribe-broadcast")
    for ch in ("broadcast:f", "user:john:f", "broadcast:g"):
        await h.await_numsub(ch, 1)
    pairs = interleaved(3000, ["broadcast:f", "user:john:f", "broadcast:g"], seed=7)
    publish_all(redis, pairs)
    want_both = [p for ch, p in pairs if ch in ("broadcast:f", "user:john:f")]
    want_f = [p for ch, p in pairs if ch == "broadcast:f"]
    want_g = [p for ch, p in pairs if ch == "broadcast:g"]
    got_both, got_f, got_g = await asyncio.gather(h.recv_n(both, len(want_both), 20),
                                                  h.recv_n(only_broadcast, len(want_f), 20),
                                                  h.recv_n(other, len(want_g), 20))
    assert got_both == want_both
    assert got_f == want_f
    assert got_g == want_g
    for ws in (both, only_broadcast, other):
        await h.expect_silence(ws, 0.1)


async def test_a_publisher_without_echo_gets_everything_else_in_order_during_a_burst(gateway, redis):
    me = await gateway.connect("/ws/room?subscribe-broadcast&publish-broadcast")
    watcher = await gateway.connect("/ws/room?subscribe-broadcast")
    await h.await_numsub("broadcast:room", 1)
    backend = [("broadcast:room", f"backend-{i}") for i in range(2000)]
    # The backend bursts from a thread while this client publishes its own messages in between.
    burst = threading.Thread(target=lambda: [publish_all(redis, backend[i:i + 200]) for i in range(0, 2000, 200)])
    burst.start()
    mine = [f"mine-{j}" for j in range(100)]
    for j, text in enumerate(mine):
        await me.send(text)
        if j % 10 == 0:
            await asyncio.sleep(0.002)
    burst.join(20)
    seen_by_watcher = await h.recv_n(watcher, 2100, 20)
    assert sorted(seen_by_watcher) == sorted([p for _, p in backend] + mine)
    assert [p for p in seen_by_watcher if p.startswith("backend-")] == [p for _, p in backend]
    assert [p for p in seen_by_watcher if p.startswith("mine-")] == mine
    # `me` gets the watcher's sequence without its own messages: nothing lost, nothing filtered wrongly.
    got = await h.recv_n(me, 2000, 20)
    assert got == [p for p in seen_by_watcher if not p.startswith("mine-")]
    await h.expect_silence(me, 0.2)


async def test_clients_joining_during_a_burst_get_a_gapless_tail_after_the_persisted_message(gateway, redis):
    keeper = await gateway.connect("/ws/tail?subscribe-broadcast", max_queue=None)  # keeps the channel subscribed
    await h.await_numsub("broadcast:tail", 1)
    total = 6000
    published = [0]  # messages published so far, updated by the burst thread

    def burst():
        # As ws4redis's RedisPublisher does with an expiry: SETEX, then PUBLISH, for every message; so each
        # joiner also gets a persisted message, which must come first and not twice.
        client = h.redis_client()
        for start in range(0, total, 100):
            pipe = client.pipeline(transaction=False)
            for i in range(start, start + 100):
                pipe.setex("broadcast:tail", 60, str(i))
                pipe.publish("broadcast:tail", str(i))
            pipe.execute()
            published[0] = start + 100
            time.sleep(0.005)

    thread = threading.Thread(target=burst)
    thread.start()
    # (client, index from which every message was published after its upgrade completed: the pipeline in flight
    # when `published` was read may have been partly before it)
    joiners = []
    while published[0] < total * 0.6 and len(joiners) < 8:
        await asyncio.sleep(0.03)
        # max_queue=None: the client keeps reading while the test is busy elsewhere, as a browser does (with
        # the library's bound it would stop reading: most clients behind, and the gateway's reads would wait).
        ws = await gateway.connect("/ws/tail?subscribe-broadcast", max_queue=None)  # joined before the 101
        joiners.append((ws, published[0] + 100))
    thread.join(30)
    late = [n for n, (_, after) in enumerate(joiners) if after >= total]
    assert len(joiners) - len(late) >= 2, "too few clients joined mid-burst to test anything"
    assert await h.recv_n(keeper, total, 20) == [str(i) for i in range(total)]

    async def drain(ws):
        got = []
        while True:
            try:
                got.append(await asyncio.wait_for(ws.recv(), 1.0))
            except asyncio.TimeoutError:
                return got
    results = await asyncio.gather(*[drain(ws) for ws, _ in joiners])
    for n, (got, (_, after)) in enumerate(zip(results, joiners)):
        if after >= total:
            continue  # joined too late for any message to be sure to follow
        assert got, f"joiner {n} got nothing though {total - after} messages followed its join"
        first = int(got[0])
        assert first <= after, f"joiner {n}: first message {first}, but {after} was published after its join"
        want = [str(i) for i in range(first, total)]
        bad = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        assert got == want, (f"joiner {n}: not a gapless tail from {first}: {len(got)} messages for {len(want)}, "
                             f"first difference at {bad}: got {got[bad:bad + 3]}, want {want[bad:bad + 3]}")


async def test_metrics_count_each_message_of_a_burst(gateway, redis):
    clients = [await gateway.connect("/ws/count?subscribe-broadcast") for _ in range(3)]
    await h.await_numsub("broadcast:count", 1)
    before = gateway.metrics()
    publish_all(redis, [("broadcast:count", f"m{i}") for i in range(500)])
    for ws in clients:
        await h.recv_n(ws, 500, 20)

    def counted():
        m = gateway.metrics()
        return m["wsgate_delivery_latency_seconds_count"] - before["wsgate_delivery_latency_seconds_count"] >= 1500 and m
    m = h.wait_until(counted, 5, what="latency histogram to count 1500 deliveries")
    assert m["wsgate_deliveries_total"] - before["wsgate_deliveries_total"] == 1500
    assert m["wsgate_delivery_latency_seconds_count"] - before["wsgate_delivery_latency_seconds_count"] == 1500
    assert m['wsgate_messages_received_total{source="redis"}'] - before['wsgate_messages_received_total{source="redis"}'] == 500
