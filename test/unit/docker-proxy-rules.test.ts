// Pure rules of the Docker API proxy (user-surface spec §7.3.3-7.3.5): the
// attach decision and WEAVE_CIDR grammar, hostname derivation with Go regexp
// semantics, DNS settings, the create rewrite and the /etc/hosts text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideAttach, parseWeaveCidr, WeaveCidrError } from '../../controlplane/docker/attach-decision.js';
import { compileHostnameMatch, dnsSettings, goReplaceAll, hostnameCandidate } from '../../controlplane/docker/hostname.js';
import { renderHostsFile } from '../../controlplane/docker/hosts-file.js';
import { CreateRequestError, rewriteCreate, type CreateRewriteOptions } from '../../controlplane/docker/create-rewrite.js';
import { formatProxyAddress, parseProxyAddress, ProxyAddressError } from '../../controlplane/docker/proxy-listener.js';
import { envLine, proxyHostFromEnv } from '../../controlplane/cli/env-commands.js';

test('network modes: default, bridge and none are attached; host, container: and user networks are not', () => {
  for (const mode of ['', 'default', 'bridge', 'none']) assert.equal(decideAttach(mode, [], false).attach, true, mode);
  for (const mode of ['host', 'container:abc', 'mynet']) {
    const d = decideAttach(mode, [], false);
    assert.equal(d.attach, false);
    assert.equal(!d.attach && d.reason, `Leaving container alone because the container has '--net=${mode}'`);
  }
});

test('WEAVE_CIDR: absent = net:default unless --no-default-ipalloc; none; empty; several tokens', () => {
  assert.deepEqual(decideAttach('', ['A=1'], false), { attach: true, addresses: [{ kind: 'net' }] });
  assert.equal(decideAttach('', ['A=1'], true).attach, false);
  assert.equal(decideAttach('', ['WEAVE_CIDR=none'], false).attach, false);
  assert.deepEqual(decideAttach('', ['WEAVE_CIDR='], true), { attach: true, addresses: [{ kind: 'net' }] });
  assert.deepEqual(parseWeaveCidr('net:default net:10.2.1.0/24 ip:10.2.3.4/24 10.2.5.6/16'), [
    { kind: 'net' }, { kind: 'net', subnet: '10.2.1.0/24' }, { kind: 'cidr', cidr: '10.2.3.4/24' }, { kind: 'cidr', cidr: '10.2.5.6/16' },
  ]);
  assert.throws(() => parseWeaveCidr('10.2.3.4'), WeaveCidrError);
  assert.throws(() => parseWeaveCidr('net:10.2.300.0/24'), /invalid WEAVE_CIDR/);
  assert.throws(() => parseWeaveCidr('net:default bogus'), /"bogus" is not one of/);
});

test('hostname rewriting follows Go ReplaceAllString (empty match after a match is skipped)', () => {
  const all = compileHostnameMatch('(.*)');
  assert.equal(goReplaceAll('c1', all, '$1'), 'c1');
  assert.equal(goReplaceAll('c1', all, 'x-$1'), 'x-c1');
  const named = compileHostnameMatch('^aws-[0-9]+-(?P<name>.*)$');
  assert.equal(goReplaceAll('aws-12-web', named, '${name}'), 'web');
  assert.equal(goReplaceAll('other', named, '${name}'), 'other');
  assert.equal(goReplaceAll('a.b', compileHostnameMatch('\\.'), '$$'), 'a$b');
  const rules = { fromLabel: 'hn', match: all, replacement: '$1' };
  assert.equal(hostnameCandidate('name', { hn: 'fromlabel' }, rules), 'fromlabel');
  assert.equal(hostnameCandidate('name', { hn: '' }, rules), 'name');
});

test('DNS settings: derived hostname and domain, search "." or the domain, too-long names warned', () => {
  const base = { hostname: '', domain: 'weave.local.', dnsServer: '10.2.0.1', dns: ['8.8.8.8'], dnsSearch: [] };
  assert.deepEqual(dnsSettings({ ...base, candidate: 'c1' }), {
    hostname: 'c1', domainname: 'weave.local', dns: ['8.8.8.8', '10.2.0.1'], dnsSearch: ['.'],
  });
  assert.deepEqual(dnsSettings({ ...base, candidate: '' }), { dns: ['8.8.8.8', '10.2.0.1'], dnsSearch: ['weave.local.'] });
  const long = 'x'.repeat(53);
  const s = dnsSettings({ ...base, candidate: long });
  assert.equal(s.hostname, undefined);
  assert.equal(s.warning, `Container name [${long}] too long to be used as hostname`);
  assert.equal(dnsSettings({ ...base, candidate: 'x'.repeat(52) }).hostname, 'x'.repeat(52));
  assert.deepEqual(dnsSettings({ ...base, hostname: 'mine', candidate: 'c1', dnsSearch: ['corp'] }).dnsSearch, ['corp']);
});

function rewriteOpts(image: { Entrypoint?: unknown; Cmd?: unknown } = {}): CreateRewriteOptions & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    waiterDir: '/opt/weavewait/w',
    dns: { domain: 'weave.local.', server: '10.2.0.1' },
    hostnameRules: { fromLabel: '', match: compileHostnameMatch('(.*)'), replacement: '$1' },
    imageCommand: (name) => {
      asked.push(name);
      return Promise.resolve(image);
    },
  };
}

