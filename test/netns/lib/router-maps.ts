// The BPF maps a router holds open. Maps are not per namespace, so a test
// finds a router's maps through its file descriptors (/proc/<pid>/fdinfo).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mustExec } from './exec.js';

/** Ids of the BPF maps the process holds open, ascending. */
export function bpfMapIds(pid: number): number[] {
  const ids = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== 'anon_inode:bpf-map') continue;
      const m = /^map_id:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      // The fd was closed meanwhile.
    }
  }
  return [...ids].sort((a, b) => a - b);
}

/** The process's maps by name (bpftool shows 15 characters of a name) with their ids. */
export async function bpfMapsByName(pid: number): Promise<Map<string, number[]>> {
  const byName = new Map<string, number[]>();
  for (const id of bpfMapIds(pid)) {
    const info = JSON.parse((await mustExec('bpftool', ['-j', 'map', 'show', 'id', String(id)])).stdout) as { name?: string };
    const name = info.name ?? `map${id}`;
    byName.set(name, [...(byName.get(name) ?? []), id]);
  }
  return byName;
}

/** Entries in the process's BPF maps, by map name (arrays count every slot, so only growth shows). */
export async function bpfEntries(pid: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [name, ids] of await bpfMapsByName(pid)) {
    for (const id of ids) {
      const dump = JSON.parse((await mustExec('bpftool', ['-j', 'map', 'dump', 'id', String(id)])).stdout) as unknown[];
      out[name] = (out[name] ?? 0) + dump.length;
    }
  }
  return out;
}
