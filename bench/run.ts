/**
 * `npm run bench`: measures the sidecar (scrape throughput and latency, start-up, detect-and-repair, idle
 * memory and CPU, issuances, the gateway's added latency and throughput, the real-time endpoint beside a bare relay)
 * and writes docs/benchmarks.md. Exits 0
 * when every measurement completed, missed targets included (they are reported, not failures); non-zero on an error.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { measureProcessMetricsCost, measureWriteCheckCost } from './attribution';
import { BenchEnv } from './env';
import { measureGateway } from './gateway';
import { measureRealtime } from './realtime';
import { measureRealtimeReplicas } from './realtime-replicas';
import { measureIdle } from './idle';
import { measureCrashloop, measurePolicies } from './issuance';
import { cleanupAll, elapsedSeconds, killAllNow, progress, removeDirsNow } from './lib';
import { machineFacts, missingTools } from './machine';
import { repairSinks, measureRepair } from './repair';
import { renderReport } from './report';
import { measureScrape } from './scrape';
import { measureStartup } from './startup';

const OUTPUT = join(__dirname, '..', '..', 'docs', 'benchmarks.md');

async function main(): Promise<void> {
  const missing = missingTools();
  if (missing.length > 0) {
    for (const m of missing) process.stderr.write(`bench: ${m}\n`);
    process.exitCode = 1;
    return;
  }
  const machine = machineFacts();
  progress(
    `${machine.cpu}, ${machine.cores} CPUs, ${machine.memoryGiB.toFixed(1)} GiB, ${machine.kernel}, Node ${machine.node}; load ${machine.loadAtStart.map((l) => l.toFixed(2)).join(' ')}`,
  );

  const one = await BenchEnv.create({ label: 'one', accounts: 1 });
  const ten = await BenchEnv.create({ label: 'ten', accounts: 10 });
  const thousand = await BenchEnv.create({ label: 'thousand', accounts: 1000 });
  const repairEnv = await BenchEnv.create({ label: 'repair', accounts: 1, sinks: repairSinks });

  const scrape = [await measureScrape(ten), await measureScrape(thousand)];
  progress('attribution: prom-client process metrics, rendered in a bare process');
  const processMetrics = await measureProcessMetricsCost();
  const gateway = await measureGateway();
  const realtime = await measureRealtime();
  const realtimeReplicas = await measureRealtimeReplicas();
  const startup = await measureStartup([one, thousand]);
  progress('attribution: one atomic write check on this disk');
  const writeCheck = await measureWriteCheckCost();
  const repair = await measureRepair(repairEnv);
  const idle = await measureIdle([one, thousand]);
  const policies = await measurePolicies();
  const crashloop = await measureCrashloop();

  const loadAtEnd = os.loadavg();
  const text = renderReport({
    machine,
    loadAtEnd,
    durationS: elapsedSeconds(),
    date: new Date(),
    scrape,
    processMetrics,
    startup,
    writeCheck,
    repair,
    idle,
    crashloop,
    policies,
    gateway,
    realtime,
    realtimeReplicas,
  });
  mkdirSync(join(OUTPUT, '..'), { recursive: true });
  writeFileSync(OUTPUT, text);
  progress(`wrote docs/benchmarks.md (${Math.round(elapsedSeconds())} s in all)`);
}

process.on('exit', () => {
  killAllNow();
  removeDirsNow();
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}, cleaning up\n`);
    void cleanupAll().finally(() => process.exit(130));
  });
}

main()
  .catch((error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll())
  // The simulators' sockets and any timer left would keep the process alive.
  .finally(() => process.exit(process.exitCode ?? 0));
