/** The tools the bench needs, checked first, and the facts about the machine it ran on. */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

const INSTALL_HINT = 'apt-get install -y wrk prometheus-node-exporter';

function which(binary: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${binary}`], { encoding: 'utf8' }).stdout?.trim();
  return found || undefined;
}

/** Every missing prerequisite, each with what to do about it; empty when all is there. */
export function missingTools(): string[] {
  const missing: string[] = [];
  if (!which('wrk')) missing.push(`wrk is not installed (Debian/Ubuntu: ${INSTALL_HINT})`);
  if (!which('prometheus-node-exporter')) missing.push(`prometheus-node-exporter is not installed (Debian/Ubuntu: ${INSTALL_HINT})`);
  if (!which('getconf')) missing.push('getconf is not installed (Debian/Ubuntu: apt-get install -y libc-bin)');
  if (!existsSync('/proc/self/stat'))
    missing.push('/proc is not mounted: the idle and gateway measurements read /proc/<pid>/stat and /proc/<pid>/status (Linux only)');
  for (const file of ['src/cli.js', 'test/crashloop.test.js', 'test/helpers.js']) {
    if (!existsSync(join(__dirname, '..', file))) missing.push(`dist/${file} is missing: run \`npm run build\` (npm run bench does it first)`);
  }
  return missing;
}

export interface MachineFacts {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  os: string;
  node: string;
  wrk: string;
  nodeExporter: string;
  loadAtStart: number[];
}

function firstLine(command: string, args: string[]): string {
  const out = spawnSync(command, args, { encoding: 'utf8' });
  return `${out.stdout ?? ''}${out.stderr ?? ''}`.split('\n')[0]!.trim();
}

function prettyOs(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os.platform();
  } catch {
    return os.platform();
  }
}

export function machineFacts(): MachineFacts {
  let cpu = os.cpus()[0]?.model?.trim() ?? 'unknown';
  try {
    cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    // os.cpus() is enough
  }
  return {
    cpu,
    cores: os.cpus().length,
    memoryGiB: os.totalmem() / 2 ** 30,
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    os: prettyOs(),
    node: process.version,
    wrk: firstLine('wrk', ['-v']).replace(/\s+Copyright.*$/, ''),
    nodeExporter: firstLine('prometheus-node-exporter', ['--version']),
    loadAtStart: os.loadavg(),
  };
}
