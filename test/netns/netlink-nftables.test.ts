// dataplane/netlink/nftables.ts against the real kernel: nftChainExists answers
// as `nft list chain` does, in a fresh namespace, as its tables and chains come
// and go (the router asks it to find which iptables the host uses).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { nftChainExists, type NftFamily } from '../../dataplane/netlink/index.js';

const ns = `nlf${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;

before(() => execFileSync('ip', ['netns', 'add', ns]));
after(() => execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }));

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
  execFileSync('ip', ['netns', 'add', other]);
  try {
    execFileSync('ip', ['netns', 'exec', other, 'nft', 'add', 'table', 'ip', 'filter']);
    execFileSync('ip', ['netns', 'exec', other, 'nft', 'add', 'chain', 'ip', 'filter', 'FORWARD', '{ type filter hook forward priority 0; }']);
    assert.equal(await nftChainExists('ip', 'filter', 'FORWARD', `/run/netns/${other}`), true);
    assert.equal(await nftChainExists('ip', 'filter', 'FORWARD', `/run/netns/${ns}`), false);
  } finally {
    execFileSync('ip', ['netns', 'del', other], { stdio: 'ignore' });
  }
});
