/**
 * One connection to the simulated Kiwoom WebSocket (`/api/dostk/websocket`): LOGIN with a REST token the simulator
 * issued, REG/REMOVE by group with `refresh`, REAL pushes, PING echoed. A LOGIN on a key that already has a session
 * ends the old one with SYSTEM R10001: the last one wins, the opposite of KIS. docs/brokers.md#kiwoom-real-time-session.
 */
import type { WebSocket } from 'ws';
import { RealtimeConnection, type RealtimeServices } from './connection';
import { KIWOOM_PING, KIWOOM_REFUSALS, KIWOOM_REPLACED, kiwoomAccepted, kiwoomLoginOk, kiwoomRefused, type KiwoomRefusal } from './kiwoom-messages';
import { kiwoomRealType } from './kiwoom-records';
import type { RealtimeRegistration } from './types';

// grp_no is a string of up to 4 characters (third-party spec copy); items are `005930`, `005930_NX`, `005930_AL`.
const GROUP = /^[0-9A-Za-z]{1,4}$/;
const ITEM = /^[0-9A-Za-z_]{1,20}$/;
// Simulator choice, to bound a session's memory: the broker publishes no limit (a client library checks 100 per group).
const MAX_REGISTRATIONS = 1000;

interface Entry {
  types: string[];
  items: string[];
}

export class KiwoomSession extends RealtimeConnection {
  // group + "|" + type + "|" + item → the registration.
  private readonly registered = new Map<string, RealtimeRegistration>();

  constructor(ws: WebSocket, services: RealtimeServices) {
    super('kiwoom', ws, services);
  }

  registrations(): RealtimeRegistration[] {
    return [...this.registered.values()].map((r) => ({ ...r }));
  }

  protected pingMessage(): string {
    return KIWOOM_PING;
  }

  protected released(): void {
    for (const r of this.registered.values()) this.services.market.unsubscribe('kiwoom', r.id, r.key, this);
  }

  protected onMessage(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return; // Simulator choice: text that is not JSON names no trnm to answer; it is ignored.
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) return;
    const fields = message as Record<string, unknown>;
    const trnm = typeof fields['trnm'] === 'string' ? fields['trnm'] : '';
    if (trnm === 'PING') this.pingAnswered();
    else if (trnm === 'LOGIN') this.login(fields['token']);
    else if (this.boundAt === undefined) this.refuse(trnm, KIWOOM_REFUSALS.tokenInvalid);
    else if (trnm === 'REG' || trnm === 'REMOVE') this.change(trnm, fields);
    else this.refuse(trnm, KIWOOM_REFUSALS.unsupported(trnm));
  }

  private login(token: unknown): void {
    const { ledger, clock, sessions } = this.services;
    const owner = typeof token === 'string' && ledger.check(token, 'kiwoom', undefined, clock.now()) === 'ok' ? ledger.ownerOf(token, 'kiwoom') : undefined;
    // Simulator choice: a failed LOGIN leaves the socket open, so the client may LOGIN again with a new token.
    if (owner === undefined || (this.appKey !== undefined && owner !== this.appKey)) {
      this.refuse('LOGIN', KIWOOM_REFUSALS.tokenInvalid);
      return;
    }
    if (this.boundAt === undefined) {
      const previous = sessions.holderOf('kiwoom', owner);
      if (previous instanceof KiwoomSession) previous.replaced();
      this.bind(owner);
    }
    this.send(kiwoomLoginOk());
  }

  /** Another LOGIN took the key: SYSTEM R10001, then (simulator choice) a normal close. */
  private replaced(): void {
    this.send(KIWOOM_REPLACED);
    this.end('replaced', 'close');
  }

  private change(trnm: 'REG' | 'REMOVE', fields: Record<string, unknown>): void {
    const group = fields['grp_no'];
    if (group === undefined) return this.refuse(trnm, KIWOOM_REFUSALS.missingField('grp_no'));
    if (typeof group !== 'string' || !GROUP.test(group)) return this.refuse(trnm, KIWOOM_REFUSALS.badField('grp_no'));
    const refresh = fields['refresh'] ?? '1';
    if (refresh !== '0' && refresh !== '1') return this.refuse(trnm, KIWOOM_REFUSALS.badField('refresh'));
    const entries = readEntries(fields['data']);
    if (!Array.isArray(entries)) return this.refuse(trnm, entries);
    if (trnm === 'REMOVE') {
      for (const { types, items } of entries) for (const type of types) for (const item of items) this.remove(group, type, item);
      this.send(kiwoomAccepted(trnm));
      return;
    }
    const adding = entries.reduce((n, e) => n + e.types.length * e.items.length, 0);
    if ((refresh === '0' ? 0 : this.registered.size) + adding > MAX_REGISTRATIONS) return this.refuse(trnm, KIWOOM_REFUSALS.badField('data'));
    // refresh "0" drops what the session registered before, in every group; "1" keeps it.
    if (refresh === '0') for (const r of [...this.registered.values()]) this.remove(r.group ?? '', r.id, r.key);
    for (const { types, items } of entries) for (const type of types) for (const item of items) this.add(group, type, item);
    this.services.stats.peak(this.appKey, 'peakRegistrations', this.registered.size);
    this.send(kiwoomAccepted(trnm));
  }

  private add(group: string, type: string, item: string): void {
    const name = `${group}|${type}|${item}`;
    if (this.registered.has(name)) return;
    // One stream per (type, item) for the session, however many groups name it: it gets each push once.
    if (!this.heldInAnyGroup(type, item)) this.services.market.subscribe('kiwoom', type, item, true, this, this.services.clock.now(), this.services.pace());
    this.registered.set(name, { id: type, key: item, group });
    this.services.stats.add(this.appKey, 'registrations');
  }

  private remove(group: string, type: string, item: string): void {
    if (!this.registered.delete(`${group}|${type}|${item}`)) return;
    if (!this.heldInAnyGroup(type, item)) this.services.market.unsubscribe('kiwoom', type, item, this);
    this.services.stats.add(this.appKey, 'unregistrations');
  }

  private heldInAnyGroup(type: string, item: string): boolean {
    for (const r of this.registered.values()) if (r.id === type && r.key === item) return true;
    return false;
  }

  private refuse(trnm: string, refusal: KiwoomRefusal): void {
    this.services.stats.refused(this.appKey, refusal.code);
    this.send(kiwoomRefused(trnm, refusal));
  }
}

/** REG/REMOVE `data`: `[{"item":[...],"type":[...]}]`, checked whole before anything changes. */
function readEntries(data: unknown): Entry[] | KiwoomRefusal {
  if (data === undefined) return KIWOOM_REFUSALS.missingField('data');
  if (!Array.isArray(data)) return KIWOOM_REFUSALS.badField('data');
  const entries: Entry[] = [];
  for (const entry of data as unknown[]) {
    if (typeof entry !== 'object' || entry === null) return KIWOOM_REFUSALS.badField('data');
    const { item, type } = entry as Record<string, unknown>;
    if (!isStringList(item) || !item.every((i) => ITEM.test(i))) return KIWOOM_REFUSALS.badField('item');
    // Simulator choice: a type the simulator does not serve is refused rather than registered and left silent.
    if (!isStringList(type) || !type.every((t) => kiwoomRealType(t) !== undefined)) return KIWOOM_REFUSALS.badField('type');
    entries.push({ items: item, types: type });
  }
  return entries;
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string');
}
