"""Backpressure and memory bounds of the delivery core (issue 11).

Covers: bursts to clients that read (never closed, nothing lost), the soft limit with its grace and the hard
limit for clients that do not read (1008 on time, gateway memory bounded, other clients served), a ping flood
from a client that never reads (bounded memory, closed as stale), messages and stored values larger than the
limits (delivered, nobody closed), the stored value coming before live messages held during its GET, exact
accounting of drop mode, Redis cutting the gateway's subscriber connection off (clients stay, the value stored
meanwhile is delivered once), and the reset of a client dropped with output still queued.

Clients that must not read get a 4 KiB receive buffer before they connect. The gateway's socket send buffer still
takes a few MB for them before its own queue grows, so the tests that judge the limits measure what the kernel
holds (/proc/net/tcp) instead of assuming it. Gateway memory is judged from /proc/PID/status (peak RSS after a
reset of the high-water mark); those tests shrink ASan's quarantine of freed memory, which would otherwise count
what the gateway freed.
"""

import asyncio
import datetime
import os
import re
import select
import signal
import socket
import struct
import threading
import time

import harness as h
from harness import with_env

KIB = 1024
MIB = 1024 * 1024

# Memory the gateway may use beyond 2 x the hard limit in the RSS checks: allocator bookkeeping, hiredis and
# libuv buffers, page granularity; with AddressSanitizer also its shadow memory, redzones and quarantine.
RSS_SLACK_KIB = 1024
RSS_SLACK_ASAN_KIB = 8 * 1024


def rss_slack_kib(pid):
    """The slack for the gateway process `pid`: larger when it runs with AddressSanitizer."""
    with open(f"/proc/{pid}/maps") as f:
        return RSS_SLACK_ASAN_KIB if "libasan" in f.read() else RSS_SLACK_KIB

# ASan keeps freed blocks in a quarantine (256 MB by default): peak RSS would then follow the bytes that went
# through the gateway, not the bytes it held. Tests that judge memory start the gateway with a small one.
SMALL_QUARANTINE = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:quarantine_size_mb=1"}

TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
              7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}


# --------------------------------------------------------------------------------------------------------------
# Helpers

def rss_kib(pid):
    """Current resident set size of a process, in KiB."""
    return _status_kib(pid, "VmRSS")


def peak_rss_kib(pid):
    """Peak resident set size (VmHWM) of a process since start or since reset_peak_rss(pid), in KiB."""
    return _status_kib(pid, "VmHWM")


def reset_peak_rss(pid):
    """Resets the process's high-water mark to its current RSS (Linux >= 4.0); returns that RSS in KiB."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
    return rss_kib(pid)


def _status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise h.HarnessError(f"no {field} in /proc/{pid}/status")


def tcp_socket(local_port, remote_port):
    """(state, send queue, receive queue) of the IPv4 TCP socket from `local_port` to `remote_port` as the
    kernel lists it in /proc/net/tcp (what `ss -tn` shows as State, Send-Q, Recv-Q), or None."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if (int(fields[1].rsplit(":", 1)[1], 16) == local_port and
                    int(fields[2].rsplit(":", 1)[1], 16) == remote_port):
                tx, rx = (int(x, 16) for x in fields[4].split(":"))
                return TCP_STATES.get(int(fields[3], 16), fields[3]), tx, rx
    return None


def kernel_held(gateway, ws):
    """Bytes the kernel holds between the gateway and a client: the gateway socket's send queue plus the
    client socket's receive queue (on loopback nothing else is in flight)."""
    port = ws.sock.getsockname()[1]
    gw_side = tcp_socket(gateway.port, port)
    client_side = tcp_socket(port, gateway.port)
    return (gw_side[1] if gw_side else 0) + (client_side[2] if client_side else 0)


def frame_len(payload_len):
    """Bytes of an unmasked server frame carrying `payload_len` bytes."""
    return payload_len + (2 if payload_len < 126 else 4 if payload_len < 65536 else 10)


