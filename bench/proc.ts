/** A process's CPU time, read from /proc (Linux): what the idle and gateway measurements charge to each process. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export function clockTicksPerSecond(): number {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const value = Number(out.stdout?.trim());
  return Number.isInteger(value) && value > 0 ? value : 100;
}

/** utime + stime, in clock ticks (fields 14 and 15 of /proc/<pid>/stat; the name in field 2 may hold spaces). */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3 (state)
  return Number(fields[11]) + Number(fields[12]);
}
