import { formatPath, type Path } from './path';

/**
 * `${VAR}` and `${VAR:-fallback}` in any string value are replaced from the environment; `$${` stands for a
 * literal `${`. A variable that is neither set nor given a fallback is an error naming where it was used.
 */
const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Names are printed in messages only when written as environment variables are (KIS_APP_KEY): a credential
 * pasted inside `${…}` is letters and digits too, but not in capitals only.
 */
const CONVENTIONAL_NAME = /^[A-Z_][A-Z0-9_]*$/;

export function interpolate(value: unknown, env: NodeJS.ProcessEnv, problems: string[], path: Path = []): unknown {
  if (typeof value === 'string') {
    return value.replace(REFERENCE, (whole, name: string | undefined, fallback: string | undefined) => {
      if (name === undefined) return '${';
      const found = env[name];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      problems.push(
        CONVENTIONAL_NAME.test(name)
          ? `${formatPath(path)}: environment variable ${name} is not set`
          : `${formatPath(path)}: refers to an environment variable that is not set (its name is not printed: not in capitals like a variable name, it could be a pasted secret)`,
      );
      return whole;
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => interpolate(item, env, problems, [...path, i]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) out[key] = interpolate(inner, env, problems, [...path, key]);
    return out;
  }
  return value;
}
