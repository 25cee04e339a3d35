// The sleeve as a datapath kind for the composition root: always available
// (plain UDP and an AF_PACKET capture port), the fallback overlay.
import type { DatapathDescriptor } from '../../controlplane/router/datapath.js';
import { CAPTURE_END, removeCapturePort } from './capture.js';
import { SleeveDatapath } from './datapath.js';

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
    // A router with no connection over the sleeve pays neither the worker's memory nor its start-up.
    lazyWorker: true,
    log: opts.log,
  }),
  teardown: (opts = {}) => removeCapturePort(opts.netns),
};
