"""Hard limits: connection cap (503), publish rate (1008), slow consumers (1008) without hurting others."""

import os
import re
import socket
import time

import harness as h
from harness import with_env


@with_env(WSGATE_MAX_CONNECTIONS="3")
def test_connection_cap_answers_503_and_frees_slots(gateway):
    held = [gateway.open_raw("/ws/cap?subscribe-broadcast") for _ in range(3)]
    extra = gateway.raw()
    resp = extra.handshake("/ws/cap?subscribe-broadcast")
    assert resp.status == 503, resp
    assert "connection limit" in resp.text
    assert resp.headers.get("retry-after") == "5"
    held[0].close_handshake()
    held[0].close()
    # The slot comes back once the connection is gone.
    h.wait_until(lambda: gateway.raw().handshake("/ws/cap").status == 101, 5, what="a free slot")
    assert gateway.wait_log(r"event=handshake_refused .*status=503")


@with_env(WSGATE_PUBLISH_RATE="5", WSGATE_PUBLISH_BURST="5")
def test_publish_rate_limit_closes_flooding_client_with_1008(gateway):
    sub = h.Subscriber("broadcast:rate")
    ws = gateway.open_raw("/ws/rate?publish-broadcast")
    h.wait_numsub("broadcast:rate", 1)
    for i in range(12):
        ws.send_text(f"m{i}")
    code, reason = ws.recv_close(5)
    assert (code, reason) == (1008, b"publish rate exceeded"), (code, reason)
    got = [sub.get(3) for _ in range(5)]  # the burst went through
    assert got == [f"m{i}".encode() for i in range(5)], got


@with_env(WSGATE_PUBLISH_RATE="5", WSGATE_PUBLISH_BURST="5", WSGATE_CLOSE_TIMEOUT="2s")
def test_after_a_rate_limit_close_nothing_more_is_published_logged_or_counted(gateway):
    """A close is final: the frames a flooding client keeps sending after its 1008 are read (to find its close
    frame) but not published, logged or counted."""
    sub = h.Subscriber("broadcast:final")
    ws = gateway.open_raw("/ws/final?publish-broadcast")
    h.wait_numsub("broadcast:final", 1)
    ws.send_raw(b"".join(h.build_frame(h.OP_TEXT, f"f{i}") for i in range(10000)))
    code, reason = ws.recv_close(5)
    assert (code, reason) == (1008, b"publish rate exceeded"), (code, reason)
    ws.send_close(1008)
    ws.wait_eof(5)
    assert [sub.get(3) for _ in range(5)] == [f"f{i}".encode() for i in range(5)]
    sub.expect_none(0.5)  # nothing after the burst
    metrics = gateway.metrics()
    assert metrics["wsgate_rate_limit_closes_total"] == 1
    assert metrics['wsgate_messages_received_total{source="client"}'] == 6  # the burst and the one refused
    log = gateway.log_text()
    assert len(re.findall(r"event=publish_rate_exceeded", log)) == 1, "logged more than once"
    assert len(re.findall(r"event=conn_close ", log)) == 1
    # Of the connection's lines from the verdict on, only the verdict and the close (whatever their events).
    lines = log.splitlines()
    first = next(i for i, line in enumerate(lines) if "event=publish_rate_exceeded" in line)
    conn = re.search(r" conn=(\d+)", lines[first]).group(1)
    after = [line for line in lines[first:] if re.search(rf" conn={conn}(\s|$)", line)]
    assert len(after) <= 2, after[:5]


@with_env(WSGATE_PUBLISH_RATE="10", WSGATE_PUBLISH_BURST="2")
def test_client_within_the_rate_is_not_limited(gateway):
    sub = h.Subscriber("broadcast:calm")
    ws = gateway.open_raw("/ws/calm?publish-broadcast")
    h.wait_numsub("broadcast:calm", 1)
    for i in range(12):  # 8 per second, for 1.5 s
        ws.send_text(f"c{i}")
        time.sleep(0.125)
    assert [sub.get(3) for _ in range(12)] == [f"c{i}".encode() for i in range(12)]
    assert ws.ping_roundtrip() == []


