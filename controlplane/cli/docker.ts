// Resolving a Docker container (name, short or full id) to its full id and
// the pid of its init process, whose network namespace `weave attach` joins
// (user-surface spec §1.8 step 1). Talks to the Docker Engine API over its
// unix socket: DOCKER_HOST=unix://PATH, else /var/run/docker.sock.
import { request } from 'node:http';

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

export interface ContainerInfo {
  /** Full 64-hex container id. */
  id: string;
  pid: number;
  /** `<Hostname>.<Domainname>` when the container has a domain (the name weaveDNS registers, spec §1.11). */
  fqdn?: string;
  /** Config.Hostname and Config.Domainname ('' when unset), for `attach --rewrite-hosts`. */
  hostname: string;
  domain: string;
  /** The host file Docker bind-mounts as the container's /etc/hosts, when it has one. */
  hostsPath?: string;
}

export class ContainerError extends Error {}

export function dockerSocketFromEnv(env: NodeJS.ProcessEnv): string {
  const host = env.DOCKER_HOST;
  if (host && host.startsWith('unix://')) return host.slice('unix://'.length);
  return DEFAULT_DOCKER_SOCKET;
}

function get(socketPath: string, path: string): Promise<{ code: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method: 'GET', path, timeout: 3000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ code: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end();
  });
}

interface InspectBody {
  Id?: unknown;
  HostsPath?: unknown;
  State?: { Pid?: unknown; Running?: unknown };
  Config?: { Hostname?: unknown; Domainname?: unknown };
}

/** The container's full id and init pid; ContainerError with what to do otherwise. */
export async function resolveContainer(container: string, env: NodeJS.ProcessEnv): Promise<ContainerInfo> {
  const socket = dockerSocketFromEnv(env);
  let res: { code: number; body: string };
  try {
    res = await get(socket, `/containers/${encodeURIComponent(container)}/json`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ContainerError(
      `unable to inspect container ${container}: Docker is not reachable at ${socket} (${code}); ` +
        `start Docker, set DOCKER_HOST=unix:///path, or name the namespace with --netns PATH or --pid N`,
    );
  }
  if (res.code === 404) throw new ContainerError(`unable to inspect container ${container}: No such container`);
  if (res.code !== 200) throw new ContainerError(`unable to inspect container ${container}: Docker answered ${res.code}: ${res.body.trim()}`);
  let body: InspectBody;
  try {
    body = JSON.parse(res.body) as InspectBody;
  } catch {
    throw new ContainerError(`unable to inspect container ${container}: Docker sent a reply that is not JSON`);
  }
  const id = typeof body.Id === 'string' ? body.Id : container;
  const pid = typeof body.State?.Pid === 'number' ? body.State.Pid : 0;
  if (body.State?.Running !== true || pid <= 0) throw new ContainerError(`container ${id} not running`);
  const host = typeof body.Config?.Hostname === 'string' ? body.Config.Hostname : '';
  const domain = typeof body.Config?.Domainname === 'string' ? body.Config.Domainname : '';
  const hostsPath = typeof body.HostsPath === 'string' && body.HostsPath !== '' ? body.HostsPath : undefined;
  return {
    id, pid, hostname: host, domain,
    ...(host !== '' && domain !== '' ? { fqdn: `${host}.${domain}` } : {}),
    ...(hostsPath !== undefined ? { hostsPath } : {}),
  };
}
