"""Stream channels (WSGATE_STREAMS): messages kept in a Redis Stream, the last entry on connect, resume after
`since` with nothing lost or repeated, gap notices, the wsgate.v1 envelope, client publishing with XADD, and
reading on across Redis restarts."""

import json
import os
import socket
import tempfile
import threading
import time

import harness as h
from harness import with_env

STREAMS = {"WSGATE_STREAMS": "broadcast:orders*,user:*:inbox", "WSGATE_ANONYMOUS_PUBLISH": "1"}
V1 = {"Sec-WebSocket-Protocol": "wsgate.v1"}
SUB = "/ws/orders?subscribe-broadcast"


def xadd(r, payload, key="broadcast:orders", maxlen=None):
    kw = {"maxlen": maxlen, "approximate": False} if maxlen else {}
    return r.xadd(key, {"payload": payload}, **kw).decode()


def recv_env(ws, timeout=h.DEFAULT_TIMEOUT):
    return json.loads(ws.recv_text(timeout))


def recv_envs(ws, n, timeout=h.DEFAULT_TIMEOUT):
    deadline = time.monotonic() + timeout
    return [recv_env(ws, max(0.01, deadline - time.monotonic())) for _ in range(n)]


def expect_silence(ws, duration=0.3):
    try:
        msg = ws.recv_message(timeout=duration)
    except h.HarnessError:
        return
    except OSError:
        return
    raise AssertionError(f"unexpected message {msg!r}")


def id_key(entry_id):
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


# -- the last entry, then live ----------------------------------------------------------------------------------

@with_env(**STREAMS)
def test_raw_client_gets_the_last_entry_then_live_ones(gateway, redis):
    for i in range(5):
        xadd(redis, f"old {i}")
    ws = gateway.open_raw(SUB)
    assert ws.recv_text() == "old 4"
    xadd(redis, "live")
    assert ws.recv_text() == "live"
    expect_silence(ws)


@with_env(**STREAMS)
def test_v1_envelopes_carry_channel_and_id_and_pubsub_ids_are_null(gateway, redis):
    first = xadd(redis, "stored")
    ws = gateway.open_raw(SUB, headers=V1)
    assert recv_env(ws) == {"ch": "broadcast:orders", "id": first, "data": "stored"}
    second = xadd(redis, "caf\u00e9 \"quoted\"\n")
    assert recv_env(ws) == {"ch": "broadcast:orders", "id": second, "data": "caf\u00e9 \"quoted\"\n"}
    redis.xadd("broadcast:orders", {"payload": b"\xff\x00binary"})
    env = recv_env(ws)
    assert env["data_b64"] == "/wBiaW5hcnk=" and "data" not in env


@with_env(**STREAMS)
def test_pubsub_channels_beside_streams_are_unchanged_and_enveloped_for_v1(gateway, redis):
    raw = gateway.open_raw("/ws/news?subscribe-broadcast")
    v1 = gateway.open_raw("/ws/news?subscribe-broadcast", headers=V1)
    h.wait_numsub("broadcast:news", 1)
    h.publish("broadcast:news", "hello")
    assert raw.recv_text() == "hello"
    assert recv_env(v1) == {"ch": "broadcast:news", "id": None, "data": "hello"}
    assert redis.type("broadcast:news") in (b"string", b"none")  # ws4redis's stored message, not a stream


def test_subprotocol_v1_is_answered_only_when_offered(start_gateway):
    gw = start_gateway(**STREAMS)
    ws = gw.raw()
    resp = ws.handshake(SUB, headers={"Sec-WebSocket-Protocol": "chat, wsgate.v1"})
    ws.assert_upgraded(resp)
    assert resp.headers.get("sec-websocket-protocol") == "wsgate.v1"
    ws2 = gw.raw()
    resp2 = ws2.handshake(SUB, headers={"Sec-WebSocket-Protocol": "chat"})
    assert resp2.headers.get("sec-websocket-protocol") == "chat"


# -- resume ------------------------------------------------------------------------------------------------------

