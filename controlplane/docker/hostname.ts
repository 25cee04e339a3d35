// Hostname, domain and DNS settings the proxy gives a container it attaches
// (user-surface spec §7.3.4): the hostname comes from the container name (or a
// label), rewritten by --hostname-match / --hostname-replacement with Go's
// regexp semantics, and the container resolves through weaveDNS.

/** Docker refuses longer `<hostname>.<domain>` values. */
export const MAX_DOCKER_HOSTNAME = 64;

export interface HostnameRules {
  /** --hostname-from-label: a label whose non-empty value replaces the container name. */
  fromLabel: string;
  /** --hostname-match (Go regexp syntax, default `(.*)`). */
  match: RegExp;
  /** --hostname-replacement (Go template: `$1`, `${1}`, `$name`, `${name}`; default `$1`). */
  replacement: string;
}

export class HostnameRuleError extends Error {}

/** Compiles --hostname-match: Go's `(?P<name>...)` groups become JS named groups. */
export function compileHostnameMatch(pattern: string): RegExp {
  try {
    return new RegExp(pattern.replace(/\(\?P</g, '(?<'), 'g');
  } catch (err) {
    throw new HostnameRuleError(`invalid --hostname-match ${JSON.stringify(pattern)}: ${(err as Error).message}`);
  }
}

export function defaultHostnameRules(): HostnameRules {
  return { fromLabel: '', match: compileHostnameMatch('(.*)'), replacement: '$1' };
}

/** Go's Regexp.Expand: `$name`/`${name}` (numbers or group names), `$$` = `$`; unknown groups expand to "". */
function expand(template: string, m: RegExpExecArray): string {
  return template.replace(/\$(\$|\{(\w+)\}|(\w+))/g, (_all, dollar: string, braced?: string, bare?: string) => {
    if (dollar === '$') return '$';
    const name = braced ?? bare ?? '';
    const v = /^\d+$/.test(name) ? m[Number(name)] : m.groups?.[name];
    return v ?? '';
  });
}

/** Go's Regexp.ReplaceAllString: an empty match right after the previous match is skipped. */
export function goReplaceAll(text: string, re: RegExp, template: string): string {
  const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`);
  let out = '';
  let last = 0;
  let prevEnd = -1;
  for (let m = g.exec(text); m !== null; m = g.exec(text)) {
    const start = m.index;
    const end = start + m[0].length;
    if (m[0].length === 0) {
      g.lastIndex++;
      if (start === prevEnd) continue;
    }
    out += text.slice(last, start) + expand(template, m);
    last = end;
    prevEnd = end;
    if (g.lastIndex > text.length) break;
  }
  return out + text.slice(last);
}

/** The hostname candidate for a container being created (before the length check). */
export function hostnameCandidate(name: string, labels: Record<string, unknown> | undefined, rules: HostnameRules): string {
  let candidate = name;
  if (rules.fromLabel !== '') {
    const v = labels?.[rules.fromLabel];
    if (typeof v === 'string' && v !== '') candidate = v;
  }
  return goReplaceAll(candidate, rules.match, rules.replacement);
}

export interface DnsSettingsInput {
  /** The create request's Hostname ('' = none given). */
  hostname: string;
  candidate: string;
  /** weaveDNS domain with or without the trailing dot, e.g. `weave.local.`. */
  domain: string;
  /** weaveDNS address containers use. */
  dnsServer: string;
  dns: readonly string[];
  dnsSearch: readonly string[];
}

export interface DnsSettings {
  /** Set only when the proxy derived a hostname. */
  hostname?: string;
  domainname?: string;
  dns: string[];
  dnsSearch: string[];
  /** A warning to log (name too long). */
  warning?: string;
}

export function dnsSettings(i: DnsSettingsInput): DnsSettings {
  const out: DnsSettings = { dns: [...i.dns, i.dnsServer], dnsSearch: [...i.dnsSearch] };
  let hostname = i.hostname;
  if (hostname === '' && i.candidate !== '') {
    const domain = i.domain.replace(/\.$/, '');
    if (i.candidate.length + 1 + domain.length > MAX_DOCKER_HOSTNAME) {
      out.warning = `Container name [${i.candidate}] too long to be used as hostname`;
    } else {
      hostname = i.candidate;
      out.hostname = i.candidate;
      out.domainname = domain;
    }
  }
  // With a derived hostname the search list is "." so the domain comes from Domainname (spec §7.3.4).
  if (out.dnsSearch.length === 0) out.dnsSearch = hostname === '' ? [i.domain] : ['.'];
  return out;
}
