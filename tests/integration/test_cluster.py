"""Redis Cluster: a real cluster of redis-server nodes (tests/integration/cluster.py). Classic pub/sub (SUBSCRIBE
on any node, unchanged ws4redis backends PUBLISH anywhere) and sharded pub/sub (SSUBSCRIBE on each channel's
master, SPUBLISH); stored messages (GET/SETEX) on their slot's master in both; MOVED after a slot migration;
a master failover under traffic; `wsgate publish` on a cluster."""

import time

import harness as h
from cluster import RedisClusterServers, key_slot
from test_publish_cli import run_publish


def numsub_anywhere(cluster, channel):
    return sum(cluster.node(p).execute_command("PUBSUB", "NUMSUB", channel)[1] for p in cluster.live_ports())


def other_master(cluster, port):
    return next(p for p in cluster.masters() if p != port)


def test_classic_mode_stored_and_live_messages():
    cluster = RedisClusterServers(masters=3, replicas=0)
    gw = None
    try:
        # Channels spread over the three masters.
        names = [f"c{i}" for i in range(12)]
        owners = {cluster.node_for_key(f"broadcast:{n}") for n in names}
        assert len(owners) == 3, owners
        cluster.node(cluster.node_for_key("broadcast:c0")).setex("broadcast:c0", 60, "stored before")
        gw = h.Gateway(env={"WSGATE_CLOSE_TIMEOUT": "200ms", "REDIS_URL": cluster.seed_url(), "WSGATE_ANONYMOUS_PUBLISH": "1"}).start()
        clients = {n: gw.open_raw(f"/ws/{n}?subscribe-broadcast&publish-broadcast&echo") for n in names}
        assert clients["c0"].recv_text() == "stored before"  # GET on the slot's master
        # Classic subscriptions are node-local: count them on every node.
        h.wait_until(lambda: all(numsub_anywhere(cluster, f"broadcast:{n}") == 1 for n in names), 5,
                     what="every channel subscribed on some node")
        # A PUBLISH on one node reaches the gateway's subscriber on any node.
        for n in names:
            cluster.publish(f"broadcast:{n}", f"live {n}")
        for n, ws in clients.items():
            assert ws.recv_text() == f"live {n}", n
        # A client's message: PUBLISH and SETEX on its channel's master.
        clients["c5"].send_text("from a client")
        assert clients["c5"].recv_text() == "from a client"
        h.wait_until(lambda: cluster.get("broadcast:c5") == b"from a client", 5, what="SETEX on the slot's master")
        # One subscriber connection (any node) and one command connection per master.
        names_seen = [c["name"] for p in cluster.masters() for c in cluster.node(p).client_list()]
        assert names_seen.count("wsgate-sub") >= 1 and names_seen.count("wsgate-cmd") >= 3, names_seen
    finally:
        if gw is not None:
            gw.stop()
        cluster.stop()


def test_sharded_mode_subscribes_each_channel_on_its_master():
    cluster = RedisClusterServers(masters=3, replicas=0)
    gw = None
    try:
        names = [f"s{i}" for i in range(12)]
        gw = h.Gateway(env={"WSGATE_CLOSE_TIMEOUT": "200ms", "REDIS_URL": cluster.seed_url(), "WSGATE_REDIS_SHARDED": "1",
                            "WSGATE_ANONYMOUS_PUBLISH": "1", "WSGATE_WORKERS": "1"}).start()
        clients = {n: gw.open_raw(f"/ws/{n}?subscribe-broadcast&publish-broadcast") for n in names}
        for n in names:
            ch = f"broadcast:{n}"
            owner = cluster.node(cluster.node_for_key(ch))
            h.wait_until(lambda: owner.execute_command("PUBSUB", "SHARDNUMSUB", ch)[1] == 1, 5,
                         what=f"{ch} subscribed on its master")
        for n in names:
            assert cluster.spublish(f"broadcast:{n}", f"sharded {n}") == 1
        for n, ws in clients.items():
            assert ws.recv_text() == f"sharded {n}"
        # A plain PUBLISH does not reach sharded subscribers (backends must SPUBLISH in this mode).
        cluster.publish("broadcast:s1", "classic")
        clients["s1"].expect_silence(0.3)
        # A client's message goes out with SPUBLISH on its master (and SETEX there).
        sub = cluster.ssubscribe("broadcast:s7")
        clients["s7"].send_text("spublished by a client")
        got = sub.get(5)
        assert got == (b"broadcast:s7", b"spublished by a client"), got
        h.wait_until(lambda: cluster.get("broadcast:s7") == b"spublished by a client", 5, what="SETEX")
        sub.close()
        # Leaving unsubscribes (SUNSUBSCRIBE on the same master).
        clients["s3"].close()
        owner = cluster.node(cluster.node_for_key("broadcast:s3"))
        h.wait_until(lambda: owner.execute_command("PUBSUB", "SHARDNUMSUB", "broadcast:s3")[1] == 0, 5,
                     what="SUNSUBSCRIBE")
    finally:
        if gw is not None:
            gw.stop()
        cluster.stop()


