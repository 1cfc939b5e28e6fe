#!/usr/bin/python3
"""Runs every example of README.md as it is written, against `scripts/run` started with no settings.

    /usr/bin/python3 tests/readme/run_readme.py [--readme PATH] [--list] [--host-network]

Every fenced code block of the README runs, in order, unless the HTML comment on the line before it says
otherwise. The comment is `<!-- readme-check: ITEM, ITEM... -->`; its items:

  skip (reason)        not run; the reason is required (Django code, a page fragment, a URL form)
  server, ready URL    started in the background and kept until the end (scripts/run); ready once URL answers
                       200. Stopped at the end as Ctrl-C does, and everything it started must be gone then
  background           a client that keeps running (stdin left open) until the next background block or the end
  ready "TEXT"         with background: wait for TEXT in its output before going on
  delivers "TEXT"      a publisher: the client of the last background block must receive TEXT; the block is run
                       again (at most twice) if TEXT did not arrive, since a subscription may still be on its way
  output "TEXT"        the block's output (stdout and stderr) contains TEXT
  output-re "REGEX"    ... or matches REGEX (a line of it, with ^ and $)
  npm PACKAGE          the block needs PACKAGE (as the README says); installed with npm into build/readme-npm
                       and found through NODE_PATH

Any other block must exit 0 within 60 s. sh blocks run with bash -e -o pipefail, python blocks with
/usr/bin/python3, js blocks with node; every block runs from the repository root with no wsgate setting in
its environment. Blocks without a language must be marked skip.

Then the commands scripts/run printed are run as printed (its client, its publishers, its metrics line), and
scripts/run is started twice more, while port 6379 is taken (it must move its Redis to 6380) and with
REDIS_URL naming a Redis of the user's, to check that the commands it prints then still work, and that each
time Ctrl-C stops it with exit status 0 and nothing it started keeps listening.

The README names fixed ports (8080, 6379, 9090), so the check runs in a network namespace of its own
(unshare; root or user namespaces) where they are free whatever else runs on the machine. Where no namespace
can be made (or with --host-network) it runs on the host network and fails at once, naming the port, when one
of them is taken. Ends with "N passed, N failed"; exit status 1 when a check failed. Every process it started
is stopped by its process group before it exits; every wait has a deadline.
"""
import argparse
import ctypes
import fcntl
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NPM_DIR = os.path.join(ROOT, "build", "readme-npm")
ARTIFACTS = os.path.join(ROOT, ".test-artifacts", "readme")
PORTS = (8080, 6379, 9090)
INSIDE = "WSGATE_README_NETNS"  # set in the environment of the copy that runs inside the namespace
BLOCK_TIMEOUT = 60
SERVER_TIMEOUT = 240  # the first scripts/run may install packages and build the release binary
RUNNERS = {"sh": ["bash", "-e", "-o", "pipefail"], "bash": ["bash", "-e", "-o", "pipefail"],
           "shell": ["bash", "-e", "-o", "pipefail"], "python": ["/usr/bin/python3"], "py": ["/usr/bin/python3"],
           "js": ["node"], "javascript": ["node"]}
SUFFIX = {"python": ".py", "py": ".py", "js": ".js", "javascript": ".js"}

passed = 0
failed = 0


class Interrupted(BaseException):
    """A signal asked the check to stop (BaseException: no `except OSError` on the way swallows it)."""


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   - {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL - {name}" + (f"\n{detail}" if detail else ""), flush=True)
    return ok


def tail(text, n=30):
    return "\n".join("       " + line for line in text.rstrip().splitlines()[-n:])


# -- The README ------------------------------------------------------------------------------------------------

class Block:
    def __init__(self, line, lang, code, items):
        self.line = line  # line number of the opening fence
        self.lang = lang
        self.code = code
        self.items = items  # [(keyword, value or None)]

    def get(self, key):
        return [v for k, v in self.items if k == key]

    def has(self, key):
        return any(k == key for k, _ in self.items)

    @property
    def title(self):
        first = next((ln.strip() for ln in self.code.splitlines() if ln.strip()), "")
        return f"README.md:{self.line} ({self.lang or 'text'}) {first[:60]}"


ITEM = re.compile(r'\s*([a-z][a-z-]*)(?:\s+("(?:[^"\\]|\\.)*"|\([^)]*\)|[^,\s]+))?\s*(?:,|$)')
KEYWORDS = {"skip", "server", "background", "ready", "delivers", "output", "output-re", "npm"}


def parse_items(text, where):
    items, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = ITEM.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"{where}: cannot read readme-check items at {text[pos:]!r}")
        key, value = m.group(1), m.group(2)
        if key not in KEYWORDS:
            raise ValueError(f"{where}: unknown readme-check item {key!r}")
        if value and value.startswith('"'):
            value = re.sub(r'\\([\\"])', r'\1', value[1:-1])
        elif value and value.startswith("("):
            value = value[1:-1].strip()
        items.append((key, value))
        pos = m.end()
    return items


