#!/usr/bin/python3
"""Browser test of the demo page and static/wsgate.js against the real gateway, in headless Chromium.

    /usr/bin/python3 tests/browser/test_demo.py      (Debian: python3-selenium chromium chromium-driver,
                                                      installed by tests/browser/deps)

Starts a private redis-server and the gateway (WSGATE_BIN, default build/test/wsgate) with the demo on and a
channel prefix (WS4REDIS_PREFIX), opens http://127.0.0.1:PORT/ and checks, step by step: the page connects; its
hint names the prefixed channel; a message published with redis-cli, as the hint says, shows up; heartbeats are
counted and never shown; a message typed into the page comes back (echo) and is stored in Redis; on SIGTERM
the gateway exits 0 and the page shows "disconnected"; once the gateway is back on the same port the page
reconnects by itself and receives again. A screenshot is saved to .test-artifacts/browser/demo.png, the
gateway's log to .test-artifacts/browser/wsgate.log.
Ends with "N passed, N failed"; exit status 1 when a check failed. Every wait has a deadline.
"""
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".test-artifacts" / "browser"
GATEWAY_BIN = Path(os.environ.get("WSGATE_BIN", ROOT / "build" / "test" / "wsgate"))
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")
FACILITY = "demo"
PREFIX = "site"
CHANNEL = f"{PREFIX}:broadcast:{FACILITY}"
HEARTBEAT = "--heartbeat--"

passed = 0
failed = 0


class Abort(Exception):
    """A step the following ones depend on failed."""


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   - {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL - {name}" + (f": {detail}" if detail else ""), flush=True)
    return ok


def require(name, ok, detail=""):
    if not check(name, ok, detail):
        raise Abort(name)


def require_setup(modules):
    """The Python modules (Debian's python3-<name>), Chromium with its driver and the gateway binary."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            require(f"python3-{name} is installed", False, f"{exc}; run tests/browser/deps")
    require("chromium and chromedriver are installed", os.access(CHROMIUM, os.X_OK) and
            os.access(CHROMEDRIVER, os.X_OK), "run tests/browser/deps")
    require(f"gateway binary {GATEWAY_BIN} exists", os.access(GATEWAY_BIN, os.X_OK),
            "build it first (scripts/test builds build/test/wsgate) or set WSGATE_BIN")


def wait_for(predicate, timeout, interval=0.05):
    """Polls predicate until it returns a true value or timeout seconds pass; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:  # a page in mid-update, a process not up yet: try again
            value = None
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop_pid(proc, sig=signal.SIGTERM, timeout=10):
    """Stops one process we started, by its PID; returns its exit status."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass
    return proc.returncode


def child_pids(pid):
    """Direct and indirect children of pid (from /proc), to stop Chromium by PID if the driver cannot."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class Redis:
    def __init__(self, workdir):
        self.port = free_port()
        self.dir = workdir
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir), "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def cli(self, *args):
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, timeout=5)
        return out.stdout.rstrip("\n")

    def subscribers(self, channel):
        lines = self.cli("PUBSUB", "NUMSUB", channel).splitlines()
        return int(lines[1]) if len(lines) == 2 else 0


class Gateway:
    def __init__(self, port, redis_port, log):
        self.port = port
        self.env = dict(os.environ)
        self.env.update({
            "WSGATE_LISTEN": f"127.0.0.1:{port}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "WSGATE_ADMIN_LISTEN": f"127.0.0.1:{free_port()}",
            "WSGATE_DEMO": "1",
            "WS4REDIS_PREFIX": PREFIX,
            "WS4REDIS_HEARTBEAT": HEARTBEAT,
            "WSGATE_HEARTBEAT_INTERVAL": "500ms",
            "WSGATE_ANONYMOUS_PUBLISH": "1",
            "WSGATE_SHUTDOWN_TIMEOUT": "3s",
        })
        self.log = log
        self.proc = None

    def start(self):
        self.log.write(f"---- start {time.strftime('%H:%M:%S')}\n")
        self.log.flush()
        self.proc = subprocess.Popen([str(GATEWAY_BIN)], env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        return wait_for(lambda: self.proc.poll() is None and port_open(self.port), 15)

    def stop(self):
        return stop_pid(self.proc, signal.SIGTERM, timeout=15)


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode("utf-8", "replace")
    except OSError as e:
        return 0, "", str(e)


def start_browser(profile):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1000,820", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER)
    service.start()  # started here so that its PID is known even when the session fails to start
    try:
        driver = webdriver.Remote(service.service_url, options=opts)
    except Exception:
        stop_browser(None, service)
        raise
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(10)
    return driver, service


def stop_browser(driver, service):
    pids = []
    if service is not None and service.process is not None:
        pids = child_pids(service.process.pid)
    if driver is not None:
        try:
            driver.quit()
        except Exception:
            pass
    if service is not None and service.process is not None:
        stop_pid(service.process, signal.SIGTERM, timeout=5)
    for pid in pids:  # whatever Chromium left behind
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def page_state(driver):
    return driver.find_element("id", "state").text.strip()


def page_messages(driver):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#messages li'))"
        ".map(function (li) { return (li.querySelector('.text') || li).textContent; });")


def page_heartbeats(driver):
    return int(driver.find_element("id", "heartbeats").text.strip() or 0)


