// Starting the sleeve packet worker before its datapath exists.
//
// A worker thread boots its own Node instance and loads its own modules: about
// 100 ms on a quiet host, on the path of a router's first connection, which
// always starts on the sleeve. A router that will dial at once (peers on its
// command line, or --resume) starts the worker as soon as its API listens, so
// the worker boots while the data plane opens and the first handshake runs;
// the SleeveDatapath, created later, adopts it and sends it its WorkerConfig.
// (Started any earlier, the boot competed with the router's own module loading
// and the API answered ~50 ms later.)
import { Worker } from 'node:worker_threads';
import type { FromWorker } from './worker-protocol.js';
import { SLEEVE_WORKER_RESOURCE_LIMITS, SLEEVE_WORKER_URL } from './worker-url.js';

let prestarted: Worker | undefined;
let failed = false;
const onFailure = (): void => {
  failed = true;
};
/** Settles once the prestarted worker has loaded its modules or died; settled when none was prestarted. */
let loaded: Promise<void> = Promise.resolve();

/** Starts the packet worker with no configuration, once; returns its thread id. */
export function prestartSleeveWorker(): number {
  if (prestarted) return prestarted.threadId;
  const worker = new Worker(SLEEVE_WORKER_URL, { workerData: null, resourceLimits: SLEEVE_WORKER_RESOURCE_LIMITS });
  loaded = new Promise((resolve) => {
    const onMessage = (m: FromWorker): void => {
      if (m.t !== 'loaded') return;
      worker.off('message', onMessage);
      resolve();
    };
    worker.on('message', onMessage);
    worker.once('exit', () => resolve());
  });
  // Not adopted yet, it must neither keep the process alive nor crash it: a
  // worker that failed is replaced by a fresh one that reports the failure.
  worker.unref();
  worker.once('error', onFailure);
  worker.once('exit', onFailure);
  prestarted = worker;
  return worker.threadId;
}

/** Settles once the worker prestartSleeveWorker started has loaded its modules (or died); at once when none was started. */
export function prestartedWorkerLoaded(): Promise<void> {
  return loaded;
}

/** Whether a prestarted worker is waiting to be adopted. */
export function hasPrestartedWorker(): boolean {
  return prestarted !== undefined && !failed;
}

/**
 * The prestarted worker, handed over once; undefined when none was started or
 * it died. The caller sends it a WorkerConfigMessage and owns it from then on.
 */
export function adoptPrestartedWorker(): Worker | undefined {
  const worker = prestarted;
  if (!worker || failed) {
    discardPrestartedWorker();
    return undefined;
  }
  prestarted = undefined;
  worker.off('error', onFailure);
  worker.off('exit', onFailure);
  worker.ref();
  return worker;
}

/** Forgets a prestarted worker that died, ending whatever is left of it. */
function discardPrestartedWorker(): void {
  const worker = prestarted;
  prestarted = undefined;
  failed = false;
  if (worker) void worker.terminate();
}
