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

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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
