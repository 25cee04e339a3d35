// weave-npc refuses bad arguments and an unreadable Kubernetes client
// configuration with one `weave-npc:` line and exit status 2, before it
// touches the host. Run as installed (bin/weave-npc, the bundle).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const NPC = fileURLToPath(new URL('../../../bin/weave-npc', import.meta.url));

function npc(args: string[]): { status: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [NPC, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

test('weave-npc: bad arguments and an unreadable kubeconfig give one clear line and exit 2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weave-npc-args-'));
  try {
    const broken = join(dir, 'kubeconfig');
    writeFileSync(broken, 'clusters: [\n');
    const cases: Array<{ args: string[]; says: RegExp }> = [
      { args: [], says: /^weave-npc: give --policy-dir DIR .* or --kube/ },
      { args: ['--bogus'], says: /^weave-npc: Unknown option '--bogus'/ },
      { args: ['--policy-dir', dir, '--kube'], says: /^weave-npc: --policy-dir and --kube are exclusive/ },
      { args: ['--policy-dir', dir, '--resync-interval', 'soon'], says: /^weave-npc: --resync-interval must be a positive number of seconds, not "soon"/ },
      { args: ['--kube', '--kubeconfig', join(dir, 'absent')], says: /^weave-npc: cannot read the Kubernetes client configuration --kubeconfig .*absent: ENOENT/ },
      { args: ['--kube', '--kubeconfig', broken], says: /^weave-npc: cannot read the Kubernetes client configuration --kubeconfig .*kubeconfig: / },
    ];
    for (const { args, says } of cases) {
      const r = npc(['--metrics-addr', '', ...args]);
      assert.equal(r.status, 2, `weave-npc ${args.join(' ')}: exit status\n${r.stderr}`);
      assert.match(r.stderr, says, `weave-npc ${args.join(' ')}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, `weave-npc ${args.join(' ')}: no stack trace`);
      assert.equal(r.stdout, '');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
