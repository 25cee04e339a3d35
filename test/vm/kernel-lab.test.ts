// Host side of the vm group: boots the kernel lab once, runs every guest test file
// (dist/test/vm/guest/*.test.js) inside it, and re-reports each guest test here as a test of
// the same name and outcome, so the project's runner counts guest results like any other.
//
// WEAVE_VM_GUEST_FILTER=<substring> runs only the matching guest files (WEAVE_VM_GUEST_DIR
// points at another folder of compiled guest tests);
// WEAVE_VM_TIMEOUT_S bounds the whole VM run (default 720 s: TCG emulation is slow).
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { tmpdir } from 'node:os';
import { runInVm, projectRoot, VM_NO_STATUS } from './kernel-lab.js';
import { buildTrees, parseRecords } from './guest-events.js';
import type { GuestRecord, GuestTestNode } from './guest-events.js';
import { tail } from '../support/exec.js';

const guestDir = process.env.WEAVE_VM_GUEST_DIR ?? join(projectRoot, 'dist', 'test', 'vm', 'guest');
const filter = process.env.WEAVE_VM_GUEST_FILTER;
const guestFiles = (existsSync(guestDir) ? readdirSync(guestDir) : [])
  .filter((f) => f.endsWith('.test.js') && (!filter || f.includes(filter)))
  .sort()
  .map((f) => join(guestDir, f));

const outDir = mkdtempSync(join(tmpdir(), 'weave-vm-out-'));
const eventsName = 'guest-events.jsonl';
// Under the runner's 30-minute limit per file, with room to read the results back. The guest runs
// under software emulation (TCG): its router tests take minutes each.
const timeoutS = Number(process.env.WEAVE_VM_TIMEOUT_S ?? 1680);

const vm = guestFiles.length === 0 ? undefined : await runInVm(
  ['node', join(projectRoot, 'dist', 'test', 'vm', 'guest-runner.js'), `/out/${eventsName}`, ...guestFiles],
  { timeoutS, outDir, memMb: 2048, cpus: 2 },
);
const eventsPath = join(outDir, eventsName);
const records: GuestRecord[] = existsSync(eventsPath) ? parseRecords(readFileSync(eventsPath, 'utf8')) : [];
rmSync(outDir, { recursive: true, force: true });
const done = records.find((r) => r.kind === 'done');

if (vm) {
  const secs = (ms: number): string => (ms / 1000).toFixed(1);
  process.stdout.write(`kernel lab: VM run ${secs(vm.durationMs)} s, guest tests ${done ? secs(done.durationMs) : '?'} s, exit ${vm.code}\n`);
}

test('kernel lab boots and runs the guest test files', { skip: vm ? false : 'no guest test files in dist/test/vm/guest' }, () => {
  assert.ok(vm);
  const why = vm.code === VM_NO_STATUS ? 'the VM reported no exit status' : `the guest runner exited ${vm.code}`;
  assert.ok(
    done !== undefined && (vm.code === 0 || vm.code === 1),
    `${why} before finishing all guest files.\nguest output:\n${tail(vm.stdout)}\nharness:\n${tail(vm.stderr)}`,
  );
});

function outputOf(file: string): string {
  return records.filter((r) => r.kind === 'output' && r.file === file).map((r) => (r.kind === 'output' ? r.text : '')).join('');
}

/** An error that prints as the guest's message and stack only (the host stack says nothing). */
function guestError(text: string, file: string): Error {
  const e = new Error(text);
  // A trailing frame line keeps util.inspect from bracketing the whole text.
  e.stack = `(in the kernel lab VM) ${text}\n    at ${file} (guest)`;
  return e;
}

type TestOpts = { skip?: string | boolean; todo?: string | boolean };

/** The body of a host test that replays `node`: its subtests first, then its own outcome. */
function replayBody(node: GuestTestNode): (t: TestContext) => Promise<void> {
  const r = node.result;
  return async (t) => {
    for (const child of node.children) await t.test(child.result.name, optsOf(child), replayBody(child));
    // A failure caused only by failing subtests is reproduced by those subtests themselves.
    if (!r.passed && !r.subtestsFailed && r.todo === undefined) throw guestError(r.error ?? 'failed', r.file);
  };
}

function optsOf(node: GuestTestNode): TestOpts {
  const r = node.result;
  return { ...(r.skip !== undefined ? { skip: r.skip } : {}), ...(r.todo !== undefined ? { todo: r.todo } : {}) };
}

function replay(node: GuestTestNode): void {
  if (node.result.suite) {
    describe(node.result.name, () => { for (const c of node.children) replay(c); });
  } else {
    test(node.result.name, optsOf(node), replayBody(node));
  }
}

const trees = buildTrees(records);
for (const file of guestFiles) {
  const nodes = trees.get(file) ?? [];
  describe(relative(join(projectRoot, 'dist'), file), () => {
    if (nodes.length === 0) {
      // The guest never got to report on this file: make that a failing test of its own.
      test('guest file ran', () => {
        throw guestError(done ? `no result from ${file}\n${tail(outputOf(file))}` : `the VM run ended before ${file} reported (see the boot test)`, file);
      });
      return;
    }
    for (const n of nodes) {
      // A file that failed to load is reported by node:test as one failing test named by its path.
      if (n.result.name === file && !n.result.passed) {
        test('guest file loads', () => { throw guestError(`${file} failed:\n${tail(outputOf(file))}`, file); });
      } else {
        replay(n);
      }
    }
  });
}
