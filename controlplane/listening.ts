// A seam for the stream servers the control plane opens (weaveDNS over TCP,
// the Docker plugins): the composition root gives each to the data plane's
// accept-queue drain (dataplane/sys/accept-queue.ts), which the control plane
// may not import.
import type { Server } from 'node:net';

/** Called with a stream server before it listens. */
export type OnListening = (server: Server) => void;
