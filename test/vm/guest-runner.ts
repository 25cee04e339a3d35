// Runs inside the kernel lab VM: runs the given guest test files with node:test and appends
// one JSON record per finished test to the events file (normally under /out, which the host
// reads back). Usage: node dist/test/vm/guest-runner.js EVENTS_FILE TEST_FILE...
import { run } from 'node:test';
import { appendFileSync, writeFileSync } from 'node:fs';
import type { GuestRecord } from './guest-events.js';

interface TestEventData {
  name: string;
  nesting: number;
  file?: string;
  skip?: string | boolean;
  todo?: string | boolean;
  details: { duration_ms: number; type?: string; error?: unknown };
}

function describeError(err: unknown): string {
  // node:test wraps the thrown value in an ERR_TEST_FAILURE whose cause is the original.
  const cause = err instanceof Error && err.cause !== undefined ? err.cause : err;
  if (cause instanceof Error) return cause.stack ?? `${cause.name}: ${cause.message}`;
  return String(cause);
}

function failureType(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'failureType' in err) return String(err.failureType);
  return undefined;
}

async function main(): Promise<void> {
  const [eventsFile, ...files] = process.argv.slice(2);
  if (!eventsFile || files.length === 0) {
    process.stderr.write('usage: guest-runner.js EVENTS_FILE TEST_FILE...\n');
    process.exit(2);
  }
  const started = Date.now();
  writeFileSync(eventsFile, '');
  const emit = (r: GuestRecord): void => appendFileSync(eventsFile, JSON.stringify(r) + '\n');
  const timeout = Number(process.env.WEAVE_GUEST_FILE_TIMEOUT_MS ?? 8 * 60_000);
  const stream = run({ files, concurrency: 1, timeout });
  const onResult = (passed: boolean) => (data: TestEventData): void => {
    const err = data.details.error;
    emit({
      kind: 'result',
      file: data.file ?? '',
      name: data.name,
      nesting: data.nesting,
      suite: data.details.type === 'suite',
      passed,
      ...(data.skip !== undefined ? { skip: data.skip } : {}),
      ...(data.todo !== undefined ? { todo: data.todo } : {}),
      ...(err !== undefined ? { error: describeError(err), subtestsFailed: failureType(err) === 'subtestsFailed' } : {}),
      durationMs: data.details.duration_ms,
    });
  };
  stream.on('test:pass', onResult(true));
  stream.on('test:fail', onResult(false));
  const onOutput = (data: { file?: string; message: string }): void => {
    emit({ kind: 'output', file: data.file ?? '', text: data.message });
  };
  stream.on('test:stdout', onOutput);
  stream.on('test:stderr', onOutput);
  // Consuming the stream is what drives the run.
  for await (const event of stream) void event;
  emit({ kind: 'done', durationMs: Date.now() - started });
}

await main();
