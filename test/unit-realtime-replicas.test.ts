/**
 * The real-time replicas' parts in tables, on a manual clock: the holder's lease (holder-lease.ts) over a fake of
 * Redis's fenced lease that keeps its ttl on the same clock, the relay's wire (relay-wire.ts), a replica's link
 * ignoring a holder older than the newest it heard (relay-link.ts); and the wants expiring with their replica's
 * heartbeat (wants-store.ts), on a real redis-server, whose clock (TIME) is the one they expire on.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../src/core/clock';
import { HolderLease, leaseTiming, type FencedLease, type LeaseChange } from '../src/realtime/holder-lease';
import type { LeaseHolder } from '../src/store/redis-lease';
import type { ClientConnection } from '../src/realtime/client';
import { kisControl, KIS_ANSWERS } from '../src/realtime/kis-wire';
import { RegistrationBook } from '../src/realtime/registrations';
import { KisRelayLink } from '../src/realtime/relay-link';
import { decodeRelay, encodeRelay, readWants, wantFields, type HolderMessage, type RelayEnvelope } from '../src/realtime/relay-wire';
import type { UpstreamHooks } from '../src/realtime/upstream';
import { WantsStore } from '../src/realtime/wants-store';
import { EventBus } from '../src/core/events';
import { KisHolder, type HolderDeps } from '../src/realtime/holder';
import { KiwoomRelayLink } from '../src/realtime/kiwoom-relay';
import { KIWOOM_REFUSALS, kiwoomPairsAnswer } from '../src/realtime/kiwoom-wire';
import type { GatewayAccount } from '../src/gateway/types';
import { HANG_MS } from './realtime-harness';
import { redisAvailable, startRedis } from './redis-harness';
import { T0 } from './unit-fixtures';
import { until } from './helpers';

/** Redis as the fenced lease sees it: one key with an expiry, and the fence counter (never below the server's ms). */
class FakeRedis {
  value: string | undefined;
  expiresAt = 0;
  counter = 0;
  /** Replicas that cannot reach it now (a partition), or everyone (`all`). */
  readonly cut = new Set<string>();
  all = false;

  constructor(private readonly clock: ManualClock) {}

  current(): string | undefined {
    if (this.value !== undefined && this.clock.now() >= this.expiresAt) this.value = undefined;
    return this.value;
  }

  reach(owner: string): void {
    if (this.all || this.cut.has(owner)) throw new Error('connect ECONNREFUSED');
  }

  /** Restarted without persistence: the lease and the counter are gone. */
  wipe(): void {
    this.value = undefined;
    this.counter = 0;
  }

  lease(owner: string): FencedLease {
    let mine = owner;
    const read = (v: string | undefined): LeaseHolder | undefined => {
      const m = v === undefined ? null : /^(.+) (\d+)$/.exec(v);
      return m ? { owner: m[1]!, fence: Number(m[2]) } : undefined;
    };
    return {
      takeFenced: (ttlMs: number) => {
        this.reach(owner);
        if (this.current() !== undefined) return Promise.resolve({ holder: read(this.value) });
        this.counter = Math.max(this.counter + 1, this.clock.now());
        mine = `${owner} ${this.counter}`;
        this.value = mine;
        this.expiresAt = this.clock.now() + ttlMs;
        return Promise.resolve({ fence: this.counter });
      },
      holder: () => {
        this.reach(owner);
        return Promise.resolve(read(this.current()));
      },
      renew: (ttlMs: number) => {
        this.reach(owner);
        if (this.current() !== mine) return Promise.resolve(false);
        this.expiresAt = this.clock.now() + ttlMs;
        return Promise.resolve(true);
      },
      release: () => {
        this.reach(owner);
        if (this.current() !== mine) return Promise.resolve(false);
        this.value = undefined;
        return Promise.resolve(true);
      },
    };
  }
}

const TTL = 1_500;
const OUTAGE_HOLD = 5_000;

function setup(names: string[], outageHoldMs = OUTAGE_HOLD) {
  const clock = new ManualClock(T0);
  const redis = new FakeRedis(clock);
  const changes: Array<[string, LeaseChange]> = [];
  const leases = names.map(
    (name) => new HolderLease(redis.lease(name), 'fence', leaseTiming(TTL, outageHoldMs), clock, (change) => changes.push([name, change])),
  );
  /** Moves the clock by `ms` in steps of `step`, each lease ticking when its next tick is due (unless paused). */
  const nextTick = leases.map(() => 0);
  const run = async (ms: number, paused: (i: number) => boolean = () => false, step = 25, each?: () => void) => {
    for (let t = 0; t < ms; t += step) {
      clock.set(clock.now() + step);
      for (const [i, lease] of leases.entries()) {
        if (paused(i)) continue;
        lease.check();
        if (clock.monotonic() < nextTick[i]!) continue;
        await lease.tick();
        nextTick[i] = clock.monotonic() + lease.nextTickMs;
      }
      each?.();
    }
  };
  const kinds = (name: string) => changes.filter(([n]) => n === name).map(([, c]) => c.change);
  return { clock, redis, leases, changes, run, kinds };
}

