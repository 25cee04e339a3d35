// Reading /metrics as Prometheus would (an independent text-format parser),
// and checking a Grafana dashboard's queries against what /metrics serves.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format';

export interface ScrapedFamily {
  type: PrometheusFamily['type'];
  help: string;
  /** Label names of every series, sorted (histograms: without `le`). */
  labelNames: Set<string>;
  series: { labels: Record<string, string>; value: number }[];
}

/** Parses /metrics output; fails the test on anything the text format does not allow, or a family named twice. */
export function scrapeFamilies(text: string): Map<string, ScrapedFamily> {
  const out = new Map<string, ScrapedFamily>();
  for (const f of parsePrometheusTextFormat(text)) {
    assert.ok(!out.has(f.name), `${f.name} appears twice`);
    const series = f.metrics.map((m) => {
      const raw = m.value ?? m.count ?? '';
      // prom-client writes NaN as "Nan" (an event-loop histogram with no samples yet); Prometheus reads any case.
      assert.ok(/^nan$/i.test(raw) || !Number.isNaN(Number(raw)), `${f.name}: sample value ${raw}`);
      return { labels: m.labels ?? {}, value: Number(raw) };
    });
    out.set(f.name, { type: f.type, help: f.help, labelNames: new Set(series.flatMap((s) => Object.keys(s.labels))), series });
  }
  // The parser keeps the last of two samples of one series, and merges a histogram's label sets
  // (nodejs_gc_duration_seconds by kind): each sample line's series, labels in any order, must be new.
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const key = seriesKey(line);
    assert.ok(!seen.has(key), `a series appears twice: ${key}`);
    seen.add(key);
  }
  return out;
}

/** A sample line's metric name and label pairs, sorted: `name{a="1",b="2"}`. */
function seriesKey(line: string): string {
  const brace = line.indexOf('{');
  const space = line.indexOf(' ');
  if (brace < 0 || (space >= 0 && space < brace)) return line.slice(0, space < 0 ? line.length : space);
  const end = line.lastIndexOf('}');
  const pairs = [...line.slice(brace + 1, end).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => `${m[1]}="${m[2]}"`).sort();
  return `${line.slice(0, brace)}{${pairs.join(',')}}`;
}

/** The Grafana dashboard shipped for Weave's metrics. */
export const DASHBOARD_PATH = fileURLToPath(new URL('../../../k8s/grafana-dashboard.json', import.meta.url));

interface Panel { title?: string; panels?: Panel[]; targets?: { expr?: string }[] }

/** Every PromQL expression of the dashboard's panels (rows included), with its panel's title. */
export function dashboardQueries(path = DASHBOARD_PATH): { panel: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(path, 'utf8')) as { panels?: Panel[] };
  const out: { panel: string; expr: string }[] = [];
  const visit = (panels: Panel[] | undefined): void => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) if (t.expr) out.push({ panel: p.title ?? '(untitled)', expr: t.expr });
      visit(p.panels);
    }
  };
  visit(dashboard.panels);
  return out;
}

const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/**
 * The series selectors of a PromQL expression: metric name and the label
 * names its matchers and its aggregations' `by (...)` name. Enough PromQL for
 * dashboards (no string literals outside matchers, no subqueries).
 */
export function promqlSelectors(expr: string): { metric: string; labels: string[] }[] {
  const grouping = [...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) => m[1].split(',').map((l) => l.trim()).filter(Boolean));
  const bare = expr.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ').replace(/\[[^\]]*\]/g, ' ');
  const out: { metric: string; labels: string[] }[] = [];
  for (const m of bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?(\s*\()?/g)) {
    const [, name, matchers, call] = m;
    if (call || PROMQL_KEYWORDS.has(name.toLowerCase()) || /^\d/.test(name)) continue;
    // A number like 1e3 or a duration is not a name; names in a dashboard are snake_case with an underscore.
    if (!name.includes('_')) continue;
    const labels = [...(matchers ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]);
    out.push({ metric: name, labels: [...labels, ...grouping] });
  }
  return out;
}

/** Asserts every metric a dashboard query names is served, with the labels the query uses. */
export function assertDashboardServed(families: ReadonlyMap<string, ScrapedFamily>, path = DASHBOARD_PATH): number {
  let checked = 0;
  for (const { panel, expr } of dashboardQueries(path)) {
    const selectors = promqlSelectors(expr);
    assert.ok(selectors.length > 0, `${panel}: no metric in ${expr}`);
    for (const { metric, labels } of selectors) {
      // Histogram series are queried by their _bucket/_sum/_count names.
      const family = families.get(metric) ?? families.get(metric.replace(/_(bucket|sum|count)$/, ''));
      assert.ok(family, `${panel}: ${metric} (in ${expr}) is not in /metrics`);
      for (const l of labels) if (l !== 'le' && l !== 'instance' && l !== 'job') assert.ok(family.labelNames.has(l), `${panel}: ${metric} has no label ${l} (in ${expr})`);
      checked++;
    }
  }
  return checked;
}
