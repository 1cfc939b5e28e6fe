"""Process and connection lifecycle: handshake timeout, command line, bad settings, SIGTERM, Redis restarts."""

import asyncio
import os
import re
import signal
import time

import harness as h
from harness import with_env

SETTINGS = ("WSGATE_LISTEN", "REDIS_URL", "WEBSOCKET_URL", "WS4REDIS_PREFIX", "WS4REDIS_EXPIRE",
            "WS4REDIS_HEARTBEAT", "WSGATE_HEARTBEAT_INTERVAL", "WSGATE_MAX_PAYLOAD", "WSGATE_HANDSHAKE_TIMEOUT",
            "WSGATE_LOG_LEVEL")


# -- Handshake timeout -----------------------------------------------------------------------------------------

@with_env(WSGATE_HANDSHAKE_TIMEOUT="500ms")
def test_silent_client_is_disconnected_after_handshake_timeout(gateway):
    ws = gateway.raw()
    waited = ws.wait_eof(2.5)
    assert waited >= 0.4, f"closed after {waited:.2f}s, before the 500ms timeout"


@with_env(WSGATE_HANDSHAKE_TIMEOUT="500ms")
def test_half_request_is_disconnected_after_handshake_timeout(gateway):
    ws = gateway.raw()
    ws.send_raw(h.upgrade_request("/ws/foo?subscribe-broadcast")[:40])
    waited = ws.wait_eof(2.5)
    assert waited >= 0.4, f"closed after {waited:.2f}s, before the 500ms timeout"


@with_env(WSGATE_HANDSHAKE_TIMEOUT="3s")
def test_slow_request_within_handshake_timeout_succeeds(gateway):
    ws = gateway.raw()
    ws.key = h.new_key()
    head = h.upgrade_request("/ws/foo?subscribe-broadcast", key=ws.key)
    ws.send_raw(head[:30])
    ws.expect_silence(0.6)
    ws.send_raw(head[30:])
    ws.assert_upgraded(ws.read_response())


@with_env(WSGATE_HANDSHAKE_TIMEOUT="500ms")
def test_handshake_timeout_does_not_apply_after_upgrade(gateway):
    ws = gateway.open_raw("/ws/foo?subscribe-broadcast")
    h.wait_numsub("broadcast:foo", 1)
    ws.expect_silence(1.5)
    h.publish("broadcast:foo", "still connected")
    assert ws.recv_text() == "still connected"


# -- Command line and settings ---------------------------------------------------------------------------------

def test_help_prints_usage_with_settings(run_gateway):
    status, out = run_gateway(["--help"])
    assert status == 0, (status, out)
    assert re.search(r"(?i)usage", out), out
    missing = [s for s in SETTINGS if s not in out]
    assert not missing, f"--help does not mention {missing}:\n{out}"


def test_help_names_every_redis_url_form_of_the_readme(run_gateway):
    """The README's REDIS_URL row lists the accepted URL forms; --help must offer each of their schemes."""
    with open(os.path.join(h.ROOT, "README.md"), encoding="utf-8") as f:
        row = next(line for line in f if line.startswith("| `REDIS_URL` |"))
    schemes = sorted(set(re.findall(r"`([a-z][a-z0-9+-]*)://", row.split("|")[4])))
    assert "redis-sentinel" in schemes and "unix" in schemes, (schemes, row)
    status, out = run_gateway(["--help"])
    assert status == 0, (status, out)
    missing = [s for s in schemes if f"{s}://" not in out]
    assert not missing, f"--help does not mention {missing}:\n{out}"


def test_version_prints_name_and_version(run_gateway):
    status, out = run_gateway(["--version"])
    assert status == 0, (status, out)
    assert re.match(r"wsgate \d+\.\d+\S*\s*$", out), repr(out)


def test_bad_setting_values_exit_2_naming_the_variable(run_gateway):
    bad = {
        "WSGATE_MAX_PAYLOAD": "abc",
        "WSGATE_HEARTBEAT_INTERVAL": "-1",
        "WSGATE_HANDSHAKE_TIMEOUT": "soon",
        "WS4REDIS_EXPIRE": "abc",
        "WSGATE_LOG_LEVEL": "chatty",
        "WSGATE_LISTEN": "127.0.0.1:notaport",
        "REDIS_URL": "tcp://127.0.0.1:6379/0",
    }
    for name, value in bad.items():
        start = time.monotonic()
        status, out = run_gateway(**{name: value})
        assert status == 2, f"{name}={value}: exit status {status}\n{out}"
        assert name in out, f"{name}={value}: message does not name the variable:\n{out}"
        assert time.monotonic() - start < 5, f"{name}={value}: took too long to refuse"


