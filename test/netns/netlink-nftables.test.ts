// dataplane/netlink/nftables.ts against the real kernel: nftChainExists answers
// as `nft list chain` does, in a fresh namespace, as its tables and chains come
// and go (the router asks it to find which iptables the host uses); a container's
// multicast table loaded over netlink is what nft loads from the script for it,
// down to the expressions; so is the host firewall table (every kind of rule the
// router writes, IPsec chains included) and its IPsec-only update; a refused
// transaction leaves the table as it was.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { deleteTable, NetlinkError, nftChainExists, replaceChains, replaceTable, type NftFamily } from '../../dataplane/netlink/index.js';
import { applyContainerMulticast, CONTAINER_NFT_TABLE, renderContainerMulticast } from '../../dataplane/host/container-multicast.js';
import { firewallChains, renderFirewall, renderIPsecFirewallUpdate, type FirewallConfig } from '../../dataplane/host/firewall.js';
import { NFT_FAMILY, NFT_TABLE } from '../../dataplane/host/names.js';
import { ipsecChains, type IPsecFirewallEntry } from '../../dataplane/ipsec/index.js';

const ns = `nlf${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;

before(() => execFileSync('ip', ['netns', 'add', ns]));
after(() => execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }));

/** Runs `fn` with a second namespace `name` that exists only meanwhile. */
async function withNamespace(name: string, fn: () => Promise<void>): Promise<void> {
  execFileSync('ip', ['netns', 'add', name]);
  try {
    await fn();
  } finally {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  }
}

const nft = (...args: string[]): void => void execFileSync('ip', ['netns', 'exec', ns, 'nft', ...args]);
const nftLists = (family: NftFamily, table: string, chain: string): boolean =>
  spawnSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'chain', family, table, chain], { stdio: 'ignore' }).status === 0;

const QUERIES: ReadonlyArray<[NftFamily, string, string]> = [
  ['ip', 'filter', 'FORWARD'],
  ['ip', 'filter', 'INPUT'],
  ['ip6', 'filter', 'FORWARD'],
  ['inet', 'filter', 'FORWARD'],
];

async function agreesWithNft(state: string, expected: readonly boolean[]): Promise<void> {
  for (const [i, [family, table, chain]] of QUERIES.entries()) {
    const ours = await nftChainExists(family, table, chain, `/run/netns/${ns}`);
    assert.equal(ours, nftLists(family, table, chain), `${state}: ${family} ${table} ${chain}: nft disagrees`);
    assert.equal(ours, expected[i], `${state}: ${family} ${table} ${chain}`);
  }
}

test('answers as nft list chain does while the table and its chains come and go', async () => {
  await agreesWithNft('no tables', [false, false, false, false]);
  nft('add', 'table', 'ip', 'filter');
  await agreesWithNft('table ip filter without chains', [false, false, false, false]);
  nft('add', 'chain', 'ip', 'filter', 'FORWARD', '{ type filter hook forward priority 0; }');
  await agreesWithNft('ip filter FORWARD', [true, false, false, false]);
  nft('add', 'table', 'ip6', 'filter');
  nft('add', 'chain', 'ip6', 'filter', 'FORWARD', '{ type filter hook forward priority 0; }');
  await agreesWithNft('ip and ip6 filter FORWARD', [true, false, true, false]);
  nft('delete', 'table', 'ip', 'filter');
  await agreesWithNft('ip filter deleted', [false, false, true, false]);
});

test('each namespace is asked on its own', async () => {
  const other = `${ns}b`;
  await withNamespace(other, async () => {
    execFileSync('ip', ['netns', 'exec', other, 'nft', 'add', 'table', 'ip', 'filter']);
    execFileSync('ip', ['netns', 'exec', other, 'nft', 'add', 'chain', 'ip', 'filter', 'FORWARD', '{ type filter hook forward priority 0; }']);
    assert.equal(await nftChainExists('ip', 'filter', 'FORWARD', `/run/netns/${other}`), true);
    assert.equal(await nftChainExists('ip', 'filter', 'FORWARD', `/run/netns/${ns}`), false);
  });
});

/** The table as nft lists it and as nft decodes its expressions, in namespace `netns`. */
function listed(netns: string, table: string, family: NftFamily = 'ip'): string {
  const list = (...flags: string[]): string => execFileSync('ip', ['netns', 'exec', netns, 'nft', ...flags, 'list', 'table', family, table], { encoding: 'utf8' });
  return `${list()}\n${list('--debug=netlink')}`;
}

const tablesIn = (netns: string): string => execFileSync('ip', ['netns', 'exec', netns, 'nft', 'list', 'tables'], { encoding: 'utf8' });

test('a container multicast table loaded over netlink is the one nft loads from its script, and is replaced whole', async () => {
  const byNft = `${ns}n`;
  await withNamespace(byNft, async () => {
    const cases: string[][] = [
      ['10.32.0.7/12'],
      ['10.2.1.1/24', '10.2.1.7/24', '10.0.0.5/8', '10.40.3.9/32', '192.168.77.1/20'],
      ['172.16.0.1/16'],
    ];
    for (const cidrs of cases) {
      execFileSync('ip', ['netns', 'exec', byNft, 'nft', '-f', '-'], { input: renderContainerMulticast('ethwe', cidrs) });
      await applyContainerMulticast(`/run/netns/${ns}`, 'ethwe', cidrs);
      assert.equal(listed(ns, CONTAINER_NFT_TABLE), listed(byNft, CONTAINER_NFT_TABLE), `${cidrs.join(' ')}: the tables differ`);
      // Replaced, not added to: one accept per subnet, then the drop.
      const rules = execFileSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'table', 'ip', CONTAINER_NFT_TABLE], { encoding: 'utf8' })
        .split('\n').filter((l) => l.trim().startsWith('iifname')).map((l) => / (accept|drop)/.exec(l)?.[1]);
      const subnets = cidrs.length === 5 ? 4 : 1; // 10.2.1.1/24 and 10.2.1.7/24 share a subnet
      assert.deepEqual(rules, [...Array<string>(subnets).fill('accept'), 'drop'], `${cidrs.join(' ')}`);
    }
    await applyContainerMulticast(`/run/netns/${ns}`, 'ethwe', []);
    assert.doesNotMatch(tablesIn(ns), /table ip weave/, 'no addresses: no table');
    await applyContainerMulticast(`/run/netns/${ns}`, 'ethwe', []);
  });
});

const IPSEC: IPsecFirewallEntry[] = [
  { localIp: '192.168.1.10', remoteIp: '192.168.1.20', vxlanPort: 6784, spiIn: 0x1234 },
  // A second connection to the same peer from another of our addresses: its own marking rule, shared drops.
  { localIp: '192.168.1.11', remoteIp: '192.168.1.20', vxlanPort: 6784, spiIn: 0xffffffff },
  { localIp: '192.168.1.10', remoteIp: '10.9.8.7', vxlanPort: 6785, spiIn: 0x100 },
];

test('the host firewall table loaded over netlink is the one nft loads from its script, for every kind of rule', async () => {
  const byNft = `${ns}f`;
  await withNamespace(byNft, async () => {
    const cases: Array<[string, FirewallConfig]> = [
      ['a bridge with nothing exposed', { bridge: 'weave', exposed: [] }],
      ['the control port, the Docker bridge, exposed subnets with and without NAT', {
        bridge: 'weave', dockerBridge: 'docker0', controlApi: { address: '127.0.0.1', port: 6784 },
        exposed: [{ cidr: '10.32.0.254/12', masquerade: true }, { cidr: '10.2.1.1/24', masquerade: false }, { cidr: '172.16.5.1/30', masquerade: true }],
      }],
      ['encrypted connections too', { bridge: 'br-x.1', exposed: [{ cidr: '10.40.0.1/16', masquerade: true }], ipsec: IPSEC }],
    ];
    for (const [what, config] of cases) {
      execFileSync('ip', ['netns', 'exec', byNft, 'nft', '-f', '-'], { input: renderFirewall(config) });
      await replaceTable(NFT_FAMILY, NFT_TABLE, firewallChains(config), `/run/netns/${ns}`);
      assert.equal(listed(ns, NFT_TABLE, NFT_FAMILY), listed(byNft, NFT_TABLE, NFT_FAMILY), `${what}: the tables differ`);
    }
    // The IPsec chains replaced alone, the rest kept: to one connection, then to none.
    for (const entries of [IPSEC.slice(2), []]) {
      execFileSync('ip', ['netns', 'exec', byNft, 'nft', '-f', '-'], { input: renderIPsecFirewallUpdate(entries) });
      await replaceChains(NFT_FAMILY, NFT_TABLE, ipsecChains(entries), entries.length > 0, `/run/netns/${ns}`);
      const ours = listed(ns, NFT_TABLE, NFT_FAMILY);
      assert.equal(ours, listed(byNft, NFT_TABLE, NFT_FAMILY), `IPsec update to ${entries.length} connections: the tables differ`);
      assert.match(ours, /masquerade/, 'the rest of the table is kept');
      assert.equal(/10\.9\.8\.7/.test(ours), entries.length > 0);
      assert.equal(/ipsec-out/.test(ours), entries.length > 0, 'no encrypted connection: no IPsec chains');
    }
    assert.equal(await deleteTable(NFT_FAMILY, NFT_TABLE, `/run/netns/${ns}`), true);
    assert.doesNotMatch(tablesIn(ns), /table inet weave/);
    assert.equal(await deleteTable(NFT_FAMILY, NFT_TABLE, `/run/netns/${ns}`), false, 'no table: nothing deleted');
  });
});

test('a transaction the kernel refuses throws its reason and leaves the table as it was', async () => {
  await applyContainerMulticast(`/run/netns/${ns}`, 'ethwe', ['10.32.0.1/12']);
  const before = listed(ns, CONTAINER_NFT_TABLE);
  // Chain names are limited to 255 bytes (NFT_CHAIN_MAXNAMELEN): the chain's message fails after the table's delete.
  const chain = { name: 'c'.repeat(300), base: { type: 'filter', hook: 'input', priority: 0, policy: 'accept' } as const, rules: [] };
  const refused = replaceTable('ip', CONTAINER_NFT_TABLE, [chain], `/run/netns/${ns}`);
  await assert.rejects(refused, (err: unknown) => err instanceof NetlinkError && /replace nftables table ip weave/.test(err.message));
  assert.equal(listed(ns, CONTAINER_NFT_TABLE), before);
  await applyContainerMulticast(`/run/netns/${ns}`, 'ethwe', []);
});