def test_a_slot_migration_is_followed_in_both_modes():
    """The slot of a channel moves to another master: client messages follow MOVED (SETEX lands on the new
    owner), and in sharded mode Redis's sunsubscribe makes the gateway subscribe on the new owner."""
    cluster = RedisClusterServers(masters=3, replicas=0)
    gws = []
    try:
        ch = "broadcast:moving"
        slot = key_slot(ch)
        classic = h.Gateway(env={"WSGATE_CLOSE_TIMEOUT": "200ms", "REDIS_URL": cluster.seed_url(), "WSGATE_ANONYMOUS_PUBLISH": "1",
                                 "WSGATE_WORKERS": "1"}).start()
        gws.append(classic)
        sharded = h.Gateway(env={"WSGATE_CLOSE_TIMEOUT": "200ms", "REDIS_URL": cluster.seed_url(), "WSGATE_REDIS_SHARDED": "1",
                                 "WSGATE_ANONYMOUS_PUBLISH": "1", "WSGATE_WORKERS": "1"}).start()
        gws.append(sharded)
        writer = classic.open_raw("/ws/moving?publish-broadcast")
        reader = sharded.open_raw("/ws/moving?subscribe-broadcast")
        old = cluster.node_for_slot(slot)
        h.wait_until(lambda: cluster.node(old).execute_command("PUBSUB", "SHARDNUMSUB", ch)[1] == 1, 5)
        writer.send_text("before the move")
        h.wait_until(lambda: cluster.get(ch) == b"before the move", 5, what="SETEX before the move")
        new = other_master(cluster, old)
        cluster.migrate_slot(slot, new)
        assert cluster.node_for_slot(slot) == new
        # Sharded: subscribed again on the new owner.
        h.wait_until(lambda: cluster.node(new).execute_command("PUBSUB", "SHARDNUMSUB", ch)[1] == 1, 5,
                     what="the sharded subscription moved to the new owner")
        assert cluster.spublish(ch, "after the move") == 1
        got = reader.recv_text()
        if got == "before the move":
            # Written with a classic PUBLISH, which sharded subscribers do not get: the key read again after
            # the subscription moved delivers it.
            got = reader.recv_text()
        assert got == "after the move", got
        # Classic gateway's command connection: its old map sends SETEX to the old owner, which answers MOVED.
        writer.send_text("written after the move")
        h.wait_until(lambda: cluster.node(new).get(ch) == b"written after the move", 5,
                     what="SETEX followed MOVED to the new owner")
    finally:
        for gw in gws:
            gw.stop()
        cluster.stop()


def test_a_master_failover_under_traffic():
    """The master of a channel's slot is killed while messages flow: clients stay connected and deliveries
    resume within 2 s of its replica taking over, in both modes."""
    cluster = RedisClusterServers(masters=3, replicas=1)
    gws = []
    try:
        ch = "broadcast:fo"
        classic = h.Gateway(env={"WSGATE_CLOSE_TIMEOUT": "200ms", "REDIS_URL": cluster.seed_url(), "WSGATE_WORKERS": "1"}).start()
        sharded = h.Gateway(env={"WSGATE_CLOSE_TIMEOUT": "200ms", "REDIS_URL": cluster.seed_url(), "WSGATE_REDIS_SHARDED": "1",
                                 "WSGATE_WORKERS": "1"}).start()
        gws += [classic, sharded]
        a = classic.open_raw("/ws/fo?subscribe-broadcast")
        b = sharded.open_raw("/ws/fo?subscribe-broadcast")
        owner = cluster.node_for_key(ch)
        h.wait_until(lambda: cluster.node(owner).execute_command("PUBSUB", "SHARDNUMSUB", ch)[1] == 1, 5)
        h.wait_until(lambda: numsub_anywhere(cluster, ch) == 1, 5, what="the classic subscription")
        cluster.publish(ch, "classic before")
        cluster.spublish(ch, "sharded before")
        assert a.recv_text() == "classic before"
        assert b.recv_text() == "sharded before"
        old = cluster.kill_master_of_slot(key_slot(ch))
        new = cluster.wait_failover(old)
        took_over = time.monotonic()
        got_a = got_b = None
        i = 0
        while (got_a is None or got_b is None) and time.monotonic() - took_over < 5:
            i += 1
            for port in cluster.live_ports():
                try:
                    cluster.node(port).execute_command("PUBLISH", ch, f"classic {i}")
                    break
                except Exception:
                    continue
            cluster.node(new).execute_command("SPUBLISH", ch, f"sharded {i}")
            if got_a is None:
                try:
                    a.recv_text(timeout=0.1)
                    got_a = time.monotonic() - took_over
                except Exception:
                    pass
            if got_b is None:
                try:
                    b.recv_text(timeout=0.1)
                    got_b = time.monotonic() - took_over
                except Exception:
                    pass
        assert got_a is not None and got_a < 2.0, f"classic: deliveries resumed {got_a} s after the takeover"
        assert got_b is not None and got_b < 2.0, f"sharded: deliveries resumed {got_b} s after the takeover"
    finally:
        for gw in gws:
            gw.stop()
        cluster.stop()


