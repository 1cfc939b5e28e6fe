"""Connections to the authorization service: kept alive and reused, retried when the service closed one while
idle, closed after WSGATE_AUTH_KEEPALIVE, and https with the certificate chain and name verified."""

import json
import os
import socket
import ssl
import tempfile
import threading
import time

import harness as h
from tls_ca import CertAuthority
from test_logs import parse_logfmt

IDENTITY = json.dumps({"user": "john", "allow": ["subscribe-broadcast"]}).encode()


def answer(body=IDENTITY, status="200 OK", extra=b""):
    return (b"HTTP/1.1 " + status.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


class ScriptedServer:
    """An HTTP/1.1 service that keeps connections open. `decide(conn_no, request_no)` (both from 0) returns the
    bytes to answer, or None to close the connection without answering. Records every request and every end
    of a connection the gateway caused, with the connection's number."""

    def __init__(self, decide=lambda conn_no, request_no: answer(), tls_context=None):
        self.decide = decide
        self.tls_context = tls_context
        self.events = []  # ("request", conn_no, head) and ("eof", conn_no)
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.conns = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                conn_no = self.conns
                self.conns += 1
            threading.Thread(target=self._serve, args=(conn, conn_no), daemon=True).start()

    def _serve(self, conn, conn_no):
        try:
            if self.tls_context is not None:
                conn.settimeout(5)
                conn = self.tls_context.wrap_socket(conn, server_side=True)
            conn.settimeout(30)
            data = b""
            request_no = 0
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        with self.lock:
                            self.events.append(("eof", conn_no))
                        return
                    data += chunk
                head, data = data.split(b"\r\n\r\n", 1)
                with self.lock:
                    self.events.append(("request", conn_no, head.decode("latin-1")))
                reply = self.decide(conn_no, request_no)
                request_no += 1
                if reply is None:
                    return
                conn.sendall(reply)
        except (OSError, ssl.SSLError):
            with self.lock:
                self.events.append(("error", conn_no))
        finally:
            conn.close()

    def requests(self):
        with self.lock:
            return [e for e in self.events if e[0] == "request"]

    def eofs(self):
        with self.lock:
            return [e[1] for e in self.events if e[0] == "eof"]

    def url(self, scheme="http", host="127.0.0.1"):
        return f"{scheme}://{host}:{self.port}/ws-auth"

    def close(self):
        self.sock.close()


def admitted(gw, path="/ws/f?subscribe-broadcast"):
    ws = gw.raw()
    ws.assert_upgraded(ws.handshake(path))
    return ws


def log_events(gw, name):
    return [e for e in map(parse_logfmt, gw.log_text().splitlines()) if e.get("event") == name]


def test_connections_are_kept_alive_and_reused(start_gateway):
    srv = ScriptedServer()
    try:
        gw = start_gateway(WSGATE_AUTH_URL=srv.url(), WSGATE_AUTH_TIMEOUT="2s", WSGATE_WORKERS="1")
        for _ in range(5):
            admitted(gw).close()
        requests = srv.requests()
        assert len(requests) == 5, requests
        assert {r[1] for r in requests} == {0}, f"one connection carries every request: {requests}"
        assert all("connection: close" not in r[2].lower() for r in requests), requests[0][2]
    finally:
        srv.close()


def test_a_request_on_a_connection_the_service_closed_while_idle_is_sent_again(start_gateway):
    """The service answers once and then closes the connection as the next request arrives (its own idle
    timeout racing the gateway's): that request goes out again on a new connection, and the client never
    notices."""
    srv = ScriptedServer(lambda conn_no, request_no: answer() if request_no == 0 else None)
    try:
        gw = start_gateway(WSGATE_AUTH_URL=srv.url(), WSGATE_AUTH_TIMEOUT="2s", WSGATE_WORKERS="1")
        admitted(gw).close()
        admitted(gw).close()
        conns = [r[1] for r in srv.requests()]
        assert conns == [0, 0, 1], f"the second request was sent on the reused connection, then anew: {conns}"
    finally:
        srv.close()


def test_a_failure_on_a_fresh_connection_is_not_retried(start_gateway):
    srv = ScriptedServer(lambda conn_no, request_no: None)
    try:
        gw = start_gateway(WSGATE_AUTH_URL=srv.url(), WSGATE_AUTH_TIMEOUT="2s", WSGATE_WORKERS="1")
        resp = gw.raw().handshake("/ws/f?subscribe-broadcast")
        assert resp.status == 503, resp
        assert len(srv.requests()) == 1, srv.requests()
        failed = log_events(gw, "auth_callback_failed")
        assert failed and failed[-1]["why"] == "closed by the server", failed
    finally:
        srv.close()


def test_idle_connections_are_closed_after_the_keepalive_time(start_gateway):
    srv = ScriptedServer()
    try:
        gw = start_gateway(WSGATE_AUTH_URL=srv.url(), WSGATE_AUTH_KEEPALIVE="300ms", WSGATE_WORKERS="1")
        admitted(gw).close()
        started = time.monotonic()
        h.wait_until(lambda: srv.eofs() == [0], 3.0, what="the idle connection closed by the gateway")
        assert time.monotonic() - started >= 0.2
        admitted(gw).close()
        assert [r[1] for r in srv.requests()] == [0, 1]
    finally:
        srv.close()


def test_keepalive_0_asks_the_service_to_close(start_gateway):
    srv = ScriptedServer()
    try:
        gw = start_gateway(WSGATE_AUTH_URL=srv.url(), WSGATE_AUTH_KEEPALIVE="0", WSGATE_WORKERS="1")
        admitted(gw).close()
        admitted(gw).close()
        requests = srv.requests()
        assert [r[1] for r in requests] == [0, 1], requests
        assert all("\r\nConnection: close" in r[2] for r in requests), requests[0][2]
    finally:
        srv.close()


def test_a_service_that_asks_to_close_gets_a_new_connection_each_time(start_gateway):
    srv = ScriptedServer(lambda conn_no, request_no: answer(extra=b"Connection: close\r\n"))
    try:
        gw = start_gateway(WSGATE_AUTH_URL=srv.url(), WSGATE_WORKERS="1")
        admitted(gw).close()
        admitted(gw).close()
        assert [r[1] for r in srv.requests()] == [0, 1]
        h.wait_until(lambda: sorted(srv.eofs()) == [0, 1], 3.0, what="both connections closed by the gateway")
    finally:
        srv.close()


def test_clients_that_leave_mid_request_leave_a_reusable_connection(start_gateway):
    """A client that gives up while its request is out: the answer is still read, and the connection serves
    the next client."""
    gate = threading.Event()

    def slow_first(conn_no, request_no):
        if conn_no == 0 and request_no == 0:
            gate.wait(3)
        return answer()

    srv = ScriptedServer(slow_first)
    try:
        gw = start_gateway(WSGATE_AUTH_URL=srv.url(), WSGATE_AUTH_TIMEOUT="3s", WSGATE_WORKERS="1")
        raw = gw.raw()
        raw.send_raw(h.upgrade_request("/ws/f?subscribe-broadcast"))
        h.wait_until(lambda: len(srv.requests()) == 1, 3.0, what="the first request")
        raw.close()
        time.sleep(0.1)
        gate.set()
        time.sleep(0.2)
        admitted(gw).close()
        assert [r[1] for r in srv.requests()] == [0, 0], srv.requests()
    finally:
        srv.close()


def test_shutdown_with_a_request_out_and_idle_connections(start_gateway):
    """SIGTERM while one connection waits for an answer and another is idle: both are closed, nothing leaks
    (the sanitizers watch the exit)."""
    gate = threading.Event()

    def decide(conn_no, request_no):
        if request_no > 0:
            gate.wait(5)
        return answer()

    srv = ScriptedServer(decide)
    try:
        gw = start_gateway(WSGATE_AUTH_URL=srv.url(), WSGATE_AUTH_TIMEOUT="5s", WSGATE_WORKERS="1")
        admitted(gw).close()  # connection 0, idle afterwards
        raw = gw.raw()
        raw.send_raw(h.upgrade_request("/ws/f?subscribe-broadcast"))  # connection 0 again: no answer comes
        h.wait_until(lambda: len(srv.requests()) == 2, 3.0, what="the second request")
        admitted(gw).close()  # connection 1, idle afterwards
        assert [r[1] for r in srv.requests()] == [0, 0, 1], srv.requests()
        started = time.monotonic()
        gw.stop()
        assert time.monotonic() - started < 3, "shutdown did not wait for the authorization service"
    finally:
        gate.set()
        srv.close()


# ---- https ----------------------------------------------------------------------------------------------------


def test_https_with_a_private_ca_is_verified_and_kept_alive(start_gateway):
    ca = CertAuthority()
    srv = ScriptedServer(tls_context=ca.server_context())
    try:
        gw = start_gateway(WSGATE_AUTH_URL=srv.url("https", "localhost"), WSGATE_AUTH_CA=ca.ca,
                           WSGATE_AUTH_TIMEOUT="3s", WSGATE_WORKERS="1")
        ws = admitted(gw)
        h.wait_numsub("broadcast:f", 1)
        h.publish("broadcast:f", "over verified TLS")
        assert ws.recv_text() == "over verified TLS"
        admitted(gw).close()
        assert [r[1] for r in srv.requests()] == [0, 0], "one TLS connection carries both requests"
        assert "Host: localhost:%d" % srv.port in srv.requests()[0][2]
    finally:
        srv.close()


def test_https_by_ip_address_is_checked_against_the_certificate_ip(start_gateway):
    ca = CertAuthority()
    srv = ScriptedServer(tls_context=ca.server_context())
    try:
        gw = start_gateway(WSGATE_AUTH_URL=srv.url("https", "127.0.0.1"), WSGATE_AUTH_CA=ca.ca, WSGATE_WORKERS="1")
        admitted(gw).close()
    finally:
        srv.close()


def test_https_refuses_a_certificate_of_an_unknown_ca(start_gateway):
    ca = CertAuthority()
    srv = ScriptedServer(tls_context=ca.server_context())
    try:
        gw = start_gateway(WSGATE_AUTH_URL=srv.url("https", "localhost"), WSGATE_AUTH_TIMEOUT="3s")
        resp = gw.raw().handshake("/ws/f?subscribe-broadcast")
        assert resp.status == 503, resp
        assert srv.requests() == [], "nothing is sent to an unverified service"
        failed = log_events(gw, "auth_callback_failed")
        assert failed and "certificate verify failed" in failed[-1]["why"], failed
    finally:
        srv.close()


def test_https_refuses_a_certificate_for_another_name(start_gateway):
    ca = CertAuthority(names=("DNS:other.example",))
    srv = ScriptedServer(tls_context=ca.server_context())
    try:
        gw = start_gateway(WSGATE_AUTH_URL=srv.url("https", "localhost"), WSGATE_AUTH_CA=ca.ca)
        resp = gw.raw().handshake("/ws/f?subscribe-broadcast")
        assert resp.status == 503, resp
        assert srv.requests() == []
        failed = log_events(gw, "auth_callback_failed")
        assert failed and "mismatch" in failed[-1]["why"], failed
        gw2 = start_gateway(WSGATE_AUTH_URL=srv.url("https", "127.0.0.1"), WSGATE_AUTH_CA=ca.ca)
        assert gw2.raw().handshake("/ws/f?subscribe-broadcast").status == 503
    finally:
        srv.close()


def test_https_to_a_plain_http_service_fails_cleanly(start_gateway):
    """A plain HTTP server answers the TLS ClientHello with an HTTP 400, as real ones do."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)

    def serve():
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    try:
        gw = start_gateway(WSGATE_AUTH_URL=f"https://127.0.0.1:{sock.getsockname()[1]}/ws-auth",
                           WSGATE_AUTH_TIMEOUT="2s")
        resp = gw.raw().handshake("/ws/f?subscribe-broadcast")
        assert resp.status == 503, resp
        failed = log_events(gw, "auth_callback_failed")
        assert failed and failed[-1]["why"].startswith("TLS handshake"), failed
    finally:
        sock.close()


def test_auth_ca_settings_are_checked_at_start():
    work = tempfile.mkdtemp(prefix="wsgate-ca-")
    bad = os.path.join(work, "not-a-ca.pem")
    with open(bad, "w") as f:
        f.write("not a certificate\n")
    code, out = h.run_gateway(WSGATE_AUTH_URL="https://localhost:1/ws-auth", WSGATE_AUTH_CA=bad)
    assert code == 2 and "WSGATE_AUTH_CA" in out and bad in out, out
    missing = os.path.join(work, "missing.pem")
    code, out = h.run_gateway(WSGATE_AUTH_URL="https://localhost:1/ws-auth", WSGATE_AUTH_CA=missing)
    assert code == 2 and missing in out, out
    code, out = h.run_gateway(WSGATE_AUTH_URL="http://localhost:1/ws-auth", WSGATE_AUTH_CA=bad)
    assert code == 2 and "not https://" in out, out