def test_redis_cluster_settings_are_checked_at_start(run_gateway):
    # A database other than 0 is refused by the URL parser, with its own reason.
    status, out = run_gateway(REDIS_URL="redis-cluster://127.0.0.1:7000/2", timeout=5)
    assert status == 2 and "REDIS_URL: bad database number (Redis Cluster has only database 0)" in out, out
    status, out = run_gateway(REDIS_URL="redis://127.0.0.1:7000/0", WSGATE_REDIS_SHARDED="1", timeout=5)
    assert status == 2 and "WSGATE_REDIS_SHARDED=1 needs a Redis Cluster URL" in out, out


# -- Graceful stop ---------------------------------------------------------------------------------------------

async def test_sigterm_closes_clients_with_1001_and_exits_0(gateway):
    real = await asyncio.gather(*[gateway.connect(f"/ws/t{i}?subscribe-broadcast") for i in range(3)])
    raw = [gateway.open_raw(f"/ws/t{i}?subscribe-broadcast&publish-broadcast") for i in range(3)]
    for i in range(3):
        await h.await_numsub(f"broadcast:t{i}", 1)
    gateway.signal(signal.SIGTERM)
    for ws in real:
        code, _ = await h.wait_closed(ws, 10)
        assert code == 1001, code
    for ws in raw:
        ws.expect_close(1001, timeout=10)
    status = await asyncio.get_running_loop().run_in_executor(None, gateway.wait_exit, 15)
    assert status == 0, status
    gateway.stop()  # checks the exit status and the log for sanitizer reports


def test_sigterm_with_idle_and_handshaking_connections_exits_0(gateway):
    idle = gateway.raw()  # TCP only, no request yet
    half = gateway.raw()
    half.send_raw(b"GET /ws/x HTTP/1.1\r\nHost: x\r\n")
    ws = gateway.open_raw("/ws/x?subscribe-broadcast")
    h.wait_numsub("broadcast:x", 1)
    gateway.signal(signal.SIGTERM)
    ws.expect_close(1001, timeout=10)
    idle.wait_eof(10)
    half.wait_eof(10)
    assert gateway.wait_exit(15) == 0
    gateway.stop()


# -- Redis restarts --------------------------------------------------------------------------------------------

def publish_until_seen(ws, sub, prefix, timeout=20):
    """Sends numbered messages until the Redis subscriber sees one (the command link may still be
    reconnecting); returns the one seen."""
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        ws.send_text(f"{prefix}{n}")
        n += 1
        try:
            got = sub.get(0.5)
        except AssertionError:
            continue
        assert got.startswith(prefix.encode()), got
        return got
    raise AssertionError(f"client messages were not published within {timeout}s after the Redis restart")


def test_redis_restart_keeps_clients_and_resumes_traffic(gateway, redis_server):
    listener = gateway.open_raw("/ws/r1?subscribe-broadcast")
    other = gateway.open_raw("/ws/r2?subscribe-broadcast")
    writer = gateway.open_raw("/ws/r3?publish-broadcast")
    h.wait_numsub("broadcast:r1", 1)
    h.wait_numsub("broadcast:r2", 1)

    redis_server.restart()  # kill -9, then start on the same port (empty)

    h.wait_numsub("broadcast:r1", 1, timeout=20)
    h.wait_numsub("broadcast:r2", 1, timeout=20)
    h.publish("broadcast:r1", "after restart")
    assert listener.recv_text(5) == "after restart"  # a close frame here would fail
    assert other.ping_roundtrip() == []
    sub = h.Subscriber("broadcast:r3")
    publish_until_seen(writer, sub, "after-")
    h.wait_until(lambda: (redis_server.client().get("broadcast:r3") or b"").startswith(b"after-"), 5,
                 what="SETEX after the restart")

    redis_server.client().set("broadcast:r4", "persisted")
    late = gateway.open_raw("/ws/r4?subscribe-broadcast")
    assert late.recv_text(5) == "persisted"


def test_clients_stay_connected_while_redis_is_down(gateway, redis_server):
    ws = gateway.open_raw("/ws/down?subscribe-broadcast")
    h.wait_numsub("broadcast:down", 1)
    redis_server.kill()
    # The gateway keeps serving WebSocket traffic while Redis is away.
    for i in range(3):
        assert ws.ping_roundtrip(b"alive%d" % i) == []
        ws.expect_silence(0.4)
    redis_server.start()
    h.wait_numsub("broadcast:down", 1, timeout=20)
    h.publish("broadcast:down", "back")
    assert ws.recv_text(5) == "back"


def test_gateway_stops_cleanly_while_redis_is_down(gateway, redis_server):
    ws = gateway.open_raw("/ws/down?subscribe-broadcast")
    h.wait_numsub("broadcast:down", 1)
    redis_server.kill()
    assert ws.ping_roundtrip() == []
    gateway.signal(signal.SIGTERM)
    ws.expect_close(1001, timeout=10)
    assert gateway.wait_exit(15) == 0
    gateway.stop()


