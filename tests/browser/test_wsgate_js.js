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
// The subprotocols offered are kept (`protocols`; `nargs`: how many arguments the constructor got); set
// `protocol` (the server's pick, '' for none) before open(), or pass it to open().
class FakeWS {
  constructor(url, protocols) {
    this.url = url; this.protocols = protocols; this.nargs = arguments.length; this.protocol = '';
    this.readyState = 0; this.sent = []; sockets.push(this);
  }
  send(m) { if (this.readyState !== 1) throw new Error('not open'); this.sent.push(m); }
  close(code, reason) { this.closedWith = code; this.readyState = 2; }
  open(protocol) {
    if (protocol !== undefined) this.protocol = protocol;
    this.readyState = 1; this.onopen && this.onopen({});
  }
  msg(d) { this.onmessage && this.onmessage({data: d}); }
  closed(code) { this.readyState = 3; this.onclose && this.onclose({code, reason: '', wasClean: true}); }
}
const WSGate = require(path.join(__dirname, '..', '..', 'static', 'wsgate.js'));
let passed = 0, failed = 0;
const pending = []; // checks that finish later (a Blob's bytes), awaited before the totals
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

// Stream channels: the wsgate.v1 subprotocol (the FakeWS's `protocol` plays the server's pick)
const V1 = 'wsgate.v1';
const env = (ch, id, data) => JSON.stringify({ch, id, data});
const last = (a) => a[a.length - 1];
function client(extra) {
  const out = {got: [], gaps: []};
  sockets.length = 0;
  out.c = WSGate(Object.assign({uri: 'ws://x/ws/s?subscribe-broadcast', WebSocket: FakeWS,
    receive_message: (d, m) => out.got.push([d, m]), gap: (i) => out.gaps.push(i),
    onstate: (st, info) => { if (st === 'disconnected') out.delay = info.reconnect_in; }}, extra));
  return out;
}

// offering the subprotocol
let t = client();
check('offers wsgate.v1 by default', () => { assert.deepEqual(sockets[0].protocols, [V1]); assert.equal(t.c.mode, null); });
sockets[0].open('');
sockets[0].msg('plain');
sockets[0].msg(env('a', '1-0', 'x'));
check('server picked no subprotocol: raw mode, messages as they came, meta null', () => {
  assert.equal(t.c.mode, 'raw');
  assert.deepEqual(t.got, [['plain', {channel: null, id: null}], [env('a', '1-0', 'x'), {channel: null, id: null}]]);
  assert.deepEqual(t.c.last_ids(), {});
});
t.c.close();
t = client({protocol: 'raw', since: {a: '5-0'}, uri: 'ws://x/ws/s?subscribe-broadcast&since.b=1-0'});
check("protocol: 'raw' offers nothing and leaves the uri as written", () => {
  assert.equal(sockets[0].nargs, 1); assert.equal(sockets[0].protocols, undefined);
  assert.equal(sockets[0].url, 'ws://x/ws/s?subscribe-broadcast&since.b=1-0');
});
sockets[0].open(V1); // a browser would refuse this; the client must not speak v1 without offering it
sockets[0].msg(env('a', '6-0', 'x'));
check("protocol: 'raw' never speaks v1", () => {
  assert.equal(t.c.mode, 'raw'); assert.deepEqual(t.got, [[env('a', '6-0', 'x'), {channel: null, id: null}]]);
});
t.c.close();

