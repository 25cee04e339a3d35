// Types for the npm package parse-prometheus-text-format (it ships none):
// the prom2json-shaped result of parsing Prometheus text format 0.0.4.
declare module 'parse-prometheus-text-format' {
  export interface PrometheusSeries {
    labels?: Record<string, string>;
    /** Counters, gauges, untyped. */
    value?: string;
    /** Histograms and summaries. */
    buckets?: Record<string, string>;
    quantiles?: Record<string, string>;
    count?: string;
    sum?: string;
  }
  export interface PrometheusFamily {
    name: string;
    help: string;
    type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
    metrics: PrometheusSeries[];
  }
  /** Throws on a line that is not valid text format. */
  export default function parsePrometheusTextFormat(text: string): PrometheusFamily[];
}
