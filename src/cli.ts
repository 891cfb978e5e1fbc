#!/usr/bin/env node
// A sidecar holds little and allocates little: a young generation of 1 MB (instead of up to 16) keeps ~15 MB off
// its resident memory, at no measurable cost in speed. Set before anything else allocates.
(require('node:v8') as typeof import('node:v8')).setFlagsFromString('--max-semi-space-size=1');
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { parse as parseYaml } from 'yaml';
import { CONFIG_PATH_ENV, configPathFrom, loadConfigFile } from './config/load';
import { ConfigError } from './core/errors';
import { clockFromEnvironment } from './core/clock';
import { parseDuration, formatDuration } from './core/duration';
import { formatIsoInZone } from './core/time';
import { accountReport } from './http/status';
import { StateDirectoryLock } from './store/lock';
import type { SimulatorCredential } from './simulator';
import type { SidecarConfig } from './config/types';
import { CliError, EXIT, StopSignal, loadConfigOrExit, openSidecar, serve } from './cli/boot';
import { readOfflineStatus } from './cli/offline-status';
import { formatReport } from './cli/output';
import { addGatewayClient } from './cli/gateway-client';
import { VERSION } from './version';

/** One CLI for everything; each command says what it does in its help. */
const program = new Command('broker-token-sidecar')
  .description(
    "Owns KIS and Kiwoom access tokens for the programs beside it: issues and renews them within the broker's rules, writes the token files they read, proves each token, and exports metrics.",
  )
  .version(VERSION)
  .showHelpAfterError()
  // Usage errors (an unknown command or option, a missing --account) end with the documented code 2, not
  // commander's 1; the commands added below inherit this.
  .exitOverride()
  .addHelpText('after', `\nThe config file comes from --config or $${CONFIG_PATH_ENV}. Exit codes: 0 ok, 1 failure, 2 bad config or usage, 3 cannot start.`);

const configOption = () => new Option('-c, --config <file>', `config file (default: $${CONFIG_PATH_ENV})`);

function durationArg(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new CliError(`"${text}" is not a duration such as 90s or 5m`, EXIT.config);
  return ms;
}

function numberArg(flag: string, text: string): number {
  const value = text.trim() === '' ? NaN : Number(text);
  if (!Number.isFinite(value)) throw new CliError(`${flag}: "${text}" is not a number`, EXIT.config);
  return value;
}

function portArg(flag: string, text: string): number {
  const port = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new CliError(`${flag}: "${text}" is not a port number (0 to 65535)`, EXIT.config);
  return port;
}

program
  .command('start')
  .description("run the sidecar: keep every account's token valid and its files current, serve /metrics, /healthz, /readyz and /status")
  .addOption(configOption())
  .action(async (opts: { config?: string }) => {
    const stop = new StopSignal();
    process.exitCode = await serve(loadConfigOrExit(opts.config), stop);
  });

program
  .command('demo')
  .description(
    'run the broker simulator and the sidecar against it on an embedded config; writes token files under --dir and serves HTTP (no credentials needed)',
  )
  .option('--dir <dir>', "folder for the demo's config, state and token files (a folder the demo made is emptied first; any other must be empty)", 'demo-data')
  .option('--port <port>', 'HTTP port of the sidecar (0 for any free one)', '9464')
  .action(async (opts: { dir: string; port: string }) => {
    const { runDemo } = require('./cli/demo') as typeof import('./cli/demo');
    process.exitCode = await runDemo({ dir: opts.dir, port: portArg('--port', opts.port) });
  });

