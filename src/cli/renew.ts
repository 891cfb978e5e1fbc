import type { SidecarConfig } from '../config/types';
import { formatDuration } from '../core/duration';
import { formatIsoInZone } from '../core/time';
import { loadConfigForReading, refuseIfRunning } from './args';
import { CliError, EXIT, loadConfigOrExit, openSidecar } from './boot';

/** `renew`: a renewal now if due (or forced), within the spacing; beside a running sidecar, where to ask instead. */

/** Where `renew` sends a user whose sidecar is running: its admin endpoint, or how to turn that on. */
function howToAskTheRunningSidecar(config: SidecarConfig, account: string, force: boolean): string {
  const endpoint = `POST http://${config.server.host}:${config.server.port}/renew/${account}${force ? '?force=true' : ''}`;
  if (config.server.enabled && config.server.adminToken) return `ask it through its admin endpoint instead: ${endpoint} with the admin token as a bearer token`;
  const turnOn = config.server.enabled ? 'give it an admin token' : 'turn its HTTP server on (server.enabled) with an admin token';
  return `it renews on its own; to ask it now, ${turnOn} (server.adminTokenFile, 16 characters or more) and restart it, then ${endpoint}`;
}

export async function runRenew(opts: { config?: string; account: string; force?: boolean }): Promise<void> {
  // Read first, without credentials: beside a running sidecar, renew only says where to ask.
  const readable = loadConfigForReading(opts.config);
  if (!readable.accounts.some((a) => a.name === opts.account)) throw new CliError(`no account named "${opts.account}"`, EXIT.config);
  await refuseIfRunning(readable.stateDir, howToAskTheRunningSidecar(readable, opts.account, opts.force ?? false));
  const sidecar = await openSidecar(loadConfigOrExit(opts.config));
  try {
    const outcome = (await sidecar.renew(opts.account, opts.force ?? false))!;
    const now = sidecar.clock.now();
    switch (outcome.result) {
      case 'issued':
        process.stdout.write(`${opts.account}: new token, expires ${formatIsoInZone(outcome.expiresAt)}\n`);
        break;
      case 'same_token':
        process.stdout.write(
          `${opts.account}: the broker answered with the current token (no renewal); next attempt after ${formatIsoInZone(outcome.nextAttemptAt)}\n`,
        );
        break;
      case 'failed':
        process.stdout.write(`${opts.account}: renewal failed (${outcome.reason}): ${outcome.message}\n`);
        process.exitCode = EXIT.failure;
        break;
      case 'wait':
        if (outcome.why === 'renewal_planned') {
          process.stdout.write(
            `${opts.account}: the token is valid; renewal is planned for ${formatIsoInZone(outcome.until)} (use --force to replace it now)\n`,
          );
        } else {
          const wait =
            outcome.until === Number.MAX_SAFE_INTEGER
              ? 'until the credentials change'
              : `${formatDuration(outcome.until - now)} (until ${formatIsoInZone(outcome.until)})`;
          process.stdout.write(`${opts.account}: not now (${outcome.why.replace('_', ' ')}); wait ${wait}\n`);
          process.exitCode = EXIT.failure;
        }
    }
  } finally {
    await sidecar.close();
  }
}
