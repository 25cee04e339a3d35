// Runs INSIDE the kernel lab VM (driven by test/vm/kernel-lab.test.ts): proves the guest
// kernel offers what the host kernel lacks — the Open vSwitch datapath and ESP with AES-GCM.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mustRun, runCommand, uniqueSuffix } from '../../support/exec.js';

const netns = `wt-lab-${uniqueSuffix()}`;

before(async () => { await mustRun('ip', ['netns', 'add', netns]); });
after(async () => { await runCommand('ip', ['netns', 'del', netns]); });

test('the ovs_datapath generic netlink family exists', async () => {
  const out = await mustRun('ip', ['netns', 'exec', netns, 'genl', 'ctrl', 'get', 'name', 'ovs_datapath']);
  assert.match(out, /Name: ovs_datapath\b/);
  const list = await mustRun('genl', ['ctrl', 'list']);
  for (const family of ['ovs_vport', 'ovs_flow', 'ovs_packet']) assert.match(list, new RegExp(`Name: ${family}\\b`));
});

test('an XFRM ESP state with rfc4106(gcm(aes)) can be created, listed and flushed', async () => {
  // rfc4106 keys are the AES-256 key followed by the 4-byte salt: 36 bytes.
  const key = '0x' + randomBytes(36).toString('hex');
  await mustRun('ip', ['-n', netns, 'xfrm', 'state', 'add', 'src', '10.0.0.1', 'dst', '10.0.0.2', 'proto', 'esp',
    'spi', '0x100', 'reqid', '1', 'mode', 'transport', 'aead', 'rfc4106(gcm(aes))', key, '128']);
  const listed = await mustRun('ip', ['-n', netns, 'xfrm', 'state']);
  assert.match(listed, /src 10\.0\.0\.1 dst 10\.0\.0\.2/);
  assert.match(listed, /proto esp spi 0x00000100 reqid 1 mode transport/);
  assert.match(listed, /aead rfc4106\(gcm\(aes\)\) 0x[0-9a-f]{72} 128/);
  await mustRun('ip', ['-n', netns, 'xfrm', 'state', 'flush']);
  assert.equal((await mustRun('ip', ['-n', netns, 'xfrm', 'state'])).trim(), '');
});
