// Which container ids this plugin gave addresses to, one file per id under
// <dataDir>/<network name>/ (as host-local keeps its leases), so GC releases
// only what a CNI ADD took - never a `weave attach`ed or Docker container's
// address. The record is written before the allocation and removed after the
// release, so a crash in between leaves a record for GC, never a silent leak.
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';

export interface AttachmentRecord {
  containerId: string;
  ifname: string;
}

export class AttachmentStore {
  readonly dir: string;

  constructor(dataDir: string, network: string) {
    // A network name is free text: keep it one path segment.
    this.dir = join(dataDir, network.replace(/[^A-Za-z0-9_.-]/g, '_') || '_');
  }

  private file(containerId: string): string {
    return join(this.dir, containerId);
  }

  add(rec: AttachmentRecord): void {
    mkdirSync(this.dir, { recursive: true });
    // Not durable: after a power loss the container and its interface are gone too.
    writeFileAtomic(this.file(rec.containerId), `${rec.ifname}\n`, { durable: false });
  }

  remove(containerId: string): void {
    rmSync(this.file(containerId), { force: true });
  }

  list(): AttachmentRecord[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    return names.filter((n) => !n.endsWith('.tmp')).map((containerId) => {
      let ifname = '';
      try {
        ifname = readFileSync(this.file(containerId), 'utf8').trim();
      } catch {
        // removed meanwhile: an empty ifname still names the id
      }
      return { containerId, ifname };
    });
  }
}
