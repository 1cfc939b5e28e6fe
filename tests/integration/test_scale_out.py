"""Scale-out: three gateway processes on one Redis Cluster (three masters, each with a replica), in classic and
in sharded pub/sub mode.

Each test spreads clients over the three gateways (three facilities whose channels hash to the three masters,
two clients per gateway per facility: 18 clients) and checks two things:

1. Fan-out. Backends publish (classic: PUBLISH on every one of the six nodes in turn; sharded: SPUBLISH on the
   channel's master) and one client per gateway per facility publishes through its gateway. Every client gets
   every message of its channel exactly once, in each publisher's order (sequence numbers in the payloads), and
   nothing of other channels. Clients behind one subscription see one order: in sharded mode all clients of a
   channel (every SPUBLISH of a channel passes its master), in classic mode the clients of one gateway (its
   subscription node forwards messages of other nodes in whatever order the cluster bus brings them).

2. A master killed (SIGKILL) under steady traffic (each channel published every 20 ms, with one sequence per
   channel, from one node per channel: classic any node but the victim, sharded the channel's master as the
   cluster says after each error). Classic: the victim is a master that carries a gateway's subscription
   connection (when there is one). Sharded: the master of the first channel. Asserted: no client is dropped;
   every client gets its channel's messages in order without duplicates; every publish accepted from 2 s after
   the replica's takeover on arrives at every client of the channel; clients that did not depend on the victim
   (sharded: channels on the other masters; classic: gateways subscribed on other nodes) lose nothing at all;
   in sharded mode a message the master delivered to all three gateways (SPUBLISH's answer) reaches every
   client; clients whose deliveries paused (> 100 ms) get them again within 2 s of the takeover. Measured and
   printed (one `scale-out:` line per mode): kill to takeover, the longest pause, takeover to the first
   delivery after it, publishes refused during the outage, accepted messages lost per client. (A classic
   gateway whose subscription node dies takes another node at once, which needs no takeover: its clients
   may see no pause at all.)

Stored messages are off (WS4REDIS_EXPIRE=0): a sharded subscription taken again re-reads its channel's key,
which would deliver a stored message a second time and blur the exactly-once count.
"""

import socket
import struct
import threading
import time

import harness as h
from cluster import RedisClusterServers, key_slot

NGATEWAYS = 3
CLIENTS_PER_CHANNEL = 2  # per gateway
PERIOD = 0.02  # steady traffic: one message per channel every 20 ms
CLEAN_AFTER = 2.0  # seconds after the takeover from which every accepted publish must arrive


class Reader(threading.Thread):
    """Reads one client's text messages on a thread of its own and stamps their arrival (monotonic time).
    Parses whole frames from its own buffer, so a timeout never splits one. `closed` says why the connection
    ended (None while open)."""

    def __init__(self, ws, gw, facility):
        super().__init__(daemon=True)
        self.ws, self.gw, self.facility = ws, gw, facility
        self.got = []  # (arrival time, text)
        self.closed = None
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self):
        buf = self.ws.buf
        self.ws.buf = b""
        sock = self.ws.sock
        sock.settimeout(0.1)
        while not self.stop.is_set():
            while True:
                frame = _parse_frame(buf)
                if frame is None:
                    break
                opcode, payload, used = frame
                buf = buf[used:]
                if opcode == h.OP_TEXT:
                    with self.lock:
                        self.got.append((time.monotonic(), payload.decode()))
                elif opcode == h.OP_CLOSE:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    self.closed = f"close frame {code} {payload[2:]!r}"
                    return
                elif opcode == h.OP_PING:
                    self.ws.send_pong(payload)
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as e:
                self.closed = f"socket error {e}"
                return
            if not chunk:
                self.closed = "EOF"
                return
            buf += chunk

    def messages(self):
        with self.lock:
            return list(self.got)


def _parse_frame(buf):
    """(opcode, payload, bytes used) of the first whole unmasked server frame in `buf`, or None."""
    if len(buf) < 2:
        return None
    n, at = buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, at = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, at = struct.unpack("!Q", buf[2:10])[0], 10
    if len(buf) < at + n:
        return None
    if not buf[0] & 0x80:
        raise h.HarnessError("the gateway fragmented a message (not expected for these small payloads)")
    return buf[0] & 0x0F, buf[at:at + n], at + n


