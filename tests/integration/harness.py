"""Integration-test harness: a private redis-server, the wsgate binary, a raw WebSocket client and helpers.

Tests are plain functions `test_*` in `tests/integration/test_*.py`, run by `run.py`. A test asks for fixtures
by naming them as parameters (a test that names none of the gateway fixtures never starts a gateway):

  gateway        a started Gateway with the default environment plus the overrides of @with_env(...)
  start_gateway  factory: start_gateway(args=(), **env_overrides) -> started Gateway (stopped and checked at
                 the end)
  run_gateway    run_gateway(args, **env_overrides) -> (exit status, output) of a short-lived run (--help, ...)
  redis          a redis-py client (bytes replies) on the private redis-server
  redis_server   the RedisServer itself (stop/start/restart)

Every Gateway a test started is stopped with SIGTERM when the test ends; the test fails when the exit status is
not 0 or the log shows a sanitizer report, so every test doubles as a leak check. `async def` tests run under
asyncio.run(). Wait for events (wait_numsub, wait_log, recv with a deadline) instead of sleeping.
"""

import asyncio
import base64
import hashlib
import os
import random
import re
import signal
import socket
import struct
import subprocess
import time

import redis as redis_py

try:
    import websockets
    import websockets.exceptions
except ImportError:  # the runner checks the interpreter; keep the import error readable
    websockets = None

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(ROOT, ".test-artifacts", "integration")
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Opcodes (RFC 6455 section 5.2).
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

DEFAULT_TIMEOUT = 5.0


class HarnessError(AssertionError):
    """A failed expectation raised by a harness helper (counts as a test failure)."""


# --------------------------------------------------------------------------------------------------------------
# Run-wide state, set up by run.py.

class _State:
    bin_path = None  # path of the wsgate binary
    redis_server = None  # the RedisServer of this run
    test_id = "selftest"  # "file::test", used to name log files
    gateways = []  # Gateways started by the current test
    resources = []  # objects with close() opened by the current test
    gateway_counter = 0


