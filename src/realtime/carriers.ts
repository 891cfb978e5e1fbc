/**
 * What a session's registrations travel on, and what reads the broker's answers: alone, the broker's socket
 * (KisUpstream, KiwoomUpstream); with replicas, the relay to the replica that holds the app key's one session
 * (relay-link.ts, kiwoom-relay.ts), while that holder's own session is read by the deployment's book (holder.ts).
 * Apart from the sessions so that neither side needs the other's module.
 */
import type { ClientConnection } from './client';
import type { readKisUpstream } from './kis-wire';
import type { Pair } from './kiwoom-wire';
import type { Entry, RegistrationBook } from './registrations';
import type { UpstreamHooks, UpstreamPort } from './upstream';

export type KisControlMessage = Extract<ReturnType<typeof readKisUpstream>, { kind: 'control' }>;
export type KisDataMessage = Extract<ReturnType<typeof readKisUpstream>, { kind: 'data' }>;

/** What reads the broker's answers and frames: a replica's session, or the deployment's book on the lease holder. */
export interface KisReceiver {
  control(message: KisControlMessage, data: Buffer): void;
  data(message: KisDataMessage, data: Buffer): void;
}

/** What carries a KIS session's registrations: the broker's socket, or the holder's relay. */
export interface KisCarrier extends UpstreamPort {
  send(entry: Entry<unknown>, register: boolean): void;
}

/** What reads a Kiwoom session's pushes and its login's answer: a replica's session, or the holder's book. */
export interface KiwoomReceiver {
  real(pairs: Pair[], data: Buffer): void;
  /** The broker accepted the login: its answer, given to clients as their own (it says whether SOR is on). */
  loggedIn(answer: string): void;
}

/**
 * What carries a Kiwoom session's REG and REMOVE: the broker's socket, or the holder's relay. Kiwoom's answers name
 * no request, so each change is answered through its own callback.
 */
export interface KiwoomCarrier extends UpstreamPort {
  send(trnm: 'REG' | 'REMOVE', pairs: Pair[], answered: (text: string) => void): void;
  /** A renewed token presented on the open session (only the holder's own socket logs in). */
  followToken(): void;
}

/** With replicas (a Redis store): a session's carrier to the deployment's holder, given what it reads and its book. */
export interface RelayCarriers {
  kis(session: KisReceiver, book: RegistrationBook<ClientConnection>, hooks: UpstreamHooks): KisCarrier;
  kiwoom(session: KiwoomReceiver, book: RegistrationBook<ClientConnection>, hooks: UpstreamHooks): KiwoomCarrier;
}
