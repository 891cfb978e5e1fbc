/**
 * What the replicas sharing an app key's one session say to each other through Redis (replicas.ts), and how it is
 * written. No approval key or token ever goes into Redis. Frames go as the broker sent them (fill notices
 * encrypted), with the registrations' answers (the fill notices' AES key and iv among them, as every subscribing
 * client receives them): Redis carries what the clients receive, and is to be kept as private as they are.
 *
 * - The holder to every replica, on one Pub/Sub channel per app key, in the order it happened: its session's state
 *   (again every second, so a replica that joins or blinked learns it), the broker's frames and answers, and answers
 *   of its own addressed to some replicas (a registration already live, the deployment's 41 in use). One channel,
 *   so a fill notice never overtakes the answer that carries its key. Each message names the holder's fencing number
 *   (store/redis-lease.ts), its session's number, and when it was published (the relay lag).
 * - Each replica to the holder: what its clients want, as a hash (the registration's name → how many clients hold
 *   it, and the ask it was last sent with: a new ask wants a new answer), renewed every second with its heartbeat.
 */
import { name } from './registrations';
import { REALTIME_END_REASONS, REALTIME_UPSTREAM_STATES, type RealtimeEndReason, type RealtimeUpstreamState } from '../core/realtime-vocabulary';

/** A registration a replica's clients want: how many of them, and the ask it was last sent with. */
export interface Want {
  id: string;
  key: string;
  count: number;
  ask: number;
}

/** What the holder tells the replicas (its own replica in-process, the others through Redis). */
export type HolderMessage =
  /** Its session's state; `session` counts the sessions it opened (a new number: the registrations were lost). */
  | { kind: 'session'; session: number; state: RealtimeUpstreamState; reason: RealtimeEndReason | null }
  /** The broker's frame or answer to a registration, its bytes as they came. */
  | { kind: 'frame'; session: number; data: Buffer }
  /** An answer of the holder's own, to the replicas in `to` only. */
  | { kind: 'answer'; session: number; to: string[]; data: Buffer };

export interface RelayEnvelope {
  fence: number;
  /** Wall clock, epoch ms, when the holder published it. */
  sentAt: number;
  message: HolderMessage;
}

/** `{kind}{fence} {session} {sentAt} {extra}\n{body}`: extra is the state and reason, or the addressees. */
export function encodeRelay({ fence, sentAt, message }: RelayEnvelope): Buffer {
  const head = (kind: string, extra: string, body: Buffer | string) =>
    Buffer.concat([Buffer.from(`${kind}${fence} ${message.session} ${sentAt} ${extra}\n`, 'latin1'), Buffer.from(body)]);
  if (message.kind === 'session') return head('S', `${message.state},${message.reason ?? ''}`, '');
  if (message.kind === 'frame') return head('F', '-', message.data);
  return head('A', message.to.join(','), message.data);
}

const STATES = new Set<string>(REALTIME_UPSTREAM_STATES);
const REASONS = new Set<string>(REALTIME_END_REASONS);

/** A message from the relay channel, or undefined when it is not one (nothing else publishes there). */
export function decodeRelay(raw: Buffer): RelayEnvelope | undefined {
  const newline = raw.indexOf(0x0a);
  if (newline < 0 || newline > 4096) return undefined;
  const head = /^([SFA])(\d{1,16}) (\d{1,9}) (\d{1,16}) (\S+)$/.exec(raw.toString('latin1', 0, newline));
  if (!head) return undefined;
  const [, kind, fence, sessionText, sentAt, extra] = head as unknown as [string, string, string, string, string, string];
  const session = Number(sessionText);
  const envelope = (message: HolderMessage): RelayEnvelope => ({ fence: Number(fence), sentAt: Number(sentAt), message });
  const data = raw.subarray(newline + 1);
  if (kind === 'F') return envelope({ kind: 'frame', session, data });
  if (kind === 'A') return envelope({ kind: 'answer', session, to: extra.split(','), data });
  const [state, reason] = extra.split(',') as [string, string | undefined];
  if (!STATES.has(state)) return undefined;
  return envelope({
    kind: 'session',
    session,
    state: state as RealtimeUpstreamState,
    reason: reason && REASONS.has(reason) ? (reason as RealtimeEndReason) : null,
  });
}

/** A replica's wants as the fields of its hash: the registration's name → `count ask`. */
export function wantFields(wants: Iterable<Want>): string[] {
  const fields: string[] = [];
  for (const w of wants) fields.push(name(w.id, w.key), `${w.count} ${w.ask}`);
  return fields;
}

/** A replica's hash read back; a field that is not a want is left out (only the replicas write there). */
export function readWants(hash: Record<string, string>): Map<string, Want> {
  const wants = new Map<string, Want>();
  for (const [field, value] of Object.entries(hash)) {
    const newline = field.indexOf('\n');
    const match = /^(\d{1,6}) (\d{1,15})$/.exec(value);
    if (newline <= 0 || !match) continue;
    wants.set(field, { id: field.slice(0, newline), key: field.slice(newline + 1), count: Number(match[1]), ask: Number(match[2]) });
  }
  return wants;
}