describe('the holder lease', () => {
  test('taken when free, renewed every ttl/4, its session opened no sooner than 1.1 s after taking it', async () => {
    const { leases, run, kinds, clock, changes } = setup(['a']);
    const [a] = leases as [HolderLease];
    assert.equal(a.timing.renewEveryMs, 375);
    await run(25);
    assert.deepEqual(kinds('a'), ['acquired']);
    assert.equal(changes[0]![1].takeover, false, 'found free: the first holder, not a takeover');
    const takenAt = clock.monotonic();
    const gates: Array<[number, number]> = [];
    await run(2_000, undefined, 25, () => gates.push([clock.monotonic() - takenAt, a.gateMs()]));
    for (const [since, gate] of gates) {
      if (since < 1_100) assert.ok(gate > 0, `${since} ms after taking: gate ${gate}`);
      else assert.equal(gate, 0, `${since} ms after taking`);
    }
    await run(10_000);
    assert.deepEqual(kinds('a'), ['acquired'], 'renewed, never lost');
  });

  test('fenced: a lease lost and taken again draws a higher number; another replica taking over says so', async () => {
    const { leases, run, kinds, redis, changes } = setup(['a', 'b']);
    const [a, b] = leases as [HolderLease, HolderLease];
    await run(25);
    assert.ok(a.fence !== undefined && b.fence === undefined);
    const first = a.fence;
    // a is cut off from Redis: it keeps its open session for the outage hold, opens none (not proven), then gives up.
    redis.cut.add('a');
    let aGateOpen = 0;
    await run(OUTAGE_HOLD + 1_000, undefined, 25, () => (aGateOpen += a.gateMs() === 0 ? 1 : 0));
    assert.deepEqual(kinds('a'), ['acquired', 'outage', 'lost']);
    assert.deepEqual(kinds('b'), ['acquired']);
    const taken = changes.find(([n, c]) => n === 'b' && c.change === 'acquired')![1];
    assert.equal(taken.takeover, true, 'b saw a holding the lease: its first session is a takeover');
    assert.ok(b.fence! > first, `fence ${b.fence} after ${first}`);
    // a back: the lease is b's, a takes nothing.
    redis.cut.delete('a');
    await run(2_000);
    assert.equal(a.fence, undefined);
    assert.ok(kinds('a').includes('reachable'));
  });

  test('a holder that finds the lease another’s at its renewal gives it up at once', async () => {
    const { leases, run, kinds, redis } = setup(['a']);
    const [a] = leases as [HolderLease];
    await run(25);
    // Another replica's lease in place of a's (a paused past its ttl, the other took it).
    redis.value = 'other 999';
    redis.expiresAt = Number.MAX_SAFE_INTEGER;
    await run(500);
    assert.deepEqual(kinds('a'), ['acquired', 'lost']);
    assert.equal(a.fence, undefined);
  });

  test('Redis restarted empty: the holder takes its lease back (a higher fence, the session kept); the others wait outageHold and a ttl', async () => {
    const { leases, run, kinds, redis, clock } = setup(['a', 'b']);
    const [a, b] = leases as [HolderLease, HolderLease];
    await run(25);
    const first = a.fence!;
    redis.all = true;
    await run(1_000);
    assert.ok(a.fence !== undefined, 'held through a short outage');
    assert.ok(a.gateMs() > 0, 'no session opened while the lease is not proven');
    redis.wipe();
    redis.all = false;
    // b looks first (a is paused) and must not take a's lease while a may still take it back.
    const backAt = clock.monotonic();
    await run(OUTAGE_HOLD / 2, (i) => i === 0);
    assert.equal(b.fence, undefined, `b took nothing ${clock.monotonic() - backAt} ms after Redis came back`);
    await run(500);
    assert.deepEqual(kinds('a'), ['acquired', 'outage', 'reachable', 'retaken']);
    assert.ok(a.fence > first);
    assert.equal(b.fence, undefined);
  });

  test('Redis down for longer than the outage hold: the holder gives its session up', async () => {
    const { leases, run, kinds, redis } = setup(['a', 'b'], 3_000);
    await run(25);
    redis.all = true;
    await run(2_500);
    assert.ok(leases[0]!.fence !== undefined, 'kept for the outage hold');
    await run(1_000);
    assert.deepEqual(kinds('a'), ['acquired', 'outage', 'lost']);
    assert.deepEqual(kinds('b'), ['outage']);
  });

  test('never two replicas proving the lease at once: three replicas, random partitions, pauses and outages', async () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const { leases, run, redis } = setup(['a', 'b', 'c']);
      let state = seed;
      const random = () => (state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
      const paused = new Set<number>();
      let both = 0;
      let opened = 0;
      for (let round = 0; round < 60; round++) {
        // Each round a second of one disturbance or none.
        const r = random();
        paused.clear();
        redis.cut.clear();
        redis.all = false;
        if (r < 0.2) paused.add(Math.floor(random() * 3));
        else if (r < 0.4) redis.cut.add(['a', 'b', 'c'][Math.floor(random() * 3)]!);
        else if (r < 0.5) redis.all = true;
        else if (r < 0.55) redis.wipe();
        await run(
          1_000,
          (i) => paused.has(i),
          25,
          () => {
            // Every replica asks its gate, the paused ones too (a process resumed asks before it ticks).
            const open = leases.filter((l) => l.gateMs() === 0).length;
            if (open > 1) both++;
            if (open === 1) opened++;
          },
        );
      }
      assert.equal(both, 0, `seed ${seed}: two replicas could open a session at once`);
      assert.ok(opened > 0, `seed ${seed}: some replica could open the session at all`);
    }
  });

  test('released at shutdown: another replica takes it at its next look', async () => {
    const { leases, run, kinds } = setup(['a', 'b']);
    await run(25);
    await leases[0]!.release();
    await run(300);
    assert.deepEqual(kinds('a'), ['acquired', 'released']);
    assert.deepEqual(kinds('b'), ['acquired']);
  });
});

