/**
 * One app key's real-time session (KIS or Kiwoom) shared by every replica of a deployment through Redis (issue 25), on each
 * replica: its part in the lease (holder-lease.ts), the relay its own session stands on (relay-link.ts), and, while
 * it holds the lease, the deployment's session itself (holder.ts).
 *
 * Why Pub/Sub and not Streams for the frames: a real-time frame is worth something only now. A replica that blinked
 * would replay from a Stream frames its clients can no longer use, behind the live ones, and every frame would be
 * kept in Redis's memory until trimmed; a blink costs its clients the frames of the blink either way, as a lost
 * session does at the broker. Pub/Sub delivers in order per channel, which is all the relay needs (an answer before
 * the fill notices its key decrypts), and costs Redis nothing per frame once sent. What must survive a blink is state,
 * not frames: the lease and the wants are keys (renewed, expiring), and the holder repeats its session's state.
 *
 * Keys, under the store's prefix and a digest of the app key (never the key itself): `lease` (the holder and its
 * fencing number), `fence`, `replicas` (a sorted set of heartbeats), `wants:{replica}` (a hash that expires with the
 * heartbeat); channels `relay` (holder → replicas) and `wants` (a replica's wants changed: the holder reads them now).
 */
import type { Redis } from 'ioredis';
import type { Clock } from '../core/clock';
import type { EventBus } from '../core/events';
import type { RealtimeRelaySnapshot } from '../core/realtime-vocabulary';
import type { GatewayAccount } from '../gateway/types';
import { digestOf } from '../budget/keys';
import type { RedisConnection } from '../store/redis-connection';
import { RedisLease } from '../store/redis-lease';
import type { RelayCarriers } from './carriers';
import { HolderLease, type LeaseChange, type LeaseTiming } from './holder-lease';
import { KisHolder, type DeploymentHolder } from './holder';
import { KiwoomHolder, KiwoomRelayLink } from './kiwoom-relay';
import { KisRelayLink, type RelayLink } from './relay-link';
import { decodeRelay, encodeRelay, type HolderMessage, type RelayEnvelope, type Want } from './relay-wire';
import { WantsStore } from './wants-store';
import type { UpstreamPolicy } from './upstream';

/** A replica's wants are renewed this often, and expire after three missed renewals (a dead replica's go with it). */
const WANTS_EVERY_MS = 1_000;
/** The holder reads every replica's wants this often (and at once on a notice), and repeats its session's state. */
const COLLECT_EVERY_MS = 1_000;
/** Relay lags kept per snapshot for the metric (a sample when frames are many). */
const MAX_LAGS = 256;

interface ReplicaRelayDeps {
  redis: RedisConnection;
  /** This replica's name in Redis (host, pid and a random part). */
  replica: string;
  account: GatewayAccount;
  clock: Clock;
  random: () => number;
  policy: UpstreamPolicy;
  bus: EventBus;
  timing: LeaseTiming;
}

export class ReplicaRelay {
  private readonly redis: Redis;
  private readonly wantsStore: WantsStore;
  private readonly keys: ReturnType<typeof relayKeys>;
  private readonly lease: HolderLease;
  private link: RelayLink<unknown> | undefined;
  private holder: DeploymentHolder | undefined;
  private readonly stopping = new AbortController();
  private loops: Promise<void>[] = [];
  private wantsDirty = true;
  private collectDue = true;
  private lastWants = 0;
  private counts = { framesPublished: 0, framesReceived: 0, wantsPublished: 0 };
  private lags: number[] = [];

  constructor(private readonly deps: ReplicaRelayDeps) {
    this.redis = deps.redis.client;
    this.keys = relayKeys(deps.redis.keyPrefix, digestOf(deps.account.config.appKey));
    this.wantsStore = new WantsStore(deps.redis.client, this.keys, 3 * WANTS_EVERY_MS);
    const lease = new RedisLease(deps.redis.client, this.keys.lease, deps.replica);
    this.lease = new HolderLease(lease, this.keys.fence, deps.timing, deps.clock, (change) => this.leaseChanged(change));
  }

  /** What the account's session stands on: this relay. */
  carriers(): RelayCarriers {
    const { replica, clock } = this.deps;
    const wantsChanged = () => this.markWants();
    return {
      kis: (session, book, hooks) => {
        const link = new KisRelayLink(replica, session, book, hooks, clock, wantsChanged);
        this.link = link;
        return link;
      },
      kiwoom: (session, book, hooks) => {
        const link = new KiwoomRelayLink(replica, session, book, hooks, clock, wantsChanged);
        this.link = link;
        return link;
      },
    };
  }

  start(): void {
    const { subscriber } = this.deps.redis;
    subscriber.on('messageBuffer', this.heard);
    void subscriber.subscribe(this.keys.relay, this.keys.wantsNotice).catch(() => undefined);
    this.loops = [
      this.every(
        () => this.lease.nextTickMs,
        () => this.lease.tick(),
      ),
      this.every(
        () => 100,
        () => this.lease.check(),
      ),
      this.every(
        () => 100,
        () => this.publishWantsIfDue(),
      ),
      this.every(
        () => 100,
        () => this.collectIfDue(),
      ),
    ];
  }

