// Go's fmt for template values (what `print`, `printf`, `println` and an
// action's output produce): %v of JSON-shaped data, Sprint's spacing rules,
// and Sprintf's verbs with flags, width and precision, including Go's
// `%!d(string=x)`, `%!v(MISSING)` and `%!(EXTRA …)` forms for mismatches.
// Objects print as Go structs (`{a b}`), the shape the report's data has.

/**
 * A float64 constant of the template whose value is whole (`1.0`, `1e6`): JS
 * numbers cannot tell it from an int, and Go prints it differently (1e+06).
 */
export class GoFloat {
  constructor(readonly value: number) {}
}

/** strconv's 'g' with shortest precision switches to the exponent form at this decimal exponent. */
const SHORTEST_G_EXPONENT = 6;

const goMaps = new WeakSet<object>();

/**
 * Marks `entries` as a Go map rather than a struct: a missing key reads as no
 * value instead of failing the template, an empty one is false in `if`, %v
 * prints it as map[k:v ...]. `null` gives a nil map, which templates read as
 * an empty one (as Go's do) and which still JSON-encodes as null.
 */
export function goMap<T extends Record<string, unknown>>(entries: T | null): T | Record<string, never> {
  const m: T | Record<string, never> = entries ?? Object.defineProperty({}, 'toJSON', { value: () => null, enumerable: false });
  goMaps.add(m);
  return m;
}

export function isGoMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && goMaps.has(v);
}

/** Go's type name for a value, as fmt shows it in error forms. */
export function goTypeName(v: unknown): string {
  if (v instanceof GoFloat) return 'float64';
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'bigint') return v < 0n ? 'int64' : 'uint64';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64';
  if (Array.isArray(v)) return '[]interface {}';
  if (isGoMap(v)) return 'map[string]interface {}';
  return 'struct';
}

function isInt(v: unknown): v is number | bigint {
  return typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v));
}

/** Go's %v of a float64 (strconv 'g', shortest): exponent form from 1e6 or below 1e-4, two-digit exponents. */
export function formatFloat(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  const exp = v === 0 ? 0 : Math.floor(Math.log10(Math.abs(v)));
  const text = exp < -4 || exp >= SHORTEST_G_EXPONENT ? v.toExponential() : String(v);
  return text.replace(/e([+-])(\d)$/, 'e$10$2');
}

/** Go's %v. */
export function formatValue(v: unknown, plus = false): string {
  if (v instanceof GoFloat) return formatFloat(v.value);
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (typeof v === 'number') return Number.isInteger(v) && Math.abs(v) < 1e21 ? String(v) : formatFloat(v);
  if (Array.isArray(v)) return `[${v.map((x) => formatValue(x, plus)).join(' ')}]`;
  if (isGoMap(v)) return `map[${Object.keys(v).sort().map((k) => `${k}:${formatValue(v[k], plus)}`).join(' ')}]`;
  const entries = Object.entries(v as Record<string, unknown>);
  return `{${entries.map(([k, x]) => (plus ? `${k}:${formatValue(x, plus)}` : formatValue(x, plus))).join(' ')}}`;
}

/** fmt.Sprint: spaces between operands when neither side is a string. */
export function sprint(args: unknown[]): string {
  let out = '';
  args.forEach((a, i) => {
    if (i > 0 && typeof a !== 'string' && typeof args[i - 1] !== 'string') out += ' ';
    out += formatValue(a);
  });
  return out;
}

/** fmt.Sprintln: spaces between all operands and a newline. */
export function sprintln(args: unknown[]): string {
  return `${args.map((a) => formatValue(a)).join(' ')}\n`;
}

/** strconv.Quote, close enough: JSON escaping with Go's \x7f-free output for printable text. */
export function goQuote(s: string): string {
  return JSON.stringify(s).replace(/\\u00([0-7][0-9a-f])/g, '\\x$1').replace(/\u007f/g, '\\x7f');
}

const MAX_WIDTH = 1_000_000;

interface Spec {
  minus: boolean;
  plus: boolean;
  space: boolean;
  zero: boolean;
  sharp: boolean;
  width?: number;
  precision?: number;
  verb: string;
}

function pad(s: string, spec: Spec, numeric: boolean): string {
  if (spec.width === undefined || s.length >= spec.width) return s;
  const fill = spec.width - s.length;
  if (spec.minus) return s + ' '.repeat(fill);
  if (spec.zero && numeric) {
    const sign = /^[+\- ]/.test(s) ? s[0] : '';
    return sign + '0'.repeat(fill) + s.slice(sign.length);
  }
  return ' '.repeat(fill) + s;
}

function bad(spec: Spec, v: unknown): string {
  return v === null || v === undefined ? `%!${spec.verb}(<nil>)` : `%!${spec.verb}(${goTypeName(v)}=${formatValue(v)})`;
}

function signed(s: string, neg: boolean, spec: Spec): string {
  if (neg) return `-${s}`;
  if (spec.plus) return `+${s}`;
  if (spec.space) return ` ${s}`;
  return s;
}

function formatInt(v: number | bigint, spec: Spec): string {
  const big = BigInt(v);
  const neg = big < 0n;
  const abs = neg ? -big : big;
  let digits: string;
  switch (spec.verb) {
    case 'd': case 'v': digits = abs.toString(10); break;
    case 'x': digits = (spec.sharp ? '0x' : '') + abs.toString(16); break;
    case 'X': digits = (spec.sharp ? '0X' : '') + abs.toString(16).toUpperCase(); break;
    case 'o': digits = (spec.sharp ? '0' : '') + abs.toString(8); break;
    case 'O': digits = `0o${abs.toString(8)}`; break;
    case 'b': digits = abs.toString(2); break;
    default: return bad(spec, v);
  }
  if (spec.precision !== undefined && digits.length < spec.precision) digits = '0'.repeat(spec.precision - digits.length) + digits;
  return pad(signed(digits, neg, spec), spec, spec.precision === undefined);
}