describe('the relay wire', () => {
  test('each message of the holder read back as written, frames byte for byte', () => {
    const frame = Buffer.from('0|H0STCNT0|001|005930^093001^71000\n\u00ff', 'utf8');
    const messages: HolderMessage[] = [
      { kind: 'session', session: 0, state: 'idle', reason: null },
      { kind: 'session', session: 3, state: 'open', reason: null },
      { kind: 'session', session: 3, state: 'down', reason: 'stalled' },
      { kind: 'session', session: 4, state: 'idle', reason: 'lease_lost' },
      { kind: 'frame', session: 7, data: frame },
      { kind: 'frame', session: 7, data: Buffer.alloc(0) },
      {
        kind: 'answer',
        session: 2,
        to: ['host:12:ab', 'host:13:cd'],
        data: Buffer.from(kisControl(KIS_ANSWERS.maxSubscriptions, 'H0STCNT0', '005930', false)),
      },
    ];
    for (const message of messages) {
      const envelope: RelayEnvelope = { fence: 1_795_132_801_275, sentAt: T0, message };
      assert.deepEqual(decodeRelay(encodeRelay(envelope)), envelope, message.kind);
    }
  });

  test('what is not the holder’s message is nothing: no header, a bad kind, a state or number out of shape', () => {
    const table = [
      '',
      'no newline at all',
      'X1 0 1 -\n',
      'S1 0 1 opened,\n',
      'Sabc 0 1 open,\n',
      'F1 0 1\nno extra field',
      `F${'9'.repeat(17)} 0 1 -\n`,
      `F1 0 1 ${'x'.repeat(5_000)}\n`,
    ];
    for (const raw of table) assert.equal(decodeRelay(Buffer.from(raw, 'latin1')), undefined, JSON.stringify(raw.slice(0, 40)));
    // An end reason this version does not know is no reason, not a message refused.
    assert.deepEqual(decodeRelay(Buffer.from('S5 1 2 down,meteor\n'))?.message, { kind: 'session', session: 1, state: 'down', reason: null });
  });

  test('a replica’s wants as its hash and back; fields that are not wants are left out', () => {
    const wants = [
      { id: 'H0STCNT0', key: '005930', count: 2, ask: 7 },
      { id: '0B', key: '005930_NX', count: 1, ask: 0 },
    ];
    const fields = wantFields(wants);
    const hash: Record<string, string> = {};
    for (let i = 0; i < fields.length; i += 2) hash[fields[i]!] = fields[i + 1]!;
    assert.deepEqual([...readWants(hash).values()], wants);
    assert.deepEqual(readWants({ nonewline: '1 1', '\nempty-id': '1 1', 'H0STCNT0\n000660': 'two 1', 'H0STCNT0\n035720': '1 2 3' }).size, 0);
  });
});

