/**
 * The broker simulator in a process of its own for the gateway measurement, with the per-second call quota of
 * its KIS keys raised out of the way (the CLI's `simulator` command keeps the broker's 18), so the simulator
 * itself never refuses a call for the rate and what is measured is the calls' own cost. Prints one line once
 * listening. Usage: node dist/bench/simulator-server.js CREDENTIALS_JSON PORT CALLS_PER_SECOND
 */
import { readFileSync } from 'node:fs';
import { runSimulatorServer, type SimulatorCredential } from '../src/simulator';

const [credentialsFile, port, callsPerSecond] = process.argv.slice(2);
if (!credentialsFile || !port || !callsPerSecond) {
  process.stderr.write('usage: simulator-server CREDENTIALS_JSON PORT CALLS_PER_SECOND\n');
  process.exit(2);
}
const credentials = JSON.parse(readFileSync(credentialsFile, 'utf8')) as SimulatorCredential[];
const perSecond = Number(callsPerSecond);

void runSimulatorServer({ credentials, port: Number(port), spacingMs: 1_000, kisCallsPerSecond: { real: perSecond, mock: perSecond } }).then(
  ({ url, simulator }) => {
    process.stdout.write(`simulator listening on ${url}\n`);
    process.once('SIGTERM', () => void simulator.close().finally(() => process.exit(0)));
  },
);
