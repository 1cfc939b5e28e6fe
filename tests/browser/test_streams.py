#!/usr/bin/python3
"""Browser test of stream channels: static/wsgate.js in headless Chromium resumes across five cuts, losing nothing.

    /usr/bin/python3 tests/browser/test_streams.py   (Debian: python3-selenium python3-redis chromium
                                                      chromium-driver, installed by tests/browser/deps)

Starts a private redis-server and the gateway (WSGATE_BIN, default build/test/wsgate) with WSGATE_STREAMS making
broadcast:feed* stream channels, and opens a page (served on loopback by this script) that loads /wsgate.js
from the gateway and subscribes to broadcast:feed with the wsgate.v1 subprotocol. A publisher thread adds
10,000 entries with XADD at 2,000/s while the page is cut off five times: its socket is closed from the page
three times (the page passes wsgate.js a WebSocket constructor that keeps a handle on the live socket) and the
gateway is stopped with SIGTERM and started again on the same port twice. wsgate.js reconnects by itself each
time and resumes with since.broadcast:feed=<last id>. Then it checks that the page received each entry exactly
once and in order (payloads 0..9999, ids those of XRANGE), that every cut happened (closes seen, reconnects,
resume URLs), and that no gap notice came.
The gateway's log goes to .test-artifacts/browser/wsgate-streams.log, what the page saw (states, URLs, gaps,
counts) to .test-artifacts/browser/streams.json.
Ends with "N passed, N failed"; exit status 1 when a check failed. Every wait has a deadline.
"""
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import test_demo  # its check() counts this script's checks too
from test_demo import (GATEWAY_BIN, ROOT, Abort, Redis, check, free_port, port_open,
                       require, require_setup, start_browser, stop_browser, stop_pid, wait_for)

ARTIFACTS = ROOT / ".test-artifacts" / "browser"
CHANNEL = "broadcast:feed"
TOTAL = 10000
RATE = 2000  # entries per second
TICK = 0.005  # the publisher sends RATE * TICK entries per tick, in one pipeline
CUTS = ("client", "gateway", "client", "gateway", "client")
CUT_SPACING = 0.8  # s: cut n comes n * CUT_SPACING after publishing began, or later
GATEWAY_DOWN = 0.6  # s between the gateway's exit and its next start
RECONNECT_MIN_MS = 100
RECONNECT_MAX_MS = 400