program
  .command('simulator')
  .description(
    'run the broker simulator alone (KIS and Kiwoom token endpoints, revoke, approval key, proving calls, the real limits and error bodies, both WebSockets, and a /_sim control API)',
  )
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--port <port>', 'port to listen on', '9400')
  .option(
    '--credentials <file>',
    "YAML list of accepted credentials: [{provider, appKey, appSecret, env}] (default: the demo's made-up ones, printed at start)",
  )
  .option('--spacing <duration>', 'minimum gap between two issuances for one app key', '60s')
  .option('--frames-per-second <n>', 'real-time data frames per second for each registered stream (0 pauses)', '2')
  .option('--pingpong-interval <duration>', 'between two keep-alive pings (KIS PINGPONG, Kiwoom PING)', '110s')
  .action(async (opts: { host: string; port: string; credentials?: string; spacing: string; framesPerSecond: string; pingpongInterval: string }) => {
    // Loaded only here: the simulator has no business in a sidecar's memory.
    const { generateCredential, runSimulatorServer } = require('./simulator') as typeof import('./simulator');
    let credentials: SimulatorCredential[];
    if (opts.credentials) {
      credentials = parseYaml(readFileSync(opts.credentials, 'utf8')) as SimulatorCredential[];
    } else {
      credentials = [generateCredential('kis', 'demo', 'real'), generateCredential('kiwoom', 'demo', 'real')];
    }
    const { url, simulator } = await runSimulatorServer({
      clock: clockFromEnvironment(),
      credentials,
      host: opts.host,
      port: portArg('--port', opts.port),
      spacingMs: durationArg(opts.spacing),
      realtime: { framesPerSecond: numberArg('--frames-per-second', opts.framesPerSecond), pingIntervalMs: durationArg(opts.pingpongInterval) },
    });
    process.stdout.write(`broker simulator listening on ${url} (control API under ${url}/_sim/)\n`);
    const ws = url.replace(/^http/, 'ws');
    process.stdout.write(`WebSockets: KIS ${ws}/tryitout (the "ops" of kis_devlp.yaml: ${ws}), Kiwoom ${ws}/api/dostk/websocket\n`);
    if (!opts.credentials) {
      process.stdout.write('accepting the demo credentials (made up; safe to print):\n');
      for (const c of credentials) process.stdout.write(`  ${c.provider}: appKey=${c.appKey} appSecret=${c.appSecret}\n`);
    }
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await simulator.close();
  });

program
  .command('example')
  .description(
    "run one of examples/ against the broker simulator, in a clone of the repository: the simulator, the sidecar on the example's own sidecar.yaml, its bot (the real client if installed, else its replica); exit 0 when it worked",
  )
  .argument('<name>', 'kis-auth, python-kis, json, kiwoom or gateway')
  .option('--keep', 'keep the run folder (config, state, token files, sidecar.log) instead of removing it')
  .action(async (name: string, opts: { keep?: boolean }) => {
    const { runExample } = require('./examples') as typeof import('./examples');
    process.exitCode = await runExample(name, { keep: opts.keep ?? false });
  });

const gatewayCommand = program.command('gateway').description('manage the gateway through which clients call the broker with local credentials');
gatewayCommand
  .command('add-client')
  .description(
    "make a client's local credentials: writes them for the client (mode 0600) and adds the entry to gateway.clientsFile, or prints it for gateway.clients; needs no complete config (no secret is read)",
  )
  .addOption(configOption())
  .requiredOption('--name <name>', "the client's name, as metrics and logs will show it")
  .requiredOption('--account <names...>', 'the accounts it may call')
  .option('--dir <dir>', "where to write the client's file", '.')
  .action(async (opts: { config?: string; name: string; account: string[]; dir: string }) => {
    const path = configPathFrom(opts.config);
    if (!path) throw new CliError(`no config file: pass --config <file> or set ${CONFIG_PATH_ENV}`, EXIT.config);
    process.stdout.write(await addGatewayClient(path, opts.name, opts.account, opts.dir));
  });

program
  .command('check-config')
  .description('validate the config file (schema, secrets, files, cross-checks), report every problem, and exit')
  .addOption(configOption())
  .action((opts: { config?: string }) => {
    const config = loadConfigOrExit(opts.config);
    const sinks = config.accounts.reduce((n, a) => n + a.sinks.length, 0);
    process.stdout.write(`${config.source}: valid (${config.accounts.length} account(s), ${sinks} sink(s); state in ${config.stateDir})\n`);
  });

