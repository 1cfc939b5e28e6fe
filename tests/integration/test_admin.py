"""The admin listener: /metrics in the Prometheus text format, /healthz and /readyz."""

import os
import socket
import subprocess
import time

import harness as h
from harness import with_env


def test_healthz_and_readyz_answer_200(gateway):
    assert gateway.admin_get("/healthz") == (200, "ok\n")
    h.wait_until(lambda: gateway.admin_get("/readyz")[0] == 200, 10, what="/readyz 200")
    assert gateway.admin_get("/nope")[0] == 404


def test_metrics_follow_traffic(gateway):
    h.wait_until(lambda: gateway.admin_get("/readyz")[0] == 200, 10, what="Redis connections up")
    before = gateway.metrics()
    assert before["wsgate_connections_open"] == 0
    assert before['wsgate_redis_connected{role="subscriber"}'] == 1
    sub = gateway.open_raw("/ws/m?subscribe-broadcast")
    pub = gateway.open_raw("/ws/m?publish-broadcast")
    h.wait_numsub("broadcast:m", 1)
    for i in range(5):
        h.publish("broadcast:m", f"r{i}")
    for i in range(5):
        assert sub.recv_text() == f"r{i}"
    pub.send_text("from a client")
    assert sub.recv_text() == "from a client"
    bad = gateway.raw()
    assert bad.request(b"GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n").status == 404

    def settled():
        m = gateway.metrics()
        return m["wsgate_connections_open"] == 2 and m["wsgate_channels"] >= 1 and m
    m = h.wait_until(settled, 5, what="gauges refreshed by the sweep")
    assert m["wsgate_connections_total"] >= before["wsgate_connections_total"] + 3
    assert m['wsgate_messages_received_total{source="redis"}'] >= 6
    assert m['wsgate_messages_received_total{source="client"}'] == 1
    assert m["wsgate_deliveries_total"] >= 6
    assert m["wsgate_bytes_sent_total"] > before["wsgate_bytes_sent_total"]
    assert m["wsgate_bytes_received_total"] > before["wsgate_bytes_received_total"]
    assert m['wsgate_handshakes_refused_total{status="404"}'] == before['wsgate_handshakes_refused_total{status="404"}'] + 1
    assert m['wsgate_delivery_latency_seconds_bucket{le="+Inf"}'] >= 6
    assert m["wsgate_delivery_latency_seconds_count"] == m['wsgate_delivery_latency_seconds_bucket{le="+Inf"}']


@with_env(WSGATE_PING_INTERVAL="100ms", WSGATE_IDLE_TIMEOUT="400ms", WS4REDIS_HEARTBEAT="hb",
          WSGATE_HEARTBEAT_INTERVAL="100ms")
def test_liveness_counters(gateway):
    ws = gateway.open_raw("/ws/lv?subscribe-broadcast")
    h.wait_until(lambda: gateway.metrics()["wsgate_stale_closes_total"] == 1, 5, what="a stale close")
    m = gateway.metrics()
    assert m["wsgate_pings_sent_total"] >= 2
    assert m["wsgate_heartbeats_sent_total"] >= 2


def test_readyz_is_503_while_redis_is_down(gateway, redis_server):
    h.wait_until(lambda: gateway.admin_get("/readyz")[0] == 200, 10, what="/readyz 200")
    redis_server.kill()
    h.wait_until(lambda: gateway.admin_get("/readyz") == (503, "redis unavailable\n"), 10, what="/readyz 503")
    assert gateway.admin_get("/healthz")[0] == 200
    assert gateway.metrics()['wsgate_redis_connected{role="subscriber"}'] == 0
    redis_server.start()
    h.wait_until(lambda: gateway.admin_get("/readyz")[0] == 200, 20, what="/readyz 200 again")
    m = gateway.metrics()
    assert m["wsgate_redis_reconnects_total"] >= 2
    assert m["wsgate_redis_outage_seconds_total"] > 0