  private readonly heard = (channel: Buffer, raw: Buffer): void => {
    const name = channel.toString('latin1');
    if (name === this.keys.wantsNotice) {
      this.collectDue = true;
      return;
    }
    if (name !== this.keys.relay) return;
    const envelope = decodeRelay(raw);
    if (!envelope) return;
    // The lag is the Redis path's, heard by every replica the holder included (its own frames come back to it): a
    // deployment's relay is watched even while one replica alone runs.
    if (envelope.message.kind === 'frame' && this.lags.length < MAX_LAGS) this.lags.push(Math.max(0, this.deps.clock.now() - envelope.sentAt));
    // This replica's own holder is heard in-process (through an outage too), not again through Redis.
    if (envelope.fence === this.lease.fence) return;
    this.counts.framesReceived += envelope.message.kind === 'frame' ? 1 : 0;
    this.link?.receive(envelope);
  };

  private markWants(): void {
    this.wantsDirty = true;
  }

  private async publishWantsIfDue(): Promise<void> {
    const now = this.deps.clock.monotonic();
    if (!this.wantsDirty && now - this.lastWants < WANTS_EVERY_MS) return;
    this.wantsDirty = false;
    this.lastWants = now;
    const wants = this.link?.wants() ?? [];
    // The holder's own replica is read in-process too: its clients' wants reach its session through an outage.
    if (this.holder) this.collectDue = true;
    try {
      await this.wantsStore.publish(this.deps.replica, wants);
      this.counts.wantsPublished++;
    } catch {
      this.wantsDirty = true; // again once Redis answers
    }
  }

  private lastCollect = 0;
  private others = new Map<string, Map<string, Want>>();

  /** On the holder: every live replica's wants, its own from its link, into the deployment's book. */
  private async collectIfDue(): Promise<void> {
    const holder = this.holder;
    if (!holder) return;
    const now = this.deps.clock.monotonic();
    if (!this.collectDue && now - this.lastCollect < COLLECT_EVERY_MS) return;
    this.collectDue = false;
    this.lastCollect = now;
    holder.announce();
    holder.tick();
    try {
      this.others = await this.wantsStore.others(this.deps.replica);
    } catch {
      // Redis out of reach: the others' wants as last read (the session keeps serving them as it can).
    }
    if (this.holder !== holder) return;
    const all = new Map(this.others);
    all.set(this.deps.replica, new Map((this.link?.wants() ?? []).map((w) => [`${w.id}\n${w.key}`, w])));
    holder.setWants(all);
  }

  private leaseChanged(change: LeaseChange): void {
    const { account, bus } = this.deps;
    bus.emit('realtime.lease', { account: account.ref, change: change.change, detail: change.detail });
    if (change.change === 'acquired') {
      const deps = {
        ctx: this.deps,
        gate: () => this.lease.gateMs(),
        publish: (message: HolderMessage) => this.publish(message),
        takeover: change.takeover,
      };
      this.holder = account.ref.provider === 'kis' ? new KisHolder(deps) : new KiwoomHolder(deps);
      this.collectDue = true;
    } else if (change.change === 'lost' || change.change === 'released') {
      this.holder?.stop(change.change === 'lost' ? 'lease_lost' : 'shutdown');
      this.holder = undefined;
      this.link?.holderGone();
    }
  }

  /** The holder's message: to this replica's session at once, and to the others through Redis. */
  private publish(message: HolderMessage): void {
    const fence = this.lease.fence;
    if (fence === undefined) return;
    const envelope: RelayEnvelope = { fence, sentAt: this.deps.clock.now(), message };
    this.link?.receive(envelope);
    if (message.kind === 'frame') this.counts.framesPublished++;
    this.redis.publish(this.keys.relay, encodeRelay(envelope)).catch(() => undefined);
  }

  /** This replica's part, for the metrics: once a second. */
  snapshot(): RealtimeRelaySnapshot {
    const snapshot: RealtimeRelaySnapshot = {
      account: this.deps.account.ref,
      holder: this.holder !== undefined,
      leaseAcquiredAt: this.lease.acquiredAt ?? null,
      redisUp: this.lease.reachable,
      wants: this.link?.wants().length ?? 0,
      ...this.counts,
      lagsMs: this.lags,
    };
    this.counts = { framesPublished: 0, framesReceived: 0, wantsPublished: 0 };
    this.lags = [];
    return snapshot;
  }

  /** Closes the session (if this replica holds it), then gives the lease back and takes its wants away. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.all(this.loops);
    this.deps.redis.subscriber.off('messageBuffer', this.heard);
    this.holder?.stop('shutdown');
    this.holder = undefined;
    await this.lease.release();
    await this.wantsStore.remove(this.deps.replica);
  }

  private async every(interval: () => number, run: () => Promise<void> | void): Promise<void> {
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      await this.deps.clock.sleep(interval(), signal);
      if (signal.aborted) return;
      // Each step reports its own Redis errors (the lease as an outage); nothing else may end the loop.
      await Promise.resolve()
        .then(run)
        .catch(() => undefined);
    }
  }
}

function relayKeys(prefix: string, digest: string) {
  const base = `${prefix}realtime:${digest}:`;
  return {
    lease: `${base}lease`,
    fence: `${base}fence`,
    replicas: `${base}replicas`,
    wantsOf: (replica: string) => `${base}wants:${replica}`,
    relay: `${base}relay`,
    wantsNotice: `${base}wants`,
  };
}
