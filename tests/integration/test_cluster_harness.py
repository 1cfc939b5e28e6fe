"""The Redis Cluster harness (cluster.py) itself: a 3-master, 3-replica cluster covers every slot, sharded
pub/sub works on a slot's owner, a migrated slot makes the old owner answer ASK then MOVED, a killed master is
replaced by its replica, and TLS clusters work too. No gateway: these check the ground other tests stand on."""

import time

import redis as redis_py

import harness as h
import tls_ca
from cluster import RedisClusterServers, ShardSubscriber, key_slot


def error_of(fn):
    """The text of the Redis error `fn()` raises (fails when it raises none)."""
    try:
        got = fn()
    except redis_py.exceptions.ResponseError as e:
        return str(e)
    raise h.HarnessError(f"expected a Redis error, got {got!r}")


def assert_all_stopped(cluster):
    alive = [p for p in cluster.ports if cluster.is_running(p)]
    assert not alive, f"nodes still running after stop(): {alive}"


def test_slots_sharded_pubsub_and_a_migration():
    cluster = RedisClusterServers(masters=3, replicas=1)
    try:
        assert len(cluster.ports) == 6
        masters = cluster.masters()
        assert len(masters) == 3, masters
        for m in masters:
            assert len(cluster.replicas_of(m)) == 1, (m, cluster.nodes())
        # Every slot exactly once, by the three masters.
        smap = cluster.slot_map()
        assert smap[0][0] == 0 and smap[-1][1] == 16383, smap
        assert all(a[1] + 1 == b[0] for a, b in zip(smap, smap[1:])), smap
        assert sorted({p for _, _, p in smap}) == masters, (smap, masters)
        assert cluster.seed_url() == f"redis-cluster://127.0.0.1:{cluster.ports[0]},127.0.0.1:{cluster.ports[1]}"

        # The harness's slots agree with the cluster's.
        node = cluster.node(masters[0])
        for key in ("foo", "bar", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", b"a\x00b", ""):
            assert key_slot(key) == node.execute_command("CLUSTER", "KEYSLOT", key), key
        assert key_slot("foo") == 12182

        # Sharded pub/sub between two connections on the owner of the channel's slot.
        channel = "broadcast:harness"
        slot = key_slot(channel)
        owner = cluster.node_for_slot(slot)
        sub = cluster.ssubscribe(channel)
        assert sub.port == owner
        assert cluster.spublish(channel, "one") == 1
        assert sub.get() == (channel.encode(), b"one")
        other = next(m for m in masters if m != owner)
        assert error_of(lambda: ShardSubscriber(cluster, other, "SSUBSCRIBE", [channel])).startswith(
            f"MOVED {slot} 127.0.0.1:{owner}")
        # The cluster client follows the slots by itself.
        client = cluster.client()
        client.set(channel, "stored")
        assert cluster.get(channel) == b"stored"

        # A migration, step by step: ASK for a key the old owner no longer has, then MOVED.
        absent = "{broadcast:harness}:absent"
        assert key_slot(absent) == slot
        assert cluster.begin_slot_migration(slot, other) == owner
        assert error_of(lambda: cluster.node(owner).get(absent)) == f"ASK {slot} 127.0.0.1:{other}"
        assert cluster.node(owner).get(channel) == b"stored"  # still there, still served
        assert cluster.move_slot_keys(slot, owner, other) == 1
        assert error_of(lambda: cluster.node(owner).get(channel)) == f"ASK {slot} 127.0.0.1:{other}"
        cluster.end_slot_migration(slot, other)
        cluster.wait_slot_routed(slot, other)
        assert cluster.node_for_slot(slot) == other
        assert error_of(lambda: cluster.node(owner).get(channel)) == f"MOVED {slot} 127.0.0.1:{other}"
        assert cluster.node(other).get(channel) == b"stored"
        assert client.get(channel) == b"stored"
        # The old owner ended the shard subscription; the new owner serves the channel.
        assert sub.get() == (channel.encode(), None)
        sub2 = cluster.ssubscribe(channel)
        assert sub2.port == other
        assert cluster.spublish(channel, "two") == 1
        assert sub2.get() == (channel.encode(), b"two")

        # And back in one call.
        assert cluster.migrate_slot(slot, owner) == other
        assert error_of(lambda: cluster.node(other).get(channel)) == f"MOVED {slot} 127.0.0.1:{owner}"
        assert cluster.get(channel) == b"stored"
        # Classic pub/sub reaches a subscriber on any node.
        classic = cluster.subscribe(channel, port=other)
        assert cluster.publish(channel, "three") >= 0
        assert classic.get() == (channel.encode(), b"three")
    finally:
        cluster.stop()
    assert_all_stopped(cluster)


def test_killed_master_is_replaced_by_its_replica():
    cluster = RedisClusterServers(masters=3, replicas=1)
    try:
        key = "broadcast:failover"
        slot = key_slot(key)
        old = cluster.node_for_slot(slot)
        (replica,) = cluster.replicas_of(old)
        cluster.node(old).set(key, "before")
        assert cluster.node(old).execute_command("WAIT", 1, 2000) == 1  # the replica has it

        start = time.monotonic()
        assert cluster.kill_master_of_slot(slot) == old
        assert not cluster.is_running(old)
        new = cluster.wait_failover(old, timeout=20)
        took = time.monotonic() - start
        print(f"failover took {took:.1f}s")
        assert new == replica, (new, replica)
        assert old not in cluster.masters() and new in cluster.masters()
        assert cluster.get(key) == b"before"
        sub = cluster.ssubscribe(key)
        assert sub.port == new
        assert cluster.spublish(key, "after") == 1
        assert sub.get() == (key.encode(), b"after")

        # The old master, started again, comes back as a replica of the new one.
        cluster.start_node(old)
        h.wait_until(lambda: old in cluster.replicas_of(new), 15, interval=0.05,
                     what=f"{old} to rejoin as a replica of {new}")
    finally:
        cluster.stop()
    assert_all_stopped(cluster)


def test_tls_cluster():
    ca = tls_ca.CertAuthority()
    cluster = RedisClusterServers(masters=3, replicas=1, tls=ca)
    try:
        assert cluster.seed_url().startswith("rediss-cluster://127.0.0.1:")
        # Nothing answers in clear text.
        plain = redis_py.Redis(host="127.0.0.1", port=cluster.ports[0], socket_timeout=1, socket_connect_timeout=1)
        try:
            plain.ping()
            raise AssertionError("a TLS node answered in clear text")
        except redis_py.exceptions.ConnectionError:
            pass
        finally:
            plain.connection_pool.disconnect()
        channel = "broadcast:tls"
        sub = cluster.ssubscribe(channel)
        assert cluster.spublish(channel, "over tls") == 1
        assert sub.get() == (channel.encode(), b"over tls")
        client = cluster.client()
        client.set(channel, "stored")
        assert cluster.get(channel) == b"stored"
        # MIGRATE over the TLS bus, and CLUSTER SLOTS gives the TLS ports.
        slot = key_slot(channel)
        to = next(m for m in cluster.masters() if m != cluster.node_for_slot(slot))
        cluster.migrate_slot(slot, to)
        assert cluster.node(to).get(channel) == b"stored"
        assert {p for _, _, p in cluster.slot_map()} <= set(cluster.ports)
    finally:
        cluster.stop()
    assert_all_stopped(cluster)
