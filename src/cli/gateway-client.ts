import { existsSync } from 'node:fs';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { sha256 } from '../core/wire';
import { DEFAULT_GATEWAY } from '../config/defaults';
import { interpolate } from '../config/interpolate';
import { readTextFile } from '../config/secret-files';
import { parseYaml } from '../config/yaml';
import { writeFileAtomic } from '../core/atomic-file';
import { ConfigError } from '../core/errors';
import { newLocalCredentials } from '../gateway/clients';
import { CliError, EXIT } from './boot';

/**
 * `gateway add-client`: makes a client's local credentials, writes the client's side (mode 0600: the local
 * secret, where the gateway is, which accounts) and adds the entry for the sidecar's config, which holds only the
 * secret's digest: appended to `gateway.clientsFile` when the config names one, else printed for the user to paste
 * (the config itself is left as they wrote it, comments and order).
 *
 * It runs before the config is complete, since the client it makes is part of what completes it: only the gateway's
 * address, the account names and the existing clients are read, never a secret, and a `${VAR}` elsewhere in the
 * file need not be set.
 */
export async function addGatewayClient(
  configPath: string,
  name: string,
  accounts: string[],
  dir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new CliError('--name must be 1-64 letters, digits, dots, dashes or underscores', EXIT.config);
  const setup = readGatewaySetup(configPath, env);
  for (const account of accounts) {
    if (!setup.accounts.includes(account)) throw new CliError(`--account ${account}: no such account in ${setup.source}`, EXIT.config);
  }
  if (setup.clientNames.includes(name)) throw new CliError(`--name ${name}: the config already has a client of that name`, EXIT.config);
  const { appKey, appSecret } = newLocalCredentials();
  const gateway = `http://${setup.host.includes(':') ? `[${setup.host}]` : setup.host}:${setup.port}`;
  const path = join(dir, `${name}.gateway.yaml`);
  const lines = [
    `# Local credentials for ${name}: they work only through this sidecar's gateway, never at the broker.`,
    '# Use them where the bot expects its app key and secret, and the URL below instead of the broker host.',
    `appkey: "${appKey}"`,
    `appsecret: "${appSecret}"`,
    ...accounts.map((a, i) => `${i === 0 ? 'urls:\n' : ''}  ${a}: "${gateway}/${encodeURIComponent(a)}"`),
    '',
  ];
  await writeFileAtomic(path, lines.join('\n'), { mode: 0o600, dirMode: 0o700 });
  const entry = `{ name: ${name}, accounts: [${accounts.join(', ')}], appKey: "${appKey}", appSecretSha256: "${sha256(appSecret).toString('hex')}" }`;
  const wrote = `wrote ${path} (mode 0600): the client's local key and secret and the gateway URL of each account`;
  if (setup.clientsFile !== undefined) {
    const before = existsSync(setup.clientsFile) ? readTextFile(setup.clientsFile) : CLIENTS_FILE_HEADER;
    await writeFileAtomic(setup.clientsFile, `${before}${before.endsWith('\n') || before === '' ? '' : '\n'}- ${entry}\n`, { mode: 0o600, dirMode: 0o700 });
    return [wrote, `added ${name} to ${setup.clientsFile} (gateway.clientsFile); restart the sidecar to let it in`, ''].join('\n');
  }
  return [wrote, `add this under gateway.clients in ${setup.source}, then restart the sidecar:`, `    - ${entry}`, ''].join('\n');
}

const CLIENTS_FILE_HEADER =
  "# The gateway's clients (gateway.clientsFile), one per line, each holding its local secret's SHA-256 only.\n# `broker-token-sidecar gateway add-client` adds to this file.\n";

interface GatewaySetup {
  source: string;
  accounts: string[];
  clientNames: string[];
  host: string;
  port: number;
  clientsFile?: string;
}

/** What add-client needs of the config, read leniently: unset variables matter only where they are read. */
function readGatewaySetup(configPath: string, env: NodeJS.ProcessEnv): GatewaySetup {
  const source = resolvePath(configPath);
  let data: Record<string, unknown>;
  try {
    data = (parseYaml(readTextFile(source), source) ?? {}) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message, EXIT.config);
    throw new CliError(`${source}: cannot read the config file (${(error as NodeJS.ErrnoException).code ?? 'error'})`, EXIT.config);
  }
  const raw = (data.gateway ?? {}) as Record<string, unknown>;
  // Only the keys read here are interpolated: a client entry's ${VAR} may well be what this run is about to make.
  const problems: string[] = [];
  const gateway = interpolate({ host: raw.host, port: raw.port, clientsFile: raw.clientsFile }, env, problems, ['gateway']) as Record<string, unknown>;
  if (problems.length > 0) throw new CliError(`invalid configuration:\n  ${problems.join('\n  ')}`, EXIT.config);
  const names = (list: unknown): string[] =>
    Array.isArray(list) ? list.flatMap((item) => (typeof (item as { name?: unknown })?.name === 'string' ? [(item as { name: string }).name] : [])) : [];
  const clientsFile = typeof gateway.clientsFile === 'string' ? resolvePath(dirname(source), gateway.clientsFile) : undefined;
  const fromFile = clientsFile !== undefined && existsSync(clientsFile) ? parseYaml(readTextFile(clientsFile), clientsFile) : [];
  const port = gateway.port === undefined ? DEFAULT_GATEWAY.port : Number(gateway.port);
  if (!Number.isInteger(port)) throw new CliError('gateway.port: must be a number', EXIT.config);
  return {
    source,
    accounts: names(data.accounts),
    clientNames: [...names(raw.clients), ...names(fromFile)],
    host: typeof gateway.host === 'string' ? gateway.host : DEFAULT_GATEWAY.host,
    port,
    clientsFile,
  };
}
