import { promisify } from 'node:util';
import { constants as zlibConstants, gzip } from 'node:zlib';
import { Registry } from 'prom-client';
import { Serial } from '../core/serial';

/**
 * The exposition, kept rendered. The sidecar's own families are rendered (as text and as bytes) only when something
 * in them changed: every change of a family marks it (families.ts calls `changed`). prom-client's process metrics,
 * which change all the time, are rendered at most once a second. At a thousand accounts rendering everything takes
 * prom-client ~200 ms; a scrape where nothing changed costs little more than the copy to the socket. Renders run
 * one at a time.
 */

// How stale a process metric may be: well under any scrape interval. Rendering them costs ~0.4 ms (the event-loop-lag
// percentiles most of it), more than serving the bytes.
const PROCESS_REFRESH_MS = 1_000;

const gzipAsync = promisify(gzip);

interface RenderedFamily {
  text: Buffer;
  openMetrics: Buffer | undefined;
  source: string;
}

export class ExpositionCache {
  private readonly rendered = new Map<string, RenderedFamily>();
  private readonly dirty = new Set<string>();
  /** All the families in one piece, per format, until one of them changes. */
  private body: { text?: Buffer; openMetrics?: Buffer } = {};
  private processPart: { at: number; text: Buffer; openMetrics?: Buffer } | undefined;
  private readonly serial = new Serial();
  /** The last compressed answer per format, with the parts it was made from (same bytes, same objects). */
  private readonly compressed = new Map<boolean, { parts: Buffer[]; body: Promise<Buffer> }>();

  constructor(
    private readonly registry: Registry,
    private readonly processRegistry: Registry,
    /** Sets the gauges from the current state, just before a render; told whether anything changed since the last. */
    private readonly beforeRender: (changed: boolean, now: number) => void,
  ) {}

  /** A family's value changed: it is rendered again at the next scrape. */
  changed(family: string): void {
    this.dirty.add(family);
  }

  renderParts(openMetrics: boolean): Promise<{ contentType: string; parts: Buffer[] }> {
    return this.serial.run(async () => {
      const now = Date.now();
      this.beforeRender(this.dirty.size > 0, now);
      // Nothing marked, nothing to do.
      for (const metric of this.dirty.size > 0 || this.rendered.size === 0 ? this.registry.getMetricsAsArray() : []) {
        const family = this.rendered.get(metric.name);
        if (family && !this.dirty.has(metric.name)) continue;
        const text = await this.registry.getSingleMetricAsString(metric.name);
        this.rendered.set(metric.name, { text: Buffer.from(`${text}\n\n`), openMetrics: undefined, source: text });
        this.body = {};
      }
      this.dirty.clear();
      const families = [...this.rendered.values()];
      const processFamilies = await this.processMetrics(now);
      if (!openMetrics) {
        this.body.text ??= Buffer.concat(families.map((family) => family.text));
        return { contentType: Registry.PROMETHEUS_CONTENT_TYPE, parts: [this.body.text, processFamilies.text] };
      }
      this.body.openMetrics ??= Buffer.concat(families.map((family) => (family.openMetrics ??= Buffer.from(familyToOpenMetrics(family.source)))));
      processFamilies.openMetrics ??= Buffer.from(
        `${processFamilies.text
          .toString()
          .split('\n\n')
          .filter((block) => block.trim() !== '')
          .map(familyToOpenMetrics)
          .join('')}# EOF\n`,
      );
      return { contentType: Registry.OPENMETRICS_CONTENT_TYPE, parts: [this.body.openMetrics, processFamilies.openMetrics] };
    });
  }

  /** prom-client's process metrics, rendered again once they are a second old. */
  private async processMetrics(now: number): Promise<{ text: Buffer; openMetrics?: Buffer }> {
    if (!this.processPart || now - this.processPart.at >= PROCESS_REFRESH_MS) {
      this.processPart = { at: now, text: Buffer.from(await this.processRegistry.metrics()) };
    }
    return this.processPart;
  }

  /**
   * The exposition gzipped, as Prometheus asks for it: at a thousand accounts 8 MiB of text become a few hundred
   * KiB on the wire. Compressed off the event loop (zlib's thread pool), at the fastest level because the body
   * can change every second, and only again when the parts changed; scrapes that arrive meanwhile share it.
   */
  async renderGzip(openMetrics: boolean): Promise<{ contentType: string; body: Buffer }> {
    const { contentType, parts } = await this.renderParts(openMetrics);
    let last = this.compressed.get(openMetrics);
    if (!last || last.parts.length !== parts.length || last.parts.some((part, i) => part !== parts[i])) {
      last = { parts, body: gzipAsync(Buffer.concat(parts), { level: zlibConstants.Z_BEST_SPEED }) };
      this.compressed.set(openMetrics, last);
    }
    return { contentType, body: await last.body };
  }
}

/**
 * One metric family of the Prometheus text exposition in the OpenMetrics form: a counter family is named without
 * its `_total` (its samples keep it) and no line is blank; the exposition ends with `# EOF`. Done here because
 * prom-client's own OpenMetrics mode renames every counter in place (dropping `_total`), which corrupts every
 * later scrape in the text format.
 */
function familyToOpenMetrics(block: string): string {
  const lines = block.split('\n').filter((line) => line !== '');
  const isCounter = lines.some((line) => line.startsWith('# TYPE ') && line.endsWith(' counter'));
  return lines.map((line) => (isCounter && line.startsWith('# ') ? line.replace(/^(# (?:HELP|TYPE) \S+)_total\b/, '$1') : line)).join('\n') + '\n';
}
