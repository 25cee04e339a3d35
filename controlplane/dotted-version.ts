// Dotted version numbers ("1.41", "0.3.1"), as Docker's API and the CNI spec write them.

/** Compares two dotted versions numerically, component by component: negative when a < b, 0 when equal. */
export function compareDottedVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
