/** Types for test-only modules that ship none. */
declare module 'parse-prometheus-text-format' {
  /** Parses the Prometheus text exposition format into metric families; throws on malformed input. */
  export default function parsePrometheusTextFormat(text: string): unknown;
}
