import { resolve as resolvePath } from 'node:path';
import { FileReadError, readRegularFileSync } from '../core/safe-read';

export type ReadText = (path: string) => string;

/** A config file, a secret or a CA bundle: anything larger is not one, and is refused unread. */
const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

const PROBLEM_IN_WORDS: Record<FileReadError['code'], string> = {
  missing: 'ENOENT',
  symlink: 'a loop of symbolic links',
  directory: 'EISDIR',
  not_regular_file: 'not a regular file',
  too_large: `larger than ${MAX_CONFIG_FILE_BYTES} bytes`,
  io_error: 'error',
};

/**
 * Config files and secret files are read while the config is resolved, synchronously, at start and at every
 * reload: a FIFO or a device planted there must be refused at once, never block the process or fill its
 * memory. Links are followed (Kubernetes mounts secrets as links) but must end at a small regular file. The
 * error thrown carries in `code` the errno or the problem in words, which is what config messages show.
 */
export const readTextFile: ReadText = (path) => {
  try {
    return readRegularFileSync(path, { followSymlinks: true, maxBytes: MAX_CONFIG_FILE_BYTES }).content;
  } catch (error) {
    if (!(error instanceof FileReadError)) throw error;
    throw Object.assign(new Error(error.message), { code: error.errno ?? PROBLEM_IN_WORDS[error.code] });
  }
};

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
      return { problem: { key: names.file, message: describeFileProblem(error, file, fullPath) } };
    }
  }
  return { value: inline };
}

/**
 * Why a file named in the config could not be read, with the path it was resolved to: a relative path counts from
 * the config file's folder, which is not where the user usually stands, so the resolved path is what they need to
 * see. Unless the value looks like a credential pasted into the wrong key (a secret in `appSecretFile` instead of
 * `appSecret` would otherwise come back in the message): a `+` or `=` (base64), a path segment longer than 32
 * characters (a KIS app key has 36, a secret 180), or a single word of 16 characters or more mixing upper and lower
 * case and digits, as generated keys do and file names do not, keeps the path out.
 */
export function describeFileProblem(error: unknown, value: string, fullPath: string): string {
  const code = (error as NodeJS.ErrnoException).code ?? 'error';
  if (looksLikeCredential(value)) return `cannot read the file it names (${code}; the value looks like a credential, not a path: it is not printed)`;
  return `cannot read ${fullPath} (${code}${value === fullPath ? '' : "; a relative path counts from the config file's folder"})`;
}

function looksLikeCredential(value: string): boolean {
  if (/[+=]/.test(value) || value.split('/').some((segment) => segment.length > 32)) return true;
  return /^[A-Za-z0-9_-]{16,}$/.test(value) && /[A-Z]/.test(value) && /[a-z]/.test(value) && /\d/.test(value);
}
