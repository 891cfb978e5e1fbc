import { isValidTimeZone } from '../core/time';
import { formatPath, type Path } from './path';
import type { ReadText } from './secret-files';

/**
 * Checks that need more than one field (credentials by provider, uniqueness, time zones, cron) and turns the
 * schema's output into the typed, defaulted SidecarConfig. Problems are collected, never thrown one by one.
 */
export class Problems {
  private readonly lines: string[] = [];
  /** One message per path: the first problem found there (an unset variable, say) explains the rest. */
  add(path: Path, message: string): void {
    this.addLine(`${formatPath(path)}: ${message}`);
  }
  addLine(line: string): void {
    const path = line.slice(0, line.indexOf(': ') + 2);
    if (!this.lines.some((existing) => existing.startsWith(path))) this.lines.push(line);
  }
  /** In path order (accounts[2] before accounts[10]), so related lines stand together. */
  get list(): string[] {
    return [...this.lines].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  }
  get empty(): boolean {
    return this.lines.length === 0;
  }
}

export interface ResolveContext {
  baseDir: string;
  readText: ReadText;
  problems: Problems;
  /** This host's zone: a default reader zone of kis-auth sinks. */
  hostTimeZone: string;
}

/**
 * Every zone in the config is checked here, with one message (and one place to change it). Like every config
 * message it names the key, not the value: a secret once pasted into `timeZone` came back in the error.
 */
export function checkTimeZone(path: Path, zone: string, ctx: ResolveContext): string {
  if (!isValidTimeZone(zone)) ctx.problems.add(path, 'must be an IANA time zone such as Asia/Seoul');
  return zone;
}
