/**
 * The clients of the real-time measurement, in a process of their own: a reference session straight at the
 * simulator (its own key), and N clients of the endpoint under test (the sidecar's real-time endpoint, or the bare
 * relay). The simulator sends a record to every session that registered its stream in the same beat, so the time a
 * record reaches a client, less the time it reached the reference, is what the hop added. Prints one JSON line:
 * frames and records received in the window, their rate, the added delay's percentiles, and clients closed.
 * Usage: node dist/bench/realtime-probe.js '{"simulatorWs","target","clients","trId","codes","register","warmupMs","windowMs"}'
 * with REFERENCE_APPROVAL_KEY (and TARGET_APPROVAL_KEY when the target needs registrations) in the environment.
 */
import WebSocket from 'ws';

interface ProbeArgs {
  simulatorWs: string;
  /** The endpoint's URL, up to and including /tryitout. */
  target: string;
  clients: number;
  trId: string;
  codes: string[];
  /** Whether each client registers (the sidecar) or just listens (the relay sends everything). */
  register: boolean;
  warmupMs: number;
  windowMs: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as ProbeArgs;
const referenceKey = process.env.REFERENCE_APPROVAL_KEY ?? '';
const targetKey = process.env.TARGET_APPROVAL_KEY ?? '';

const registration = (key: string, code: string) =>
  JSON.stringify({ header: { approval_key: key, custtype: 'P', tr_type: '1', 'content-type': 'utf-8' }, body: { input: { tr_id: args.trId, tr_key: code } } });

/** A record's identity in a frame: its stock code and its cumulative volume (which only grows). */
function recordOf(text: string): string | undefined {
  if (!text.startsWith('0|')) return undefined;
  const payload = text.slice(text.indexOf('|', text.indexOf('|', 2) + 1) + 1);
  const fields = payload.split('^', 14);
  return `${fields[0]}|${fields[13]}`;
}

function open(url: string, onFrame: (record: string, at: number) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.on('message', (data: Buffer) => {
      const at = performance.now();
      const record = recordOf(data.toString('utf8'));
      if (record) onFrame(record, at);
    });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function main(): Promise<void> {
  const reference = new Map<string, number>();
  const arrivals: Array<Array<[string, number]>> = Array.from({ length: args.clients }, () => []);
  let closed = 0;
  const directWs = await open(`${args.simulatorWs}/tryitout`, (record, at) => reference.set(record, at));
  for (const code of args.codes) directWs.send(registration(referenceKey, code));
  const clients: WebSocket[] = [];
  for (let i = 0; i < args.clients; i++) {
    const ws = await open(args.target, (record, at) => arrivals[i]!.push([record, at]));
    ws.on('close', () => closed++);
    if (args.register) for (const code of args.codes) ws.send(registration(targetKey, code));
    clients.push(ws);
  }
  await new Promise((resolve) => setTimeout(resolve, args.warmupMs));
  const from = performance.now();
  process.stdout.write(`${JSON.stringify({ measuring: true })}\n`);
  await new Promise((resolve) => setTimeout(resolve, args.windowMs));
  const to = performance.now();
  // Late arrivals of records sent inside the window still count: a second more to come in.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const delays: number[] = [];
  let frames = 0;
  for (const list of arrivals) {
    for (const [record, at] of list) {
      const sentAt = reference.get(record);
      if (sentAt === undefined || sentAt < from || sentAt >= to) continue;
      frames++;
      delays.push(at - sentAt);
    }
  }
  delays.sort((a, b) => a - b);
  const pick = (p: number) => (delays.length === 0 ? NaN : delays[Math.min(delays.length - 1, Math.floor((p / 100) * delays.length))]!);
  const upstreamFrames = [...reference.values()].filter((at) => at >= from && at < to).length;
  process.stdout.write(
    `${JSON.stringify({ frames, upstreamFrames, seconds: (to - from) / 1000, p50: pick(50), p99: pick(99), max: delays.at(-1) ?? NaN, closed })}\n`,
  );
  for (const ws of [...clients, directWs]) ws.terminate();
  process.exit(0);
}

void main().catch((error: unknown) => {
  process.stderr.write(`probe failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
