import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { clockFromEnvironment } from '../core/clock';
import type { SimulatorCredential } from '../simulator';
import { durationArg, numberArg, portArg } from './args';

/** `simulator`: the broker simulator alone, on a port, until SIGINT or SIGTERM. */

export async function runSimulatorCommand(opts: {
  host: string;
  port: string;
  credentials?: string;
  spacing: string;
  framesPerSecond: string;
  pingpongInterval: string;
}): Promise<void> {
  // Loaded only here: the simulator has no business in a sidecar's memory.
  const { generateCredential, runSimulatorServer } = require('../simulator') as typeof import('../simulator');
  let credentials: SimulatorCredential[];
  if (opts.credentials) {
    credentials = parseYaml(readFileSync(opts.credentials, 'utf8')) as SimulatorCredential[];
  } else {
    credentials = [generateCredential('kis', 'demo', 'real'), generateCredential('kiwoom', 'demo', 'real')];
  }
  const { url, simulator } = await runSimulatorServer({
    clock: clockFromEnvironment(),
    credentials,
    host: opts.host,
    port: portArg('--port', opts.port),
    spacingMs: durationArg(opts.spacing),
    realtime: { framesPerSecond: numberArg('--frames-per-second', opts.framesPerSecond), pingIntervalMs: durationArg(opts.pingpongInterval) },
  });
  process.stdout.write(`broker simulator listening on ${url} (control API under ${url}/_sim/)\n`);
  const ws = url.replace(/^http/, 'ws');
  process.stdout.write(`WebSockets: KIS ${ws}/tryitout (the "ops" of kis_devlp.yaml: ${ws}), Kiwoom ${ws}/api/dostk/websocket\n`);
  if (!opts.credentials) {
    process.stdout.write('accepting the demo credentials (made up; safe to print):\n');
    for (const c of credentials) process.stdout.write(`  ${c.provider}: appKey=${c.appKey} appSecret=${c.appSecret}\n`);
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await simulator.close();
}
