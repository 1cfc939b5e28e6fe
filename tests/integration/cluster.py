"""A private Redis Cluster for integration tests: redis-server nodes in the foreground on free ports, joined
with `redis-cli --cluster create`, and the moves tests need (slot owners, a failover, a slot migration).

    cluster = RedisClusterServers(masters=3, replicas=1)  # started and ready, or every process stopped
    try:
        gw = start_gateway(REDIS_URL=cluster.seed_url())   # "redis-cluster://127.0.0.1:P1,127.0.0.1:P2"
        slot = cluster.key_slot("broadcast:foo")
        port = cluster.node_for_slot(slot)                  # the master that owns it
        sub = cluster.ssubscribe("broadcast:foo")           # SSUBSCRIBE on that master
        cluster.spublish("broadcast:foo", "hello")          # there too; sub.get() == (b"broadcast:foo", b"hello")
        old = cluster.kill_master_of_slot(slot)             # SIGKILL
        new = cluster.wait_failover(old)                    # a replica promoted, cluster_state:ok
        cluster.migrate_slot(slot, to_port)                 # the old owner answers MOVED from now on
    finally:
        cluster.stop()                                      # every node by PID, always

Each node has a directory of its own under harness.ARTIFACTS (log, nodes-PORT.conf) and is killed if the
thread that started it ends without stopping it (start clusters from the main thread). Nodes are given a
cluster bus port of their own (--cluster-port) rather than port + 10000, which would not exist for the free
ports above 55535. With `tls` (a tls_ca.CertAuthority) every node speaks only TLS, on the client port, the
cluster bus and replication alike; the clients made here trust the CA. Every wait is bounded and fails with
harness.HarnessError.
"""

import binascii
import ctypes
import logging
import os
import signal
import subprocess
import tempfile
import time

import redis as redis_py
from redis.cluster import ClusterNode, RedisCluster

import harness as h

# RedisCluster logs every MOVED and ASK it follows with a traceback; with no handler configured Python prints
# them on stderr. Following redirections is its job, not news.
logging.getLogger("redis.cluster").addHandler(logging.NullHandler())
logging.getLogger("redis.cluster").propagate = False

