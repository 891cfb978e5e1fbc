import { Counter, Gauge, Histogram, type LabelValues, type Registry } from 'prom-client';

/**
 * The metric families the exporter keeps rendered: each wraps its prom-client metric and reports every change
 * to `onChange`, so the exporter renders that family again at the next scrape. The prom-client metric itself
 * is out of reach: no code can change a value without the family being marked, so no cached text goes stale.
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

abstract class Family<L extends string> {
  readonly name: string;
  private readonly onChange: OnFamilyChange;

  constructor(options: FamilyOptions<L>) {
    this.name = options.name;
    this.onChange = options.onChange;
  }

  protected abstract get metric(): SeriesHolder<L>;

  protected changed(): void {
    this.onChange(this.name);
  }

  /** Forgets every series of an account (removed by a config reload), so they stop instead of going stale. */
  async removeAccount(account: string): Promise<void> {
    const { values } = await this.metric.get();
    for (const { labels } of values) {
      // A histogram lists a value per bucket; removing its label set once removes them all.
      if (labels.account === account && labels.le === undefined) this.metric.remove(labels as LabelValues<L>);
    }
    this.changed();
  }
}

export class CounterFamily<L extends string> extends Family<L> {
  readonly #counter: Counter<L>;

  constructor(options: FamilyOptions<L>) {
    super(options);
    this.#counter = new Counter<L>({ name: options.name, help: options.help, labelNames: options.labelNames, registers: [options.registry] });
  }

  protected get metric(): Counter<L> {
    return this.#counter;
  }

  /** By 0 creates the series, so a reason that never happened reads 0 instead of "no data". */
  inc(labels: Labels<L>, by = 1): void {
    this.#counter.inc(labels, by);
    this.changed();
  }
}

export class GaugeFamily<L extends string> extends Family<L> {
  readonly #gauge: Gauge<L>;

  constructor(options: FamilyOptions<L>) {
    super(options);
    this.#gauge = new Gauge<L>({ name: options.name, help: options.help, labelNames: options.labelNames, registers: [options.registry] });
  }

  protected get metric(): Gauge<L> {
    return this.#gauge;
  }

  set(labels: Labels<L>, value: number): void {
    this.#gauge.set(labels, value);
    this.changed();
  }
}

export class HistogramFamily<L extends string> extends Family<L> {
  readonly #histogram: Histogram<L>;

  constructor(options: FamilyOptions<L> & { buckets: number[] }) {
    super(options);
    this.#histogram = new Histogram<L>({ name: options.name, help: options.help, labelNames: options.labelNames, buckets: options.buckets, registers: [options.registry] });
  }

  protected get metric(): Histogram<L> {
    return this.#histogram;
  }

  observe(labels: Labels<L>, value: number): void {
    this.#histogram.observe(labels, value);
    this.changed();
  }
}

export type AnyFamily = CounterFamily<string> | GaugeFamily<string> | HistogramFamily<string>;
