/**
 * The real-time options resolved to their defaults once, at construction, so a bad one fails there rather than on
 * the first connection. Defaults and their sources: docs/brokers.md#kis-real-time-session.
 */
import type { RealtimeOptions, ResolvedRealtimeOptions } from './types';

// Data frames per second per stream: enough to watch numbers move, few enough for a replica printing every one.
const DEFAULT_FRAMES_PER_SECOND = 2;
// "The broker sends a PINGPONG about every 110 s" (third-party client comment); the tests shorten it.
const DEFAULT_PING_INTERVAL_MS = 110_000;
// The notice's figure: 41 registrations per session, all products together.
const KIS_MAX_REGISTRATIONS = 41;
// The notice's pacing: connect and close at least 1 s apart.
const RECONNECT_SPACING_MS = 1000;
// Frames are small (a record is under 600 bytes); a client this far behind is not reading at all.
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
// Records per frame are a 3-digit count on the wire.
const MAX_RECORDS_PER_FRAME = 999;
// Above this the pump would spend the simulator's time on frames nobody can read; tests need far less.
export const MAX_FRAMES_PER_SECOND = 1000;

export function resolveRealtimeOptions(options: RealtimeOptions = {}): ResolvedRealtimeOptions {
  const resolved: ResolvedRealtimeOptions = {
    framesPerSecond: options.framesPerSecond ?? DEFAULT_FRAMES_PER_SECOND,
    recordsPerFrame: options.recordsPerFrame ?? 1,
    pingIntervalMs: options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
    pingUnansweredLimit: options.pingUnansweredLimit ?? 2,
    maxRegistrations: options.maxRegistrations ?? KIS_MAX_REGISTRATIONS,
    reconnectSpacingMs: options.reconnectSpacingMs ?? RECONNECT_SPACING_MS,
    maxBufferedBytes: options.maxBufferedBytes ?? MAX_BUFFERED_BYTES,
  };
  checkFrameRate(resolved.framesPerSecond, resolved.recordsPerFrame);
  const positiveIntegers = ['pingIntervalMs', 'pingUnansweredLimit', 'maxRegistrations', 'maxBufferedBytes'] as const;
  for (const name of positiveIntegers) {
    if (!Number.isInteger(resolved[name]) || resolved[name] <= 0) {
      throw new RangeError(`simulator option realtime.${name} must be a positive integer, got ${resolved[name]}`);
    }
  }
  if (!Number.isFinite(resolved.reconnectSpacingMs) || resolved.reconnectSpacingMs < 0) {
    throw new RangeError(`simulator option realtime.reconnectSpacingMs must be a non-negative number, got ${resolved.reconnectSpacingMs}`);
  }
  return resolved;
}

/** Shared with the control API's rate change, so both refuse the same values. */
export function checkFrameRate(framesPerSecond: number, recordsPerFrame: number): void {
  if (!Number.isFinite(framesPerSecond) || framesPerSecond < 0 || framesPerSecond > MAX_FRAMES_PER_SECOND) {
    throw new RangeError(`realtime framesPerSecond must be between 0 and ${MAX_FRAMES_PER_SECOND}, got ${framesPerSecond}`);
  }
  if (!Number.isInteger(recordsPerFrame) || recordsPerFrame < 1 || recordsPerFrame > MAX_RECORDS_PER_FRAME) {
    throw new RangeError(`realtime recordsPerFrame must be an integer from 1 to ${MAX_RECORDS_PER_FRAME}, got ${recordsPerFrame}`);
  }
}
