// The CNI environment (CNI spec 1.1 "Parameters"): which variables each
// command needs. Weave's plugin named each missing one on stderr and failed
// with "required env variables missing" (user-surface spec §7.4).
import { CniError, CniErrorCode } from './errors.js';

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'] as const;
export type CniCommand = (typeof COMMANDS)[number];

export interface CniEnvironment {
  command: CniCommand;
  containerId: string;
  /** Absent on DEL when the runtime no longer has the namespace. */
  netns?: string;
  ifname: string;
  /** `K=V;K=V` from CNI_ARGS. */
  args: Map<string, string>;
  /** Directories to look for delegated plugins in. */
  path: string[];
}

/** Variables each command requires (CNI spec 1.1: CNI_NETNS is optional for DEL). */
const REQUIRED: Record<CniCommand, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  GC: ['CNI_PATH'],
  STATUS: ['CNI_PATH'],
  VERSION: [],
};

/** Container ids: the spec allows alphanumerics, '_', '.', '-', starting with an alphanumeric. */
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function parseArgs(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const pair of text.split(';')) {
    if (pair === '') continue;
    const i = pair.indexOf('=');
    if (i <= 0) throw new CniError(CniErrorCode.InvalidEnvironment, `CNI_ARGS: invalid pair ${JSON.stringify(pair)} (expected K=V)`);
    out.set(pair.slice(0, i), pair.slice(i + 1));
  }
  return out;
}

/**
 * Reads the environment. `missing` gets one line per absent variable (for
 * stderr) before the error is thrown.
 */
export function readEnvironment(env: NodeJS.ProcessEnv, missing: (line: string) => void = () => undefined): CniEnvironment {
  const command = env.CNI_COMMAND ?? '';
  if (command === '') {
    missing('CNI_COMMAND env variable missing');
    throw new CniError(CniErrorCode.InvalidEnvironment, 'required env variables missing');
  }
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new CniError(CniErrorCode.UnknownCommand, `unknown CNI_COMMAND: ${command}`);
  }
  const cmd = command as CniCommand;
  const absent = REQUIRED[cmd].filter((k) => (env[k] ?? '') === '');
  for (const k of absent) missing(`${k} env variable missing`);
  if (absent.length > 0) throw new CniError(CniErrorCode.InvalidEnvironment, 'required env variables missing', absent.join(' '));
  // libcni validates a config by running VERSION with placeholder values (CNI_NETNS=dummy): VERSION reads nothing else.
  if (cmd === 'VERSION') return { command: cmd, containerId: '', ifname: '', args: new Map(), path: [] };
  const containerId = env.CNI_CONTAINERID ?? '';
  if (containerId !== '' && !CONTAINER_ID.test(containerId)) {
    throw new CniError(CniErrorCode.InvalidEnvironment, `invalid CNI_CONTAINERID ${JSON.stringify(containerId)}`, 'letters, digits, "_", "." or "-", starting with a letter or digit');
  }
  const ifname = env.CNI_IFNAME ?? '';
  if (ifname !== '' && !/^[^\s/:]{1,15}$/.test(ifname)) {
    throw new CniError(CniErrorCode.InvalidEnvironment, `invalid CNI_IFNAME ${JSON.stringify(ifname)}`, "1-15 characters, no spaces, '/' or ':'");
  }
  const netns = env.CNI_NETNS ?? '';
  if (netns !== '' && !netns.startsWith('/')) {
    throw new CniError(CniErrorCode.InvalidEnvironment, `invalid CNI_NETNS ${JSON.stringify(netns)}: expected an absolute path`);
  }
  const out: CniEnvironment = {
    command: cmd,
    containerId,
    ifname,
    args: parseArgs(env.CNI_ARGS ?? ''),
    path: (env.CNI_PATH ?? '').split(':').filter((p) => p !== ''),
  };
  if (netns !== '') out.netns = netns;
  return out;
}