test('create rewrite: waiter bound read-only and put first, image command taken when none given, unknown fields kept', async () => {
  const body: Record<string, unknown> = { Image: 'busybox', Cmd: ['sleep', '1'], Unknown: { x: 1 }, HostConfig: { Binds: ['/a:/b'], Memory: 5 } };
  const opts = rewriteOpts({ Entrypoint: ['/entry'], Cmd: ['ignored'] });
  await rewriteCreate(body, 'c1', opts);
  assert.deepEqual(body.Entrypoint, ['/w/w', '/entry']);
  assert.deepEqual(body.Cmd, ['sleep', '1']);
  assert.deepEqual(body.Unknown, { x: 1 });
  assert.deepEqual(body.HostConfig, { Binds: ['/a:/b', '/opt/weavewait/w:/w:ro'], Memory: 5, Dns: ['10.2.0.1'], DnsSearch: ['.'] });
  assert.equal(body.Hostname, 'c1');
  assert.equal(body.Domainname, 'weave.local');
  // Twice: never prepended twice, one bind.
  await rewriteCreate(body, 'c1', opts);
  assert.deepEqual(body.Entrypoint, ['/w/w', '/entry']);
  assert.deepEqual((body.HostConfig as { Binds: string[] }).Binds, ['/a:/b', '/opt/weavewait/w:/w:ro']);
});

test('create rewrite: image entrypoint/cmd, string commands, and "No command specified"', async () => {
  const fromImage: Record<string, unknown> = { Image: 'img' };
  const o = rewriteOpts({ Entrypoint: null, Cmd: ['/bin/sh'] });
  await rewriteCreate(fromImage, '', o);
  assert.deepEqual(o.asked, ['img']);
  assert.deepEqual(fromImage.Entrypoint, ['/w/w']);
  assert.deepEqual(fromImage.Cmd, ['/bin/sh']);
  assert.equal(fromImage.Hostname, undefined);
  const str: Record<string, unknown> = { Image: 'img', Entrypoint: '/run.sh' };
  await rewriteCreate(str, '', rewriteOpts());
  assert.deepEqual(str.Entrypoint, ['/w/w', '/run.sh']);
  await assert.rejects(rewriteCreate({ Image: 'img' }, '', rewriteOpts({})), (e: unknown) => e instanceof CreateRequestError && e.message === 'No command specified');
  await assert.rejects(rewriteCreate({ Image: 'img', Cmd: 5 }, '', rewriteOpts({})), CreateRequestError);
  await assert.rejects(rewriteCreate({ Image: 'img', Cmd: ['x'], HostConfig: 'bad' }, '', rewriteOpts({})), CreateRequestError);
});

test('/etc/hosts text is Weave\'s, with --add-host entries and FQDN then short name', () => {
  const text = renderHostsFile({ ips: ['10.32.0.2'], hostname: 'c1', domain: 'weave.local', extraHosts: ['static.name:10.9.9.9'] });
  assert.equal(text, [
    '# created by Weave - BEGIN', '# container hostname', '10.32.0.2       c1.weave.local c1', '',
    '# static names added with --add-host', '10.9.9.9        static.name', '',
    '# default localhost entries', '127.0.0.1       localhost', '::1             ip6-localhost ip6-loopback',
    'fe00::0         ip6-localnet', 'ff00::0         ip6-mcastprefix', 'ff02::1         ip6-allnodes', 'ff02::2         ip6-allrouters',
    '# created by Weave - END', '', '',
  ].join('\n'));
  assert.match(renderHostsFile({ ips: ['10.32.0.2'], hostname: 'c1', domain: '', extraHosts: [] }), /^10\.32\.0\.2       c1$/m);
});

test('proxy listen addresses and weave env lines', () => {
  assert.deepEqual(parseProxyAddress('unix:///var/run/weave/weave.sock'), { kind: 'unix', path: '/var/run/weave/weave.sock' });
  assert.deepEqual(parseProxyAddress('/tmp/x.sock'), { kind: 'unix', path: '/tmp/x.sock' });
  assert.deepEqual(parseProxyAddress('tcp://0.0.0.0:12375'), { kind: 'tcp', host: '0.0.0.0', port: 12375 });
  assert.deepEqual(parseProxyAddress(':12375'), { kind: 'tcp', host: '0.0.0.0', port: 12375 });
  assert.equal(formatProxyAddress(parseProxyAddress('127.0.0.1:2375')), 'tcp://127.0.0.1:2375');
  assert.throws(() => parseProxyAddress('unix://relative.sock'), (e: unknown) => e instanceof ProxyAddressError && /absolute path/.test(e.message));
  assert.throws(() => parseProxyAddress('tcp://host:99999'), ProxyAddressError);
  assert.equal(proxyHostFromEnv({ DOCKER_HOST: 'tcp://192.168.1.5:2376' }), '192.168.1.5');
  assert.equal(proxyHostFromEnv({ DOCKER_HOST: 'unix:///var/run/docker.sock' }), '127.0.0.1');
  assert.equal(proxyHostFromEnv({ PROXY_HOST: 'h', DOCKER_HOST: 'tcp://x:1' }), 'h');
  assert.equal(envLine('tcp://1.2.3.4:12375', ''), 'export DOCKER_HOST=tcp://1.2.3.4:12375 ORIG_DOCKER_HOST=\n');
  assert.equal(envLine('unix:///s', 'unix:///s'), 'export DOCKER_HOST=unix:///s \n');
});