STATE = _State()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.02, what="condition"):
    """Polls `predicate()` until it returns a truthy value, which is returned; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise HarnessError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")
        time.sleep(interval)


def tail(text, lines=40):
    return "\n".join(text.splitlines()[-lines:])


def _track(obj):
    STATE.resources.append(obj)
    return obj


# --------------------------------------------------------------------------------------------------------------
# Redis

class RedisServer:
    """A private redis-server child process on a free port, in the foreground (stopped by PID)."""

    def __init__(self, port=None, log_path=None, tls=None, args=()):
        """`tls`: a dict with cert, key and ca files (and auth_clients: bool): the server then speaks only TLS,
        on `port`. `args`: more redis-server arguments."""
        self.port = port or free_port()
        self.log_path = log_path or os.path.join(ARTIFACTS, "redis-server.log")
        self.tls = tls
        self.args = list(args)
        self.proc = None
        self._client = None

    @property
    def url(self):
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def _command(self):
        cmd = ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]
        if self.tls:
            cmd += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", self.tls["cert"],
                    "--tls-key-file", self.tls["key"], "--tls-ca-cert-file", self.tls["ca"],
                    "--tls-auth-clients", "yes" if self.tls.get("auth_clients") else "no"]
        else:
            cmd += ["--port", str(self.port)]
        return cmd + self.args

    def _client_kwargs(self):
        if not self.tls:
            return {}
        kw = {"ssl": True, "ssl_ca_certs": self.tls["ca"]}
        if self.tls.get("auth_clients"):
            kw.update(ssl_certfile=self.tls["client_cert"], ssl_keyfile=self.tls["client_key"])
        return kw

    def start(self, timeout=10.0):
        if self.is_running():
            return
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=ARTIFACTS)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise HarnessError(f"redis-server exited with {self.proc.returncode}; log {self.log_path}")
            try:
                probe = redis_py.Redis(host="127.0.0.1", port=self.port, socket_timeout=1,
                                       socket_connect_timeout=1, client_name="harness", **self._client_kwargs())
                try:
                    if probe.ping():
                        break
                finally:
                    probe.connection_pool.disconnect()
            except (redis_py.exceptions.ConnectionError, redis_py.exceptions.TimeoutError,
                    redis_py.exceptions.BusyLoadingError):
                pass
            if time.monotonic() >= deadline:
                raise HarnessError(f"redis-server did not answer PING within {timeout}s")
            time.sleep(0.02)
        self._reset_client()

    def stop(self):
        """Stops the server gracefully-ish (SIGTERM; SIGKILL after 5 s)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self._reset_client()

    def kill(self):
        """kill -9, as a crash would."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        self._reset_client()

    def restart(self):
        """kill -9, then start again on the same port (with an empty data set)."""
        self.kill()
        self.start()

    def is_running(self):
        return self.proc is not None and self.proc.poll() is None

    def client(self):
        """The shared redis-py client (bytes replies). Its connections are named "harness"."""
        if self._client is None:
            self._client = redis_py.Redis(host="127.0.0.1", port=self.port, socket_timeout=10,
                                          socket_connect_timeout=5, client_name="harness",
                                          **self._client_kwargs())
        return self._client

    def new_client(self, **kw):
        return redis_py.Redis(host="127.0.0.1", port=self.port, socket_timeout=10, socket_connect_timeout=5,
                              client_name="harness", **self._client_kwargs(), **kw)

    def _reset_client(self):
        if self._client is not None:
            try:
                self._client.connection_pool.disconnect()
            except Exception:
                pass
            self._client = None


def redis_client():
    return STATE.redis_server.client()


def numsub(channel):
    """PUBSUB NUMSUB for one channel."""
    reply = redis_client().execute_command("PUBSUB", "NUMSUB", channel)
    # redis-py 4.3 turns the flat reply into [(name, count)]; accept both shapes.
    if reply and isinstance(reply[0], (tuple, list)):
        return int(reply[0][1])
    return int(reply[1])


def wait_numsub(channel, n, timeout=DEFAULT_TIMEOUT):
    """Polls PUBSUB NUMSUB until it equals `n` (use it to know the gateway subscribed before publishing)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = numsub(channel)
        except redis_py.exceptions.ConnectionError:
            got = None  # redis is (re)starting
        if got == n:
            return
        if time.monotonic() >= deadline:
            raise HarnessError(f"PUBSUB NUMSUB {channel} is {got}, expected {n} within {timeout}s")
        time.sleep(0.02)


async def await_numsub(channel, n, timeout=DEFAULT_TIMEOUT):
    """wait_numsub for async tests: yields to the event loop between polls."""
    deadline = time.monotonic() + timeout
    while True:
        got = numsub(channel)
        if got == n:
            return
        if time.monotonic() >= deadline:
            raise HarnessError(f"PUBSUB NUMSUB {channel} is {got}, expected {n} within {timeout}s")
        await asyncio.sleep(0.02)


def assert_numsub_stays(channel, n, duration=0.3):
    """Checks that PUBSUB NUMSUB stays `n` for `duration` seconds (for "nothing changed" expectations)."""
    deadline = time.monotonic() + duration
    while True:
        got = numsub(channel)
        if got != n:
            raise HarnessError(f"PUBSUB NUMSUB {channel} became {got}, expected it to stay {n}")
        if time.monotonic() >= deadline:
            return
        time.sleep(0.02)


def pubsub_channels(pattern="*"):
    """Channels with subscribers, without the gateway's own liveness-probe channels (wsgate:probe:*)."""
    names = redis_client().execute_command("PUBSUB", "CHANNELS", pattern)
    return sorted(n for n in names if not n.startswith(b"wsgate:probe:"))


def publish(channel, message):
    """PUBLISH; returns the number of Redis subscribers that got it."""
    return redis_client().publish(channel, message)


