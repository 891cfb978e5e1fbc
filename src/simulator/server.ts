/**
 * Starting a listening simulator in one call, for the CLI's `simulator` and `demo` commands.
 */
import { systemClock, type Clock } from '../core/clock';
import { BrokerSimulator } from './simulator';
import type { SimulatorOptions } from './types';

interface RunSimulatorOptions extends Omit<SimulatorOptions, 'clock'> {
  /** Default 0: any free port. */
  port?: number;
  /** Default 127.0.0.1: the simulator hands out tokens to anyone who asks, so it stays on loopback unless told. */
  host?: string;
  /** Default: the system clock. */
  clock?: Clock;
}

export async function runSimulatorServer(opts: RunSimulatorOptions): Promise<{ url: string; simulator: BrokerSimulator }> {
  const { port, host, clock, ...rest } = opts;
  const simulator = new BrokerSimulator({ ...rest, clock: clock ?? systemClock });
  const url = await simulator.listen(port ?? 0, host ?? '127.0.0.1');
  return { url, simulator };
}
