// CNI spec versions this plugin speaks, and the comparisons the commands need
// (CHECK exists from 0.4.0, GC and STATUS from 1.1.0).
import { CniError, CniErrorCode } from './errors.js';
import { compareDottedVersions } from '../dotted-version.js';

export const SUPPORTED_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = '1.1.0';
/** A config without `cniVersion` is 0.1.0 (as the reference libraries treat it). */
export const IMPLICIT_VERSION: CniVersion = '0.1.0';

/** The version the installed conflist declares (`weave setup-cni`): what containerd >= 1.6 and CRI-O 1.24 expect. */
export const CONFLIST_VERSION: CniVersion = '1.0.0';

export function isSupportedVersion(v: string): v is CniVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

export function checkSupported(v: string): CniVersion {
  if (isSupportedVersion(v)) return v;
  throw new CniError(
    CniErrorCode.IncompatibleVersion,
    `incompatible CNI versions; config is "${v}", plugin supports [${SUPPORTED_VERSIONS.map((s) => `"${s}"`).join(' ')}]`,
  );
}

/** A command the config's version does not have is refused with code 1 (CNI spec 1.1 "Version"). */
export function requireVersion(configVersion: string, min: CniVersion, command: string): void {
  if (compareDottedVersions(configVersion, min) < 0) {
    throw new CniError(CniErrorCode.IncompatibleVersion, `config version does not allow ${command}`, `${command} needs cniVersion ${min} or later, config has ${configVersion}`);
  }
}

/** The VERSION answer (CNI spec 1.1 "VERSION"). */
export function versionInfo(): { cniVersion: CniVersion; supportedVersions: CniVersion[] } {
  return { cniVersion: LATEST_VERSION, supportedVersions: [...SUPPORTED_VERSIONS] };
}
