// CNI errors (CNI spec 1.1 "Error"): the JSON a plugin prints on stdout when
// it fails, with the well-known codes the spec reserves (1-99) and our own
// (>= 100), and the `weave-cni:` line for stderr that Weave's plugin printed.

/** Well-known error codes, CNI spec 1.1 "Error" section. */
export const CniErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodingFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  /** STATUS: the plugin cannot serve ADD now. */
  PluginNotAvailable: 50,
  /** STATUS: the plugin can serve ADD, but connectivity is limited. */
  LimitedConnectivity: 51,
  /** Weave's own: a command it does not know (Weave 2.8 printed 100 for every plugin error). */
  UnknownCommand: 100,
  /** The router refused or failed the request (its message is in `msg`). */
  RouterError: 101,
  /** CHECK found the container's networking differs from what ADD set up. */
  CheckFailed: 102,
  /** Anything else (the CNI libraries' ErrInternal). */
  Internal: 999,
} as const;

export type CniErrorCodeValue = (typeof CniErrorCode)[keyof typeof CniErrorCode];

export interface CniErrorJson {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details?: string,
  ) {
    super(msg);
  }

  toJson(cniVersion: string): CniErrorJson {
    const out: CniErrorJson = { cniVersion, code: this.code, msg: this.message };
    if (this.details !== undefined && this.details !== '') out.details = this.details;
    return out;
  }
}

/** Any thrown value as a CniError (unknown failures become Internal). */
export function asCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  return new CniError(CniErrorCode.Internal, err instanceof Error ? err.message : String(err));
}

/** The stderr line for an error, as Weave's plugin prefixed them. */
export function stderrLine(msg: string): string {
  return `weave-cni: ${msg}\n`;
}
