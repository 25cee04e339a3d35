// One datapath of the registry, opened by its descriptor in the namespace this
// process runs in (`ip netns exec`), as a router would open it. Driven over
// stdin/stdout by the datapath compliance suite (lib/datapath-compliance.ts),
// one JSON message per line; bigints and byte strings are encoded by
// lib/agent-codec.ts. A new process is a router restart.
//
//   node dist/test/netns/datapath-agent.js <kind>
import { createInterface } from 'node:readline';
import type { Datapath, ForwarderParams, ForwardingState, OverlayForwarder } from '../../controlplane/router/datapath.js';
import { DATAPATHS } from '../../weaver/datapath-wiring.js';
import { decodeAgentMessage, encodeAgentMessage, type AgentEvent, type AgentRequest } from './lib/agent-codec.js';

const kind = process.argv[2];
const descriptor = DATAPATHS.find((d) => d.kind === kind);
if (!descriptor) {
  process.stderr.write(`datapath-agent: no datapath kind ${kind}; one of ${DATAPATHS.map((d) => d.kind).join(', ')}\n`);
  process.exit(2);
}

let dp: Datapath | undefined;
const forwarders = new Map<string, OverlayForwarder>();

function emit(e: AgentEvent): void {
  process.stdout.write(encodeAgentMessage(e) + '\n');
}

function opened(): Datapath {
  if (!dp) throw new Error('no datapath is open');
  return dp;
}

async function handle(r: AgentRequest): Promise<unknown> {
  switch (r.op) {
    case 'open':
      dp = await descriptor!.open({ ...r.options, ipsec: false, log: (m) => emit({ ev: 'log', text: m }) });
      return { kind: dp.kind, overlay: dp.overlay, mtu: dp.mtu };
    case 'forwarder': {
      const id = r.id;
      const f = opened().createForwarder(r.params as ForwarderParams, {
        sendControlMessage: (subTag, payload) => emit({ ev: 'control', id, subTag, payload }),
        established: () => emit({ ev: 'established', id }),
        healthChanged: (healthy, reason) => emit({ ev: 'log', text: `forwarder ${id} healthy=${healthy} ${reason ?? ''}` }),
        failed: (err) => emit({ ev: 'failed', id, reason: err.message }),
      });
      forwarders.set(id, f);
      return f.status();
    }
    case 'control':
      forwarders.get(r.id)?.handleControlMessage(r.subTag, r.payload);
      return null;
    case 'stopForwarder':
      forwarders.get(r.id)?.stop();
      forwarders.delete(r.id);
      return null;
    case 'apply':
      opened().applyForwardingState(r.state as ForwardingState);
      return null;
    case 'stats':
      return opened().stats();
    case 'close':
      await dp?.close();
      forwarders.clear();
      return null;
  }
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let r: AgentRequest;
  try {
    r = decodeAgentMessage(line) as AgentRequest;
  } catch (err) {
    emit({ ev: 'log', text: `unreadable request ${JSON.stringify(line)}: ${(err as Error).message}` });
    return;
  }
  handle(r).then(
    (result) => emit({ ev: 'reply', seq: r.seq, ok: true, result }),
    (err: unknown) => emit({ ev: 'reply', seq: r.seq, ok: false, error: (err as Error).stack ?? String(err) }),
  );
});
// The suite closing our stdin is the end of the run; the kernel state stays, as after a router exit.
lines.on('close', () => process.exit(0));
