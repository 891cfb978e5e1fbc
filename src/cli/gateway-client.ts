import { join } from 'node:path';
import { sha256 } from '../core/wire';
import type { SidecarConfig } from '../config/types';
import { writeFileAtomic } from '../core/atomic-file';
import { newLocalCredentials } from '../gateway/clients';
import { CliError, EXIT } from './boot';

/**
 * `gateway add-client`: makes a client's local credentials, writes the client's side (mode 0600: the local
 * secret, where the gateway is, which accounts) and prints the entry for the sidecar's config, which holds only
 * the secret's digest. The config itself is left as the user wrote it (comments, order): they paste the entry.
 */
export async function addGatewayClient(config: SidecarConfig, name: string, accounts: string[], dir: string): Promise<string> {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new CliError('--name must be 1-64 letters, digits, dots, dashes or underscores', EXIT.config);
  for (const account of accounts) {
    if (!config.accounts.some((a) => a.name === account)) throw new CliError(`--account ${account}: no such account in ${config.source}`, EXIT.config);
  }
  if (config.gateway.clients.some((c) => c.name === name)) throw new CliError(`--name ${name}: the config already has a client of that name`, EXIT.config);
  const { appKey, appSecret } = newLocalCredentials();
  const gateway = `http://${config.gateway.host.includes(':') ? `[${config.gateway.host}]` : config.gateway.host}:${config.gateway.port}`;
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
  const entry = `    - { name: ${name}, accounts: [${accounts.join(', ')}], appKey: "${appKey}", appSecretSha256: "${sha256(appSecret).toString('hex')}" }`;
  return [
    `wrote ${path} (mode 0600): the client's local key and secret and the gateway URL of each account`,
    `add this under gateway.clients in ${config.source}, then restart the sidecar:`,
    entry,
    '',
  ].join('\n');
}
