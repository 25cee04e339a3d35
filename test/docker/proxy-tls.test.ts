// The Docker API proxy on TCP with TLS, in front of a daemon that itself
// requires TLS client certificates (user-surface spec §7.3.1): the proxy
// verifies its clients and presents the same certificate to the daemon.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDockerd, importBusybox, type Dockerd } from './dockerd.js';
import { createTestbed, type Host, type Testbed } from '../netns/lib/testbed.js';
import { mustWeave, stopRouters } from '../netns/lib/weave.js';
import { mustRun } from '../support/exec.js';

const DAEMON = 'tcp://127.0.0.1:2376';
const PROXY = 'tcp://127.0.0.1:12375';

let bed: Testbed | undefined;
let dockerd: Dockerd | undefined;
let tlsDir = '';
let image = '';

/** A CA and one certificate for 127.0.0.1 usable as server and client, as `docker` setups have. */
async function makeCerts(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const ssl = (args: string[]): Promise<string> => mustRun('openssl', args, { cwd: dir });
  await ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=weave-test-ca']);
  await ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'req.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  await ssl(['x509', '-req', '-in', 'req.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'cert.pem', '-days', '2', '-extfile', 'ext.cnf']);
}

function tlsFlags(withClientCert = true): string[] {
  return ['--tlsverify', `--tlscacert=${join(tlsDir, 'ca.pem')}`,
    ...(withClientCert ? [`--tlscert=${join(tlsDir, 'cert.pem')}`, `--tlskey=${join(tlsDir, 'key.pem')}`] : [])];
}

function host(): Host {
  assert.ok(bed, 'the testbed did not start (see the before hook)');
  return bed.hosts[0];
}

before(async () => {
  bed = await createTestbed({ hosts: 1, underlay: 'bridge' });
  const h = bed.hosts[0];
  tlsDir = join(h.dir, 'tls');
  await makeCerts(tlsDir);
  // The daemon listens in the host's namespace, as the router's proxy does.
  dockerd = await startDockerd({ netns: h.namespace, extraArgs: [...tlsFlags(), '-H', DAEMON] });
  image = await importBusybox(dockerd);
  await mustWeave(h, ['launch', '--nickname', 'h1', '--ipalloc-range', '10.2.0.0/16', '--proxy', '-H', PROXY, ...tlsFlags(), '--docker-api', DAEMON]);
});

after(async () => {
  if (bed) await stopRouters(bed.hosts);
  await dockerd?.stop();
  await bed?.teardown();
});

test('weave env names the TCP proxy; docker --tlsverify through it runs an attached container', async () => {
  const h = host();
  assert.equal(await mustWeave(h, ['env'], { env: { DOCKER_HOST: DAEMON } }), `export DOCKER_HOST=${PROXY} ORIG_DOCKER_HOST=${DAEMON}\n`);
  const r = await h.exec('docker', [...tlsFlags(), '-H', PROXY, 'run', '--rm', image, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'ethwe'], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /ethwe\s+inet 10\.2\.\d+\.\d+\/16/);
  // stdin closed by the client (a TLS close_notify) ends `cat`, and all its output still arrives.
  const payload = randomBytes(512 * 1024).toString('base64');
  const echoed = await h.exec('docker', [...tlsFlags(), '-H', PROXY, 'run', '-i', '--rm', image, 'cat'], { timeoutMs: 120_000, input: payload });
  assert.equal(echoed.code, 0, echoed.stderr);
  assert.equal(createHash('sha256').update(echoed.stdout).digest('hex'), createHash('sha256').update(payload).digest('hex'));
});

test('the TLS proxy refuses clients without a certificate and plain HTTP', async () => {
  const h = host();
  const noCert = await h.exec('docker', [...tlsFlags(false), '-H', PROXY, 'version', '--format', '{{.Server.Version}}'], { timeoutMs: 30_000 });
  assert.notEqual(noCert.code, 0, 'a client without a certificate is refused');
  const plain = await h.exec('docker', ['-H', PROXY, 'version', '--format', '{{.Server.Version}}'], { timeoutMs: 30_000 });
  assert.notEqual(plain.code, 0, 'plain HTTP is refused');
  const ok = await h.exec('docker', [...tlsFlags(), '-H', PROXY, 'version', '--format', '{{.Server.Version}}'], { timeoutMs: 30_000 });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout.trim(), /^\d+\.\d+/);
});
