// The startup bench's poller, run inside the new router's namespace: it asks
// the router's API every POLL_MS and prints the wall-clock ms at which the API
// first answered (`api <ms>`) and at which /report first listed an established
// connection (`established <ms>`). One process with no fork per poll, so it
// takes little of the CPU the router it times is starting on (a shell running
// curl every 10 ms took a large part of a core). Prints `polling` once it runs;
// exits 1 if the API never answers and 2 if nothing is established in time.
//
//   node dist/bench/startup-poller.js <host:port> <timeout s>
import { request } from 'node:http';

const POLL_MS = 10;
const ESTABLISHED = /"State": *"established"/;
const [api = '127.0.0.1:6784', timeoutText = '60'] = process.argv.slice(2);
const deadline = Date.now() + Number(timeoutText) * 1000;

/** The response body, or undefined when nothing answered (refused, reset, timed out). */
function get(path: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request(`http://${api}${path}`, { timeout: 1000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve(body)).on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy()).on('error', () => resolve(undefined)).end();
  });
}

const pause = (): Promise<void> => new Promise((r) => setTimeout(r, POLL_MS));

async function until(path: string, done: (body: string) => boolean, label: string, failCode: number): Promise<void> {
  for (;;) {
    const body = await get(path);
    if (body !== undefined && done(body)) {
      process.stdout.write(`${label} ${Date.now()}\n`);
      return;
    }
    if (Date.now() > deadline) process.exit(failCode);
    await pause();
  }
}

process.stdout.write('polling\n');
await until('/status', () => true, 'api', 1);
await until('/report', (body) => ESTABLISHED.test(body), 'established', 2);