// envelopes
t = client({binary_type: 'arraybuffer'});
sockets[0].open(V1);
check('server picked wsgate.v1: mode v1', () => assert.equal(t.c.mode, 'v1'));
sockets[0].msg(env('broadcast:s', '1700000000000-0', 'hello'));
sockets[0].msg(env('plain:s', null, 'pubsub'));
sockets[0].msg(JSON.stringify({ch: 'plain:s', data: 'no id member'}));
sockets[0].msg(JSON.stringify({ch: 'bin', id: '1-0', data_b64: Buffer.from([0, 1, 2, 250, 255]).toString('base64')}));
sockets[0].msg(JSON.stringify({ch: 'bin', id: '2-0', data_b64: ''}));
sockets[0].msg(JSON.stringify({ch: 'bin', id: '3-0', data_b64: 'AAEC+v8'})); // unpadded
sockets[0].msg('  ' + env('ws', '1-0', 'leading blanks'));
check('data: payload string with meta {channel, id}', () => {
  assert.deepEqual(t.got[0], ['hello', {channel: 'broadcast:s', id: '1700000000000-0'}]);
});
check('id null (plain pub/sub channel), and id left out', () => {
  assert.deepEqual(t.got[1], ['pubsub', {channel: 'plain:s', id: null}]);
  assert.deepEqual(t.got[2], ['no id member', {channel: 'plain:s', id: null}]);
  assert.ok(!('plain:s' in t.c.last_ids()));
});
check("data_b64 with binary_type 'arraybuffer': an ArrayBuffer of the bytes (padded, empty, unpadded)", () => {
  for (const [i, bytes] of [[3, [0, 1, 2, 250, 255]], [4, []], [5, [0, 1, 2, 250, 255]]]) {
    assert.ok(t.got[i][0] instanceof ArrayBuffer, String(t.got[i][0]));
    assert.deepEqual([...new Uint8Array(t.got[i][0])], bytes);
  }
  assert.deepEqual(t.got[5][1], {channel: 'bin', id: '3-0'});
});
check('JSON with blanks around it is still an envelope', () => {
  assert.deepEqual(t.got[6], ['leading blanks', {channel: 'ws', id: '1-0'}]);
});
check('send_message sends raw text in v1 mode', () => {
  assert.equal(t.c.send_message('{"not":"wrapped"}'), true); assert.deepEqual(sockets[0].sent, ['{"not":"wrapped"}']);
});
t.c.close();
t = client();
sockets[0].open(V1);
sockets[0].msg(JSON.stringify({ch: 'bin', id: null, data_b64: Buffer.from('blob bytes').toString('base64')}));
check('data_b64 by default: a Blob (as binaryType blob gives)', () => {
  assert.ok(t.got[0][0] instanceof Blob); assert.equal(t.got[0][0].size, 10);
  assert.deepEqual(t.got[0][1], {channel: 'bin', id: null});
});
pending.push(t.got[0][0].text().then((text) => check('the Blob holds the decoded bytes', () => assert.equal(text, 'blob bytes'))));
t.c.close();

// dedupe and resuming
t = client({uri: 'ws://x/ws/s?subscribe-broadcast&echo'});
sockets[0].open(V1);
for (const id of ['1-0', '2-0', '2-0', '1-5', '3-0']) sockets[0].msg(env('a', id, 'a' + id));
sockets[0].msg(env('b', '1-0', 'b1-0')); // ids are per channel
check('a message whose id is not above the last delivered is dropped', () => {
  assert.deepEqual(t.got.map((g) => g[0]), ['a1-0', 'a2-0', 'a3-0', 'b1-0']);
  assert.deepEqual(t.c.last_ids(), {a: '3-0', b: '1-0'});
});
sockets[0].closed(1006);
advance(t.delay);
check('the reconnect asks to resume every channel', () => {
  assert.equal(sockets.length, 2); assert.deepEqual(sockets[1].protocols, [V1]);
  assert.equal(sockets[1].url, 'ws://x/ws/s?subscribe-broadcast&echo&since.a=3-0&since.b=1-0');
});
sockets[1].open(V1);
for (const id of ['2-0', '3-0', '4-0']) sockets[1].msg(env('a', id, 'a' + id)); // the replay overlaps
sockets[1].msg(env('b', '1-0', 'b1-0'));
sockets[1].msg(env('b', '1-1', 'b1-1'));
check('the replay after a reconnect is delivered once, in order', () => {
  assert.deepEqual(t.got.map((g) => g[0]), ['a1-0', 'a2-0', 'a3-0', 'b1-0', 'a4-0', 'b1-1']);
});
sockets[1].closed(1001);
advance(t.delay);
check('since parameters are replaced, not added up', () => {
  assert.equal(sockets[2].url, 'ws://x/ws/s?subscribe-broadcast&echo&since.a=4-0&since.b=1-1');
});
t.c.close();

