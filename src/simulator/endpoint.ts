/**
 * One wrapper for every broker endpoint: it applies a queued fault or runs the handler, sends the answer and
 * records it. Keeping this in one place is what makes "every request is counted exactly once" true.
 */
import type { RequestHandler } from 'express';
import type { Clock } from '../core/clock';
import { answerWithFault, type FaultQueue, type PendingTimers } from './faults';
import { toBrokerRequest, type Answer, type BrokerRequest } from './request';
import type { StatsBook } from './stats';
import type { EndpointId } from './types';

export interface EndpointDeps {
  clock: Clock;
  faults: FaultQueue;
  timers: PendingTimers;
  stats: StatsBook;
}

export interface EndpointSpec {
  id: EndpointId;
  /** The app key the request claims, for per-key stats; undefined when it names none. */
  appKeyOf: (req: BrokerRequest) => string | undefined;
  handle: (req: BrokerRequest) => Answer;
  /** A valid success body, cut in half by the 'truncated' fault. */
  sample: () => unknown;
}

export function brokerEndpoint(deps: EndpointDeps, spec: EndpointSpec): RequestHandler {
  return (req, res) => {
    const at = deps.clock.now();
    const request = toBrokerRequest(req);
    const appKey = spec.appKeyOf(request);
    const base = appKey === undefined ? { at, endpoint: spec.id } : { at, endpoint: spec.id, appKey };
    const fault = deps.faults.take(spec.id);

    const answerNormally = (): Answer => {
      const answer = spec.handle(request);
      // A delayed answer may find the client gone; the broker-side effect stands, the reply goes nowhere.
      if (!res.destroyed && res.socket && !res.socket.destroyed)
        res
          .status(answer.status)
          .set(answer.headers ?? {})
          .json(answer.body);
      return answer;
    };

    if (!fault) {
      const answer = answerNormally();
      deps.stats.record({ ...base, status: answer.status, outcome: answer.outcome });
      return;
    }
    if (fault.kind === 'delay') {
      // The broker still acts on a request whose answer comes too late for the client: a token minted here
      // after the client gave up is real, as it would be at KIS.
      deps.timers.after(fault.delayMs, () => {
        const answer = answerNormally();
        deps.stats.record({ ...base, status: answer.status, outcome: answer.outcome, fault: 'delay' });
      });
      return;
    }
    const status = answerWithFault(res, fault, spec.sample());
    deps.stats.record({ ...base, status, outcome: `fault:${fault.kind}`, fault: fault.kind });
  };
}
