// The `weave-net` / `weave-ipam` CNI executable (user-surface spec §7.4): one
// program, which plugin it is comes from the name it was run as (argv[0] for
// the installed wrapper, else the script's name). Reads the CNI environment
// and the config on stdin, talks to the router at WEAVE_HTTP_ADDR, prints the
// result - or a CNI error JSON on stdout and a `weave-cni:` line on stderr.
import { accessSync, constants } from 'node:fs';
import { basename, join } from 'node:path';
import { DEFAULT_HTTP_ADDR } from '../well-known.js';
import { readEnvironment, type CniCommand } from './environment.js';
import { asCniError, CniError, CniErrorCode, stderrLine } from './errors.js';
import { replyVersion, runPlugin, type IpamDelegate, type PluginKind } from './plugin.js';
import { HttpRouterClient } from './router-client.js';

/** Executable names (as installed in the CNI bin dir) and the plugin each is. */
export const PLUGIN_NAMES: Record<string, PluginKind> = { 'weave-net': 'net', 'weave-ipam': 'ipam' };

/** Which plugin `name` (a path or a file name) is: by suffix, as Weave's weaveutil did. */
export function pluginKindOf(name: string): PluginKind | undefined {
  const base = basename(name);
  for (const [suffix, kind] of Object.entries(PLUGIN_NAMES)) if (base.endsWith(suffix)) return kind;
  return undefined;
}

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    if (process.stdin.isTTY) {
      resolve('');
      return;
    }
    const chunks: Buffer[] = [];
    process.stdin.on('data', (c: Buffer) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

/** Runs a delegated IPAM plugin found on CNI_PATH with our environment, CNI_COMMAND replaced. */
function execDelegate(path: readonly string[]): IpamDelegate {
  return {
    exec: (type: string, command: CniCommand, stdin: string) => {
      if (!/^[A-Za-z0-9_.-]+$/.test(type)) throw new CniError(CniErrorCode.InvalidNetworkConfig, `invalid ipam type ${JSON.stringify(type)}`);
      const file = path.map((d) => join(d, type)).find((f) => {
        try {
          accessSync(f, constants.X_OK);
          return true;
        } catch {
          return false;
        }
      });
      if (!file) throw new CniError(CniErrorCode.InvalidNetworkConfig, `failed to find plugin "${type}" in path [${path.join(' ')}]`);
      // Imported here: only a delegated IPAM runs a process, and loading child_process was ~13 ms of every start.
      return import('node:child_process').then(({ spawn }) => new Promise((resolve, reject) => {
        const child = spawn(file, [], { env: { ...process.env, CNI_COMMAND: command }, stdio: ['pipe', 'pipe', 'inherit'] });
        const out: Buffer[] = [];
        child.stdout.on('data', (c: Buffer) => out.push(c));
        child.on('error', (err) => reject(new CniError(CniErrorCode.IoFailure, `running IPAM plugin ${file}: ${err.message}`)));
        child.on('close', (code) => {
          const text = Buffer.concat(out).toString('utf8');
          if (code === 0) {
            resolve(text);
            return;
          }
          let msg = `IPAM plugin ${type} exited ${String(code)}`;
          let errCode: number = CniErrorCode.Internal;
          try {
            const e = JSON.parse(text) as { code?: unknown; msg?: unknown };
            if (typeof e.code === 'number') errCode = e.code;
            if (typeof e.msg === 'string') msg = e.msg;
          } catch {
            // not a CNI error: keep the exit status
          }
          reject(new CniError(errCode, msg));
        });
        child.stdin.end(stdin);
      }));
    },
  };
}

export async function main(argv0: string): Promise<number> {
  const kind = pluginKindOf(argv0) ?? 'net';
  let stdin = '';
  try {
    stdin = await readStdin();
    const env = readEnvironment(process.env, (line) => process.stderr.write(stderrLine(line)));
    const router = new HttpRouterClient(process.env.WEAVE_HTTP_ADDR || DEFAULT_HTTP_ADDR);
    const out = await runPlugin(kind, env, stdin, {
      router,
      delegate: execDelegate(env.path),
      warn: (line) => process.stderr.write(stderrLine(line)),
    });
    if (out !== '') process.stdout.write(`${out}\n`);
    return 0;
  } catch (err) {
    const e = asCniError(err);
    process.stderr.write(stderrLine(e.details ? `${e.message} (${e.details})` : e.message));
    process.stdout.write(`${JSON.stringify(e.toJson(replyVersion(stdin)))}\n`);
    return 1;
  }
}
