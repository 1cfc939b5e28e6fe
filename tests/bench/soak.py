#!/usr/bin/python3
"""Soak test of the release gateway: thousands of clients in churn for minutes, every delivery accounted for.

Usage: /usr/bin/python3 tests/bench/soak.py [--minutes 10] [--clients 2700] [--stable 300] [--facilities 4]
                                           [--rate 10] [--workers 2] [--bin build/release/wsgate]
(scripts/soak [minutes] builds what is missing, raises `ulimit -n` and runs this.)

What runs, all on loopback, every process started here stopped by PID at the end (also on errors and signals):
  - a private redis-server on a free port;
  - the release gateway with WSGATE_WORKERS=2, WS4REDIS_HEARTBEAT=--heartbeat--, WSGATE_ANONYMOUS_PUBLISH=1 and
    its admin listener on a free port;
  - a paced publisher (thread): `--rate` messages per second on each facility, PUBLISH broadcast:soak-<f>
    "<f> <seq> <publish time us> <padding>" with a gap-free sequence per facility;
  - `--workers` client processes (asyncio, raw sockets) holding `--clients` WebSockets at once, of which
    `--stable` live for the whole run and the others churn: each lives a random 5-60 s (mean 32.5 s, so 2,700
    churning clients make ~5,000 connects a minute), then leaves by a clean close handshake (50%), a TCP reset
    (25%) or a bare FIN without close frame (25%); besides, 2% of the connects are aborted during the HTTP
    upgrade (reset right after the request, or half a request and a FIN). Each client answers PINGs and
    heartbeats (like ws4redis.js).

Accounting, per client: the first sequence number it receives is its start (it gets everything published after
its subscription took effect); from then on it must receive every number up to the last one it receives, in
order, without duplicates: expected = last - first + 1, delivered = distinct numbers received. Clients still
connected when the publisher stops (the stable ones and the churning ones alive then) must moreover receive the
final number of their facility, so the tail is checked too.

Gateway health: RSS and open fds (from /proc) and /metrics every 5 s. The baseline is taken after the warm-up
(`--warmup`, default 60 s, 25 s for runs under 5 minutes), with the full client population; then
  - fds: at every sample, the gateway's fds that are not client sockets (told apart through /proc/net/tcp
    inodes; the /metrics gauges are refreshed by the sweep and lag under churn) must stay within +-FD_SLACK of
    the baseline's, and once all clients are gone the count must be back to the idle count taken before the
    first client (+-FD_SLACK);
  - RSS: the last sample under full load must be within baseline + 10% + 4 MiB (RSS_SLACK_* below), and
    the RSS after all clients left is reported;
  - no restart: the same process all along and wsgate_connections_total never decreasing;
  - /metrics is saved at the end (build/soak/metrics.txt), then SIGTERM; the exit status must be 0.
Results: build/soak/summary.txt (also printed), build/soak/samples.csv, build/soak/gateway.log. Exit status 0
when every check passed, 1 otherwise, 2 on a setup error.
"""

import argparse
import asyncio
import base64
import collections
import hashlib
import json
import os
import platform
import random
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
OUT = ROOT / "build" / "soak"
HEARTBEAT = b"--heartbeat--"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
NOFILE_WANTED = 19000

FD_SLACK = 3  # "back to baseline +- a few"
# RSS bound between the baseline (after warm-up, full population) and the last full-load sample: glibc keeps
# freed memory in its arenas (2 workers -> several arenas), so some growth from fragmentation is normal; a leak
# of 100 bytes per connection over a 10-minute run (~50,000 connects) would be ~5 MiB and fail it.
RSS_SLACK_FIXED_KB = 4 * 1024
RSS_SLACK_RATIO = 0.10
PAD = b"x" * 64

started = []  # Popen objects to stop by PID


