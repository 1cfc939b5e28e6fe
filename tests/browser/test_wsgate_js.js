// Unit checks of static/wsgate.js (the browser client) with a fake WebSocket and a fake clock, no browser:
//   node tests/browser/test_wsgate_js.js          ends with "N passed, N failed"; exit status 1 on a failure
'use strict';
const assert = require('assert');
const path = require('path');
let now = 0, timers = [], nextId = 1;
global.setTimeout = (f, ms) => { const id = nextId++; timers.push({id, at: now + ms, f}); return id; };
global.setInterval = (f, ms) => { const id = nextId++; timers.push({id, at: now + ms, f, every: ms}); return id; };
global.clearTimeout = global.clearInterval = (id) => { timers = timers.filter(t => t.id !== id); };
Date.now = () => now;
function advance(ms) {
  const end = now + ms;
  for (;;) {
    timers.sort((a, b) => a.at - b.at);
    const t = timers[0];
    if (!t || t.at > end) break;
    now = t.at;
    if (t.every) t.at += t.every; else timers.shift();
    t.f();
  }
  now = end;
}
const sockets = [];
class FakeWS {
  constructor(url) { this.url = url; this.readyState = 0; this.sent = []; sockets.push(this); }
  send(m) { if (this.readyState !== 1) throw new Error('not open'); this.sent.push(m); }
  close(code, reason) { this.closedWith = code; this.readyState = 2; }
  open() { this.readyState = 1; this.onopen && this.onopen({}); }
  msg(d) { this.onmessage && this.onmessage({data: d}); }
  closed(code) { this.readyState = 3; this.onclose && this.onclose({code, reason: '', wasClean: true}); }
}
const WSGate = require(path.join(__dirname, '..', '..', 'static', 'wsgate.js'));
let passed = 0, failed = 0;
function check(name, f) {
  try {
    f();
    passed++;
    console.log('ok   - ' + name);
  } catch (e) {
    failed++;
    console.log('FAIL - ' + name + ': ' + e.message);
  }
}

// ws4redis dialect
let got = [], states = [], disc = 0, hbs = [];
let c = WSGate({uri: 'ws://x/ws/demo?subscribe-broadcast', WebSocket: FakeWS, heartbeat_msg: '--heartbeat--',
  receive_message: m => got.push(m), onstate: (s, i) => states.push([s, i]), disconnected: () => disc++,
  onheartbeat: n => hbs.push(n)});
check('connects at once, state connecting', () => { assert.equal(sockets.length, 1); assert.equal(c.state, 'connecting'); });
check('send_message false before open', () => assert.equal(c.send_message('x'), false));
sockets[0].open();
check('connected', () => assert.equal(c.state, 'connected'));
sockets[0].msg('hello');
sockets[0].msg('--heartbeat--');
sockets[0].msg('--heartbeat--');
check('heartbeats swallowed and counted', () => { assert.deepEqual(got, ['hello']); assert.equal(c.heartbeats, 2); assert.deepEqual(hbs, [1, 2]); });
check('send_message true when open', () => { assert.equal(c.send_message('m1'), true); assert.deepEqual(sockets[0].sent, ['m1']); });
advance(5000);
check('sends heartbeat back every 5 s', () => assert.deepEqual(sockets[0].sent, ['m1', '--heartbeat--']));
advance(14999);
check('no reconnect after 4 intervals yet (3 missed)', () => { assert.equal(sockets.length, 1); assert.equal(c.state, 'connected'); });
advance(1);
check('4th missed interval: drops connection, disconnected, reconnect scheduled', () => {
  assert.equal(sockets[0].closedWith, 4000); assert.equal(c.state, 'disconnected'); assert.equal(disc, 1);
  const info = states[states.length - 1][1]; assert.ok(info.reconnect_in >= 250 && info.reconnect_in <= 500, info.reconnect_in);
});
advance(500);
check('reconnects', () => { assert.equal(sockets.length, 2); assert.equal(c.state, 'connecting'); });
// server never sends heartbeats on this connection: nothing sent, no drop
sockets[1].open();
advance(60000);
check('no heartbeat sent to a server that sends none, no drop', () => { assert.deepEqual(sockets[1].sent, []); assert.equal(c.state, 'connected'); });
// backoff: refuse every attempt
sockets[1].closed(1006);
const delays = [];
for (let i = 0; i < 10; i++) {
  const info = states[states.length - 1][1];
  delays.push(info.reconnect_in);
  advance(info.reconnect_in);
  sockets[sockets.length - 1].closed(1006);
}
check('capped exponential backoff with jitter: ' + delays.join(','), () => {
  for (let i = 0; i < delays.length; i++) {
    const ceil = Math.min(30000, 500 * 2 ** i);
    assert.ok(delays[i] >= ceil / 2 && delays[i] <= ceil, `delay ${i}: ${delays[i]} not in [${ceil / 2}, ${ceil}]`);
  }
});
advance(states[states.length - 1][1].reconnect_in);
sockets[sockets.length - 1].open();
sockets[sockets.length - 1].closed(1001);
check('backoff resets after a successful open', () => { const d = states[states.length - 1][1].reconnect_in; assert.ok(d <= 500, d); });
const n = sockets.length;
c.close();
advance(120000);
check('close(): state closed, no reconnect', () => { assert.equal(c.state, 'closed'); assert.equal(sockets.length, n); });

// JSON dialect
sockets.length = 0; got = [];
c = WSGate({uri: 'ws://x/ws/j?subscribe-broadcast', WebSocket: FakeWS, heartbeat_mode: 'json', receive_message: m => got.push(m)});
sockets[0].open();
sockets[0].msg('{"type":"heartbeat","timestamp":123,"timeout":60000}');
sockets[0].msg('{"type":"ping"}');
sockets[0].msg('--heartbeat--');
sockets[0].msg('{"type":"heartbeat"' + ' '.repeat(600) + '}');
check('json heartbeat swallowed and answered; others passed on', () => {
  assert.equal(c.heartbeats, 1);
  assert.deepEqual(sockets[0].sent.map(JSON.parse), [{type: 'heartbeat_response', timestamp: 123}]);
  assert.equal(got.length, 3);
});
advance(59000);
sockets[0].msg('{"type":"heartbeat","timestamp":124,"timeout":60000}');
advance(59999);
check('watchdog re-armed by each heartbeat', () => assert.equal(c.state, 'connected'));
advance(2);
check('no heartbeat for timeout ms: reconnect', () => { assert.equal(c.state, 'disconnected'); assert.equal(sockets[0].closedWith, 4000); });
advance(1000);
sockets[1].open();
sockets[1].msg('{"type":"heartbeat","timestamp":1,"timeout":0}');
advance(1000);
sockets[1].msg('{"type":"heartbeat","timestamp":2,"timeout":0}');
advance(2999);
check('timeout 0: watchdog from spacing x 3 (not yet)', () => assert.equal(c.state, 'connected'));
advance(2);
check('timeout 0: watchdog from spacing x 3 (fired)', () => assert.equal(c.state, 'disconnected'));
c.close();

// relative URI
global.location = {protocol: 'https:', host: 'example.com:8443'};
sockets.length = 0;
c = WSGate({uri: '/ws/r?subscribe-broadcast', WebSocket: FakeWS});
check('relative uri on an https page', () => assert.equal(sockets[0].url, 'wss://example.com:8443/ws/r?subscribe-broadcast'));
c.close();
check('WSGate without new, uri required', () => assert.throws(() => WSGate({}), /URI/));
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