def parse_readme(path):
    """The fenced blocks of a Markdown file, each with the readme-check items of the comment just before it."""
    lines = open(path, encoding="utf-8").read().split("\n")
    blocks, i, pending = [], 0, None
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^<!--\s*readme-check:(.*?)-->\s*$", line)
        if m:
            pending = (i + 1, parse_items(m.group(1), f"README.md:{i + 1}"))
            i += 1
            continue
        fence = re.match(r"^(```+|~~~+)\s*([\w+-]*)", line)
        if fence:
            start, marker, lang = i + 1, fence.group(1), fence.group(2).lower()
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith(marker):
                body.append(lines[i])
                i += 1
            items = pending[1] if pending and pending[0] == start - 1 else []
            if pending and pending[0] != start - 1:
                raise ValueError(f"README.md:{pending[0]}: a readme-check comment must be the line just before a "
                                 "code block")
            blocks.append(Block(start, lang, "\n".join(body) + "\n", items))
            pending = None
        elif line.strip() and pending:
            raise ValueError(f"README.md:{pending[0]}: a readme-check comment must be the line just before a "
                             "code block")
        i += 1
    return blocks


def validate(blocks):
    problems = []
    for b in blocks:
        if b.has("skip"):
            if not b.get("skip")[0]:
                problems.append(f"{b.title}: skip needs a reason: skip (why)")
            continue
        if b.lang not in RUNNERS:
            problems.append(f"{b.title}: no way to run a {b.lang or 'plain'} block; mark it skip (why) or give it "
                            f"a language among {sorted(RUNNERS)}")
        if b.has("delivers") and not any(x.has("background") for x in blocks[:blocks.index(b)]):
            problems.append(f"{b.title}: delivers, but no background client comes before it")
        if b.has("server") and not (b.get("ready") and b.get("ready")[0].startswith("http")):
            problems.append(f"{b.title}: server needs ready http://...")
    return problems


# -- Processes -------------------------------------------------------------------------------------------------

