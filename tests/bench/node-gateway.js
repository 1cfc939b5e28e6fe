// Reference gateway for scripts/bench: the ws4redis URL scheme in Node with `ws` and `ioredis`.
// ws://host/ws/<facility>?subscribe-broadcast receives PUBLISH broadcast:<facility>; ?publish-broadcast publishes.
// Settings as wsgate's: WSGATE_LISTEN (host:port), REDIS_URL. Stops on SIGTERM/SIGINT.
'use strict';
const { WebSocketServer } = require('ws');
const Redis = require('ioredis');

const [host, port] = (process.env.WSGATE_LISTEN || '127.0.0.1:8080').split(/:(?=\d+$)/);
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379/0';
const sub = new Redis(redisUrl), pub = new Redis(redisUrl);
const rooms = new Map(); // channel -> Set of sockets

const wss = new WebSocketServer({ host, port: Number(port), backlog: 4096, perMessageDeflate: false });
wss.on('connection', (ws, req) => {
  const url = new URL(req.url, 'http://x');
  if (!url.pathname.startsWith('/ws/')) return ws.close(1008, 'not found');
  const channel = 'broadcast:' + decodeURIComponent(url.pathname.slice(4));
  if (url.searchParams.has('subscribe-broadcast')) {
    if (!rooms.has(channel)) { rooms.set(channel, new Set()); sub.subscribe(channel); }
    rooms.get(channel).add(ws);
  }
  if (url.searchParams.has('publish-broadcast')) ws.on('message', (data) => pub.publish(channel, data));
  ws.on('close', () => {
    const room = rooms.get(channel);
    if (room && room.delete(ws) && room.size === 0) { rooms.delete(channel); sub.unsubscribe(channel); }
  });
});
sub.on('messageBuffer', (channel, message) => {
  const room = rooms.get(channel.toString());
  if (room) for (const ws of room) ws.send(message, { binary: false });
});
const stop = () => { wss.close(); sub.disconnect(); pub.disconnect(); setTimeout(() => process.exit(0), 500).unref(); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
