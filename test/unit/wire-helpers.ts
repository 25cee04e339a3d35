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