def log_fields(line):
    """The key=value fields of a text log line; "ts" becomes a Unix time (float)."""
    fields = {}
    for key, value in re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line):
        fields[key] = value[1:-1] if value.startswith('"') else value
    if "ts" in fields:
        stamp = datetime.datetime.strptime(fields["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
        fields["ts"] = stamp.replace(tzinfo=datetime.timezone.utc).timestamp()
    return fields


def log_events(gateway, event, **match):
    """The gateway's log lines of `event` (as log_fields dicts) whose fields equal `match`."""
    out = []
    for line in gateway.log_text().splitlines():
        if f" event={event} " in line + " ":
            fields = log_fields(line)
            if all(fields.get(k) == str(v) for k, v in match.items()):
                out.append(fields)
    return out


def wait_event(gateway, event, timeout=h.DEFAULT_TIMEOUT, **match):
    """Waits for the first log line of `event` with the given fields; returns its fields."""
    return h.wait_until(lambda: (log_events(gateway, event, **match) or [None])[0], timeout,
                        what=f"a log line event={event} {match}")


def conn_id_of(gateway, ws):
    """The gateway's connection number of a client, from its conn_open line (peer=127.0.0.1:<port>)."""
    peer = f"127.0.0.1:{ws.sock.getsockname()[1]}"
    return wait_event(gateway, "conn_open", peer=peer)["conn"]


def metric(gateway, name):
    value = gateway.metrics().get(name)
    assert value is not None, f"the gateway exports no metric {name}"
    return value


class SmallWindowWS(h.RawWS):
    """A RawWS whose receive buffer is made small before it connects, so that the window it advertises stays
    small for the whole connection (set after connecting, the window scale would already be negotiated)."""

    def __init__(self, gateway, rcvbuf=4096, timeout=h.DEFAULT_TIMEOUT):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((gateway.host, gateway.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        self.key = None
        self.closed = False
        h.STATE.resources.append(self)


def never_reading_client(gateway, path):
    ws = SmallWindowWS(gateway)
    ws.assert_upgraded(ws.handshake(path))
    return ws


class FrameParser:
    """Incremental parser of server frames: feed() bytes, get complete messages as (opcode, payload); data
    messages are reassembled, control frames come as they are."""

    def __init__(self):
        self.buf = bytearray()
        self.off = 0
        self.parts = None
        self.opcode = None

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            avail = len(self.buf) - self.off
            if avail < 2:
                break
            b0, b1 = self.buf[self.off], self.buf[self.off + 1]
            n, hlen = b1 & 0x7F, 2
            if n == 126:
                if avail < 4:
                    break
                (n,), hlen = struct.unpack_from("!H", self.buf, self.off + 2), 4
            elif n == 127:
                if avail < 10:
                    break
                (n,), hlen = struct.unpack_from("!Q", self.buf, self.off + 2), 10
            if avail < hlen + n:
                break
            payload = bytes(self.buf[self.off + hlen:self.off + hlen + n])
            self.off += hlen + n
            fin, opcode = bool(b0 & 0x80), b0 & 0x0F
            if opcode >= 8:
                out.append((opcode, payload))
                continue
            if opcode != h.OP_CONT:
                self.opcode, self.parts = opcode, []
            self.parts.append(payload)
            if fin:
                out.append((self.opcode, b"".join(self.parts)))
                self.parts = None
        if self.off > (1 << 20) and self.off * 2 > len(self.buf):
            del self.buf[:self.off]
            self.off = 0
        return out


class Collector:
    """Reads a RawWS connection as fast as it can in a thread, keeping every data message's payload, the
    payloads of PONGs, the code of a close frame and how the stream ended ("eof", "reset" or None)."""

    def __init__(self, ws, keep=None):
        self.ws = ws
        self.keep = keep or (lambda payload: payload)  # what is kept of each data message
        self.paused = threading.Event()  # set: the thread reads nothing (a client that lost its CPU)
        self.messages = []
        self.pongs = []
        self.close_code = None
        self.ended = None
        self._parser = FrameParser()
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._feed(ws.buf)  # what the handshake read past the response head
        ws.buf = b""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        h.STATE.resources.append(self)

    def _feed(self, data):
        frames = self._parser.feed(data)
        if not frames:
            return
        with self._changed:
            for opcode, payload in frames:
                if opcode in (h.OP_TEXT, h.OP_BINARY):
                    self.messages.append(self.keep(payload))
                elif opcode == h.OP_PONG:
                    self.pongs.append(payload)
                elif opcode == h.OP_CLOSE:
                    self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            self._changed.notify_all()

    def _run(self):
        sock = self.ws.sock
        sock.settimeout(0.1)
        while not self._stop.is_set():
            if self.paused.is_set():
                self._stop.wait(0.005)
                continue
            try:
                chunk = sock.recv(1 << 20)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk, self.ended = b"", "reset"
            except OSError:
                chunk, self.ended = b"", self.ended or "error"
            if not chunk:
                with self._changed:
                    self.ended = self.ended or "eof"
                    self._changed.notify_all()
                return
            self._feed(chunk)

    def wait_for(self, predicate, timeout, what):
        """Waits until predicate(self) is true; fails after `timeout` or when the connection ends first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0 or self.ended or self.close_code is not None:
                    raise h.HarnessError(
                        f"{what}: not within {timeout}s (have {len(self.messages)} messages, close "
                        f"{self.close_code}, ended {self.ended})")
                self._changed.wait(min(left, 0.1))

    def wait_count(self, n, timeout):
        self.wait_for(lambda c: len(c.messages) >= n, timeout, f"{n} messages")
        return self.messages[:n]

    def assert_alive(self, timeout=h.DEFAULT_TIMEOUT):
        """Sends a PING and waits for its PONG: the connection is open and the gateway answers."""
        token = os.urandom(4).hex().encode()
        self.ws.send_ping(token)
        self.wait_for(lambda c: token in c.pongs, timeout, "the pong of a liveness ping")

    def close(self):
        self._stop.set()
        self._thread.join(2)


def collector(gateway, path):
    ws = gateway.open_raw(path)
    return Collector(ws)


def publish_pipelined(redis, channel, payloads):
    pipe = redis.pipeline(transaction=False)
    for p in payloads:
        pipe.publish(channel, p)
    pipe.execute()


def assert_no_close_of(gateway, ws, what):
    peer = f"127.0.0.1:{ws.sock.getsockname()[1]}"
    closes = log_events(gateway, "conn_close", peer=peer)
    assert not closes, f"{what} was closed: {closes}"


# --------------------------------------------------------------------------------------------------------------
# 1. Bursts to a client that reads

def _burst_to_a_reading_client(gateway, redis):
    reader = collector(gateway, "/ws/burst?subscribe-broadcast")
    h.wait_numsub("broadcast:burst", 1)
    filler = "x" * (4 * KIB - 6)
    first = [f"a{i:05d}{filler}".encode() for i in range(2000)]
    for start in range(0, len(first), 100):  # pipelines of 100, back to back
        publish_pipelined(redis, "broadcast:burst", first[start:start + 100])
    got = reader.wait_count(len(first), 20)
    assert got == first, "the 2,000 messages did not all arrive in order"
    second = [f"b{i:05d}{filler}".encode() for i in range(300)]
    publish_pipelined(redis, "broadcast:burst", second)  # one pipeline of 1.2 MB
    got = reader.wait_count(len(first) + len(second), 20)
    assert got[len(first):] == second, "the 300-message pipeline did not all arrive in order"
    reader.assert_alive()
    assert reader.close_code is None and reader.ended is None, (reader.close_code, reader.ended)
    assert_no_close_of(gateway, reader.ws, "the reading client")
    assert metric(gateway, "wsgate_slow_consumer_closes_total") == 0
    assert metric(gateway, "wsgate_slow_consumer_dropped_messages_total") == 0
    assert len(reader.messages) == len(first) + len(second), "messages beyond those published"


def test_a_reading_client_gets_every_message_of_bursts_at_the_default_limit(gateway, redis):
    _burst_to_a_reading_client(gateway, redis)


@with_env(WSGATE_MAX_PENDING="256KiB")
def test_a_reading_client_gets_every_message_of_bursts_at_a_256kib_limit(gateway, redis):
    _burst_to_a_reading_client(gateway, redis)


# --------------------------------------------------------------------------------------------------------------
# 2. Clients that never read: soft limit with grace, hard limit; memory bounded, others served

SOFT = 256 * KIB
HARD = 4 * SOFT  # WSGATE_MAX_PENDING_HARD's default
GRACE = 1.0
SLOW_ENV = dict(WSGATE_MAX_PENDING="256KiB", WSGATE_SLOW_GRACE="1s", WSGATE_SLOW_CONSUMER="close",
                **SMALL_QUARANTINE)


class SlowScenario:
    """A never-reading client (and a reading one, with `reader`) on one channel, and the bytes published to
    them."""

    def __init__(self, gateway, redis, channel_facility, reader=True):
        self.gateway, self.redis = gateway, redis
        self.channel = f"broadcast:{channel_facility}"
        self.slow = never_reading_client(gateway, f"/ws/{channel_facility}?subscribe-broadcast")
        self.other = collector(gateway, f"/ws/{channel_facility}?subscribe-broadcast") if reader else None
        h.wait_numsub(self.channel, 1)
        self.slow_conn = conn_id_of(gateway, self.slow)
        self.published = []  # payloads, in order
        self.frame_bytes = 0  # bytes of their frames
        self.baseline_kib = reset_peak_rss(gateway.pid)

    def publish(self, payload):
        self.redis.publish(self.channel, payload)
        self._count([payload])

    def publish_pipeline(self, payloads):
        publish_pipelined(self.redis, self.channel, payloads)
        self._count(payloads)

    def _count(self, payloads):
        self.published.extend(payloads)
        self.frame_bytes += sum(frame_len(len(p)) for p in payloads)

    def pending_estimate(self):
        """Bytes published to the slow client that the kernel has not taken: the gateway's pending bytes."""
        return self.frame_bytes - kernel_held(self.gateway, self.slow)

    def fill_kernel_buffers(self, payload_size, batch=8):
        """Publishes `batch` messages at a time until the kernel takes no more of the slow client's output
        (the gateway starts to queue: its socket send buffer grows to a few MB first); returns the pending
        estimate then, at most one batch."""
        deadline = time.monotonic() + 10
        while True:
            n = len(self.published)
            self.publish_pipeline([f"fill{n + i:05d}".encode().ljust(payload_size, b"f") for i in range(batch)])
            time.sleep(0.03)
            if self.pending_estimate() > 0:
                # The kernel stopped taking bytes; check it is really stuck, not just slow.
                held = kernel_held(self.gateway, self.slow)
                time.sleep(0.1)
                if kernel_held(self.gateway, self.slow) == held:
                    return self.pending_estimate()
            if time.monotonic() > deadline:
                raise h.HarnessError("the kernel kept taking the slow client's output for 10 s")

    def verdict(self, timeout):
        return wait_event(self.gateway, "slow_consumer", timeout, conn=self.slow_conn)

    def check_after_verdict(self, verdict, limit):
        gw = self.gateway
        assert verdict.get("limit") == limit, f"verdict {verdict}, expected limit={limit}"
        # The log line shows the pending bytes the verdict was reached on: over the limit it names.
        assert int(verdict["pending_bytes"]) > int(verdict["limit_bytes"]) == (HARD if limit == "hard" else SOFT), \
            verdict
        close = wait_event(gw, "conn_close", 5, conn=self.slow_conn)
        assert close["code"] == "1008" and close["why"] == "slow consumer", close
        assert metric(gw, "wsgate_slow_consumer_closes_total") == 1
        # The reading client got every message, in order, and is still served.
        got = self.other.wait_count(len(self.published), 20)
        assert got == self.published, "the reading client missed messages or got them out of order"
        self.other.assert_alive()
        assert_no_close_of(gw, self.other.ws, "the reading client")
        growth = peak_rss_kib(gw.pid) - self.baseline_kib
        slack = rss_slack_kib(gw.pid)
        assert growth <= 2 * HARD // KIB + slack, \
            f"gateway RSS grew by {growth} KiB (allowed: 2 x hard limit + {slack} KiB)"


def test_a_client_over_the_soft_limit_is_closed_after_the_grace(start_gateway, redis):
    """16 KB messages at 20/s (320 KB/s): the soft limit (256 KiB) is crossed, the hard one (1 MiB) is not
    reached within grace + 0.5 s; the close comes one grace after the crossing, not before, not much after."""
    gw = start_gateway(**SLOW_ENV)
    sc = SlowScenario(gw, redis, "soft")
    size = 16 * KIB
    sc.fill_kernel_buffers(size)
    crossed_at = None  # wall-clock time of the publish that took the pending bytes over the soft limit
    next_at = time.monotonic()
    deadline = time.monotonic() + 10
    while not log_events(gw, "slow_consumer", conn=sc.slow_conn):
        if crossed_at is not None and time.time() > crossed_at + GRACE + 0.6:
            break  # late: no more traffic (the sweep must close it anyway); the verdict check below fails
        assert time.monotonic() < deadline, "the soft limit was not crossed within 10 s: the test is wrong"
        next_at += 0.05
        time.sleep(max(0.0, next_at - time.monotonic()))
        sc.publish(f"soft{len(sc.published):05d}".encode().ljust(size, b"s"))
        sent_at = time.time()
        if crossed_at is None:
            time.sleep(0.01)  # let the gateway offer the message to the socket
            if sc.pending_estimate() > SOFT:
                crossed_at = sent_at
        assert sc.pending_estimate() < HARD, "the publish rate reached the hard limit: the test is wrong"
    assert crossed_at is not None, "closed before the soft limit was crossed"
    verdict = sc.verdict(1)
    after = verdict["ts"] - crossed_at
    assert GRACE - 0.25 <= after <= GRACE + 0.5, \
        f"closed {after:.3f} s after the soft limit was crossed (grace {GRACE} s): {verdict}"
    assert int(verdict.get("over_ms", -1)) >= GRACE * 1000, verdict
    sc.check_after_verdict(verdict, "soft")


def test_a_client_over_the_hard_limit_is_closed_at_once(start_gateway, redis):
    """A 6 MB pipeline: the hard limit (1 MiB) is crossed a few milliseconds after it starts; the close comes
    within 0.2 s of its start."""
    gw = start_gateway(**SLOW_ENV)
    sc = SlowScenario(gw, redis, "hard")
    assert sc.fill_kernel_buffers(16 * KIB) < SOFT
    started = time.time()
    sc.publish_pipeline([f"hard{i:05d}".encode().ljust(60000, b"h") for i in range(100)])
    verdict = sc.verdict(5)
    after = verdict["ts"] - started
    assert after <= 0.2, f"closed {after:.3f} s after the pipeline started: {verdict}"
    sc.check_after_verdict(verdict, "hard")


# --------------------------------------------------------------------------------------------------------------
# 3. Ping flood from a client that never reads

PING = h.build_frame(h.OP_PING, b"", mask_key=b"\x01\x02\x03\x04")  # 6 bytes

# What the gateway may add during the flood: a few MB (allocator and sanitizer bookkeeping). Queueing a PONG per
# PING would take hundreds.
PING_FLOOD_RSS_KIB = 8 * 1024


def _flood_pings(sock, total, stop, report):
    """Sends `total` bytes of PINGs as fast as the kernel takes them, then one PING every 100 ms until `stop`
    or an error; report gets "flood_done" (time), "sent", "error"."""
    chunk = PING * (64 * KIB // len(PING))
    sock.setblocking(False)
    sent = 0
    rest = memoryview(b"")
    try:
        while sent < total and not stop.is_set():
            if not rest:
                rest = memoryview(chunk)
            try:
                n = sock.send(rest)
            except BlockingIOError:
                _, writable, _ = select.select([], [sock], [], 0.5)
                if not writable:
                    break  # the kernel refuses more
                continue
            sent += n
            rest = rest[n:]
        report["flood_done"] = time.monotonic()
        report["sent"] = sent
        while rest and not stop.is_set():  # finish the last frame
            try:
                rest = rest[sock.send(rest):]
            except BlockingIOError:
                stop.wait(0.1)
        while not stop.wait(0.1):  # keeps sending: input alone must not keep it open
            try:
                sock.send(PING)
            except BlockingIOError:
                pass
    except OSError as e:
        report["error"] = e


# The close timeout keeps TCP_USER_TIMEOUT (idle + close timeout) well after the stall verdict, also on a busy
# machine: this test is about the verdict.
@with_env(WSGATE_IDLE_TIMEOUT="2s", WSGATE_CLOSE_TIMEOUT="2s", **SMALL_QUARANTINE)
def test_a_ping_flood_from_a_client_that_never_reads_is_bounded_and_closed(gateway, redis):
    """The flooder's output stops making progress before the flood (the kernel holds all it takes of a backlog
    below the soft limit): every PONG has to wait in the gateway. It is closed 4000 stale one idle timeout after
    the last progress (plus the sweep and some slack), although it keeps sending PINGs."""
    idle_timeout, slack = 2.0, 3.0
    sc = SlowScenario(gateway, redis, "pf", reader=False)
    flooder = sc.slow
    pending = sc.fill_kernel_buffers(16 * KIB)
    assert pending < 1 * MIB, "the backlog is over the (default) soft limit: the test is wrong"
    other = gateway.open_raw("/ws/pf-other?subscribe-broadcast")
    baseline = reset_peak_rss(gateway.pid)
    stop, report = threading.Event(), {}
    started = time.monotonic()
    thread = threading.Thread(target=_flood_pings, args=(flooder.sock, 6 * MIB, stop, report))
    thread.start()
    try:
        close = None
        while close is None and time.monotonic() - started < idle_timeout + slack:
            other.ping_roundtrip()  # the other client stays active
            close = (log_events(gateway, "conn_close", conn=sc.slow_conn) or [None])[0]
            time.sleep(0.2)
        growth = peak_rss_kib(gateway.pid) - baseline
        assert growth <= PING_FLOOD_RSS_KIB, \
            f"gateway RSS grew by {growth} KiB during the ping flood ({report.get('sent')} bytes sent)"
        assert close is not None, f"the flooding client was not closed within {idle_timeout + slack} s ({report})"
        assert close["code"] == "4000" and close["why"] == "stale", close
    finally:
        stop.set()
        thread.join(5)
    # The gateway drops the socket (its close frame cannot be read): the client sees the end of the stream.
    flooder.sock.setblocking(True)
    flooder.sock.settimeout(0.5)
    deadline = time.monotonic() + 5
    while True:
        assert time.monotonic() < deadline, "the flooding client's connection was not dropped within 5 s"
        other.ping_roundtrip()  # still active: the idle timeout (2 s) must not close it meanwhile
        try:
            if not flooder.sock.recv(1 << 20):
                break
        except socket.timeout:
            continue
        except OSError:  # reset
            break

    def only_the_other_is_open():
        other.ping_roundtrip()
        return gateway.metrics()["wsgate_connections_open"] == 1

    h.wait_until(only_the_other_is_open, 5, interval=0.2, what="only the other client open")
    assert other.ping_roundtrip() == []


@with_env(WSGATE_IDLE_TIMEOUT="1s", WSGATE_CLOSE_TIMEOUT="1s")
def test_a_client_whose_window_stays_shut_is_cut_by_the_kernel_with_nothing_queued(gateway, redis):
    """A client that never reads but keeps pinging slowly: a little data shuts its receive window, and its
    output (the data, then its pongs) waits unacknowledged in the kernel while the gateway's own queue stays
    empty, so neither the idle sweep (it keeps sending) nor the stall rule (nothing pending) sees it. The kernel
    ends the connection once output has gone unacknowledged for the idle and close timeouts (TCP_USER_TIMEOUT)."""
    ws = never_reading_client(gateway, "/ws/shut?subscribe-broadcast")
    h.wait_numsub("broadcast:shut", 1)
    conn = conn_id_of(gateway, ws)
    port = ws.sock.getsockname()[1]
    publish_pipelined(redis, "broadcast:shut", [b"w" * 4000 for _ in range(25)])  # 100 KB: shuts a 4 KiB window
    h.wait_until(lambda: (tcp_socket(gateway.port, port) or (0, 0, 0))[1] > 0, 5,
                 what="output waiting unacknowledged in the gateway's kernel")
    start, close = time.monotonic(), None
    while close is None and time.monotonic() - start < 20:
        ws.send_ping(b"k")  # input: alive for the idle sweep
        time.sleep(0.2)
        close = (log_events(gateway, "conn_close", conn=conn) or [None])[0]
    assert close is not None, "the client with a shut window was not cut within 20 s"
    assert close["why"] == "connection timed out", close
    assert time.monotonic() - start < 15
    assert metric(gateway, "wsgate_slow_consumer_closes_total") == 0  # nothing was ever pending
    h.wait_until(lambda: gateway.metrics()["wsgate_connections_open"] == 0, 5, what="the connection gone")


# --------------------------------------------------------------------------------------------------------------
# 4. Messages and stored values larger than the limits

async def test_a_20_mb_message_reaches_every_reading_subscriber(gateway, redis):
    clients = [await gateway.connect("/ws/big?subscribe-broadcast") for _ in range(3)]
    await h.await_numsub("broadcast:big", 1)
    big = os.urandom(20 * MIB)
    redis.publish("broadcast:big", big)
    for n, ws in enumerate(clients):
        got = await h.recv(ws, 30)
        assert got == big, f"client {n} got {len(got)} bytes, not the 20 MB message"
    for ws in clients:
        await asyncio.wait_for(await ws.ping(), 5)  # still connected
    assert not re.search(r"event=conn_close .*code=1008", gateway.log_text())
    assert gateway.metrics()["wsgate_slow_consumer_closes_total"] == 0


async def test_a_20_mb_stored_value_reaches_each_new_client(gateway, redis):
    big = os.urandom(20 * MIB)
    redis.setex("broadcast:stored", 3600, big)
    clients = []
    for n in range(5):  # one after another
        ws = await gateway.connect("/ws/stored?subscribe-broadcast")
        got = await h.recv(ws, 30)
        assert got == big, f"client {n} got {len(got)} bytes, not the 20 MB stored value"
        clients.append(ws)
    for ws in clients:
        await h.expect_silence(ws, 0.1)  # once each
        await asyncio.wait_for(await ws.ping(), 5)  # still connected
    assert not re.search(r"event=conn_close .*code=1008", gateway.log_text())
    assert len(re.findall(r"event=conn_open ", gateway.log_text())) == 5, "clients reconnected"


def test_a_message_over_the_soft_limit_skips_a_client_with_output_pending(start_gateway, redis):
    """The other half of the large-message rule: a 400 KB message (over the 256 KiB soft limit) reaches the
    reading client whole, and is skipped, counted and logged for the client whose output is still pending,
    which is not closed for it and gets every other message in order."""
    gw = start_gateway(**SLOW_ENV)
    sc = SlowScenario(gw, redis, "oversize")
    pending = sc.fill_kernel_buffers(16 * KIB)
    assert 0 < pending < SOFT, pending
    big = b"B" * (400 * KIB)
    redis.publish(sc.channel, big)
    after = [f"after{i}".encode() for i in range(3)]
    publish_pipelined(redis, sc.channel, after)
    skip = wait_event(gw, "oversize_skip", 5, conn=sc.slow_conn)
    assert int(skip["len"]) > SOFT and int(skip["pending_bytes"]) > 0, skip
    assert metric(gw, "wsgate_oversize_messages_skipped_total") == 1
    got = sc.other.wait_count(len(sc.published) + 1 + len(after), 20)
    assert got == sc.published + [big] + after, "the reading client did not get everything in order"
    # The slow client now reads: everything but the large message, in order, and it was never closed.
    parser = FrameParser()
    frames = parser.feed(sc.slow.buf)
    sc.slow.sock.settimeout(2)
    while sum(1 for op, _ in frames if op in (h.OP_TEXT, h.OP_BINARY)) < len(sc.published) + len(after):
        data = sc.slow.sock.recv(1 << 20)
        assert data, "the gateway closed the client"
        frames += parser.feed(data)
    messages = [p for op, p in frames if op in (h.OP_TEXT, h.OP_BINARY)]
    assert messages == sc.published + after, f"{len(messages)} messages, not those published minus the large one"
    assert metric(gw, "wsgate_slow_consumer_closes_total") == 0
    assert_no_close_of(gw, sc.slow, "the client that skipped the large message")


# --------------------------------------------------------------------------------------------------------------
# 5. The stored value comes before live messages held during its GET

@with_env(WS4REDIS_EXPIRE="3600")
def test_the_stored_value_precedes_live_messages_published_during_its_get(gateway, redis):
    stored = b"stored-value-V"
    redis.set("broadcast:order", stored)
    keeper = gateway.open_raw("/ws/order?subscribe-broadcast")  # the channel stays subscribed
    h.wait_numsub("broadcast:order", 1)
    assert keeper.recv_message()[1] == stored
    overlapped = 0  # joins that got part of the burst: it reached the gateway after the join, while the GET ran
    for j in range(30):
        if j == 15:  # the second half joins an unsubscribed channel: SUBSCRIBE, then GET
            keeper.close_handshake()
            h.wait_numsub("broadcast:order", 0)
        ws = gateway.raw()
        ws.key = h.new_key()
        ws.send_raw(h.upgrade_request("/ws/order?subscribe-broadcast", key=ws.key))
        spin_until = time.perf_counter() + (j % 6) * 0.0003  # moves the burst across the join's GET
        while time.perf_counter() < spin_until:
            pass
        burst = [f"live-{j}-{i}".encode() for i in range(50)]
        publish_pipelined(redis, "broadcast:order", burst)
        ws.assert_upgraded(ws.read_response())
        h.wait_numsub("broadcast:order", 1)  # (without the keeper: until the SUBSCRIBE is done)
        tail = [f"live-{j}-{i}".encode() for i in range(50, 55)]  # surely after the join
        publish_pipelined(redis, "broadcast:order", tail)
        got = []
        while not got or got[-1] != tail[-1]:
            opcode, payload = ws.recv_message(5)
            assert opcode == h.OP_TEXT, (opcode, payload)
            got.append(payload)
        assert got[0] == stored, f"join {j}: the first message is {got[0]!r}, not the stored value"
        live = got[1:]
        assert stored not in live, f"join {j}: the stored value came twice"
        expect = burst + tail
        start = expect.index(live[0]) if live and live[0] in expect else -1
        assert start >= 0 and live == expect[start:], f"join {j}: not a gapless tail: {live[:5]}..."
        if start < 50:
            overlapped += 1
        ws.close_handshake()
        ws.close()
        if j >= 15:
            h.wait_numsub("broadcast:order", 0)
    assert overlapped >= 10, f"only {overlapped} of 30 joins overlapped their burst: the test tested little"


# --------------------------------------------------------------------------------------------------------------
# 6. Drop mode: what was not delivered is counted, exactly

@with_env(WSGATE_SLOW_CONSUMER="drop", WSGATE_MAX_PENDING="64KiB")
def test_drop_mode_counts_exactly_the_messages_it_did_not_deliver(gateway, redis):
    n = 3000
    ws = never_reading_client(gateway, "/ws/acct?subscribe-broadcast")
    # Two clients that read: the slow one is a minority, so reads from Redis do not wait for it (they would if it
    # were most of the clients, and nothing would be dropped).
    readers = [collector(gateway, "/ws/acct?subscribe-broadcast") for _ in range(2)]
    h.wait_numsub("broadcast:acct", 1)
    payloads = [f"{i:06d}".encode().ljust(2000, b"d") for i in range(n)]

    def publisher():
        client = h.STATE.redis_server.new_client()
        for start in range(0, n, 100):
            publish_pipelined(client, "broadcast:acct", payloads[start:start + 100])
            time.sleep(0.02)

    thread = threading.Thread(target=publisher)
    thread.start()
    parser = FrameParser()
    got = []

    def read(chunk_size, until, pause=0.0):
        ws.sock.settimeout(0.2)
        while time.monotonic() < until:
            try:
                data = ws.sock.recv(chunk_size)
            except socket.timeout:
                return False
            assert data, "the gateway closed the client"
            got.extend(parser.feed(data))
            time.sleep(pause)
        return True

    time.sleep(1.0)  # not reading while the burst begins
    read(4096, time.monotonic() + 1.0, pause=0.01)  # reading slowly
    thread.join(30)
    assert not read(1 << 20, time.monotonic() + 20), "still receiving after 20 s"  # all, until 0.2 s of silence
    redis.publish("broadcast:acct", "end")  # nothing is pending: it must arrive, after all the rest
    ws.sock.settimeout(5)
    while not got or got[-1][1] != b"end":
        data = ws.sock.recv(1 << 20)
        assert data, "the gateway closed the client"
        got.extend(parser.feed(data))
    messages = [payload for opcode, payload in got[:-1] if opcode in (h.OP_TEXT, h.OP_BINARY)]
    seqs = [int(p[:6]) for p in messages]
    assert all(a < b for a, b in zip(seqs, seqs[1:])), "received out of order or twice"
    assert all(payloads[s] == p for s, p in zip(seqs, messages)), "a message was altered"
    dropped = metric(gateway, "wsgate_slow_consumer_dropped_messages_total")
    assert len(messages) + dropped == n, f"received {len(messages)} + counted as dropped {dropped} != {n}"
    assert dropped > 0 and len(messages) > 0, (len(messages), dropped)
    assert metric(gateway, "wsgate_slow_consumer_closes_total") == 0
    for r in readers:
        assert r.wait_count(n + 1, 10) == payloads + [b"end"], "a reading client missed messages"


# --------------------------------------------------------------------------------------------------------------
# 7. Redis cutting the gateway's subscriber connection off

def _sub_connections():
    return [c for c in h.redis_client().client_list() if c.get("name") == "wsgate-sub"]


def test_redis_cutting_the_subscriber_off_keeps_clients_and_delivers_what_was_stored(gateway, redis):
    reader = collector(gateway, "/ws/cut?subscribe-broadcast")
    h.wait_numsub("broadcast:cut", 1)
    redis.publish("broadcast:cut", "before")
    reader.wait_count(1, 5)
    assert _sub_connections(), "the gateway's subscriber connection is not named wsgate-sub"
    stored = b"stored-while-cut-off"
    burst = []
    try:
        redis.config_set("client-output-buffer-limit", "pubsub 1mb 512kb 1")
        gateway.signal(signal.SIGSTOP)
        # Publish until Redis drops the frozen gateway's subscriber connection (its output buffer passes 1 MB
        # once the kernel buffers are full).
        while _sub_connections():
            assert len(burst) < 512, "Redis did not drop the subscriber connection after 32 MB"
            chunk = [f"burst{len(burst) + i:04d}".encode().ljust(64 * KIB, b"b") for i in range(32)]
            publish_pipelined(redis, "broadcast:cut", chunk)
            burst += chunk
        # As ws4redis's RedisPublisher does: PUBLISH (nobody gets it now), then SETEX.
        redis.publish("broadcast:cut", stored)
        redis.setex("broadcast:cut", 3600, stored)
    finally:
        gateway.signal(signal.SIGCONT)
        redis.config_set("client-output-buffer-limit", "pubsub 33554432 8388608 60")  # the default
    warn = wait_event(gateway, "redis_subscriber_overflow", 10)
    assert warn.get("lvl") == "warn", warn
    reader.wait_for(lambda c: stored in c.messages, 10, "the value stored while cut off")
    h.wait_numsub("broadcast:cut", 1, timeout=10)
    redis.publish("broadcast:cut", "after")
    reader.wait_for(lambda c: b"after" in c.messages, 5, "a message published after the recovery")
    got = list(reader.messages)
    k = len(got) - 3  # "before", a prefix of the burst (what the kernel held), the stored value, "after"
    assert got[0] == b"before" and got[1:1 + k] == burst[:k] and got[-2:] == [stored, b"after"], \
        f"got {[m[:12] for m in got[:3]]}...{[m[:24] for m in got[-3:]]} ({len(got)} messages)"
    assert metric(gateway, "wsgate_redis_subscriber_overflows_total") == 1
    reader.assert_alive()
    assert_no_close_of(gateway, reader.ws, "the client")
    h.wait_until(lambda: gateway.metrics()["wsgate_connections_open"] == 1, 3, what="the client counted open")


# --------------------------------------------------------------------------------------------------------------
# 7b. Clients that fall behind together: reads from Redis wait, nobody is cut

# A publisher in a process of its own (not competing with the readers for the GIL): `rate` messages a second
# of `size` bytes, numbered in their first 8 bytes, for `seconds`, in pipelines every 10 ms; then "end".
STEADY_PUBLISHER = """
import sys, time, redis
port, channel, rate, size, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
r = redis.Redis(port=int(port))
per_tick, n, start = rate // 100, 0, time.monotonic()
while time.monotonic() - start < seconds:
    pipe = r.pipeline(transaction=False)
    for _ in range(per_tick):
        pipe.publish(channel, f"{n:08d}".encode().ljust(size, b"p"))
        n += 1
    pipe.execute()
    time.sleep(max(0.0, start + n / rate - time.monotonic()))
r.publish(channel, "end")
print(n, flush=True)
"""


@with_env(**SMALL_QUARANTINE)
def test_clients_that_fall_behind_together_are_not_cut_reads_from_redis_wait(gateway, redis):
    """24 MB/s to each of 4 clients that read it easily, until all of them stop reading for 0.6 s at once (a
    load that loses its CPU): 14 MB each, beyond the kernel's buffers and the hard limit (4 MiB, the default).
    The gateway stops reading from Redis while most outputs are behind (the backlog waits in Redis, under its
    pub/sub output limit), so nobody is cut and every client gets every message, in order. Without that, the
    clients are cut with 1008 (limit=hard). The outputs do not fill at the same moment (their kernel buffers
    differ): the first ones to fill wait for the majority with what the hard limit leaves them."""
    import subprocess
    import sys
    clients = []
    for _ in range(4):
        ws = SmallWindowWS(gateway, rcvbuf=64 * KIB)
        ws.assert_upgraded(ws.handshake("/ws/together?subscribe-broadcast"))
        clients.append(Collector(ws, keep=lambda payload: payload[:8]))
    h.wait_numsub("broadcast:together", 1)
    rate, size, seconds = 3000, 8 * KIB, 3.0
    pub = subprocess.Popen(["/usr/bin/python3", "-c", STEADY_PUBLISHER, str(h.STATE.redis_server.port),
                            "broadcast:together", str(rate), str(size), str(seconds)], stdout=subprocess.PIPE)
    try:
        time.sleep(1.0)
        for c in clients:
            c.paused.set()
        time.sleep(0.6)
        for c in clients:
            c.paused.clear()
        out, _ = pub.communicate(timeout=30)
    finally:
        if pub.poll() is None:
            pub.kill()
    published = int(out)
    expected = [f"{i:08d}".encode() for i in range(published)] + [b"end"]
    for i, c in enumerate(clients):
        c.wait_for(lambda c: b"end" in c.messages, 30, f"client {i}: the last message")
        assert c.messages == expected, \
            f"client {i}: {len(c.messages)} of {len(expected)} messages, or out of order"
        assert_no_close_of(gateway, c.ws, f"client {i}")
    assert metric(gateway, "wsgate_slow_consumer_closes_total") == 0
    assert metric(gateway, "wsgate_redis_subscriber_overflows_total") == 0
    assert metric(gateway, "wsgate_redis_reads_held_seconds_total") > 0, "reads from Redis never waited"


@with_env(**SLOW_ENV)
def test_most_clients_stopping_for_good_hold_reads_only_until_they_count_as_stuck(gateway, redis):
    """Three of four clients never read: they are most clients, so reads from Redis wait at first, but once the
    kernel has taken nothing from them for twice the grace they are stuck, reads go on, and the policy cuts
    them. The reading client gets every message, in order, throughout."""
    slow = [never_reading_client(gateway, "/ws/mostly?subscribe-broadcast") for _ in range(3)]
    slow_ids = [conn_id_of(gateway, ws) for ws in slow]
    reader = collector(gateway, "/ws/mostly?subscribe-broadcast")
    h.wait_numsub("broadcast:mostly", 1)
    published = []
    start = time.monotonic()
    deadline = start + 20
    while not all(log_events(gateway, "slow_consumer", conn=c) for c in slow_ids):
        assert time.monotonic() < deadline, "the clients that never read were not cut within 20 s"
        batch = [f"m{len(published) + i:05d}".encode().ljust(16 * KIB, b"m") for i in range(4)]
        publish_pipelined(redis, "broadcast:mostly", batch)  # 1.6 MB/s
        published += batch
        time.sleep(0.04)
    took = time.monotonic() - start
    assert metric(gateway, "wsgate_redis_reads_held_seconds_total") > 0, "reads never waited for most clients"
    got = reader.wait_count(len(published), 20)
    assert got == published, "the reading client missed messages or got them out of order"
    reader.assert_alive()
    assert_no_close_of(gateway, reader.ws, "the reading client")
    assert metric(gateway, "wsgate_slow_consumer_closes_total") == 3
    # Filling the kernel's buffers, 2 x grace until stuck, then the grace or the hard limit: well under 20 s.
    assert took < 12, f"cut after {took:.1f} s"


# --------------------------------------------------------------------------------------------------------------
# 8. A client given up on with output still queued is reset

@with_env(WSGATE_MAX_PENDING="256KiB", WSGATE_CLOSE_TIMEOUT="1s")
def test_a_client_dropped_with_output_queued_is_reset_not_closed(gateway, redis):
    sc = SlowScenario(gateway, redis, "rst")
    port = sc.slow.sock.getsockname()[1]
    sc.fill_kernel_buffers(16 * KIB)  # the kernel now holds output for the client, and keeps holding it
    sc.publish_pipeline([f"rst{i:05d}".encode().ljust(60000, b"r") for i in range(100)])
    close = wait_event(gateway, "conn_close", 5, conn=sc.slow_conn)
    assert close["code"] == "1008", close
    # After the close timeout the gateway gives up on the client and drops its socket.
    last = []

    def dropped():
        last[:] = [tcp_socket(gateway.port, port)]
        return last[0] is None or last[0][0] != "ESTABLISHED"

    gw_side = tcp_socket(gateway.port, port)
    assert gw_side and gw_side[1] > 0, f"the kernel holds no output for the client: the test is wrong ({gw_side})"
    h.wait_until(dropped, 5, what="the gateway to drop the socket")
    # A FIN would leave the gateway's side in FIN-WAIT with the output (and the FIN: one more byte) queued.
    gw_side = last[0]
    assert not (gw_side and gw_side[0] in ("FIN_WAIT1", "FIN_WAIT2") and gw_side[1] > 1), \
        f"the gateway closed with FIN while the kernel still held output: {gw_side} (state, Send-Q, Recv-Q)"
    sc.slow.sock.settimeout(2)
    try:
        while sc.slow.sock.recv(1 << 20):
            pass
        reset = False
    except ConnectionResetError:
        reset = True
    assert reset, "the client's connection ended with FIN, not with a reset"
