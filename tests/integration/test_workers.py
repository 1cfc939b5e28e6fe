"""Several workers: each event loop has its own listener (SO_REUSEPORT) and its own two Redis connections,
and every client gets every message whichever worker serves it."""

import asyncio
import signal

import harness as h
from harness import with_env


@with_env(WSGATE_WORKERS="2")
def test_two_workers_each_have_two_redis_connections(gateway):
    h.wait_until(lambda: len(h.gateway_redis_clients()) == 4, 10, what="4 gateway connections to Redis")
    names = sorted(c.get("name", "") for c in h.gateway_redis_clients())
    assert names == ["wsgate-cmd", "wsgate-cmd", "wsgate-sub", "wsgate-sub"], names
    assert gateway.wait_log(r"event=listening .*workers=2")


@with_env(WSGATE_WORKERS="2")
def test_messages_reach_clients_of_every_worker(gateway):
    clients = [gateway.open_raw("/ws/mw?subscribe-broadcast") for _ in range(40)]
    # Connections are spread over both workers by the kernel: both subscribe.
    h.wait_numsub("broadcast:mw", 2, timeout=10)
    for i in range(20):
        h.publish("broadcast:mw", f"m{i}")
    for ws in clients:
        assert [ws.recv_text(5) for _ in range(20)] == [f"m{i}" for i in range(20)]


@with_env(WSGATE_WORKERS="2")
def test_client_publish_reaches_clients_on_the_other_worker(gateway):
    senders = [gateway.open_raw("/ws/xw?publish-broadcast") for _ in range(6)]
    receivers = [gateway.open_raw("/ws/xw?subscribe-broadcast") for _ in range(20)]
    h.wait_numsub("broadcast:xw", 2, timeout=10)
    for i, ws in enumerate(senders):
        ws.send_text(f"from {i}")
    expected = {f"from {i}" for i in range(6)}
    for ws in receivers:
        assert {ws.recv_text(5) for _ in range(6)} == expected


@with_env(WSGATE_WORKERS="3")
def test_sigterm_stops_every_worker(gateway):
    clients = [gateway.open_raw("/ws/st?subscribe-broadcast") for _ in range(30)]
    h.wait_until(lambda: h.numsub("broadcast:st") >= 2, 10, what="two workers subscribed")
    gateway.signal(signal.SIGTERM)
    for ws in clients:
        ws.expect_close(1001, timeout=10)
    assert gateway.wait_exit(15) == 0
    gateway.stop()