describe('a replica’s link to the holder', () => {
  function link() {
    const clock = new ManualClock(T0);
    const events: string[] = [];
    const data: string[] = [];
    const book = new RegistrationBook<ClientConnection>(41);
    const hooks: UpstreamHooks = {
      ready: () => events.push('ready'),
      lost: (reason) => events.push(`lost ${reason}`),
      state: (state, reason) => events.push(`state ${state}${reason ? ` ${reason}` : ''}`),
      connecting: () => undefined,
    };
    const receiver = { control: () => undefined, data: (_m: unknown, d: Buffer) => data.push(d.toString('utf8')) };
    const l = new KisRelayLink('me', receiver, book, hooks, clock, () => undefined);
    const send = (fence: number, message: HolderMessage) => l.receive({ fence, sentAt: T0, message });
    const frame = (n: number) => ({ kind: 'frame' as const, session: 1, data: Buffer.from(`0|H0STCNT0|001|005930^${n}`) });
    return { l, events, data, send, frame };
  }

  test('a holder older than the newest heard is ignored: its session states and frames alike', () => {
    const { events, data, send, frame } = link();
    send(10, { kind: 'session', session: 1, state: 'open', reason: null });
    send(10, frame(1));
    // A newer holder: the session this replica was on is lost, the new one's open is a new session.
    send(11, { kind: 'session', session: 1, state: 'open', reason: null });
    send(11, frame(2));
    // The old holder, paused past its lease and heard late: nothing of it counts.
    send(10, frame(3));
    send(10, { kind: 'session', session: 2, state: 'down', reason: 'dropped' });
    send(10, { kind: 'session', session: 5, state: 'open', reason: null });
    assert.deepEqual(data, ['0|H0STCNT0|001|005930^1', '0|H0STCNT0|001|005930^2']);
    assert.deepEqual(events, ['state open', 'ready', 'lost holder_lost', 'state down holder_lost', 'state open', 'ready']);
  });

  test('the same holder’s new session number: the one before is gone (a blink); an answer to other replicas is not read', () => {
    const { events, data, send } = link();
    send(10, { kind: 'session', session: 1, state: 'open', reason: null });
    send(10, { kind: 'session', session: 1, state: 'open', reason: null });
    send(10, { kind: 'session', session: 2, state: 'open', reason: null });
    send(10, { kind: 'answer', session: 2, to: ['other'], data: Buffer.from('0|H0STCNT0|001|x') });
    assert.deepEqual(events, ['state open', 'ready', 'lost closed', 'state down closed', 'state open', 'ready']);
    assert.deepEqual(data, []);
  });
});

describe('the wants in Redis', { skip: redisAvailable() ? false : 'needs redis-server' }, () => {
  test('a replica’s wants live as long as its heartbeat: read by the others until it stops publishing, then gone', async (t) => {
    const redis = await startRedis(t);
    const ttlMs = 400;
    const keys = { replicas: 't:replicas', wantsOf: (r: string) => `t:wants:${r}`, wantsNotice: 't:wants' };
    const store = new WantsStore(redis.client, keys, ttlMs);
    const want = (key: string, ask = 1) => ({ id: 'H0STCNT0', key, count: 1, ask });
    await store.publish('r1', [want('005930')]);
    await store.publish('r2', [want('000660'), want('035720', 4)]);
    await store.publish('holder', [want('005930')]);
    const seen = await store.others('holder');
    assert.deepEqual([...seen.keys()].sort(), ['r1', 'r2'], 'the holder reads the others, not itself');
    assert.deepEqual([...seen.get('r2')!.values()], [want('000660'), want('035720', 4)]);
    // A publication replaces the one before whole: a want dropped is gone at once. r2's last beat (taken after now).
    const stoppedAt = Date.now();
    await store.publish('r2', [want('035720', 4)]);
    assert.deepEqual([...(await store.others('holder')).get('r2')!.keys()], ['H0STCNT0\n035720']);
    // r1 keeps beating, r2 stops (killed): past the ttl, r2 and its wants are gone, in the set and the hash alike.
    // Each read follows r1's beat at once, so a slow host cannot make r1 miss one.
    let others = await store.others('holder');
    while (others.has('r2') && Date.now() - stoppedAt < HANG_MS) {
      await new Promise((resolve) => setTimeout(resolve, ttlMs / 4));
      await store.publish('r1', [want('005930')]);
      others = await store.others('holder');
    }
    assert.ok(Date.now() - stoppedAt >= ttlMs - 50, `r2's wants outlived its last beat by the ttl (${Date.now() - stoppedAt} ms)`);
    assert.deepEqual([...others.keys()], ['r1']);
    assert.equal(await redis.client.exists(keys.wantsOf('r2')), 0, 'the hash expired with the heartbeat');
    // A replica stopping takes its wants away at once.
    await store.remove('r1');
    assert.deepEqual([...(await store.others('holder')).keys()], []);
  });
});

