"""`wsgate publish`: ws4redis's RedisPublisher from the command line: channel names for every audience, PUBLISH
then SETEX (or not), prefix and expiry from flags or the environment, stdin byte for byte, exit statuses 0/1/2
(and 3 with --require-receivers), a warning on stderr for a channel nobody received the message on."""

import socket
import subprocess
import threading

import harness as h


def run_publish(*args, stdin=b"", timeout=15.0, **env):
    """Runs `wsgate publish ARGS` against the private redis-server; returns (status, stdout, stderr) as str.
    A sanitizer report on stderr fails the test."""
    proc = subprocess.run([h.STATE.bin_path, "publish"] + list(args), input=stdin, capture_output=True,
                          timeout=timeout, env=h._process_env(env))
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    found = h.sanitizer_findings(err)
    if found:
        raise h.HarnessError(f"sanitizer report ({', '.join(found)}):\n{h.tail(err)}")
    return proc.returncode, out, err


def test_broadcast_reaches_a_client_and_is_stored_with_the_ttl(gateway, redis):
    ws = gateway.open_raw("/ws/news?subscribe-broadcast")
    h.wait_numsub("broadcast:news", 1)
    status, out, err = run_publish("--facility", "news", "--broadcast", "Hello everybody")
    assert status == 0, err
    assert out == "channel=broadcast:news receivers=1\n", out
    assert ws.recv_text() == "Hello everybody"
    assert redis.get("broadcast:news") == b"Hello everybody"
    assert 3590 <= redis.ttl("broadcast:news") <= 3600
    # A client connecting later gets the stored message first, as from RedisPublisher.
    late = gateway.open_raw("/ws/news?subscribe-broadcast")
    assert late.recv_text() == "Hello everybody"


def test_expire_zero_publishes_without_storing(redis):
    sub = h.Subscriber("broadcast:tick")
    status, out, err = run_publish("--facility=tick", "--broadcast", "--expire", "0", "now")
    assert status == 0, err
    assert out == "channel=broadcast:tick receivers=1\n"
    assert sub.get() == b"now"
    assert redis.exists("broadcast:tick") == 0


def test_expire_from_environment_and_flag_wins(redis):
    status, _, err = run_publish("--facility", "a", "--broadcast", "x", WS4REDIS_EXPIRE="120")
    assert status == 0, err
    assert 115 <= redis.ttl("broadcast:a") <= 120
    status, _, err = run_publish("--facility", "b", "--broadcast", "--expire", "60", "x", WS4REDIS_EXPIRE="120")
    assert status == 0, err
    assert 55 <= redis.ttl("broadcast:b") <= 60
    status, _, err = run_publish("--facility", "c", "--broadcast", "x", WS4REDIS_EXPIRE="0")
    assert status == 0, err
    assert redis.exists("broadcast:c") == 0


def test_identity_channels_in_ws4redis_order(redis):
    names = ["broadcast:chat", "group:admins:chat", "group:staff:chat", "user:john:chat", "session:abc:chat"]
    sub = h.Subscriber(*names)
    status, out, err = run_publish("--session", "abc", "--user", "john", "--group", "admins", "--facility", "chat",
                                   "--group", "staff", "--broadcast", "to all")
    assert status == 0, err
    assert out.splitlines() == [f"channel={n} receivers=1" for n in names], out
    assert [sub.get() for _ in names] == [b"to all"] * len(names)
    for n in names:
        assert redis.get(n) == b"to all", n
        assert redis.ttl(n) > 3500, n


def test_identity_without_broadcast_and_unicode_names(redis):
    status, out, err = run_publish("--facility", "caf\u00e9", "--user", "j\u00f6rg", "h\u00e9")
    assert status == 0, err
    assert out == "channel=user:j\u00f6rg:caf\u00e9 receivers=0\n"
    assert redis.get("user:j\u00f6rg:caf\u00e9".encode()) == "h\u00e9".encode()
    assert redis.exists("broadcast:caf\u00e9".encode()) == 0


def test_prefix_from_flag_and_environment(redis):
    status, out, err = run_publish("--prefix", "ws4redis", "--facility", "foobar", "--broadcast", "--user", "john",
                                   "p1")
    assert status == 0, err
    assert out.splitlines() == ["channel=ws4redis:broadcast:foobar receivers=0",
                                "channel=ws4redis:user:john:foobar receivers=0"]
    assert redis.get("ws4redis:broadcast:foobar") == b"p1"
    assert redis.get("ws4redis:user:john:foobar") == b"p1"
    status, out, err = run_publish("--facility", "foobar", "--broadcast", "p2", WS4REDIS_PREFIX="site")
    assert status == 0, err
    assert redis.get("site:broadcast:foobar") == b"p2"
    status, out, err = run_publish("--prefix", "", "--facility", "foobar", "--broadcast", "p3",
                                   WS4REDIS_PREFIX="site")
    assert status == 0, err
    assert out == "channel=broadcast:foobar receivers=0\n"


