/**
 * Prints, as one JSON line, the median time of rendering prom-client's process metrics registered as the
 * sidecar registers them (registerProcessMetrics), and the same without the event-loop-lag families, one
 * render per event-loop turn, after a warm-up, the two interleaved.
 */
import { performance } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { registerProcessMetrics } from '../src/metrics/catalogue';

const WARMUP = 200;
const RENDERS = 2000;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const all = new Registry();
  registerProcessMetrics(all);
  const withoutLag = new Registry();
  registerProcessMetrics(withoutLag);
  for (const metric of withoutLag.getMetricsAsArray()) if (metric.name.startsWith('nodejs_eventloop_lag')) withoutLag.removeSingleMetric(metric.name);
  const times = { all: [] as number[], withoutLag: [] as number[] };
  for (let i = 0; i < WARMUP + RENDERS; i++) {
    for (const [name, registry] of [
      ['all', all],
      ['withoutLag', withoutLag],
    ] as const) {
      await new Promise((resolve) => setImmediate(resolve));
      const t0 = performance.now();
      await registry.metrics();
      if (i >= WARMUP) times[name].push(performance.now() - t0);
    }
  }
  process.stdout.write(`${JSON.stringify({ renders: RENDERS, medianMs: median(times.all), withoutLagMedianMs: median(times.withoutLag) })}\n`);
  process.exit(0);
}

void main();
