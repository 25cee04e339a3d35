// A tiny TCP/UDP prober run inside container namespaces by the policy tests.
//
//   node policy-probe.js serve '{"tcp":[80],"udp":[53],"addresses":["10.32.1.1"],"control":"/tmp/x.sock"}'
//        echo servers (UDP bound per address, so a reply leaves from the address asked);
//        prints "ready" once listening. On the unix socket `control` (reachable from
//        outside the namespace, and not subject to the policy under test) each line
//        {"targets":[{"to":"10.32.1.2","protocol":"tcp","port":80}],"timeoutMs":700}
//        gets back a line with a JSON array of booleans (connected and echoed / not).
//   node policy-probe.js probe '[{"to":"10.32.1.2","protocol":"tcp","port":80}]' <timeoutMs>
//        the same, once, on stdout
//   node policy-probe.js hold '{"to":"10.32.1.2","port":80}'   one TCP connection kept open;
//        prints "echo <n>" for every round trip (every 100 ms) and "closed <reason>" at the end
import { createServer, connect } from 'node:net';
import { createSocket } from 'node:dgram';

interface Target { to: string; protocol: 'tcp' | 'udp'; port: number }

interface ServeSpec { tcp?: number[]; udp?: number[]; addresses?: string[]; control?: string }

function serve(spec: ServeSpec): void {
  const addresses = spec.addresses ?? ['0.0.0.0'];
  let pending = (spec.tcp?.length ?? 0) + (spec.udp?.length ?? 0) * addresses.length + (spec.control ? 1 : 0);
  const ready = (): void => {
    if (--pending === 0) process.stdout.write('ready\n');
  };
  for (const port of spec.tcp ?? []) createServer((s) => s.on('error', () => undefined).pipe(s)).listen(port, '0.0.0.0', ready);
  for (const port of spec.udp ?? []) {
    for (const address of addresses) {
      const sock = createSocket('udp4');
      sock.on('message', (m, from) => sock.send(m, from.port, from.address));
      sock.bind(port, address, ready);
    }
  }
  if (spec.control) {
    createServer((conn) => {
      let buffered = '';
      conn.setEncoding('utf8').on('data', (d: string) => {
        buffered += d;
        let nl;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          const req = JSON.parse(line) as { targets: Target[]; timeoutMs: number };
          void probeAll(req.targets, req.timeoutMs).then((r) => conn.write(`${JSON.stringify(r)}\n`));
        }
      });
      conn.on('error', () => undefined);
    }).listen(spec.control, ready);
  }
}

function tryTcp(t: Target, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: t.to, port: t.port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    // Connected and echoed: the reply direction works too.
    s.on('connect', () => s.write('x'));
    s.on('data', () => done(true));
    s.on('error', () => done(false));
  });
}

function tryUdp(t: Target, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      s.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.on('message', () => done(true));
    s.on('error', () => done(false));
    s.send('x', t.port, t.to);
  });
}

function probeAll(targets: Target[], timeoutMs: number): Promise<boolean[]> {
  return Promise.all(targets.map((t) => (t.protocol === 'tcp' ? tryTcp(t, timeoutMs) : tryUdp(t, timeoutMs))));
}

async function probe(targets: Target[], timeoutMs: number): Promise<void> {
  process.stdout.write(`${JSON.stringify(await probeAll(targets, timeoutMs))}\n`);
}

function hold(t: { to: string; port: number }): void {
  const s = connect({ host: t.to, port: t.port });
  let n = 0;
  let timer: NodeJS.Timeout | undefined;
  s.on('connect', () => {
    timer = setInterval(() => s.write('x'), 100);
  });
  s.on('data', (d) => {
    n += d.length;
    process.stdout.write(`echo ${n}\n`);
  });
  s.on('error', (err) => process.stdout.write(`closed ${err.message}\n`));
  s.on('close', () => {
    if (timer) clearInterval(timer);
    process.stdout.write('closed\n');
    process.exit(0);
  });
}

const [mode, arg, timeout] = process.argv.slice(2);
if (mode === 'serve') serve(JSON.parse(arg ?? '{}') as ServeSpec);
else if (mode === 'probe') await probe(JSON.parse(arg ?? '[]') as Target[], Number(timeout ?? 1000));
else if (mode === 'hold') hold(JSON.parse(arg ?? '{}') as { to: string; port: number });
else {
  process.stderr.write('usage: policy-probe serve|probe|hold JSON [timeoutMs]\n');
  process.exit(2);
}
