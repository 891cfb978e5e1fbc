/**
 * One connection to the simulated KIS WebSocket (`/tryitout`). The connection carries no credential: it becomes
 * an app key's session with its first message whose approval key the simulator issued. One session per app key,
 * the newcomer refused with OPSP8996 and closed, the first left alone; 41 registrations per session, all TRs
 * together; PINGPONG answered by a pong frame or by the JSON sent back as text. docs/brokers.md#kis-real-time-session.
 */
import type { WebSocket } from 'ws';
import { newSessionCipher, type SessionCipher } from './cipher';
import { RealtimeConnection, type RealtimeServices } from './connection';
import { kisLayout } from './kis-records';
import { checkKisRequest, echoedIds, KIS_ANSWERS, kisControl, kisPingpong, readKisMessage, type KisControlAnswer, type KisRequest } from './kis-messages';
import type { RealtimeRegistration } from './types';

export class KisSession extends RealtimeConnection {
  /** The AES key and iv of this session's fill notices; new with every session, as at the broker. */
  readonly cipher: SessionCipher = newSessionCipher();
  // tr_id + "|" + tr_key → the registration, in the order they were made.
  private readonly registered = new Map<string, RealtimeRegistration>();

  constructor(ws: WebSocket, services: RealtimeServices) {
    super('kis', ws, services);
    // The official client answers PINGPONG with a pong frame carrying the text (`ws.pong(raw)`); any pong counts,
    // since which answer the broker requires is unconfirmed.
    ws.on('pong', () => {
      if (this.open) this.pingAnswered();
    });
  }

  registrations(): RealtimeRegistration[] {
    return [...this.registered.values()].map((r) => ({ ...r }));
  }

  /** Whether this session registered the (tr_id, tr_key). */
  holds(trId: string, trKey: string): boolean {
    return this.registered.has(`${trId}|${trKey}`);
  }

  protected pingMessage(): string {
    return kisPingpong(this.services.clock.now());
  }

  protected released(): void {
    for (const r of this.registered.values()) this.services.market.unsubscribe('kis', r.id, r.key, this);
  }

  protected onMessage(text: string): void {
    const message = readKisMessage(text);
    if (message.kind === 'pingpong') {
      // python-kis and the official multi-process sample send the PINGPONG JSON back as text.
      this.pingAnswered();
      return;
    }
    if (message.kind === 'malformed') {
      this.refuse(message.answer, message.trId, message.trKey);
      return;
    }
    const { trId, trKey } = echoedIds(message.input);
    const owner = message.approvalKey === undefined ? undefined : this.services.approvalKeys.ownerOf(message.approvalKey, this.services.clock.now());
    // Simulator choice: a bound session takes only its own key's approval keys; another key's is "not found" here.
    if (owner === undefined || (this.appKey !== undefined && owner !== this.appKey)) {
      this.refuse(KIS_ANSWERS.approvalNotFound, trId, trKey);
      return;
    }
    if (this.boundAt === undefined && !this.claim(owner)) return;
    const request = checkKisRequest(message.header, message.input, (id) => kisLayout(id) !== undefined);
    if ('code' in request) {
      this.refuse(request, trId, trKey);
      return;
    }
    if (request.register) this.register(request);
    else this.unregister(request);
  }

  /** Becomes the key's session, unless another connection holds it: then OPSP8996 and a normal close. */
  private claim(appKey: string): boolean {
    if (this.services.sessions.holderOf('kis', appKey) === undefined) {
      this.bind(appKey);
      return true;
    }
    this.appKey = appKey;
    this.services.sessions.attributed(this);
    this.refuse(KIS_ANSWERS.keyInUse, '(null)', '');
    // Simulator choice: the broker closes the newcomer (third-party: "kicked at once"), with a normal close frame.
    this.end('refused', 'close');
    return false;
  }

  private register({ trId, trKey }: KisRequest): void {
    const encrypt = kisLayout(trId)?.kind === 'fill';
    if (this.holds(trId, trKey)) {
      this.refuse(KIS_ANSWERS.alreadySubscribed, trId, trKey, encrypt);
      return;
    }
    if (this.registered.size >= this.services.options.maxRegistrations) {
      this.refuse(KIS_ANSWERS.maxSubscriptions, trId, trKey, encrypt);
      return;
    }
    this.registered.set(`${trId}|${trKey}`, { id: trId, key: trKey });
    const { clock, market, stats } = this.services;
    market.subscribe('kis', trId, trKey, !encrypt, this, clock.now(), this.services.pace());
    stats.add(this.appKey, 'registrations');
    stats.peak(this.appKey, 'peakRegistrations', this.registered.size);
    this.send(kisControl(KIS_ANSWERS.subscribed, trId, trKey, encrypt, this.cipher));
  }

  private unregister({ trId, trKey }: KisRequest): void {
    const encrypt = kisLayout(trId)?.kind === 'fill';
    if (!this.registered.delete(`${trId}|${trKey}`)) {
      this.refuse(KIS_ANSWERS.notSubscribed, trId, trKey, encrypt);
      return;
    }
    this.services.market.unsubscribe('kis', trId, trKey, this);
    this.services.stats.add(this.appKey, 'unregistrations');
    this.send(kisControl(KIS_ANSWERS.unsubscribed, trId, trKey, encrypt));
  }

  private refuse(answer: KisControlAnswer, trId: string, trKey: string, encrypt = false): void {
    this.services.stats.refused(this.appKey, answer.code);
    this.send(kisControl(answer, trId, trKey, encrypt));
  }
}
