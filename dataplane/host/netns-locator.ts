// Finds the network namespace holding a given IPv4 address among the named
// namespaces (/run/netns, where CNI runtimes — containerd, CRI-O, podman —
// keep pod namespaces). The Kubernetes source learns pods' addresses from the
// API but not their namespaces; the address on an interface inside a
// namespace on this host is what makes a pod local. A namespace's addresses
// are read once (`ip -n NAME -4 -o addr show`) and cached by its inode, so a
// refresh costs one listing plus one read per new namespace.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

export const NAMED_NETNS_DIR = '/run/netns';

/** Runs a command, collecting stdout; a command that cannot run gives code 127. */
export function runCommand(cmd: string, args: readonly string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', () => resolve({ code: 127, stdout: '' }));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: out }));
  });
}

async function addressesIn(name: string): Promise<string[]> {
  const r = await runCommand('ip', ['-n', name, '-4', '-o', 'addr', 'show']);
  return [...r.stdout.matchAll(/\binet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1] as string).filter((a) => !a.startsWith('127.'));
}

export class NetnsLocator {
  private readonly known = new Map<string, { ino: number; addresses: string[] }>();
  private byAddress = new Map<string, string>();

  constructor(private readonly dir = NAMED_NETNS_DIR) {}

  /** Re-lists the namespaces; reads the addresses of new (or replaced) ones. */
  async refresh(): Promise<void> {
    let names: string[] = [];
    try {
      names = readdirSync(this.dir);
    } catch {
      names = [];
    }
    const seen = new Set<string>();
    for (const name of names) {
      let ino: number;
      try {
        ino = statSync(join(this.dir, name)).ino;
      } catch {
        continue;
      }
      seen.add(name);
      const cached = this.known.get(name);
      if (cached && cached.ino === ino && cached.addresses.length > 0) continue;
      this.known.set(name, { ino, addresses: await addressesIn(name) });
    }
    for (const name of [...this.known.keys()]) if (!seen.has(name)) this.known.delete(name);
    const byAddress = new Map<string, string>();
    for (const [name, k] of this.known) for (const a of k.addresses) byAddress.set(a, join(this.dir, name));
    this.byAddress = byAddress;
  }

  /** The path of the namespace holding `address` at the last refresh. */
  pathOf(address: string): string | undefined {
    return this.byAddress.get(address);
  }
}
