"""Self-test of the harness: the raw frame codec against python3-websockets' server, the Redis helpers and the
runner itself. Needs no gateway (no test here names the `gateway` fixture)."""

import asyncio
import os
import subprocess
import sys
import tempfile
import threading

import harness as h
import websockets

HERE = os.path.dirname(os.path.abspath(__file__))


class EchoServer:
    """websockets.serve in a thread: echoes every message with its type; "close:<code>" makes it close."""

    def __init__(self, max_size=2 ** 20):
        self.port = h.free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.max_size = max_size
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(5):
            raise AssertionError("echo server did not start")
        h._track(self)

    async def _handler(self, ws, path=None):
        try:
            async for msg in ws:
                if isinstance(msg, str) and msg.startswith("close:"):
                    await ws.close(int(msg[6:]), "bye")
                    return
                await ws.send(msg)
        except websockets.exceptions.ConnectionClosed:
            pass

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def main():
            self.stop_event = asyncio.Event()
            async with websockets.serve(self._handler, "127.0.0.1", self.port, max_size=self.max_size,
                                        ping_interval=None, compression=None, subprotocols=["chat", "superchat"]):
                self.ready.set()
                await self.stop_event.wait()

        self.loop.run_until_complete(main())

    def close(self):
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
            self.thread.join(5)

    def raw(self):
        ws = h.RawWS("127.0.0.1", self.port)
        resp = ws.handshake("/echo")
        ws.assert_upgraded(resp)
        return ws


def test_accept_key_matches_rfc6455_example():
    assert h.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_mask_roundtrip_and_frame_layout():
    key = b"\x01\x02\x03\x04"
    data = bytes(range(256)) * 3
    assert h.apply_mask(h.apply_mask(data, key), key) == data
    f = h.build_frame(h.OP_TEXT, b"Hello", mask_key=b"\x37\xfa\x21\x3d")
    assert f == bytes.fromhex("818537fa213d7f9f4d5158"), f.hex()  # RFC 6455 5.7 example
    assert h.build_frame(h.OP_BINARY, b"x" * 200, mask=False)[:4] == bytes([0x82, 126, 0, 200])
    assert h.build_frame(h.OP_BINARY, b"x" * 70000, mask=False)[:10] == bytes([0x82, 127]) + (70000).to_bytes(8,
                                                                                                            "big")
    assert h.build_frame(h.OP_TEXT, b"ab", fin=False, rsv=4, mask=False) == bytes([0x41, 2]) + b"ab"
    assert h.build_frame(h.OP_TEXT, b"ab", length_bits=64, mask=False)[:10] == bytes([0x81, 127, 0, 0, 0, 0, 0, 0,
                                                                                     0, 2])


def test_raw_handshake_against_websockets_server():
    srv = EchoServer()
    ws = h.RawWS("127.0.0.1", srv.port)
    resp = ws.handshake("/echo", headers={"Sec-WebSocket-Protocol": "chat, superchat"})
    ws.assert_upgraded(resp)
    assert resp.headers["sec-websocket-protocol"] == "chat"
    ws.close_handshake(1000)


def test_raw_text_binary_and_lengths_roundtrip():
    srv = EchoServer()
    ws = srv.raw()
    ws.send_text("héllo")
    assert ws.recv_message() == (h.OP_TEXT, "héllo".encode())
    ws.send_binary(b"\x00\xff\x80")
    assert ws.recv_message() == (h.OP_BINARY, b"\x00\xff\x80")
    for n in (125, 126, 200, 65535, 65536, 300000):  # 7-, 16- and 64-bit lengths both ways
        data = os.urandom(n)
        ws.send_binary(data)
        assert ws.recv_message(10) == (h.OP_BINARY, data), n
    ws.send_text("forced-64", length_bits=64)
    assert ws.recv_text() == "forced-64"
    ws.close_handshake(3000)


def test_raw_fragments_and_interleaved_ping():
    srv = EchoServer()
    ws = srv.raw()
    ws.send_frame(h.OP_TEXT, "frag", fin=False)
    ws.send_ping(b"in-between")
    ws.send_frame(h.OP_CONT, "men", fin=False)
    ws.send_frame(h.OP_CONT, "ted", fin=True)
    assert ws.recv_message() == (h.OP_PONG, b"in-between")
    assert ws.recv_text() == "fragmented"
    assert ws.ping_roundtrip(b"p" * 125) == []
    ws.close_handshake(1000)


def test_raw_close_parsing_and_eof():
    srv = EchoServer()
    ws = srv.raw()
    ws.send_text("close:4001")
    assert ws.recv_close() == (4001, b"bye")
    ws.send_close(4001)
    assert ws.wait_eof() < 5
    ws2 = srv.raw()
    ws2.send_close()  # empty close: websockets answers with an empty close too
    assert ws2.recv_close() == (None, b"")
    ws2.wait_eof()


