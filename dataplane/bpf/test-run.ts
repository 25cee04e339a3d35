// Running a loaded program once on a crafted frame (BPF_PROG_TEST_RUN), for
// self-tests and diagnostics: nothing is sent anywhere; redirects only report
// their verdict. The program sees the loopback device of the caller's
// namespace as its ingress device.

import * as c from './libbpf.js';

/** tc verdicts (linux/pkt_cls.h); UNSPEC (-1, "next filter") as the unsigned return value. */
export const TC_ACT = { UNSPEC: 0xffff_ffff, OK: 0, SHOT: 2, REDIRECT: 7 } as const;

export interface TestRunResult {
  /** The program's return value (a TC_ACT_* verdict). */
  verdict: number;
  /** The frame as the program left it. */
  frame: Buffer;
}

export function testRunProgram(progFd: number, frame: Buffer): TestRunResult {
  if (frame.length < 14) throw new RangeError(`test frame of ${frame.length} bytes is shorter than an Ethernet header`);
  const out = Buffer.alloc(frame.length + 256);
  const opts: c.TestRunOpts = {
    sz: c.TEST_RUN_OPTS_SIZE, data_in: frame, data_out: out, data_size_in: frame.length, data_size_out: out.length,
    ctx_in: null, ctx_out: null, ctx_size_in: 0, ctx_size_out: 0,
    retval: 0, repeat: 1, duration: 0, flags: 0, cpu: 0, batch_size: 0,
  };
  const rc = c.progTestRun(progFd, opts);
  if (rc !== 0) throw new Error(`BPF_PROG_TEST_RUN failed (errno ${-rc})`);
  return { verdict: opts.retval, frame: out.subarray(0, opts.data_size_out) };
}
