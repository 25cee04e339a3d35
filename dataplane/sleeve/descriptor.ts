// The sleeve as a datapath kind for the composition root: always available
// (plain UDP and an AF_PACKET capture port), the fallback overlay.
import type { DatapathDescriptor } from '../../controlplane/router/datapath.js';
import { CAPTURE_END, removeCapturePort } from './capture.js';
import { SleeveDatapath } from './datapath.js';
import { intervalFromEnv } from '../sys/interval-env.js';

/**
 * How long no connection must use the sleeve before its packet worker is
 * parked (keeper.ts); WEAVE_SLEEVE_PARK_SEC overrides it, 0 keeps the worker.
 */
export const DEFAULT_SLEEVE_PARK_MS = 60_000;

export const sleeveDatapath: DatapathDescriptor = {
  kind: 'sleeve',
  overlay: 'sleeve',
  interfaceLabel: `${CAPTURE_END} (via pcap)`,
  probe: () => Promise.resolve({ available: true }),
  open: (opts) => SleeveDatapath.create({
    ourName: opts.ourName,
    bridge: opts.bridge,
    port: opts.port,
    ...(opts.bindIp !== undefined ? { bindIp: opts.bindIp } : {}),
    mtu: opts.mtu,
    // The router opens the sleeve with its worker parked, paying neither the worker's memory nor its
    // start-up until needed. Beside a fast datapath the worker starts when a connection falls back to
    // the sleeve; with the sleeve alone every connection is on it from the start, so the worker waits
    // for the first frame.
    workerStart: opts.fallbackOnly === true ? 'sleeve-connection' : 'first-frame',
    parkIdleWorkerAfterMs: intervalFromEnv(process.env, 'WEAVE_SLEEVE_PARK_SEC', DEFAULT_SLEEVE_PARK_MS, 'parking the sleeve worker'),
    log: opts.log,
  }),
  teardown: (opts = {}) => removeCapturePort(opts.netns),
};