def gateway_redis_clients():
    """CLIENT LIST entries that are not the harness's own connections (named "harness")."""
    out = []
    for entry in redis_client().client_list():
        if entry.get("name") != "harness":
            out.append(entry)
    return out


class Subscriber:
    """A Redis pub/sub subscriber of its own (redis-py), to see what the gateway PUBLISHes."""

    def __init__(self, *channels):
        self._client = STATE.redis_server.new_client()
        self._pubsub = self._client.pubsub()
        self._pubsub.subscribe(*channels)
        # Wait for the subscription confirmations so nothing published afterwards is missed.
        pending = set(c.encode() if isinstance(c, str) else c for c in channels)
        deadline = time.monotonic() + DEFAULT_TIMEOUT
        self._early = []
        while pending:
            msg = self._pubsub.get_message(timeout=0.1)
            if msg is not None:
                if msg["type"] == "subscribe":
                    pending.discard(msg["channel"])
                elif msg["type"] == "message":
                    self._early.append(msg["data"])
            if pending and time.monotonic() > deadline:
                raise HarnessError(f"subscribing to {channels} was not confirmed")
        _track(self)

    def get(self, timeout=DEFAULT_TIMEOUT):
        """The next message published on the subscribed channels (bytes); fails after `timeout`."""
        if self._early:
            return self._early.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._pubsub.get_message(timeout=max(0.0, min(0.1, deadline - time.monotonic())))
            if msg is not None and msg["type"] == "message":
                return msg["data"]
            if time.monotonic() >= deadline:
                raise HarnessError(f"no message published within {timeout}s")

    def expect_none(self, duration=0.3):
        """Checks that nothing is published for `duration` seconds."""
        if self._early:
            raise HarnessError(f"unexpected publication {self._early[0]!r}")
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            msg = self._pubsub.get_message(timeout=max(0.0, min(0.1, deadline - time.monotonic())))
            if msg is not None and msg["type"] == "message":
                raise HarnessError(f"unexpected publication {msg['data']!r}")

    def close(self):
        try:
            self._pubsub.close()
            self._client.connection_pool.disconnect()
        except Exception:
            pass


# --------------------------------------------------------------------------------------------------------------
# The gateway process

