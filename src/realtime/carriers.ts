/**
 * What a session's registrations travel on, and what reads the broker's answers: alone, the broker's socket
 * (KisUpstream); with replicas, the relay to the replica that holds the app key's one session
 * (relay-link.ts), while that holder's own session is read by the deployment's book (holder.ts). Apart from the
 * sessions so that neither side needs the other's module.
 */
import type { ClientConnection } from './client';
import type { readKisUpstream } from './kis-wire';
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

/**
 * With replicas (a Redis store), makes a KIS session's carrier to the deployment's holder, given what it reads and
 * its registration book. Kiwoom sessions are not relayed (docs: one replica runs the endpoint for a Kiwoom key).
 */
export interface RelayCarriers {
  kis(session: KisReceiver, book: RegistrationBook<ClientConnection>, hooks: UpstreamHooks): KisCarrier;
}