@with_env(WSGATE_MAX_PENDING="256KiB", WSGATE_CLOSE_TIMEOUT="1s")
def test_slow_consumer_is_closed_with_1008_and_others_are_unaffected(gateway):
    slow = gateway.raw()
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.assert_upgraded(slow.handshake("/ws/slow?subscribe-broadcast"))
    other = gateway.open_raw("/ws/other?subscribe-broadcast")
    h.wait_numsub("broadcast:slow", 1)
    h.wait_numsub("broadcast:other", 1)
    r = h.redis_client()
    pipe = r.pipeline(transaction=False)
    for i in range(100):  # 6 MB: far beyond the slow client's socket buffers and its 256 KiB queue
        pipe.publish("broadcast:slow", f"{i:05d}" + "x" * 60000)
    pipe.execute()
    start = time.monotonic()
    h.publish("broadcast:other", "still served")
    assert other.recv_text(5) == "still served"
    assert time.monotonic() - start < 1.0
    assert gateway.wait_log(r"event=conn_close conn=\d+ .*code=1008 .*why=\"slow consumer\"", timeout=5)
    assert gateway.metrics()["wsgate_slow_consumer_closes_total"] == 1
    # A client that does not read cannot get the close frame in time: after WSGATE_CLOSE_TIMEOUT its socket
    # is dropped. Reading now yields what the kernel still held, then a 1008 close or the end of the stream.
    h.wait_until(lambda: gateway.metrics()["wsgate_connections_closing"] == 0, 10, what="the socket dropped")
    closes = []
    try:
        while True:
            fin, opcode, payload = slow.recv_frame(5)
            if opcode == h.OP_CLOSE:
                closes.append(payload[:2])
                break
    except (h.HarnessError, ConnectionError, OSError):
        pass
    assert closes in ([], [(1008).to_bytes(2, "big")]), closes
    assert other.ping_roundtrip() == []


@with_env(WSGATE_MAX_PENDING="256KiB", WSGATE_SLOW_CONSUMER="drop")
def test_drop_policy_keeps_a_slow_consumer_and_counts_dropped_messages(gateway):
    slow = gateway.raw()
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.assert_upgraded(slow.handshake("/ws/drop?subscribe-broadcast"))
    h.wait_numsub("broadcast:drop", 1)
    r = h.redis_client()
    pipe = r.pipeline(transaction=False)
    for i in range(100):
        pipe.publish("broadcast:drop", f"{i:05d}" + "x" * 60000)
    pipe.execute()
    h.wait_until(lambda: gateway.metrics()["wsgate_slow_consumer_dropped_messages_total"] > 0, 5,
                 what="dropped messages counted")
    assert gateway.metrics()["wsgate_slow_consumer_closes_total"] == 0
    # The client stays connected (reading the backlog through a 4 KiB window would take long: not needed).
    h.wait_until(lambda: gateway.metrics()["wsgate_connections_open"] == 1, 5, what="the client still open")
    assert not re.search(r"event=conn_close conn=\d+ .*slow consumer", gateway.log_text())
    assert gateway.wait_log(r"event=slow_consumer_drop conn=\d+ pending_bytes=\d+")


def test_running_out_of_file_descriptors_does_not_spin_or_stop_the_gateway(gateway):
    """EMFILE on accept: accepting pauses (connections wait in the kernel's backlog), one warning is logged, no
    busy loop, and accepting resumes once descriptors are free again."""
    import subprocess
    held = [gateway.open_raw("/ws/fd?subscribe-broadcast") for _ in range(3)]
    used = len(os.listdir(f"/proc/{gateway.pid}/fd"))
    subprocess.run(["prlimit", f"--pid={gateway.pid}", f"--nofile={used + 2}:"], check=True)
    extra = []
    for _ in range(10):
        try:
            extra.append(gateway.raw(timeout=2))
        except OSError:
            pass
    assert gateway.wait_log(r"event=accept_paused err=\"Too many open files\"", timeout=5)
    start_cpu = _cpu_seconds(gateway.pid)
    time.sleep(1.0)
    assert _cpu_seconds(gateway.pid) - start_cpu < 0.5, "busy loop while out of descriptors"
    for ws in extra:
        ws.close()
    for ws in held:
        ws.close()
    subprocess.run(["prlimit", f"--pid={gateway.pid}", "--nofile=4096:"], check=True)
    ws = gateway.open_raw("/ws/fd?subscribe-broadcast")
    assert ws.ping_roundtrip() == []
    assert gateway.metrics()["wsgate_accept_pauses_total"] >= 1
    assert len(re.findall(r"event=accept_paused", gateway.log_text())) == 1  # logged once, not per retry


def _cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
