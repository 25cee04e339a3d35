// Entry point of the `weave` command.
import { runCli } from './run.js';

try {
  process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
} catch (err) {
  process.stderr.write(`weave: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
