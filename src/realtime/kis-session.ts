/**
 * One KIS account's shared session: the clients' registrations, counted against the broker's 41, and the one
 * upstream session that carries them (docs/brokers.md#kis-real-time-session).
 *
 * - A register of something live upstream is answered at once, with the session's AES key and iv; of something
 *   not yet live, once the broker confirmed it (the broker's own answer, byte for byte). The 42nd distinct
 *   registration is answered OPSP0008 here and never sent. An unregister is answered at once; the broker is told
 *   only when the last client lets go.
 * - Data frames go to the clients of their (tr_id, tr_key), byte for byte: the key is the first field of the
 *   first record (a fill notice's is read after decrypting it with the session's key).
 * - Fill notices: a client may register only the HTS ids `realtime.fills` gives it; the key and iv reach each of
 *   its subscribers in the registration's answer, and again after every reconnect (they change per session).
 * - PINGPONG from the broker is answered both ways the clients do (a pong frame carrying the text, as the official
 *   client; the text sent back, as python-kis): which the broker requires is unconfirmed, each is known to work.
 */
import type { ClientConnection } from './client';
import { firstField, isFillTr, KIS_ANSWERS, KIS_CODES, kisControl, kisRequest, readKisUpstream, type KisCipher } from './kis-wire';
import { KIS_MAX_REGISTRATIONS } from './limits';
import type { Entry } from './registrations';
import { SharedSession, type SessionContext } from './session';
import { Upstream, type UpstreamHooks } from './upstream';
import type { KisCarrier, KisControlMessage, KisDataMessage, KisReceiver } from './carriers';

type KisRequest = { register: boolean; trId: string; trKey: string };

export class KisUpstream extends Upstream implements KisCarrier {
  private approvalKey = '';

  constructor(
    private readonly session: KisReceiver,
    private readonly ctx: Pick<SessionContext, 'account' | 'clock' | 'random' | 'policy'>,
    hooks: UpstreamHooks,
  ) {
    super(ctx.clock, ctx.random, ctx.policy, `${ctx.account.config.websocketUrl}/tryitout`, hooks);
  }

  protected async credential(): Promise<string | { retryAfterMs: number }> {
    // The current token's approval key, fetched from the broker once per token (lifecycle/approval-key.ts, with its
    // budget slot and backoff) and reused by every session after.
    const key = await this.ctx.account.approvalKey();
    return 'key' in key ? key.key : key;
  }

  protected opened(credential: string): void {
    this.approvalKey = credential;
    this.markReady();
  }

  protected received(data: Buffer, text: string): void {
    const message = readKisUpstream(text);
    if (message.kind === 'pingpong') {
      this.pongNow(data);
      this.sendNow(text);
    } else if (message.kind === 'control' && message.code === KIS_CODES.keyInUse) {
      this.end('key_in_use', 'another session holds the app key (OPSP8996)');
    } else if (message.kind === 'control' && message.code === KIS_CODES.approvalNotFound) {
      this.end('approval_refused', 'the broker refused the approval key (OPSP0011)');
    } else if (message.kind === 'control') {
      this.session.control(message, data);
    } else if (message.kind === 'data') {
      this.session.data(message, data);
    }
  }

  send(entry: Entry<unknown>, register: boolean): void {
    this.enqueue({ text: kisRequest(this.approvalKey, entry.id, entry.key, register) });
  }
}

export class KisSession extends SharedSession implements KisReceiver {
  protected readonly upstream: KisCarrier;
  /** The current session's AES key and iv (from any successful registration's answer: one per session). */
  private cipher: KisCipher | undefined;

  constructor(ctx: SessionContext) {
    super(ctx, KIS_MAX_REGISTRATIONS);
    this.upstream = ctx.relay?.kis(this, this.book, this.upstreamHooks()) ?? new KisUpstream(this, ctx, this.upstreamHooks());
  }