def log(msg):
    print(f"soak: {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ================================================================================================ client worker

def mask_frame(opcode, payload):
    """A masked client frame (payloads here are short)."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    else:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    if n:
        k = (key * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")
    return head + key + payload


HEARTBEAT_FRAME_LEN = 2 + 4 + len(HEARTBEAT)


class Stats:
    def __init__(self):
        self.c = collections.Counter()
        self.lat_hist = collections.Counter()  # delivery latency, bucket = ceil(log2(ms)), 0 for < 1 ms
        self.close_codes = collections.Counter()  # close codes received from the server
        self.problems = []  # first few per-client anomalies, for the report

    def problem(self, text):
        self.c["problems"] += 1
        if len(self.problems) < 20:
            self.problems.append(text)


class Client(asyncio.Protocol):
    """One WebSocket client on a raw socket."""

    def __init__(self, w, facility, stable, mode="normal"):
        self.w = w
        self.fac = facility
        self.stable = stable
        self.mode = mode  # normal, or an aborted upgrade: "rst_upgrade", "half_request"
        self.transport = None
        self.buf = bytearray()
        self.upgraded = False
        self.key = base64.b64encode(os.urandom(16))
        self.first = None
        self.last = None
        self.count = 0
        self.missing = 0
        self.disorder = 0
        self.closing = None  # how we are leaving: "clean", "rst", "fin", "end"
        self.server_close = None
        self.finished = False
        self.timer = None
        self.frag = None
        self.t_open = time.monotonic()
        self.lost = w.loop.create_future()

    # -- lifecycle -----------------------------------------------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport
        req = (f"GET /ws/soak-{self.fac}?subscribe-broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {self.key.decode()}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode()
        if self.mode == "rst_upgrade":
            transport.write(req)
            self.reset()
            return
        if self.mode == "half_request":
            transport.write(req[: len(req) // 2])
            transport.close()  # FIN in the middle of the request head
            return
        transport.write(req)

    def reset(self):
        sock = self.transport.get_extra_info("socket")
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.transport.abort()

    def connection_lost(self, exc):
        w = self.w
        if self.timer is not None:
            self.timer.cancel()
        if self.mode != "normal":
            w.stats.c["upgrade_aborts"] += 1
        elif not self.upgraded:
            w.stats.c["handshake_failures"] += 1
            w.stats.problem(f"fac {self.fac}: connection lost before the 101 ({exc!r}, got {bytes(self.buf[:80])!r})")
        else:
            if self.closing is None and self.server_close is None:
                w.stats.c["unexpected_drops"] += 1
                w.stats.problem(f"fac {self.fac}: connection dropped by the server without a close ({exc!r})")
            self.account()
        w.on_lost(self)
        if not self.lost.done():
            self.lost.set_result(None)

    def account(self):
        """Adds this client's figures to the worker's totals (once)."""
        if self.finished:
            return
        self.finished = True
        c = self.w.stats.c
        c["clients_done"] += 1
        c["stable_done" if self.stable else "churn_done"] += 1
        if self.first is None:
            c["clients_without_messages"] += 1
            return
        expected = self.last - self.first + 1
        tail_missing = 0
        final = self.w.final.get(self.fac) if self.closing == "end" else None
        if final is not None and self.last < final:
            tail_missing = final - self.last
            self.w.stats.problem(f"fac {self.fac}: still connected at the end but last seq {self.last} < final "
                                 f"{final}")
        c["expected"] += expected + tail_missing
        c["delivered"] += self.count
        c["missing"] += self.missing + tail_missing
        c["disorder"] += self.disorder
        if self.missing:
            self.w.stats.problem(f"fac {self.fac}: {self.missing} missing between {self.first} and {self.last}")

    # -- leaving -------------------------------------------------------------------------------------------
    def leave(self, how):
        if self.closing is not None or self.transport is None or self.transport.is_closing():
            return
        self.closing = how
        self.w.stats.c["leave_" + how] += 1
        if how in ("clean", "end"):
            self.transport.write(mask_frame(0x8, struct.pack("!H", 1000)))
            self.timer = self.w.loop.call_later(10.0, self.close_timeout)
        elif how == "rst":
            self.reset()
        else:  # fin: no close frame, just the TCP close
            self.transport.close()

    def close_timeout(self):
        self.timer = None
        self.w.stats.c["close_timeouts"] += 1
        self.w.stats.problem(f"fac {self.fac}: no close answer / TCP close within 10 s")
        self.transport.abort()

    # -- input ---------------------------------------------------------------------------------------------
    def data_received(self, data):
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 4096:
                    self.transport.abort()
                return
            head = bytes(buf[:end])
            del buf[:end + 4]
            accept = base64.b64encode(hashlib.sha1(self.key + GUID).digest())
            if not head.startswith(b"HTTP/1.1 101") or accept not in head:
                self.w.stats.problem(f"fac {self.fac}: bad upgrade answer {head[:200]!r}")
                self.transport.abort()
                return
            self.upgraded = True
            self.w.stats.c["upgraded"] += 1
        pos = 0
        n = len(buf)
        while n - pos >= 2:
            b0 = buf[pos]
            ln = buf[pos + 1] & 0x7F
            hl = 2
            if ln == 126:
                if n - pos < 4:
                    break
                ln = (buf[pos + 2] << 8) | buf[pos + 3]
                hl = 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln = int.from_bytes(buf[pos + 2:pos + 10], "big")
                hl = 10
            if n - pos < hl + ln:
                break
            payload = bytes(buf[pos + hl:pos + hl + ln])
            pos += hl + ln
            self.on_frame(b0, payload)
        if pos:
            del buf[:pos]

    def on_frame(self, b0, payload):
        op = b0 & 0x0F
        fin = b0 & 0x80
        if op == 0x1 or op == 0x2 or op == 0x0:
            if op != 0x0 and fin:
                self.on_message(payload)
            elif op != 0x0:
                self.frag = [payload]
            else:
                if self.frag is None:
                    self.w.stats.problem(f"fac {self.fac}: continuation without start")
                    return
                self.frag.append(payload)
                if fin:
                    msg, self.frag = b"".join(self.frag), None
                    self.on_message(msg)
        elif op == 0x9:
            if self.closing is None:
                self.transport.write(mask_frame(0xA, payload))
            self.w.stats.c["pings"] += 1
        elif op == 0x8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            self.server_close = code
            self.w.stats.close_codes[str(code)] += 1
            if self.closing is None:  # the server started the close: answer it
                self.w.stats.problem(f"fac {self.fac}: server closed with {code} {payload[2:]!r}")
                self.closing = "server"
                self.transport.write(mask_frame(0x8, payload[:2]))
                self.timer = self.w.loop.call_later(10.0, self.close_timeout)
            elif self.closing in ("clean", "end"):
                pass  # the server's answer; it closes TCP next
        elif op == 0xA:
            pass
        else:
            self.w.stats.problem(f"fac {self.fac}: unexpected opcode {op}")

    def on_message(self, payload):
        st = self.w.stats.c
        if payload == HEARTBEAT:
            st["heartbeats"] += 1
            if self.closing is None:
                self.transport.write(mask_frame(0x1, HEARTBEAT))
            return
        try:
            fac_s, seq_s, ts_s, _ = payload.split(b" ", 3)
            fac = int(fac_s)
            seq = int(seq_s)
        except ValueError:
            self.w.stats.problem(f"fac {self.fac}: unexpected message {payload[:80]!r}")
            return
        if fac != self.fac:
            self.w.stats.problem(f"fac {self.fac}: got a message of facility {fac}")
            return
        lat_ms = (time.time_ns() // 1000 - int(ts_s)) / 1000.0
        self.w.stats.lat_hist[0 if lat_ms < 1 else int(lat_ms).bit_length()] += 1
        last = self.last
        if last is None:
            self.first = self.last = seq
            self.count = 1
        elif seq == last + 1:
            self.last = seq
            self.count += 1
        elif seq > last + 1:
            self.missing += seq - last - 1
            self.last = seq
            self.count += 1
        else:
            self.disorder += 1  # duplicate or out of order


class Worker:
    def __init__(self, args):
        self.a = args
        self.loop = asyncio.get_running_loop()
        self.stats = Stats()
        self.rng = random.Random(args.seed)
        self.churn = set()
        self.stable = set()
        self.all = set()
        self.final = {}
        self.stopping = False
        self.connecting = 0
        self.peak = 0

    def on_lost(self, cl):
        self.all.discard(cl)
        self.churn.discard(cl)
        self.stable.discard(cl)

    async def open_one(self, stable):
        fac = self.rng.randrange(self.a.facilities)
        r = self.rng.random()
        mode = "normal"
        if not stable and r < 0.01:
            mode = "rst_upgrade"
        elif not stable and r < 0.02:
            mode = "half_request"
        self.connecting += 1
        try:
            _, cl = await asyncio.wait_for(
                self.loop.create_connection(lambda: Client(self, fac, stable, mode), "127.0.0.1", self.a.port),
                10.0)
        except (OSError, asyncio.TimeoutError) as e:
            self.stats.c["connect_errors"] += 1
            self.stats.problem(f"connect failed: {e!r}")
            return
        finally:
            self.connecting -= 1
        self.stats.c["connects"] += 1
        if mode != "normal":
            return
        if cl.transport is None or cl.transport.is_closing():
            return
        self.all.add(cl)
        if stable:
            self.stable.add(cl)
            self.stats.c["stable_connects"] += 1
        else:
            self.churn.add(cl)
            life = self.rng.uniform(self.a.life_min, self.a.life_max)
            r = self.rng.random()
            how = "clean" if r < 0.5 else ("rst" if r < 0.75 else "fin")
            cl.timer = self.loop.call_later(life, cl.leave, how)
        self.peak = max(self.peak, len(self.all))

    async def spawner(self):
        """Keeps the population at its target, opening at most connect_rate connections a second."""
        tokens = 0.0
        last = time.monotonic()
        tasks = set()
        while not self.stopping:
            now = time.monotonic()
            tokens = min(tokens + (now - last) * self.a.connect_rate, self.a.connect_rate * 0.1 + 1)
            last = now
            want_stable = self.a.stable - len(self.stable) - sum(1 for t in tasks if t.stable)
            want_churn = self.a.clients - len(self.churn) - sum(1 for t in tasks if not t.stable)
            while tokens >= 1 and (want_stable > 0 or want_churn > 0):
                stable = want_stable > 0 and self.stats.c["stable_connects"] < self.a.stable
                if stable:
                    want_stable -= 1
                else:
                    if want_churn <= 0:
                        break
                    want_churn -= 1
                t = asyncio.ensure_future(self.open_one(stable))
                t.stable = stable
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                tokens -= 1
            await asyncio.sleep(0.01)
        if tasks:
            await asyncio.wait(tasks, timeout=15)

    async def read_stop(self):
        """Waits for the orchestrator's stop line on stdin: {"final": {facility: last seq}}."""
        reader = asyncio.StreamReader()
        await self.loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        line = await reader.readline()
        msg = json.loads(line or b"{}")
        self.final = {int(k): v for k, v in msg.get("final", {}).items()}

    async def run(self):
        sp = asyncio.ensure_future(self.spawner())
        await self.read_stop()
        self.stopping = True
        await sp
        for cl in list(self.all):
            if cl.timer is not None and cl.closing is None:
                cl.timer.cancel()
                cl.timer = None
        # Tail: every client still connected that has received something must get its facility's final number.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            behind = [cl for cl in self.all if cl.closing is None and cl.first is not None
                      and cl.last < self.final.get(cl.fac, -1)]
            if not behind:
                break
            await asyncio.sleep(0.05)
        self.stats.c["alive_at_end"] = len(self.all)
        self.stats.c["stable_alive_at_end"] = len(self.stable)
        waits = []
        for cl in list(self.all):
            if cl.closing is None:
                cl.leave("end")
            waits.append(cl.lost)
        if waits:
            await asyncio.wait(waits, timeout=20)
        for cl in list(self.all):
            self.stats.problem(f"fac {cl.fac}: still open after the final close; aborted")
            cl.transport.abort()
        await asyncio.sleep(0.1)
        s = self.stats
        return {"counters": dict(s.c), "lat_hist": {str(k): v for k, v in s.lat_hist.items()},
                "close_codes": dict(s.close_codes), "problems": s.problems, "peak": self.peak}