function formatFloatVerb(v: number, spec: Spec): string {
  const neg = v < 0 || Object.is(v, -0);
  const abs = Math.abs(v);
  let s: string;
  switch (spec.verb) {
    case 'f': case 'F': s = abs.toFixed(spec.precision ?? 6); break;
    case 'e': s = abs.toExponential(spec.precision ?? 6).replace(/e([+-])(\d)$/, 'e$10$2'); break;
    case 'E': s = abs.toExponential(spec.precision ?? 6).replace(/e([+-])(\d)$/, 'e$10$2').toUpperCase(); break;
    case 'g': case 'v': s = spec.precision === undefined ? formatFloat(abs) : String(Number(abs.toPrecision(spec.precision))); break;
    default: return bad(spec, v);
  }
  return pad(signed(s, neg, spec), spec, true);
}

function formatOne(spec: Spec, v: unknown): string {
  if (v instanceof GoFloat) {
    if (spec.verb === 'T') return pad('float64', spec, false);
    return 'eEfFgGv'.includes(spec.verb) ? formatFloatVerb(v.value, spec) : bad(spec, v);
  }
  const verb = spec.verb;
  if (verb === 'v') {
    if (typeof v === 'number' && !Number.isInteger(v)) return formatFloatVerb(v, spec);
    if (isInt(v) && (spec.plus || spec.space || spec.zero)) return formatInt(v, spec);
    return pad(formatValue(v, spec.plus), spec, false);
  }
  if (verb === 'T') return pad(goTypeName(v), spec, false);
  if (typeof v === 'boolean') return verb === 't' ? pad(String(v), spec, false) : bad(spec, v);
  if (typeof v === 'string') {
    switch (verb) {
      case 's': return pad(spec.precision === undefined ? v : [...v].slice(0, spec.precision).join(''), spec, false);
      case 'q': return pad(goQuote(v), spec, false);
      case 'x': case 'X': {
        const hex = Buffer.from(v, 'utf8').toString('hex');
        return pad(verb === 'X' ? hex.toUpperCase() : hex, spec, false);
      }
      default: return bad(spec, v);
    }
  }
  if (isInt(v)) {
    if (verb === 'c') return pad(String.fromCodePoint(Number(v)), spec, false);
    if (verb === 'q') return pad(`'${String.fromCodePoint(Number(v))}'`, spec, false);
    if (verb === 'U') return pad(`U+${Number(v).toString(16).toUpperCase().padStart(4, '0')}`, spec, false);
    return formatInt(v, spec);
  }
  if (typeof v === 'number') return formatFloatVerb(v, spec);
  if (Array.isArray(v) && verb === 's') return pad(`[${v.map((x) => formatOne({ ...spec, width: undefined }, x)).join(' ')}]`, spec, false);
  if (Array.isArray(v) && (verb === 'd' || verb === 'q')) return `[${v.map((x) => formatOne({ ...spec, width: undefined }, x)).join(' ')}]`;
  return bad(spec, v);
}

/** fmt.Sprintf. */
export function sprintf(format: string, args: unknown[]): string {
  let out = '';
  let argIndex = 0;
  let i = 0;
  while (i < format.length) {
    const c = format[i];
    if (c !== '%') {
      out += c;
      i++;
      continue;
    }
    i++;
    const spec: Spec = { minus: false, plus: false, space: false, zero: false, sharp: false, verb: '' };
    for (; i < format.length; i++) {
      const f = format[i];
      if (f === '-') spec.minus = true;
      else if (f === '+') spec.plus = true;
      else if (f === ' ') spec.space = true;
      else if (f === '0') spec.zero = true;
      else if (f === '#') spec.sharp = true;
      else break;
    }
    const num = (): number | undefined => {
      if (format[i] === '*') {
        i++;
        const a = args[argIndex++];
        return typeof a === 'number' && Number.isInteger(a) ? a : undefined;
      }
      const m = /^\d+/.exec(format.slice(i));
      if (!m) return undefined;
      i += m[0].length;
      return Number(m[0]);
    };
    spec.width = num();
    if (format[i] === '.') {
      i++;
      spec.precision = num() ?? 0;
    }
    // Go refuses widths and precisions beyond a million (fmt's tooLarge).
    if ((spec.width ?? 0) > MAX_WIDTH || (spec.precision ?? 0) > MAX_WIDTH) {
      out += (spec.width ?? 0) > MAX_WIDTH ? '%!(BADWIDTH)' : '%!(BADPREC)';
      spec.width = undefined;
      spec.precision = undefined;
    }
    if (i >= format.length) {
      out += '%!(NOVERB)';
      break;
    }
    spec.verb = format[i++];
    if (spec.verb === '%') {
      out += '%';
      continue;
    }
    if (argIndex >= args.length) {
      out += `%!${spec.verb}(MISSING)`;
      continue;
    }
    out += formatOne(spec, args[argIndex++]);
  }
  if (argIndex < args.length) {
    out += `%!(EXTRA ${args.slice(argIndex).map((a) => (a === null || a === undefined ? '<nil>' : `${goTypeName(a)}=${formatValue(a)}`)).join(', ')})`;
  }
  return out;
}
