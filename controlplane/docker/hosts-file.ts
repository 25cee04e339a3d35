// The /etc/hosts the proxy (and `weave attach --rewrite-hosts`) writes into a
// container it attached (user-surface spec §7.3.5): the container's weave
// addresses, the --add-host entries, and the default localhost lines, framed
// by Weave's markers.
import { unlinkSync, writeFileSync } from 'node:fs';

export interface HostsFileInput {
  /** Weave IPv4 addresses of the container. */
  ips: readonly string[];
  hostname: string;
  /** Domain without the trailing dot; '' for none. */
  domain: string;
  /** `name:ip` entries as in HostConfig.ExtraHosts. */
  extraHosts: readonly string[];
}

const IP_COLUMN = 15;

function line(ip: string, names: string): string {
  return `${ip.padEnd(IP_COLUMN)} ${names}`;
}

export function renderHostsFile(i: HostsFileInput): string {
  const names = i.domain !== '' ? `${i.hostname}.${i.domain} ${i.hostname}` : i.hostname;
  const out = ['# created by Weave - BEGIN', '# container hostname'];
  for (const ip of i.ips) out.push(line(ip, names));
  out.push('', '# static names added with --add-host');
  for (const h of i.extraHosts) {
    const sep = h.indexOf(':');
    if (sep >= 0) out.push(line(h.slice(sep + 1), h.slice(0, sep)));
  }
  out.push(
    '',
    '# default localhost entries',
    line('127.0.0.1', 'localhost'),
    line('::1', 'ip6-localhost ip6-loopback'),
    line('fe00::0', 'ip6-localnet'),
    line('ff00::0', 'ip6-mcastprefix'),
    line('ff02::1', 'ip6-allnodes'),
    line('ff02::2', 'ip6-allrouters'),
    '# created by Weave - END',
  );
  // Weave wrote the text with `echo`, which adds one more newline after the END marker.
  return `${out.join('\n')}\n\n`;
}

/**
 * Replaces a container's hosts file as Weave did: into the file the container
 * has (its bind mount holds that inode), then unlinked so Docker stops
 * managing it, and a file with the same text left at the path.
 */
export function writeHostsFile(hostsPath: string, text: string): void {
  writeFileSync(hostsPath, text);
  unlinkSync(hostsPath);
  writeFileSync(hostsPath, text);
}

/** A `NAME:IP` entry of `--add-host` (as Docker's), or an error saying what is wrong. */
export function parseAddHost(entry: string): { name: string; ip: string } {
  const sep = entry.indexOf(':');
  const name = entry.slice(0, sep);
  const ip = entry.slice(sep + 1);
  if (sep <= 0 || ip === '' || /\s/.test(entry)) throw new RangeError(`--add-host needs NAME:IP, got ${JSON.stringify(entry)}`);
  return { name, ip };
}
