import { execFile } from 'node:child_process';
import { readRegularFile } from '../core/safe-read';
import type { NotifyConfig } from '../config/types';

/**
 * After a new token is written: tells an application that keeps the token in memory that its file changed (the
 * sink's `notify`), by running a command, or signalling the process named in a pid file. The command gets the
 * account, sink and path in its environment, never the token: it can read the file like any other consumer.
 */
export async function runAfterWrite(notify: NotifyConfig, context: { account: string; sink: string; path: string }): Promise<void> {
  if (notify.command) {
    const [file, ...args] = notify.command;
    await new Promise<void>((resolve, reject) => {
      execFile(
        file!,
        args,
        {
          timeout: notify.timeoutMs,
          killSignal: 'SIGKILL',
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            BROKER_TOKEN_ACCOUNT: context.account,
            BROKER_TOKEN_SINK: context.sink,
            BROKER_TOKEN_FILE: context.path,
          },
        },
        (error) => {
          if (!error) return resolve();
          const detail = error.killed ? `timed out after ${notify.timeoutMs} ms` : `exited with ${String(error.code ?? error.signal)}`;
          reject(new Error(`notify command ${file} ${detail}`));
        },
      );
    });
  }
  if (notify.signal && notify.pidFile) {
    let pid: number;
    try {
      // A pid file is the application's own, often a link; it must still be a small regular file.
      pid = Number((await readRegularFile(notify.pidFile, { followSymlinks: true, maxBytes: 64 })).content.trim());
    } catch (error) {
      throw new Error(`cannot read pid file: ${(error as Error).message}`);
    }
    if (!Number.isInteger(pid) || pid <= 1) throw new Error(`pid file ${notify.pidFile} does not hold a usable pid`);
    try {
      process.kill(pid, notify.signal);
    } catch (error) {
      throw new Error(`cannot send ${notify.signal} to pid ${pid} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
}
