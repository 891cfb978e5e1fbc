import { dirname, resolve as resolvePath } from 'node:path';
import type { z } from 'zod';
import { ConfigError } from '../core/errors';
import { hostTimeZone } from '../core/time';
import { interpolate } from './interpolate';
import { formatPath } from './path';
import { knownKeysAt, nearest } from './suggest';
import { Problems, checkAcrossAccounts, resolveAccount, resolveConfig, type ResolveContext } from './resolve';
import { accountSchema, configSchema, sinkSchema, storeSchema, type RawConfig } from './schema';
import { readTextFile, type ReadText } from './secret-files';
import type { SidecarConfig } from './types';
import { parseYaml } from './yaml';

export const CONFIG_PATH_ENV = 'BROKER_TOKEN_SIDECAR_CONFIG';

interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  readText?: ReadText;
  /** This host's time zone, one of the default reader zones of a kis-auth sink (tests set it). */
  hostTimeZone?: string;
}

// The values each tagged union accepts, read off the schemas themselves.
const DISCRIMINATOR_VALUES: Record<string, string[]> = {
  format: sinkSchema.options.map((option) => option.shape.format.value),
  type: storeSchema.options.map((option) => option.shape.type.value),
};

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
};

/** One zod issue as one or more `path: rule` lines in the project's own words. */
function describeIssue(issue: z.core.$ZodIssue, data: unknown): string[] {
  const path = formatPath(issue.path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownKeysAt(configSchema, issue.path, data);
      return issue.keys.map((key) => {
        const guess = nearest(key, known);
        return `${formatPath([...issue.path, key])}: unknown key${guess ? `; did you mean ${guess}?` : ''}`;
      });
    }
    case 'invalid_type':
      return [issue.input === undefined ? `${path}: required` : `${path}: must be ${TYPE_NAMES[issue.expected] ?? issue.expected}`];
    case 'invalid_value':
      if (issue.input === undefined) return [`${path}: required`];
      return [`${path}: must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`];
    case 'invalid_union':
      if ('discriminator' in issue && issue.discriminator) {
        const values = DISCRIMINATOR_VALUES[String(issue.discriminator)] ?? [];
        return [`${path}: must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}`];
      }
      return [`${path}: ${issue.message}`];
    case 'too_small':
      if (issue.origin === 'number') return [`${path}: must be ${issue.inclusive ? 'at least' : 'more than'} ${String(issue.minimum)}`];
      return [`${path}: ${issue.message}`];
    case 'too_big':
      if (issue.origin === 'number') return [`${path}: must be ${issue.inclusive ? 'at most' : 'less than'} ${String(issue.maximum)}`];
      return [`${path}: ${issue.message}`];
    default:
      return [`${path}: ${issue.message}`];
  }
}

/**
 * Parses and validates a whole config in one pass: YAML, `${ENV}` references, the schema, secret files and
 * the cross-field rules. Either every problem comes back together in one ConfigError, or a SidecarConfig
 * that nothing downstream needs to check again. Nothing on disk is created or changed here.
 */
export function parseConfig(text: string, source: string, baseDir: string, options: LoadOptions = {}): SidecarConfig {
  const env = options.env ?? process.env;
  const interpolationProblems: string[] = [];
  const data = interpolate(parseYaml(text, source) ?? {}, env, interpolationProblems);
  const problems = new Problems();
  interpolationProblems.forEach((line) => problems.addLine(line));
  const ctx: ResolveContext = { baseDir, readText: options.readText ?? readTextFile, problems, hostTimeZone: options.hostTimeZone ?? hostTimeZone() };

  const parsed = configSchema.safeParse(data, { reportInput: true });
  if (parsed.success) {
    const config = resolveConfig(parsed.data, source, ctx);
    if (problems.empty) return config;
  } else {
    parsed.error.issues.flatMap((issue) => describeIssue(issue, data)).forEach((line) => problems.addLine(line));
    checkAccountsThatParse(data, ctx);
  }
  throw new ConfigError(problems.list);
}

/**
 * When the file as a whole does not fit the schema, the accounts that do still get their semantic checks, so
 * one mistake in one place does not hide another elsewhere.
 */
function checkAccountsThatParse(data: unknown, ctx: ResolveContext): void {
  const record = (data ?? {}) as Record<string, unknown>;
  const defaults = configSchema.shape.defaults.safeParse(record.defaults);
  const raw = { accounts: [], defaults: defaults.success ? defaults.data : undefined } as RawConfig;
  const accounts = Array.isArray(record.accounts) ? record.accounts : [];
  const resolved = accounts.flatMap((candidate, index) => {
    const account = accountSchema.safeParse(candidate);
    return account.success ? [{ index, config: resolveAccount(raw, account.data, index, ctx) }] : [];
  });
  checkAcrossAccounts(resolved, ctx.problems);
}

export function loadConfigFile(path: string, options: LoadOptions = {}): SidecarConfig {
  const fullPath = resolvePath(path);
  let text: string;
  try {
    text = (options.readText ?? readTextFile)(fullPath);
  } catch (error) {
    throw new ConfigError([`${fullPath}: cannot read the config file (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  return parseConfig(text, fullPath, dirname(fullPath), options);
}

/** `--config` wins, then the environment variable; there is no implicit default file. */
export function configPathFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return flag ?? env[CONFIG_PATH_ENV];
}
