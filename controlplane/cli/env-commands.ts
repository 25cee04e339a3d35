// `weave env`, `weave env --restore`, `weave config` (user-surface spec
// §1.12): point the Docker client at the router's API proxy, and back.
import { callRouter, RouterUnreachableError } from './api-client.js';
import { httpAddrFromEnv } from './launch-plan.js';
import type { Command } from './host-commands.js';
import { UsageError } from './usage.js';

const NOTHING_TO_RESTORE =
  "Nothing to restore. This is most likely because there was no preceding invocation of 'eval $(weave env)' in this shell.";

/** PROXY_HOST: substituted for 0.0.0.0 in the proxy's addresses; the host of a tcp:// DOCKER_HOST, else 127.0.0.1. */
export function proxyHostFromEnv(env: NodeJS.ProcessEnv): string {
  if (env.PROXY_HOST) return env.PROXY_HOST;
  const tcp = /^tcp:\/\/([^:/]+):/.exec(env.DOCKER_HOST ?? '');
  return tcp ? tcp[1] : '127.0.0.1';
}

/** The proxy's first address as clients use it; undefined when the router or its proxy is not running. */
export async function proxyAddress(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  let res;
  try {
    res = await callRouter(httpAddrFromEnv(env), 'GET', '/proxyaddrs');
  } catch (err) {
    if (err instanceof RouterUnreachableError) return undefined;
    throw err;
  }
  if (res.code !== 200) return undefined;
  const first = res.body.split('\n')[0].trim();
  return first === '' ? undefined : first.replaceAll('0.0.0.0', proxyHostFromEnv(env));
}

/** `export DOCKER_HOST=<proxy> ORIG_DOCKER_HOST=<previous>`, the restore part only when they differ. */
export function envLine(proxy: string, clientHost: string): string {
  const restore = proxy === clientHost ? '' : `ORIG_DOCKER_HOST=${clientHost}`;
  return `export DOCKER_HOST=${proxy} ${restore}\n`;
}

export function envCommands(): Record<string, Command> {
  const env: Command = async (args, io) => {
    if (args[0] === '--restore') {
      if (io.env.ORIG_DOCKER_HOST === undefined) {
        io.stderr.write(`${NOTHING_TO_RESTORE}\n`);
        return 1;
      }
      io.stdout.write(`DOCKER_HOST=${io.env.ORIG_DOCKER_HOST}\n`);
      return 0;
    }
    if (args.length > 0) throw new UsageError();
    const proxy = await proxyAddress(io.env);
    if (proxy !== undefined) io.stdout.write(envLine(proxy, io.env.DOCKER_CLIENT_HOST || io.env.DOCKER_HOST || ''));
    return 0;
  };
  const config: Command = async (args, io) => {
    if (args.length > 0) throw new UsageError();
    const proxy = await proxyAddress(io.env);
    if (proxy === undefined) return 1;
    io.stdout.write(`-H=${proxy}\n`);
    return 0;
  };
  return { env, config };
}