t = client({uri: 'ws://x/ws/s?since=7-0&subscribe-broadcast&since.old=1-0&since.bad=x&echo'});
check('since.* in uri are initial ids; malformed ones are ignored; a plain since stays for the other channels', () => {
  assert.deepEqual(t.c.last_ids(), {old: '1-0'});
  assert.equal(sockets[0].url, 'ws://x/ws/s?since=7-0&subscribe-broadcast&echo&since.old=1-0');
});
sockets[0].open(V1);
sockets[0].msg(env('user:john:foobar', '5-1', 'x'));
sockets[0].msg(env('café/ü&=?', '6-2', 'y'));
sockets[0].msg(env('a b+c', '7-3', 'z'));
sockets[0].closed(1006);
advance(t.delay);
check('channel names and ids are percent-encoded (":", non-ASCII, reserved characters)', () => {
  assert.equal(sockets[1].url, 'ws://x/ws/s?since=7-0&subscribe-broadcast&echo&since.old=1-0' +
    '&since.user%3Ajohn%3Afoobar=5-1' +
    '&since.caf%C3%A9%2F%C3%BC%26%3D%3F=6-2&since.a%20b%2Bc=7-3');
});
check('the encoded names read back as the same channels', () => {
  const q = new URL(sockets[1].url.replace(/^ws/, 'http')).searchParams;
  assert.equal(q.get('since.user:john:foobar'), '5-1'); assert.equal(q.get('since.café/ü&=?'), '6-2');
  assert.equal(q.get('since.a b+c'), '7-3');
});
t.c.close();

t = client({uri: 'ws://x/ws/s?subscribe-user#frag'});
sockets[0].open(V1);
sockets[0].msg(env('a', '1-0', 'x'));
sockets[0].closed(1006);
advance(t.delay);
check('a uri fragment stays last', () => assert.equal(sockets[1].url, 'ws://x/ws/s?subscribe-user&since.a=1-0#frag'));
t.c.close();
t = client({uri: 'ws://x/ws/s'});
check('no since parameters while no id is known: uri as written', () => assert.equal(sockets[0].url, 'ws://x/ws/s'));
sockets[0].open(V1);
sockets[0].msg(env('a', '1-0', 'x'));
sockets[0].closed(1006);
advance(t.delay);
check('a uri without a query gets one', () => assert.equal(sockets[1].url, 'ws://x/ws/s?since.a=1-0'));
t.c.close();

// ids beyond 2^53
t = client();
sockets[0].open(V1);
const big = ['9007199254740992-0', '9007199254740993-0', '9007199254740993-0', '9007199254740992-9',
  '9007199254740993-9007199254740993', '9007199254740993-9007199254740992', '9999999999999999999-0',
  '10000000000000000000-0', '09999999999999999999-5', '18446744073709551615-18446744073709551614',
  '18446744073709551615-18446744073709551615', '18446744073709551614-99999999999999999999'];
for (const id of big) sockets[0].msg(env('n', id, id));
check('ids past 2^53 compare exactly (as Numbers 9007199254740992 and ...993 are equal)', () => {
  assert.deepEqual(t.got.map((g) => g[0]), ['9007199254740992-0', '9007199254740993-0', '9007199254740993-9007199254740993',
    '9999999999999999999-0', '10000000000000000000-0', '18446744073709551615-18446744073709551614',
    '18446744073709551615-18446744073709551615']);
  assert.deepEqual(t.c.last_ids(), {n: '18446744073709551615-18446744073709551615'});
});
for (const id of ['10-0', '009-0', '0010-0', '011-0', '11-00', '11-01']) sockets[0].msg(env('z', id, id));
check('leading zeros do not count', () => assert.deepEqual(t.got.slice(7).map((g) => g[0]), ['10-0', '011-0', '11-01']));
t.c.close();