@with_env(WSGATE_WORKERS="2")
def test_metrics_sum_over_workers(gateway):
    clients = [gateway.open_raw("/ws/sum?subscribe-broadcast") for _ in range(20)]
    h.wait_until(lambda: gateway.metrics()["wsgate_connections_open"] == 20, 5, what="20 open connections")
    m = gateway.metrics()
    assert m["wsgate_workers"] == 2
    assert m["wsgate_connections_total"] >= 20


def test_health_stays_reachable_under_500_silent_admin_connections(gateway):
    """Silent connections (a port scan, a stuck scraper) cannot keep a health probe out: the oldest silent one
    makes room, and one that sends nothing is dropped after a second."""
    silent = []
    try:
        for _ in range(500):
            s = socket.create_connection(("127.0.0.1", gateway.admin_port), timeout=2)
            silent.append(s)
        for _ in range(3):
            start = time.monotonic()
            status, body = gateway.admin_get("/healthz", timeout=2)
            assert (status, body) == (200, "ok\n")
            assert time.monotonic() - start < 1.0, f"/healthz took {time.monotonic() - start:.2f} s"
        # Every silent connection is closed by the gateway within the read timeout (1 s) plus some slack.
        deadline = time.monotonic() + 5
        for s in silent:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                assert s.recv(1) == b""
            except ConnectionResetError:
                pass
    finally:
        for s in silent:
            s.close()
    assert gateway.admin_get("/healthz")[0] == 200


def test_process_and_build_metrics(gateway):
    m = gateway.metrics()
    assert m["process_cpu_seconds_total"] > 0
    assert 1 << 20 < m["process_resident_memory_bytes"] < 1 << 31
    fds = len(os.listdir(f"/proc/{gateway.pid}/fd"))
    assert abs(m["process_open_fds"] - fds) <= 3, (m["process_open_fds"], fds)
    assert m["process_max_fds"] >= m["process_open_fds"]
    assert abs(m["process_start_time_seconds"] - time.time()) < 120
    version = subprocess.run([h.STATE.bin_path, "--version"], capture_output=True, text=True).stdout.split()[-1]
    assert m[f'wsgate_build_info{{version="{version}"}}'] == 1, [k for k in m if k.startswith("wsgate_build")]


def test_every_dashboard_query_names_a_served_metric(gateway):
    """docker/grafana-dashboard.json: each metric its queries name is one /metrics serves (a renamed metric would
    leave a panel empty without anyone noticing)."""
    import json
    import re
    path = os.path.join(h.ROOT, "docker", "grafana-dashboard.json")
    with open(path) as f:
        dashboard = json.load(f)
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [a["expr"] for a in dashboard.get("annotations", {}).get("list", []) if "expr" in a]
    names = {n for e in exprs for n in re.findall(r"\b((?:wsgate|process)_[a-z0-9_]+)", e)}
    assert len(names) >= 15, names
    series = [line.rsplit(" ", 1)[0] for line in gateway.admin_get("/metrics")[1].splitlines()
              if line and not line.startswith("#")]
    served = {re.split(r"[{ ]", line, 1)[0] for line in series}
    assert names <= served, f"queries name metrics /metrics does not serve: {sorted(names - served)}"
    # Label matchers too: a selector such as role="streams" must pick a series /metrics serves.
    selectors = [(n, m) for e in exprs for n, sel in re.findall(r"\b((?:wsgate|process)_[a-z0-9_]+)\{([^}]*)\}", e)
                 for m in re.findall(r'(\w+)="([^"]*)"', sel)]
    assert selectors, "no label matcher found: the pattern no longer reads the dashboard"
    for name, (label, value) in selectors:
        assert any(s.startswith(name + "{") and f'{label}="{value}"' in s for s in series), \
            f'{name}{{{label}="{value}"}} is not served'
    # The scrape example points at the admin listener compose exposes.
    with open(os.path.join(h.ROOT, "docker", "prometheus.yml")) as f:
        assert '"wsgate:9090"' in f.read()
