import { dirname, resolve as resolvePath } from 'node:path';
import type { z } from 'zod';
import { ConfigError } from '../core/errors';
import { hostTimeZone } from '../core/time';
import { interpolate } from './interpolate';
import { formatPath } from './path';
import { knownKeysAt, nearest } from './suggest';
import { resolveConfig } from './resolve';
import { checkAcrossAccounts, resolveAccount } from './resolve-account';
import { Problems, type ResolveContext } from './resolve-context';
import { accountSchema, configSchema, sinkSchema, storeSchema, type RawConfig } from './schema';
import { spliceClientsFile } from './clients-file';
import { readTextFile, type ReadText } from './secret-files';
import type { SidecarConfig } from './types';
import { parseYaml } from './yaml';

export const CONFIG_PATH_ENV = 'BROKER_TOKEN_SIDECAR_CONFIG';

interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  readText?: ReadText;
  /** This host's time zone, one of the default reader zones of a kis-auth sink (tests set it). */
  hostTimeZone?: string;
  /**
   * For commands that only read the state and the token files (`status`, `renew` until it knows it must issue):
   * credentials that cannot be had here (an unset `${VAR}`, a secret file not mounted on this host) are not
   * problems; the config comes back with them empty. Everything else, paths included, must be valid as ever.
   */
  readOnly?: boolean;
}

/**
 * The keys holding a credential: what a read-only command does without. A path, a name or a setting is never
 * among them: without those it would read the wrong files.
 */
const CREDENTIAL_KEYS =
  /^(accounts\[\d+\]\.(appKey|appKeyFile|appSecret|appSecretFile)|server\.(adminToken|adminTokenFile)|slack\.(webhookUrl|webhookUrlFile|criticalWebhookUrl|criticalWebhookUrlFile)|store\.(password|passwordFile)|gateway\.(clients|clientsFile)\b[^:]*): /;

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
 * Parses and validates a whole config in one pass: YAML, `${ENV}` references, the schema, secret files, floors and
 * the cross-field rules. Either every problem comes back together in one ConfigError, or a SidecarConfig that
 * nothing downstream needs to check again. Nothing on disk is created or changed here.
 *
 * "Every problem" includes those behind a schema error: when the file does not fit the schema, the values the
 * schema refused are set aside and the rest is resolved anyway, so a missing secret file or a floor breach is
 * reported in the same run as a typo'd key, not in the next round.
 */
export function parseConfig(text: string, source: string, baseDir: string, options: LoadOptions = {}): SidecarConfig {
  const env = options.env ?? process.env;
  const readText = options.readText ?? readTextFile;
  const earlyProblems: string[] = [];
  const data = interpolate(parseYaml(text, source) ?? {}, env, earlyProblems);
  spliceClientsFile(data, baseDir, env, readText, earlyProblems);
  const problems = new Problems();
  earlyProblems.forEach((line) => problems.addLine(line));
  const ctx: ResolveContext = { baseDir, readText, problems, hostTimeZone: options.hostTimeZone ?? hostTimeZone() };

  const parsed = configSchema.safeParse(data, { reportInput: true });
  if (parsed.success) {
    const config = resolveConfig(parsed.data, source, ctx);
    if (problems.empty) return config;
    if (options.readOnly && problems.list.every((line) => CREDENTIAL_KEYS.test(line))) return config;
  } else {
    parsed.error.issues.flatMap((issue) => describeIssue(issue, data)).forEach((line) => problems.addLine(line));
    const rest = withoutRefusedValues(data, parsed.error.issues);
    if (rest.success) resolveConfig(rest.data, source, ctx);
    else checkAccountsThatParse(data, ctx);
  }
  throw new ConfigError(problems.list);
}

/** How many times refused values are set aside: a value removed can reveal one more level (a mapping in a list). */
const MAX_SET_ASIDE_ROUNDS = 3;

/**
 * The config with every value the schema refused taken out (unknown keys, bad durations, wrong types), parsed
 * again: defaults then stand in for the values taken out, so the checks that follow (secrets, files, floors,
 * cross-field rules) run on the rest. Their problems at paths already reported are dropped by `Problems`. A value
 * inside a list is never taken out (that would renumber the paths of the items after it), and a required field
 * that is missing cannot be made up: then the whole config does not parse and accounts are checked one by one.
 */
function withoutRefusedValues(data: unknown, issues: readonly z.core.$ZodIssue[]): ReturnType<typeof configSchema.safeParse> {
  const copy = structuredClone(data);
  let current = issues;
  for (let round = 0; round < MAX_SET_ASIDE_ROUNDS; round++) {
    let removed = false;
    for (const issue of current) {
      const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((key) => [...issue.path, key]) : [issue.path];
      for (const path of keys) removed = removeAt(copy, path) || removed;
    }
    const again = configSchema.safeParse(copy);
    if (again.success || !removed) return again;
    current = again.error.issues;
  }
  return configSchema.safeParse(copy);
}

function removeAt(root: unknown, path: readonly PropertyKey[]): boolean {
  if (path.length === 0) return false;
  let node: unknown = root;
  for (const key of path.slice(0, -1)) {
    if (node === null || typeof node !== 'object') return false;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  const last = path[path.length - 1]!;
  if (node === null || typeof node !== 'object' || Array.isArray(node) || !(last in node)) return false;
  delete (node as Record<PropertyKey, unknown>)[last];
  return true;
}

/**
 * When the file as a whole cannot be made to fit the schema (a required field missing), the accounts that do fit,
 * once their refused values are set aside, still get their semantic checks, so one mistake in one place does not
 * hide another elsewhere.
 */
function checkAccountsThatParse(data: unknown, ctx: ResolveContext): void {
  const record = (data ?? {}) as Record<string, unknown>;
  const defaults = configSchema.shape.defaults.safeParse(record.defaults);
  const raw = { accounts: [], defaults: defaults.success ? defaults.data : undefined } as RawConfig;
  const accounts = Array.isArray(record.accounts) ? record.accounts : [];
  const resolved = accounts.flatMap((candidate, index) => {
    let account = accountSchema.safeParse(candidate);
    if (!account.success) {
      const copy = structuredClone(candidate) as unknown;
      account.error.issues.forEach((issue) =>
        (issue.code === 'unrecognized_keys' ? issue.keys.map((key) => [...issue.path, key]) : [issue.path]).forEach((path) => removeAt(copy, path)),
      );
      account = accountSchema.safeParse(copy);
    }
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
