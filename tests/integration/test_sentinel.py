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
                           WSGATE_REDIS_TIMEOUT="500ms", WSGATE_STREAMS="broadcast:hastream")
        ws = gw.open_raw("/ws/ha?subscribe-broadcast&publish-broadcast")
        stream = gw.open_raw("/ws/hastream?subscribe-broadcast")  # a stream channel, read by its own link
        m = redis_py.Redis(port=master_port)
        h.wait_until(lambda: m.pubsub_numsub("broadcast:ha")[0][1] == 1, 10, what="subscribed on the master")
        m.publish("broadcast:ha", "from the first master")
        assert ws.recv_text() == "from the first master"
        gw.wait_log(r"event=stream_followed channel=broadcast:hastream")
        m.xadd("broadcast:hastream", {"payload": "entry on the first master"})
        assert stream.recv_text() == "entry on the first master"

        master.kill()
        master.wait()
        r = redis_py.Redis(port=replica_port)
        h.wait_until(lambda: _role(r) == b"master", 30, what="the replica promoted")
        h.wait_until(lambda: r.pubsub_numsub("broadcast:ha")[0][1] == 1, 20, what="resubscribed on the new master")
        r.publish("broadcast:ha", "from the new master")
        assert ws.recv_text(10) == "from the new master"
        # The stream reader follows the new master too, and reads on after the last entry it delivered.
        r.xadd("broadcast:hastream", {"payload": "entry on the new master"})
        assert stream.recv_text(10) == "entry on the new master"
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


def _role(r):
    """The server's role, or None while it cannot be asked (a sentinel's failover kills normal clients)."""
    try:
        return r.execute_command("ROLE")[0]
    except redis_py.exceptions.ConnectionError:
        return None


def _sentinel_has_replica(s):
    try:
        return len(s.execute_command("SENTINEL", "REPLICAS", "mymaster")) > 0
    except redis_py.RedisError:
        return False


def test_authenticated_sentinels(start_gateway):
    """A master with a password, one sentinel with a password of its own and one without any: the sentinels'
    password (WSGATE_REDIS_SENTINEL_PASSWORD), the URL's credentials tried on a sentinel that wants none, and a
    clear refusal when the sentinel's password is missing."""
    master_port, locked_port, open_port = h.free_port(), h.free_port(), h.free_port()
    work = tempfile.mkdtemp(prefix="wsgate-sentinel-auth-", dir=h.ARTIFACTS)
    log = open(os.path.join(work, "servers.log"), "wb")
    procs = []
    try:
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]
        procs.append(spawn(["redis-server", "--port", str(master_port), "--dir", work, "--requirepass", "masterpw"]
                           + common, log))
        h.wait_until(lambda: _ping_auth(master_port, "masterpw"), 10, what="the master")
        for port, extra in ((locked_port, "requirepass sentinelpw\n"), (open_port, "")):
            conf = os.path.join(work, f"sentinel-{port}.conf")
            with open(conf, "w") as f:
                f.write(f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {work}\n{extra}"
                        f"sentinel monitor mymaster 127.0.0.1 {master_port} 1\n"
                        "sentinel auth-pass mymaster masterpw\n")
            procs.append(spawn(["redis-server", conf, "--sentinel"], log))
        locked = redis_py.Redis(port=locked_port, password="sentinelpw", socket_timeout=1)
        h.wait_until(lambda: _master_known(locked), 10, what="the locked sentinel")
        h.wait_until(lambda: _master_known(redis_py.Redis(port=open_port, socket_timeout=1)), 10,
                     what="the open sentinel")
        m = redis_py.Redis(port=master_port, password="masterpw")

        def roundtrip(gw, facility):
            ws = gw.open_raw(f"/ws/{facility}?subscribe-broadcast")
            h.wait_until(lambda: m.pubsub_numsub(f"broadcast:{facility}")[0][1] >= 1, 10, what="subscribed")
            m.publish(f"broadcast:{facility}", "through an authenticated sentinel")
            assert ws.recv_text() == "through an authenticated sentinel"

        # The sentinel's own password, the master's in the URL.
        gw = start_gateway(REDIS_URL=f"redis-sentinel://:masterpw@127.0.0.1:{locked_port}/mymaster",
                           WSGATE_REDIS_SENTINEL_PASSWORD="sentinelpw")
        roundtrip(gw, "locked")
        assert "wsgate-sentinel-watch" in [c["name"] for c in locked.client_list()]
        # A sentinel that wants no password, with the master's password in the URL (tried, and not needed).
        gw2 = start_gateway(REDIS_URL=f"redis-sentinel://:masterpw@127.0.0.1:{open_port}/mymaster")
        roundtrip(gw2, "open")
        # A dead sentinel first in the list: the next one is asked in the same attempt.
        dead = h.free_port()
        started = time.monotonic()
        gw4 = start_gateway(REDIS_URL=f"redis-sentinel://:masterpw@127.0.0.1:{dead},127.0.0.1:{open_port}/mymaster")
        roundtrip(gw4, "second")
        assert time.monotonic() - started < 3
        # The locked sentinel without its password: refused, and the log says so.
        gw3 = start_gateway(REDIS_URL=f"redis-sentinel://:masterpw@127.0.0.1:{locked_port}/mymaster",
                            WSGATE_REDIS_TIMEOUT="500ms")
        line = gw3.wait_log(r"event=redis_down.*").group(0)
        assert "AUTH" in line and "sentinel" in line, line
        assert gw3.admin_get("/readyz")[0] == 503
        # `wsgate publish` reads the same variables.
        status, out, err = run_publish("--facility", "locked", "--broadcast", "m",
                                       REDIS_URL=f"redis-sentinel://:masterpw@127.0.0.1:{locked_port}/mymaster",
                                       WSGATE_REDIS_SENTINEL_PASSWORD="sentinelpw")
        assert status == 0, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
        log.close()


def _ping_auth(port, password):
    try:
        return redis_py.Redis(port=port, password=password, socket_timeout=0.5).ping()
    except redis_py.RedisError:
        return False


def _master_known(s):
    try:
        return s.execute_command("SENTINEL", "get-master-addr-by-name", "mymaster") is not None
    except redis_py.RedisError:
        return False
