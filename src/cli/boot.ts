import { loadConfigFile, configPathFrom, CONFIG_PATH_ENV } from '../config/load';
import type { SidecarConfig } from '../config/types';
import { ScaledClock, TEST_CLOCK_ENV, clockFromEnvironment, type Clock } from '../core/clock';
import type { Logger } from '../logging/logger';
import { ConfigError } from '../core/errors';
import type { RunningGateway } from '../gateway/start';
import { realtimeDescriptors } from '../realtime/limits';
import type { RunningRealtime } from '../realtime/start';
import { MAX_CONNECTIONS, connectionBudget, openFileLimit } from '../http/descriptors';
import type { RunningServer } from '../http/server';
import { StartupError, type Sidecar } from '../sidecar';
import { createSidecar, listenHttp, startSidecarGateway, startSidecarRealtime, type SidecarOptions } from '../wiring';
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
  const sidecar = createSidecar(config, { clock, ...options });
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
 * The long-running mode: ports first, then the sidecar, loops, and a graceful stop on SIGTERM/SIGINT (the tick in
 * progress finishes, so no write is cut in half; the process exits within `stopBoundMs` whatever happens).
 *
 * Both ports are bound before anything is adopted, issued or written: a port in use ends the start with a hint and
 * costs nothing (no token request, no KakaoTalk notice, no state written). Until the sidecar has opened, /readyz says
 * not ready and a gateway call waits for the token like any call that finds none.
 */
export async function serve(
  config: SidecarConfig,
  stop: StopSignal,
  options: {
    sidecar?: SidecarOptions;
    onListening?: (server: RunningServer | undefined, sidecar: Sidecar, ports: { gateway?: string; realtime?: string }) => void;
    stopBoundMs?: number;
  } = {},
): Promise<number> {
  const clock = options.sidecar?.clock ?? clockFromEnvironment();
  const sidecar = createSidecar(config, { ...options.sidecar, clock });
  warnIfTestClock(sidecar.logger, clock);
  const { logger } = sidecar;
  // The real-time endpoint's sockets come out of the reserve, so the HTTP and gateway ports' shares leave them room.
  const descriptors = connectionBudget(openFileLimit(), config.limits.maxConcurrentRequests + realtimeDescriptors(config), config.gateway.enabled);
  if (descriptors.tooLow) {
    logger.warn(
      { descriptorLimit: descriptors.descriptorLimit, reserved: descriptors.reserved, maxConnections: descriptors.maxConnections },
      `the open-files limit (ulimit -n ${descriptors.descriptorLimit}) leaves too few descriptors beside the ${descriptors.reserved} kept for the sidecar's own work; raise it to ${descriptors.reserved + MAX_CONNECTIONS} or more`,
    );
  }
  let server: RunningServer | undefined;
  let gateway: RunningGateway | undefined;
  let realtime: RunningRealtime | undefined;
  const closePorts = () => Promise.all([server?.close(), realtime?.close(), gateway?.close()]);
  try {
    if (config.server.enabled) {
      server = await listenOrExplain('server', config.server.host, config.server.port, () => listenHttp(sidecar, descriptors.maxConnections, () => gateway));
    }
    if (config.gateway.enabled) {
      gateway = await listenOrExplain('gateway', config.gateway.host, config.gateway.port, () => startSidecarGateway(sidecar, descriptors.gatewayConnections));
    }
    if (config.realtime.enabled && gateway) {
      const credentials = gateway.credentials;
      realtime = await listenOrExplain('realtime', config.realtime.host, config.realtime.port, () => startSidecarRealtime(sidecar, credentials));
    }
    await openOrExplain(sidecar);
  } catch (error) {
    await closePorts();
    throw error;
  }
  if (!stop.received) sidecar.run();
  if (server) {
    // startupMs: from the command's start to serving (config, state, first file checks), Node's own start left out.
    const startupMs = Math.round(performance.now() - stop.createdAt);
    logger.info(
      { url: server.url, startupMs, maxConnections: server.maxConnections, descriptorLimit: descriptors.descriptorLimit },
      'serving /metrics, /healthz, /readyz and /status',
    );
  }
  options.onListening?.(server, sidecar, { gateway: gateway?.url, realtime: realtime?.url });
  const stopWatching = reloadOnChange(sidecar);
  const signal = await stop.wait();
  stopWatching();
  logger.info({ signal }, 'stopping: finishing the work in progress');
  const bound = setTimeout(() => {
    logger.error('could not stop in time; exiting');
    process.exit(1);
  }, options.stopBoundMs ?? 15_000);
  bound.unref();
  await Promise.all([closePorts(), sidecar.close()]);
  clearTimeout(bound);
  logger.info('stopped');
  return EXIT.ok;
}

/** A port that cannot be bound ends the start before anything is written, with what to do about it. */
async function listenOrExplain<T>(what: 'server' | 'gateway' | 'realtime', host: string, port: number, bind: () => Promise<T>): Promise<T> {
  try {
    return await bind();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const hint =
      code === 'EADDRINUSE'
        ? `: another process (another sidecar?) listens there; stop it, or set ${what}.port to another port (0 takes any free one)`
        : code === 'EACCES'
          ? `: ports below 1024 need privileges; set ${what}.port to 1024 or above`
          : '';
    throw new CliError(`cannot listen on ${host}:${port} (${what}): ${code ?? (error as Error).message}${hint}; nothing was written`, EXIT.startup);
  }
}

async function openOrExplain(sidecar: Sidecar): Promise<void> {
  try {
    await sidecar.open();
  } catch (error) {
    await sidecar.close().catch(() => undefined);
    if (error instanceof StartupError) throw new CliError(error.message, EXIT.startup);
    if ((error as { code?: string }).code === 'state_locked') throw new CliError((error as Error).message, EXIT.startup);
    throw error;
  }
}
