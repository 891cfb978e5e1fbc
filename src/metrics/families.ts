import { Counter, Gauge, Histogram, type LabelValues, type Registry } from 'prom-client';

/**
 * The metric families the exporter keeps rendered: each wraps its prom-client metric and reports every change
 * to `onChange`, so the exporter renders that family again at the next scrape. The prom-client metric itself
 * is protected: no code outside can change a value without the family being marked, so no cached text goes stale.
 */

export type OnFamilyChange = (family: string) => void;
export type Labels<L extends string> = Partial<Record<L, string>>;

interface FamilyOptions<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  registry: Registry;
  onChange: OnFamilyChange;
}

/** What every prom-client metric type offers for finding and removing series. */
interface SeriesHolder<L extends string> {
  get(): Promise<{ values: Array<{ labels: Partial<Record<string, string | number>> }> }>;
  remove(labels: LabelValues<L>): void;
}

abstract class Family<L extends string, M extends SeriesHolder<L>> {
  readonly name: string;
  private readonly onChange: OnFamilyChange;

  /** `metric` is only ever changed through the subclass's methods, each of which calls `changed()`. */
  protected constructor(
    options: FamilyOptions<L>,
    protected readonly metric: M,
  ) {
    this.name = options.name;
    this.onChange = options.onChange;
  }

  protected changed(): void {
    this.onChange(this.name);
  }

  /** Forgets every series of an account (removed by a config reload), so they stop instead of going stale. */
  async removeAccount(account: string): Promise<void> {
    const { values } = await this.metric.get();
    for (const { labels } of values) {
      // A histogram lists a value per bucket; removing its label set once removes them all.
      if (labels.account === account && labels.le === undefined) this.metric.remove(labels);
    }
    this.changed();
  }
}

const registered = <L extends string>({ name, help, labelNames, registry }: FamilyOptions<L>) => ({ name, help, labelNames, registers: [registry] });

/**
 * A counter whose increments are summed here and handed to prom-client at the next render (`flush`): on the gateway's
 * path every call counts, and prom-client's `inc` (label checks, a hash of seven labels) cost ~10 µs where a sum in a
 * map costs a fraction of one. What a scrape sees is the same: every render flushes first.
 */
export class CounterFamily<L extends string> extends Family<L, Counter<L>> {
  private readonly pending = new Map<string, { labels: Labels<L>; by: number }>();
  private readonly labelNames: readonly L[];

  constructor(options: FamilyOptions<L>) {
    super(options, new Counter<L>(registered(options)));
    this.labelNames = options.labelNames;
  }

  /** By 0 creates the series, so a reason that never happened reads 0 instead of "no data". */
  inc(labels: Labels<L>, by = 1): void {
    let key = '';
    for (const name of this.labelNames) key += `${labels[name] ?? ''}\u0000`;
    const sum = this.pending.get(key);
    if (sum) sum.by += by;
    else this.pending.set(key, { labels, by });
    this.changed();
  }

  /** The sums since the last render, into prom-client. */
  flush(): void {
    for (const { labels, by } of this.pending.values()) this.metric.inc(labels, by);
    this.pending.clear();
  }

  override async removeAccount(account: string): Promise<void> {
    this.flush();
    await super.removeAccount(account);
  }
}

export class GaugeFamily<L extends string> extends Family<L, Gauge<L>> {
  constructor(options: FamilyOptions<L>) {
    super(options, new Gauge<L>(registered(options)));
  }

  set(labels: Labels<L>, value: number): void {
    this.metric.set(labels, value);
    this.changed();
  }
}

export class HistogramFamily<L extends string> extends Family<L, Histogram<L>> {
  constructor(options: FamilyOptions<L> & { buckets: number[] }) {
    super(options, new Histogram<L>({ ...registered(options), buckets: options.buckets }));
  }

  observe(labels: Labels<L>, value: number): void {
    this.metric.observe(labels, value);
    this.changed();
  }
}

export type AnyFamily = CounterFamily<string> | GaugeFamily<string> | HistogramFamily<string>;