def die_with_parent():
    """In the child: get SIGTERM when the checker dies, so that nothing it started outlives it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def block_env():
    env = dict(os.environ)
    for k in list(env):  # the README's commands run as in a shell without wsgate settings
        if k.startswith(("WSGATE_", "WS4REDIS_")) or k in ("REDIS_URL", "WEBSOCKET_URL"):
            del env[k]
    env["PYTHONUNBUFFERED"] = "1"
    if os.path.isdir(os.path.join(NPM_DIR, "node_modules")):
        env["NODE_PATH"] = os.path.join(NPM_DIR, "node_modules")
    return env


class Proc:
    """A process started in a session of its own, its output in a file."""

    def __init__(self, argv, name, stdin=subprocess.DEVNULL, env=None):
        os.makedirs(ARTIFACTS, exist_ok=True)
        self.name = name
        self.log_path = os.path.join(ARTIFACTS, re.sub(r"[^\w.-]+", "_", name)[:80] + ".log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=dict(block_env(), **(env or {})), stdin=stdin, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_output(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.output()):
                return True
            if self.proc.poll() is not None:
                return predicate(self.output())
            time.sleep(0.05)
        return False

    def signal_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def kill_leftovers(self):
        """After the leader has exited: SIGKILL to what it left in its process group (found in /proc, so that
        no signal goes to a group id the system may have handed out again)."""
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == self.proc.pid:
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.proc.pid and int(fields[3]) == self.proc.pid:  # pgrp, session
                    os.kill(int(entry), signal.SIGKILL)
            except (OSError, IndexError, ValueError):
                pass

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stops the whole process group; returns the leader's exit status (None if it had to be killed)."""
        if self.proc.stdin:
            try:
                self.proc.stdin.close()  # an interactive client's end of input: it closes by itself
                self.proc.wait(3)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            self.signal_group(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.proc.wait(5)
                self.log.close()
                return None
        self.kill_leftovers()
        self.log.close()
        return self.proc.returncode


def run_once(argv, name, timeout=BLOCK_TIMEOUT):
    """Runs a command to completion; returns (exit status or None on timeout, output)."""
    try:
        p = Proc(argv, name)
    except OSError as e:  # no such interpreter
        return None, f"cannot start {argv[0]}: {e}"
    try:
        p.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        p.stop(signal.SIGKILL)
        return None, p.output() + f"\n(still running after {timeout}s: killed)"
    p.stop()
    return p.proc.returncode, p.output()


def port_open(port, host="127.0.0.1"):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except OSError:
        return 0


# -- Isolation -------------------------------------------------------------------------------------------------

def bring_loopback_up():
    """`ip link set lo up` without iproute2: a new network namespace starts with its loopback down."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, siocgifflags, req))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH22x", b"lo", flags | iff_up))


def unshare_command():
    """The unshare invocation that gives a network namespace here, or None."""
    if not shutil.which("unshare"):
        return None
    for cmd in ([["unshare", "--net"]] if os.geteuid() == 0 else []) + [["unshare", "--user", "--map-root-user",
                                                                          "--net"]]:
        probe = subprocess.run(cmd + ["true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if probe.returncode == 0:
            return cmd
    return None


# -- Preparation -----------------------------------------------------------------------------------------------

def install_npm(blocks):
    """npm packages that blocks name, into build/readme-npm (once; the registry is needed only then)."""
    wanted = sorted({v for b in blocks if not b.has("skip") for v in b.get("npm")})
    missing = [w for w in wanted
               if not os.path.isfile(os.path.join(NPM_DIR, "node_modules", re.sub(r"(?<=.)@.*$", "", w),
                                                  "package.json"))]
    if not missing:
        return True
    os.makedirs(NPM_DIR, exist_ok=True)
    proc = subprocess.run(["npm", "install", "--prefix", NPM_DIR, "--no-audit", "--no-fund", "--loglevel=error",
                           *missing], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    return check(f"npm install {' '.join(missing)} (into build/readme-npm)", proc.returncode == 0,
                 tail(proc.stdout.decode(errors="replace")))


# -- Running the blocks ----------------------------------------------------------------------------------------

class Session:
    def __init__(self, tmp):
        self.tmp = tmp
        self.server = None
        self.client = None  # the current background Proc
        self.procs = []

    def command_for(self, block):
        path = os.path.join(self.tmp, f"block-{block.line}{SUFFIX.get(block.lang, '.sh')}")
        with open(path, "w", encoding="utf-8") as f:
            f.write(block.code)
        return RUNNERS[block.lang] + [path]

    def start_background(self, argv, name, ready):
        if self.client is not None:
            self.client.stop()
        p = Proc(argv, name, stdin=subprocess.PIPE)
        self.procs.append(p)
        self.client = p
        if ready:
            ok = p.wait_output(lambda out: ready in out, 10)
            check(f"{name}: prints {ready!r}", ok, tail(p.output()))
            time.sleep(0.2)  # the gateway subscribes right after the 101
        return p

    def run_publisher(self, argv, name, expect_output=(), expect_re=(), delivers=()):
        """Runs a block or command; checks its exit status, its output and what the client received."""
        client = self.client
        before = {text: client.output().count(text) for text in delivers} if client else {}
        for attempt in range(1, 4):
            status, out = run_once(argv, name)
            if status != 0 or attempt == 1:
                if not check(f"{name}: exits 0" + (f" (run {attempt})" if attempt > 1 else ""), status == 0,
                             f"       exit status {status}\n{tail(out)}"):
                    return
            if attempt == 1:
                for text in expect_output:
                    check(f"{name}: prints {text!r}", text in out, tail(out))
                for regex in expect_re:
                    check(f"{name}: output matches {regex!r}", re.search(regex, out, re.M) is not None, tail(out))
            if not delivers:
                return
            got = client.wait_output(lambda o: all(o.count(t) > before[t] for t in delivers), 3)
            if got:
                check(f"{name}: the client receives {', '.join(map(repr, delivers))}", True)
                return
            if attempt < 3:
                print(f"note - {name}: nothing received yet; running it again", flush=True)
        check(f"{name}: the client receives {', '.join(map(repr, delivers))}", False,
              f"       client ({client.name}) output:\n{tail(client.output())}")

    def run_block(self, block):
        if block.has("skip"):
            print(f"skip - {block.title}: {block.get('skip')[0]}", flush=True)
            return True
        argv = self.command_for(block)
        if block.has("server"):
            url = block.get("ready")[0]
            p = Proc(argv, block.title)
            self.procs.append(p)
            self.server = p
            deadline = time.monotonic() + SERVER_TIMEOUT
            while time.monotonic() < deadline and p.proc.poll() is None and http_status(url) != 200:
                time.sleep(0.2)
            return check(f"{block.title}: starts, {url} answers 200", http_status(url) == 200, tail(p.output()))
        if block.has("background"):
            ready = (block.get("ready") or [None])[0]
            p = self.start_background(argv, block.title, ready)
            return p.proc.poll() is None
        self.run_publisher(argv, block.title, block.get("output"), block.get("output-re"), block.get("delivers"))
        return True

    def stop_all(self):
        for p in reversed(self.procs):
            if p is not self.server and p.proc.poll() is None:
                p.stop()
        self.client = None

    def stop_server(self, what, ports=PORTS):
        """Stops scripts/run as Ctrl-C does (SIGINT to its process group) and checks that nothing it started
        still listens on `ports`."""
        p, self.server = self.server, None
        if p is None:
            return
        p.signal_group(signal.SIGINT)
        try:
            p.proc.wait(20)
            status = p.proc.returncode
        except subprocess.TimeoutExpired:
            status = None
        check(f"{what}: Ctrl-C stops it, exit status 0", status == 0, f"       exit status {status}\n"
              f"{tail(p.output())}")
        left = [port for port in ports if port_open(port)]
        check(f"{what}: nothing it started listens on {', '.join(map(str, ports))} afterwards",
              not left, f"       still open: {left}")
        p.stop(signal.SIGKILL)


def printed_commands(output):
    """The commands scripts/run printed: {"receive": cmd, "publish": [cmds], "metrics": cmd}."""
    found = {"publish": []}
    for line in output.splitlines():
        m = re.match(r"^  (receive|publish|or|metrics):\s+(.*\S)\s*$", line)
        if m:
            if m.group(1) in ("publish", "or"):
                found["publish"].append(m.group(2))
            else:
                found[m.group(1)] = m.group(2)
    return found


def check_printed_commands(session, what, output):
    """Runs the client, publishers and metrics command scripts/run printed, as printed."""
    cmds = printed_commands(output)
    if not check(f"{what}: prints a client and two publish commands", "receive" in cmds and
                 len(cmds["publish"]) == 2, tail(output)):
        return
    session.start_background(["bash", "-c", cmds["receive"]], f"{what}: {cmds['receive']}", "Connected")
    for cmd in cmds["publish"]:
        message = shlex.split(cmd)[-1]
        session.run_publisher(["bash", "-e", "-c", cmd], f"{what}: {cmd}", delivers=[message])
    if "metrics" in cmds:
        session.run_publisher(["bash", "-e", "-c", cmds["metrics"]], f"{what}: {cmds['metrics']}",
                              expect_output=["wsgate_connections_open"])
    session.stop_all()


def check_scripts_run(session, what, env, expect_text, ports):
    """Starts scripts/run with `env` added, checks that it says `expect_text`, runs the commands it prints and
    stops it."""
    p = Proc(["scripts/run"], what, env=env)
    session.procs.append(p)
    session.server = p
    deadline = time.monotonic() + SERVER_TIMEOUT
    while time.monotonic() < deadline and p.proc.poll() is None and \
            http_status("http://127.0.0.1:9090/readyz") != 200:
        time.sleep(0.2)
    out = p.output()
    if check(f"{what}: starts; says {expect_text!r}",
             http_status("http://127.0.0.1:9090/readyz") == 200 and expect_text in out, tail(out)):
        check_printed_commands(session, what, out)
    session.stop_server(what, ports=ports)


def run_inside(blocks, tmp):
    session = Session(tmp)
    taken = [port for port in PORTS if port_open(port)]
    if not check(f"ports {', '.join(map(str, PORTS))} are free (the README names them)", not taken,
                 f"       taken: {taken}; stop what uses them, or run where a network namespace can be made"):
        return
    try:
        for block in blocks:
            if not session.run_block(block) and block.has("server"):
                print("stopping: the blocks after it need the server", flush=True)
                return
        server_out = session.server.output() if session.server else ""
        session.stop_all()
        if session.server:
            check("scripts/run: its Redis is on 6379", "private redis-server on 127.0.0.1:6379" in server_out,
                  tail(server_out))
            check_printed_commands(session, "scripts/run", server_out)
            session.stop_server("scripts/run")

        # Port 6379 taken: scripts/run moves its Redis and says so in every command it prints.
        holder = socket.socket()
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 6379))
        holder.listen(1)
        try:
            check_scripts_run(session, "scripts/run with 6379 taken", {}, "private redis-server on 127.0.0.1:6380",
                              ports=(8080, 6380, 9090))
        finally:
            holder.close()

        # A Redis of the user's (REDIS_URL): no private one, and the printed commands name the user's.
        redis = Proc(["redis-server", "--port", "6390", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                      "--dir", tmp], "redis-server on 6390")  # not in session.procs: outlives stop_all
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not port_open(6390):
                time.sleep(0.05)
            check_scripts_run(session, "REDIS_URL=redis://127.0.0.1:6390/0 scripts/run",
                              {"REDIS_URL": "redis://127.0.0.1:6390/0"}, "Redis at redis://127.0.0.1:6390/0",
                              ports=(8080, 9090))
            # The same Redis named by a sentinel: redis-cli is pointed at the master it names now.
            conf = os.path.join(tmp, "sentinel.conf")
            with open(conf, "w") as f:
                f.write("port 26390\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 6390 1\n")
            sentinel = Proc(["redis-server", conf, "--sentinel"], "redis sentinel on 26390")
            try:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not port_open(26390):
                    time.sleep(0.05)
                url = "redis-sentinel://127.0.0.1:26390/mymaster"
                check_scripts_run(session, f"REDIS_URL={url} scripts/run", {"REDIS_URL": url},
                                  "redis-cli -h 127.0.0.1 -p 6390 PUBLISH", ports=(8080, 9090))
            finally:
                sentinel.stop()
        finally:
            redis.stop()
    finally:
        session.stop_all()
        if session.server is not None:
            session.stop_server("scripts/run")
        for p in session.procs:
            if p.proc.poll() is None:
                p.stop(signal.SIGKILL)


def main():
    global passed, failed
    ap = argparse.ArgumentParser()
    ap.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    ap.add_argument("--list", action="store_true", help="print the blocks and what is checked, run nothing")
    ap.add_argument("--host-network", action="store_true", help="do not make a network namespace")
    args = ap.parse_args()

    try:
        blocks = parse_readme(args.readme)
        problems = validate(blocks)
    except ValueError as e:
        blocks, problems = [], [str(e)]
    for problem in problems:
        check("README annotations", False, "       " + problem)
    if args.list:
        for b in blocks:
            print(f"{b.title}: {b.items or 'run'}")
    if problems or args.list or not blocks:
        check("README has code blocks", bool(blocks))
        print(f"{passed} passed, {failed} failed", flush=True)
        return 1 if failed else 0

    if os.environ.get(INSIDE) != "1":
        install_npm(blocks)
        cmd = None if args.host_network else unshare_command()
        if cmd:
            print("running in a network namespace of its own", flush=True)
            # The checks made out here (npm) are counted in the summary of the copy inside.
            env = dict(os.environ, **{INSIDE: "1", INSIDE + "_COUNTS": f"{passed},{failed}"})
            # unshare without --fork execs the copy in place: it is this process's child, which a signal sent
            # here is passed on to (and which dies with this process, see below).
            proc = subprocess.Popen(cmd + [sys.executable, os.path.abspath(__file__), "--readme", args.readme],
                                    env=env)
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: proc.send_signal(signal.SIGTERM))
            return proc.wait() or (1 if failed else 0)
        print("no network namespace here: running on the host network", flush=True)
    else:
        counts = os.environ.get(INSIDE + "_COUNTS", "0,0").split(",")
        passed, failed = int(counts[0]), int(counts[1])
        die_with_parent()  # a killed test runner's copy outside takes this one along
        if os.getppid() == 1:
            return 1
        bring_loopback_up()

    # SIGTERM (the test runner's timeout, the copy outside dying) or Ctrl-C: stop everything started, once.
    stopping = []

    def on_signal(signum, frame):
        if not stopping:
            stopping.append(signum)
            raise Interrupted(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    tmp = tempfile.mkdtemp(prefix="wsgate-readme-")
    start = time.monotonic()
    try:
        run_inside(blocks, tmp)
    except Interrupted as e:
        check("the check ran to its end", False, f"       stopped by signal {e.args[0]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"({time.monotonic() - start:.1f}s)", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
