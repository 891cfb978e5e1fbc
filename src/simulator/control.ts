/**
 * The control API under /_sim/, for tests that run the simulator in another process. It exposes exactly the
 * in-process methods, validates everything it receives and answers 400 with a message naming the problem.
 */
import { Router, type Response } from 'express';
import { DEFAULT_REDIRECT_PATH } from './faults';
import { parseJsonText } from './request';
import { parseCredential, parseFaultSpec, parseOrThrow, SimulatorInputError, statsQuerySchema } from './schemas';
import type { FaultSpec, RequestRecord, SimulatorCredential, SimulatorStats } from './types';

export interface SimulatorControl {
  stats(appKey?: string): SimulatorStats;
  requestLog(): RequestRecord[];
  injectFault(fault: FaultSpec): void;
  clearFaults(): void;
  maintenance(): void;
  reset(): void;
  addCredential(credential: SimulatorCredential): void;
}

export const CONTROL_PREFIX = '/_sim';

export function controlRouter(sim: SimulatorControl): Router {
  const router = Router();

  router.get('/stats', (req, res) => {
    guard(res, () => {
      const query = parseOrThrow(statsQuerySchema, { ...(req.query as Record<string, unknown>) }, 'stats query');
      res.json(sim.stats(query.appKey));
    });
  });
  router.get('/requests', (_req, res) => {
    res.json(sim.requestLog());
  });
  router.post('/faults', (req, res) => {
    guard(res, () => {
      sim.injectFault(parseFaultSpec(jsonBody(req.body)));
      res.json({ ok: true });
    });
  });
  router.delete('/faults', (_req, res) => {
    sim.clearFaults();
    res.json({ ok: true });
  });
  router.post('/maintenance', (_req, res) => {
    sim.maintenance();
    res.json({ ok: true });
  });
  router.post('/reset', (_req, res) => {
    sim.reset();
    res.json({ ok: true });
  });
  router.post('/credentials', (req, res) => {
    guard(res, () => {
      sim.addCredential(parseCredential(jsonBody(req.body)));
      res.json({ ok: true });
    });
  });
  router.all(DEFAULT_REDIRECT_PATH.slice(CONTROL_PREFIX.length), (_req, res) => {
    res.status(404).json({ error: 'the simulator redirected here; a broker client should not follow redirects' });
  });
  router.use((req, res) => {
    res.status(404).json({ error: `no control endpoint ${req.method} ${CONTROL_PREFIX}${req.path}` });
  });
  return router;
}

export function jsonBody(raw: unknown): unknown {
  const body = parseJsonText(raw);
  if (body.kind === 'invalid') throw new SimulatorInputError('request body is not valid JSON');
  if (body.kind === 'none') throw new SimulatorInputError('request body is required (JSON)');
  return body.value;
}

export function guard(res: Response, run: () => void): void {
  try {
    run();
  } catch (error) {
    if (!(error instanceof SimulatorInputError)) throw error;
    res.status(400).json({ error: error.message });
  }
}
