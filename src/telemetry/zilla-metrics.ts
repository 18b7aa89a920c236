import type { Registry } from 'prom-client';
import { prometheusName, ZILLA_METRICS, type ZillaMetric, type ZillaMetricName } from '../config/index.ts';

// The metrics a Zilla config names (`http.duration`, `stream.opens.received`, ...), kept apart
// from prom-client: a binding adds to a plain number or a bucket array, with no label lookup and
// no allocation, and the series are written out only when scraped, named and labelled as Zilla's
// prometheus exporter names them.

/** Buckets of a histogram, as in Zilla: bucket i holds values from 2^i up to (not including) 2^(i+1). */
export const HISTOGRAM_BUCKETS = 63;

/** The `le` of each bucket as Zilla prints it: 2, 4, ... 2^62, then `+Inf`. */
const BUCKET_LIMITS: readonly string[] = Array.from({ length: HISTOGRAM_BUCKETS }, (_, i) =>
  i === HISTOGRAM_BUCKETS - 1 ? '+Inf' : (1n << BigInt(i + 1)).toString(),
);

const TWO_POW_32 = 2 ** 32;

/** The bucket of a value: the position of its highest bit (0 and 1 go to the first). */
export function bucketOf(value: number): number {
  if (!(value >= 2)) return 0;
  if (value < TWO_POW_32) return 31 - Math.clz32(value);
  return Math.min(Math.floor(Math.log2(value)), HISTOGRAM_BUCKETS - 1);
}

/** A counter or a gauge. */
export class Scalar {
  value = 0;
}

export class Log2Histogram {
  readonly buckets = new Float64Array(HISTOGRAM_BUCKETS);
  sum = 0;
  count = 0;

  observe(value: number): void {
    const bucket = bucketOf(value);
    this.buckets[bucket] = (this.buckets[bucket] ?? 0) + 1;
    this.sum += value;
    this.count += 1;
  }
}

type Instrument = Scalar | Log2Histogram;

const BY_NAME: ReadonlyMap<string, ZillaMetric> = new Map(ZILLA_METRICS.map((m) => [m.name, m]));

/** The instruments of one binding, one per metric it collects. */
export class BindingSeries {
  readonly #instruments = new Map<ZillaMetricName, Instrument>();
  /** Brings counts kept elsewhere (a socket's byte counts) up to date before they are written out. */
  refresh: (() => void) | undefined = undefined;

  constructor(metrics: readonly ZillaMetricName[]) {
    for (const name of metrics) {
      const kind = BY_NAME.get(name)?.kind;
      this.#instruments.set(name, kind === 'histogram' ? new Log2Histogram() : new Scalar());
    }
  }

  /** The counter or gauge of `name`, if the binding collects it. */
  scalar(name: ZillaMetricName): Scalar | undefined {
    const found = this.#instruments.get(name);
    return found instanceof Scalar ? found : undefined;
  }

  /** The histogram of `name`, if the binding collects it. */
  histogram(name: ZillaMetricName): Log2Histogram | undefined {
    const found = this.#instruments.get(name);
    return found instanceof Log2Histogram ? found : undefined;
  }

  get(name: ZillaMetricName): Instrument | undefined {
    return this.#instruments.get(name);
  }

  collectsExactly(metrics: readonly ZillaMetricName[]): boolean {
    const wanted = new Set(metrics);
    return wanted.size === this.#instruments.size && [...wanted].every((name) => this.#instruments.has(name));
  }
}

/** Every binding's series in one registry, written out in Zilla's names on scrape. */
export class ZillaMetrics {
  readonly #bindings = new Map<string, BindingSeries>();

  /**
   * The series of a binding collecting `metrics`. A binding restarted by a reload with the same
   * selection keeps counting where it was; a different selection starts afresh.
   */
  attach(binding: string, metrics: readonly ZillaMetricName[]): BindingSeries {
    const existing = this.#bindings.get(binding);
    if (existing !== undefined && existing.collectsExactly(metrics)) return existing;
    const series = new BindingSeries(metrics);
    this.#bindings.set(binding, series);
    return series;
  }

  /**
   * Prometheus text for every metric some binding collects: `namespace` and `binding` labels,
   * counters with `_total`, byte and millisecond units as suffixes, histograms with Zilla's
   * power-of-two buckets. Only `bindings` are written: one a reload removed keeps its numbers
   * in case it comes back, but is no longer shown. Empty when no binding collects any.
   */
  render(namespace: string, bindings: { has(name: string): boolean }): string {
    const current = [...this.#bindings].filter(([binding]) => bindings.has(binding));
    for (const [, series] of current) series.refresh?.();
    const families: string[] = [];
    for (const metric of ZILLA_METRICS) {
      const lines: string[] = [];
      const name = prometheusName(metric);
      for (const [binding, series] of current) {
        const instrument = series.get(metric.name);
        if (instrument === undefined) continue;
        const labels = `namespace="${namespace}",binding="${binding}"`;
        if (instrument instanceof Scalar) {
          lines.push(`${name}{${labels}} ${instrument.value}`);
          continue;
        }
        let cumulative = 0;
        for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
          cumulative += instrument.buckets[i] ?? 0;
          lines.push(`${name}_bucket{le="${BUCKET_LIMITS[i]}",${labels}} ${cumulative}`);
        }
        lines.push(`${name}_sum{${labels}} ${instrument.sum}`);
        lines.push(`${name}_count{${labels}} ${instrument.count}`);
      }
      if (lines.length === 0) continue;
      families.push(
        [`# HELP ${name} ${metric.description}`, `# TYPE ${name} ${metric.kind}`, ...lines].join('\n'),
      );
    }
    return families.length === 0 ? '' : `${families.join('\n\n')}\n`;
  }
}

const byRegistry = new WeakMap<Registry, ZillaMetrics>();

/** The Zilla metrics kept beside a prom-client registry, served with it. */
export function zillaMetrics(registry: Registry): ZillaMetrics {
  let found = byRegistry.get(registry);
  if (found === undefined) {
    found = new ZillaMetrics();
    byRegistry.set(registry, found);
  }
  return found;
}
