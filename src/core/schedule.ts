import type { ScheduledTask } from 'node-cron';
import { KST_ZONE } from './time';

// node-cron is loaded only when a schedule is configured: it is ~4 MB of an idle sidecar's memory otherwise.
const nodeCron = (): typeof import('node-cron') => require('node-cron') as typeof import('node-cron');

/** Whether `expression` is a 5-field cron expression node-cron accepts. */
export function isValidSchedule(expression: string): boolean {
  return expression.trim().split(/\s+/).length === 5 && nodeCron().validate(expression);
}

/**
 * The optional cron schedule for renewals, read in Asia/Seoul. node-cron matches a given instant; the next
 * slot is found by walking whole minutes from a start, for at most `horizonMs`, with any clock.
 */
const matchers = new Map<string, ScheduledTask>();
const MINUTE = 60_000;
const DEFAULT_HORIZON_MS = 8 * 24 * 60 * MINUTE;

function matcherFor(expression: string): ScheduledTask {
  let task = matchers.get(expression);
  if (!task) {
    // createTask does not start the task: it is used only for its matcher.
    task = nodeCron().createTask(expression, () => undefined, { timezone: KST_ZONE });
    matchers.set(expression, task);
  }
  return task;
}

/** The first slot at or after `from`, or undefined when none falls within the horizon. */
export function nextScheduledAt(expression: string, from: number, horizonMs = DEFAULT_HORIZON_MS): number | undefined {
  const task = matcherFor(expression);
  const start = Math.ceil(from / MINUTE) * MINUTE;
  for (let t = start; t <= from + horizonMs; t += MINUTE) {
    if (task.match(new Date(t))) return t;
  }
  return undefined;
}
