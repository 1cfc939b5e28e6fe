"""Liveness: protocol pings, stale-connection cleanup (close 4000), the JSON heartbeat dialects, and the
shutdown notice. Intervals are shortened through the settings."""

import asyncio
import json
import os
import signal
import time

import harness as h
from harness import with_env


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


@with_env(WSGATE_PING_INTERVAL="200ms", WSGATE_IDLE_TIMEOUT="600ms")
async def test_client_that_answers_pings_stays_connected(gateway):
    # websockets answers every PING with a PONG by itself; it sends nothing else.
    ws = await gateway.connect("/ws/alive?subscribe-broadcast")
    await h.await_numsub("broadcast:alive", 1)
    await asyncio.sleep(3.0)  # five idle timeouts
    h.publish("broadcast:alive", "still here")
    assert await h.recv(ws, 5) == "still here"


@with_env(WSGATE_PING_INTERVAL="200ms", WSGATE_IDLE_TIMEOUT="600ms")
def test_pings_arrive_at_the_interval(gateway):
    ws = gateway.open_raw("/ws/p?subscribe-broadcast")
    times = []
    deadline = time.monotonic() + 5
    while len(times) < 4:
        fin, opcode, payload = ws.recv_frame(max(0.001, deadline - time.monotonic()))
        assert opcode == h.OP_PING, opcode
        times.append(time.monotonic())
        ws.send_pong(payload)  # keeps the connection alive
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(0.1 <= g <= 0.6 for g in gaps), gaps


@with_env(WSGATE_PING_INTERVAL="200ms", WSGATE_IDLE_TIMEOUT="600ms")
def test_silent_client_is_closed_with_4000_and_released(gateway):
    h.wait_until(lambda: gateway.admin_get("/readyz")[0] == 200, 10, what="Redis connections up")
    baseline = open_fds(gateway.pid)
    ws = gateway.open_raw("/ws/silent?subscribe-broadcast")
    h.wait_numsub("broadcast:silent", 1)
    start = time.monotonic()
    # A raw socket that never answers: the server's pings go unanswered.
    pings = 0
    while True:
        fin, opcode, payload = ws.recv_frame(5)
        if opcode != h.OP_PING:
            break
        pings += 1
    assert opcode == h.OP_CLOSE, opcode
    code, reason = int.from_bytes(payload[:2], "big"), payload[2:]
    assert code == 4000 and reason == b"stale", (code, reason)
    assert pings >= 2, pings
    assert 0.5 <= time.monotonic() - start <= 2.5, time.monotonic() - start
    h.wait_numsub("broadcast:silent", 0)
    # The client never answers the close either: the socket goes after the close timeout.
    ws.wait_eof(10)
    h.wait_until(lambda: open_fds(gateway.pid) <= baseline, 10, what="fd count back to its baseline")
    assert gateway.wait_log(r"event=stale conn=\d+ idle_ms=\d+")


@with_env(WSGATE_PING_INTERVAL="0", WSGATE_IDLE_TIMEOUT="500ms")
def test_any_inbound_frame_keeps_a_client_alive(gateway):
    ws = gateway.open_raw("/ws/chatty?subscribe-broadcast")
    for _ in range(8):  # 1.6 s: three idle timeouts
        time.sleep(0.2)
        ws.send_pong(b"unsolicited")
    assert ws.ping_roundtrip() == []


@with_env(WSGATE_PING_INTERVAL="0", WSGATE_IDLE_TIMEOUT="0")
def test_zero_turns_pings_and_idle_timeout_off(gateway):
    ws = gateway.open_raw("/ws/off?subscribe-broadcast")
    ws.expect_silence(1.5)
    assert ws.ping_roundtrip() == []


@with_env(WSGATE_HEARTBEAT_MODE="json", WSGATE_HEARTBEAT_INTERVAL="200ms", WSGATE_IDLE_TIMEOUT="5s")
def test_json_heartbeats_arrive_with_their_fields(gateway):
    ws = gateway.open_raw("/ws/json?subscribe-broadcast")
    times = []
    while len(times) < 3:
        beat = json.loads(ws.recv_text(3))
        assert beat["type"] == "heartbeat", beat
        assert beat["timeout"] == 5000, beat
        assert abs(beat["timestamp"] - time.time() * 1000) < 5000, beat
        times.append(time.monotonic())
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(0.1 <= g <= 0.6 for g in gaps), gaps


@with_env(WSGATE_HEARTBEAT_MODE="json", WSGATE_HEARTBEAT_INTERVAL="10s", WSGATE_JSON_PING="1")
def test_json_heartbeat_response_and_ping_are_not_published(gateway):
    sub = h.Subscriber("broadcast:jd")
    ws = gateway.open_raw("/ws/jd?subscribe-broadcast&publish-broadcast")
    h.wait_numsub("broadcast:jd", 2)
    ws.send_text(json.dumps({"type": "heartbeat_response", "timestamp": 1}))
    ws.send_text('{"type":"ping"}')
    assert json.loads(ws.recv_text(3)) == {"type": "pong"}
    ws.send_text('{"type":"chat","text":"hello"}')  # ordinary JSON is still published
    assert sub.get(3) == b'{"type":"chat","text":"hello"}'
    sub.expect_none(0.3)
    assert h.redis_client().get("broadcast:jd") == b'{"type":"chat","text":"hello"}'


