// DNS domain and name normalisation (user-surface spec §4.3, §6.6).

/** `--dns-domain` as used internally: lower case with a trailing dot (`foo.bar` → `foo.bar.`). */
export function normaliseDomain(domain: string): string {
  const d = domain.trim().toLowerCase();
  if (d === '' || d === '.') throw new Error(`weave: invalid --dns-domain "${domain}" (give a domain such as weave.local.)`);
  return d.endsWith('.') ? d : `${d}.`;
}

/** A name as an FQDN with trailing dot, case preserved (`web.weave.local` → `web.weave.local.`). */
export function toFqdn(name: string): string {
  return name.endsWith('.') ? name : `${name}.`;
}

/** Whether the FQDN lies in (or is) the domain, ignoring case; `domain` as from normaliseDomain. */
export function inDomain(fqdn: string, domain: string): boolean {
  const lower = toFqdn(fqdn).toLowerCase();
  return lower === domain || lower.endsWith(`.${domain}`);
}

/** The hostname with the domain suffix removed, for `weave status dns` (user-surface spec §2.5). */
export function stripDomain(fqdn: string, domain: string): string {
  const f = toFqdn(fqdn);
  if (f.toLowerCase().endsWith(`.${domain}`)) return f.slice(0, f.length - domain.length - 1);
  return f;
}