def test_prefix_reaches_a_gateway_with_the_same_prefix(start_gateway):
    gw = start_gateway(WS4REDIS_PREFIX="ws4redis")
    ws = gw.open_raw("/ws/foobar?subscribe-broadcast")
    h.wait_numsub("ws4redis:broadcast:foobar", 1)
    status, out, err = run_publish("--facility", "foobar", "--broadcast", "prefixed", WS4REDIS_PREFIX="ws4redis")
    assert status == 0, err
    assert out == "channel=ws4redis:broadcast:foobar receivers=1\n"
    assert ws.recv_text() == "prefixed"


def test_stdin_binary_message_is_published_and_stored_byte_for_byte(gateway, redis):
    data = bytes(range(256)) * 1024 + b"\x00\r\n-\n"
    ws = gateway.open_raw("/ws/bin?subscribe-broadcast")
    h.wait_numsub("broadcast:bin", 1)
    sub = h.Subscriber("broadcast:bin")
    status, out, err = run_publish("--facility", "bin", "--broadcast", "-", stdin=data)
    assert status == 0, err
    assert out == "channel=broadcast:bin receivers=2\n"
    assert sub.get() == data
    assert redis.get("broadcast:bin") == data
    assert ws.recv_message() == (h.OP_BINARY, data)


def test_empty_stdin_and_dash_message_after_double_dash(redis):
    status, _, err = run_publish("--facility", "e", "--broadcast", "-", stdin=b"")
    assert status == 0, err
    assert redis.get("broadcast:e") == b""
    status, _, err = run_publish("--facility", "e", "--broadcast", "--", "--not-an-option")
    assert status == 0, err
    assert redis.get("broadcast:e") == b"--not-an-option"


def test_database_from_redis_url(redis_server):
    status, _, err = run_publish("--redis-url", f"redis://127.0.0.1:{redis_server.port}/3", "--facility", "d",
                                 "--broadcast", "in db 3")
    assert status == 0, err
    db3 = redis_server.new_client(db=3)
    try:
        assert db3.get("broadcast:d") == b"in db 3"
    finally:
        db3.connection_pool.disconnect()
    assert redis_server.client().exists("broadcast:d") == 0


def test_usage_errors_exit_2_and_publish_nothing(redis):
    sub = h.Subscriber("broadcast:f", "user:a:b:f")
    cases = [
        (["--facility", "f", "--user", "a:b", "m"], "identity"),
        (["--facility", "f", "--user", "", "m"], "identity"),
        (["--facility", "f", "--group", "bad\nname", "m"], "identity"),
        (["--facility", "f", "m"], "no audience"),
        (["--broadcast", "m"], "--facility is required"),
        (["--facility", "f\x01", "--broadcast", "m"], "control"),
        (["--facility", "x" * 257, "--broadcast", "m"], "256"),
        (["--facility", "f", "--broadcast"], "no message"),
        (["--facility", "f", "--broadcast", "m1", "m2"], "more than one message"),
        (["--facility", "f", "--broadcast", "--expire", "soon", "m"], "--expire"),
        (["--facility", "f", "--broadcast", "--expire", "-1", "m"], "--expire"),
        (["--facility", "f", "--broadcast", "--colour", "m"], "unknown option"),
        (["--facility", "f", "--broadcast", "-x", "m"], "unknown option"),
        (["--facility", "f", "--broadcast", "m", "--user"], "needs a value"),
        (["--facility", "f", "--broadcast", "--redis-url", "tcp://x", "m"], "--redis-url"),
        (["--facility", "f", "--broadcast", "--prefix", "p" * 256, "m"], "--prefix"),
        (["--facility", "f", "--broadcast", "--redis-url", "redis-cluster://127.0.0.1:7000/1", "m"],
         "--redis-url: bad database number (Redis Cluster has only database 0)"),
    ]
    for args, needle in cases:
        status, out, err = run_publish(*args)
        assert status == 2, (args, status, err)
        assert out == "", (args, out)
        assert needle in err, (args, err)
        assert "Usage: wsgate publish" in err, (args, err)
    status, _, err = run_publish("--facility", "f", "--broadcast", "m", WS4REDIS_EXPIRE="forever")
    assert status == 2 and "WS4REDIS_EXPIRE" in err, err
    status, _, err = run_publish("--facility", "f", "--broadcast", "m", REDIS_URL="http://x")
    assert status == 2 and "REDIS_URL" in err, err
    sub.expect_none(0.2)
    assert redis.keys("*") == []


