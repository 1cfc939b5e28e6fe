"""wsgate behind a real nginx configured with the blocks of docs/migrating-from-ws4redis.md, read from the guide
itself so that the guide and this test cannot drift; and every wsgate setting the guide names exists.

nginx (Debian package nginx, installed by `scripts/deps test`) runs in the foreground as a single process with a
configuration, pid file and logs in this test's artifact directory, on a free loopback port, and is stopped by
its PID when the test ends, failed or not."""

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import textwrap
import time

import harness as h
from test_logs import parse_logfmt

GUIDE = os.path.join(h.ROOT, "docs", "migrating-from-ws4redis.md")
GUIDE_UPSTREAM = "127.0.0.1:8080"  # the wsgate address in the guide's upstream block, replaced by the test's
HB = "--heartbeat--"


# ---- reading the guide ---------------------------------------------------------------------------------------

def guide_text():
    with open(GUIDE, encoding="utf-8") as f:
        return f.read()


def code_blocks(text):
    """Fenced code blocks as (language, body)."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)


def config_block(text, head):
    """The nginx block that starts with `head` (e.g. "location /ws/"), from its first line to its closing brace."""
    m = re.search(rf"^[ \t]*{re.escape(head)}\s*\{{", text, re.M)
    assert m, f"the guide has no nginx block starting with {head!r}"
    depth, i = 0, m.end() - 1
    while True:
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[m.start():i + 1].strip("\n")
        i += 1
        assert i < len(text), f"the nginx block {head!r} is not closed"


def guide_nginx():
    """The guide's map, upstream and location blocks, verbatim."""
    nginx = "\n".join(body for lang, body in code_blocks(guide_text()) if lang == "nginx")
    return (config_block(nginx, "map $http_upgrade $connection_upgrade"), config_block(nginx, "upstream wsgate"),
            config_block(nginx, "location /ws/"))


def directives(block):
    """{name: [argument strings]} of the simple directives directly inside a block."""
    out = {}
    for line in block.splitlines()[1:-1]:
        line = line.split("#", 1)[0].strip()
        if line.endswith(";"):
            name, _, args = line[:-1].partition(" ")
            out.setdefault(name, []).append(" ".join(args.split()))
    return out


def nginx_seconds(value):
    """An nginx time ("90s", "1m30s", "90" = seconds) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "": 1}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not an nginx time: {value!r}"
    return sum(int(n) * units[u] for n, u in parts)


def help_settings(help_text):
    """{environment variable: flag} of `wsgate --help`."""
    return dict((env, flag) for flag, env in re.findall(r"^\s+--([a-z-]+)\s+([A-Z][A-Z0-9_]+)\s", help_text, re.M))


def help_default_seconds(help_text, env):
    m = re.search(rf"^\s+--\S+\s+{env}\s+default: (\d+)(ms|s|m|h)\s*$", help_text, re.M)
    assert m, f"no duration default for {env} in wsgate --help"
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def wsgate_help(run_gateway):
    status, out = run_gateway(["--help"])
    assert status == 0, out
    return out


# ---- nginx ---------------------------------------------------------------------------------------------------

def nginx_binary():
    path = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if path is None:
        raise h.HarnessError("nginx is not installed (Debian package nginx; `scripts/deps test` installs it)")
    return path


class Nginx:
    """One nginx process in the foreground (no daemon, no master), stopped by PID."""

    def __init__(self, map_block, upstream_block, location_block, gateway_port):
        self.bin = nginx_binary()
        self.port = h.free_port()
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", h.STATE.test_id)
        self.dir = os.path.join(h.ARTIFACTS, f"{safe}.nginx")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.error_log = os.path.join(self.dir, "error.log")
        self.conf = os.path.join(self.dir, "nginx.conf")
        assert upstream_block.count(GUIDE_UPSTREAM) == 1, upstream_block
        upstream = upstream_block.replace(GUIDE_UPSTREAM, f"127.0.0.1:{gateway_port}")
        temp_paths = "\n".join(f"    {kind}_temp_path {self.dir}/{kind};"
                               for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        with open(self.conf, "w") as f:
            f.write(f"""daemon off;
