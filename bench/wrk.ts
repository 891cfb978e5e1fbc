/** Runs wrk and reads its `--latency` report. */
import { startChild } from './lib';

/** The same settings for every target: one thread, four connections, latency distribution. */
const WRK_CONNECTIONS = 4;
export const WRK_DURATION = '5s';
export const WRK_WARMUP = '2s';

/** Sent by the gzip rounds, as Prometheus sends it at every scrape. */
export const GZIP_HEADER = 'Accept-Encoding: gzip';

export function wrkArgs(url: string, duration: string, gzip = false): string[] {
  return ['-t1', `-c${WRK_CONNECTIONS}`, `-d${duration}`, '--latency', '--timeout', '10s', ...(gzip ? ['-H', GZIP_HEADER] : []), url];
}

export function wrkCommand(url: string, duration = WRK_DURATION, gzip = false): string {
  return `wrk ${wrkArgs(url, duration, gzip)
    .map((arg) => (arg.includes(' ') ? `'${arg}'` : arg))
    .join(' ')}`;
}

export interface WrkResult {
  requests: number;
  rps: number;
  p50: number;
  p75: number;
  p90: number;
  p99: number;
  /** Non-2xx answers and socket errors, as wrk reports them; empty when there were none. */
  problems: string[];
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function latency(text: string, pct: number): number {
  const match = new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
  if (!match) throw new Error(`wrk output has no ${pct}% latency:\n${text}`);
  return Number(match[1]) * UNIT_MS[match[2]!]!;
}

function parseWrk(text: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const requests = /(\d+) requests in/.exec(text);
  if (!rps || !requests) throw new Error(`unexpected wrk output:\n${text}`);
  const problems: string[] = [];
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  if (non2xx) problems.push(`${non2xx[1]} non-2xx answers`);
  const socket = /Socket errors: (.*)/.exec(text);
  if (socket) problems.push(`socket errors: ${socket[1]}`);
  return {
    requests: Number(requests[1]),
    rps: Number(rps[1]),
    p50: latency(text, 50),
    p75: latency(text, 75),
    p90: latency(text, 90),
    p99: latency(text, 99),
    problems,
  };
}

export async function runWrk(url: string, duration = WRK_DURATION, gzip = false): Promise<WrkResult> {
  const child = startChild('wrk', wrkArgs(url, duration, gzip));
  const { code } = await child.exited;
  if (code !== 0) throw new Error(`wrk exited ${code}: ${child.output()}`);
  return parseWrk(child.output());
}