@with_env(WSGATE_REDIS_TIMEOUT="500ms")
def test_frozen_redis_is_detected_by_the_probe_and_recovered(gateway, redis_server):
    """A Redis that stops answering but keeps its connections open (SIGSTOP) is found by the probe."""
    ws = gateway.open_raw("/ws/frozen?subscribe-broadcast")
    h.wait_numsub("broadcast:frozen", 1)
    h.wait_until(lambda: gateway.admin_get("/readyz")[0] == 200, 10, what="/readyz 200")
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        assert gateway.wait_log(r"event=redis_probe_failed", timeout=5)
        h.wait_until(lambda: gateway.admin_get("/readyz")[0] == 503, 5, what="/readyz 503 while Redis is frozen")
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    h.wait_until(lambda: gateway.admin_get("/readyz")[0] == 200, 20, what="/readyz 200 after Redis thaws")
    h.wait_numsub("broadcast:frozen", 1, timeout=20)
    h.publish("broadcast:frozen", "thawed")
    assert ws.recv_text(5) == "thawed"
    assert gateway.metrics()["wsgate_redis_probe_failures_total"] >= 1


def test_message_stored_while_the_subscription_was_lost_is_delivered_after_it_returns(gateway):
    ws = gateway.open_raw("/ws/gap?subscribe-broadcast")
    h.wait_numsub("broadcast:gap", 1)
    h.publish("broadcast:gap", "before")
    assert ws.recv_text() == "before"
    r = h.redis_client()
    # The subscriber connection is cut and, for a moment, Redis takes no new connection (the gateway retries
    # at once); what is published now reaches nobody, but ws4redis publishers also store it, and the gateway
    # reads the key again once it has resubscribed.
    clients = len(r.client_list())
    r.config_set("maxclients", clients - 1)
    try:
        r.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        h.wait_until(lambda: h.numsub("broadcast:gap") == 0, 5, what="the subscription cut")
        r.publish("broadcast:gap", "during")
        r.setex("broadcast:gap", 60, "during")
        time.sleep(0.2)  # some refused attempts
    finally:
        r.config_set("maxclients", 10000)
    assert ws.recv_text(10) == "during"
    assert gateway.wait_log(r"event=redis_missed_message channel=broadcast:gap")
    h.publish("broadcast:gap", "after")
    assert ws.recv_text(5) == "after"
    ws.expect_silence(0.3)


def test_unchanged_key_is_not_resent_after_a_reconnect(gateway):
    r = h.redis_client()
    r.setex("broadcast:same", 60, "stored")
    ws = gateway.open_raw("/ws/same?subscribe-broadcast")
    assert ws.recv_text() == "stored"  # the persisted message on connect
    r.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    h.wait_until(lambda: h.numsub("broadcast:same") == 0, 5, what="the subscription cut")
    h.wait_numsub("broadcast:same", 1, timeout=10)
    ws.expect_silence(0.5)


@with_env(WSGATE_REDIS_RETRY_MAX="2s")
def test_client_publishes_made_during_an_outage_arrive_in_order_after_it(gateway, redis_server):
    writer = gateway.open_raw("/ws/q?publish-broadcast")
    assert writer.ping_roundtrip() == []
    redis_server.kill()
    for i in range(20):
        writer.send_text(f"queued {i}")
    assert writer.ping_roundtrip() == []  # the gateway has read them all; Redis is still down
    # Attempts come at about 0.1, 0.3, 0.7, 1.5 and 3.1 s (+-20%): start Redis and subscribe in the long gap
    # before the fifth, so that the subscriber is there when the queue is sent.
    time.sleep(1.9)
    redis_server.start()
    sub = h.Subscriber("broadcast:q")
    got = [sub.get(15) for _ in range(20)]
    assert got == [f"queued {i}".encode() for i in range(20)], got
    assert redis_server.client().get("broadcast:q") == b"queued 19"


@with_env(WSGATE_PUBLISH_QUEUE="5")
def test_full_outage_queue_closes_the_publisher_with_1013(gateway, redis_server):
    writer = gateway.open_raw("/ws/full?publish-broadcast")
    assert writer.ping_roundtrip() == []
    redis_server.kill()
    # Messages sent before the gateway has seen the connection drop are in flight, not queued: wait for it.
    gateway.wait_log(r"event=redis_down role=commands")
    for i in range(10):
        writer.send_text(f"m{i}")
    code, reason = writer.recv_close(5)
    assert (code, reason) == (1013, b"try again later"), (code, reason)
    redis_server.start()
