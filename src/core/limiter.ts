/**
 * At most `max` operations at once, the rest waiting in call order. It is what keeps a thousand accounts starting
 * together from asking the broker a thousand things at the same moment.
 */
export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly max: number) {}

  async run<T>(operation: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await operation();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/**
 * Runs `task` for every item through a Limiter of `limit`. After the first failure no new item starts; the ones
 * running are waited for, then that first error is thrown, so nothing is left running behind the caller's back.
 */
export async function forEachBounded<T>(items: Iterable<T>, limit: number, task: (item: T) => Promise<void>): Promise<void> {
  const limiter = new Limiter(limit);
  let failure: { error: unknown } | undefined;
  await Promise.all(
    [...items].map((item) =>
      limiter.run(async () => {
        if (failure) return;
        await task(item).catch((error: unknown) => {
          failure ??= { error };
        });
      }),
    ),
  );
  if (failure) throw failure.error;
}