def worker_main(args):
    async def main():
        w = Worker(args)
        res = await w.run()
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()

    asyncio.run(main())


# ================================================================================================ orchestrator

class Publisher(threading.Thread):
    """Publishes `rate` messages a second on every facility with a gap-free sequence each (one pipeline per
    tick), until stopped."""

    def __init__(self, redis_port, facilities, rate):
        super().__init__(daemon=True)
        import redis
        self.r = redis.Redis(host="127.0.0.1", port=redis_port, socket_timeout=10)
        self.facilities = facilities
        self.rate = rate
        self.seq = [0] * facilities  # last published per facility
        self.stop_ev = threading.Event()
        self.errors = 0
        self.late_ticks = 0
        self.t_start = None
        self.t_end = None

    def run(self):
        interval = 1.0 / self.rate
        self.t_start = time.monotonic()
        tick = 0
        while not self.stop_ev.is_set():
            target = self.t_start + tick * interval
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -interval:
                self.late_ticks += 1
            ts = str(time.time_ns() // 1000).encode()
            pipe = self.r.pipeline(transaction=False)
            for f in range(self.facilities):
                pipe.publish(f"broadcast:soak-{f}", b"%d %d %s " % (f, self.seq[f] + 1, ts) + PAD)
            try:
                pipe.execute()
                for f in range(self.facilities):
                    self.seq[f] += 1
            except Exception as e:  # noqa: BLE001
                self.errors += 1
                log(f"publish failed: {e!r}")
                time.sleep(0.1)
            tick += 1
        self.t_end = time.monotonic()

    def stop(self):
        self.stop_ev.set()
        self.join(10)


def proc_status(pid):
    """(RSS in KiB, open fds, threads) of a process."""
    rss = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds, threads


def client_socket_inodes(port):
    """Inodes of the TCP sockets on local port `port` that are not listening (the gateway's client sockets)."""
    inodes = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] != "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(parts[9])
        except OSError:
            pass
    return inodes