@with_env(**STREAMS)
def test_since_replays_every_later_entry_in_order_then_live(gateway, redis):
    ids = [xadd(redis, f"m{i}") for i in range(250)]  # more than one page
    ws = gateway.open_raw(f"{SUB}&since={ids[9]}", headers=V1)
    got = recv_envs(ws, 240)
    assert [e["id"] for e in got] == ids[10:]
    assert [e["data"] for e in got] == [f"m{i}" for i in range(10, 250)]
    last = xadd(redis, "live")
    assert recv_env(ws) == {"ch": "broadcast:orders", "id": last, "data": "live"}
    expect_silence(ws)


@with_env(**STREAMS)
def test_since_per_channel_wins_over_the_plain_one(gateway, redis):
    a = [xadd(redis, f"a{i}") for i in range(5)]
    b = [xadd(redis, f"b{i}", key="broadcast:orders2") for i in range(5)]
    # one client, two stream channels: the facility "orders" only names one; use two clients' worth of keys
    ws = gateway.open_raw(f"/ws/orders2?subscribe-broadcast&since={a[0]}&since.broadcast%3Aorders2={b[2]}",
                          headers=V1)
    assert [e["data"] for e in recv_envs(ws, 2)] == ["b3", "b4"]
    expect_silence(ws)


@with_env(**STREAMS)
def test_since_at_the_newest_entry_sends_nothing_until_live(gateway, redis):
    last = [xadd(redis, f"m{i}") for i in range(3)][-1]
    ws = gateway.open_raw(f"{SUB}&since={last}", headers=V1)
    expect_silence(ws)
    xadd(redis, "next")
    assert recv_env(ws)["data"] == "next"


@with_env(**STREAMS)
def test_since_zero_replays_the_whole_stream_without_a_gap(gateway, redis):
    ids = [xadd(redis, f"m{i}") for i in range(5)]
    ws = gateway.open_raw(f"{SUB}&since=0", headers=V1)
    assert [e["id"] for e in recv_envs(ws, 5)] == ids
    expect_silence(ws)


@with_env(**STREAMS)
def test_since_older_than_the_oldest_entry_kept_gets_a_gap_notice_then_the_rest(gateway, redis):
    ids = [xadd(redis, f"m{i}", maxlen=10) for i in range(30)]
    ws = gateway.open_raw(f"{SUB}&since={ids[3]}", headers=V1)
    gap = recv_env(ws)
    assert gap == {"ch": "broadcast:orders", "gap": True, "after": ids[3], "reason": "trimmed"}
    assert [e["id"] for e in recv_envs(ws, 10)] == ids[20:]
    expect_silence(ws)
    gateway.wait_log(r"event=stream_gap .*reason=trimmed")
    m = gateway.metrics()
    assert m['wsgate_stream_gaps_total{reason="trimmed"}'] == 1
    assert m['wsgate_stream_gaps_total{reason="replay_max"}'] == 0
    assert m["wsgate_stream_replayed_total"] == 10
    assert m['wsgate_redis_connected{role="streams"}'] == 1


@with_env(**STREAMS, WSGATE_STREAM_REPLAY_MAX="20")
def test_a_resume_replays_at_most_replay_max_then_a_gap_notice_then_live(gateway, redis):
    ids = [xadd(redis, f"m{i}") for i in range(100)]
    ws = gateway.open_raw(f"{SUB}&since={ids[0]}", headers=V1)
    got = recv_envs(ws, 21)
    assert [e["id"] for e in got[:20]] == ids[1:21]
    assert got[20] == {"ch": "broadcast:orders", "gap": True, "after": ids[20], "reason": "replay_max"}
    expect_silence(ws)
    live = xadd(redis, "live")
    assert recv_env(ws)["id"] == live


@with_env(**STREAMS)
def test_malformed_since_is_refused_with_400(gateway):
    for bad in ["abc", "1-", "-1", "", "1-2-3", "18446744073709551616-0", "1.5"]:
        ws = gateway.raw()
        resp = ws.handshake(f"{SUB}&since={bad}")
        assert resp.status == 400, (bad, resp)
        assert b"since" in resp.body
    gateway.wait_log(r"status=400 why=\"since must be a stream id")


# -- publishing --------------------------------------------------------------------------------------------------

