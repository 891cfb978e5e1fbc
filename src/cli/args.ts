import { ConfigError } from '../core/errors';
import { CONFIG_PATH_ENV, configPathFrom, loadConfigFile } from '../config/load';
import { parseDuration } from '../core/duration';
import type { SidecarConfig } from '../config/types';
import { StateDirectoryLock } from '../store/lock';
import { CliError, EXIT } from './boot';

/** The commands' arguments, checked as the user typed them, and the config as a read-only command takes it. */

export function durationArg(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new CliError(`"${text}" is not a duration such as 90s or 5m`, EXIT.config);
  return ms;
}

export function numberArg(flag: string, text: string): number {
  const value = text.trim() === '' ? NaN : Number(text);
  if (!Number.isFinite(value)) throw new CliError(`${flag}: "${text}" is not a number`, EXIT.config);
  return value;
}

export function portArg(flag: string, text: string): number {
  const port = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new CliError(`${flag}: "${text}" is not a port number (0 to 65535)`, EXIT.config);
  return port;
}

/**
 * The config for a command that reads only the state and the token files: credentials it does not need (an unset
 * `${VAR}`, a secret file not mounted here) are no obstacle (config/load.ts, readOnly).
 */
export function loadConfigForReading(flag: string | undefined): SidecarConfig {
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
export async function refuseIfRunning(stateDir: string, what: string): Promise<void> {
  const holder = await StateDirectoryLock.holder(stateDir);
  if (holder) throw new CliError(`a sidecar is running on ${stateDir} (${holder}); ${what}`, EXIT.failure);
}
