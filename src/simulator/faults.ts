/**
 * Fault injection: the broken answers a client must survive (5xx, slowness, silence, garbage, cut-off JSON,
 * resets, redirects, well-formed nonsense). Faults wait in a FIFO queue per endpoint, each for its next
 * `count` requests.
 */
import type { Response } from 'express';
import type { EndpointId, FaultSpec } from './types';

interface QueuedFault {
  spec: FaultSpec;
  remaining: number;
}

export class FaultQueue {
  private readonly queues = new Map<EndpointId, QueuedFault[]>();

  add(spec: FaultSpec): void {
    const queue = this.queues.get(spec.endpoint) ?? [];
    queue.push({ spec, remaining: spec.count ?? 1 });
    this.queues.set(spec.endpoint, queue);
  }

  /** The fault for the next request to `endpoint`, if any; consumes one of its uses. */
  take(endpoint: EndpointId): FaultSpec | undefined {
    const queue = this.queues.get(endpoint);
    const head = queue?.[0];
    if (!queue || !head) return undefined;
    head.remaining--;
    if (head.remaining <= 0) queue.shift();
    return head.spec;
  }

  clear(): void {
    this.queues.clear();
  }
}

/**
 * Simulator choice: the redirect target when none is given. It stays on the simulator and answers 404, so a
 * client that follows redirects gets an error rather than reaching anything real.
 */
export const DEFAULT_REDIRECT_PATH = '/_sim/moved';

// Simulator choice: garbage claims to be JSON, the harder case for a client (it must not trust the header).
const GARBAGE_BODY = '<html><body><h1>502 Bad Gateway</h1></body></html>';

/**
 * Answers `res` according to a fault other than 'delay' (which the endpoint wrapper handles by answering
 * normally later). `sample` is a valid success body for the endpoint, used by 'truncated'. Returns the
 * status sent, 0 when nothing was sent.
 */
export function answerWithFault(res: Response, spec: Exclude<FaultSpec, { kind: 'delay' }>, sample: unknown): number {
  switch (spec.kind) {
    case 'status':
      // Simulator choice: without a body the status comes with an empty body.
      if (spec.body === undefined) res.status(spec.status).end();
      else res.status(spec.status).json(spec.body);
      return spec.status;
    case 'body':
      res.status(200).json(spec.body);
      return 200;
    case 'garbage':
      res.status(200).type('application/json').send(GARBAGE_BODY);
      return 200;
    case 'truncated': {
      const text = JSON.stringify(sample);
      res
        .status(200)
        .type('application/json')
        .send(text.slice(0, Math.floor(text.length / 2)));
      return 200;
    }
    case 'redirect':
      res.redirect(302, spec.location ?? DEFAULT_REDIRECT_PATH);
      return 302;
    case 'drop':
      // Destroying the socket without a response is what a client sees as a connection reset.
      res.socket?.destroy();
      return 0;
    case 'hang':
      // Left unanswered on purpose; close() destroys the socket.
      return 0;
  }
}

/** Real-time timers behind 'delay' faults, cancelled on close so a closed simulator holds the process for nothing. */
export class PendingTimers {
  private readonly timers = new Set<NodeJS.Timeout>();

  after(ms: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, ms);
    this.timers.add(timer);
  }

  cancelAll(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}