def run(tmp):
    redis = gateway = driver = service = None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "demo.png"
    if screenshot.exists():
        screenshot.unlink()
    log = open(ARTIFACTS / "wsgate.log", "w")
    token = uuid.uuid4().hex[:8]
    try:
        require_setup(["selenium"])

        redis = Redis(tmp)
        require("redis-server starts", wait_for(lambda: redis.cli("PING") == "PONG", 10))

        port = free_port()
        gateway = Gateway(port, redis.port, log)
        require("gateway starts and listens", gateway.start(), f"see {ARTIFACTS / 'wsgate.log'}")
        base = f"http://127.0.0.1:{port}"

        status, ctype, body = http_get(base + "/wsgate.js")
        check("GET /wsgate.js: 200 application/javascript, the client",
              status == 200 and "javascript" in ctype and "WSGate" in body, f"{status} {ctype!r}")
        status, ctype, body = http_get(base + "/")
        require("GET / (WSGATE_DEMO=1): 200 text/html, the demo page",
                status == 200 and "text/html" in ctype and 'id="messages"' in body, f"{status} {ctype!r}")

        driver, service = start_browser(tmp / "profile")
        driver.get(base + "/")
        require("page connects (#state: connected)",
                wait_for(lambda: page_state(driver) == "connected", 15),
                f"#state is {page_state(driver)!r}")

        hint = f'redis-cli PUBLISH {CHANNEL} "Hello everybody"'
        check("hint names the channel with the gateway's prefix",
              wait_for(lambda: driver.find_element("id", "hint").text.strip() == hint, 5),
              f"#hint is {driver.find_element('id', 'hint').text.strip()!r}, expected {hint!r}")

        # Publish once the gateway's subscription is in place (a message published before it is lost).
        require("gateway subscribed to " + CHANNEL, wait_for(lambda: redis.subscribers(CHANNEL) >= 1, 10))
        redis.cli("PUBLISH", CHANNEL, "hello from redis")
        check("message published with redis-cli appears in #messages",
              wait_for(lambda: "hello from redis" in page_messages(driver), 10), f"{page_messages(driver)}")

        before = page_heartbeats(driver)
        check("heartbeat counter increases (500 ms interval)",
              wait_for(lambda: page_heartbeats(driver) >= before + 2, 5),
              f"{before} -> {page_heartbeats(driver)}")
        check("heartbeats are not shown as messages", HEARTBEAT not in page_messages(driver))

        typed = f"hello from the browser {token}"
        field = driver.find_element("id", "input")
        field.send_keys(typed)
        driver.find_element("id", "send").click()
        check("message sent from the page comes back (echo)",
              wait_for(lambda: typed in page_messages(driver), 10), f"{page_messages(driver)}")
        check(f"message sent from the page is stored in Redis (GET {CHANNEL})",
              wait_for(lambda: redis.cli("GET", CHANNEL) == typed, 5), repr(redis.cli("GET", CHANNEL)))
        check("input is cleared after sending", field.get_attribute("value") == "")

        status = gateway.stop()
        check("gateway exits 0 on SIGTERM", status == 0, f"exit status {status}")
        require("page shows the disconnect (#state: disconnected)",
                wait_for(lambda: page_state(driver) == "disconnected", 10), f"#state is {page_state(driver)!r}")
        check("send button is disabled while disconnected",
              not driver.find_element("id", "send").is_enabled())

        time.sleep(1)  # let the client fail a reconnect attempt or two: it must keep trying
        require("gateway starts again on the same port", gateway.start(), f"see {ARTIFACTS / 'wsgate.log'}")
        require("page reconnects by itself (#state: connected)",
                wait_for(lambda: page_state(driver) == "connected", 40), f"#state is {page_state(driver)!r}")
        require("gateway subscribed again", wait_for(lambda: redis.subscribers(CHANNEL) >= 1, 10))
        again = f"hello again from redis {token}"
        redis.cli("PUBLISH", CHANNEL, again)
        check("message published after the reconnect appears",
              wait_for(lambda: again in page_messages(driver), 10), f"{page_messages(driver)}")
        before = page_heartbeats(driver)
        check("heartbeats resume after the reconnect",
              wait_for(lambda: page_heartbeats(driver) >= before + 2, 5),
              f"{before} -> {page_heartbeats(driver)}")

        errors = [e for e in driver.get_log("browser")
                  if e.get("level") == "SEVERE" and e.get("source") == "javascript"]
        check("no JavaScript errors on the page", not errors, "; ".join(e.get("message", "") for e in errors))

        driver.save_screenshot(str(screenshot))
        check(f"screenshot saved to {screenshot.relative_to(ROOT)}", screenshot.exists())
    except Abort:
        print("stopping: the remaining steps depend on the failed one", flush=True)
    except Exception as exc:  # an unexpected error is a failed check, not a crash without a summary
        check("test ran without unexpected errors", False, f"{type(exc).__name__}: {exc}")
    finally:
        if driver is not None and not screenshot.exists():
            try:
                driver.save_screenshot(str(screenshot))  # for the failure's diagnosis
            except Exception:
                pass
        stop_browser(driver, service)
        if gateway is not None:
            gateway.stop()
        if redis is not None:
            stop_pid(redis.proc, signal.SIGTERM, timeout=10)
        log.close()


def main():
    tmp = Path(tempfile.mkdtemp(prefix="wsgate-browser-"))
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
