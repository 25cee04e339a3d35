// controlplane/cni: the `weave-net` / `weave-ipam` CNI plugin (user-surface spec
// §7.4, CNI spec 1.1) and its installation. Pure logic; the router does the
// namespace and veth work.
//
//   versions.ts       CNI versions spoken, VERSION's answer, which command needs which version
//   errors.ts         CNI error codes and JSON, the `weave-cni:` stderr line
//   environment.ts    CNI_* variables each command needs
//   config.ts         the network config (Weave's keys), GC's valid attachments
//   result.ts         ADD results per version (0.1.0 ... 1.1.0)
//   router-port.ts    what the plugin needs from the router (types only)
//   router-client.ts  that, over the router's HTTP API
//   attachments.ts    which container ids this network gave addresses to (for GC)
//   plugin.ts         ADD, DEL, CHECK, VERSION, GC, STATUS
//   main.ts           the executable: stdin/env in, result or error out; entry.ts runs it
//   install.ts        bundle, wrapper, symlinks and conflist in the CNI dirs
//   setup-command.ts  `weave setup-cni`

export { runPlugin, type PluginKind, type PluginDeps, type IpamDelegate } from './plugin.js';
export { installCni, weaveConflist, type CniInstallOptions, type CniInstallReport } from './install.js';
export { CniError, CniErrorCode } from './errors.js';
export { SUPPORTED_VERSIONS, LATEST_VERSION } from './versions.js';
