import { join, resolve as resolvePath } from 'node:path';
import { brokerHostOf } from './hosts';
import * as D from './defaults';
import { sha256 } from '../core/wire';
import type { ResolveContext } from './resolve-context';
import type { RawGateway } from './schema';
import { resolveSecret } from './secret-files';
import type { AccountConfig, GatewayClientConfig, GatewayConfig } from './types';

/**
 * The `gateway:` section: who may call through the sidecar, with which local credentials, on which accounts,
 * and how the per-second budget is counted. Local credentials keep the broker's own shape where a client checks
 * it (KIS: a 36-character key, a 180-character secret), and may never be a real account's.
 */

export function resolveGateway(raw: RawGateway | undefined, accounts: AccountConfig[], stateDir: string, ctx: ResolveContext): GatewayConfig {
  const byName = new Map(accounts.map((a) => [a.name, a]));
  const clients: GatewayClientConfig[] = [];
  const seenNames = new Set<string>();
  const seenKeys = new Set<string>();
  const realKeys = new Set(accounts.map((a) => a.appKey));
  // Clients read from clientsFile are reported under its name, so the message points at the file to open.
  const listKey = raw?.clientsFile !== undefined ? 'clientsFile' : 'clients';
  (raw?.clients ?? []).forEach((client, index) => {
    const at = (...rest: string[]) => ['gateway', listKey, index, ...rest];
    if (seenNames.has(client.name)) ctx.problems.add(at('name'), 'is used by another client');
    seenNames.add(client.name);
    if (seenKeys.has(client.appKey)) ctx.problems.add(at('appKey'), "is another client's key");
    seenKeys.add(client.appKey);
    // The gateway would take a real key for a client's, and a client holding it holds the account.
    if (realKeys.has(client.appKey)) ctx.problems.add(at('appKey'), "is an account's real app key: give the client a local one (`gateway add-client`)");
    const given = [client.appSecret, client.appSecretFile, client.appSecretSha256].filter((v) => v !== undefined).length;
    let digest: Buffer | undefined;
    let secretLength: number | undefined;
    if (given !== 1) {
      ctx.problems.add(at('appSecret'), 'set exactly one of appSecret, appSecretFile and appSecretSha256');
    } else if (client.appSecretSha256 !== undefined) {
      digest = Buffer.from(client.appSecretSha256, 'hex');
    } else {
      const secret = resolveSecret(client.appSecret, client.appSecretFile, { inline: 'appSecret', file: 'appSecretFile' }, ctx.baseDir, ctx.readText);
      if (secret.problem) ctx.problems.add(at(secret.problem.key), secret.problem.message);
      else if (!secret.value) ctx.problems.add(at(client.appSecretFile !== undefined ? 'appSecretFile' : 'appSecret'), 'must not be empty');
      else {
        digest = sha256(secret.value);
        secretLength = secret.value.length;
      }
    }
    for (const [i, name] of client.accounts.entries()) {
      const account = byName.get(name);
      if (!account) {
        ctx.problems.add(at('accounts', String(i)), 'names no account of this config');
        continue;
      }
      if (account.provider === 'kis') {
        // KIS clients check the lengths themselves before they send anything (python-kis does).
        if (client.appKey.length !== D.KIS_APP_KEY_LENGTH)
          ctx.problems.add(at('appKey'), `must be ${D.KIS_APP_KEY_LENGTH} characters for a KIS account, as a real one`);
        if (secretLength !== undefined && secretLength !== D.KIS_APP_SECRET_LENGTH) {
          ctx.problems.add(
            at(client.appSecretFile !== undefined ? 'appSecretFile' : 'appSecret'),
            `must be ${D.KIS_APP_SECRET_LENGTH} characters for a KIS account, as a real one`,
          );
        }
      }
    }
    if (digest) clients.push({ name: client.name, accounts: [...new Set(client.accounts)], appKey: client.appKey, appSecretSha256: digest });
  });
  const callsPerSecond: Record<string, number> = {};
  for (const [name, limit] of Object.entries(raw?.callsPerSecond ?? {})) {
    const account = byName.get(name);
    if (!account) {
      ctx.problems.add(['gateway', 'callsPerSecond', name], 'names no account of this config');
      continue;
    }
    // Above the broker's own limit every extra call earns EGW00201 (and, repeated, a restriction of the app key);
    // a higher value is for a baseUrl elsewhere (the simulator, a proxy with a limit of its own).
    const published = D.DEFAULT_CALLS_PER_SECOND[account.provider][account.env];
    const broker = brokerHostOf(account.baseUrl);
    if (broker && limit > published) {
      ctx.problems.add(
        ['gateway', 'callsPerSecond', name],
        `must be at most ${published} because the account's baseUrl is ${broker.broker}'s own host (${broker.host}), whose limit that is; a higher value needs a baseUrl elsewhere (the simulator, a proxy)`,
      );
    }
    callsPerSecond[name] = limit;
  }
  const enabled = raw?.enabled ?? false;
  if (enabled && (raw?.clients ?? []).length === 0) {
    ctx.problems.add(
      ['gateway', listKey],
      listKey === 'clientsFile'
        ? 'lists no client yet, and the gateway is enabled: `broker-token-sidecar gateway add-client` adds one'
        : 'must list at least 1 client when the gateway is enabled (or name a clientsFile that `gateway add-client` fills)',
    );
  }
  return {
    enabled,
    host: raw?.host ?? D.DEFAULT_GATEWAY.host,
    port: raw?.port ?? D.DEFAULT_GATEWAY.port,
    maxWaitMs: raw?.maxWait ?? D.DEFAULT_GATEWAY.maxWaitMs,
    windowMarginMs: raw?.windowMargin ?? D.DEFAULT_GATEWAY.windowMarginMs,
    callsPerSecond,
    clients,
    tokenKeyFile: raw?.tokenKeyFile !== undefined ? resolvePath(ctx.baseDir, raw.tokenKeyFile) : join(stateDir, 'gateway-token.key'),
  };
}

/** An account with no token file is one only the gateway's clients use: without the gateway, nobody would. */
export function servedByGateway(raw: RawGateway | undefined, account: string): boolean {
  return (raw?.enabled ?? false) && (raw?.clients ?? []).some((client) => client.accounts.includes(account));
}

/** The per-second limit the gateway keeps for an account: the config's, else the broker's published one. */
export function callsPerSecondOf(gateway: GatewayConfig, account: AccountConfig): number {
  return gateway.callsPerSecond[account.name] ?? D.DEFAULT_CALLS_PER_SECOND[account.provider][account.env];
}

/** The budget's timing from the gateway's settings: a slot counts the broker's second, plus the margin, after its answer. */
export function budgetOptionsOf(gateway: GatewayConfig): { windowMs: number; maxWaitMs: number } {
  return { windowMs: 1_000 + gateway.windowMarginMs, maxWaitMs: gateway.maxWaitMs };
}
