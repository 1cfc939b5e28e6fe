"""Recovery from a Redis outage: the first reconnect comes at once and the backoff stays short, so deliveries
resume within a second of Redis accepting connections again; the outage is logged with its length."""

import threading
import time

import harness as h
from test_logs import parse_logfmt


def test_deliveries_resume_within_a_second_of_redis_coming_back(start_gateway, redis_server):
    gw = start_gateway()
    clients = [gw.open_raw("/ws/rec?subscribe-broadcast") for _ in range(20)]
    h.wait_until(lambda: h.numsub("broadcast:rec") >= 1, 5, what="subscribed")
    redis_server.kill()  # as a crash would
    time.sleep(2.0)
    redis_server.start()  # returns once it answers PING
    back = time.monotonic()
    # Publish a numbered message every 50 ms from the moment Redis is back; the first number each client gets
    # says when deliveries had resumed for it, whatever the time it takes this test to read.
    sent_at, stop = {}, threading.Event()

    def publish():
        r = redis_server.new_client()
        i = 0
        while not stop.is_set() and i < 100:
            sent_at[i] = time.monotonic()
            r.publish("broadcast:rec", str(i))
            i += 1
            stop.wait(0.05)

    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        firsts = [int(ws.recv_text(timeout=6)) for ws in clients]
    finally:
        stop.set()
        publisher.join(5)
    resumed = max(sent_at[i] for i in firsts) - back
    assert resumed < 1.0, f"deliveries resumed {resumed:.2f} s after Redis was back (first messages {firsts})"
    ups = [e for e in map(parse_logfmt, gw.log_text().splitlines())
           if e.get("event") == "redis_up" and "outage_ms" in e]
    assert any(e.get("role") == "subscriber" and int(e["outage_ms"]) >= 2000 for e in ups), ups


def test_a_connection_cut_by_redis_is_back_at_once(start_gateway, redis_server):
    """CLIENT KILL (as Redis does past a client-output-buffer-limit): the first attempt comes at once, not
    after a backoff."""
    gw = start_gateway(WSGATE_WORKERS="1")
    ws = gw.open_raw("/ws/cut?subscribe-broadcast")
    h.wait_numsub("broadcast:cut", 1)
    r = redis_server.client()
    killed = time.monotonic()
    r.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    h.wait_until(lambda: h.numsub("broadcast:cut") == 1, 2,
                 interval=0.005, what="resubscribed")
    took = time.monotonic() - killed
    # The backoff would start at 100 ms (-20%): well under it means the first attempt came at once.
    assert took < 0.07, f"resubscribed {took * 1000:.0f} ms after the cut"
    r.publish("broadcast:cut", "after the cut")
    assert ws.recv_text() == "after the cut"