def fd_breakdown(pid, port):
    """(open fds, fds that are client sockets) of the gateway. /proc/net/tcp is read before and after listing the
    fds, so that a socket that was opened or closed meanwhile is still recognised."""
    before = client_socket_inodes(port)
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    inodes = before | client_socket_inodes(port)
    clients = sum(1 for ln in links if ln.startswith("socket:[") and ln[8:-1] in inodes)
    return len(links), clients


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of a process (its threads included), in seconds; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_busy_seconds():
    """CPU seconds spent busy by the whole machine (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / CLK_TCK


def histogram_quantile(metrics, name, q):
    """Upper bound of the bucket holding quantile q of a Prometheus histogram in `metrics`."""
    buckets = []
    for k, v in metrics.items():
        if k.startswith(name + "_bucket{le=\""):
            le = k.split('"')[1]
            buckets.append((float("inf") if le == "+Inf" else float(le), v))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    for le, v in buckets:
        if v >= q * total:
            return le
    return None


def fmt_s(x):
    if x is None:
        return "-"
    if x == float("inf"):
        return "> top bucket"
    return f"<= {x * 1000:g} ms"


def http_get(port, path, timeout=5):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.status, r.read().decode()


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def machine_info():
    model, cores = "?", os.cpu_count()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 1048576:.0f} GiB"
    except OSError:
        pass
    return f"{model}, {cores} cores, {mem} RAM, Linux {platform.release()}, Python {platform.python_version()}"


def stop_proc(p, sig=signal.SIGTERM, timeout=10):
    if p.poll() is None:
        try:
            p.send_signal(sig)
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        except ProcessLookupError:
            pass


def orchestrate(a):
    OUT.mkdir(parents=True, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(NOFILE_WANTED, hard) if hard != resource.RLIM_INFINITY else NOFILE_WANTED
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    per_worker_fds = (a.clients + a.stable) // a.workers + 200
    if nofile < per_worker_fds or nofile < a.clients + a.stable + 200:
        log(f"RLIMIT_NOFILE is {nofile}: too low for {a.clients + a.stable} clients (raise ulimit -n)")
        return 2
    bin_path = Path(a.bin).resolve()
    if not os.access(bin_path, os.X_OK):
        log(f"{bin_path} is missing: run scripts/build (or scripts/soak, which does)")
        return 2

    duration = a.minutes * 60.0
    warmup = a.warmup if a.warmup is not None else (60.0 if duration >= 300 else 25.0)
    warmup = min(warmup, duration * 0.5)
    hard_deadline = time.monotonic() + duration + 240  # everything is bounded

    redis_port, ws_port, admin_port = free_port(), free_port(), free_port()
    redis_log = open(OUT / "redis.log", "wb")
    gw_log_path = OUT / "gateway.log"
    gw_log = open(gw_log_path, "wb")
    redis_p = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--daemonize", "no", "--maxclients", "1000"],
                               stdin=subprocess.DEVNULL, stdout=redis_log, stderr=subprocess.STDOUT, cwd=OUT)
    started.append(redis_p)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", redis_port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or redis_p.poll() is not None:
            log("redis-server did not start (build/soak/redis.log)")
            return 2
        time.sleep(0.05)

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WSGATE_", "WS4REDIS_")) and k not in ("REDIS_URL", "WEBSOCKET_URL")}
    env.update({"WSGATE_LISTEN": f"127.0.0.1:{ws_port}", "WSGATE_ADMIN_LISTEN": f"127.0.0.1:{admin_port}",
                "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "WSGATE_WORKERS": "2",
                "WS4REDIS_HEARTBEAT": "--heartbeat--", "WSGATE_ANONYMOUS_PUBLISH": "1",
                "WSGATE_LOG_LEVEL": "info"})
    gw = subprocess.Popen([str(bin_path)], env=env, stdin=subprocess.DEVNULL, stdout=gw_log,
                          stderr=subprocess.STDOUT)
    started.append(gw)
    deadline = time.monotonic() + 15
    while True:
        try:
            if http_get(admin_port, "/readyz", 1)[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline or gw.poll() is not None:
            log("the gateway did not become ready (build/soak/gateway.log)")
            return 2
        time.sleep(0.05)
    time.sleep(0.5)
    idle0 = proc_status(gw.pid)
    log(f"redis :{redis_port}, gateway pid {gw.pid} ws :{ws_port} admin :{admin_port}; idle RSS {idle0[0]} KiB, "
        f"{idle0[1]} fds, {idle0[2]} threads")
    log(f"{a.minutes} min: {a.clients} churning + {a.stable} stable clients in {a.workers} processes, "
        f"{a.facilities} facilities x {a.rate} msg/s, lifetime {a.life_min}-{a.life_max} s, warm-up {warmup:.0f} s")

    pub = Publisher(redis_port, a.facilities, a.rate)
    pub.start()
    workers = []
    per_c = [a.clients // a.workers + (1 if i < a.clients % a.workers else 0) for i in range(a.workers)]
    per_s = [a.stable // a.workers + (1 if i < a.stable % a.workers else 0) for i in range(a.workers)]
    for i in range(a.workers):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--port", str(ws_port),
               "--clients", str(per_c[i]), "--stable", str(per_s[i]), "--facilities", str(a.facilities),
               "--life-min", str(a.life_min), "--life-max", str(a.life_max),
               "--connect-rate", str(a.connect_rate / a.workers), "--seed", str(a.seed * 100 + i)]
        wp = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=open(OUT / f"worker{i}.log", "wb"))
        started.append(wp)
        workers.append(wp)

    samples = []
    problems = []
    cpu0 = cpu1 = None
    t0 = time.monotonic()
    baseline = None
    last_total = 0
    next_sample = t0
    csv_f = open(OUT / "samples.csv", "w")
    csv_f.write("t_s,rss_kb,fds,client_fds,other_fds,threads,conns_open,handshaking,closing,connections_total,"
                "deliveries_total,published\n")

    def sample():
        nonlocal last_total
        # Client sockets are told from the gateway's own descriptors (listeners, Redis, epoll, eventfds, log)
        # through /proc/net/tcp: the /metrics gauges lag behind the sockets by up to a sweep.
        rss, _, thr = proc_status(gw.pid)
        fds, client_fds = fd_breakdown(gw.pid, ws_port)
        m = parse_metrics(http_get(admin_port, "/metrics")[1])
        conns = (m.get("wsgate_connections_open", 0) + m.get("wsgate_connections_handshaking", 0)
                 + m.get("wsgate_connections_closing", 0))
        total = m.get("wsgate_connections_total", 0)
        if total < last_total:
            problems.append(f"wsgate_connections_total went down ({last_total:.0f} -> {total:.0f}): restart?")
        last_total = total
        s = {"t": time.monotonic() - t0, "rss": rss, "fds": fds, "threads": thr,
             "open": m.get("wsgate_connections_open", 0), "hs": m.get("wsgate_connections_handshaking", 0),
             "closing": m.get("wsgate_connections_closing", 0), "conns": conns, "client_fds": client_fds,
             "overhead": fds - client_fds,
             "total": total, "deliveries": m.get("wsgate_deliveries_total", 0), "published": sum(pub.seq),
             "metrics": m}
        samples.append(s)
        csv_f.write(f"{s['t']:.1f},{rss},{fds},{client_fds},{s['overhead']},{thr},{s['open']:.0f},{s['hs']:.0f},"
                    f"{s['closing']:.0f},{total:.0f},{s['deliveries']:.0f},{s['published']}\n")
        csv_f.flush()
        return s

    try:
        while True:
            now = time.monotonic()
            if gw.poll() is not None:
                problems.append(f"the gateway exited during the run (status {gw.returncode})")
                break
            for i, wp in enumerate(workers):
                if wp.poll() is not None:
                    raise RuntimeError(f"client worker {i} exited early ({wp.returncode}); "
                                       f"see build/soak/worker{i}.log")
            if now >= next_sample:
                s = sample()
                next_sample += a.sample_every
                if baseline is None and s["t"] >= warmup:
                    baseline = s
                    cpu0 = {"gateway": cpu_seconds(gw.pid), "redis": cpu_seconds(redis_p.pid),
                            "clients": sum(cpu_seconds(wp.pid) for wp in workers), "machine": machine_busy_seconds(),
                            "t": time.monotonic()}
                    log(f"baseline at {s['t']:.0f} s: {s['open']:.0f} open, RSS {s['rss']} KiB, {s['fds']} fds "
                        f"({s['overhead']} besides client sockets)")
                elif int(s["t"]) % 60 < a.sample_every:
                    log(f"t={s['t']:.0f}s open={s['open']:.0f} hs={s['hs']:.0f} closing={s['closing']:.0f} "
                        f"RSS={s['rss']} KiB fds={s['fds']} (other {s['overhead']}) total={s['total']:.0f} "
                        f"published={s['published']}")
            if now - t0 >= duration:
                break
            time.sleep(0.2)
        loaded = sample()  # last sample with the full population
        cpu1 = {"gateway": cpu_seconds(gw.pid), "redis": cpu_seconds(redis_p.pid),
                "clients": sum(cpu_seconds(wp.pid) for wp in workers), "machine": machine_busy_seconds(),
                "t": time.monotonic()}
        # Stop: publisher first, then the final numbers go to the workers, which check the tail and close all.
        pub.stop()
        final = {f: pub.seq[f] for f in range(a.facilities)}
        time.sleep(1.0)
        results = []
        for wp in workers:
            try:
                wp.stdin.write((json.dumps({"final": final}) + "\n").encode())
                wp.stdin.flush()
            except BrokenPipeError:
                pass
        for i, wp in enumerate(workers):
            try:
                out, _ = wp.communicate(timeout=max(5, min(90, hard_deadline - time.monotonic())))
                results.append(json.loads(out.decode().strip().splitlines()[-1]))
            except (subprocess.TimeoutExpired, ValueError, IndexError) as e:
                problems.append(f"client worker {i} gave no result ({e!r}); see build/soak/worker{i}.log")
        # All clients gone: the gateway must be back to its idle fd count.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            s = sample()
            if s["conns"] == 0 and s["client_fds"] == 0:
                break
            time.sleep(0.25)
        time.sleep(1.0)
        end = sample()
        status, metrics_text = http_get(admin_port, "/metrics")
        (OUT / "metrics.txt").write_text(metrics_text)
        gw_alive = gw.poll() is None
        gw.send_signal(signal.SIGTERM)
        try:
            gw_status = gw.wait(30)
        except subprocess.TimeoutExpired:
            gw.kill()
            gw_status = "timeout (killed)"
    finally:
        csv_f.close()
        for p in reversed(started):
            stop_proc(p)
        redis_log.close()
        gw_log.close()

    # ------------------------------------------------------------------------------------ verdict and summary
    tot = collections.Counter()
    lat = collections.Counter()
    codes = collections.Counter()
    worker_problems = []
    peak = 0
    for r in results:
        tot.update(r["counters"])
        lat.update({int(k): v for k, v in r["lat_hist"].items()})
        codes.update(r["close_codes"])
        worker_problems += r["problems"]
        peak += r["peak"]
    gw_text = gw_log_path.read_text(errors="replace")
    starts = gw_text.count("event=start ")
    warn_lines = [ln for ln in gw_text.splitlines() if "lvl=warn" in ln or "lvl=error" in ln]
    run_s = (pub.t_end or time.monotonic()) - (pub.t_start or t0)
    loaded_samples = [s for s in samples if baseline is not None and baseline["t"] <= s["t"] <= loaded["t"]]
    over = [s["overhead"] for s in loaded_samples]
    fd_span = (min(over), max(over)) if over else (0, 0)
    # RSS trend under load: least-squares slope against connections accepted so far (KiB per 1,000).
    slope = 0.0
    if len(loaded_samples) >= 3:
        xs = [s["total"] / 1000 for s in loaded_samples]
        ys = [s["rss"] for s in loaded_samples]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        den = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0
    rss_bound = baseline["rss"] * (1 + RSS_SLACK_RATIO) + RSS_SLACK_FIXED_KB if baseline else 0
    total_lat = sum(lat.values())

    def pct(p):
        acc = 0
        for b in sorted(lat):
            acc += lat[b]
            if acc >= p * total_lat:
                return "<1 ms" if b == 0 else f"<{1 << b} ms"
        return "-"

    cpu_line = "-"
    churn_line = ""
    if cpu0 and cpu1 and cpu1["t"] > cpu0["t"]:
        span = cpu1["t"] - cpu0["t"]
        pc = {k: 100 * (cpu1[k] - cpu0[k]) / span for k in ("gateway", "redis", "clients", "machine")}
        others = pc["machine"] - pc["gateway"] - pc["redis"] - pc["clients"]
        dlv = (loaded["deliveries"] - baseline["deliveries"]) / span
        churn_line = (f"; after the warm-up {(loaded['total'] - baseline['total']) / (span / 60):,.0f}/min "
                      f"(gateway connections_total)")
        cpu_line = (f"gateway {pc['gateway']:.0f}%, redis {pc['redis']:.0f}%, client processes {pc['clients']:.0f}%, "
                    f"rest of the machine {max(others, 0):.0f}% (of one core; the box has {os.cpu_count()}), "
                    f"{dlv:,.0f} deliveries/s -> gateway {1e6 * (cpu1['gateway'] - cpu0['gateway']) / max(1, dlv * span):.1f} "
                    f"CPU us per delivery")
    gm = end["metrics"]
    gw_lat = (f"p50 {fmt_s(histogram_quantile(gm, 'wsgate_delivery_latency_seconds', 0.5))}, "
              f"p99 {fmt_s(histogram_quantile(gm, 'wsgate_delivery_latency_seconds', 0.99))}, "
              f"p99.9 {fmt_s(histogram_quantile(gm, 'wsgate_delivery_latency_seconds', 0.999))}")
    checks = []

    def check(ok, text):
        checks.append(("PASS" if ok else "FAIL", text))

    check(len(results) == a.workers, f"all {a.workers} client workers reported")
    check(tot["delivered"] == tot["expected"] and tot["missing"] == 0,
          f"delivered == expected: {tot['delivered']:,} of {tot['expected']:,} (missing {tot['missing']:,})")
    check(tot["disorder"] == 0, f"no duplicate or out-of-order message ({tot['disorder']})")
    check(tot["unexpected_drops"] == 0 and tot["handshake_failures"] == 0 and tot["connect_errors"] == 0
          and tot["close_timeouts"] == 0,
          f"no dropped connection ({tot['unexpected_drops']}), failed upgrade ({tot['handshake_failures']}), "
          f"connect error ({tot['connect_errors']}), close timeout ({tot['close_timeouts']})")
    server_codes = {k: v for k, v in codes.items() if k != "1000"}
    check(not server_codes and not tot["problems"],
          f"no server-initiated close, no client-side anomaly (codes {dict(codes)}, anomalies {tot['problems']})")
    check(baseline is not None, "baseline taken after the warm-up")
    if baseline is not None:
        check(fd_span[0] >= baseline["overhead"] - FD_SLACK and fd_span[1] <= baseline["overhead"] + FD_SLACK,
              f"fds besides client sockets stayed at the baseline's {baseline['overhead']} +-{FD_SLACK} under "
              f"load (range {fd_span[0]}..{fd_span[1]} over {len(over)} samples)")
        check(loaded["rss"] <= rss_bound,
              f"RSS under full load {loaded['rss']:,} KiB <= bound {rss_bound:,.0f} KiB (baseline "
              f"{baseline['rss']:,} KiB + {RSS_SLACK_RATIO:.0%} + {RSS_SLACK_FIXED_KB // 1024} MiB)")
    check(end["conns"] == 0 and end["client_fds"] == 0,
          f"all connections gone at the end ({end['conns']:.0f} in /metrics, {end['client_fds']} client sockets)")
    check(abs(end["fds"] - idle0[1]) <= FD_SLACK,
          f"fds back to the idle count: {end['fds']} vs {idle0[1]} before the first client (+-{FD_SLACK})")
    check(gw_alive and starts == 1 and not any("restart" in p for p in problems),
          f"no gateway restart (same pid {gw.pid} all along, {starts} start line in the log)")
    check(status == 200, "/metrics snapshot saved (build/soak/metrics.txt)")
    check(gw_status == 0, f"gateway stopped by SIGTERM with exit status {gw_status}")
    check(pub.errors == 0, f"publisher: no Redis error ({pub.errors}), {pub.late_ticks} late ticks")
    for p in problems:
        check(False, p)
    ok = all(c[0] == "PASS" for c in checks)

    m = end["metrics"]
    conn_total = tot["connects"]
    lines = [
        f"wsgate soak: {'PASS' if ok else 'FAIL'}  ({time.strftime('%Y-%m-%d %H:%M:%S %Z')})",
        f"machine: {machine_info()}",
        f"gateway: {bin_path} (WSGATE_WORKERS=2, heartbeat 4 s, ping 30 s, idle timeout 60 s), "
        f"redis-server {subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.split()[2][2:]}",
        f"load: {a.minutes} min ({run_s:.0f} s published), {a.clients} churning + {a.stable} stable clients in "
        f"{a.workers} processes, {a.facilities} facilities x {a.rate} msg/s, client lifetime "
        f"{a.life_min}-{a.life_max} s, warm-up {warmup:.0f} s",
        "",
        f"connects:      {conn_total:,} ({conn_total / (run_s / 60):,.0f}/min over the run{churn_line}), peak "
        f"{peak:,} concurrent; "
        f"left by clean close {tot['leave_clean']:,}, reset {tot['leave_rst']:,}, FIN {tot['leave_fin']:,}, "
        f"at the end {tot['leave_end']:,}; upgrades aborted on purpose {tot['upgrade_aborts']:,}",
        f"published:     {sum(pub.seq):,} messages ({sum(pub.seq) / run_s:,.0f}/s)",
        f"deliveries:    {tot['delivered']:,} delivered / {tot['expected']:,} expected, missing {tot['missing']:,}, "
        f"duplicate/out of order {tot['disorder']:,}; {tot['clients_done']:,} clients accounted "
        f"({tot['clients_without_messages']:,} left before their first message); stable alive at the end "
        f"{tot['stable_alive_at_end']:,} of {a.stable}",
        f"end-to-end:    p50 {pct(0.5)}, p99 {pct(0.99)}, p99.9 {pct(0.999)}, max bucket "
        f"{'<%d ms' % (1 << max(lat)) if lat else '-'} (publish to client, loaded 2-core box)",
        f"gateway lat.:  {gw_lat} (its histogram: from reading a message from Redis to writing it to a socket)",
        f"CPU under load: {cpu_line}",
        f"other frames:  {tot['heartbeats']:,} heartbeats (answered), {tot['pings']:,} pings (answered)",
        f"server closes: {dict(codes)}",
        "",
        f"gateway RSS:   idle {idle0[0]:,} KiB; baseline {baseline['rss'] if baseline else 0:,} KiB at "
        f"{baseline['t'] if baseline else 0:.0f} s with {baseline['open'] if baseline else 0:,.0f} open; "
        f"end of load {loaded['rss']:,} KiB with {loaded['open']:,.0f} open "
        f"({(loaded['rss'] - (baseline['rss'] if baseline else 0)):+,} KiB; trend {slope:+.1f} KiB per 1,000 "
        f"connects); after all left {end['rss']:,} KiB",
        f"gateway fds:   idle {idle0[1]}; baseline {baseline['fds'] if baseline else 0} "
        f"({baseline['overhead'] if baseline else 0} besides client sockets); under load besides client sockets "
        f"{fd_span[0]}..{fd_span[1]}; after all left {end['fds']}",
        f"gateway:       threads {end['threads']}, connections_total {m.get('wsgate_connections_total', 0):,.0f}, "
        f"deliveries_total {m.get('wsgate_deliveries_total', 0):,.0f}, slow_consumer_closes "
        f"{m.get('wsgate_slow_consumer_closes_total', 0):.0f}, stale_closes {m.get('wsgate_stale_closes_total', 0):.0f}, "
        f"redis_reconnects {m.get('wsgate_redis_reconnects_total', 0):.0f}, "
        f"warn/error log lines {len(warn_lines)}, exit status {gw_status}",
        "",
    ]
    lines += [f"{c[0]}  {c[1]}" for c in checks]
    if worker_problems:
        lines += ["", "first client-side anomalies:"] + [f"  {p}" for p in worker_problems[:20]]
    if warn_lines:
        lines += ["", "gateway warn/error lines (first 10):"] + [f"  {ln}" for ln in warn_lines[:10]]
    lines += ["", "files: build/soak/summary.txt, samples.csv, metrics.txt, gateway.log, redis.log, worker*.log"]
    text = "\n".join(lines) + "\n"
    (OUT / "summary.txt").write_text(text)
    print(text, end="", flush=True)
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description="wsgate soak test")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--clients", type=int, default=2700, help="churning clients held at once")
    ap.add_argument("--stable", type=int, default=300, help="clients that stay for the whole run")
    ap.add_argument("--facilities", type=int, default=4)
    ap.add_argument("--rate", type=float, default=10, help="messages per second per facility")
    ap.add_argument("--workers", type=int, default=2, help="client processes")
    ap.add_argument("--life-min", type=float, default=5)
    ap.add_argument("--life-max", type=float, default=60)
    ap.add_argument("--connect-rate", type=float, default=600, help="most new connections a second (all workers)")
    ap.add_argument("--warmup", type=float, default=None)
    ap.add_argument("--sample-every", type=float, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bin", default=str(ROOT / "build" / "release" / "wsgate"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker_main(a)
        return 0
    if a.clients + a.stable > 15000 or a.minutes > 120 or a.rate > 1000:
        ap.error("bounded: at most 15,000 clients, 120 minutes, 1,000 msg/s per facility")

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        return orchestrate(a)
    except KeyboardInterrupt:
        log("interrupted")
        return 1
    except Exception as e:  # noqa: BLE001
        log(f"error: {e!r}")
        return 2
    finally:
        for p in reversed(started):
            stop_proc(p, timeout=5)


if __name__ == "__main__":
    sys.exit(main())
