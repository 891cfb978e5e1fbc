#!/usr/bin/env node
// A sidecar holds little and allocates little: a young generation of 1 MB (instead of up to 16) keeps ~15 MB off
// its resident memory, at no measurable cost in speed. Set before anything else allocates.
(require('node:v8') as typeof import('node:v8')).setFlagsFromString('--max-semi-space-size=1');
// Most of a start is loading and compiling modules: Node 22.1 and later keep the compiled code on disk between starts
// (a cache in the temp directory that Node itself invalidates); Node 20 has no such cache and goes on without it.
(require('node:module') as { enableCompileCache?: () => unknown }).enableCompileCache?.();
import { Command, CommanderError, Option } from 'commander';
import { CONFIG_PATH_ENV, configPathFrom } from './config/load';
import { CliError, EXIT, StopSignal, loadConfigOrExit, serve } from './cli/boot';
import { addGatewayClient } from './cli/gateway-client';
import { VERSION } from './version';
import { portArg } from './cli/args';
import { runOnce } from './cli/once';
import { runRenew } from './cli/renew';
import { runRevoke } from './cli/revoke';
import { runSimulatorCommand } from './cli/simulator-command';
import { runStatus } from './cli/status';

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
  .action(async (opts: { host: string; port: string; credentials?: string; spacing: string; framesPerSecond: string; pingpongInterval: string }) =>
    runSimulatorCommand(opts),
  );

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
  .action(async (opts: { config?: string; json?: boolean }) => runStatus(opts));

program
  .command('renew')
  .description(
    "renew an account's token now if it is due (or, with --force, even if it is valid); the spacing between issuances always holds, and the answer says how long to wait",
  )
  .addOption(configOption())
  .requiredOption('-a, --account <name>', 'account to renew')
  .option('-f, --force', 'ask for a new token even though the current one is valid')
  .action(async (opts: { config?: string; account: string; force?: boolean }) => runRenew(opts));

program
  .command('revoke')
  .description(
    "revoke an account's token at the broker, remove its sink files and clear it from the state (which keeps only when a token was last asked for, so the spacing holds)",
  )
  .addOption(configOption())
  .requiredOption('-a, --account <name>', 'account whose token to revoke')
  .action(async (opts: { config?: string; account: string }) => runRevoke(opts));

program
  .command('once')
  .description(
    'make sure every account has a valid token in all its files, then exit: 0 when done, 1 with the reason otherwise (for init containers, cron, Airflow)',
  )
  .addOption(configOption())
  .option('--max-wait <duration>', 'longest wait for the spacing or a retry before giving up', '90s')
  .action(async (opts: { config?: string; maxWait: string }) => runOnce(opts));

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
