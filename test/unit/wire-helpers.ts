// Test helpers for the wire codecs: spec-style byte notation.

/**
 * Parses bytes written the way the spec writes them: hex pairs, "quoted"
 * ASCII strings, `...` forbidden, `#` comments to the end of the line.
 */
export function specBytes(text: string): Uint8Array {
  const out: number[] = [];
  const src = text.replace(/#[^\n]*/g, '');
  const re = /"([^"]*)"|([0-9a-fA-F]{2})|(\S+)/g;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    if (m[1] !== undefined) for (const b of Buffer.from(m[1], 'utf8')) out.push(b);
    else if (m[2] !== undefined) out.push(parseInt(m[2], 16));
    else throw new Error(`specBytes: bad token ${m[3]}`);
  }
  return Uint8Array.from(out);
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex').replace(/(..)/g, '$1 ').trim();
}

/**
 * The topology gossip worked example of spec §4.5, byte for byte: peers alpha
 * (0a:00:00:00:00:01, connected outbound to beta at 192.168.1.2:6783) and beta,
 * encoded with Go's type ids starting at 66.
 */
export const TOPOLOGY_EXAMPLE = specBytes(`
62 ff 83 03 01 01 0b "peerSummary" 01 ff 84 00 01 06
   01 08 "NameByte" 01 0a 00   01 08 "NickName" 01 0c 00   01 03 "UID" 01 06 00
   01 07 "Version" 01 06 00    01 07 "ShortID" 01 06 00    01 0a "HasShortID" 01 02 00
   00 00
1e ff 84 01 06 0a 00 00 00 00 01  01 05 "alpha"  01 fe 04 d2  01 07  01 fe 01 23  01 01  00
0d ff 87 02 01 02 ff 88 00 01 ff 86 00 00
5b ff 85 03 01 01 11 "connectionSummary" 01 ff 86 00 01 04
   01 08 "NameByte" 01 0a 00  01 0d "RemoteTCPAddr" 01 0c 00
   01 08 "Outbound" 01 02 00  01 0b "Established" 01 02 00  00 00
23 ff 88 00 01  01 06 0a 00 00 00 00 02  01 10 "192.168.1.2:6783"  01 01  01 01  00
1d ff 84 01 06 0a 00 00 00 00 02  01 04 "beta"  01 fe 16 2e  01 03  01 fe 04 56  01 01  00
04 ff 88 00 00`);