SLOTS = 16384
_REDIS_ERRORS = (redis_py.exceptions.RedisError, OSError)
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """In the child before exec: SIGKILL when the process (thread) that started it ends, so that a test run
    killed outright leaves no node behind."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def key_slot(key):
    """The hash slot of `key` (str or bytes): CRC16 (XMODEM) of the key, or of its hash tag, mod 16384."""
    if isinstance(key, str):
        key = key.encode()
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return binascii.crc_hqx(key, 0) % SLOTS


def parse_nodes(text):
    """CLUSTER NODES text as a list of dicts: id, port, flags (set), master (id or None), slots (list of
    (first, last)), migrating/importing entries ignored."""
    if isinstance(text, bytes):
        text = text.decode()
    nodes = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        addr = parts[1].split("@")[0]
        slots = []
        for s in parts[8:]:
            if s.startswith("["):
                continue  # a slot being migrated or imported
            first, _, last = s.partition("-")
            slots.append((int(first), int(last or first)))
        nodes.append({"id": parts[0], "port": int(addr.rsplit(":", 1)[1]), "flags": set(parts[2].split(",")),
                      "master": None if parts[3] == "-" else parts[3], "link": parts[7], "slots": slots})
    return nodes


class RedisClusterServers:
    """masters * (1 + replicas) redis-server processes forming one cluster on 127.0.0.1."""

    def __init__(self, masters=3, replicas=1, tls=None, node_timeout_ms=1000, args=(), timeout=30.0):
        """Starts the nodes, creates the cluster and waits (up to `timeout` s) until every node says
        cluster_state:ok and every master has its replicas in sync. On failure stops everything it started.
        `tls`: a tls_ca.CertAuthority; `args`: more redis-server arguments for every node."""
        if masters < 3:
            raise ValueError("redis-cli --cluster create needs at least 3 masters")
        self.nmasters = masters
        self.nreplicas = replicas
        self.tls = tls
        self.node_timeout_ms = node_timeout_ms
        self.args = list(args)
        os.makedirs(h.ARTIFACTS, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="cluster-", dir=h.ARTIFACTS)
        self.ports = []
        self.bus_ports = {}
        self.procs = {}  # port -> Popen
        self._clients = []
        self._node_clients = {}  # (port, socket timeout) -> redis.Redis
        self._killed_slots = {}  # port of a killed master -> the slot ranges it had
        taken = set()
        while len(self.ports) < masters * (1 + replicas):
            port, bus = h.free_port(), h.free_port()
            if port == bus or port in taken or bus in taken:
                continue
            taken.update((port, bus))
            self.ports.append(port)
            self.bus_ports[port] = bus
        try:
            deadline = time.monotonic() + timeout
            for port in self.ports:
                self.start_node(port)
            for port in self.ports:
                h.wait_until(lambda: self._ping(port), max(0.1, deadline - time.monotonic()),
                             what=f"cluster node {port} to answer PING")
            self._create(max(1.0, deadline - time.monotonic()))
            h.wait_until(self._is_ready, max(0.1, deadline - time.monotonic()), interval=0.05,
                         what="every node to say cluster_state:ok with every replica in sync")
        except BaseException as e:
            logs = "\n".join(f"--- node {p} ---\n{h.tail(self.log_text(p), 8)}" for p in self.ports)
            self.stop()
            if isinstance(e, h.HarnessError):
                raise h.HarnessError(f"{e}\n{logs}") from None
            raise

    # Processes ---------------------------------------------------------------------------------------------

    def node_dir(self, port):
        return os.path.join(self.dir, str(port))

    def log_path(self, port):
        return os.path.join(self.node_dir(port), "redis.log")

    def log_text(self, port):
        try:
            with open(self.log_path(port), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def _command(self, port):
        d = self.node_dir(port)
        cmd = ["redis-server", "--cluster-enabled", "yes", "--cluster-config-file",
               os.path.join(d, f"nodes-{port}.conf"), "--cluster-port", str(self.bus_ports[port]),
               "--cluster-node-timeout", str(self.node_timeout_ms), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--daemonize", "no", "--dir", d]
        if self.tls:
            cmd += ["--port", "0", "--tls-port", str(port), "--tls-cluster", "yes", "--tls-replication", "yes",
                    "--tls-cert-file", self.tls.cert, "--tls-key-file", self.tls.key,
                    "--tls-ca-cert-file", self.tls.ca, "--tls-auth-clients", "no",
                    # The cluster bus checks the certificate of every node that connects, whatever
                    # tls-auth-clients says, and a server-only certificate is refused there: nodes connect
                    # with the CA's client certificate.
                    "--tls-client-cert-file", self.tls.client_cert, "--tls-client-key-file", self.tls.client_key]
        else:
            cmd += ["--port", str(port)]
        return cmd + self.args

    def start_node(self, port):
        """Starts (or starts again, after a kill) the node of `port`; it keeps its nodes-PORT.conf, so a node
        started again rejoins the cluster (an old master as a replica of the one that replaced it)."""
        if self.is_running(port):
            return
        os.makedirs(self.node_dir(port), exist_ok=True)
        with open(self.log_path(port), "ab") as log:
            self.procs[port] = subprocess.Popen(self._command(port), stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, cwd=self.node_dir(port),
                                                preexec_fn=_die_with_parent)

    def is_running(self, port):
        p = self.procs.get(port)
        return p is not None and p.poll() is None

    def kill_node(self, port):
        """SIGKILL, as a crash would."""
        p = self.procs.get(port)
        if p is not None and p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()

    def stop(self):
        """Stops every node this object started: SIGTERM, then SIGKILL after 5 s. Idempotent; for `finally`."""
        for c in self._clients:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass
        self._clients = []
        self._node_clients = {}
        running = [p for p in self.procs.values() if p.poll() is None]
        for p in running:
            try:
                p.send_signal(signal.SIGTERM)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        for p in running:
            try:
                p.wait(max(0.01, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # Clients -----------------------------------------------------------------------------------------------

    def _tls_kwargs(self):
        return {"ssl": True, "ssl_ca_certs": self.tls.ca} if self.tls else {}

    def node(self, port, socket_timeout=5):
        """A redis-py client (bytes replies) of one node, made once per port and timeout, closed by stop()."""
        c = self._node_clients.get((port, socket_timeout))
        if c is None:
            c = redis_py.Redis(host="127.0.0.1", port=port, socket_timeout=socket_timeout,
                               socket_connect_timeout=min(2, socket_timeout), client_name="harness",
                               **self._tls_kwargs())
            self._node_clients[(port, socket_timeout)] = c
            self._clients.append(_Closer(c.connection_pool.disconnect))
        return c

    def connection(self, port, timeout=5):
        """A raw redis-py Connection to one node (for pub/sub replies read one by one), closed by stop()."""
        kw = {"ssl_ca_certs": self.tls.ca} if self.tls else {}
        cls = redis_py.SSLConnection if self.tls else redis_py.Connection
        conn = cls(host="127.0.0.1", port=port, socket_timeout=timeout, socket_connect_timeout=2, **kw)
        conn.connect()
        self._clients.append(_Closer(conn.disconnect))
        return conn

    def client(self, **kw):
        """A redis.cluster.RedisCluster on the cluster (it follows MOVED and ASK itself), closed by stop()."""
        kw.setdefault("socket_timeout", 5)
        kw.setdefault("socket_connect_timeout", 2)
        c = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in self.ports[:self.nmasters]],
                         **self._tls_kwargs(), **kw)
        self._clients.append(_Closer(c.close))
        return c

    def seed_url(self, scheme=None, nseeds=2, auth=""):
        """"redis-cluster://127.0.0.1:P1,127.0.0.1:P2" (rediss-cluster:// with TLS): the first `nseeds`
        nodes. `auth`: "user:password@" or ":password@" to put in front of the hosts."""
        scheme = scheme or ("rediss-cluster" if self.tls else "redis-cluster")
        return f"{scheme}://{auth}" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:nseeds])

    def _ping(self, port):
        try:
            return self.node(port, socket_timeout=0.5).ping()
        except _REDIS_ERRORS:
            return False

    # Topology ----------------------------------------------------------------------------------------------

    key_slot = staticmethod(key_slot)

    def live_ports(self):
        return [p for p in self.ports if self.is_running(p)]

    def nodes(self, port=None):
        """CLUSTER NODES as seen by `port` (by default the first live node), parsed by parse_nodes()."""
        ports = [port] if port else self.live_ports()
        last = None
        for p in ports:
            try:
                return parse_nodes(self.node(p).execute_command("CLUSTER", "NODES"))
            except _REDIS_ERRORS as e:
                last = e
        raise h.HarnessError(f"no node answered CLUSTER NODES ({last})")

    def slot_map(self, port=None):
        """[(first, last, master port)] from CLUSTER SLOTS as seen by `port` (default: a live node)."""
        ports = [port] if port else self.live_ports()
        last = None
        for p in ports:
            try:
                raw = self.node(p).execute_command("CLUSTER", "SLOTS")
                return sorted((int(r[0]), int(r[1]), int(r[2][1])) for r in raw)
            except _REDIS_ERRORS as e:
                last = e
        raise h.HarnessError(f"no node answered CLUSTER SLOTS ({last})")

    def node_for_slot(self, slot):
        """The port of the master that owns `slot`."""
        for first, last, port in self.slot_map():
            if first <= slot <= last:
                return port
        raise h.HarnessError(f"slot {slot} is not covered")

    def node_for_key(self, key):
        return self.node_for_slot(key_slot(key))

    def masters(self):
        """Ports of the masters that own slots and are not failed, in port order."""
        return sorted(n["port"] for n in self.nodes()
                      if "master" in n["flags"] and "fail" not in n["flags"] and n["slots"])

    def replicas_of(self, port):
        """Ports of the replicas of the master on `port`."""
        nodes = self.nodes()
        ids = [n["id"] for n in nodes if n["port"] == port]
        return sorted(n["port"] for n in nodes if ids and n["master"] == ids[0] and "fail" not in n["flags"])

    def node_id(self, port):
        return self.node(port).execute_command("CLUSTER", "MYID").decode()

    def _create(self, timeout):
        cmd = ["redis-cli"]
        if self.tls:
            cmd += ["--tls", "--cacert", self.tls.ca]
        cmd += ["--cluster", "create"] + [f"127.0.0.1:{p}" for p in self.ports]
        cmd += ["--cluster-replicas", str(self.nreplicas), "--cluster-yes"]
        with open(os.path.join(self.dir, "create.log"), "wb") as log:
            try:
                rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    timeout=timeout).returncode
            except subprocess.TimeoutExpired:
                raise h.HarnessError(f"redis-cli --cluster create did not finish within {timeout:.0f}s") from None
        if rc != 0:
            with open(os.path.join(self.dir, "create.log"), "rb") as f:
                out = f.read().decode("utf-8", "replace")
            raise h.HarnessError(f"redis-cli --cluster create exited with {rc}:\n{h.tail(out, 15)}")

    def _state_ok(self, port):
        try:
            info = self.node(port, socket_timeout=1).execute_command("CLUSTER", "INFO")
        except _REDIS_ERRORS:
            return False
        info = info.decode() if isinstance(info, bytes) else info
        return "cluster_state:ok" in info

    def _is_ready(self):
        """Every node: cluster_state:ok, knows every node, sees each master with its replicas and no node
        failing; every replica's link to its master is up."""
        total = len(self.ports)
        for port in self.ports:
            if not self._state_ok(port):
                return False
            try:
                nodes = self.nodes(port)
            except h.HarnessError:
                return False
            if len(nodes) != total or any(n["flags"] & {"fail", "fail?", "handshake", "noaddr"} for n in nodes):
                return False
            masters = [n for n in nodes if "master" in n["flags"] and n["slots"]]
            if len(masters) != self.nmasters:
                return False
            for m in masters:
                if sum(1 for n in nodes if n["master"] == m["id"]) != self.nreplicas:
                    return False
        for port in self.ports:
            try:
                info = self.node(port, socket_timeout=1).info("replication")
            except _REDIS_ERRORS:
                return False
            if info.get("role") == "slave" and info.get("master_link_status") != "up":
                return False
        return True

    # Moves -------------------------------------------------------------------------------------------------

    def kill_master_of_slot(self, slot):
        """SIGKILLs the master that owns `slot`; returns its port (for wait_failover)."""
        port = self.node_for_slot(slot)
        self._killed_slots[port] = [(a, b) for a, b, p in self.slot_map() if p == port]
        self.kill_node(port)
        return port

    def wait_failover(self, old_port, timeout=20.0):
        """Waits until a replica of the killed master on `old_port` owns its slots and every live node says
        cluster_state:ok; returns the new master's port."""
        ranges = self._killed_slots.get(old_port)
        if not ranges:
            raise h.HarnessError(f"{old_port} was not killed with kill_master_of_slot()")
        first_slot = ranges[0][0]

        def done():
            try:
                for port in self.live_ports():
                    if not self._state_ok(port):
                        return False
                    owners = {p for a, b, p in self.slot_map(port) if a <= first_slot <= b}
                    if not owners or old_port in owners:
                        return False
                return self.node_for_slot(first_slot)
            except h.HarnessError:
                return False

        return h.wait_until(done, timeout, interval=0.05, what=f"a replica to replace the master on {old_port}")

    def begin_slot_migration(self, slot, to_port):
        """CLUSTER SETSLOT IMPORTING on `to_port` and MIGRATING on the owner. From now on the owner answers
        ASK for keys of the slot it no longer holds. Returns the owner's port."""
        from_port = self.node_for_slot(slot)
        if from_port == to_port:
            raise h.HarnessError(f"slot {slot} is already on {to_port}")
        src, dst = self.node(from_port), self.node(to_port)
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", self.node_id(from_port))
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", self.node_id(to_port))
        return from_port

    def move_slot_keys(self, slot, from_port, to_port, timeout_ms=5000):
        """MIGRATEs every key of `slot` from `from_port` to `to_port`, 100 at a time; returns how many."""
        src = self.node(from_port)
        moved = 0
        while True:
            keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
            if not keys:
                return moved
            src.execute_command("MIGRATE", "127.0.0.1", to_port, "", 0, timeout_ms, "KEYS", *keys)
            moved += len(keys)

    def end_slot_migration(self, slot, to_port):
        """CLUSTER SETSLOT NODE on the new owner first, then on every other master (the old owner among them):
        the old owner answers MOVED from now on."""
        to_id = self.node_id(to_port)
        others = [p for p in self.masters() if p != to_port]
        for port in [to_port] + others:
            self.node(port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", to_id)

    def wait_slot_routed(self, slot, to_port, timeout=10.0):
        """Waits until every live node's CLUSTER SLOTS gives `slot` to `to_port` (replicas learn it by gossip)."""
        def routed():
            try:
                return all(any(a <= slot <= b and p == to_port for a, b, p in self.slot_map(port))
                           for port in self.live_ports())
            except h.HarnessError:
                return False

        h.wait_until(routed, timeout, interval=0.05, what=f"every node to route slot {slot} to {to_port}")

    def migrate_slot(self, slot, to_port, timeout=10.0):
        """Moves `slot` with its keys to the master on `to_port`, the documented way (IMPORTING, MIGRATING,
        MIGRATE, SETSLOT NODE), and waits until every live node routes the slot there. Returns the old
        owner's port, which answers MOVED for the slot from then on."""
        from_port = self.begin_slot_migration(slot, to_port)
        self.move_slot_keys(slot, from_port, to_port)
        self.end_slot_migration(slot, to_port)
        self.wait_slot_routed(slot, to_port, timeout)
        return from_port

    # Commands routed by slot -------------------------------------------------------------------------------

    def publish(self, channel, message):
        """PUBLISH on the master of the channel's slot (classic pub/sub reaches every node's subscribers);
        returns that node's count of receivers."""
        return self.node(self.node_for_key(channel)).execute_command("PUBLISH", channel, message)

    def spublish(self, channel, message):
        """SPUBLISH on the master that owns the channel's slot; returns the number of receivers."""
        return self.node(self.node_for_key(channel)).execute_command("SPUBLISH", channel, message)

    def get(self, key):
        return self.node(self.node_for_key(key)).get(key)

    def ssubscribe(self, *channels, port=None):
        """A ShardSubscriber on the master of the channels' slot (or on `port`), confirmed."""
        return ShardSubscriber(self, port or self.node_for_key(channels[0]), "SSUBSCRIBE", channels)

    def subscribe(self, *channels, port=None):
        """A classic SUBSCRIBE on one node (any node receives every PUBLISH of the cluster), confirmed."""
        return ShardSubscriber(self, port or self.live_ports()[0], "SUBSCRIBE", channels)


class ShardSubscriber:
    """One connection subscribed with SSUBSCRIBE (or SUBSCRIBE) to channels on one node."""

    def __init__(self, cluster, port, command, channels, timeout=h.DEFAULT_TIMEOUT):
        self.port = port
        self.conn = cluster.connection(port)
        self.conn.send_command(command, *channels)
        pending = set(c.encode() if isinstance(c, str) else c for c in channels)
        self._early = []
        deadline = time.monotonic() + timeout
        while pending:
            reply = self._read(deadline - time.monotonic())
            if reply is None:
                raise h.HarnessError(f"{command} {channels} on {port} was not confirmed within {timeout}s")
            if isinstance(reply, redis_py.exceptions.ResponseError):
                raise reply
            kind = reply[0].decode()
            if kind in ("subscribe", "ssubscribe"):
                pending.discard(reply[1])
            elif kind in ("message", "smessage"):
                self._early.append((reply[1], reply[2]))

    def _read(self, timeout):
        if not self.conn.can_read(timeout=max(0.0, timeout)):
            return None
        try:
            return self.conn.read_response()
        except redis_py.exceptions.ResponseError as e:
            return e

    def get(self, timeout=h.DEFAULT_TIMEOUT):
        """The next message as (channel, data), both bytes; fails after `timeout`. (channel, None) when the
        node ended a shard subscription by itself (sunsubscribe: the channel's slot moved away)."""
        if self._early:
            return self._early.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline - time.monotonic())
            if reply is None:
                raise h.HarnessError(f"no message on {self.port} within {timeout}s")
            if isinstance(reply, redis_py.exceptions.ResponseError):
                raise reply
            if reply[0] in (b"message", b"smessage"):
                return reply[1], reply[2]
            if reply[0] == b"sunsubscribe":  # the slot moved away: the node ends the subscription
                return reply[1], None

    def close(self):
        try:
            self.conn.disconnect()
        except Exception:  # noqa: BLE001
            pass


class _Closer:
    def __init__(self, fn):
        self.close = fn
