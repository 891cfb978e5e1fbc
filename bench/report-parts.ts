/** What the report's sections share: targets met or missed and how they read, and this run's temp paths made stable. */
import { tmpdir } from 'node:os';
import { num } from './lib';

export interface Verdict {
  section: string;
  target: string;
  figure: string;
  met: boolean;
}

const TMP = tmpdir().replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** Temp paths of this run, shortened to a stable placeholder so the commands read the same every time. */
export function tidy(text: string): string {
  return text.replace(new RegExp(`${TMP}/bts-bench-([a-z]+)-[A-Za-z0-9]{6}`, 'g'), '$$TMP/$1');
}

export const mark = (met: boolean): string => (met ? 'met' : '**missed**');
export const sentence = (v: Verdict): string => `Target ${v.target}: ${mark(v.met)} (${v.figure}).`;
export const rps = (v: number): string => num(v, v < 100 ? 1 : 0);
