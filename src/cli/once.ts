import type { SidecarConfig } from '../config/types';
import { clockFromEnvironment } from '../core/clock';
import { formatDuration } from '../core/duration';
import { formatIsoInZone } from '../core/time';
import { StateDirectoryLock } from '../store/lock';
import { durationArg } from './args';
import { EXIT, loadConfigOrExit, openSidecar } from './boot';
import { readOfflineStatus } from './offline-status';

/** `once`: every account with a valid token in every file, then exit (init containers, cron, Airflow). */

/** `once` when a sidecar already runs on the state directory: reads what it keeps, never writes, never issues. */
async function onceBesideRunningSidecar(config: SidecarConfig, holder: string, maxWaitMs: number): Promise<number> {
  const clock = clockFromEnvironment();
  const deadline = clock.now() + maxWaitMs;
  for (;;) {
    const now = clock.now();
    const views = await readOfflineStatus(config, now);
    const notReady = views.filter((v) => !v.ready);
    if (notReady.length === 0) {
      for (const view of views) {
        const token = view.snapshot.state.token!;
        process.stdout.write(
          `${view.snapshot.ref.name}: token valid until ${formatIsoInZone(token.expiresAt)} (${formatDuration(token.expiresAt - now)} left), kept by the running sidecar (${holder})\n`,
        );
      }
      return EXIT.ok;
    }
    const why = notReady
      .map(
        (v) =>
          `${v.snapshot.ref.name}: ${v.snapshot.usable ? 'a token file is not current' : `no usable token (${v.snapshot.status}; ${v.snapshot.waitingFor.replace(/_/g, ' ')})`}`,
      )
      .join('; ');
    if (now >= deadline) {
      process.stderr.write(`the running sidecar (${holder}) has not made every file current within ${formatDuration(maxWaitMs)}: ${why}\n`);
      return EXIT.failure;
    }
    process.stderr.write(`waiting for the running sidecar (${holder}): ${why}; ${formatDuration(deadline - now)} left\n`);
    await clock.sleep(Math.min(2_000, deadline - now));
  }
}

export async function runOnce(opts: { config?: string; maxWait: string }): Promise<void> {
  const config = loadConfigOrExit(opts.config);
  const maxWaitMs = durationArg(opts.maxWait);
  const holder = await StateDirectoryLock.holder(config.stateDir);
  if (holder) {
    // A cron job or an Airflow task beside a running sidecar: that sidecar owns the token; `once` only checks
    // that it is valid in every file, waiting for the sidecar to get there if it must.
    process.exitCode = await onceBesideRunningSidecar(config, holder, maxWaitMs);
    return;
  }
  const sidecar = await openSidecar(config, { watch: false });
  try {
    const problems = await sidecar.once(maxWaitMs, (account, why, until) => {
      const now = sidecar.clock.now();
      process.stderr.write(`${account}: waiting ${formatDuration(Math.max(0, until - now))} (${why.replace(/_/g, ' ')}), until ${formatIsoInZone(until)}\n`);
    });
    const now = sidecar.clock.now();
    for (const view of sidecar.views()) {
      const token = view.snapshot.state.token;
      if (view.ready && token)
        process.stdout.write(
          `${view.snapshot.ref.name}: token valid until ${formatIsoInZone(token.expiresAt)} (${formatDuration(token.expiresAt - now)} left), ${view.sinks.length} file(s) written\n`,
        );
    }
    for (const problem of problems) process.stderr.write(`${problem}\n`);
    process.exitCode = problems.length === 0 ? EXIT.ok : EXIT.failure;
  } finally {
    await sidecar.close();
  }
}