def test_raw_protocol_errors_are_detected_by_websockets_server():
    srv = EchoServer(max_size=1000)
    cases = [
        (lambda ws: ws.send_text("unmasked", mask=False), 1002),
        (lambda ws: ws.send_text("rsv1", rsv=4), 1002),
        (lambda ws: ws.send_frame(0x3, b"x"), 1002),
        (lambda ws: ws.send_ping(b"x" * 126), 1002),
        (lambda ws: ws.send_frame(h.OP_PING, b"x", fin=False), 1002),
        (lambda ws: ws.send_text(b"\xc3\x28"), 1007),
        (lambda ws: ws.send_binary(b"x" * 1001), 1009),
        (lambda ws: ws.send_close(999), 1002),
    ]
    for send, code in cases:
        ws = srv.raw()
        send(ws)
        ws.expect_close(code)


def test_raw_http_response_with_body():
    srv = EchoServer()
    ws = h.RawWS("127.0.0.1", srv.port)
    resp = ws.handshake("/echo", headers={"Sec-WebSocket-Version": "8"})
    assert resp.status == 400, resp
    assert resp.headers["connection"] == "close"
    assert int(resp.headers["content-length"]) == len(resp.body) > 0
    assert "Sec-WebSocket-Version" in resp.text, resp
    ws.wait_eof()


def test_expect_silence_fails_when_something_arrives():
    srv = EchoServer()
    ws = srv.raw()
    ws.expect_silence(0.1)
    ws.send_text("noise")
    try:
        ws.expect_silence(1.0)
    except AssertionError:
        pass
    else:
        raise AssertionError("expect_silence did not notice a frame")


async def test_real_client_helpers_against_websockets_server():
    srv = EchoServer()
    ws = await h.ws_connect(f"ws://127.0.0.1:{srv.port}/echo", subprotocols=["chat", "superchat"])
    assert ws.subprotocol == "chat"
    await ws.send("one")
    await ws.send(b"\x01\x02")
    assert await h.recv_n(ws, 2) == ["one", b"\x01\x02"]
    await h.expect_silence(ws, 0.1)
    await ws.send("close:1001")
    assert await h.wait_closed(ws) == (1001, "bye")


def test_wait_numsub_and_subscriber(redis):
    ch = h.rand_name("selftest:")
    assert h.numsub(ch) == 0
    sub = h.Subscriber(ch)
    h.wait_numsub(ch, 1, timeout=2)
    try:
        h.wait_numsub(ch, 2, timeout=0.2)
    except AssertionError:
        pass
    else:
        raise AssertionError("wait_numsub accepted a wrong count")
    assert h.publish(ch, b"m\xff") == 1
    assert sub.get(2) == b"m\xff"
    sub.expect_none(0.1)
    sub.close()
    h.wait_numsub(ch, 0, timeout=2)
    assert redis.dbsize() == 0  # FLUSHALL between tests


def test_redis_restart_keeps_port(redis_server, redis):
    port = redis_server.port
    redis.set("k", "v")
    redis_server.restart()
    assert redis_server.port == port
    r = redis_server.client()
    assert r.ping() and r.get("k") is None


def _run_runner(args, env_extra=None, timeout=120):
    env = dict(os.environ)
    env.pop("WSGATE_BIN", None)
    env.update(env_extra or {})
    p = subprocess.run([sys.executable, os.path.join(HERE, "run.py")] + args, capture_output=True, text=True,
                       timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def test_runner_summary_exit_codes_and_missing_binary():
    code, out, err = _run_runner(["--bin", "/nonexistent/wsgate"])
    assert code == 2, (code, out, err)
    assert "not found" in err and "/nonexistent/wsgate" in err

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "test_meta.py")
        with open(path, "w") as f:
            f.write(
                "import time\n"
                "def test_passes(redis):\n    redis.set('x', 1)\n"
                "def test_fails():\n    assert 1 == 2, 'deliberate'\n"
                "async def test_async_passes():\n    pass\n"
                "def test_hangs():\n    time.sleep(30)\n"
                "def test_gateway_that_dies(gateway):\n    pass\n"
                "def helper_not_a_test():\n    raise SystemExit(3)\n")
        # /bin/true exits at once: the gateway fixture must report that instead of hanging.
        code, out, err = _run_runner(["--bin", "/bin/true", path], {"WSGATE_TEST_TIMEOUT": "2"})
        lines = out.strip().splitlines()
        assert code == 1, (code, out, err)
        assert lines[-1] == "2 passed, 3 failed", out
        assert any(l.startswith("ok   test_meta.py::test_passes (") for l in lines), out
        assert any(l.startswith("ok   test_meta.py::test_async_passes (") for l in lines), out
        assert any(l.startswith("FAIL test_meta.py::test_fails") for l in lines), out
        assert "deliberate" in out and "Traceback" in out
        assert any(l.startswith("FAIL test_meta.py::test_hangs") for l in lines), out
        assert "per-test timeout" in out
        assert any(l.startswith("FAIL test_meta.py::test_gateway_that_dies") for l in lines), out
        assert "before listening" in out
        assert "helper_not_a_test" not in out

        code, out, err = _run_runner(["--bin", "/bin/true", "-k", "test_passes", path])
        assert code == 0, (code, out, err)
        assert out.strip().splitlines()[-1] == "1 passed, 0 failed", out