def gateway_base_env():
    """Defaults from the spec (listen address is added per instance)."""
    return {
        "REDIS_URL": STATE.redis_server.url if STATE.redis_server else "redis://127.0.0.1:6379/0",
        "WSGATE_LOG_LEVEL": "debug",
        # One event loop, so that every channel has exactly one gateway subscription; tests of several
        # workers set WSGATE_WORKERS themselves.
        "WSGATE_WORKERS": "1",
        # Most tests publish from clients without a token; the secure default (off) has tests of its own.
        "WSGATE_ANONYMOUS_PUBLISH": "1",
        "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    }


def _process_env(overrides):
    env = dict(os.environ)
    # Settings of the developer's shell must not leak into tests.
    for k in list(env):
        if k.startswith(("WSGATE_", "WS4REDIS_")) or k in ("REDIS_URL", "WEBSOCKET_URL"):
            del env[k]
    env.update(gateway_base_env())
    for k, v in overrides.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def _log_path(kind):
    STATE.gateway_counter += 1
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", STATE.test_id)
    os.makedirs(ARTIFACTS, exist_ok=True)
    return os.path.join(ARTIFACTS, f"{safe}.{kind}{STATE.gateway_counter}.log")


def sanitizer_findings(text):
    return [m for m in SANITIZER_MARKERS if m in text]


class Gateway:
    """One wsgate process. start() waits until the port accepts connections; stop() checks the exit."""

    def __init__(self, env=None, args=(), bin_path=None):
        self.bin_path = bin_path or STATE.bin_path
        self.port = free_port()
        self.admin_port = free_port()
        self.host = "127.0.0.1"
        self.overrides = {"WSGATE_LISTEN": f"127.0.0.1:{self.port}",
                          "WSGATE_ADMIN_LISTEN": f"127.0.0.1:{self.admin_port}"}
        self.overrides.update(env or {})
        self.args = list(args)
        self.log_path = _log_path("gateway")
        self.proc = None
        self.exit_status = None
        self.checked = False

    @property
    def pid(self):
        return self.proc.pid

    def start(self, timeout=10.0):
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen([self.bin_path] + self.args, env=_process_env(self.overrides),
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        STATE.gateways.append(self)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self.exit_status = self.proc.returncode
                self.checked = True
                raise HarnessError(f"gateway exited with status {self.proc.returncode} before listening "
                                   f"(log: {self.log_path})")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return self
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise HarnessError(f"gateway did not accept connections on port {self.port} within {timeout}s")
            time.sleep(0.02)

    def is_running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum):
        self.proc.send_signal(signum)

    def wait_exit(self, timeout=15.0):
        """Waits for the process to end; returns its exit status (fails on timeout)."""
        try:
            self.exit_status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"gateway did not exit within {timeout}s")
        return self.exit_status

    def stop(self, timeout=15.0):
        """SIGTERM, wait up to `timeout`; fails unless the exit status is 0 and the log has no sanitizer report.
        Idempotent: only the first call checks (the runner calls it again at teardown)."""
        if self.checked:
            return
        self.checked = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise HarnessError(f"gateway did not exit within {timeout}s of SIGTERM (killed)")
        self.exit_status = self.proc.returncode
        self.check_exit()

    def check_exit(self):
        text = self.log_text()
        problems = []
        if self.exit_status != 0:
            problems.append(f"exit status {self.exit_status} (expected 0)")
        found = sanitizer_findings(text)
        if found:
            problems.append("sanitizer report in log: " + ", ".join(found))
        if problems:
            raise HarnessError("gateway: " + "; ".join(problems) + f" (log: {self.log_path})")

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, regex, timeout=DEFAULT_TIMEOUT):
        """Waits until the log matches `regex` (re.M); returns the match."""
        pattern = re.compile(regex, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = pattern.search(self.log_text())
            if m:
                return m
            if time.monotonic() >= deadline:
                raise HarnessError(f"log did not match /{regex}/ within {timeout}s")
            time.sleep(0.02)

    # Clients ---------------------------------------------------------------------------------------------------

    def admin_get(self, path, timeout=DEFAULT_TIMEOUT):
        """GET on the admin listener: (status, body text)."""
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()

    def metrics(self):
        """The /metrics samples as {"name{labels}": value}."""
        status, text = self.admin_get("/metrics")
        assert status == 200, status
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def url(self, path):
        return f"ws://{self.host}:{self.port}{path}"

    def raw(self, timeout=DEFAULT_TIMEOUT):
        """A RawWS connected over TCP, nothing sent yet."""
        return RawWS(self.host, self.port, timeout=timeout)

    def open_raw(self, path, headers=None, timeout=DEFAULT_TIMEOUT):
        """A RawWS after a successful upgrade to `path` (fails unless the answer is a valid 101)."""
        ws = self.raw(timeout)
        resp = ws.handshake(path, headers=headers)
        ws.assert_upgraded(resp)
        return ws

    async def connect(self, path, **kw):
        return await ws_connect(self.url(path), **kw)


def run_gateway(args=(), timeout=15.0, **env):
    """Runs the binary to completion (for --help, --version, bad settings); returns (exit status, output).
    Output is stdout and stderr merged. A sanitizer report in the output fails the test."""
    overrides = {"WSGATE_LISTEN": f"127.0.0.1:{free_port()}"}
    overrides.update(env)
    log_path = _log_path("run")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([STATE.bin_path] + list(args), env=_process_env(overrides),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            status = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise HarnessError(f"{STATE.bin_path} {' '.join(args)} did not exit within {timeout}s")
    with open(log_path, "rb") as f:
        out = f.read().decode("utf-8", "replace")
    found = sanitizer_findings(out)
    if found:
        raise HarnessError(f"sanitizer report ({', '.join(found)}):\n{tail(out)}")
    return status, out


def with_env(**env):
    """Decorator: environment overrides for the `gateway` fixture of this test."""

    def deco(fn):
        fn.gateway_env = env
        return fn

    return deco


# --------------------------------------------------------------------------------------------------------------
# Raw WebSocket client

def accept_key(key):
    """The Sec-WebSocket-Accept value for a Sec-WebSocket-Key."""
    if isinstance(key, str):
        key = key.encode()
    return base64.b64encode(hashlib.sha1(key.strip() + WS_GUID).digest()).decode()


def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def build_frame(opcode, payload=b"", fin=True, mask=True, rsv=0, mask_key=None, length_bits=None,
                length=None):
    """Encodes one client frame.

    opcode: any 0..15; payload: bytes or str (UTF-8); fin: FIN bit; mask: mask the payload (clients must);
    rsv: the three RSV bits as a number 0..7 (4 = RSV1); mask_key: 4 bytes (random by default);
    length_bits: force 7, 16 or 64-bit length encoding; length: the length to announce (default: the real one,
    use it to announce more than is sent)."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    mbit = 0x80 if mask else 0
    if length_bits is None:
        length_bits = 7 if n < 126 else (16 if n < 65536 else 64)
    if length_bits == 7:
        head = struct.pack("!BB", b0, mbit | n)
    elif length_bits == 16:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    elif length_bits == 64:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    else:
        raise ValueError("length_bits must be 7, 16 or 64")
    if not mask:
        return head + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    return head + key + apply_mask(payload, key)


def apply_mask(data, key):
    if not data:
        return b""
    n = len(data)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def close_payload(code=None, reason=b""):
    if isinstance(reason, str):
        reason = reason.encode()
    if code is None:
        return reason
    return struct.pack("!H", code) + reason


def upgrade_request(path, host="127.0.0.1", method="GET", version="HTTP/1.1", key=None, headers=None):
    """A valid upgrade request head (bytes). `headers` adds or replaces headers (case-insensitive names);
    a value of None removes that header."""
    hdrs = [("Host", host), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key or new_key()), ("Sec-WebSocket-Version", "13")]
    for name, value in (headers or {}).items():
        hdrs = [(n, v) for (n, v) in hdrs if n.lower() != name.lower()]
        if value is not None:
            hdrs.append((name, value))
    lines = [f"{method} {path} {version}"] + [f"{n}: {v}" for n, v in hdrs]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HTTPResponse:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-cased names; repeated headers joined with ", "
        self.body = body
        self.raw_head = raw_head

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"<HTTPResponse {self.status} {self.reason!r} {self.headers!r} body={self.body[:200]!r}>"


class ServerClosed(HarnessError):
    """The server closed the TCP connection while a frame or response was expected."""


class RawWS:
    """A WebSocket client on a plain socket, for precise protocol tests."""

    def __init__(self, host, port, timeout=DEFAULT_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        self.key = None
        self.closed = False
        _track(self)

    # Transport ---------------------------------------------------------------------------------------------

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Reads more bytes into the buffer; False on EOF; raises socket.timeout at the deadline."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _read_exact(self, n, deadline, what):
        while len(self.buf) < n:
            try:
                if not self._fill(deadline):
                    raise ServerClosed(f"server closed the connection while reading {what} "
                                       f"(had {len(self.buf)} of {n} bytes)")
            except socket.timeout:
                raise HarnessError(f"timed out reading {what}") from None
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    # HTTP ----------------------------------------------------------------------------------------------------

    def request(self, head, timeout=DEFAULT_TIMEOUT):
        """Sends `head` (bytes or str) and reads the HTTP response."""
        self.send_raw(head)
        return self.read_response(timeout)

    def handshake(self, path, headers=None, method="GET", version="HTTP/1.1", timeout=DEFAULT_TIMEOUT):
        """Sends a valid upgrade request (see upgrade_request) and returns the response."""
        self.key = new_key()
        if headers and any(k.lower() == "sec-websocket-key" for k in headers):
            self.key = next(v for k, v in headers.items() if k.lower() == "sec-websocket-key")
        return self.request(upgrade_request(path, method=method, version=version, key=self.key,
                                            headers=headers), timeout)

    def read_response(self, timeout=DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            try:
                if not self._fill(deadline):
                    raise ServerClosed(f"server closed the connection before a full response head "
                                       f"(got {self.buf[:300]!r})")
            except socket.timeout:
                raise HarnessError(f"no HTTP response within {timeout}s (got {self.buf[:300]!r})") from None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.1 (\d{3})(?: (.*))?$", lines[0])
        if not m:
            raise HarnessError(f"bad status line {lines[0]!r}")
        status, reason = int(m.group(1)), m.group(2) or ""
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise HarnessError(f"bad header line {line!r}")
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        body = b""
        if status != 101 and "content-length" in headers:
            body = self._read_exact(int(headers["content-length"]), deadline, "the response body")
        return HTTPResponse(status, reason, headers, body, head)

    def assert_upgraded(self, resp):
        """Checks a 101 answer to this client's handshake: status, Upgrade, Connection, Sec-WebSocket-Accept."""
        if resp.status != 101:
            raise HarnessError(f"expected 101, got {resp!r}")
        if resp.headers.get("upgrade", "").lower() != "websocket":
            raise HarnessError(f"101 without Upgrade: websocket: {resp.headers!r}")
        if "upgrade" not in [t.strip().lower() for t in resp.headers.get("connection", "").split(",")]:
            raise HarnessError(f"101 without Connection: Upgrade: {resp.headers!r}")
        if resp.headers.get("sec-websocket-accept") != accept_key(self.key):
            raise HarnessError(f"wrong Sec-WebSocket-Accept {resp.headers.get('sec-websocket-accept')!r}, "
                               f"expected {accept_key(self.key)!r}")

    # Frames out ----------------------------------------------------------------------------------------------

    def send_frame(self, opcode, payload=b"", **kw):
        """Sends one frame; keyword arguments as build_frame (fin, mask, rsv, mask_key, length_bits, length)."""
        self.send_raw(build_frame(opcode, payload, **kw))

    def send_text(self, text, **kw):
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text, **kw)

    def send_binary(self, data, **kw):
        self.send_frame(OP_BINARY, data, **kw)

    def send_ping(self, payload=b"", **kw):
        self.send_frame(OP_PING, payload, **kw)

    def send_pong(self, payload=b"", **kw):
        self.send_frame(OP_PONG, payload, **kw)

    def send_close(self, code=None, reason=b"", **kw):
        self.send_frame(OP_CLOSE, close_payload(code, reason), **kw)

    # Frames in -----------------------------------------------------------------------------------------------

    def recv_frame(self, timeout=DEFAULT_TIMEOUT):
        """The next server frame as (fin, opcode, payload). Fails if it is masked or has RSV bits set."""
        deadline = time.monotonic() + timeout
        b0, b1 = self._read_exact(2, deadline, "a frame header")
        fin, rsv, opcode = bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F
        if b1 & 0x80:
            raise HarnessError("server frame is masked (RFC 6455 5.1: servers must not mask)")
        if rsv:
            raise HarnessError(f"server frame has RSV bits {rsv:03b}")
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._read_exact(2, deadline, "a 16-bit length"))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._read_exact(8, deadline, "a 64-bit length"))
        if opcode >= 8 and (n > 125 or not fin):
            raise HarnessError(f"server sent an invalid control frame (opcode {opcode}, len {n}, fin {fin})")
        payload = self._read_exact(n, deadline, f"a {n}-byte payload") if n else b""
        return fin, opcode, payload

    def recv_message(self, timeout=DEFAULT_TIMEOUT):
        """The next message as (opcode, payload): data frames are reassembled; a control frame is returned as
        it is (PONG, CLOSE)."""
        deadline = time.monotonic() + timeout
        fin, opcode, payload = self.recv_frame(timeout)
        if opcode >= 8:
            return opcode, payload
        if opcode == OP_CONT:
            raise HarnessError("server sent a continuation frame without a message start")
        parts = [payload]
        while not fin:
            fin, op2, more = self.recv_frame(max(0.001, deadline - time.monotonic()))
            if op2 >= 8:
                raise HarnessError(f"control frame {op2} inside a fragmented server message (unexpected here)")
            if op2 != OP_CONT:
                raise HarnessError(f"server started a new message (opcode {op2}) inside a fragmented one")
            parts.append(more)
        return opcode, b"".join(parts)

    def recv_text(self, timeout=DEFAULT_TIMEOUT):
        """The next message, which must be a text message; returned as str."""
        opcode, payload = self.recv_message(timeout)
        if opcode != OP_TEXT:
            raise HarnessError(f"expected a text message, got opcode {opcode} payload {payload[:100]!r}")
        return payload.decode("utf-8")

    def recv_close(self, timeout=DEFAULT_TIMEOUT, skip_data=True):
        """Reads until a close frame and returns (code, reason); code is None for an empty close.
        Data messages before it are skipped when `skip_data` (heartbeats, messages); PONGs are always skipped."""
        deadline = time.monotonic() + timeout
        while True:
            fin, opcode, payload = self.recv_frame(max(0.001, deadline - time.monotonic()))
            if opcode == OP_CLOSE:
                if len(payload) == 1:
                    raise HarnessError("server close frame has a 1-byte payload")
                if not payload:
                    return None, b""
                return struct.unpack("!H", payload[:2])[0], payload[2:]
            if opcode == OP_PONG or (skip_data and opcode in (OP_TEXT, OP_BINARY, OP_CONT)):
                continue
            raise HarnessError(f"expected a close frame, got opcode {opcode} payload {payload[:100]!r}")

    def expect_close(self, code, timeout=DEFAULT_TIMEOUT, reply=True):
        """Expects a close frame with `code`, answers it (when `reply`) and waits for the server to close TCP."""
        got, reason = self.recv_close(timeout)
        if got != code:
            raise HarnessError(f"expected close code {code}, got {got} (reason {reason!r})")
        if reply:
            try:
                self.send_close(got if got is not None else None)
            except OSError:
                pass
        self.wait_eof(timeout)
        return reason

    def wait_eof(self, timeout=DEFAULT_TIMEOUT):
        """Waits until the server closes the TCP connection (data received meanwhile is discarded); returns
        the time waited. Fails after `timeout`."""
        start = time.monotonic()
        deadline = start + timeout
        self.buf = b""
        while True:
            try:
                if not self._fill(deadline):
                    return time.monotonic() - start
            except socket.timeout:
                raise HarnessError(f"server did not close the TCP connection within {timeout}s") from None
            self.buf = b""

    def expect_silence(self, duration=0.3):
        """Checks that the server sends nothing (and does not close) for `duration` seconds."""
        deadline = time.monotonic() + duration
        while not self.buf:
            try:
                if not self._fill(deadline):
                    raise ServerClosed("server closed the connection (expected silence)")
            except socket.timeout:
                break
        if self.buf:
            raise HarnessError(f"server sent {self.buf[:100]!r} (expected silence)")

    def ping_roundtrip(self, payload=b"sync", timeout=DEFAULT_TIMEOUT):
        """Sends a PING and waits for its PONG, skipping data messages; proves the server has processed
        everything sent before. Returns the data messages that arrived meanwhile as (opcode, payload)."""
        self.send_ping(payload)
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            opcode, data = self.recv_message(max(0.001, deadline - time.monotonic()))
            if opcode == OP_PONG and data == payload:
                return seen
            if opcode == OP_CLOSE:
                raise HarnessError(f"server closed ({data!r}) while waiting for a pong")
            seen.append((opcode, data))

    def recv_pongs(self, payloads, timeout=DEFAULT_TIMEOUT):
        """Waits for the answers to pings sent with `payloads`, skipping nothing else: a server may answer only
        the latest of pings that arrive together (RFC 6455 5.5.3; the gateway keeps at most one pong waiting),
        so the pongs must be an in-order selection of `payloads` ending with the last. Returns those answered."""
        deadline = time.monotonic() + timeout
        answered, at = [], 0
        while not answered or answered[-1] != payloads[-1]:
            fin, opcode, data = self.recv_frame(max(0.001, deadline - time.monotonic()))
            if opcode != OP_PONG:
                raise HarnessError(f"expected a pong, got opcode {opcode} ({data[:60]!r})")
            if data not in payloads[at:]:
                raise HarnessError(f"pong {data!r} answers no ping left in {payloads[at:]!r} (out of order?)")
            at = payloads.index(data, at) + 1
            answered.append(data)
        return answered

    def close_handshake(self, code=1000, timeout=DEFAULT_TIMEOUT):
        """Client-initiated close: sends close `code`, expects the same code back and the TCP close."""
        self.send_close(code)
        got, reason = self.recv_close(timeout)
        if got != code:
            raise HarnessError(f"expected close code {code} echoed, got {got} ({reason!r})")
        self.wait_eof(timeout)

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass


# --------------------------------------------------------------------------------------------------------------
# Real client (python3-websockets, asyncio)

class _TrackedWS:
    """Closes a websockets connection at test teardown (from a fresh loop only the transport can be closed)."""

    def __init__(self, ws):
        self.ws = ws

    def close(self):
        try:
            self.ws.transport.abort()
        except Exception:
            pass


def abort_real_clients():
    """Aborts the transports of every websockets client of the current test (called by the runner when an
    async test ends, so that asyncio.run() does not wait for closing handshakes)."""
    for res in STATE.resources:
        if isinstance(res, _TrackedWS):
            res.close()


async def ws_connect(uri, subprotocols=None, timeout=DEFAULT_TIMEOUT, **kw):
    """websockets.connect with settings that keep tests deterministic: no size limit, no keepalive pings,
    no compression."""
    kw.setdefault("max_size", None)
    kw.setdefault("ping_interval", None)
    kw.setdefault("compression", None)
    kw.setdefault("close_timeout", timeout)
    ws = await asyncio.wait_for(websockets.connect(uri, subprotocols=subprotocols, open_timeout=timeout, **kw),
                                timeout + 1)
    _track(_TrackedWS(ws))
    return ws


async def recv(ws, timeout=DEFAULT_TIMEOUT):
    """The next message (str for text, bytes for binary); fails after `timeout`."""
    try:
        return await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        raise HarnessError(f"no message within {timeout}s") from None


async def recv_n(ws, n, timeout=DEFAULT_TIMEOUT):
    """The next `n` messages, with one overall deadline."""
    deadline = time.monotonic() + timeout
    out = []
    for _ in range(n):
        try:
            out.append(await asyncio.wait_for(ws.recv(), max(0.001, deadline - time.monotonic())))
        except asyncio.TimeoutError:
            raise HarnessError(f"got {len(out)} of {n} messages within {timeout}s") from None
    return out


async def expect_silence(ws, duration=0.3):
    """Checks that no message arrives for `duration` seconds."""
    try:
        msg = await asyncio.wait_for(ws.recv(), duration)
    except asyncio.TimeoutError:
        return
    raise HarnessError(f"unexpected message {msg!r}")


async def wait_closed(ws, timeout=DEFAULT_TIMEOUT):
    """Waits until the connection is closed (reading and discarding messages); returns (code, reason)."""
    try:
        await asyncio.wait_for(ws.wait_closed(), timeout)
    except asyncio.TimeoutError:
        raise HarnessError(f"connection not closed within {timeout}s") from None
    return ws.close_code, ws.close_reason


def rand_name(prefix="f"):
    return f"{prefix}{random.randrange(1 << 30):x}"