@with_env(WSGATE_HEARTBEAT_MODE="json", WSGATE_HEARTBEAT_INTERVAL="400ms", WSGATE_IDLE_TIMEOUT="1s",
          WSGATE_PING_INTERVAL="0")
def test_heartbeat_responses_keep_a_json_client_alive(gateway):
    ws = gateway.open_raw("/ws/jr?subscribe-broadcast")
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        beat = json.loads(ws.recv_text(2))
        assert beat["type"] == "heartbeat"
        ws.send_text(json.dumps({"type": "heartbeat_response", "timestamp": beat["timestamp"]}))
    assert ws.ping_roundtrip() == []


def test_json_ping_is_ordinary_data_unless_switched_on(gateway):
    sub = h.Subscriber("broadcast:jp")
    ws = gateway.open_raw("/ws/jp?publish-broadcast")
    h.wait_numsub("broadcast:jp", 1)
    ws.send_text('{"type":"ping"}')
    assert sub.get(3) == b'{"type":"ping"}'


@with_env(WSGATE_JSON_PING="1", WS4REDIS_HEARTBEAT="--heartbeat--")
def test_json_ping_works_in_the_ws4redis_dialect_too(gateway):
    sub = h.Subscriber("broadcast:jw")
    ws = gateway.open_raw("/ws/jw?publish-broadcast")
    h.wait_numsub("broadcast:jw", 1)
    ws.send_text('{"type":"ping"}')
    ws.send_text("--heartbeat--")
    while True:
        text = ws.recv_text(3)
        if text != "--heartbeat--":
            break
    assert json.loads(text) == {"type": "pong"}
    sub.expect_none(0.3)


@with_env(WSGATE_HEARTBEAT_MODE="json", WSGATE_HEARTBEAT_INTERVAL="10s")
def test_sigterm_sends_the_json_shutdown_notice_then_1001(gateway):
    ws = gateway.open_raw("/ws/sd?subscribe-broadcast")
    h.wait_numsub("broadcast:sd", 1)
    gateway.signal(signal.SIGTERM)
    notice = json.loads(ws.recv_text(5))
    assert notice == {"type": "server_shutdown", "message": "Server is shutting down"}, notice
    ws.expect_close(1001, timeout=5)
    assert gateway.wait_exit(15) == 0
    gateway.stop()


@with_env(WSGATE_SHUTDOWN_NOTICE="bye now")
def test_configured_shutdown_notice_in_ws4redis_mode(gateway):
    ws = gateway.open_raw("/ws/sn?subscribe-broadcast")
    h.wait_numsub("broadcast:sn", 1)
    gateway.signal(signal.SIGTERM)
    assert ws.recv_text(5) == "bye now"
    ws.expect_close(1001, timeout=5)
    assert gateway.wait_exit(15) == 0
    gateway.stop()


@with_env(WSGATE_HEARTBEAT_MODE="json", WSGATE_SHUTDOWN_NOTICE="")
def test_empty_shutdown_notice_means_none(gateway):
    ws = gateway.open_raw("/ws/sx?subscribe-broadcast")
    h.wait_numsub("broadcast:sx", 1)
    gateway.signal(signal.SIGTERM)
    fin, opcode, payload = ws.recv_frame(5)
    assert opcode == h.OP_CLOSE and payload[:2] == (1001).to_bytes(2, "big"), (opcode, payload)
    assert gateway.wait_exit(15) == 0
    gateway.stop()


@with_env(WSGATE_SHUTDOWN_NOTICE="closing", WSGATE_SHUTDOWN_TIMEOUT="3s", WSGATE_CLOSE_TIMEOUT="10s")
def test_sigterm_with_100_clients_loses_no_message_and_exits_within_the_timeout(gateway):
    clients = [gateway.open_raw(f"/ws/many?subscribe-broadcast&publish-broadcast") for _ in range(100)]
    h.wait_numsub("broadcast:many", 1)
    sub = h.Subscriber("broadcast:many")
    # Each client sends a message just before the signal.
    for i, ws in enumerate(clients):
        ws.send_text(f"last words {i}")
    gateway.signal(signal.SIGTERM)
    start = time.monotonic()
    for i, ws in enumerate(clients):
        texts = []
        while True:
            fin, opcode, payload = ws.recv_frame(10)
            if opcode == h.OP_CLOSE:
                assert payload[:2] == (1001).to_bytes(2, "big"), payload
                break
            texts.append(payload.decode())
        assert texts and texts[-1] == "closing", texts[-3:]
    # Nobody answers the close: the shutdown timeout (3 s), not the close timeout (10 s), bounds the exit.
    assert gateway.wait_exit(15) == 0
    assert time.monotonic() - start < 6, time.monotonic() - start
    got = set()
    deadline = time.monotonic() + 5
    while len(got) < 100 and time.monotonic() < deadline:
        got.add(sub.get(max(0.01, deadline - time.monotonic())))
    assert got == {f"last words {i}".encode() for i in range(100)}, len(got)
    gateway.stop()
