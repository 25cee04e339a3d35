// The test side of policy-probe.ts's `serve` mode: asks a probe agent, over
// its unix control socket, to try connections from inside its network
// namespace. The socket is a host path, so it is reachable from outside that
// namespace and not subject to the policy under test.
import { connect } from 'node:net';

/** One connection attempt, as the agent takes it. */
export interface ProbeTarget {
  to: string;
  protocol: 'tcp' | 'udp';
  port: number;
}

/** Has the agent listening on `control` try `targets`; one verdict per target (connected and echoed, or not within `timeoutMs`). */
export function askProbeAgent(control: string, targets: readonly ProbeTarget[], timeoutMs: number): Promise<boolean[]> {
  return new Promise((resolve, reject) => {
    const s = connect(control);
    let buffered = '';
    s.setEncoding('utf8').on('data', (d: string) => {
      buffered += d;
      if (!buffered.includes('\n')) return;
      s.destroy();
      resolve(JSON.parse(buffered) as boolean[]);
    });
    s.on('error', reject);
    s.write(`${JSON.stringify({ targets, timeoutMs })}\n`);
  });
}
