"""Logs that cannot be forged: every value a client or a backend chooses (facility, token subject, the
authorization service's refusal text) is quoted and escaped, in text (logfmt) and JSON mode alike: every line
parses, each key once, the event is the real one. Session keys never appear in any line."""

import json
import time
import urllib.parse

import harness as h
from test_auth_callback import AuthServer

FORGED = 'x level=error event=admin_login user=root "quoted" back\\slash'
SUBJECT = 'bob" event=admin_login x="'
SESSION_KEY = "k3yOfTheSession0123456789abcdef"


def parse_logfmt(line):
    """One logfmt line as a dict; fails on anything the renderer must not produce (an unclosed quote, a key
    twice, a token that is not key=value)."""
    out, i, n = {}, 0, len(line)
    while i < n:
        eq = line.find("=", i)
        assert eq > i, f"not key=value at {i}: {line!r}"
        key = line[i:eq]
        assert key.replace("_", "").isalnum() and key.islower() or key in ("ts", "lvl"), f"bad key {key!r}: {line!r}"
        i = eq + 1
        if i < n and line[i] == '"':
            i += 1
            value = []
            while True:
                assert i < n, f"quote not closed: {line!r}"
                c = line[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\":
                    e = line[i + 1]
                    if e == "x":
                        value.append(chr(int(line[i + 2:i + 4], 16)))
                        i += 4
                        continue
                    value.append({"n": "\n", "r": "\r", "t": "\t"}.get(e, e))
                    i += 2
                    continue
                value.append(c)
                i += 1
            value = "".join(value)
        else:
            end = line.find(" ", i)
            end = n if end < 0 else end
            value = line[i:end]
            assert '"' not in value and "=" not in value, f"bare value {value!r} in {line!r}"
            i = end
        assert key not in out, f"key {key} twice: {line!r}"
        out[key] = value
        if i < n:
            assert line[i] == " ", line
            i += 1
    return out


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"a key twice: {keys}"
    return dict(pairs)


def parse_json(line):
    return json.loads(line, object_pairs_hook=no_duplicates)


def exercise(gateway, auth):
    """A client with a forged facility and subject on a session channel, and a refusal with a forged text."""
    facility = urllib.parse.quote(FORGED, safe="")
    ws = gateway.open_raw(f"/ws/{facility}?subscribe-broadcast&subscribe-user&subscribe-session")
    h.wait_numsub(f"session:{SESSION_KEY}:{FORGED}", 1)
    ws.close_handshake()
    auth.answer = (403, 'no "entry"\nevent=admin_login level=error')
    resp = gateway.raw().handshake(f"/ws/{facility}?subscribe-broadcast")
    assert resp.status == 403, resp


def check(lines, parse):
    events = [parse(line) for line in lines if line.strip()]
    assert events, "no log lines"
    assert all(e.get("event") != "admin_login" for e in events)
    opened = [e for e in events if e["event"] == "conn_open"]
    assert len(opened) == 1, opened
    assert opened[0]["facility"] == FORGED and opened[0]["user"] == SUBJECT, opened[0]
    refused = [e for e in events if e["event"] == "handshake_refused"]
    assert refused and refused[-1]["why"].startswith('no "entry"'), refused
    assert "admin_login level=error" in refused[-1]["why"]  # its text, inside one value
    return events


def start(start_gateway, auth, **env):
    # The authorization service admits the client with a forged subject, then refuses with a forged text.
    auth.answer = (200, json.dumps({"user": SUBJECT, "session": SESSION_KEY,
                                    "allow": ["subscribe-broadcast", "subscribe-user", "subscribe-session"]}))
    return start_gateway(WSGATE_AUTH_URL=auth.url, WSGATE_LOG_LEVEL="debug", **env)


def test_forged_values_stay_inside_their_fields_in_text_logs(start_gateway):
    auth = AuthServer()
    try:
        gw = start(start_gateway, auth)
        exercise(gw, auth)
        time.sleep(0.2)
        lines = gw.log_text().splitlines()
        check([line for line in lines if line.startswith("ts=")], parse_logfmt)
        assert all(line.startswith("ts=") for line in lines if line.strip()), "a line that is not a log line"
        assert SESSION_KEY not in gw.log_text()
    finally:
        auth.close()


def test_forged_values_stay_inside_their_fields_in_json_logs(start_gateway):
    auth = AuthServer()
    try:
        gw = start(start_gateway, auth, WSGATE_LOG_FORMAT="json")
        exercise(gw, auth)
        time.sleep(0.2)
        lines = [line for line in gw.log_text().splitlines() if line.strip()]
        events = check(lines, parse_json)
        assert all(isinstance(e["conn"], int) for e in events if "conn" in e)  # numbers stay numbers
        assert SESSION_KEY not in gw.log_text()
    finally:
        auth.close()
