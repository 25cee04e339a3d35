// The direct-peer list persisted in the state directory (user-surface spec
// §1.7): reused by --resume, replaced by a fresh launch with peers.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

export function loadTargets(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed) || !parsed.every((p) => typeof p === 'string')) {
    throw new Error(`${file}: expected a JSON array of peer strings (delete the file to start with no persisted peers)`);
  }
  return parsed;
}

export function saveTargets(file: string, targets: string[]): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify(targets) + '\n');
  renameSync(tmp, file);
}
