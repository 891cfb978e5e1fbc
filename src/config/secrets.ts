import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';

export type ReadText = (path: string) => string;
export const readTextFile: ReadText = (path) => readFileSync(path, 'utf8');

/**
 * A secret comes either inline (usually `${ENV}`) or from a file (a Docker or Kubernetes secret). Files end
 * with a newline more often than not, and a newline sent inside an app secret is a classic cause of EGW00105,
 * so trailing line breaks are stripped; anything else is kept and left for validation to judge.
 */
export function resolveSecret(
  inline: string | undefined,
  file: string | undefined,
  names: { inline: string; file: string },
  baseDir: string,
  readText: ReadText,
): { value?: string; problem?: { key: string; message: string } } {
  if (inline !== undefined && file !== undefined) {
    return { problem: { key: names.inline, message: `set only one of ${names.inline} and ${names.file}` } };
  }
  if (file !== undefined) {
    const fullPath = resolvePath(baseDir, file);
    try {
      return { value: readText(fullPath).replace(/[\r\n]+$/, '') };
    } catch (error) {
      return { problem: { key: names.file, message: cannotReadFile(error) } };
    }
  }
  return { value: inline };
}

/**
 * Why a file named in the config could not be read, without its path: a secret pasted into `appSecretFile`
 * instead of `appSecret` would otherwise come back in the message.
 */
export function cannotReadFile(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code ?? 'error';
  return `cannot read the file it names (${code}; a relative path counts from the config file's folder)`;
}
