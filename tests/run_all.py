#!/usr/bin/python3
"""Runs every test of the project and ends with one line "N passed, N failed".

Usage: tests/run_all.py --build DIR [--fuzz-build DIR] [--fuzz-seconds N] [--skip-integration]

Each unit-test and corpus-replay binary registered with meson prints its own "N passed, N failed" line; the
integration runner, the browser tests and the README check (tests/readme/run_readme.py, which starts
scripts/run and so builds build/release) do the same; each short libFuzzer run counts as one test.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed", re.M)


def run_counted(name, cmd, env=None, timeout=600):
    """Runs a command whose output ends with a summary line; returns (passed, failed)."""
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout)
        out = proc.stdout.decode(errors="replace")
        code = proc.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") + "\n(timed out)"
        code = -1
    found = SUMMARY.findall(out)
    passed, failed = (int(found[-1][0]), int(found[-1][1])) if found else (0, 0)
    if code != 0 and failed == 0:
        failed = 1  # crashed or exited non-zero without saying why: count it
    status = "ok  " if failed == 0 else "FAIL"
    print(f"{status} {name}: {passed} passed, {failed} failed ({time.monotonic() - start:.1f}s)", flush=True)
    if failed:
        print(failure_report(out), flush=True)
    return passed, failed


def failure_report(out, limit=12000):
    """The failing tests' own blocks (a "FAIL ..." line up to the next blank line) come first, so a CI log that
    keeps only part of the output still names them; the end of the output follows for crashes."""
    blocks, current = [], None
    for line in out.splitlines():
        if line.startswith("FAIL "):
            current = [line]
            blocks.append(current)
        elif current is not None:
            if line.strip():
                current.append(line)
            else:
                current = None
    text = ""
    if blocks:
        text = "failed:\n" + "\n".join(b[0] for b in blocks) + "\n\n"
        text += "\n\n".join("\n".join(b) for b in blocks)[:limit] + "\n--- end of output ---\n"
    return text + out[-3000:]


def meson_tests(build):
    raw = subprocess.run(["meson", "introspect", "--tests", build], cwd=ROOT, check=True,
                         stdout=subprocess.PIPE).stdout
    return json.loads(raw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--fuzz-build")
    ap.add_argument("--fuzz-seconds", type=int, default=10)
    ap.add_argument("--skip-integration", action="store_true")
    args = ap.parse_args()

    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:strict_string_checks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    total_passed = total_failed = 0

    print("== source layout (include graph, file length)", flush=True)
    p, f = run_counted("layout/includes", ["/usr/bin/python3", "scripts/check-includes"], env=env, timeout=60)
    total_passed += p
    total_failed += f

    print("== unit tests and corpus replays", flush=True)
    for t in meson_tests(args.build):
        p, f = run_counted(f"{t.get('suite', ['?'])[0]}/{t['name']}", t["cmd"], env=env, timeout=300)
        total_passed += p
        total_failed += f

    if args.fuzz_build:
        print(f"== fuzzing, {args.fuzz_seconds}s per target", flush=True)
        fuzz_dir = os.path.join(ROOT, "tests", "fuzz")
        for exe in sorted(os.listdir(args.fuzz_build)):
            path = os.path.join(args.fuzz_build, exe)
            if not exe.startswith("fuzz_") or not os.access(path, os.X_OK) or os.path.isdir(path):
                continue
            target = exe[len("fuzz_"):]
            corpus = os.path.join(fuzz_dir, "corpus", target)
            work = os.path.join(ROOT, ".test-artifacts", "fuzz", target)
            os.makedirs(work, exist_ok=True)
            cmd = [path, f"-max_total_time={args.fuzz_seconds}", "-print_final_stats=1",
                   f"-artifact_prefix={work}/", work] + ([corpus] if os.path.isdir(corpus) else [])
            start = time.monotonic()
            proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            ok = proc.returncode == 0
            print(f"{'ok  ' if ok else 'FAIL'} fuzz/{target} ({time.monotonic() - start:.1f}s)", flush=True)
            if not ok:
                print(proc.stdout.decode(errors="replace")[-6000:], flush=True)
            total_passed += ok
            total_failed += not ok

    if not args.skip_integration:
        print("== integration tests", flush=True)
        bin_path = os.path.join(args.build, "wsgate")
        p, f = run_counted("integration", ["/usr/bin/python3", "tests/integration/run.py", "--bin", bin_path],
                           env=env, timeout=1500)
        total_passed += p
        total_failed += f

        print("== browser client, demo page and stream resume", flush=True)
        p, f = run_counted("browser/wsgate.js", ["node", "tests/browser/test_wsgate_js.js"], env=env, timeout=120)
        total_passed += p
        total_failed += f
        browser_env = dict(env, WSGATE_BIN=bin_path)
        p, f = run_counted("browser/demo", ["/usr/bin/python3", "tests/browser/test_demo.py"], env=browser_env,
                           timeout=300)
        total_passed += p
        total_failed += f
        p, f = run_counted("browser/streams", ["/usr/bin/python3", "tests/browser/test_streams.py"],
                           env=browser_env, timeout=300)
        total_passed += p
        total_failed += f

        print("== README examples, run as written against scripts/run", flush=True)
        p, f = run_counted("readme", ["/usr/bin/python3", "tests/readme/run_readme.py"], env=env, timeout=600)
        total_passed += p
        total_failed += f

    print("== systemd unit", flush=True)
    p, f = run_counted("systemd", ["/usr/bin/python3", "scripts/check-systemd", "--build", args.build], env=env,
                       timeout=300)
    total_passed += p
    total_failed += f

    print("== docker files", flush=True)
    p, f = run_counted("docker", ["scripts/check-docker"], env=env, timeout=600)
    total_passed += p
    total_failed += f

    print(f"{total_passed} passed, {total_failed} failed", flush=True)
    return 1 if total_failed else 0


if __name__ == "__main__":
    sys.exit(main())
