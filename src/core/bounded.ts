/**
 * Runs `task` for every item, at most `limit` at a time, in order of start. After the first failure no new item
 * starts; the ones running are waited for, then that first error is thrown, so nothing is left running behind
 * the caller's back.
 */
export async function forEachBounded<T>(items: Iterable<T>, limit: number, task: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < queue.length && !failure) {
      const item = queue[next++] as T;
      try {
        await task(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, queue.length)) }, worker));
  if (failure) throw failure.error;
}