def pick_facilities(cluster):
    """One facility per master: the first names whose channel hashes to each master."""
    masters = cluster.masters()
    chosen = {}
    for i in range(200):
        name = f"so{i}"
        owner = cluster.node_for_key(f"broadcast:{name}")
        chosen.setdefault(owner, name)
        if len(chosen) == len(masters):
            return [chosen[m] for m in masters]
    raise h.HarnessError(f"no facility for every master: {chosen}")


def numsub_anywhere(cluster, channel):
    return sum(cluster.node(p).execute_command("PUBSUB", "NUMSUB", channel)[1] for p in cluster.live_ports())


def subscriber_nodes(cluster, gateways):
    """{gateway index: port of the node that holds its classic subscription connection}."""
    out = {}
    for port in cluster.live_ports():
        for c in cluster.node(port).client_list():
            if c.get("name") != "wsgate-sub":
                continue
            peer_port = int(c["addr"].rsplit(":", 1)[1])
            for g, gw in enumerate(gateways):
                if _owns_local_port(gw.pid, peer_port):
                    out[g] = port
    return out


def _owns_local_port(pid, port):
    """Whether process `pid` holds a TCP socket bound to local port `port` on 127.0.0.1."""
    import os
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return False
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            local_port = int(parts[1].split(":")[1], 16)
            if local_port == port and parts[9] in inodes:
                return True
    return False


def start_gateways(cluster, sharded):
    gws = []
    for g in range(NGATEWAYS):
        # Each gateway gets the nodes in another order: classic subscriptions land on different nodes.
        ports = cluster.ports[2 * g:] + cluster.ports[:2 * g]
        env = {"REDIS_URL": "redis-cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports),
               "WSGATE_CLOSE_TIMEOUT": "200ms", "WS4REDIS_EXPIRE": "0", "WSGATE_LOG_LEVEL": "info"}
        if sharded:
            env["WSGATE_REDIS_SHARDED"] = "1"
        gws.append(h.Gateway(env=env).start())
    return gws


def open_clients(gws, facilities):
    readers = []
    for g, gw in enumerate(gws):
        for fac in facilities:
            for _ in range(CLIENTS_PER_CHANNEL):
                ws = gw.open_raw(f"/ws/{fac}?subscribe-broadcast&publish-broadcast&echo")
                readers.append(Reader(ws, g, fac))
    return readers


def wait_subscribed(cluster, facilities, sharded):
    for fac in facilities:
        ch = f"broadcast:{fac}"
        if sharded:
            owner = cluster.node(cluster.node_for_key(ch))
            h.wait_until(lambda: owner.execute_command("PUBSUB", "SHARDNUMSUB", ch)[1] == NGATEWAYS, 5,
                         what=f"{ch} subscribed by every gateway on its master")
        else:
            h.wait_until(lambda: numsub_anywhere(cluster, ch) == NGATEWAYS, 5,
                         what=f"{ch} subscribed by every gateway")


def parse(text):
    fac, src, seq = text.split("|")
    return fac, src, int(seq)


# ---------------------------------------------------------------------------------------------------- fan-out

