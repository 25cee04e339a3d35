// The one test runner: runs every test group with node:test, prints the spec
// reporter's output, and ends with the line "N passed, N failed, N skipped".
//
//   node dist/test/run.js [group ...]     groups: unit netns vm docker cni (default: all)
//
// Groups run one after another (namespaces, the VM and dockerd are heavy on two
// cores); files inside the unit group run concurrently.
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';

const distTest = dirname(fileURLToPath(import.meta.url));
const allGroups = ['unit', 'netns', 'vm', 'docker', 'cni'];

/**
 * A file that hangs fails after this long rather than at CI's end: unit files
 * take seconds, kernel and daemon files a few minutes, the VM file (which
 * boots the kernel lab and runs its guest tests) about ten.
 */
const FILE_TIMEOUT_MINUTES: Record<string, number> = { unit: 5, netns: 20, docker: 20, cni: 20, vm: 30 };

interface Tally { passed: number; failed: number; skipped: number; failures: string[] }

function testFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    // The VM guest files run inside the kernel lab, driven by test/vm/kernel-lab.test.js.
    if (entry === 'guest') continue;
    if (statSync(path).isDirectory()) out.push(...testFiles(path));
    else if (entry.endsWith('.test.js')) out.push(path);
  }
  return out;
}

async function runGroup(group: string, files: string[], tally: Tally): Promise<void> {
  const filter = process.env.WEAVE_TEST_FILTER;
  const selected = filter ? files.filter((f) => f.includes(filter)) : files;
  if (selected.length === 0) return;
  process.stdout.write(`\n=== ${group}: ${selected.length} file(s)\n`);
  const stream = run({
    files: selected,
    concurrency: group === 'unit' ? 2 : 1,
    timeout: Number(process.env.WEAVE_TEST_FILE_TIMEOUT_MS ?? FILE_TIMEOUT_MINUTES[group] * 60_000),
  });
  stream.on('test:pass', (data) => {
    if (data.details.type === 'suite') return;
    if (data.skip || data.todo) tally.skipped++;
    else tally.passed++;
  });
  stream.on('test:fail', (data) => {
    if (data.details.type === 'suite') return;
    tally.failed++;
    tally.failures.push(`${group}: ${relative(distTest, data.file ?? '')} > ${data.name}`);
  });
  const sink = new Writable({ write(chunk, _enc, cb) { process.stdout.write(chunk, cb); } });
  await new Promise<void>((resolve, reject) => {
    stream.compose(new spec()).pipe(sink).on('finish', resolve).on('error', reject);
  });
}

async function main(): Promise<void> {
  const groups = process.argv.slice(2).length > 0 ? process.argv.slice(2) : allGroups;
  for (const g of groups) {
    if (!allGroups.includes(g)) {
      process.stderr.write(`test/run: unknown group "${g}" (groups: ${allGroups.join(' ')})\n`);
      process.exit(2);
    }
  }
  const tally: Tally = { passed: 0, failed: 0, skipped: 0, failures: [] };
  for (const g of groups) await runGroup(g, testFiles(join(distTest, g)), tally);
  if (tally.failures.length > 0) {
    process.stdout.write('\nFailed tests:\n' + tally.failures.map((f) => `  ${f}`).join('\n') + '\n');
  }
  process.stdout.write(`\n${tally.passed} passed, ${tally.failed} failed, ${tally.skipped} skipped\n`);
  process.exitCode = tally.failed > 0 || tally.passed === 0 ? 1 : 0;
}

await main();
