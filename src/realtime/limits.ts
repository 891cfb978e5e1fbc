import type { SidecarConfig } from '../config/types';

/** KIS: registrations per session, all products together (docs/brokers.md#kis-real-time-session: the notice's 41). */
export const KIS_MAX_REGISTRATIONS = 41;
/**
 * Kiwoom publishes no limit per session (a client library checks 100 items per group): the endpoint holds at most
 * this many (type, item) pairs, so a client cannot grow the session without bound.
 */
export const KIWOOM_MAX_REGISTRATIONS = 100;

/** Connections still in their HTTP upgrade, on top of `maxClients`: each a descriptor for the few ms before it upgrades. */
export const UPGRADE_MARGIN = 16;

/** The descriptors the real-time endpoint may hold: its clients, those upgrading, one upstream session per account. */
export function realtimeDescriptors(config: SidecarConfig): number {
  return config.realtime.enabled ? config.realtime.maxClients + UPGRADE_MARGIN + config.accounts.length : 0;
}
