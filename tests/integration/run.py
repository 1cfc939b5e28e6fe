#!/usr/bin/python3
"""Runs the integration tests: /usr/bin/python3 tests/integration/run.py [--bin PATH] [-k SUBSTRING] [files...]

Discovers tests/integration/test_*.py (or runs the given files) and every top-level function `test_*` in file
order. One private redis-server serves the whole run (FLUSHALL between tests); each test gets fresh fixtures
(see harness.py). Per-test timeout: 60 s (env WSGATE_TEST_TIMEOUT overrides). Exit status: 0 all passed,
1 some failed, 2 usage error or missing binary. The harness self-test needs no gateway but the binary check
still applies: run it alone with `--bin /bin/true tests/integration/test_harness_selftest.py`.
"""

import argparse
import asyncio
import glob
import importlib.util
import inspect
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

FIXTURES = ("gateway", "start_gateway", "run_gateway", "redis", "redis_server")


class TestTimeout(Exception):
    pass


def on_alarm(signum, frame):
    raise TestTimeout(f"test exceeded the per-test timeout of {TIMEOUT}s")


TIMEOUT = int(os.environ.get("WSGATE_TEST_TIMEOUT", "60"))


def discover(files):
    if not files:
        files = sorted(glob.glob(os.path.join(HERE, "test_*.py")))
    return [os.path.abspath(f) for f in files]


def load(path):
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    tests = [(n, f) for n, f in vars(mod).items()
             if n.startswith("test_") and inspect.isfunction(f) and f.__module__ == name]
    tests.sort(key=lambda nf: nf[1].__code__.co_firstlineno)
    return tests


def make_fixtures(fn):
    params = list(inspect.signature(fn).parameters)
    unknown = [p for p in params if p not in FIXTURES]
    if unknown:
        raise TypeError(f"unknown fixture(s) {unknown}; known: {FIXTURES}")
    kwargs = {}

    def start_gateway(args=(), **env):
        return harness.Gateway(env=env, args=args).start()

    for p in params:
        if p == "redis":
            kwargs[p] = harness.redis_client()
        elif p == "redis_server":
            kwargs[p] = harness.STATE.redis_server
        elif p == "start_gateway":
            kwargs[p] = start_gateway
        elif p == "run_gateway":
            kwargs[p] = harness.run_gateway
    if "gateway" in params:  # last, so the other fixtures exist before the process starts
        kwargs["gateway"] = start_gateway(**getattr(fn, "gateway_env", {}))
    return kwargs


def teardown():
    """Stops every gateway the test started (checking exit status and sanitizers) and closes clients.
    Returns a list of failure texts."""
    errors = []
    st = harness.STATE
    for res in reversed(st.resources):
        try:
            res.close()
        except Exception:
            pass
    st.resources = []
    for gw in st.gateways:
        try:
            gw.stop()
        except Exception as e:  # noqa: BLE001
            errors.append(f"teardown: {e}")
        finally:
            gw.kill()
    return errors


def run_one(fn):
    """Runs one test with its fixtures; returns a failure text or None."""
    failure = None
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TIMEOUT)
    try:
        kwargs = make_fixtures(fn)
        if inspect.iscoroutinefunction(fn):
            async def main():
                try:
                    await fn(**kwargs)
                finally:
                    harness.abort_real_clients()
                    await asyncio.sleep(0)  # let the websockets tasks see the lost connections

            asyncio.run(main())
        else:
            fn(**kwargs)
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, KeyboardInterrupt):
            raise
        failure = traceback.format_exc()
    finally:
        signal.alarm(0)
    errors = teardown()
    if errors:
        failure = (failure or "") + "\n".join(errors) + "\n"
    return failure


def main():
    ap = argparse.ArgumentParser(description="wsgate integration tests")
    ap.add_argument("--bin", default=os.environ.get("WSGATE_BIN") or os.path.join(harness.ROOT, "build/test/wsgate"))
    ap.add_argument("-k", dest="substring", default=None, help="run only tests whose file::name contains this")
    ap.add_argument("files", nargs="*")
    args = ap.parse_args()

    bin_path = os.path.abspath(args.bin)
    if not (os.path.isfile(bin_path) and os.access(bin_path, os.X_OK)):
        print(f"error: wsgate binary not found or not executable: {bin_path}\n"
              f"       build it first (e.g. meson setup build/test -Db_sanitize=address,undefined && "
              f"ninja -C build/test) or pass --bin PATH / set WSGATE_BIN", file=sys.stderr)
        return 2
    if harness.websockets is None:
        print("error: python3-websockets is missing; run with /usr/bin/python3", file=sys.stderr)
        return 2
    harness.STATE.bin_path = bin_path

    os.makedirs(harness.ARTIFACTS, exist_ok=True)
    server = harness.RedisServer()
    harness.STATE.redis_server = server
    passed = failed = 0
    try:
        server.start()
        for path in discover(args.files):
            fname = os.path.basename(path)
            try:
                tests = load(path)
            except Exception:  # noqa: BLE001
                failed += 1
                print(f"FAIL {fname}::<import>\n{traceback.format_exc()}", flush=True)
                continue
            for name, fn in tests:
                test_id = f"{fname}::{name}"
                if args.substring and args.substring not in test_id:
                    continue
                harness.STATE.test_id = test_id
                harness.STATE.gateways = []
                harness.STATE.resources = []
                start = time.monotonic()
                try:
                    server.start()  # a previous test may have stopped it
                    server.client().flushall()
                    failure = run_one(fn)
                except Exception:  # noqa: BLE001
                    failure = traceback.format_exc()
                elapsed = time.monotonic() - start
                if failure is None:
                    passed += 1
                    print(f"ok   {test_id} ({elapsed:.1f}s)", flush=True)
                else:
                    failed += 1
                    print(f"FAIL {test_id} ({elapsed:.1f}s)", flush=True)
                    print(failure.rstrip(), flush=True)
                    for gw in harness.STATE.gateways:
                        print(f"--- gateway stderr, last 40 lines ({gw.log_path}) ---")
                        print(harness.tail(gw.log_text(), 40), flush=True)
                    print(flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        for gw in harness.STATE.gateways:
            gw.kill()
        failed += 1
    finally:
        server.stop()
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
