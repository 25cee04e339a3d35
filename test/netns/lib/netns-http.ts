// HTTP GET to a server inside a network namespace from this process: the
// socket is made in the namespace (setns around socket(2)), then handed to
// Node. Benchmarks polling many routers use it instead of spawning
// `ip netns exec curl` per request, which on a loaded 2-core machine took
// longer than what they measured.
import { Socket } from 'node:net';
import * as libc from '../../../dataplane/sys/libc.js';
import { AF_INET, SOCK_STREAM, connectInet } from '../../../dataplane/sys/sockets.js';
import { withNetns } from '../../../dataplane/netlink/netns.js';

export interface NetnsHttpReply {
  status: number;
  body: string;
}

/** GET http://ip:port<path> from inside `netnsPath`; undefined when nothing answers or the reply does not come within `timeoutMs`. */
export function httpGetInNetns(netnsPath: string, ip: string, port: number, path: string, timeoutMs = 5000): Promise<NetnsHttpReply | undefined> {
  let fd: number;
  try {
    fd = withNetns(netnsPath, () => libc.socket(AF_INET, SOCK_STREAM | libc.SOCK_CLOEXEC, 0));
  } catch {
    return Promise.resolve(undefined);
  }
  if (fd < 0) return Promise.resolve(undefined);
  try {
    // Loopback in the namespace: a listening server accepts at once, a missing one refuses at once.
    connectInet(fd, ip, port, 'HTTP client');
  } catch {
    libc.close(fd);
    return Promise.resolve(undefined);
  }
  return new Promise((resolve) => {
    const socket = new Socket({ fd, readable: true, writable: true });
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, timeoutMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const whole = Buffer.concat(chunks);
      const split = whole.indexOf('\r\n\r\n');
      const head = split >= 0 ? whole.subarray(0, split).toString('latin1') : '';
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      const body = whole.subarray(split + 4);
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      // A reply cut short (the timeout, a reset) is no reply.
      const complete = !timedOut && status !== null && (length === null || Number(length[1]) === body.length);
      resolve(complete ? { status: Number(status[1]), body: body.toString('utf8') } : undefined);
    });
    // HTTP/1.0: the server closes the connection after its reply, which ends the read.
    socket.end(`GET ${path} HTTP/1.0\r\nHost: ${ip}:${port}\r\n\r\n`);
  });
}
