/** Runs wrk and reads its `--latency` report. */
import { startChild } from './lib';

/** How hard wrk pushes: its threads and connections. */
export interface WrkLoad {
  threads: number;
  connections: number;
}

/** The same settings for every /metrics target: one thread, four connections, latency distribution. */
const SCRAPE_LOAD: WrkLoad = { threads: 1, connections: 4 };
export const WRK_DURATION = '5s';
export const WRK_WARMUP = '2s';

/** Sent by the gzip rounds, as Prometheus sends it at every scrape. */
export const GZIP_HEADER = 'Accept-Encoding: gzip';

/** `headers` as `Name: value`, each passed with -H. */
export function wrkArgs(url: string, duration: string, headers: readonly string[] = [], load: WrkLoad = SCRAPE_LOAD): string[] {
  return [`-t${load.threads}`, `-c${load.connections}`, `-d${duration}`, '--latency', '--timeout', '10s', ...headers.flatMap((h) => ['-H', h]), url];
}

/** For a shell: as it is when nothing in it is special; in double quotes when it holds a $PLACEHOLDER to expand. */
const shellQuoted = (arg: string): string => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : arg.includes('$') ? `"${arg}"` : `'${arg}'`);

/** The command line as a reader would type it (give placeholders such as $TOKEN for any header value that is a secret). */
export function wrkCommand(url: string, duration = WRK_DURATION, headers: readonly string[] = [], load: WrkLoad = SCRAPE_LOAD): string {
  return `wrk ${wrkArgs(url, duration, headers, load).map(shellQuoted).join(' ')}`;
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

export async function runWrk(url: string, duration = WRK_DURATION, headers: readonly string[] = [], load: WrkLoad = SCRAPE_LOAD): Promise<WrkResult> {
  const child = startChild('wrk', wrkArgs(url, duration, headers, load));
  const { code } = await child.exited;
  if (code !== 0) throw new Error(`wrk exited ${code}: ${child.output()}`);
  return parseWrk(child.output());
}
