"""Redis Sentinel: the master is found through a real redis-sentinel, and a failover (master killed, replica
promoted) is followed without disconnecting any client."""

import os
import signal
import subprocess
import tempfile
import time

import redis as redis_py

import harness as h
from test_publish_cli import run_publish


def spawn(args, log):
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_ping(port, timeout=10):
    h.wait_until(lambda: _ping(port), timeout, what=f"redis on {port}")


def _ping(port):
    try:
        return redis_py.Redis(port=port, socket_timeout=0.5).ping()
    except redis_py.RedisError:
        return False


def test_sentinel_discovery_and_failover(start_gateway):
    master_port, replica_port, sentinel_port = h.free_port(), h.free_port(), h.free_port()
    work = tempfile.mkdtemp(prefix="wsgate-sentinel-", dir=h.ARTIFACTS)
    log = open(os.path.join(work, "servers.log"), "wb")
    procs = []
    try:
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]
        master = spawn(["redis-server", "--port", str(master_port), "--dir", work] + common, log)
        procs.append(master)
        wait_ping(master_port)
        replica = spawn(["redis-server", "--port", str(replica_port), "--dir", work,
                         "--replicaof", "127.0.0.1", str(master_port)] + common, log)
        procs.append(replica)
        wait_ping(replica_port)
        conf = os.path.join(work, "sentinel.conf")
        with open(conf, "w") as f:
            f.write(f"port {sentinel_port}\nbind 127.0.0.1\ndaemonize no\ndir {work}\n"
                    f"sentinel monitor mymaster 127.0.0.1 {master_port} 1\n"
                    "sentinel down-after-milliseconds mymaster 500\n"
                    "sentinel failover-timeout mymaster 3000\n")
        sentinel = spawn(["redis-server", conf, "--sentinel"], log)  # what redis-sentinel runs
        procs.append(sentinel)
        s = redis_py.Redis(port=sentinel_port, socket_timeout=1)
        h.wait_until(lambda: _sentinel_has_replica(s), 20, what="the sentinel to see the replica")

        gw = start_gateway(REDIS_URL=f"redis-sentinel://127.0.0.1:{sentinel_port}/mymaster",
                           WSGATE_REDIS_TIMEOUT="500ms")
        ws = gw.open_raw("/ws/ha?subscribe-broadcast&publish-broadcast")
        m = redis_py.Redis(port=master_port)
        h.wait_until(lambda: m.pubsub_numsub("broadcast:ha")[0][1] == 1, 10, what="subscribed on the master")
        m.publish("broadcast:ha", "from the first master")
        assert ws.recv_text() == "from the first master"

        master.kill()
        master.wait()
        r = redis_py.Redis(port=replica_port)
        h.wait_until(lambda: r.execute_command("ROLE")[0] == b"master", 30, what="the replica promoted")
        h.wait_until(lambda: r.pubsub_numsub("broadcast:ha")[0][1] == 1, 20, what="resubscribed on the new master")
        r.publish("broadcast:ha", "from the new master")
        assert ws.recv_text(10) == "from the new master"
        # The client was never disconnected, and what it sends lands on the new master.
        ws.send_text("client after failover")
        h.wait_until(lambda: r.get("broadcast:ha") == b"client after failover", 10, what="SETEX on the new master")
        # `wsgate publish` finds the master through the sentinel too.
        status, out, err = run_publish("--facility", "ha", "--broadcast", "from the command line",
                                       REDIS_URL=f"redis-sentinel://127.0.0.1:{sentinel_port}/mymaster")
        assert status == 0 and "receivers=" in out, err
        assert ws.recv_text(10) == "from the command line"
        assert gw.wait_log(r"event=redis_up role=subscriber")
        h.wait_until(lambda: gw.admin_get("/readyz")[0] == 200, 10, what="/readyz 200")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
        log.close()


def _sentinel_has_replica(s):
    try:
        return len(s.execute_command("SENTINEL", "REPLICAS", "mymaster")) > 0
    except redis_py.RedisError:
        return False
