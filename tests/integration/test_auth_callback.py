"""The authorization callback (WSGATE_AUTH_URL): a real HTTP server in the test answers each upgrade."""

import http.server
import json
import threading
import time
import urllib.parse

import harness as h


class AuthServer:
    """Answers GETs with whatever `self.answer` says: (status, body) or "hang"; records every request."""

    def __init__(self):
        self.requests = []
        self.answer = (200, "{}")
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append((self.path, dict(self.headers)))
                answer = outer.answer
                if answer == "hang":
                    time.sleep(2)
                    return
                status, body = answer
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 128  # the default backlog (5) drops bursts of connects for a second

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/ws-auth"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def start(start_gateway, auth, **env):
    return start_gateway(WSGATE_AUTH_URL=auth.url, WSGATE_AUTH_TIMEOUT="500ms", WSGATE_ANONYMOUS_PUBLISH="0", **env)


def test_200_admits_with_the_identity_and_permissions(start_gateway):
    auth = AuthServer()
    try:
        gw = start(start_gateway, auth)
        auth.answer = (200, json.dumps({"user": "john", "groups": ["admins"], "session": "s1",
                                        "allow": ["subscribe-user", "subscribe-group", "publish-user"]}))
        ws = gw.open_raw("/ws/f?subscribe-user&subscribe-group&publish-user",
                         headers={"Cookie": "sessionid=abc", "Authorization": "Basic eA==",
                                  "Origin": "https://app.example", "X-Forwarded-For": "10.1.2.3"})
        h.wait_numsub("user:john:f", 1)
        h.wait_numsub("group:admins:f", 1)
        h.publish("group:admins:f", "staff only")
        assert ws.recv_text() == "staff only"
        sub = h.Subscriber("user:john:f")
        ws.send_text("mine")
        assert sub.get(3) == b"mine"
        path, headers = auth.requests[-1]
        parsed = urllib.parse.urlparse(path)
        q = urllib.parse.parse_qs(parsed.query)
        assert parsed.path == "/ws-auth"
        assert q["facility"] == ["f"]
        assert q["channels"] == ["subscribe-user,subscribe-group,publish-user"]
        assert headers["Cookie"] == "sessionid=abc"
        assert headers["Authorization"] == "Basic eA=="
        assert headers["Origin"] == "https://app.example"
        assert headers["X-Forwarded-For"] == "10.1.2.3, 127.0.0.1"
        # Permissions the service did not grant are refused.
        resp = gw.raw().handshake("/ws/f?publish-broadcast")
        assert resp.status == 403, resp
    finally:
        auth.close()


def test_401_and_403_are_passed_on_with_the_reason(start_gateway):
    auth = AuthServer()
    try:
        gw = start(start_gateway, auth)
        for status in (401, 403):
            auth.answer = (status, f"no entry ({status})")
            resp = gw.raw().handshake("/ws/f?subscribe-broadcast")
            assert resp.status == status and f"no entry ({status})" in resp.text, resp
        assert h.pubsub_channels() == []
    finally:
        auth.close()


def test_failures_refuse_with_503(start_gateway):
    auth = AuthServer()
    try:
        gw = start(start_gateway, auth)
        for answer in ((500, "boom"), (502, ""), (200, "not json"), (200, '{"user": "a:b"}'), (302, ""), "hang"):
            auth.answer = answer
            start_time = time.monotonic()
            resp = gw.raw().handshake("/ws/f?subscribe-broadcast")
            assert resp.status == 503, (answer, resp)
            assert time.monotonic() - start_time < 2.0, answer  # the 500 ms timeout, not the hang
        assert h.pubsub_channels() == []
    finally:
        auth.close()


def test_unreachable_service_refuses_with_503(start_gateway):
    auth = AuthServer()
    gw = start(start_gateway, auth)
    auth.close()  # nothing listens any more
    resp = gw.raw().handshake("/ws/f?subscribe-broadcast")
    assert resp.status == 503, resp
    assert gw.wait_log(r"event=auth_callback_failed")


def test_client_leaving_during_the_callback_is_cleaned_up(start_gateway):
    auth = AuthServer()
    try:
        gw = start(start_gateway, auth)
        auth.answer = "hang"
        raw = gw.raw()
        raw.send_raw(h.upgrade_request("/ws/f?subscribe-broadcast"))
        time.sleep(0.1)
        raw.close()
        time.sleep(0.7)
        auth.answer = (200, "{}")
        ws = gw.open_raw("/ws/f?subscribe-broadcast")  # still serving
        assert ws.ping_roundtrip() == []
    finally:
        auth.close()


class RawAuthServer:
    """Answers each connection with fixed bytes (whatever framing they use) and then closes it."""

    def __init__(self, response):
        import socket
        self.response = response
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(self.response)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/ws-auth"

    def close(self):
        self.stop = True
        self.sock.close()


