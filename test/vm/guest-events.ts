// The record format between the guest-side runner (guest-runner.ts, inside the VM) and the
// host-side test (kernel-lab.test.ts): one JSON object per line in /out/guest-events.jsonl.

/** A finished guest test or suite, in node:test's completion order (children before parent). */
export interface GuestResult {
  kind: 'result';
  file: string;
  name: string;
  nesting: number;
  suite: boolean;
  passed: boolean;
  skip?: string | boolean;
  todo?: string | boolean;
  /** Set when the test failed only because some subtest failed. */
  subtestsFailed?: boolean;
  error?: string;
  durationMs: number;
}

/** Output a guest test file printed (kept for files that fail before reporting any test). */
export interface GuestOutput {
  kind: 'output';
  file: string;
  text: string;
}

/** Written last: the guest runner finished all files. */
export interface GuestDone {
  kind: 'done';
  durationMs: number;
}

export type GuestRecord = GuestResult | GuestOutput | GuestDone;

export interface GuestTestNode {
  result: GuestResult;
  children: GuestTestNode[];
}

/**
 * Rebuilds each file's test tree from results in completion order: a result at nesting n
 * adopts the results at nesting n+1 that completed since the previous result at nesting n.
 */
export function buildTrees(records: readonly GuestRecord[]): Map<string, GuestTestNode[]> {
  const pendingByFile = new Map<string, GuestTestNode[][]>();
  for (const r of records) {
    if (r.kind !== 'result') continue;
    let pending = pendingByFile.get(r.file);
    if (!pending) pendingByFile.set(r.file, (pending = []));
    const children = pending[r.nesting + 1] ?? [];
    pending[r.nesting + 1] = [];
    (pending[r.nesting] ??= []).push({ result: r, children });
  }
  const trees = new Map<string, GuestTestNode[]>();
  for (const [file, pending] of pendingByFile) trees.set(file, pending[0] ?? []);
  return trees;
}

export function parseRecords(jsonl: string): GuestRecord[] {
  const out: GuestRecord[] = [];
  for (const line of jsonl.split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as GuestRecord);
    } catch {
      // A line cut short by a VM timeout: everything before it still counts.
    }
  }
  return out;
}
