// weaver, the router daemon: the composition root. Parses flags, claims the
// state directory, picks the peer identity, starts the mesh and the HTTP
// APIs, and shuts everything down on SIGTERM/SIGINT.
import { pino, type Logger } from 'pino';
import type { HttpApi } from '../controlplane/api/http-app.js';
import { addServiceRoutes, buildApiServer, listenApi, type ApiKind } from '../controlplane/api/server.js';
import { WEAVE_VERSION } from '../controlplane/api/version.js';
import { claimPidFile, releasePidFile } from '../controlplane/cli/pid-file.js';
import { statePaths } from '../controlplane/cli/state-paths.js';
import { FlagError, parseWeaverFlags, type LogLevel, type WeaverConfig } from './flags.js';
import { createIdentity, persistShortId, resolvePeerName } from './identity.js';
import { MeshListener, startMesh, type RunningMesh } from './mesh-wiring.js';
import { startDataPlane } from './datapath-wiring.js';
import { TrustedSubnets } from '../controlplane/router/trusted-subnets.js';
import { startHostNetworking, type RunningHostNetwork } from './host-wiring.js';
import { formatPeerName } from '../controlplane/mesh/wire/peer-name.js';
import { loadTargets, saveTargets } from './targets-store.js';
import { startIpam, type RunningIpam } from './ipam-wiring.js';
import { containerGone } from './container-gone.js';
import { startDns, type RunningDns } from './dns-wiring.js';
import type { PluginStart, RunningPlugin } from './docker-wiring.js';
import type { RunningProxy } from './proxy-wiring.js';
import type { ApiServices } from '../controlplane/api/router-control.js';
import { StartingRouter } from './starting-router.js';
import { fixMallocThresholds, mallocTrimIntervalMs, startMallocTrim } from '../dataplane/sys/malloc-trim.js';
import { fullGcCompacts, fullGcIntervalMs, startFullCollections } from '../dataplane/sys/full-gc.js';
import { takeQueuedConnections } from '../dataplane/sys/accept-queue.js';
import { restoreV8Flags } from './v8-flags.cjs';
import { codeCacheWanted, saveCodeCache } from './code-cache.cjs';
import { writeFileAtomic } from '../controlplane/atomic-file.js';
import { once } from '../controlplane/once.js';
import type { ReportServices } from '../controlplane/api/report.js';

/**
 * A router whose first connection is not up this long after it is ready (no
 * peers, or none answering) makes its code cache without one.
 */
const CODE_CACHE_AFTER_READY_MS = 5_000;

const PINO_LEVEL: Record<LogLevel, string> = { debug: 'debug', info: 'info', warning: 'warn', error: 'error' };

function fail(message: string, code: number): never {
  process.stderr.write(`weave: ${message}\n`);
  process.exit(code);
}

function initialTargets(cfg: WeaverConfig, targetsFile: string, logger: Logger): string[] {
  if (cfg.resume) {
    const persisted = loadTargets(targetsFile);
    logger.info(`Restart/resume detected - using persisted peer list: [${persisted.join(' ')}]`);
    return persisted;
  }
  logger.info(`Launch detected - using supplied peer list: [${cfg.peers.join(' ')}]`);
  return cfg.peers;
}