IDENTITY = json.dumps({"user": "john", "allow": ["subscribe-broadcast"]}).encode()


def test_a_body_ended_by_closing_the_connection_is_read(start_gateway):
    """HTTP/1.0-style: no Content-Length, no chunking, the backend closes to end its answer."""
    srv = RawAuthServer(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + IDENTITY)
    try:
        gw = start_gateway(WSGATE_AUTH_URL=srv.url, WSGATE_AUTH_TIMEOUT="2s")
        ws = gw.open_raw("/ws/f?subscribe-broadcast")
        h.wait_numsub("broadcast:f", 1)
        assert ws.ping_roundtrip() == []
    finally:
        srv.close()


def test_a_chunked_body_is_read(start_gateway):
    half = len(IDENTITY) // 2
    body = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, IDENTITY[:half], len(IDENTITY) - half, IDENTITY[half:])
    srv = RawAuthServer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    try:
        gw = start_gateway(WSGATE_AUTH_URL=srv.url, WSGATE_AUTH_TIMEOUT="2s")
        gw.open_raw("/ws/f?subscribe-broadcast")
        h.wait_numsub("broadcast:f", 1)
    finally:
        srv.close()


def test_refusals_name_the_authorization_service_not_a_token(start_gateway):
    auth = AuthServer()
    try:
        gw = start(start_gateway, auth)
        auth.answer = (200, json.dumps({"user": "john", "allow": ["subscribe-broadcast"]}))
        resp = gw.raw().handshake("/ws/f?subscribe-broadcast&publish-broadcast")
        assert resp.status == 403 and "the authorization service does not allow publishing there" in resp.text, resp
        auth.answer = (200, json.dumps({"user": "john"}))
        resp = gw.raw().handshake("/ws/f?subscribe-session")
        assert resp.status == 403 and "session channels need an identity with \"session\"" in resp.text, resp
        assert "token" not in resp.text
    finally:
        auth.close()


def test_a_backend_name_that_resolves_only_later_is_found_without_a_restart():
    """The gateway starts although the backend's name does not resolve yet (compose starting wsgate before
    django): clients get 503 meanwhile, and 101 once the name resolves, without a restart. The gateway runs in a
    mount namespace of its own with a private /etc/hosts the test edits."""
    import os
    import subprocess
    import tempfile
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    assert probe.returncode == 0, f"unshare -m failed (root is needed): {probe.stderr!r}"
    work = tempfile.mkdtemp(prefix="wsgate-hosts-")
    hosts = os.path.join(work, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n")
    wrapper = os.path.join(work, "wsgate-in-namespace")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nexec unshare -m sh -c \'mount --bind "$0" /etc/hosts && exec "$@"\' '
                f'"{hosts}" "{h.STATE.bin_path}" "$@"\n')
    os.chmod(wrapper, 0o755)
    auth = AuthServer()
    try:
        auth.answer = (200, json.dumps({"user": "john", "allow": ["subscribe-broadcast"]}))
        gw = h.Gateway(env={"WSGATE_AUTH_URL": f"http://django.wsgate-test:{auth.port}/ws-auth",
                            "WSGATE_AUTH_TIMEOUT": "2s"}, bin_path=wrapper).start()
        resp = gw.raw().handshake("/ws/f?subscribe-broadcast")
        assert resp.status == 503, resp
        with open(hosts, "a") as f:
            # Listed after 127.0.0.1 but sorted first (RFC 6724): nothing listens there, the next is tried.
            f.write("127.0.0.1 django.wsgate-test\n::1 django.wsgate-test\n")
        ws = gw.raw()
        ws.assert_upgraded(ws.handshake("/ws/f?subscribe-broadcast"))
        assert auth.requests, "the backend was never asked"
    finally:
        auth.close()


def test_a_named_backend_is_looked_up_for_each_request(start_gateway):
    """A host name (not an address) is resolved without blocking the loop, for every request; clients that
    leave while the lookup or the request is under way are cleaned up (the sanitizers watch)."""
    auth = AuthServer()
    try:
        gw = start_gateway(WSGATE_AUTH_URL=f"http://localhost:{auth.port}/ws-auth", WSGATE_AUTH_TIMEOUT="1s")
        auth.answer = (200, json.dumps({"user": "john", "allow": ["subscribe-broadcast"]}))
        for _ in range(20):  # leave at once, while the name is being looked up
            raw = gw.raw()
            raw.send_raw(h.upgrade_request("/ws/f?subscribe-broadcast"))
            raw.close()
        ws = gw.open_raw("/ws/f?subscribe-broadcast")
        assert ws.ping_roundtrip() == []
        assert len(auth.requests) >= 1
    finally:
        auth.close()