def check_fan_out(cluster, readers, facilities, sharded, per_source=10):
    """Phase 1: backends and clients publish; every client gets everything of its channel, in order."""
    expected = {fac: [] for fac in facilities}  # (src, seq) per facility
    sources = cluster.ports if not sharded else ["backend"]
    # one publishing client per gateway per facility: the first of its pair
    pub_clients = {}
    for r in readers:
        pub_clients.setdefault((r.gw, r.facility), r)
    for k in range(per_source):
        for fac in facilities:
            ch = f"broadcast:{fac}"
            if sharded:
                owner = cluster.node_for_key(ch)
                n = cluster.node(owner).execute_command("SPUBLISH", ch, f"{fac}|backend|{k}")
                assert n == NGATEWAYS, f"SPUBLISH {ch} reached {n} subscribers, expected {NGATEWAYS}"
                expected[fac].append(("backend", k))
            else:
                for port in sources:  # PUBLISH on every node, masters and replicas
                    cluster.node(port).execute_command("PUBLISH", ch, f"{fac}|n{port}|{k}")
                    expected[fac].append((f"n{port}", k))
            for g in range(NGATEWAYS):
                pub_clients[(g, fac)].ws.send_text(f"{fac}|gw{g}|{k}")
                expected[fac].append((f"gw{g}", k))
    want = {fac: len(v) for fac, v in expected.items()}
    h.wait_until(lambda: all(len(r.messages()) >= want[r.facility] for r in readers), 10,
                 what="every client to get every message of its channel")
    time.sleep(0.2)  # anything extra (a duplicate) would arrive meanwhile
    for r in readers:
        assert r.closed is None, f"client of gateway {r.gw} on {r.facility}: {r.closed}"
        got = [parse(t) for _, t in r.messages()]
        assert all(f == r.facility for f, _, _ in got), f"messages of another channel: {got}"
        pairs = [(s, q) for _, s, q in got]
        assert sorted(pairs) == sorted(expected[r.facility]), \
            f"gateway {r.gw} {r.facility}: {len(pairs)} messages, expected {len(expected[r.facility])}; " \
            f"missing {sorted(set(expected[r.facility]) - set(pairs))[:10]}, " \
            f"extra {sorted(set(pairs) - set(expected[r.facility]))[:10]}, duplicates " \
            f"{len(pairs) - len(set(pairs))}"
        for src in {s for s, _ in pairs}:
            seqs = [q for s, q in pairs if s == src]
            assert seqs == list(range(per_source)), f"gateway {r.gw} {r.facility} source {src}: {seqs}"
    # one subscription, one order
    for fac in facilities:
        groups = {}
        for r in readers:
            if r.facility == fac:
                key = "all" if sharded else r.gw
                groups.setdefault(key, []).append([t for _, t in r.messages()])
        for key, orders in groups.items():
            assert all(o == orders[0] for o in orders), f"{fac}: clients behind subscription {key} saw other orders"
    return sum(want.values())


# ---------------------------------------------------------------------------------------------------- failover

class SteadyPublisher(threading.Thread):
    """Publishes `fac|fo|seq` on every channel every PERIOD seconds and records (seq, send time, ok)."""

    def __init__(self, cluster, facilities, sharded, node_of):
        super().__init__(daemon=True)
        self.cluster, self.facilities, self.sharded = cluster, facilities, sharded
        self.node_of = dict(node_of)  # facility -> port to publish on
        self.sent = {fac: [] for fac in facilities}  # (seq, time, ok, detail)
        self.stop = threading.Event()
        self.refreshed = 0.0
        self.error = None

    def _refresh(self):
        # sharded: the channel's master as the cluster says now (at most every 100 ms)
        now = time.monotonic()
        if now - self.refreshed < 0.1:
            return
        self.refreshed = now
        for fac in self.facilities:
            try:
                self.node_of[fac] = self.cluster.node_for_key(f"broadcast:{fac}")
            except h.HarnessError:
                pass

    def run(self):
        try:
            seq = 0
            next_at = time.monotonic()
            while not self.stop.is_set():
                for fac in self.facilities:
                    port = self.node_of[fac]
                    cmd = "SPUBLISH" if self.sharded else "PUBLISH"
                    t = time.monotonic()
                    try:
                        n = self.cluster.node(port, socket_timeout=0.5).execute_command(
                            cmd, f"broadcast:{fac}", f"{fac}|fo|{seq}")
                        self.sent[fac].append((seq, t, True, n))
                    except Exception as e:  # noqa: BLE001  refused, reset, MOVED, CLUSTERDOWN: all "not accepted"
                        self.sent[fac].append((seq, t, False, type(e).__name__))
                        if self.sharded:
                            self._refresh()
                seq += 1
                next_at += PERIOD
                self.stop.wait(max(0.0, next_at - time.monotonic()))
        except BaseException as e:  # noqa: BLE001
            self.error = e