def test_help_exits_0():
    for flag in ("--help", "-h"):
        status, out, err = run_publish("--facility", "f", flag)
        assert status == 0, err
        assert out.startswith("Usage: wsgate publish"), out
        assert "--session" in out and "WS4REDIS_EXPIRE" in out
        assert "--require-receivers" in out and "3 published but a channel had no receiver" in out, out


def test_no_receiver_warns_on_stderr_and_still_stores(redis):
    status, out, err = run_publish("--facility", "lonely", "--broadcast", "anyone?")
    assert status == 0, err
    assert out == "channel=broadcast:lonely receivers=0\n", out
    assert err.count("\n") == 1, err
    assert "warning" in err and "broadcast:lonely" in err and "no client received" in err, err
    assert "stored for 3600 s" in err, err
    assert redis.get("broadcast:lonely") == b"anyone?"
    status, _, err = run_publish("--facility", "lonely", "--broadcast", "--expire", "0", "now or never")
    assert status == 0, err
    assert "broadcast:lonely" in err and "not stored" in err, err


def test_a_received_message_gives_no_warning(gateway):
    ws = gateway.open_raw("/ws/heard?subscribe-broadcast")
    h.wait_numsub("broadcast:heard", 1)
    for extra in ((), ("--require-receivers",)):
        status, out, err = run_publish("--facility", "heard", "--broadcast", *extra, "hi")
        assert status == 0, (extra, err)
        assert out == "channel=broadcast:heard receivers=1\n", out
        assert err == "", err
        assert ws.recv_text() == "hi"


def test_require_receivers_exits_3_after_publishing_everywhere(gateway, redis):
    ws = gateway.open_raw("/ws/chat?subscribe-broadcast")
    h.wait_numsub("broadcast:chat", 1)
    status, out, err = run_publish("--require-receivers", "--facility", "chat", "--broadcast", "--user", "john",
                                   "for all")
    assert status == 3, (status, err)
    assert out.splitlines() == ["channel=broadcast:chat receivers=1", "channel=user:john:chat receivers=0"], out
    assert "user:john:chat" in err and "broadcast:chat" not in err, err
    assert ws.recv_text() == "for all"
    assert redis.get("user:john:chat") == b"for all"
    assert redis.get("broadcast:chat") == b"for all"


def test_gateway_help_still_works(run_gateway):
    status, out = run_gateway(["--help"])
    assert status == 0 and "Usage:" in out


def test_unreachable_redis_exits_1_with_a_message():
    port = h.free_port()
    status, out, err = run_publish("--facility", "f", "--broadcast", "m", REDIS_URL=f"redis://127.0.0.1:{port}/0")
    assert status == 1, err
    assert out == ""
    assert f"connect to 127.0.0.1:{port}" in err and "refused" in err.lower(), err


def test_unix_socket_that_does_not_exist_exits_1():
    status, _, err = run_publish("--facility", "f", "--broadcast", "m", "--redis-url", "unix:///nonexistent/r.sock")
    assert status == 1, err
    assert "unix:/nonexistent/r.sock" in err, err


def test_server_closing_the_connection_exits_1():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]

    def serve():
        try:
            conn, _ = srv.accept()
            conn.close()
        except OSError:
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        status, out, err = run_publish("--facility", "f", "--broadcast", "m",
                                       REDIS_URL=f"redis://127.0.0.1:{port}/0")
    finally:
        srv.close()
        t.join(5)
    assert status == 1, err
    assert "PUBLISH" in err, err


def test_auth_and_select_errors_exit_1(redis_server):
    status, _, err = run_publish("--facility", "f", "--broadcast", "m",
                                 REDIS_URL=f"redis://:secret@127.0.0.1:{redis_server.port}/0")
    assert status == 1, err
    assert "AUTH:" in err and "secret" not in err, err
    status, _, err = run_publish("--facility", "f", "--broadcast", "m",
                                 REDIS_URL=f"redis://127.0.0.1:{redis_server.port}/99")
    assert status == 1, err
    assert "SELECT 99" in err, err


def test_auth_with_password_and_acl_user(redis):
    redis.execute_command("ACL", "SETUSER", "pub", "on", ">s3cret", "~*", "&*", "+@all")
    try:
        port = h.STATE.redis_server.port
        status, out, err = run_publish("--facility", "f", "--broadcast", "authed",
                                       REDIS_URL=f"redis://pub:s3cret@127.0.0.1:{port}/0")
        assert status == 0, err
        assert redis.get("broadcast:f") == b"authed"
        status, _, err = run_publish("--facility", "f", "--broadcast", "m",
                                     REDIS_URL=f"redis://pub:wrong@127.0.0.1:{port}/0")
        assert status == 1 and "AUTH:" in err, err
    finally:
        redis.execute_command("ACL", "DELUSER", "pub")