def test_wsgate_publish_on_a_cluster():
    cluster = RedisClusterServers(masters=3, replicas=0)
    try:
        # PUBLISH counts the receivers of the node it runs on: subscribe on the channel's master.
        classic = cluster.subscribe("broadcast:cli", port=cluster.node_for_key("broadcast:cli"))
        status, out, err = run_publish("--facility", "cli", "--broadcast", "to a cluster",
                                       REDIS_URL=cluster.seed_url())
        assert status == 0 and "receivers=1" in out, (status, out, err)
        assert classic.get(5) == (b"broadcast:cli", b"to a cluster")
        assert cluster.get("broadcast:cli") == b"to a cluster"
        classic.close()
        sharded = cluster.ssubscribe("broadcast:cli")
        status, out, err = run_publish("--facility", "cli", "--broadcast", "sharded", REDIS_URL=cluster.seed_url(),
                                       WSGATE_REDIS_SHARDED="1")
        assert status == 0 and "receivers=1" in out, (status, out, err)
        assert sharded.get(5) == (b"broadcast:cli", b"sharded")
        sharded.close()
    finally:
        cluster.stop()


def test_sharded_subscriber_is_whole_again_after_a_failover():
    """Sharded mode: the master that carries the gateway's probe channel (wsgate:probe:PID:0) is killed. Once its
    replica has taken over and the channels are subscribed there, the subscriber side is up again (redis_up
    logged, /readyz 200) and the probe channel is subscribed again: probes keep being delivered, so no probe
    failure resubscribes the channels of the masters that never failed, whose clients lose nothing."""
    cluster = RedisClusterServers(masters=3, replicas=1)
    gw = None
    try:
        gw = h.Gateway(env={"WSGATE_CLOSE_TIMEOUT": "200ms", "REDIS_URL": cluster.seed_url(),
                            "WSGATE_REDIS_SHARDED": "1", "WS4REDIS_EXPIRE": "0"}).start()
        probe = f"wsgate:probe:{gw.pid}:0"
        victim = cluster.node_for_key(probe)
        # a channel on another master, and one on the victim
        names = [f"w{i}" for i in range(40)]
        safe = next(n for n in names if cluster.node_for_key(f"broadcast:{n}") != victim)
        lost = next(n for n in names if cluster.node_for_key(f"broadcast:{n}") == victim)
        a = gw.open_raw(f"/ws/{safe}?subscribe-broadcast")
        b = gw.open_raw(f"/ws/{lost}?subscribe-broadcast")
        for n in (safe, lost):
            owner = cluster.node(cluster.node_for_key(f"broadcast:{n}"))
            h.wait_until(lambda: owner.execute_command("PUBSUB", "SHARDNUMSUB", f"broadcast:{n}")[1] == 1, 5)
        h.wait_until(lambda: cluster.node(victim).execute_command("PUBSUB", "SHARDNUMSUB", probe)[1] == 1, 5,
                     what="the probe channel subscribed on its master")
        assert gw.admin_get("/readyz")[0] == 200
        safe_owner = cluster.node(cluster.node_for_key(f"broadcast:{safe}"))
        old = cluster.kill_master_of_slot(key_slot(probe))
        new = cluster.wait_failover(old)
        # The gateway asks for the map every 500 ms while a master is unreachable: within 1 s it has the new one.
        h.wait_until(lambda: gw.admin_get("/readyz")[0] == 200, 1, what="/readyz 200 after the takeover")
        assert "redis_up role=subscriber" in gw.log_text().split("redis_down role=subscriber", 1)[1]
        h.wait_until(lambda: cluster.node(new).execute_command("PUBSUB", "SHARDNUMSUB", probe)[1] == 1, 1,
                     what="the probe channel subscribed on the new master")
        assert cluster.node(new).execute_command("SPUBLISH", f"broadcast:{lost}", "after") == 1
        assert b.recv_text() == "after"
        # Over more than a probe timeout (WSGATE_REDIS_TIMEOUT, 2 s) the channel of a master that never
        # failed gets every message, and no probe fails.
        sent = 0
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            assert safe_owner.execute_command("SPUBLISH", f"broadcast:{safe}", str(sent)) == 1, sent
            sent += 1
            time.sleep(0.02)
        got = [a.recv_text() for _ in range(sent)]
        assert got == [str(i) for i in range(sent)]
        assert "redis_probe_failed" not in gw.log_text()
    finally:
        if gw is not None:
            gw.stop()
        cluster.stop()
