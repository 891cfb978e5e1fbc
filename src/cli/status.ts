import { clockFromEnvironment } from '../core/clock';
import { formatIsoInZone } from '../core/time';
import { accountReport } from '../http/status';
import { StateDirectoryLock } from '../store/lock';
import { loadConfigForReading } from './args';
import { EXIT } from './boot';
import { readOfflineStatus } from './offline-status';
import { formatReport } from './output';

/** `status`: each account's token and files, read from disk; changes nothing, needs no credential. */

export async function runStatus(opts: { config?: string; json?: boolean }): Promise<void> {
  const config = loadConfigForReading(opts.config);
  const now = clockFromEnvironment().now();
  const views = await readOfflineStatus(config, now);
  const reports = views.map((v) => ({ ...accountReport(v, now), ...(v.problem ? { problem: v.problem } : {}) }));
  const holder = await StateDirectoryLock.holder(config.stateDir);
  if (opts.json) process.stdout.write(`${JSON.stringify({ time: formatIsoInZone(now), sidecar: holder ?? null, accounts: reports }, null, 2)}\n`);
  else process.stdout.write(`${holder ? `sidecar running: ${holder}` : 'no sidecar running on this state directory'}\n${formatReport(reports)}\n`);
  process.exitCode = views.every((v) => v.snapshot.usable) ? EXIT.ok : EXIT.failure;
}