master_process off;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.error_log} info;
events {{
    worker_connections 64;
}}
http {{
    access_log {self.dir}/access.log;
{temp_paths}

{textwrap.indent(map_block, "    ")}

{textwrap.indent(upstream, "    ")}

    server {{
        listen 127.0.0.1:{self.port};
        server_name localhost;

{textwrap.indent(location_block, "        ")}
    }}
}}
""")
        self.proc = None
        h._track(self)

    def start(self, timeout=10.0):
        with open(os.path.join(self.dir, "stderr.log"), "wb") as stderr:
            self.proc = subprocess.Popen([self.bin, "-p", self.dir, "-c", self.conf, "-e", self.error_log],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise h.HarnessError(f"nginx exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise h.HarnessError(f"nginx did not listen on {self.port} within {timeout}s:\n{self.logs()}")
            time.sleep(0.02)

    def logs(self):
        out = []
        for name in ("stderr.log", "error.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out.append(f"--- {name}\n{h.tail(f.read(), 20)}")
            except FileNotFoundError:
                pass
        return "\n".join(out)

    def close(self):
        """SIGTERM (nginx's fast shutdown) to the PID, SIGKILL after 5 s; idempotent."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---- tests ---------------------------------------------------------------------------------------------------

def test_the_guides_location_block_proxies_websockets_and_outlasts_the_ping_interval(run_gateway):
    map_block, upstream, location = guide_nginx()
    d = directives(location)
    assert d.get("proxy_pass") == ["http://wsgate"], d  # no URI part: /ws/ reaches wsgate unchanged
    assert d.get("proxy_http_version") == ["1.1"], d
    headers = dict(v.split(" ", 1) for v in d.get("proxy_set_header", []))
    assert headers.get("Upgrade") == "$http_upgrade", headers
    assert headers.get("Connection") == "$connection_upgrade", headers
    assert headers.get("X-Forwarded-For") == "$proxy_add_x_forwarded_for", headers
    assert headers.get("X-Real-IP") == "$remote_addr", headers
    assert "$connection_upgrade" in map_block.splitlines()[0], map_block
    # nginx closes an upgraded connection that wsgate leaves silent for proxy_read_timeout; wsgate pings every
    # client every WSGATE_PING_INTERVAL, so the timeout must be longer than that interval.
    ping = help_default_seconds(wsgate_help(run_gateway), "WSGATE_PING_INTERVAL")
    assert len(d.get("proxy_read_timeout", [])) == 1, d
    read_timeout = nginx_seconds(d["proxy_read_timeout"][0])
    assert read_timeout > ping, (read_timeout, ping)


def test_every_wsgate_setting_the_guide_names_exists(run_gateway):
    known = help_settings(wsgate_help(run_gateway))
    assert "WSGATE_PING_INTERVAL" in known and "REDIS_URL" in known, known
    text = guide_text()
    named = set(re.findall(r"\bWSGATE_[A-Z0-9_]+\b", text))
    # The settings table: its wsgate column holds setting names only ("none" where there is no equivalent).
    rows = [line for line in text.splitlines() if line.startswith("|")]
    header = next(i for i, line in enumerate(rows) if re.match(r"\|\s*ws4redis .*\|\s*wsgate\s*\|", line))
    table = []
    for line in rows[header + 2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != 3:
            break
        table.append(cells)
    assert len(table) >= 15, table
    for ws4redis, wsgate, notes in table:
        names = re.findall(r"`([^`]+)`", wsgate)
        assert names or wsgate == "none", f"row {ws4redis}: {wsgate!r}"
        named.update(names)
    mapped = " ".join(row[0] for row in table)
    for setting in ("WS4REDIS_CONNECTION['host']", "WS4REDIS_CONNECTION['port']", "WS4REDIS_CONNECTION['db']",
                    "WS4REDIS_CONNECTION['password']", "WS4REDIS_PREFIX", "WS4REDIS_EXPIRE", "WS4REDIS_HEARTBEAT",
                    "WEBSOCKET_URL", "WS4REDIS_PROCESS_REQUEST", "WS4REDIS_ALLOWED_CHANNELS", "WS4REDIS_SUBSCRIBER",
                    "WS4REDIS_EMULATION_INTERVAL", "WSGI_APPLICATION", "http-websockets"):
        assert setting in mapped, f"{setting} is not in the guide's settings table"
    # NAME=value lines of the guide's shell and ini examples (the environment file, drop-ins).
    for lang, body in code_blocks(text):
        if lang in ("sh", "ini", ""):
            for name in re.findall(r"^\s*(?:Environment=)?([A-Z][A-Z0-9_]+)=", body, re.M):
                named.add(name)
    unknown = sorted(n for n in named if n not in known)
    assert not unknown, f"the guide names settings that `wsgate --help` does not know: {unknown}"


def conn_events(gateway, event):
    return [e for e in map(parse_logfmt, gateway.log_text().splitlines()) if e.get("event") == event]


async def recv_data(ws, timeout=h.DEFAULT_TIMEOUT):
    """The next message that is not the heartbeat."""
    deadline = time.monotonic() + timeout
    while True:
        msg = await h.recv(ws, max(0.001, deadline - time.monotonic()))
        if msg != HB:
            return msg


async def test_websockets_through_nginx_configured_as_the_guide_says(start_gateway, redis):
    map_block, upstream, location = guide_nginx()
    gw = start_gateway(WSGATE_TRUSTED_PROXIES="127.0.0.1/32", WS4REDIS_HEARTBEAT=HB,
                       WSGATE_HEARTBEAT_INTERVAL="300ms", WSGATE_PING_INTERVAL="300ms", WSGATE_IDLE_TIMEOUT="1s")
    nginx = Nginx(map_block, upstream, location, gw.port)
    try:
        nginx.start()
        base = f"ws://127.0.0.1:{nginx.port}"

        # A browser on another address than nginx's: Django's RedisPublisher stored a message (PUBLISH + SETEX).
        redis.setex("broadcast:nx", 60, "stored by Django")
        ws = await h.ws_connect(f"{base}/ws/nx?subscribe-broadcast&publish-broadcast", local_addr=("127.0.0.2", 0))
        assert await recv_data(ws) == "stored by Django"
        await h.await_numsub("broadcast:nx", 1)
        h.publish("broadcast:nx", "live from Redis")
        assert await recv_data(ws) == "live from Redis"

        # Publishing through nginx: PUBLISH and SETEX, as ws4redis did; not echoed without ?echo.
        sub = h.Subscriber("broadcast:nx")
        await ws.send("from the browser")
        assert sub.get(5) == b"from the browser"
        h.wait_until(lambda: redis.get("broadcast:nx") == b"from the browser", 5, what="SETEX of the message")

        # The client's PING gets its PONG back through nginx.
        pong = await ws.ping(b"through nginx")
        await asyncio.wait_for(pong, 5)

        # The heartbeat reaches the client, and the client's own heartbeat is dropped, never published.
        assert await h.recv(ws, 5) == HB
        await ws.send(HB)
        sub.expect_none(0.5)

        # The log names the browser (X-Forwarded-For from the trusted nginx), and nginx as via=.
        local_port = ws.transport.get_extra_info("sockname")[1]
        opened = h.wait_until(lambda: [e for e in conn_events(gw, "conn_open") if e.get("peer") == "127.0.0.2"],
                              5, what="conn_open with peer=127.0.0.2")[-1]
        assert re.fullmatch(r"127\.0\.0\.1:\d+", opened.get("via", "")), opened
        assert opened["via"] != f"127.0.0.1:{local_port}", opened

        # An address the browser writes into X-Forwarded-For itself is not believed.
        spoofer = await h.ws_connect(f"{base}/ws/nx?subscribe-broadcast", local_addr=("127.0.0.2", 0),
                                     extra_headers={"X-Forwarded-For": "203.0.113.9"})
        assert await recv_data(spoofer) == "from the browser"  # the stored message
        h.wait_until(lambda: len([e for e in conn_events(gw, "conn_open") if e.get("peer") == "127.0.0.2"]) == 2,
                     5, what="conn_open of the second client with peer=127.0.0.2")
        await spoofer.close()
        h.wait_until(lambda: len([e for e in conn_events(gw, "conn_close") if e.get("peer") == "127.0.0.2"]) == 1,
                     5, what="conn_close of the second client")
        assert not [e for e in conn_events(gw, "conn_open") if e.get("peer") == "203.0.113.9"]

        # wsgate's protocol pings cross nginx and the answers come back: a client that sends nothing but pongs
        # outlives several idle timeouts (1 s).
        raw = h.RawWS("127.0.0.1", nginx.port)
        raw.assert_upgraded(raw.handshake("/ws/raw?subscribe-broadcast"))
        pings = heartbeats = 0
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            fin, opcode, payload = raw.recv_frame(2)
            if opcode == h.OP_PING:
                pings += 1
                raw.send_pong(payload)
            elif opcode == h.OP_TEXT and payload == HB.encode():
                heartbeats += 1
            else:
                raise AssertionError(f"unexpected frame {opcode} {payload!r}")
        assert pings >= 5 and heartbeats >= 5, (pings, heartbeats)
        await h.await_numsub("broadcast:raw", 1)
        h.publish("broadcast:raw", "still connected")
        while True:
            fin, opcode, payload = raw.recv_frame(5)
            if opcode == h.OP_TEXT and payload != HB.encode():
                break
        assert payload == b"still connected"
        raw.close()
        await ws.close()
    except BaseException:
        print(nginx.logs())
        raise
    finally:
        nginx.close()
    assert nginx.proc.returncode is not None
