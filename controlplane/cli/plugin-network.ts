// What the CLI asks Docker about the router's plugin (user-surface spec §1.2, §1.6, §7.1):
// `weave stop`/`reset` remove the Docker network `weave` while the plugin still answers
// Docker's calls for it, `weave launch` says why the plugin is off, and `weave ps` maps
// container names to the ids the router lists. Talks to the Docker of DOCKER_HOST (default
// unix:///var/run/docker.sock), as the router does.
import { DockerNotFoundError, DockerUnreachableError, EngineClient, dockerHostFrom } from '../docker/engine-client.js';

/** How long `weave stop` waits for Docker per call: it must not hang on a stuck daemon. */
const DOCKER_TIMEOUT_MS = 5_000;

/**
 * Removes network `name`; resolves with the message for stderr when that failed (undefined:
 * removed, absent, or no Docker here at all, since this router runs without Docker too).
 */
export async function removePluginNetwork(env: NodeJS.ProcessEnv, name: string): Promise<string | undefined> {
  let client: EngineClient;
  try {
    client = new EngineClient(dockerHostFrom(undefined, env), { timeoutMs: DOCKER_TIMEOUT_MS });
    await client.apiVersion();
  } catch (e) {
    if (e instanceof DockerUnreachableError) return undefined;
    return `unable to connect to docker: ${(e as Error).message}`;
  }
  try {
    await client.removeNetwork(name);
    return undefined;
  } catch (e) {
    if (e instanceof DockerNotFoundError) return undefined;
    const attached = await client.inspectNetwork(name).then((n) => Object.keys(n.Containers ?? {}), () => []);
    if (attached.length > 0) {
      return `WARNING: the following containers are still attached to network "${name}":\n` +
        `${attached.map((id) => `  ${id.slice(0, 12)} `).join('')}\n` +
        'Docker operations involving those containers may pause or fail\nwhile Weave is not running';
    }
    return `unable to remove network: ${(e as Error).message}`;
  }
}

/** The last value the router will see for a flag in `args` (`--f v`, `--f=v`, bare `--f` = 'true'). */
function lastFlag(args: readonly string[], flag: string, takesValue: boolean): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === `--${flag}`) value = takesValue ? args[++i] : 'true';
    else if (a.startsWith(`--${flag}=`)) value = a.slice(flag.length + 3);
  }
  return value;
}

/**
 * After launch: why the router's Docker plugin is not running, if it is not although
 * requested (Docker unreachable), so `weave launch` can say so; undefined when it runs or
 * was turned off on purpose.
 */
export async function pluginOffReason(routerArgs: readonly string[], env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const plugin = lastFlag(routerArgs, 'plugin', false);
  if (plugin === undefined || !['true', '1', 't', 'T', 'TRUE', 'True'].includes(plugin)) return undefined;
  const api = lastFlag(routerArgs, 'docker-api', true);
  if (api === '') return undefined;
  try {
    await new EngineClient(dockerHostFrom(api, env), { timeoutMs: DOCKER_TIMEOUT_MS }).ping();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Docker's short id length: what `weave ps` labels Docker containers with. */
const SHORT_ID_CHARS = 12;

/**
 * `weave ps <container>` (spec §1.6): a Docker container name or id becomes the short id the
 * router lists it under; undefined when Docker does not know it (or is not there).
 */
export async function dockerShortId(env: NodeJS.ProcessEnv, container: string): Promise<string | undefined> {
  try {
    const c = await new EngineClient(dockerHostFrom(undefined, env), { timeoutMs: DOCKER_TIMEOUT_MS }).inspectContainer(container);
    return c.Id.slice(0, SHORT_ID_CHARS);
  } catch {
    return undefined;
  }
}