@with_env(**STREAMS, WSGATE_STREAM_MAXLEN="50")
def test_client_messages_on_a_stream_channel_are_xadded_and_trimmed(gateway, redis):
    sub = gateway.open_raw(SUB, headers=V1)
    pub = gateway.open_raw("/ws/orders?publish-broadcast")
    gateway.wait_log(r"event=stream_followed")
    # Without since a client gets the newest entry, then live ones: once it has this first one it is live.
    pub.send_text("start")
    assert recv_env(sub)["data"] == "start"
    got = []
    for i in range(300):
        pub.send_text(f"c{i}")
        if i % 20 == 19:  # in steps of 20 (< MAXLEN): nothing is trimmed before the reader has read it
            got += [recv_env(sub)["data"] for _ in range(20)]
    assert got == [f"c{i}" for i in range(300)]
    entries = redis.xrange("broadcast:orders")
    assert 50 <= len(entries) < 300  # MAXLEN ~ 50 trims whole nodes
    assert entries[-1][1] == {b"payload": b"c299"}
    assert redis.type("broadcast:orders") == b"stream"


@with_env(**STREAMS)
def test_without_echo_own_stream_messages_do_not_come_back(gateway, redis):
    ws = gateway.open_raw("/ws/orders?subscribe-broadcast&publish-broadcast")
    other = gateway.open_raw(SUB)
    time.sleep(0.2)
    ws.send_text("mine")
    assert other.recv_text() == "mine"
    expect_silence(ws)


# -- bad keys and odd entries ------------------------------------------------------------------------------------

@with_env(**STREAMS)
def test_a_key_of_another_type_is_logged_and_other_streams_still_flow(gateway, redis):
    redis.set("broadcast:orders", "a ws4redis stored message")  # not a stream
    bad = gateway.open_raw(SUB)
    good = gateway.open_raw("/ws/orders2?subscribe-broadcast")
    gateway.wait_log(r"event=stream_read_failed .*WRONGTYPE")
    time.sleep(0.2)
    xadd(redis, "fine", key="broadcast:orders2")
    assert good.recv_text() == "fine"
    expect_silence(bad)


@with_env(**STREAMS)
def test_entries_without_a_payload_field_are_skipped(gateway, redis):
    ws = gateway.open_raw(SUB)
    time.sleep(0.2)
    redis.xadd("broadcast:orders", {"other": "x"})
    xadd(redis, "real")
    assert ws.recv_text() == "real"


# -- concurrency: joins while entries pour in --------------------------------------------------------------------

