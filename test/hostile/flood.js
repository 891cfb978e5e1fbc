// As many calls as `connections` keep-alive connections carry, each sent as soon as the last was answered: a bot with
// a retry loop, or one inventing a new api-id per call (--invent-api-id), which must not become a new budget.
const http = require('node:http');

const args = process.argv.slice(2);
const invent = args.includes('--invent-api-id');
const [url, headersJson, connections, method = 'GET', body] = args.filter((a) => a !== '--invent-api-id');
const headers = JSON.parse(headersJson);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(connections) });
const seen = { calls: 0, statuses: {}, retryAfter: 0, errors: 0 };
let stopping = false;
let counter = 0;

function once() {
  return new Promise((resolve) => {
    const sent = invent ? { ...headers, 'api-id': `zz${process.pid}x${counter++}` } : headers;
    const req = http.request(url, { method, headers: sent, agent }, (res) => {
      if (res.headers['retry-after'] !== undefined) seen.retryAfter++;
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function worker() {
  while (!stopping) {
    const status = await once();
    seen.calls++;
    seen.statuses[status] = (seen.statuses[status] ?? 0) + 1;
    if (status === 0) {
      seen.errors++;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

for (let i = 0; i < Number(connections); i++) void worker();
process.on('SIGTERM', () => {
  stopping = true;
  agent.destroy();
  process.stdout.write(`${JSON.stringify(seen)}\n`, () => process.exit(0));
});
