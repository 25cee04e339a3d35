// The direct-peer list persisted in the state directory (user-surface spec
// §1.7): reused by --resume, replaced by a fresh launch with peers.
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../controlplane/atomic-file.js';

const REMEDY = 'delete the file to start with no persisted peers';

/** The peer list in `text`, read from `file`; a damaged file is an Error naming it and the remedy. */
export function parseTargets(text: string, file: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message}); ${REMEDY}`);
  }
  if (!Array.isArray(parsed) || !parsed.every((p) => typeof p === 'string')) {
    throw new Error(`${file}: expected a JSON array of peer strings (${REMEDY})`);
  }
  return parsed;
}

export function loadTargets(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return parseTargets(text, file);
}

export function saveTargets(file: string, targets: string[]): void {
  // Durable: the targets of weave connect must be dialled again after a reboot; written only when they change.
  writeFileAtomic(file, JSON.stringify(targets) + '\n', { durable: true });
}