async function main(argv: string[]): Promise<void> {
  const modulesLoadedMs = performance.now();
  let cfg: WeaverConfig;
  try {
    cfg = parseWeaverFlags(argv);
  } catch (err) {
    if (err instanceof FlagError) fail(err.message, 2);
    throw err;
  }
  if (cfg.printVersion) {
    process.stdout.write(`weave ${WEAVE_VERSION}\n`);
    return;
  }
  const paths = statePaths(cfg.stateDir);
  const logger = pino({ level: PINO_LEVEL[cfg.logLevel], base: { pid: process.pid } });
  // Startup phases, in ms since the process started, with the CPU the process has used by then, all its threads
  // together (bench/startup-bench.ts reads them): a mesh starting on few cores waits on the CPU, not the clock.
  const phase = (what: string, ms = performance.now()): void => {
    const { user, system } = process.cpuUsage();
    logger.debug(`startup: ${what} at ${ms.toFixed(0)} ms, cpu ${((user + system) / 1000).toFixed(0)} ms`);
  };
  phase('modules loaded', modulesLoadedMs);
  if (cfg.printPeerName) {
    process.stdout.write(`${formatPeerName(resolvePeerName(paths, cfg.name))}\n`);
    return;
  }
  // Claim the state directory before touching anything in it (another router may own it).
  claimPidFile(paths.pidFile, paths.dir);
  const name = resolvePeerName(paths, cfg.name);
  logger.info(`Command line options: ${cfg.commandLine}`);
  logger.info(`weave ${WEAVE_VERSION}`);
  // The short id is kept across restarts so peers' kernel forwarding state stays valid (spec §4.8).
  const identity = createIdentity(name, cfg.nickname, paths);
  let savedShortId = identity.shortId;
  logger.info({ name: formatPeerName(name), nickname: cfg.nickname, uid: identity.uid.toString() }, 'Our name');
  logger.info(cfg.password === '' ? 'Communication between peers is unencrypted.' : 'Communication between peers via untrusted networks is encrypted.');

  const servers: [HttpApi, ApiKind][] = [];
  let mesh: RunningMesh | undefined;
  let hostNet: RunningHostNetwork | undefined;
  let ipam: RunningIpam | undefined;
  let dns: RunningDns | undefined;
  let plugin: RunningPlugin | undefined;
  let proxy: RunningProxy | undefined;
  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await plugin?.close().catch((err: unknown) => logger.error({ err }, 'closing the Docker plugin'));
    await Promise.allSettled(servers.map(([s]) => s.close()));
    await proxy?.close().catch((err: unknown) => logger.error({ err }, 'closing the Docker API proxy'));
    ipam?.close();
    await dns?.close().catch((err: unknown) => logger.error({ err }, 'closing the DNS server'));
    await mesh?.close().catch((err: unknown) => logger.error({ err }, 'closing the mesh'));
    hostNet?.close();
    releasePidFile(paths.pidFile);
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  try {
    // Freed native memory goes back to the kernel instead of staying resident (dataplane/sys/malloc-trim.ts).
    const trimEveryMs = mallocTrimIntervalMs(process.env);
    // The whole heap collected now and then, started once the router is ready (dataplane/sys/full-gc.ts).
    const gcEveryMs = fullGcIntervalMs(process.env);
    const gcCompacts = fullGcCompacts(process.env);
    /** Bytes as MiB, for the trim and collection debug lines. */
    const mib = (b: number): string => (b / 2 ** 20).toFixed(1);
    if (trimEveryMs > 0) {
      if (!fixMallocThresholds()) logger.debug('malloc thresholds left to the libc: no mallopt');
      startMallocTrim(trimEveryMs, (r) => logger.debug(`malloc_trim: RSS ${mib(r.rssBefore)} -> ${mib(r.rssAfter)} MiB in ${r.ms.toFixed(1)} ms`));
    }
    // The Docker proxy and plugin modules (and the Docker client under them) are loaded only when
    // asked for: most of a router's startup time and memory is module code.
    const proxyWiring = cfg.proxy ? await import('./proxy-wiring.js') : undefined;
    const proxyConfig = proxyWiring?.proxyConfigOf(cfg);
    const log = (m: string): void => logger.info(m);
    // spec §4.5 step 5: the bridge exists before the router and the API start, so a datapath can
    // plug into it and `weave attach` can follow `weave launch`.
    phase('flags and identity');
    // Peers dialling us while the rest starts (host networking, the API, the data plane) wait for our
    // handshake instead of being refused and backing off: the port is the first thing opened.
    const meshListener = await MeshListener.open(cfg.host, cfg.port);
    hostNet = await startHostNetworking(cfg, formatPeerName(name), logger);
    phase('host networking');
    const targets = initialTargets(cfg, paths.targetsFile, logger);
    // The API listens before the data plane loads (most of a start): until everything below
    // runs, the status views answer 503 with what is known, other unknown paths 503 too.
    const starting = new StartingRouter(name, identity.nickName, cfg, targets);
    const services: ApiServices = {
      router: starting,
      version: WEAVE_VERSION,
      host: hostNet.control,
      summarySections: () => [ipam?.summarySection(), dns?.summarySection(), plugin?.summarySection()].filter((s) => s !== undefined),
      // Each section built when the report (or its template) reads it.
      reportServices: () => {
        const sections: ReportServices = {};
        const running = { IPAM: ipam, DNS: dns, Plugin: plugin };
        for (const [key, service] of Object.entries(running)) {
          if (!service) continue;
          const section = once(() => service.reportSection());
          Object.defineProperty(sections, key, { enumerable: true, get: section });
        }
        return sections;
      },
      metrics: () => [...(ipam?.metrics() ?? []), ...(dns?.metrics() ?? []), ...(plugin?.metrics() ?? [])],
    };
    const listeners: [string, ApiKind][] = [
      [cfg.httpAddr, 'control'],
      [cfg.statusAddr, 'status'],
      [cfg.metricsAddr, 'metrics'],
    ];
    for (const [addr, kind] of listeners) {
      if (addr === '') continue;
      const app = buildApiServer(services, kind);
      app.starting = true;
      takeQueuedConnections(app.server); // a burst of CNI ADDs or `weave` calls is taken at once, not one per turn
      try {
        await listenApi(app, addr);
      } catch (err) {
        throw new Error(`Unable to create http listener socket: ${(err as Error).message}`);
      }
      servers.push([app, kind]);
      logger.info({ addr, kind }, 'Listening for HTTP');
    }
    phase('HTTP API listening');
    // Host networking, the data plane and the mesh side by side: the data plane plugs into the
    // bridge, the mesh into the data plane; both decide trust from one TrustedSubnets.
    const trusted = new TrustedSubnets(cfg.trustedSubnets);
    const dataPlane = await startDataPlane({ ourName: name, config: cfg, logger, bridge: hostNet.bridge, mtu: hostNet.mtu, lowerHostMtu: hostNet.lowerMtu, onPeersReachable: hostNet.reannounce, trusted, phase });
    phase('data plane');
    mesh = await startMesh({
      identity,
      config: cfg,
      logger,
      initialTargets: targets,
      onTargetsChanged: (t) => saveTargets(paths.targetsFile, t),
      onShortIdsChanged: (id) => {
        if (id === savedShortId) return;
        try {
          persistShortId(paths, name, id);
          savedShortId = id;
        } catch (err) {
          logger.warn(`cannot save short id ${id}: ${(err as Error).message}`);
        }
      },
      dataPlane,
      trusted,
      listener: meshListener,
      phase,
      // IPAM and weaveDNS gossip from the first connection on: the full state a neighbour sends
      // when we (re)connect is what tells us of names and ranges of our previous incarnation.
      beforeConnecting: async (router) => {
        const meshPort = {
          newGossipChannel: router.newGossipChannel.bind(router),
          isKnownPeer: (p: bigint) => router.peers.get(p) !== undefined,
          onPeerRemoved: (fn: (name: bigint) => void) => router.onPeerRemoved((p) => fn(p.name)),
          onTopologyChanged: (fn: () => void) => router.onTopologyChanged(fn),
        };
        // Docker's view of container ids, once the plugin's watcher is in step with Docker.
        const containerAlive = (ident: string): boolean | undefined => plugin?.isAlive(ident);
        if (cfg.ipam) {
          ipam = startIpam({ options: cfg.ipam, stateDir: paths.dir, identity, mesh: meshPort, initialPeerCount: () => targets.length, containerAlive, log });
        }
        // Its saved names come back beside the first handshakes; awaited below, before the services using it start.
        if (cfg.dns) dns = startDns({ options: cfg.dns, ourName: name, mesh: meshPort, containerAlive, stateDir: paths.dir, log });
      },
    });
    phase('mesh, IPAM and DNS');
    if (dns) {
      await dns.ready;
      phase('DNS names restored and served');
    }
    const running = mesh;
    hostNet.whenAttached((ifname) => running.portAdded(ifname));
    const [ipamNow, dnsNow] = [ipam, dns];
    hostNet.onEndpointGone((label) => containerGone(label, ipamNow, dnsNow));
    if (proxyWiring && proxyConfig) {
      const p = await proxyWiring.startProxy(proxyConfig, { host: hostNet.control, allocator: ipam?.allocator, dns: dns?.service, logger });
      if ('off' in p) logger.info(`Docker API proxy is off: ${p.off}`);
      else proxy = p;
    }
    // Before the router is ready: `weave launch` returns once /status answers 2xx (spec §1.1
    // step 14), and by then the plugin serves and the `weave` network exists.
    const started: PluginStart = cfg.dockerPlugin !== 'off'
      ? await (await import('./docker-wiring.js')).startDockerPlugin({
        config: cfg, env: process.env, hostNet, ipam, dns, ourName: name, log, warn: (m) => logger.warn(m),
      })
      : { off: 'not requested (--plugin is off)' };
    if ('running' in started) plugin = started.running;
    else logger.info(`Docker plugin is off: ${started.off}`);
    phase('proxy and Docker plugin');
    const serviceRoutes: Pick<ApiServices, 'serviceStatus' | 'registerControlRoutes'> = {
      serviceStatus: {
        ...(ipamNow ? { ipam: () => ipamNow.statusText() } : {}),
        ...(dnsNow ? { dns: () => dnsNow.service.statusText() } : {}),
      },
      registerControlRoutes: (app) => {
        ipam?.registerRoutes(app);
        dns?.registerRoutes(app);
        proxy?.registerRoutes(app);
      },
    };
    // Applied while the data plane and the mesh started; the router is not ready without them.
    await hostNet.forwardRulesApplied;
    for (const [app, kind] of servers) {
      addServiceRoutes(app, serviceRoutes, kind);
      app.starting = false;
    }
    starting.started(running);
    phase('ready');
    // Once a start's functions are compiled, its first connection's included (code-cache.cts). The V8
    // flags stay held back until then: V8 would refuse, at the next start, a cache made with them set.
    const codeCacheSaved = !codeCacheWanted() ? Promise.resolve() : new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, CODE_CACHE_AFTER_READY_MS);
      timer.unref();
      void dataPlane.firstConnectionEstablished.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    void codeCacheSaved.then(() => {
      // Not durable: a cache lost to a power cut is made again by the next start.
      const codeCache = saveCodeCache((path, data) => writeFileAtomic(path, data, { durable: false, perProcessTemp: true }));
      if (codeCache) logger.debug(`code cache ${codeCache.use}${codeCache.written ? `, ${codeCache.written} bytes written` : ''}${codeCache.error ? `, not written: ${codeCache.error}` : ''}`);
    });
    // Held back while the modules loaded (start.cts).
    void codeCacheSaved.then(() => {
      const v8Flags = restoreV8Flags();
      if (v8Flags.length > 0) logger.debug(`V8 flags set again: ${v8Flags.join(' ')}`);
      // After the flags for the same reason: --expose-gc changes V8's flag hash (dataplane/sys/full-gc.ts).
      if (gcEveryMs > 0) {
        startFullCollections(gcEveryMs, (r) => logger.debug(`full GC: heap ${mib(r.heapBefore)} -> ${mib(r.heapAfter)} MiB in ${r.ms.toFixed(1)} ms`), gcCompacts);
      }
    });
  } catch (err) {
    logger.fatal((err as Error).message);
    await plugin?.close().catch(() => undefined);
    await Promise.allSettled(servers.map(([s]) => s.close()));
    await proxy?.close().catch(() => undefined);
    ipam?.close();
    await dns?.close().catch(() => undefined);
    await mesh?.close().catch(() => undefined);
    hostNet?.close();
    releasePidFile(paths.pidFile);
    fail((err as Error).message, 1);
  }
}

// Not a top-level await: the bundle is CommonJS (code-cache.cts).
main(process.argv.slice(2)).catch((err: Error) => fail(err.message, 1));
