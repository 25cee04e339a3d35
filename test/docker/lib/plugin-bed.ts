// Simulated hosts for the Docker plugin tests: each host of a netns testbed runs its own
// dockerd inside the host's namespace, with a plugin folder of its own that the daemon
// sees as /run/docker/plugins, and a router launched with `--plugin-socket`/
// `--plugin-mesh-socket` in that folder and DOCKER_HOST pointing at the host's daemon.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createTestbed, type Host, type Testbed } from '../../netns/lib/testbed.js';
import { mustWeave, weave, type WeaveOptions } from '../../netns/lib/weave.js';
import { importBusybox, startDockerd, type Dockerd } from '../dockerd.js';

export interface DockerHost {
  host: Host;
  dockerd: Dockerd;
  pluginDir: string;
  /** The environment every `weave` command on this host runs with. */
  env: Record<string, string>;
  /** `weave launch` flags naming this host's plugin sockets. */
  pluginFlags: string[];
  /** `weave <args>` on this host, asserting exit 0; returns stdout. */
  weave(args: string[], opts?: WeaveOptions): Promise<string>;
  docker(args: readonly string[]): Promise<string>;
}

export interface PluginBed {
  bed: Testbed;
  hosts: DockerHost[];
  image: string;
  teardown(): Promise<void>;
}

export async function createPluginBed(count: number): Promise<PluginBed> {
  const bed = await createTestbed({ hosts: count, underlay: 'bridge' });
  const hosts: DockerHost[] = [];
  const teardown = async (): Promise<void> => {
    // Containers go first, while the plugin can still answer Docker's endpoint calls.
    for (const h of hosts) await h.dockerd.stop().catch(() => undefined);
    for (const h of hosts) await weave(h.host, ['stop'], { env: h.env }).catch(() => undefined);
    await bed.teardown();
  };
  try {
    // Daemons start one after another: several at once on two cores mostly wait on each other.
    let image = '';
    for (const host of bed.hosts) {
      const pluginDir = join(host.dir, 'plugins');
      const dockerd = await startDockerd({ netns: host.namespace, pluginDir });
      const env = { DOCKER_HOST: dockerd.host };
      hosts.push({
        host, dockerd, pluginDir, env,
        pluginFlags: ['--plugin-socket', join(pluginDir, 'weave.sock'), '--plugin-mesh-socket', join(pluginDir, 'weavemesh.sock')],
        weave: (args, opts = {}) => mustWeave(host, args, { ...opts, env: { ...env, ...opts.env } }),
        docker: (args) => dockerd.docker(args),
      });
      image = await importBusybox(dockerd);
    }
    return { bed, hosts, image, teardown };
  } catch (e) {
    await teardown();
    throw e;
  }
}

/** Launches every host's router with its plugin sockets, each given all other hosts as peers. */
export async function launchPluginMesh(hosts: readonly DockerHost[], flags: readonly string[] = []): Promise<void> {
  for (const h of hosts) {
    const others = hosts.filter((o) => o !== h).map((o) => o.host.address);
    await h.weave(['launch', '--nickname', `h${h.host.index}`, ...h.pluginFlags, ...flags, ...others]);
  }
}

/** A container's address on a network (from `docker inspect`). */
export async function containerIp(h: DockerHost, container: string, network = 'weave'): Promise<string> {
  const ip = (await h.docker(['inspect', '--format', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, container])).trim();
  assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/, `${container} on ${h.host.label} has an address on ${network}`);
  return ip;
}
