// What the fastdp forwarder unit tests share: a connection's parameters, events
// nobody listens to, and a wait for promise callbacks to run.
import type { ForwarderEvents, ForwarderParams } from '../../controlplane/router/datapath.js';

/** An encrypted connection from 192.0.2.1 to peer 0a:0b:0c:0d:0e:0f at 192.0.2.2; `overrides` change any field. */
export function forwarderParams(overrides: Partial<ForwarderParams> = {}): ForwarderParams {
  return {
    remoteName: 0x0a0b0c0d0e0fn,
    remoteIp: '192.0.2.2',
    remotePort: 6784,
    localIp: '192.0.2.1',
    outbound: true,
    connUID: 0x1234n,
    sessionKey: new Uint8Array(32).fill(7),
    encrypt: true,
    ...overrides,
  };
}

export const IGNORED_EVENTS: ForwarderEvents = {
  sendControlMessage: () => undefined,
  established: () => undefined,
  healthChanged: () => undefined,
  failed: () => undefined,
};

/** Lets pending promise callbacks (and one turn of I/O) run. */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
