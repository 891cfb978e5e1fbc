import { resolve as resolvePath } from 'node:path';
import { ConfigError } from '../core/errors';
import { interpolate } from './interpolate';
import { describeFileProblem } from './secret-files';
import type { ReadText } from './secret-files';
import { parseYaml } from './yaml';

/**
 * `gateway.clientsFile`: the gateway's clients in a file of their own, a YAML list of the entries `gateway.clients`
 * takes. `gateway add-client` appends to it without reading the rest of the config, so the documented order works:
 * make the client, then complete and start the config. Its entries are spliced into `gateway.clients` before the
 * schema runs, so they are checked exactly as inline ones; a config that has both is refused.
 */
export function spliceClientsFile(data: unknown, baseDir: string, env: NodeJS.ProcessEnv, readText: ReadText, problems: string[]): void {
  const gateway = (data as { gateway?: Record<string, unknown> } | null)?.gateway;
  if (gateway === null || typeof gateway !== 'object' || typeof gateway.clientsFile !== 'string') return;
  if (gateway.clients !== undefined) {
    problems.push('gateway.clientsFile: set only one of clients and clientsFile');
    return;
  }
  const path = resolvePath(baseDir, gateway.clientsFile);
  let text: string;
  try {
    text = readText(path);
  } catch (error) {
    problems.push(`gateway.clientsFile: ${describeFileProblem(error, gateway.clientsFile, path)}; \`broker-token-sidecar gateway add-client\` makes it`);
    return;
  }
  let list: unknown;
  try {
    list = parseYaml(text, path) ?? [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems.map((line) => `gateway.clientsFile: ${line}`));
    return;
  }
  if (!Array.isArray(list)) {
    problems.push(`gateway.clientsFile: ${path} must hold a YAML list of clients`);
    return;
  }
  gateway.clients = interpolate(list, env, problems, ['gateway', 'clientsFile']);
}
