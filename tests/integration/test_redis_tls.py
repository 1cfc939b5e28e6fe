"""TLS to Redis (rediss://): a real redis-server speaking only TLS, with a CA made in the test; the server's
certificate and name verified, client certificates, a restart under TLS, and clear failures."""

import os
import time

import harness as h
from test_publish_cli import run_publish
from test_logs import parse_logfmt
from tls_ca import CertAuthority


def tls_redis(ca, auth_clients=False, args=()):
    server = h.RedisServer(tls=ca.redis_tls(auth_clients), args=args,
                           log_path=os.path.join(h.ARTIFACTS, f"redis-tls-{h.free_port()}.log"))
    server.start()
    return server


def events(gw, name):
    return [e for e in map(parse_logfmt, gw.log_text().splitlines()) if e.get("event") == name]


def roundtrip(gw, server, facility="tls"):
    """A Redis PUBLISH reaches a client, and the client's publish reaches Redis (PUBLISH and SETEX)."""
    ws = gw.open_raw(f"/ws/{facility}?subscribe-broadcast&publish-broadcast&echo")
    r = server.client()
    h.wait_until(lambda: r.pubsub_numsub(f"broadcast:{facility}")[0][1] >= 1, 10, what="subscribed over TLS")
    r.publish(f"broadcast:{facility}", "from redis over TLS")
    assert ws.recv_text() == "from redis over TLS"
    ws.send_text("from the client over TLS")
    assert ws.recv_text() == "from the client over TLS"
    h.wait_until(lambda: r.get(f"broadcast:{facility}") == b"from the client over TLS", 5, what="SETEX over TLS")
    return ws


def test_rediss_with_a_private_ca(start_gateway):
    ca = CertAuthority()
    server = tls_redis(ca)
    try:
        gw = start_gateway(REDIS_URL=server.url, WSGATE_REDIS_TLS_CA=ca.ca)
        roundtrip(gw, server)
        # Both links of every worker are TLS clients of this server (the plain port is closed).
        names = [c["name"] for c in server.client().client_list()]
        assert names.count("wsgate-sub") >= 1 and names.count("wsgate-cmd") >= 1, names
        assert events(gw, "insecure_config") == []
    finally:
        server.stop()


def test_rediss_by_name_with_a_password_and_a_database(start_gateway):
    ca = CertAuthority()
    server = tls_redis(ca)
    try:
        server.client().config_set("requirepass", "s3cret")
        r = h.redis_py.Redis(port=server.port, password="s3cret", **server._client_kwargs())
        gw = start_gateway(REDIS_URL=f"rediss://:s3cret@localhost:{server.port}/3", WSGATE_REDIS_TLS_CA=ca.ca)
        ws = gw.open_raw("/ws/db3?subscribe-broadcast&publish-broadcast")
        h.wait_until(lambda: r.pubsub_numsub("broadcast:db3")[0][1] == 1, 10, what="subscribed")
        ws.send_text("stored in db 3")
        r3 = h.redis_py.Redis(port=server.port, password="s3cret", db=3, **server._client_kwargs())
        h.wait_until(lambda: r3.get("broadcast:db3") == b"stored in db 3", 5, what="SETEX in db 3")
    finally:
        server.stop()


def test_an_unknown_ca_is_refused_and_says_why(start_gateway):
    ca = CertAuthority()
    server = tls_redis(ca)
    try:
        gw = start_gateway(REDIS_URL=server.url, WSGATE_REDIS_TIMEOUT="500ms")
        gw.wait_log(r"event=redis_down")
        down = events(gw, "redis_down")
        assert any("certificate verify failed" in e.get("why", "") for e in down), down
        assert gw.admin_get("/readyz")[0] == 503
        assert not [c for c in server.client().client_list() if c["name"].startswith("wsgate")]
    finally:
        server.stop()


def test_a_certificate_for_another_name_is_refused(start_gateway):
    ca = CertAuthority(names=("DNS:redis.example.internal",))
    server = tls_redis(ca)
    try:
        gw = start_gateway(REDIS_URL=server.url, WSGATE_REDIS_TLS_CA=ca.ca, WSGATE_REDIS_TIMEOUT="500ms")
        gw.wait_log(r"event=redis_down")
        assert any("IP address mismatch" in e.get("why", "") for e in events(gw, "redis_down"))
        gw.stop()
        # The name the certificate carries, given as the name to verify (a managed Redis reached by address).
        gw2 = start_gateway(REDIS_URL=server.url, WSGATE_REDIS_TLS_CA=ca.ca,
                            WSGATE_REDIS_TLS_SNI="redis.example.internal")
        roundtrip(gw2, server)
    finally:
        server.stop()


def test_verification_can_be_turned_off_with_a_warning(start_gateway):
    ca = CertAuthority()
    server = tls_redis(ca)
    try:
        gw = start_gateway(REDIS_URL=server.url, WSGATE_REDIS_TLS_VERIFY="0")
        roundtrip(gw, server)
        warned = events(gw, "insecure_config")
        assert warned and "WSGATE_REDIS_TLS_VERIFY=0" in warned[0]["msg"], warned
    finally:
        server.stop()


def test_client_certificates(start_gateway):
    ca = CertAuthority()
    server = tls_redis(ca, auth_clients=True)
    try:
        gw = start_gateway(REDIS_URL=server.url, WSGATE_REDIS_TLS_CA=ca.ca, WSGATE_REDIS_TLS_CERT=ca.client_cert,
                           WSGATE_REDIS_TLS_KEY=ca.client_key)
        roundtrip(gw, server)
        gw.stop()
        gw2 = start_gateway(REDIS_URL=server.url, WSGATE_REDIS_TLS_CA=ca.ca, WSGATE_REDIS_TIMEOUT="500ms")
        gw2.wait_log(r"event=redis_down")
        assert gw2.admin_get("/readyz")[0] == 503
    finally:
        server.stop()