program
  .command('status')
  .description(
    "report each account's token (present, valid, expiry in KST, time left) and each sink file's state and mode, from the files on disk; exit 1 when any token is unusable",
  )
  .addOption(configOption())
  .option('--json', 'print JSON instead of text')
  .action(async (opts: { config?: string; json?: boolean }) => {
    const config = loadConfigForReading(opts.config);
    const now = clockFromEnvironment().now();
    const views = await readOfflineStatus(config, now);
    const reports = views.map((v) => ({ ...accountReport(v, now), ...(v.problem ? { problem: v.problem } : {}) }));
    const holder = await StateDirectoryLock.holder(config.stateDir);
    if (opts.json) process.stdout.write(`${JSON.stringify({ time: formatIsoInZone(now), sidecar: holder ?? null, accounts: reports }, null, 2)}\n`);
    else process.stdout.write(`${holder ? `sidecar running: ${holder}` : 'no sidecar running on this state directory'}\n${formatReport(reports)}\n`);
    process.exitCode = views.every((v) => v.snapshot.usable) ? EXIT.ok : EXIT.failure;
  });

/** Where `renew` sends a user whose sidecar is running: its admin endpoint, or how to turn that on. */
function howToAskTheRunningSidecar(config: SidecarConfig, account: string, force: boolean): string {
  const endpoint = `POST http://${config.server.host}:${config.server.port}/renew/${account}${force ? '?force=true' : ''}`;
  if (config.server.enabled && config.server.adminToken) return `ask it through its admin endpoint instead: ${endpoint} with the admin token as a bearer token`;
  const turnOn = config.server.enabled ? 'give it an admin token' : 'turn its HTTP server on (server.enabled) with an admin token';
  return `it renews on its own; to ask it now, ${turnOn} (server.adminTokenFile, 16 characters or more) and restart it, then ${endpoint}`;
}

/**
 * The config for a command that reads only the state and the token files: credentials it does not need (an unset
 * `${VAR}`, a secret file not mounted here) are no obstacle (config/load.ts, readOnly).
 */
function loadConfigForReading(flag: string | undefined): SidecarConfig {
  const path = configPathFrom(flag);
  if (!path) throw new CliError(`no config file: pass --config <file> or set ${CONFIG_PATH_ENV}`, EXIT.config);
  try {
    return loadConfigFile(path, { readOnly: true });
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message, EXIT.config);
    throw error;
  }
}

/** A running sidecar owns the state; a command that changes it goes through that sidecar's admin API. */
async function refuseIfRunning(stateDir: string, what: string): Promise<void> {
  const holder = await StateDirectoryLock.holder(stateDir);
  if (holder) throw new CliError(`a sidecar is running on ${stateDir} (${holder}); ${what}`, EXIT.failure);
}

program
  .command('renew')
  .description(
    "renew an account's token now if it is due (or, with --force, even if it is valid); the spacing between issuances always holds, and the answer says how long to wait",
  )
  .addOption(configOption())
  .requiredOption('-a, --account <name>', 'account to renew')
  .option('-f, --force', 'ask for a new token even though the current one is valid')
  .action(async (opts: { config?: string; account: string; force?: boolean }) => {
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
  });

program
  .command('revoke')
  .description(
    "revoke an account's token at the broker, remove its sink files and clear it from the state (which keeps only when a token was last asked for, so the spacing holds)",
  )
  .addOption(configOption())
  .requiredOption('-a, --account <name>', 'account whose token to revoke')
  .action(async (opts: { config?: string; account: string }) => {
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
  });

program
  .command('once')
  .description(
    'make sure every account has a valid token in all its files, then exit: 0 when done, 1 with the reason otherwise (for init containers, cron, Airflow)',
  )
  .addOption(configOption())
  .option('--max-wait <duration>', 'longest wait for the spacing or a retry before giving up', '90s')
  .action(async (opts: { config?: string; maxWait: string }) => {
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
  });

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

process.on('unhandledRejection', (reason) => {
  process.stderr.write(`unexpected error (continuing): ${reason instanceof Error ? reason.message : String(reason)}\n`);
});

program.parseAsync(process.argv).catch((error: unknown) => {
  // Commander has printed its message (and the help); --help and --version end here too, with 0.
  if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? EXIT.ok : EXIT.config);
  if (error instanceof CliError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(error.exitCode);
  }
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(EXIT.failure);
});
