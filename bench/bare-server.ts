/**
 * The practical limit for /metrics: a bare Node `http` server answering every request with the same bytes and
 * content-type the sidecar served. Run as its own process, like the sidecar, so both pay the same costs.
 * Usage: node dist/bench/bare-server.js BODY_FILE CONTENT_TYPE PORT [CONTENT_ENCODING]
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const [bodyFile, contentType, port, contentEncoding] = process.argv.slice(2);
if (!bodyFile || !contentType || !port) {
  process.stderr.write('usage: bare-server BODY_FILE CONTENT_TYPE PORT [CONTENT_ENCODING]\n');
  process.exit(2);
}
const body = readFileSync(bodyFile);
const headers = { 'content-type': contentType, 'content-length': String(body.length), ...(contentEncoding ? { 'content-encoding': contentEncoding } : {}) };
createServer((_req, res) => {
  res.writeHead(200, headers);
  res.end(body);
}).listen(Number(port), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
