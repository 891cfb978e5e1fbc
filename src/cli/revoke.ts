import { refuseIfRunning } from './args';
import { CliError, EXIT, loadConfigOrExit, openSidecar } from './boot';

/** `revoke`: the token revoked at the broker, its files removed, the state keeping only when one was last asked for. */

export async function runRevoke(opts: { config?: string; account: string }): Promise<void> {
  const config = loadConfigOrExit(opts.config);
  if (!config.accounts.some((a) => a.name === opts.account)) throw new CliError(`no account named "${opts.account}"`, EXIT.config);
  await refuseIfRunning(config.stateDir, 'stop it first, or it would issue a new token at once');
  const sidecar = await openSidecar(config);
  try {
    const result = await sidecar.account(opts.account)!.revoke();
    process.stdout.write(
      `${opts.account}: ${result.revoked ? 'token revoked' : 'no token to revoke'}; removed ${result.removedFiles.length} file(s)${result.removedFiles.map((f) => `\n  ${f}`).join('')}\n` +
        `the state keeps no token, only when one was last asked for: the next start issues a new one once the spacing has passed\n`,
    );
  } finally {
    await sidecar.close();
  }
}
