// Simulated hosts for netns tests: namespaces as hosts and containers, an
// underlay between them, link cuts and UDP blocks, and cleanup that survives
// a failing test (see testbed.ts and cleanup.ts), and the weave CLI run on
// those hosts (weave.ts).
export {
  createTestbed, waitForPing, addSecondAddress, ipPattern,
  type Testbed, type TestbedOptions, type Underlay, type Host, type Container,
  type NamespaceRunner, type PingOptions, type BlockOptions,
} from './testbed.js';
export { sweepStale, listNamespaces, newRunPrefix } from './cleanup.js';
export { processCpuSeconds, processCpuTimes } from './proc-stat.js';
export { execCommand, mustExec, pollUntil, type ExecResult, type ExecOptions, type SpawnedProcess } from './exec.js';
export {
  weave, mustWeave, weaveStateDir, weaverPid, stopRouters, withWeaveBed, sharedWeaveBed, launchFullMesh, launchCutLine, pollWeave, connectionsMatch,
  attachContainer, mustPing, WEAVE_CONVERGE_MS, FIRST_REPLY_BOUND_MS, type WeaveOptions, type PollOptions, type PingPollOptions,
} from './weave.js';
export { startIperfServer, runIperfClient, iperfNodeIn, parseIperfJson, IPERF_DEFAULT_PORT, type IperfNode, type IperfServer, type IperfServerOptions, type IperfClientOptions, type IperfResult, type IperfSummary, type IperfJson } from './iperf.js';