def check_failover(cluster, gws, readers, facilities, sharded):
    """Phase 2: a master killed under steady traffic. Returns the measurements (also printed)."""
    mode = "sharded" if sharded else "classic"
    masters = cluster.masters()
    owners = {fac: cluster.node_for_key(f"broadcast:{fac}") for fac in facilities}
    sub_nodes = {} if sharded else subscriber_nodes(cluster, gws)
    if sharded:
        victim = owners[facilities[0]]
        why = f"master of broadcast:{facilities[0]}"
    else:
        assert len(sub_nodes) == NGATEWAYS, f"classic subscription connections found: {sub_nodes}"
        carrying = [p for p in masters if p in sub_nodes.values()]
        victim = carrying[0] if carrying else owners[facilities[0]]
        why = (f"master holding the subscription of gateway(s) {sorted(g for g, p in sub_nodes.items() if p == victim)}"
               if carrying else f"master of broadcast:{facilities[0]} (no master holds a gateway subscription)")
    if sharded:
        node_of = owners
    else:
        others = [p for p in cluster.ports if p != victim]
        node_of = {fac: others[i % len(others)] for i, fac in enumerate(facilities)}

    def depends_on_victim(r):
        return owners[r.facility] == victim if sharded else sub_nodes.get(r.gw) == victim

    first_index = {id(r): len(r.messages()) for r in readers}
    pub = SteadyPublisher(cluster, facilities, sharded, node_of)
    pub.start()
    try:
        h.wait_until(lambda: all(len(r.messages()) >= first_index[id(r)] + 20 for r in readers), 5,
                     what="steady traffic reaching every client")
        t_kill = time.monotonic()
        cluster.kill_master_of_slot(next(a for a, b, p in cluster.slot_map() if p == victim))
        new = cluster.wait_failover(victim, timeout=20)
        t_takeover = time.monotonic()
        time.sleep(CLEAN_AFTER + 1.5)
    finally:
        pub.stop.set()
        pub.join(5)
    t_end = time.monotonic()
    assert pub.error is None, f"publisher failed: {pub.error!r}"
    # Wait for what was accepted to arrive (or not: counted below).
    accepted = {fac: [s for s, t, ok, _ in pub.sent[fac] if ok] for fac in facilities}
    clean = {fac: [s for s, t, ok, _ in pub.sent[fac] if ok and t >= t_takeover + CLEAN_AFTER] for fac in facilities}

    def fo_seqs(r):
        return [(t, parse(x)[2]) for t, x in r.messages()[first_index[id(r)]:]]

    try:
        h.wait_until(lambda: all(set(clean[r.facility]) <= {s for _, s in fo_seqs(r)} for r in readers), 5,
                     what=f"every publish accepted from {CLEAN_AFTER} s after the takeover to reach every client")
    except h.HarnessError as e:
        short = {f"gw{r.gw} {r.facility}": len(set(clean[r.facility]) - {s for _, s in fo_seqs(r)}) for r in readers}
        raise h.HarnessError(f"{mode}: {e}; missing per client: {short}") from None
    time.sleep(0.2)

    # Clients were not dropped; the gateways still run.
    for r in readers:
        assert r.closed is None, f"{mode}: client of gateway {r.gw} on {r.facility} was dropped: {r.closed}"
    for g, gw in enumerate(gws):
        assert gw.is_running(), f"{mode}: gateway {g} exited"

    refused = {fac: sum(1 for s, t, ok, _ in pub.sent[fac] if not ok) for fac in facilities}
    affected, lost, resume, gap = [], {}, [], {}
    twice = 0
    for r in readers:
        got = fo_seqs(r)
        seqs = [s for _, s in got]
        if not sharded and depends_on_victim(r):
            # Classic: its gateway subscribes again on another node within a millisecond of the kill, and that
            # node may get over the cluster bus, after the new SUBSCRIBE, a message the dead node had already
            # delivered: Redis pub/sub is at least once across that switch. Order is kept otherwise.
            seen, once = set(), []
            for s in seqs:
                if s not in seen:
                    seen.add(s)
                    once.append(s)
            twice += len(seqs) - len(once)
            seqs = once
        assert seqs == sorted(set(seqs)), f"{mode}: gateway {r.gw} {r.facility}: out of order or duplicated"
        missing = sorted(set(accepted[r.facility]) - set(seqs))
        assert not set(seqs) - set(accepted[r.facility]) - {s for s, _, ok, _ in pub.sent[r.facility] if not ok}, \
            f"{mode}: gateway {r.gw} {r.facility} got messages nobody published"
        lost[id(r)] = len(missing)
        if sharded:
            # SPUBLISH answers how many gateways the master delivered it to: with all of them, every client
            # of the channel must get it, outage or not.
            full = {s for s, t, ok, n in pub.sent[r.facility] if ok and n == NGATEWAYS}
            assert not full & set(missing), (f"{mode}: gateway {r.gw} {r.facility} lost messages the master "
                                             f"delivered to every gateway: {sorted(full & set(missing))[:5]}")
        if depends_on_victim(r):
            affected.append(r)
            # Its longest pause between deliveries after the kill (traffic arrives every 20 ms otherwise): a
            # pause of more than 5 periods is the outage this client saw, and its end the first delivery
            # after it.
            after_kill = [t for t, s in got if t >= t_kill]
            gaps = [(b - a, b) for a, b in zip([t_kill] + after_kill, after_kill)]
            longest = max(gaps, default=(t_end - t_kill, None))
            gap[id(r)] = longest[0]
            if longest[0] > 5 * PERIOD:
                resume.append(longest[1] - t_takeover if longest[1] is not None else float("inf"))
        else:
            assert not missing, (f"{mode}: gateway {r.gw} {r.facility} did not depend on the killed master but "
                                 f"lost {len(missing)} accepted messages (first {missing[:5]})")
    m = dict(mode=mode, victim=victim, new=new, why=why, takeover_s=t_takeover - t_kill,
             affected=len(affected), clients=len(readers), interrupted=len(resume),
             gap_max=max((gap[id(r)] for r in affected), default=None),
             resume_min=min(resume, default=None), resume_max=max(resume, default=None),
             published=sum(len(v) for v in pub.sent.values()),
             refused=sum(refused.values()),
             outage_published=sum(1 for fac in facilities for s, t, ok, _ in pub.sent[fac] if t_kill <= t < t_takeover),
             lost_max=max((lost[id(r)] for r in affected), default=0),
             lost_sum=sum(lost[id(r)] for r in affected),
             short=sum(1 for fac in facilities for s, t, ok, n in pub.sent[fac] if ok and n != NGATEWAYS))
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    print(f"scale-out: {mode}: killed {victim} ({why}); replica {new} took over {m['takeover_s']:.2f} s after the "
          f"kill; {m['affected']} of {m['clients']} clients depended on it, longest pause in their deliveries "
          f"{fmt(m['gap_max'])} s; {m['interrupted']} paused > {5 * PERIOD:.1f} s and got their first delivery "
          f"after it {fmt(m['resume_min'])}..{fmt(m['resume_max'])} s after the takeover; {m['published']} publishes "
          f"({m['outage_published']} between kill and takeover), {m['refused']} refused"
          + (f", {m['short']} accepted by fewer than {NGATEWAYS} gateways' subscriptions" if sharded else "")
          + f"; accepted messages lost: at most {m['lost_max']} per affected client ({m['lost_sum']} in all), "
          f"0 elsewhere" + ("" if sharded else f"; delivered twice at the switch: {twice}"), flush=True)
    assert m["resume_max"] is None or m["resume_max"] < CLEAN_AFTER, \
        f"{mode}: deliveries resumed {m['resume_max']:.2f} s after the takeover (limit {CLEAN_AFTER} s)"
    return m


def run_scale_out(sharded):
    cluster = RedisClusterServers(masters=3, replicas=1)
    readers, gws = [], []
    try:
        facilities = pick_facilities(cluster)
        gws += start_gateways(cluster, sharded)
        readers = open_clients(gws, facilities)
        wait_subscribed(cluster, facilities, sharded)
        for r in readers:
            r.start()
        t0 = time.monotonic()
        n = check_fan_out(cluster, readers, facilities, sharded)
        print(f"scale-out: {'sharded' if sharded else 'classic'}: {len(readers)} clients on {NGATEWAYS} gateways "
              f"got all {n} messages of their channels in order ({time.monotonic() - t0:.2f} s)", flush=True)
        check_failover(cluster, gws, readers, facilities, sharded)
    finally:
        for r in readers:
            r.stop.set()
        for r in readers:
            if r.is_alive():
                r.join(2)
        for gw in gws:  # before the cluster: a gateway without Redis waits out its shutdown timeout
            gw.stop()
        cluster.stop()


def test_classic_three_gateways_fan_out_and_failover():
    run_scale_out(sharded=False)


def test_sharded_three_gateways_fan_out_and_failover():
    run_scale_out(sharded=True)
