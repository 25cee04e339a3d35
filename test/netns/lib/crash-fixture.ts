// A child process for the cleanup tests: builds a small testbed, prints its
// prefix as one JSON line, then ends badly in the way argv[2] asks:
//   throw  — an uncaught exception        wait — stays up until signalled
// In every case the testbed's namespaces must not outlive the process (for
// SIGKILL, only sweepStale() can help, and the test checks that too).
import { createTestbed } from './testbed.js';

const mode = process.argv[2] ?? 'throw';
const bed = await createTestbed({ hosts: 2, underlay: 'bridge' });
await bed.host(1).addContainer('c1');
bed.host(2).spawn('sleep', ['300']);
process.stdout.write(JSON.stringify({ prefix: bed.prefix, dir: bed.dir }) + '\n');
if (mode === 'throw') {
  throw new Error('crash-fixture: deliberate failure after creating the testbed');
}
// 'wait': keep the event loop alive until a signal arrives.
setInterval(() => undefined, 1000);
