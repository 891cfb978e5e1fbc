import { join } from 'node:path';
import { z } from 'zod';
import { nodeFileSystem, writeFileAtomic, type FileSystem } from '../core/atomic-file';
import { FileReadError, readRegularFile } from '../core/safe-read';

/** Open alerts and an outbox capped in size: a file far larger than that is not ours. */
const MAX_ALERT_FILE_BYTES = 4 * 1024 * 1024;

/**
 * The notifier's durable memory, `<stateDir>/alerts.json` (0600): which alerts are open and when each was last
 * sent, and the outbox of messages not yet delivered. Kept across restarts so a crash loop repeats nothing,
 * and a message decided before a crash is still delivered after it.
 */
const refSchema = z.object({ name: z.string(), provider: z.enum(['kis', 'kiwoom']), env: z.enum(['real', 'mock']) });

const openAlertSchema = z.object({
  kind: z.string(),
  severity: z.enum(['critical', 'warning', 'info']),
  account: refSchema.optional(),
  sink: z.string().optional(),
  facts: z.record(z.string(), z.union([z.string(), z.number(), z.null()])),
  expiresAt: z.number().nullable(),
  since: z.number(),
  lastNotifiedAt: z.number(),
});

const outboxSchema = z.object({
  id: z.string(),
  severity: z.enum(['critical', 'warning', 'info']),
  label: z.string(),
  createdAt: z.number(),
  payload: z.object({ text: z.string(), blocks: z.array(z.unknown()) }),
});

const fileSchema = z.object({
  version: z.literal(1),
  alerts: z.record(z.string(), openAlertSchema),
  outbox: z.array(outboxSchema),
  /**
   * Since when each account has had no usable token (no_usable_token's grace). Kept here, not in memory: a token
   * that never arrived has no instant of its own in the account's state, and a restart must neither resolve the
   * open alert nor start its grace again (a crash loop would otherwise never alert, or alert at every start).
   */
  unusableSince: z.record(z.string(), z.number()).default({}),
});

export type OpenAlert = z.infer<typeof openAlertSchema>;
export type OutboxItem = z.infer<typeof outboxSchema>;
export type AlertFile = z.infer<typeof fileSchema>;

export class AlertStore {
  readonly path: string;

  constructor(
    stateDir: string,
    private readonly fs: FileSystem = nodeFileSystem,
  ) {
    this.path = join(stateDir, 'alerts.json');
  }

  /** An unreadable or invalid file starts afresh (reported by the caller): losing dedupe beats losing alerts. */
  async load(): Promise<{ file: AlertFile; problem?: string }> {
    const empty: AlertFile = { version: 1, alerts: {}, outbox: [], unusableSince: {} };
    let text: string;
    try {
      ({ content: text } = await readRegularFile(this.path, { followSymlinks: false, maxBytes: MAX_ALERT_FILE_BYTES }, this.fs.open));
    } catch (error) {
      if (error instanceof FileReadError && error.code === 'missing') return { file: empty };
      return { file: empty, problem: (error as Error).message };
    }
    try {
      return { file: fileSchema.parse(JSON.parse(text)) };
    } catch {
      return { file: empty, problem: `${this.path} is not a valid alert state; starting afresh` };
    }
  }

  async save(file: AlertFile): Promise<void> {
    await writeFileAtomic(this.path, `${JSON.stringify(file)}\n`, { mode: 0o600, dirMode: 0o700, followDirectoryLink: true, fs: this.fs });
  }
}
