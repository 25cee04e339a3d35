// Weave 2.8 router flags this router does not implement (user-surface spec
// §4.1-4.2). A migrating user's script may pass them; running on as if they
// had been honoured would change what the network does without a word, so
// each one given with an effect stops the router with a message saying why
// and what to use instead. A flag given with its no-op value (e.g.
// `--pkt-debug=false`, `--datapath datapath`, which `weave launch` always
// passes) changes nothing and is accepted.
import { ODP_DATAPATH } from '../dataplane/host/names.js';

type FlagValue = string | boolean | string[];

interface Refusal {
  /** True when the value asks for behaviour this router does not have. */
  refuses(value: FlagValue): boolean;
  message: string;
}

const given = (v: FlagValue): boolean => v === true || (typeof v === 'string' && v !== '');

const WEAVE_CLOUD =
  'Weave Cloud peer discovery (--token, --peer-discovery-url, --advertise-address) is not supported: ' +
  'the service it used is gone; give the peers as arguments to weave launch, or add them later with weave connect';

/** Flag name -> when and why it is refused. */
export const REFUSED_FLAGS: Readonly<Record<string, Refusal>> = {
  datapath: {
    refuses: (v) => v !== ODP_DATAPATH,
    message:
      `naming the datapath is not supported: the Open vSwitch datapath is always named "${ODP_DATAPATH}" here (weave reset and weave report look for that name); ` +
      `give --datapath=${ODP_DATAPATH} or leave the flag out, and use --no-fastdp for a sleeve-only router`,
  },
  'no-bridged-fastdp': {
    refuses: given,
    message:
      'Weave\'s legacy non-bridged mode (the bridge "weave" itself being the ODP datapath) is not supported: ' +
      'the fast datapath always runs bridged (bridge "weave" plus datapath "datapath") and carries the same traffic; ' +
      'drop the flag and unset WEAVE_NO_BRIDGED_FASTDP',
  },
  'no-masq-local': {
    refuses: given,
    message:
      'keeping outside clients\' source addresses towards local containers is not supported: exposed subnets are ' +
      'masqueraded both ways as with Weave\'s default; drop the flag (on Kubernetes set NO_MASQ_LOCAL=0)',
  },
  awsvpc: {
    refuses: given,
    message:
      'AWS VPC route-table mode (no overlay) is not supported: run the overlay (fast datapath or sleeve) on AWS as on ' +
      'any other network; drop the flag and unset AWSVPC',
  },
  token: { refuses: given, message: WEAVE_CLOUD },
  'peer-discovery-url': { refuses: given, message: WEAVE_CLOUD },
  'advertise-address': { refuses: given, message: WEAVE_CLOUD },
  'pkt-debug': {
    refuses: given,
    message:
      'per-packet logging is not supported: use --log-level=debug for the router\'s forwarding decisions, and tcpdump ' +
      'on the bridge "weave" (or on the underlay, UDP ports 6783/6784) for the packets themselves',
  },
  profile: {
    refuses: given,
    message:
      'CPU profiles through this flag are not supported; the router is a Node.js program, so use Node\'s own ' +
      'profiler: NODE_OPTIONS="--cpu-prof --cpu-prof-dir=<dir>" writes a .cpuprofile when it exits',
  },
  bufsz: {
    // Any value: there is no pcap capture here whose buffer it could size.
    refuses: () => true,
    message:
      'sizing the pcap capture buffer is not supported: there is no pcap here, the sleeve reads frames from the ' +
      'bridge through a packet socket; drop the flag',
  },
};

/** The message for the first refused flag in `raw`, else undefined. */
export function refusedFlag(raw: ReadonlyMap<string, FlagValue>): string | undefined {
  for (const [name, value] of raw) {
    const r = REFUSED_FLAGS[name];
    if (r?.refuses(value)) {
      const shown = typeof value === 'boolean' ? `--${name}` : `--${name}=${name === 'token' ? '<redacted>' : String(value)}`;
      return `${shown}: ${r.message}`;
    }
  }
  return undefined;
}
