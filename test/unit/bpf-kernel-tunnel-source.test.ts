// Which kernels tunnel from the source address a peer entry names (Linux 6.0
// added local_ipv4 to bpf_tunnel_key): the eBPF datapath sends heartbeats from
// that address only where its data frames leave from it too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kernelTakesTunnelSource } from '../../dataplane/bpf/fastdp.js';

test('kernels from 6.0 take a tunnel source address; older ones and unreadable releases do not', () => {
  for (const release of ['6.0.0', '6.1.0-57-amd64', '6.18.44-fc-v1272', '7.0.1', '10.2.0']) {
    assert.equal(kernelTakesTunnelSource(release), true, release);
  }
  for (const release of ['5.19.17', '5.15.0-101-generic', '5.14.0-427.el9.x86_64', '4.19.0-26-amd64', '', 'unknown']) {
    assert.equal(kernelTakesTunnelSource(release), false, release);
  }
});
