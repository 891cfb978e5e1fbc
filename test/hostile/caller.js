// An authenticated client calling every `intervalMs` on a new connection each time, recording each call's latency.
// A connection reset before the answer is retried once (any client library does as much), and counted.
const http = require('node:http');

const [url, headersJson, intervalMs, method = 'GET', body] = process.argv.slice(2);
const headers = JSON.parse(headersJson);
const seen = { calls: 0, ok: 0, statuses: {}, retried: 0, failed: 0, latenciesMs: [] };
let stopping = false;

function once() {
  return new Promise((resolve) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
    req.setTimeout(10_000, () => req.destroy());
    req.end(body);
  });
}

async function loop() {
  while (!stopping) {
    const started = performance.now();
    let status = await once();
    if (status === 0) {
      seen.retried++;
      status = await once();
    }
    seen.calls++;
    seen.latenciesMs.push(Math.round(performance.now() - started));
    seen.statuses[status] = (seen.statuses[status] ?? 0) + 1;
    if (status === 200) seen.ok++;
    else if (status === 0) seen.failed++;
    // The first answer, told at once: a test times its window from here, not from a spawn a busy host may slow.
    if (seen.calls === 1) process.stdout.write('{"first":true}\n');
    await new Promise((r) => setTimeout(r, Number(intervalMs)));
  }
}

void loop();
process.on('SIGTERM', () => {
  stopping = true;
  process.stdout.write(`${JSON.stringify(seen)}\n`, () => process.exit(0));
});
