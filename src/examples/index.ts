/**
 * `broker-token-sidecar example NAME` (`npm run example -- NAME`): one example of examples/ against the broker
 * simulator, in one command from a clone: the simulator, the sidecar on the example's own sidecar.yaml (copied,
 * with the overrides a simulator needs, each printed), the example's bot (the real client when it is installed,
 * else its replica from test/replicas, saying which), what happened, then everything stopped and removed.
 */
import { CliError } from '../cli/boot';
import { ConfigError } from '../core/errors';
import { findPython, openWorkspace, say, ExampleFailure } from './workspace';
import { SCENARIOS } from './scenarios';

export const EXAMPLE_NAMES = Object.keys(SCENARIOS);

/** @public cli.ts requires this module only when an example runs, a require() knip does not follow. */
export async function runExample(name: string, options: { keep: boolean }): Promise<number> {
  const scenario = SCENARIOS[name];
  if (!scenario) {
    process.stderr.write(`no example named "${name}": one of ${EXAMPLE_NAMES.join(', ')}\n`);
    return 2;
  }
  const credential = scenario.credential();
  let ws: Awaited<ReturnType<typeof openWorkspace>> | undefined;
  try {
    const python = findPython();
    ws = await openWorkspace(name, credential, options.keep);
    await scenario.run(ws, python, credential);
    say(`example ${name}: passed`);
    return 0;
  } catch (error) {
    // A config the example ships that does not load, or a step of the CLI refusing, is the example failing too.
    if (!(error instanceof ExampleFailure || error instanceof ConfigError || error instanceof CliError)) throw error;
    process.stderr.write(`example ${name}: FAILED: ${error.message}\n`);
    return 1;
  } finally {
    for (const step of ws?.cleanup ?? []) await step();
  }
}