def test_a_restart_of_redis_under_tls_is_followed(start_gateway):
    ca = CertAuthority()
    server = tls_redis(ca)
    try:
        gw = start_gateway(REDIS_URL=server.url, WSGATE_REDIS_TLS_CA=ca.ca)
        ws = roundtrip(gw, server)
        server.restart()
        r = server.client()
        h.wait_until(lambda: r.pubsub_numsub("broadcast:tls")[0][1] >= 1, 10, what="resubscribed over TLS")
        r.publish("broadcast:tls", "after the restart")
        assert ws.recv_text() == "after the restart"
    finally:
        server.stop()


def test_large_messages_over_tls(start_gateway):
    """Messages larger than a TLS record (16 KiB) and than a read batch, both ways."""
    ca = CertAuthority()
    server = tls_redis(ca)
    try:
        gw = start_gateway(REDIS_URL=server.url, WSGATE_REDIS_TLS_CA=ca.ca, WSGATE_MAX_PAYLOAD="2MiB",
                           WSGATE_MAX_PENDING="8MiB")
        ws = gw.open_raw("/ws/big?subscribe-broadcast&publish-broadcast&echo")
        r = server.client()
        h.wait_until(lambda: r.pubsub_numsub("broadcast:big")[0][1] == 1, 10, what="subscribed")
        big = "x" * (1 << 20) + "end"
        r.publish("broadcast:big", big)
        assert ws.recv_text(timeout=10) == big
        for i in range(50):
            r.publish("broadcast:big", f"{i}:" + "y" * 40000)
        for i in range(50):
            assert ws.recv_text(timeout=10).startswith(f"{i}:")
        ws.send_text(big)
        assert ws.recv_text(timeout=10) == big
    finally:
        server.stop()


def test_rediss_settings_are_checked_at_start():
    ca = CertAuthority()
    code, out = h.run_gateway(REDIS_URL="rediss://127.0.0.1:1/0", WSGATE_REDIS_TLS_CA="/nonexistent/ca.pem")
    assert code == 2 and "/nonexistent/ca.pem" in out, out
    code, out = h.run_gateway(REDIS_URL="redis://127.0.0.1:1/0", WSGATE_REDIS_TLS_CA=ca.ca)
    assert code == 2 and "WSGATE_REDIS_TLS_CA is set but REDIS_URL is not rediss://" in out, out
    code, out = h.run_gateway(REDIS_URL="rediss://127.0.0.1:1/0", WSGATE_REDIS_TLS_CERT=ca.ca,
                              WSGATE_REDIS_TLS_KEY=ca.client_key)
    assert code == 2 and "private key" in out, out


def test_rediss_sentinel_finds_the_master_over_tls(start_gateway):
    """The sentinel and the master it names both speak only TLS."""
    import subprocess
    import tempfile
    ca = CertAuthority()
    master = tls_redis(ca)
    work = tempfile.mkdtemp(prefix="wsgate-tls-sentinel-", dir=h.ARTIFACTS)
    port = h.free_port()
    conf = os.path.join(work, "sentinel.conf")
    with open(conf, "w") as f:
        f.write(f"port 0\ntls-port {port}\nbind 127.0.0.1\ndaemonize no\ndir {work}\n"
                f"tls-cert-file {ca.cert}\ntls-key-file {ca.key}\ntls-ca-cert-file {ca.ca}\n"
                "tls-auth-clients no\ntls-replication yes\n"
                f"sentinel monitor mymaster 127.0.0.1 {master.port} 1\n")
    log = open(os.path.join(work, "sentinel.log"), "wb")
    sentinel = subprocess.Popen(["redis-server", conf, "--sentinel"], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        s = h.redis_py.Redis(port=port, ssl=True, ssl_ca_certs=ca.ca, socket_timeout=1)
        h.wait_until(lambda: _master_known(s), 10, what="the sentinel to answer over TLS")
        gw = start_gateway(REDIS_URL=f"rediss-sentinel://127.0.0.1:{port}/mymaster", WSGATE_REDIS_TLS_CA=ca.ca)
        roundtrip(gw, master, "sentinel-tls")
        names = [c["name"] for c in s.client_list()]
        assert "wsgate-sentinel-watch" in names, names  # the +switch-master subscription, over TLS too
    finally:
        sentinel.terminate()
        sentinel.wait(5)
        log.close()
        master.stop()


def _master_known(s):
    try:
        return s.execute_command("SENTINEL", "get-master-addr-by-name", "mymaster") is not None
    except h.redis_py.RedisError:
        return False


def test_wsgate_publish_over_tls():
    ca = CertAuthority()
    server = tls_redis(ca)
    try:
        sub = server.client().pubsub()
        sub.subscribe("broadcast:cli")
        assert sub.get_message(timeout=5)["type"] == "subscribe"
        status, out, err = run_publish("--facility", "cli", "--broadcast", "over TLS from the command line",
                                       REDIS_URL=server.url, WSGATE_REDIS_TLS_CA=ca.ca)
        assert status == 0 and "channel=broadcast:cli receivers=1" in out, (status, out, err)
        m = sub.get_message(timeout=5)
        assert m and m["data"] == b"over TLS from the command line", m
        assert server.client().get("broadcast:cli") == b"over TLS from the command line"
        status, out, err = run_publish("--facility", "cli", "--broadcast", "m", REDIS_URL=server.url)
        assert status == 1 and "certificate verify failed" in err, (status, err)
        sub.close()
    finally:
        server.stop()
