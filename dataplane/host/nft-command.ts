// The nft command, for what is not loaded over netlink (netlink/nftables.ts):
// a workload's policy table (policy-table.ts, rendered by the policy
// controller as an nft script with sets and maps) and listings for people and
// tests.
import { spawn } from 'node:child_process';

export class NftCommandError extends Error {}

export interface NftResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs nft with `args` (and `input` on stdin), in the network namespace at path `netns` when given. */
export function runNft(args: string[], input?: string, netns?: string): Promise<NftResult> {
  return new Promise((resolve, reject) => {
    const argv = netns ? [`--net=${netns}`, '--', 'nft', ...args] : args;
    const child = spawn(netns ? 'nsenter' : 'nft', argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(new NftCommandError(`cannot run nft: ${err.code ?? err.message} (install the nftables package)`));
    });
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}
