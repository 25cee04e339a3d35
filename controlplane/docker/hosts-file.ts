// The /etc/hosts the proxy writes into a container it attached (user-surface
// spec §7.3.5): the container's weave addresses, the --add-host entries Docker
// was given, and the default localhost lines, framed by Weave's markers.

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
