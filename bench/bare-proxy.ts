/**
 * The floor for the gateway's added latency: a proxy with the gateway's own server (`listen`, same limits) and its
 * own `forward` (undici keep-alive pool, answers read up to 64 KiB) and nothing else: no routing by account, no
 * local credentials, no budget, no token swap, no metrics, no classifying of the answer. The client sends the
 * real credentials, which are passed on as they came. Run as its own process, like the sidecar.
 * Usage: node dist/bench/bare-proxy.js UPSTREAM_URL PORT
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent } from 'undici';
import { forward, outgoingHeaders, sendBroker } from '../src/gateway/forward';
import { GATEWAY_BROKER_CONNECTIONS } from '../src/http/descriptors';
import { listen } from '../src/http/server';

const [upstream, port] = process.argv.slice(2);
if (!upstream || !port) {
  process.stderr.write('usage: bare-proxy UPSTREAM_URL PORT\n');
  process.exit(2);
}
const origin = new URL(upstream).origin;
// As the gateway's own pool (src/gateway/start.ts).
const dispatcher = new Agent({ connections: GATEWAY_BROKER_CONNECTIONS, keepAliveTimeout: 30_000 });

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

const pass = (req: IncomingMessage, name: string): Record<string, string> => {
  const value = req.headers[name];
  return typeof value === 'string' ? { [name]: value } : {};
};

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readBody(req);
  const real = { ...pass(req, 'authorization'), ...pass(req, 'appkey'), ...pass(req, 'appsecret') };
  const answer = await forward(dispatcher, {
    origin,
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    headers: outgoingHeaders(req.headers, real),
    body,
    timeoutMs: 10_000,
  });
  sendBroker(res, answer);
}

void listen(
  (req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
  },
  '127.0.0.1',
  Number(port),
  15_000,
).then((server) => {
  process.stdout.write(`bare proxy listening on ${server.url}\n`);
  process.once('SIGTERM', () => void server.close().finally(() => process.exit(0)));
});
