"""The admin listener: /metrics in the Prometheus text format, /healthz and /readyz."""

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
