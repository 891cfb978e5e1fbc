/**
 * The real-time part of the control API, under /_sim/realtime/, for tests that run the simulator in another
 * process: the same methods as in-process, inputs validated, a 400 naming the problem otherwise.
 *
 *   GET  /_sim/realtime/stats[?appKey=K]                 counts (RealtimeStats), in total or for one key
 *   GET  /_sim/realtime/sessions[?appKey=K][&open=true]  sessions with their registrations, open and closed
 *   POST /_sim/realtime/rate   {"framesPerSecond": 5, "recordsPerFrame": 1}
 *   POST /_sim/realtime/kill   {"appKey": "K", "how": "drop" | "close"}   → {"killed": n}
 *   POST /_sim/realtime/fills  {"htsId": "H"}                             → {"delivered": n}
 */
import { Router } from 'express';
import { z } from 'zod';
import { guard, jsonBody } from '../control';
import { parseOrThrow } from '../schemas';
import type { RealtimeSimulator } from './hub';
import { MAX_FRAMES_PER_SECOND } from './options';

const statsQuery = z.strictObject({ appKey: z.string().min(1).optional() });
const sessionsQuery = z.strictObject({ appKey: z.string().min(1).optional(), open: z.enum(['true', 'false']).optional() });
const rateBody = z.strictObject({
  framesPerSecond: z.number().min(0).max(MAX_FRAMES_PER_SECOND),
  recordsPerFrame: z.number().int().min(1).max(999).optional(),
});
const killBody = z.strictObject({ appKey: z.string().min(1), how: z.enum(['drop', 'close']).optional() });
const fillBody = z.strictObject({ htsId: z.string().min(1).max(40) });

export const REALTIME_CONTROL_PATH = '/realtime';

export function realtimeRouter(realtime: RealtimeSimulator): Router {
  const router = Router();
  router.get('/stats', (req, res) => {
    guard(res, () => {
      const query = parseOrThrow(statsQuery, { ...(req.query as Record<string, unknown>) }, 'realtime stats query');
      res.json(realtime.stats(query.appKey));
    });
  });
  router.get('/sessions', (req, res) => {
    guard(res, () => {
      const query = parseOrThrow(sessionsQuery, { ...(req.query as Record<string, unknown>) }, 'realtime sessions query');
      const open = query.open === undefined ? undefined : query.open === 'true';
      res.json(realtime.sessionList({ appKey: query.appKey, open }));
    });
  });
  router.post('/rate', (req, res) => {
    guard(res, () => {
      const body = parseOrThrow(rateBody, jsonBody(req.body), 'realtime rate');
      realtime.setFrameRate(body.framesPerSecond, body.recordsPerFrame);
      res.json({ ok: true });
    });
  });
  router.post('/kill', (req, res) => {
    guard(res, () => {
      const body = parseOrThrow(killBody, jsonBody(req.body), 'realtime kill');
      res.json({ killed: realtime.kill(body.appKey, body.how) });
    });
  });
  router.post('/fills', (req, res) => {
    guard(res, () => {
      const body = parseOrThrow(fillBody, jsonBody(req.body), 'realtime fill');
      res.json({ delivered: realtime.fill(body.htsId) });
    });
  });
  return router;
}
