/**
 * The upstream registration set of one session, as a counted budget: the union of what the clients want,
 * reference-counted per (id, key) (KIS tr_id and tr_key, Kiwoom type and item). An entry exists while a client
 * wants it or the broker still holds it, and each entry counts against the limit (41 at KIS) until the broker has
 * confirmed it gone, so the sidecar never sends the broker a registration past its limit.
 *
 * Upstream states: none (not at the broker), registering (sent, unanswered), live (confirmed), unregistering.
 * What the session should send next is `work()`: a registration for an entry wanted and not at the broker, an
 * unregistration for one at the broker that nobody wants. An entry the broker answered is never re-sent until the
 * session is lost; then every wanted entry is `none` again and the whole set is replayed.
 */

export type UpstreamEntryState = 'none' | 'registering' | 'live' | 'unregistering';

export interface Entry<C> {
  readonly id: string;
  readonly key: string;
  /** Clients holding the registration, answered or not. */
  readonly subscribers: Set<C>;
  /** Clients waiting for the broker's confirmation before they are answered. */
  readonly waiting: Set<C>;
  upstream: UpstreamEntryState;
  /** Provider data kept with a live entry (KIS: whether its frames are encrypted). */
  encrypted: boolean;
}

type AddOutcome = 'live' | 'waiting' | 'held' | 'full';

export class RegistrationBook<C> {
  private readonly entries = new Map<string, Entry<C>>();

  constructor(readonly limit: number) {}

  /** Entries counting against the limit: wanted, or still at the broker. */
  get size(): number {
    return this.entries.size;
  }

  get full(): boolean {
    return this.entries.size >= this.limit;
  }

  find(id: string, key: string): Entry<C> | undefined {
    return this.entries.get(name(id, key));
  }

  /** Every entry (with replicas: what this replica's clients want is published from it, relay-link.ts). */
  all(): IterableIterator<Entry<C>> {
    return this.entries.values();
  }

  /** Entries of one id (a KIS tr_id, a Kiwoom type): where a frame that names only its id may belong. */
  ofId(id: string): Entry<C>[] {
    return [...this.entries.values()].filter((e) => e.id === id);
  }

  /**
   * A client wants (id, key): `live` (answer it now), `waiting` (answered on the broker's confirmation), `held`
   * (it has it already), `full` (a new entry would pass the limit; nothing changed).
   */
  add(client: C, id: string, key: string): AddOutcome {
    const n = name(id, key);
    let entry = this.entries.get(n);
    if (entry?.subscribers.has(client)) return 'held';
    if (!entry) {
      if (this.full) return 'full';
      entry = { id, key, subscribers: new Set(), waiting: new Set(), upstream: 'none', encrypted: false };
      this.entries.set(n, entry);
    }
    entry.subscribers.add(client);
    if (entry.upstream === 'live') return 'live';
    entry.waiting.add(client);
    return 'waiting';
  }

  /** Whether the number of new entries these pairs need fits the limit (an entry already there costs nothing). */
  fits(pairs: Array<{ id: string; key: string }>): boolean {
    const fresh = new Set(pairs.map((p) => name(p.id, p.key)).filter((n) => !this.entries.has(n)));
    return this.entries.size + fresh.size <= this.limit;
  }

  /** The client no longer wants (id, key); false if it did not hold it. The entry stays until the broker lets it go. */
  remove(client: C, id: string, key: string): boolean {
    const entry = this.entries.get(name(id, key));
    if (!entry?.subscribers.delete(client)) return false;
    entry.waiting.delete(client);
    this.dropIfDone(entry);
    return true;
  }

  /** Every registration of a client that left. */
  removeClient(client: C): void {
    for (const entry of [...this.entries.values()]) {
      if (!entry.subscribers.delete(client)) continue;
      entry.waiting.delete(client);
      this.dropIfDone(entry);
    }
  }

  /** What the session should send now, each entry marked as sent. */
  work(): Array<{ entry: Entry<C>; register: boolean }> {
    const todo: Array<{ entry: Entry<C>; register: boolean }> = [];
    for (const entry of this.entries.values()) {
      const wanted = entry.subscribers.size > 0;
      if (wanted && entry.upstream === 'none') {
        entry.upstream = 'registering';
        todo.push({ entry, register: true });
      } else if (!wanted && entry.upstream === 'live') {
        entry.upstream = 'unregistering';
        todo.push({ entry, register: false });
      }
    }
    return todo;
  }

  /**
   * What the broker's answer about (id, key) concerns: an unregistration, now released here (`released`); a
   * registration awaiting it (its entry); or nothing the book waits for (undefined).
   */
  answered(id: string, key: string): Entry<C> | 'released' | undefined {
    const entry = this.find(id, key);
    if (entry?.upstream === 'unregistering') {
      this.released(entry);
      return 'released';
    }
    return entry?.upstream === 'registering' ? entry : undefined;
  }

  /** The broker confirmed a registration: returns the clients to answer now. */
  confirmed(entry: Entry<C>): C[] {
    entry.upstream = 'live';
    const answered = [...entry.waiting];
    entry.waiting.clear();
    return answered;
  }

  /** The broker refused a registration: the entry is gone; returns the clients that held it (to be told). */
  refused(entry: Entry<C>): C[] {
    const holders = [...entry.subscribers];
    this.entries.delete(name(entry.id, entry.key));
    return holders;
  }

  /** The broker confirmed an unregistration (or said it held none): the entry is gone unless wanted again meanwhile. */
  released(entry: Entry<C>): void {
    entry.upstream = 'none';
    this.dropIfDone(entry);
  }

  /** The session is gone, and its registrations with it: every wanted entry is to be sent again, the rest forgotten. */
  lost(): void {
    for (const entry of [...this.entries.values()]) {
      entry.upstream = 'none';
      this.dropIfDone(entry);
    }
  }

  private dropIfDone(entry: Entry<C>): void {
    if (entry.subscribers.size === 0 && entry.upstream === 'none') this.entries.delete(name(entry.id, entry.key));
  }
}

/** An entry's name in the book (and in what the replicas tell each other about it, relay-wire.ts). */
export function name(id: string, key: string): string {
  // A newline appears in no id or key the endpoint accepts (both are checked printable ASCII).
  return `${id}\n${key}`;
}
