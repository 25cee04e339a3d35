// The datapath agent's messages (test/netns/datapath-agent.ts) as JSON lines:
// forwarding state and forwarder parameters carry bigints (peer names, connUID)
// and control messages carry bytes, which JSON has no type for.
import type { DatapathOpenOptions } from '../../../controlplane/router/datapath.js';

export type AgentRequest = { seq: number } & (
  | { op: 'open'; options: Omit<DatapathOpenOptions, 'ipsec' | 'log'> }
  | { op: 'forwarder'; id: string; params: unknown }
  | { op: 'control'; id: string; subTag: number; payload: Uint8Array }
  | { op: 'stopForwarder'; id: string }
  | { op: 'apply'; state: unknown }
  | { op: 'stats' }
  | { op: 'close' }
);

export type AgentEvent =
  | { ev: 'reply'; seq: number; ok: true; result: unknown }
  | { ev: 'reply'; seq: number; ok: false; error: string }
  | { ev: 'control'; id: string; subTag: number; payload: Uint8Array }
  | { ev: 'established'; id: string }
  | { ev: 'failed'; id: string; reason: string }
  | { ev: 'log'; text: string };

export function encodeAgentMessage(m: AgentRequest | AgentEvent): string {
  return JSON.stringify(m, function (this: Record<string, unknown>, key, v: unknown) {
    // A Buffer has already been through its toJSON here: look at the value it came from.
    const raw = this[key];
    if (raw instanceof Uint8Array) return { $bytes: Buffer.from(raw).toString('hex') };
    if (typeof v === 'bigint') return { $bigint: v.toString() };
    return v;
  });
}

export function decodeAgentMessage(line: string): unknown {
  return JSON.parse(line, (_key, v: unknown) => {
    if (typeof v === 'object' && v !== null) {
      if ('$bigint' in v && typeof v.$bigint === 'string') return BigInt(v.$bigint);
      if ('$bytes' in v && typeof v.$bytes === 'string') return new Uint8Array(Buffer.from(v.$bytes, 'hex'));
    }
    return v;
  });
}
