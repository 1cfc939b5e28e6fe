"""Clients behind trusted reverse proxies (WSGATE_TRUSTED_PROXIES): from a trusted peer, X-Forwarded-For (every
line, walked from the right past trusted proxies) or X-Real-IP names the client, in the logs and for the
authorization callback; from anyone else those headers change nothing."""

import json

import harness as h
from test_auth_callback import AuthServer
from test_logs import parse_logfmt


def events(gateway, name):
    return [e for e in map(parse_logfmt, gateway.log_text().splitlines()) if e.get("event") == name]


def start(start_gateway, auth, trusted):
    auth.answer = (200, json.dumps({"user": "u", "allow": ["subscribe-broadcast"]}))
    return start_gateway(WSGATE_AUTH_URL=auth.url, WSGATE_TRUSTED_PROXIES=trusted)


def test_a_trusted_proxy_names_the_client(start_gateway):
    auth = AuthServer()
    try:
        gw = start(start_gateway, auth, "127.0.0.0/8, ::1")
        ws = gw.open_raw("/ws/p?subscribe-broadcast", headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.7"})
        port = ws.sock.getsockname()[1]
        opened = h.wait_until(lambda: events(gw, "conn_open"), 5, what="conn_open")[-1]
        assert opened["peer"] == "198.51.100.7" and opened["via"] == f"127.0.0.1:{port}", opened
        path, headers = auth.requests[-1]
        assert headers["X-Real-IP"] == "198.51.100.7"
        assert headers["X-Forwarded-For"] == "6.6.6.6, 198.51.100.7, 127.0.0.1"
        ws.close_handshake()
        closed = h.wait_until(lambda: events(gw, "conn_close"), 5, what="conn_close")[-1]
        assert closed["peer"] == "198.51.100.7" and closed["via"] == f"127.0.0.1:{port}", closed
        # A second header line (added by a proxy) holds the nearest hop; X-Real-IP alone works too.
        head = h.upgrade_request("/ws/p?subscribe-broadcast", headers={"X-Forwarded-For": "6.6.6.6"})
        head = head.replace(b"\r\n\r\n", b"\r\nX-Forwarded-For: 203.0.113.5\r\n\r\n")
        raw = gw.raw()
        assert raw.request(head).status == 101
        assert auth.requests[-1][1]["X-Real-IP"] == "203.0.113.5"
        assert auth.requests[-1][1]["X-Forwarded-For"] == "6.6.6.6, 203.0.113.5, 127.0.0.1"
        gw.open_raw("/ws/p?subscribe-broadcast", headers={"X-Real-IP": "203.0.113.6"})
        assert auth.requests[-1][1]["X-Real-IP"] == "203.0.113.6"
    finally:
        auth.close()


def test_headers_from_an_untrusted_peer_change_nothing(start_gateway):
    auth = AuthServer()
    try:
        gw = start(start_gateway, auth, "10.0.0.0/8")
        ws = gw.open_raw("/ws/p?subscribe-broadcast", headers={"X-Forwarded-For": "198.51.100.7",
                                                               "X-Real-IP": "198.51.100.8"})
        port = ws.sock.getsockname()[1]
        opened = h.wait_until(lambda: events(gw, "conn_open"), 5, what="conn_open")[-1]
        assert opened["peer"] == f"127.0.0.1:{port}" and "via" not in opened, opened
        path, headers = auth.requests[-1]
        assert headers["X-Real-IP"] == "127.0.0.1"
        assert headers["X-Forwarded-For"] == "198.51.100.7, 127.0.0.1"  # passed on, as the client's words
    finally:
        auth.close()


def test_more_than_8_forwarded_lines_are_refused(gateway):
    head = h.upgrade_request("/ws/p").replace(b"\r\n\r\n", b"".join(
        f"\r\nX-Forwarded-For: 10.0.0.{i}".encode() for i in range(9)) + b"\r\n\r\n")
    resp = gateway.raw().request(head)
    assert resp.status == 400, resp


def test_a_bad_trusted_proxies_setting_stops_start_up(run_gateway):
    status, out = run_gateway(WSGATE_TRUSTED_PROXIES="10.0.0.0/8, proxy.example")
    assert status == 2 and "WSGATE_TRUSTED_PROXIES: not an IP address" in out, (status, out)