@with_env(**STREAMS, WSGATE_WORKERS="2", WSGATE_STREAM_REPLAY_MAX="10000")
def test_clients_joining_under_traffic_get_every_entry_once_in_order(gateway, redis):
    """A publisher adds 3,000 entries as fast as it can while 30 clients join, each resuming from some entry
    already written: each sees exactly the entries after its resume point, in order."""
    first = [xadd(redis, f"pre{i}") for i in range(20)]
    done = threading.Event()
    written = list(first)

    def publish():
        r = h.STATE.redis_server.new_client()
        for i in range(3000):
            written.append(r.xadd("broadcast:orders", {"payload": f"m{i}"}).decode())
        done.set()

    t = threading.Thread(target=publish)
    t.start()
    clients = []
    try:
        for k in range(30):
            since = written[len(written) // 2] if k % 3 else first[0]
            clients.append((since, gateway.open_raw(f"{SUB}&since={since}", headers=V1)))
            time.sleep(0.01)
    finally:
        t.join(30)
    assert done.is_set()
    for since, ws in clients:
        expected = written[written.index(since) + 1:]
        got = [e["id"] for e in recv_envs(ws, len(expected), timeout=20)]
        assert got == expected, f"since {since}: {len(got)} entries, first difference at " \
                                f"{next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)}"
        expect_silence(ws, 0.1)


# -- Redis restarts ---------------------------------------------------------------------------------------------

def test_redis_killed_and_restarted_with_appendonly_loses_and_repeats_nothing(start_gateway):
    data_dir = tempfile.mkdtemp(prefix="wsgate-aof-")
    srv = h.RedisServer(args=["--appendonly", "yes", "--appendfsync", "always", "--dir", data_dir],
                        log_path=os.path.join(data_dir, "redis.log"))
    srv.start()
    try:
        gw = start_gateway(REDIS_URL=srv.url, WSGATE_WORKERS="2", **STREAMS)
        clients = [gw.open_raw(SUB, headers=V1) for _ in range(6)]
        time.sleep(0.3)
        written = []
        r = srv.new_client()
        for i in range(200):
            written.append(r.xadd("broadcast:orders", {"payload": f"a{i}"}).decode())
        srv.kill()
        time.sleep(0.5)
        srv.start()
        r = srv.new_client()
        for i in range(200):
            written.append(r.xadd("broadcast:orders", {"payload": f"b{i}"}).decode())
            if i % 50 == 0:
                time.sleep(0.05)
        for ws in clients:
            got = [e["id"] for e in recv_envs(ws, len(written), timeout=15)]
            assert got == written
            expect_silence(ws, 0.1)
        gw.wait_log(r"event=redis_up role=streams outage_ms=")
    finally:
        srv.stop()


def test_a_client_resumes_on_another_gateway_without_loss(start_gateway, redis):
    gw1 = start_gateway(**STREAMS)
    gw2 = start_gateway(**STREAMS)
    ws = gw1.open_raw(SUB, headers=V1)
    time.sleep(0.2)
    ids = [xadd(redis, f"m{i}") for i in range(10)]
    got = recv_envs(ws, 10)
    assert [e["id"] for e in got] == ids
    ws.close_handshake()
    more = [xadd(redis, f"n{i}") for i in range(10)]  # while it is away
    ws2 = gw2.open_raw(f"{SUB}&since={got[-1]['id']}", headers=V1)
    assert [e["id"] for e in recv_envs(ws2, 10)] == more
    expect_silence(ws2)


def test_stream_channels_on_a_redis_cluster(start_gateway):
    """Streams on three masters, polled (one XREAD per slot in use): every entry once and in order, resume with
    since, client messages XADDed on their slot's master, a new channel picked up at once."""
    from cluster import RedisClusterServers

    cluster = RedisClusterServers(masters=3, replicas=0)
    try:
        names = [f"orders{i}" for i in range(9)]
        owners = {cluster.node_for_key(f"broadcast:{n}") for n in names}
        assert len(owners) == 3, owners
        gw = start_gateway(REDIS_URL=cluster.seed_url(), WSGATE_WORKERS="2", WSGATE_CLOSE_TIMEOUT="200ms", **STREAMS)
        h.wait_until(lambda: gw.admin_get("/readyz")[0] == 200, 5, what="/readyz 200 before any stream is read")
        clients = {n: gw.open_raw(f"/ws/{n}?subscribe-broadcast&publish-broadcast&echo", headers=V1) for n in names}
        for n in names:
            gw.wait_log(rf"event=stream_followed channel=broadcast:{n}\b")
        written = {n: [] for n in names}
        for i in range(60):
            for n in names:
                node = cluster.node(cluster.node_for_key(f"broadcast:{n}"))
                written[n].append(node.xadd(f"broadcast:{n}", {"payload": f"{n}-{i}"}).decode())
        for n, ws in clients.items():
            assert [e["id"] for e in recv_envs(ws, 60, timeout=15)] == written[n], n
        clients["orders4"].send_text("from a client")
        env = recv_env(clients["orders4"], 10)
        assert env["data"] == "from a client"
        node = cluster.node(cluster.node_for_key("broadcast:orders4"))
        assert node.xrange("broadcast:orders4")[-1][1] == {b"payload": b"from a client"}
        # A resume on the cluster.
        again = gw.open_raw(f"/ws/orders7?subscribe-broadcast&since={written['orders7'][49]}", headers=V1)
        assert [e["id"] for e in recv_envs(again, 10, timeout=10)] == written["orders7"][50:]
        m = gw.metrics()
        assert m['wsgate_redis_connected{role="streams"}'] == 1
        gw.stop()
    finally:
        cluster.stop()


def test_malformed_stream_patterns_are_refused_at_start(run_gateway):
    status, out = run_gateway(WSGATE_STREAMS="broadcast:[abc")
    assert status == 2 and "WSGATE_STREAMS" in out, out


def test_wsgate_publish_adds_to_a_stream_channel_and_publishes_to_others(run_gateway, redis):
    status, out = run_gateway(args=["publish", "--facility", "orders", "--broadcast", "from the CLI"],
                              WSGATE_STREAMS="broadcast:orders*", WSGATE_STREAM_MAXLEN="5")
    assert status == 0, out
    entries = redis.xrange("broadcast:orders")
    assert entries[-1][1] == {b"payload": b"from the CLI"}
    assert f"channel=broadcast:orders id={entries[-1][0].decode()}" in out
    status, out = run_gateway(args=["publish", "--facility", "news", "--broadcast", "plain"],
                              WSGATE_STREAMS="broadcast:orders*")
    assert "channel=broadcast:news receivers=0" in out and redis.get("broadcast:news") == b"plain"


@with_env(**STREAMS)
def test_a_followed_stream_turned_into_a_string_stops_alone(gateway, redis):
    bad = gateway.open_raw(SUB)
    good = gateway.open_raw("/ws/orders2?subscribe-broadcast")
    gateway.wait_log(r"event=stream_followed channel=broadcast:orders2")
    gateway.wait_log(r"event=stream_followed channel=broadcast:orders\b")
    xadd(redis, "one", key="broadcast:orders2")
    assert good.recv_text() == "one"
    redis.delete("broadcast:orders")
    redis.set("broadcast:orders", "not a stream")  # XREAD over both keys now answers WRONGTYPE
    xadd(redis, "two", key="broadcast:orders2")
    assert good.recv_text() == "two"
    gateway.wait_log(r"event=stream_key_wrong_type channel=broadcast:orders type=string")
    xadd(redis, "three", key="broadcast:orders2")
    assert good.recv_text() == "three"
    expect_silence(bad)


@with_env(**STREAMS)
def test_a_resume_of_large_entries_is_paced_by_the_client_not_cut_as_slow(gateway, redis):
    """100 entries of 256 KiB (25 MiB, far over the 4 MiB hard output limit) to replay: a client that reads
    gets them all, because a page holds what fits in half the soft limit and the next one is read only once
    its output has taken the previous one."""
    r = h.STATE.redis_server.new_client()
    first = xadd(r, "start")
    body = "x" * (256 * 1024 - 8)
    pipe = r.pipeline(transaction=False)
    for i in range(100):
        pipe.xadd("broadcast:orders", {"payload": f"{i:07d}:{body}"})
    assert len(pipe.execute()) == 100
    ws = gateway.raw()
    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # a client on a slower network:
    ws.assert_upgraded(ws.handshake(f"{SUB}&since={first}"))
    for i in range(100):
        assert ws.recv_text(timeout=20)[:8] == f"{i:07d}:"
        time.sleep(0.01)  # ... it reads at about 20 MB/s, far slower than Redis hands the entries over
    expect_silence(ws)
    assert gateway.metrics()["wsgate_slow_consumer_closes_total"] == 0


@with_env(**STREAMS)
def test_a_resume_of_entries_over_the_soft_limit_skips_none(gateway, redis):
    """Entries larger than WSGATE_MAX_PENDING may only go to a drained output: the replay sends them one page
    (one entry) at a time, so none is skipped."""
    r = h.STATE.redis_server.new_client()
    first = xadd(r, "start")
    body = "y" * (1536 * 1024)
    for i in range(5):
        r.xadd("broadcast:orders", {"payload": f"{i:07d}:{body}"})
    ws = gateway.open_raw(f"{SUB}&since={first}")
    for i in range(5):
        text = ws.recv_text(timeout=20)
        assert text[:8] == f"{i:07d}:" and len(text) == 8 + len(body)
    expect_silence(ws)
    assert gateway.metrics()["wsgate_oversize_messages_skipped_total"] == 0


@with_env(**STREAMS)
def test_a_resume_after_redis_lost_its_data_gets_a_gap_notice(gateway, redis_server):
    """Redis restarted without persistence: the stream a client resumes in is not the one it read. It is told,
    then gets what the new stream holds."""
    r = redis_server.client()
    seen = [xadd(r, f"old{i}") for i in range(3)]
    redis_server.restart()  # kill -9, then an empty data set
    r = redis_server.client()
    new = [xadd(r, f"new{i}") for i in range(2)]
    ws = gateway.open_raw(f"{SUB}&since={seen[-1]}", headers=V1, timeout=10)
    assert recv_env(ws, 10) == {"ch": "broadcast:orders", "gap": True, "after": seen[-1], "reason": "trimmed"}
    assert [e["id"] for e in recv_envs(ws, 2)] == new
    ws2 = gateway.open_raw("/ws/orders2?subscribe-broadcast&since=1-0", headers=V1)
    assert recv_env(ws2) == {"ch": "broadcast:orders2", "gap": True, "after": "1-0", "reason": "trimmed"}
    expect_silence(ws2)  # no such stream: told, and nothing else


@with_env(**STREAMS)
def test_a_20_mb_entry_reaches_raw_and_v1_clients_whole(gateway, redis):
    raw = gateway.open_raw(SUB)
    v1 = gateway.open_raw(SUB, headers=V1)
    gateway.wait_log(r"event=stream_followed channel=broadcast:orders\b")
    time.sleep(0.2)
    body = os.urandom(10 * 1024 * 1024).hex()  # 20 MiB of text
    entry_id = xadd(h.STATE.redis_server.new_client(), body)
    assert raw.recv_text(timeout=30) == body
    env = recv_env(v1, timeout=30)
    assert env["id"] == entry_id and env["data"] == body
    xadd(redis, "after")
    assert raw.recv_text() == "after"
    assert recv_env(v1)["data"] == "after"


def test_stream_channels_through_a_cluster_master_failover(start_gateway):
    """The master of a stream channel's slot is killed: once its replica has taken over, reading goes on after
    the last entry delivered, so the client gets every entry the replica had (each written with WAIT 1) and
    every later one, in order, none twice; a channel on another master is not held up."""
    from cluster import RedisClusterServers, key_slot

    cluster = RedisClusterServers(masters=3, replicas=1)
    try:
        gw = start_gateway(REDIS_URL=cluster.seed_url(), WSGATE_WORKERS="1", WSGATE_CLOSE_TIMEOUT="200ms", **STREAMS)
        victim = cluster.node_for_key("broadcast:orders")
        other = next(f"orders{i}" for i in range(40) if cluster.node_for_key(f"broadcast:orders{i}") != victim)
        ws = gw.open_raw(SUB, headers=V1)
        safe = gw.open_raw(f"/ws/{other}?subscribe-broadcast", headers=V1)
        gw.wait_log(r"event=stream_followed channel=broadcast:orders\b")
        gw.wait_log(rf"event=stream_followed channel=broadcast:{other}\b")

        def add(key, payload, replicated=False):
            for _ in range(100):  # until the slot's (new) master takes it
                try:
                    node = cluster.node(cluster.node_for_key(key))
                    entry = node.xadd(key, {"payload": payload}).decode()
                    if replicated:  # on the replica too, so that the failover keeps it
                        assert node.execute_command("WAIT", 1, 2000) == 1
                    return entry
                except Exception:  # noqa: BLE001  the master is down or the map is moving
                    time.sleep(0.05)
            raise AssertionError(f"XADD {key} never accepted")

        before = [add("broadcast:orders", f"before {i}", replicated=True) for i in range(20)]
        assert [e["id"] for e in recv_envs(ws, 20)] == before
        cluster.kill_master_of_slot(key_slot("broadcast:orders"))
        safe_id = add(f"broadcast:{other}", "while the master is down")
        assert recv_env(safe, 5)["id"] == safe_id
        cluster.wait_failover(victim)
        after = [add("broadcast:orders", f"after {i}") for i in range(20)]
        assert [e["id"] for e in recv_envs(ws, 20, timeout=15)] == after
        expect_silence(ws)
    finally:
        cluster.stop()