// gap notices
t = client();
sockets[0].open(V1);
sockets[0].msg(env('g', '10-0', 'm10'));
sockets[0].msg(JSON.stringify({ch: 'g', gap: true, after: '10-0', reason: 'trimmed'}));
sockets[0].msg(env('g', '50-0', 'm50'));
check('gap notice: gap({channel, after, reason}); the messages after it are delivered', () => {
  assert.deepEqual(t.gaps, [{channel: 'g', after: '10-0', reason: 'trimmed'}]);
  assert.deepEqual(t.got.map((g) => g[0]), ['m10', 'm50']);
  assert.deepEqual(t.c.last_ids(), {g: '50-0'});
});
sockets[0].msg(JSON.stringify({ch: 'g', gap: true, after: '10-0', reason: 'trimmed'}));
sockets[0].msg(JSON.stringify({ch: 'h', gap: true, after: '10-0', reason: 'replay_max'}));
sockets[0].msg(JSON.stringify({ch: 'g', gap: true, after: '50-0', reason: 'replay_max'}));
check('a repeated notice is reported once; other channels and later ones are reported', () => {
  assert.deepEqual(t.gaps.slice(1), [{channel: 'h', after: '10-0', reason: 'replay_max'},
    {channel: 'g', after: '50-0', reason: 'replay_max'}]);
  assert.equal(t.got.length, 2); assert.deepEqual(t.c.last_ids(), {g: '50-0'});
});
t.c.close();
t = client({gap: undefined});
sockets[0].open(V1);
sockets[0].msg(JSON.stringify({ch: 'g', gap: true, after: '1-0', reason: 'trimmed'}));
check('a gap notice without a gap callback is dropped quietly', () => assert.deepEqual(t.got, []));
t.c.close();

// malformed frames in v1 mode
const logged = [];
const consoleLog = console.log;
console.log = (...a) => { if (a[0] === 'wsgate:') logged.push(a.slice(1).join(' ')); else consoleLog(...a); };
t = client({debug: true});
sockets[0].open(V1);
const bad = ['not json', '{"broken":', '{"x":1}', '[1,2]', 'null', '"str"', '{"ch":5,"id":null,"data":"x"}',
  '{"ch":"","id":null,"data":"x"}', '{"ch":"a","id":"abc","data":"x"}', '{"ch":"a","id":"1","data":"x"}',
  '{"ch":"a","id":17,"data":"x"}', '{"ch":"a","id":"1-0"}', '{"ch":"a","id":"1-0","data":5}',
  '{"ch":"a","id":"1-0","data_b64":"@@@@"}', '{"ch":"a","id":"1-0","data_b64":"QUJD="}'];
const binFrame = new ArrayBuffer(3);
let threw = null;
try {
  for (const b of bad) sockets[0].msg(b);
  sockets[0].msg(binFrame);
} catch (e) {
  threw = e;
}
console.log = consoleLog;
check('malformed frames never throw', () => assert.equal(threw, null));
check('malformed frames are delivered as they came, meta {channel: null, id: null}', () => {
  assert.deepEqual(t.got.map((g) => g[0]), bad.concat([binFrame]));
  for (const g of t.got) assert.deepEqual(g[1], {channel: null, id: null});
  assert.deepEqual(t.c.last_ids(), {});
});
check('and logged in debug mode', () => assert.equal(logged.filter((l) => /not a wsgate\.v1 message/.test(l)).length, bad.length + 1));
t.c.close();

// heartbeats stay unwrapped
t = client({heartbeat_msg: '--heartbeat--'});
sockets[0].open(V1);
sockets[0].msg('--heartbeat--');
sockets[0].msg(env('a', '1-0', '--heartbeat--'));
check('ws4redis heartbeat swallowed in v1 mode; a payload equal to it is a message', () => {
  assert.equal(t.c.heartbeats, 1); assert.deepEqual(t.got, [['--heartbeat--', {channel: 'a', id: '1-0'}]]);
});
advance(5000);
check('and answered as in raw mode', () => assert.deepEqual(sockets[0].sent, ['--heartbeat--']));
t.c.close();
t = client({heartbeat_mode: 'json'});
sockets[0].open(V1);
sockets[0].msg('{"type":"heartbeat","timestamp":9,"timeout":60000}');
sockets[0].msg(env('a', '1-0', 'x'));
check('json heartbeat swallowed and answered in v1 mode', () => {
  assert.equal(t.c.heartbeats, 1); assert.deepEqual(t.got, [['x', {channel: 'a', id: '1-0'}]]);
  assert.deepEqual(sockets[0].sent.map(JSON.parse), [{type: 'heartbeat_response', timestamp: 9}]);
});
t.c.close();