class Gateway:
    def __init__(self, port, redis_port, log):
        self.port = port
        self.env = dict(os.environ)
        self.env.update({
            "WSGATE_LISTEN": f"127.0.0.1:{port}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "WSGATE_ADMIN_LISTEN": f"127.0.0.1:{free_port()}",
            "WSGATE_STREAMS": "broadcast:feed*",
            # A gateway restart keeps the page away for about a second, some 2,000 entries at 2,000/s, and the
            # resume must replay all of them: past the default limit (1000) the page would get a gap notice
            # and miss entries, as documented, but this test is about resuming without loss.
            "WSGATE_STREAM_REPLAY_MAX": "100000",
            "WSGATE_SHUTDOWN_TIMEOUT": "3s",
            "WS4REDIS_PREFIX": "",
        })
        self.log = log
        self.proc = None
        self.exits = []

    def start(self):
        self.log.write(f"---- start {time.strftime('%H:%M:%S')}\n")
        self.log.flush()
        self.proc = subprocess.Popen([str(GATEWAY_BIN)], env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        return wait_for(lambda: self.proc.poll() is None and port_open(self.port), 15)

    def stop(self):
        status = stop_pid(self.proc, signal.SIGTERM, timeout=15)
        self.exits.append(status)
        return status


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>wsgate stream resume</title>
<script src="http://127.0.0.1:%(gw)d/wsgate.js"></script>
</head><body><p id="state">loading</p>
<script>
'use strict';
// What the test reads back: every delivered message, the client's states, the URLs it connected to.
var T = { got: [], gaps: [], states: [], urls: [], frames: 0, socket: null };
// wsgate.js is handed this constructor, so the page holds the live socket and can cut it.
function TrackedWebSocket(url, protocols) {
  var s = protocols === undefined ? new WebSocket(url) : new WebSocket(url, protocols);
  s.addEventListener('message', function (e) {
    if (e.data.indexOf('"gap":true') < 0) T.frames++;   // data frames (not gap notices) as they came
  });
  T.socket = s;
  T.urls.push(url);
  return s;
}
T.cut = function () {
  var s = T.socket;
  if (!s || s.readyState !== 1) return false;
  s.close(4001, 'cut by the test');
  return true;
};
T.connected = function () {
  return T.states.filter(function (s) { return s[0] === 'connected'; }).length;
};
T.client = WSGate({
  uri: 'ws://127.0.0.1:%(gw)d/ws/feed?subscribe-broadcast',
  since: { 'broadcast:feed': '0-0' },   // the whole stream, whenever the first connection opens
  reconnect_min: %(rmin)d,
  reconnect_max: %(rmax)d,
  WebSocket: TrackedWebSocket,
  receive_message: function (data, meta) { T.got.push([meta.channel, meta.id, data]); },
  gap: function (info) { T.gaps.push(info); },
  onstate: function (state, info) {
    T.states.push([state, Date.now(), info && info.code !== undefined ? info.code : null]);
    document.getElementById('state').textContent = state;
  }
});
</script></body></html>
"""


def serve_page(html):
    """Serves html at / on a loopback port from a thread; returns the server (shutdown() stops it)."""
    body = html.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Publisher(threading.Thread):
    """Adds TOTAL entries (payloads "0".."TOTAL-1") to CHANNEL at RATE per second, on a schedule, not faster."""

    def __init__(self, redis_port):
        super().__init__(daemon=True)
        import redis
        self.r = redis.Redis(host="127.0.0.1", port=redis_port, socket_timeout=5)
        self.sent = 0
        self.error = None
        self.started = self.finished = None
        self.stop_now = threading.Event()

    def run(self):
        per_tick = int(RATE * TICK)
        self.started = time.monotonic()
        try:
            while self.sent < TOTAL and not self.stop_now.is_set():
                due = self.started + self.sent / RATE
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pipe = self.r.pipeline(transaction=False)
                batch = range(self.sent, min(self.sent + per_tick, TOTAL))
                for i in batch:
                    pipe.xadd(CHANNEL, {"payload": str(i)}, maxlen=100000, approximate=True)
                pipe.execute()
                self.sent += len(batch)
        except Exception as exc:  # reported by the test, not lost in a thread
            self.error = f"{type(exc).__name__}: {exc}"
        self.finished = time.monotonic()

    @property
    def is_publishing(self):
        return self.is_alive() and self.sent < TOTAL


def page(driver, expr):
    return driver.execute_script("return " + expr + ";")


def run(tmp):
    redis = gateway = driver = service = pages = publisher = None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    report = ARTIFACTS / "streams.json"
    if report.exists():
        report.unlink()
    log_path = ARTIFACTS / "wsgate-streams.log"
    log = open(log_path, "w")
    try:
        require_setup(["selenium", "redis"])

        redis = Redis(tmp)
        require("redis-server starts", wait_for(lambda: redis.cli("PING") == "PONG", 10))
        port = free_port()
        gateway = Gateway(port, redis.port, log)
        require("gateway starts and listens", gateway.start(), f"see {log_path}")

        pages = serve_page(PAGE % {"gw": port, "rmin": RECONNECT_MIN_MS, "rmax": RECONNECT_MAX_MS})
        driver, service = start_browser(tmp / "profile")
        driver.get(f"http://127.0.0.1:{pages.server_address[1]}/")
        require("page loads wsgate.js from the gateway and connects",
                wait_for(lambda: page(driver, "T.connected()") >= 1, 15),
                f"states {page(driver, 'T.states')}")

        publisher = Publisher(redis.port)
        publisher.start()
        cut_log = []  # (kind, s since publishing began, entries published then, whether publishing, outage s)
        for n, kind in enumerate(CUTS, 1):
            # Cuts spread over the publishing time, each once the page is connected again and has received
            # some more, so that every one interrupts a flow.
            before = page(driver, "T.got.length")
            want = min(before + 200, TOTAL)
            require(f"cut {n}: page connected and receiving before it",
                    wait_for(lambda: page(driver, "T.client.state === 'connected' && T.got.length") >= want, 20),
                    f"state {page(driver, 'T.client.state')}, {page(driver, 'T.got.length')} received")
            time.sleep(max(0.0, publisher.started + n * CUT_SPACING - time.monotonic()))
            connections = page(driver, "T.connected()")
            cut_at = time.monotonic()
            cut_log.append([kind, round(cut_at - publisher.started, 2), publisher.sent, publisher.is_publishing])
            if kind == "client":
                require(f"cut {n}: the page closes its socket", page(driver, "T.cut()"))
            else:
                status = gateway.stop()
                check(f"cut {n}: gateway exits 0 on SIGTERM", status == 0, f"exit status {status}")
                # Down long enough that more than 1,000 entries (the default replay limit) come meanwhile; the
                # page keeps trying.
                time.sleep(GATEWAY_DOWN)
                require(f"cut {n}: gateway starts again on the same port", gateway.start(), f"see {log_path}")
            require(f"cut {n} ({kind}): page reconnects by itself",
                    wait_for(lambda: page(driver, "T.connected()") > connections, 20),
                    f"states {page(driver, 'T.states')[-4:]}")
            cut_log[-1].append(round(time.monotonic() - cut_at, 2))

        publisher.join(timeout=30)
        require("publisher added all entries", not publisher.is_alive() and publisher.sent == TOTAL and
                not publisher.error, f"{publisher.sent} sent, error {publisher.error}")
        publish_seconds = publisher.finished - publisher.started
        check(f"published at about {RATE}/s", publish_seconds < TOTAL / RATE * 1.5,
              f"{TOTAL} entries took {publish_seconds:.2f} s")
        wait_for(lambda: page(driver, "T.got.length") >= TOTAL, 20, interval=0.1)
        delivered_at = time.monotonic() - publisher.started
        time.sleep(0.5)  # anything extra (a duplicate) would arrive now

        got = page(driver, "T.got")
        gaps = page(driver, "T.gaps")
        states = page(driver, "T.states")
        urls = page(driver, "T.urls")
        frames = page(driver, "T.frames")
        entries = publisher.r.xrange(CHANNEL)
        ids = [e[0].decode() for e in entries]
        report.write_text(json.dumps({"received": len(got), "frames": frames, "gaps": gaps, "states": states,
                                      "urls": urls, "cuts": cut_log, "first": got[:3], "last": got[-3:]},
                                     indent=1))

        payloads = [m[2] for m in got]
        check(f"page received exactly {TOTAL} messages", len(got) == TOTAL, f"{len(got)} received")
        check("payloads are 0..9999 in order, none twice, none missing",
              payloads == [str(i) for i in range(TOTAL)], first_difference(payloads))
        check("every message came on broadcast:feed", all(m[0] == CHANNEL for m in got))
        check(f"ids are the stream's ({len(ids)} entries), in order", [m[1] for m in got] == ids,
              first_difference([m[1] for m in got], ids))
        check("no gap notice", not gaps, json.dumps(gaps))
        check("the gateway sent no entry twice (frames received = messages delivered)", frames == len(got),
              f"{frames} frames, {len(got)} messages: wsgate.js dropped {frames - len(got)} as already delivered")

        closes = [s for s in states if s[0] == "disconnected"]
        connects = [s for s in states if s[0] == "connected"]
        check("page saw each cut: at least 3 closes with its code 4001 and 5 in all",
              sum(1 for s in closes if s[2] == 4001) >= 3 and len(closes) >= 5,
              f"close codes {[s[2] for s in closes]}")
        check("page reconnected after each cut (6 or more connections)", len(connects) >= 1 + len(CUTS),
              f"{len(connects)} connections")
        resumed = [u for u in urls[1:] if "since.broadcast%3Afeed=" in u]
        check("every reconnect resumed with since.broadcast:feed=<last id>", len(resumed) == len(urls) - 1,
              f"{urls}")
        check(f"gateway exited 0 on every SIGTERM ({len(gateway.exits)})", all(s == 0 for s in gateway.exits),
              f"{gateway.exits}")
        during = sum(1 for c in cut_log if c[3])
        print(f"# {TOTAL} entries published in {publish_seconds:.2f} s; all delivered {delivered_at:.2f} s after"
              f" publishing began; {frames} frames for {len(got)} messages ({frames - len(got)} duplicates"
              f" dropped by wsgate.js); {len(connects)} connections, {len(urls)} attempts;"
              f" {during} of {len(CUTS)} cuts while publishing:"
              f" {', '.join(f'{c[0]} at {c[1]} s ({c[2]} sent, back in {c[4]} s)' for c in cut_log)}", flush=True)

        errors = [e for e in driver.get_log("browser")
                  if e.get("level") == "SEVERE" and e.get("source") == "javascript"]
        check("no JavaScript errors on the page", not errors, "; ".join(e.get("message", "") for e in errors))
    except Abort:
        print("stopping: the remaining steps depend on the failed one", flush=True)
    except Exception as exc:  # an unexpected error is a failed check, not a crash without a summary
        check("test ran without unexpected errors", False, f"{type(exc).__name__}: {exc}")
    finally:
        if publisher is not None:
            publisher.stop_now.set()
            publisher.join(timeout=10)
        if driver is not None and not report.exists():
            try:
                report.write_text(json.dumps({"states": page(driver, "T.states"), "urls": page(driver, "T.urls"),
                                              "received": page(driver, "T.got.length"),
                                              "gaps": page(driver, "T.gaps")}, indent=1))
            except Exception:
                pass
        stop_browser(driver, service)
        if pages is not None:
            pages.shutdown()
        if gateway is not None:
            gateway.stop()
        if redis is not None:
            stop_pid(redis.proc, signal.SIGTERM, timeout=10)
        log.close()
    sanitizer = [line for line in log_path.read_text(errors="replace").splitlines()
                 if "Sanitizer" in line or "runtime error:" in line]
    check("no sanitizer reports in the gateway's log", not sanitizer, "; ".join(sanitizer[:3]))


def first_difference(a, b=None):
    b = [str(i) for i in range(TOTAL)] if b is None else b
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"at {i}: {x!r}, expected {y!r} (context {a[max(0, i - 2):i + 3]})"
    return f"lengths {len(a)} and {len(b)}" if len(a) != len(b) else ""


def main():
    tmp = Path(tempfile.mkdtemp(prefix="wsgate-browser-streams-"))
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{test_demo.passed} passed, {test_demo.failed} failed", flush=True)
    return 1 if test_demo.failed or not test_demo.passed else 0


if __name__ == "__main__":
    sys.exit(main())