  /** A client's register or unregister, its fields checked; the client is authenticated for this account. */
  request(client: ClientConnection, { register, trId, trKey }: KisRequest): void {
    const encrypt = isFillTr(trId);
    if (!register) {
      const held = this.book.remove(client, trId, trKey);
      this.answer(client, kisControl(held ? KIS_ANSWERS.unsubscribed : KIS_ANSWERS.notSubscribed, trId, trKey, encrypt));
      if (held) this.reconcile();
      return;
    }
    if (encrypt && !(this.ctx.fills[client.client ?? ''] ?? []).includes(trKey)) {
      this.answer(client, kisControl(KIS_ANSWERS.invalidTrKey, trId, trKey, true, undefined, 'fill notices of this HTS id are not configured for this client'));
      this.refused(client, 'fills_not_allowed', KIS_ANSWERS.invalidTrKey.code);
      return;
    }
    switch (this.book.add(client, trId, trKey)) {
      case 'held':
        this.answer(client, kisControl(KIS_ANSWERS.alreadySubscribed, trId, trKey, encrypt));
        return;
      case 'full':
        this.answer(
          client,
          kisControl(KIS_ANSWERS.maxSubscriptions, trId, trKey, encrypt, undefined, `the session's ${this.book.limit} registrations are in use`),
        );
        this.refused(client, 'budget_full', KIS_ANSWERS.maxSubscriptions.code);
        return;
      case 'live': {
        const entry = this.book.find(trId, trKey)!;
        this.answer(client, kisControl(KIS_ANSWERS.subscribed, trId, trKey, entry.encrypted, this.cipher));
        return;
      }
      case 'waiting':
        this.reconcile();
    }
  }

  protected sendWork(): void {
    for (const { entry, register } of this.book.work()) this.upstream.send(entry, register);
  }

  /** The broker's answer to a registration or unregistration (with replicas: as the holder relayed it). */
  control(message: KisControlMessage, data: Buffer): void {
    if (message.output) this.cipher = message.output;
    const entry = this.book.answered(message.trId, message.trKey);
    if (entry === 'released') this.reconcile();
    if (entry === undefined || entry === 'released') return;
    const confirmed = message.code === KIS_CODES.subscribed || message.code === KIS_CODES.already;
    if (!confirmed) {
      // OPSP0008: the session's registrations are all in use (with replicas, the holder's answer: the deployment's 41).
      const reason = message.code === KIS_ANSWERS.maxSubscriptions.code ? 'budget_full' : 'broker';
      for (const client of this.book.refused(entry)) {
        client.send(data);
        this.refused(client, reason, message.code);
      }
      this.reconcile();
      return;
    }
    entry.encrypted = message.encrypt || isFillTr(entry.id);
    const waiting = new Set(this.book.confirmed(entry));
    // The key and iv change with every session: a fill notice's subscribers are all told again after a reconnect.
    const told = entry.encrypted ? [...entry.subscribers] : [...waiting];
    const own = message.code === KIS_CODES.subscribed && message.output !== undefined;
    const text = own ? data : kisControl(KIS_ANSWERS.subscribed, entry.id, entry.key, entry.encrypted, this.cipher);
    for (const client of told) this.answer(client, text);
    if (entry.subscribers.size === 0) this.reconcile();
  }

  /** A data frame: to the answered subscribers of its (tr_id, tr_key). */
  data(message: KisDataMessage, data: Buffer): void {
    const candidates = this.book.ofId(message.trId);
    let entries = candidates;
    if (candidates.length > 1) {
      const key = firstField(message.payload, message.encrypted, this.cipher);
      const match = candidates.filter((e) => e.key === key);
      // A frame whose key cannot be read goes to every subscriber of its TR: a client filters by its own parse,
      // which is better than losing a frame it wanted.
      if (match.length > 0) entries = match;
    }
    const targets = new Set<ClientConnection>();
    for (const entry of entries) for (const client of entry.subscribers) if (!entry.waiting.has(client)) targets.add(client);
    this.fanOut(data, targets);
  }

  protected override upstreamLost(): void {
    this.cipher = undefined;
  }
}
