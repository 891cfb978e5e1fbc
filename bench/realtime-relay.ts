/**
 * The floor for the real-time endpoint's fan-out: a bare `ws` relay. One session at the simulator (its own key, its
 * approval key in RELAY_APPROVAL_KEY), the given codes registered once, and every frame that comes sent, as it came,
 * to every client connected: no authentication, no registration book, no routing, no queue bound, no metrics. Run
 * as its own process, like the sidecar. Usage: node dist/bench/realtime-relay.js SIMULATOR_WS_URL PORT TR_ID CODES
 */
import WebSocket, { WebSocketServer } from 'ws';

const [upstreamUrl, port, trId, codes] = process.argv.slice(2);
const approvalKey = process.env.RELAY_APPROVAL_KEY;
if (!upstreamUrl || !port || !trId || !codes || !approvalKey) {
  process.stderr.write('usage: RELAY_APPROVAL_KEY=... realtime-relay SIMULATOR_WS_URL PORT TR_ID CODES\n');
  process.exit(2);
}

const server = new WebSocketServer({ host: '127.0.0.1', port: Number(port), perMessageDeflate: false });
const upstream = new WebSocket(`${upstreamUrl}/tryitout`, { perMessageDeflate: false });
upstream.on('open', () => {
  for (const code of codes.split(',')) {
    upstream.send(
      JSON.stringify({
        header: { approval_key: approvalKey, custtype: 'P', tr_type: '1', 'content-type': 'utf-8' },
        body: { input: { tr_id: trId, tr_key: code } },
      }),
    );
  }
});
upstream.on('message', (data: Buffer) => {
  if (data[0] === 0x7b /* { */) {
    if (data.includes('PINGPONG')) upstream.pong(data);
    return;
  }
  for (const client of server.clients) client.send(data, { binary: false });
});
upstream.on('close', () => process.exit(1));
server.on('listening', () => process.stdout.write(`relay listening on ws://127.0.0.1:${port}\n`));
process.once('SIGTERM', () => {
  upstream.close();
  server.close(() => process.exit(0));
});
