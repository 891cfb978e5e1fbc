import { loadConfigFile, configPathFrom, CONFIG_PATH_ENV } from '../config/load';
import type { SidecarConfig } from '../config/types';
import { ScaledClock, TEST_CLOCK_ENV, clockFromEnvironment, type Clock } from '../core/clock';
import type { Logger } from '../core/log';
import { ConfigError } from '../core/errors';
import { createHttpApp } from '../http/app';
import { startGateway, type RunningGateway } from '../gateway';
import { MAX_CONNECTIONS, connectionBudget, openFileLimit } from '../http/descriptors';
import { listen, type RunningServer } from '../http/server';
import { Sidecar, StartupError, type SidecarOptions } from '../sidecar';
import { reloadOnChange } from './reload';

/** Exit codes the commands share, documented in the README. */
export const EXIT = { ok: 0, failure: 1, config: 2, startup: 3 } as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export function loadConfigOrExit(flag: string | undefined): SidecarConfig {
  const path = configPathFrom(flag);
  if (!path) throw new CliError(`no config file: pass --config <file> or set ${CONFIG_PATH_ENV}`, EXIT.config);
  try {
    return loadConfigFile(path);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message, EXIT.config);
    throw error;
  }
}

/** A clock from the environment is for tests; a sidecar running on one says so at start, in one line. */
export function warnIfTestClock(logger: Pick<Logger, 'warn'>, clock: Clock): void {
  if (!(clock instanceof ScaledClock)) return;
  const offsetMs = clock.now() - Date.now();
  logger.warn(
    { variable: TEST_CLOCK_ENV, scale: clock.scale, offsetMs },
    `${TEST_CLOCK_ENV} is set: running on a test clock (${clock.scale}x, ${offsetMs} ms from real time), not for production`,
  );
}

/** Opens a sidecar (lock, sink checks, state), turning start-up problems into a clear exit. */
export async function openSidecar(config: SidecarConfig, options: SidecarOptions = {}): Promise<Sidecar> {
  const clock = clockFromEnvironment();
  const sidecar = new Sidecar(config, { clock, ...options });
  warnIfTestClock(sidecar.logger, clock);
  try {
    await sidecar.open();
  } catch (error) {
    if (error instanceof StartupError) throw new CliError(error.message, EXIT.startup);
    if ((error as { code?: string }).code === 'state_locked') throw new CliError((error as Error).message, EXIT.startup);
    throw error;
  }
  return sidecar;
}

/**
 * SIGTERM and SIGINT, listened for from the moment a long-running command starts: a signal that arrives while
 * the sidecar is still opening (taking the lock, loading state) is honoured once it has opened, instead of
 * killing the process mid-write with the default handler. A second signal exits at once.
 */
export class StopSignal {
  /** When the command started (monotonic ms): the start-up the sidecar itself spends is counted from here. */
  readonly createdAt = performance.now();
  private signal: NodeJS.Signals | undefined;
  private readonly waiters: Array<(signal: NodeJS.Signals) => void> = [];

  constructor() {
    for (const name of ['SIGTERM', 'SIGINT'] as const) {
      process.on(name, () => {
        if (this.signal) process.exit(130);
        this.signal = name;
        for (const wake of this.waiters.splice(0)) wake(name);
      });
    }
  }

  get received(): NodeJS.Signals | undefined {
    return this.signal;
  }

  wait(): Promise<NodeJS.Signals> {
    return this.signal ? Promise.resolve(this.signal) : new Promise((resolve) => this.waiters.push(resolve));
  }
}

/**
 * The long-running mode: loops, HTTP, and a graceful stop on SIGTERM/SIGINT (the tick in progress finishes,
 * so no write is cut in half; the process exits within `stopBoundMs` whatever happens).
 */
export async function runUntilSignalled(
  sidecar: Sidecar,
  stop: StopSignal,
  onListening?: (server: RunningServer | undefined) => void,
  stopBoundMs = 15_000,
): Promise<number> {
  const { config, logger } = sidecar;
  // The gateway before the loops: the sidecar's first proof already waits for its slot of the call budget.
  let gateway: RunningGateway | undefined;
  if (config.gateway.enabled && !stop.received) {
    try {
      gateway = await startGateway(sidecar, { dispatcher: sidecar.injectedDispatcher });
    } catch (error) {
      await sidecar.close();
      throw new CliError(
        `cannot start the gateway on ${config.gateway.host}:${config.gateway.port}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        EXIT.startup,
      );
    }
  }
  if (!stop.received) sidecar.run();
  let server: RunningServer | undefined;
  if (config.server.enabled && !stop.received) {
    const app = createHttpApp({
      control: sidecar,
      metrics: sidecar.metrics,
      now: () => sidecar.clock.now(),
      adminToken: config.server.adminToken,
      secrets: sidecar.secrets,
      bus: sidecar.bus,
    });
    const budget = connectionBudget(openFileLimit(), config.limits.maxConcurrentRequests);
    if (budget.tooLow) {
      logger.warn(
        { descriptorLimit: budget.descriptorLimit, reserved: budget.reserved, maxConnections: budget.maxConnections },
        `the open-files limit (ulimit -n ${budget.descriptorLimit}) leaves too few descriptors beside the ${budget.reserved} kept for the sidecar's own work; raise it to ${budget.reserved + MAX_CONNECTIONS} or more`,
      );
    }
    try {
      server = await listen(app, config.server.host, config.server.port, config.server.requestTimeoutMs, {
        maxConnections: budget.maxConnections,
        onDrop: (reason, remoteAddress) => sidecar.bus.emit('http.connection_dropped', { reason, remoteAddress }),
      });
    } catch (error) {
      await sidecar.close();
      throw new CliError(
        `cannot listen on ${config.server.host}:${config.server.port}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        EXIT.startup,
      );
    }
    // startupMs: from the command's start to serving (config, state, first file checks), Node's own start left out.
    const startupMs = Math.round(performance.now() - stop.createdAt);
    logger.info(
      { url: server.url, startupMs, maxConnections: server.maxConnections, descriptorLimit: budget.descriptorLimit },
      'serving /metrics, /healthz, /readyz and /status',
    );
  }
  onListening?.(server);
  const stopWatching = reloadOnChange(sidecar);
  const signal = await stop.wait();
  stopWatching();
  logger.info({ signal }, 'stopping: finishing the work in progress');
  const bound = setTimeout(() => {
    logger.error('could not stop in time; exiting');
    process.exit(1);
  }, stopBoundMs);
  bound.unref();
  await Promise.all([server?.close(), gateway?.close(), sidecar.close()]);
  clearTimeout(bound);
  logger.info('stopped');
  return EXIT.ok;
}