describe('the holder’s connects', () => {
  test('the first session of a replica that took the lease from another is a takeover; one found free, a first', async () => {
    const reasons: string[] = [];
    for (const takeover of [true, false]) {
      const clock = new ManualClock(T0);
      const bus = new EventBus();
      bus.on('realtime.connect', ({ reason }) => reasons.push(reason));
      // No approval key now: the connect is counted, then waits (no socket is opened).
      const account = {
        ref: { name: 'main', provider: 'kis', env: 'real' },
        config: { websocketUrl: 'ws://127.0.0.1:9' },
        approvalKey: () => Promise.resolve({ retryAfterMs: 60_000 }),
      } as unknown as GatewayAccount;
      const policy = {
        reconnect: { initialDelayMs: 1_000, maxDelayMs: 60_000 },
        stallTimeoutMs: 60_000,
        idleCloseMs: 60_000,
        keepOpen: false,
        registrationSpacingMs: 0,
        afterReplacedMs: 60_000,
      };
      const deps: HolderDeps = { ctx: { account, clock, random: () => 0.5, policy, bus }, gate: () => 0, publish: () => undefined, takeover };
      const holder = new KisHolder(deps);
      holder.setWants(new Map([['r1', new Map([['H0STCNT0\n005930', { id: 'H0STCNT0', key: '005930', count: 1, ask: 1 }]])]]));
      await until('the connect counted', HANG_MS, () => reasons.length === (takeover ? 1 : 2), 5);
      holder.stop('shutdown');
    }
    assert.deepEqual(reasons, ['takeover', 'first']);
  });
});

describe('a replica’s Kiwoom link', () => {
  test('a REG is answered once every pair in it is live at the holder, refused whole when one is refused; a REMOVE at once', async () => {
    const clock = new ManualClock(T0);
    const hooks: UpstreamHooks = { ready: () => undefined, lost: () => undefined, state: () => undefined, connecting: () => undefined };
    const pushes: string[] = [];
    const receiver = { real: (_p: unknown, d: Buffer) => pushes.push(d.toString('utf8')), loggedIn: () => undefined };
    const link = new KiwoomRelayLink('me', receiver, new RegistrationBook<ClientConnection>(100), hooks, clock, () => undefined);
    const answers: string[] = [];
    const from = (fence: number, text: string, to = ['me']) =>
      link.receive({ fence, sentAt: T0, message: { kind: 'answer', session: 1, to, data: Buffer.from(text) } });
    link.receive({ fence: 5, sentAt: T0, message: { kind: 'session', session: 1, state: 'open', reason: null } });
    const [a, b, c] = [
      { id: '0B', key: '005930' },
      { id: '0B', key: '000660' },
      { id: '0B', key: '035720' },
    ];
    link.send('REG', [a, b], (text) => answers.push(`ab ${text}`));
    link.send('REG', [c], (text) => answers.push(`c ${text}`));
    from(5, kiwoomPairsAnswer([a]));
    from(5, kiwoomPairsAnswer([b]), ['someone-else']);
    assert.deepEqual([...answers], [], 'b is not live for this replica yet');
    from(5, kiwoomPairsAnswer([b]));
    from(4, kiwoomPairsAnswer([c], KIWOOM_REFUSALS.budgetFull(100, 'deployment')));
    assert.deepEqual([...answers], ['ab {"trnm":"REG","return_code":0,"return_msg":""}'], 'an older holder’s refusal is not heard');
    from(5, kiwoomPairsAnswer([c], KIWOOM_REFUSALS.budgetFull(100, 'deployment')));
    assert.equal(answers.length, 2);
    assert.match(answers[1]!, /^c \{"trnm":"REG","return_code":2,"return_msg":".*the deployment's 100 registrations are in use/);
    assert.ok(!answers[1]!.includes('"data"'), 'the client is answered in the broker’s shape, without the pairs');
    link.send('REMOVE', [a], (text) => answers.push(`remove ${text}`));
    await Promise.resolve();
    assert.equal(answers[2], 'remove {"trnm":"REMOVE","return_code":0,"return_msg":""}');
    link.receive({ fence: 5, sentAt: T0, message: { kind: 'frame', session: 1, data: Buffer.from('{"trnm":"REAL","data":[{"type":"0B","item":"000660"}]}') } });
    assert.equal(pushes.length, 1);
  });
});