// since and last_ids()
t = client({uri: 'ws://x/ws/s?subscribe-broadcast&since.a=1-0&since.c=4-4',
  since: {a: '7-1', b: '18446744073709551615-0', bad: '12', worse: 5, '': '1-0'}});
check('since: initial ids, over the uri\'s; malformed entries ignored', () => {
  assert.deepEqual(t.c.last_ids(), {a: '7-1', c: '4-4', b: '18446744073709551615-0'});
  assert.equal(sockets[0].url, 'ws://x/ws/s?subscribe-broadcast&since.a=7-1&since.c=4-4&since.b=18446744073709551615-0');
});
sockets[0].open(V1);
sockets[0].msg(env('a', '7-1', 'seen on an earlier page'));
sockets[0].msg(env('a', '7-2', 'new'));
check('messages up to an initial id are not delivered again', () => assert.deepEqual(t.got, [['new', {channel: 'a', id: '7-2'}]]));
const copy = t.c.last_ids();
copy.a = '999-0'; copy.z = '1-0';
check('last_ids() returns a copy', () => assert.deepEqual(t.c.last_ids(), {a: '7-2', c: '4-4', b: '18446744073709551615-0'}));
t.c.close();
let seenInside = null;
t = client({receive_message: (d, m) => { seenInside = t.c.last_ids()[m.channel]; }});
sockets[0].open(V1);
sockets[0].msg(env('a', '3-3', 'x'));
check('last_ids() inside receive_message already has the message being delivered', () => assert.equal(seenInside, '3-3'));
sockets[0].msg(env('__proto__', '1-0', 'x'));
check('a channel named __proto__ is an ordinary entry', () => {
  const ids = t.c.last_ids();
  assert.equal(Object.getPrototypeOf(ids), Object.prototype); assert.equal(ids['__proto__'], '1-0');
  assert.deepEqual(Object.keys(ids), ['a', '__proto__']);
});
t.c.close();
let one = [];
t = client({receive_message: function (m) { one.push(m); }});
sockets[0].open(V1);
sockets[0].msg(env('a', '1-0', 'ws4redis style'));
check('a one-argument receive_message gets the payload', () => assert.deepEqual(one, ['ws4redis style']));
t.c.close();

// a server that leaves the offered subprotocol out of its 101 (Chromium then fails the handshake)
t = client({since: {a: '1-0'}});
sockets[0].closed(1006); // before opening
advance(t.delay);
check('after an offering attempt failed before opening, the next offers nothing and asks no since', () => {
  assert.equal(sockets.length, 2); assert.equal(sockets[1].nargs, 1); assert.equal(sockets[1].url, 'ws://x/ws/s?subscribe-broadcast');
});
sockets[1].closed(1006);
advance(t.delay);
check('the one after offers again', () => {
  assert.equal(sockets.length, 3); assert.deepEqual(sockets[2].protocols, [V1]);
  assert.equal(sockets[2].url, 'ws://x/ws/s?subscribe-broadcast&since.a=1-0');
});
sockets[2].closed(1006);
advance(t.delay);
sockets[3].open();
check('a ws4redis server reached without the offer: raw mode', () => {
  assert.equal(sockets[3].nargs, 1); assert.equal(t.c.mode, 'raw');
});
sockets[3].closed(1001);
advance(t.delay);
check('the reconnect after a raw connection offers again', () => assert.deepEqual(sockets[4].protocols, [V1]));
sockets[4].open(V1);
sockets[4].closed(1001);
advance(t.delay);
sockets[5].closed(1006);
advance(t.delay);
check('once wsgate.v1 was spoken, a failed attempt is an outage: the next still offers', () => {
  assert.equal(sockets.length, 7); assert.deepEqual(sockets[6].protocols, [V1]);
});
t.c.close();

Promise.all(pending).then(() => {
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
});
