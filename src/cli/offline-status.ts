import type { SidecarConfig } from '../config/types';
import { nodeFileSystem } from '../core/atomic-file';
import { emptyState, appKeyId } from '../store/account-state';
import { FileStateStore } from '../store/file-store';
import { accountViewOf, snapshotOf, tokenViewOf, type AccountView } from '../lifecycle/views';
import { renderSink, sinkPaths } from '../sinks/formats';
import { inspectSinkFile } from '../sinks/inspect';
import { summarizeFiles, type SinkFileStatus, type SinkStatus } from '../sinks/supervisor';

/**
 * What `status` reports with no sidecar to ask: the state files and the sink files as they are on disk now,
 * judged by the same rules the sidecar uses. Reads only; nothing is created, moved or rewritten.
 */
export async function readOfflineStatus(config: SidecarConfig, now: number): Promise<Array<AccountView & { problem?: string }>> {
  const store = new FileStateStore(config.stateDir, () => now, nodeFileSystem, true);
  const views: Array<AccountView & { problem?: string }> = [];
  for (const account of config.accounts) {
    const loaded = await store.load(account.name);
    let state = loaded.state ?? emptyState(account);
    let problem = loaded.problem?.message;
    // An app key that could not be read here (`status` goes without credentials) cannot be compared.
    if (account.appKey !== '' && state.appKeyId !== appKeyId(account.appKey)) {
      problem = 'the stored token belongs to another app key than the one configured';
      state = emptyState(account);
    }
    const view = tokenViewOf(state);
    const sinks: SinkStatus[] = [];
    for (const sink of account.sinks) {
      const expected = view ? renderSink(sink, view) : undefined;
      const files: SinkFileStatus[] = [];
      let lastError: SinkStatus['lastError'] = null;
      for (const path of sinkPaths(sink, now)) {
        const inspection = await inspectSinkFile(nodeFileSystem, sink, path, expected ?? '\0', view?.accessToken ?? '\0');
        const mode = inspection.kind === 'refused' ? null : inspection.mode;
        files.push({ path, present: mode !== null, healthy: expected !== undefined && inspection.kind === 'healthy', mode });
        lastError ??=
          inspection.kind === 'refused'
            ? { reason: inspection.error.code, message: inspection.error.message, at: now }
            : inspection.kind === 'repair'
              ? {
                  reason: inspection.reason,
                  message: `${path}: file is ${inspection.reason === 'mode' ? 'not mode 0' + sink.access.mode.toString(8) : inspection.reason.replace('_', ' ')}`,
                  at: now,
                }
              : null;
      }
      sinks.push({
        name: sink.name,
        format: sink.format,
        path: files[0]!.path,
        files,
        ...summarizeFiles(files, sink.access.mode),
        healthy: files.every((file) => file.healthy),
        expectedMode: sink.access.mode,
        lastWriteAt: null,
        lastError,
        consecutiveFailures: 0,
        unhealthySince: null,
        stuckSince: null,
      });
    }
    views.push({
      ...accountViewOf(
        snapshotOf(account, state, now),
        sinks,
        sinks.every((s) => s.healthy),
      ),
      ...(problem !== undefined ? { problem } : {}),
    });
  }
  return views;
}
