// Go text/template execution over JSON-shaped data (pkg text/template
// exec.go): dot and variables with Go's scoping, truth as Go's isTrue,
// range over lists, maps (sorted keys) and integers, break/continue, and the
// builtin functions plus the caller's own (Weave adds `json`).
import { formatValue, GoFloat, goTypeName, isGoMap, sprint, sprintf, sprintln } from './fmt.js';
import type { Command, ControlNode, Node, Operand, Pipeline } from './parse.js';
import { compareOrdered } from '../../order.js';

export class TemplateExecError extends Error {}

/** A function callable from a template; receives evaluated arguments. */
export type TemplateFunction = (...args: unknown[]) => unknown;

/** No value (Go's invalid reflect.Value): a missing map key; prints "<no value>". */
const NO_VALUE = undefined;
/** Marks "no piped value" apart from a piped nil or missing value. */
const NO_FINAL: unique symbol = Symbol('no final');
type Final = unknown;

/**
 * Output beyond this stops the run with an error: nested ranges over the
 * data can multiply without bound, and the router must not hold that.
 */
export const MAX_TEMPLATE_OUTPUT = 16 << 20;

class BreakSignal {}
class ContinueSignal {}

/** Go's isTrue: the zero value of its type is false; structs are always true. */
export function isTrue(v: unknown): boolean {
  if (v instanceof GoFloat) return v.value !== 0;
  if (v === null || v === undefined) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'bigint') return v !== 0n;
  if (typeof v === 'string') return v.length > 0;
  if (Array.isArray(v)) return v.length > 0;
  if (isGoMap(v)) return Object.keys(v).length > 0;
  return true;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function toNumber(v: unknown): number | bigint | undefined {
  if (v instanceof GoFloat) return v.value;
  return typeof v === 'number' || typeof v === 'bigint' ? v : undefined;
}

function compareNumbers(a: number | bigint, b: number | bigint): number {
  if (typeof a === 'bigint' || typeof b === 'bigint') {
    const x = typeof a === 'bigint' ? a : Number.isInteger(a) ? BigInt(a) : undefined;
    const y = typeof b === 'bigint' ? b : Number.isInteger(b) ? BigInt(b) : undefined;
    if (x !== undefined && y !== undefined) return compareOrdered(x, y);
    return compareOrdered(Number(a), Number(b));
  }
  return compareOrdered(a, b);
}

function basicKind(v: unknown): string {
  if (v instanceof GoFloat) return 'number';
  if (v === null || v === undefined) return 'nil';
  if (typeof v === 'number' || typeof v === 'bigint') return 'number';
  if (typeof v === 'string' || typeof v === 'boolean') return typeof v;
  return 'other';
}

function equal(a: unknown, b: unknown): boolean {
  const ka = basicKind(a);
  const kb = basicKind(b);
  if (ka === 'other' || kb === 'other') throw new Error(`invalid type for comparison`);
  if (ka === 'nil' || kb === 'nil') return ka === kb;
  if (ka !== kb) throw new Error('incompatible types for comparison');
  if (ka === 'number') return compareNumbers(toNumber(a) as number | bigint, toNumber(b) as number | bigint) === 0;
  return a === b;
}

function order(a: unknown, b: unknown): number {
  const na = toNumber(a);
  const nb = toNumber(b);
  if (na !== undefined && nb !== undefined) return compareNumbers(na, nb);
  if (typeof a === 'string' && typeof b === 'string') return compareOrdered(a, b);
  if (basicKind(a) !== basicKind(b)) throw new Error('incompatible types for comparison');
  throw new Error(`invalid type for comparison`);
}

function lengthOf(v: unknown): number {
  if (typeof v === 'string') return Buffer.byteLength(v, 'utf8');
  if (Array.isArray(v)) return v.length;
  if (isObject(v)) return Object.keys(v).length;
  // A nil slice or map (JSON null) has length 0.
  if (v === null) return 0;
  throw new Error(`len of type ${goTypeName(v)}`);
}

function indexInt(v: unknown, len: number, what: string): number {
  const n = v instanceof GoFloat ? undefined : toNumber(v);
  if (n === undefined || (typeof n === 'number' && !Number.isInteger(n))) throw new Error(`cannot index slice/array with type ${goTypeName(v)}`);
  const i = Number(n);
  if (i < 0 || i >= len) throw new Error(`error calling ${what}: index out of range: ${i}`);
  return i;
}

function indexFn(item: unknown, ...indexes: unknown[]): unknown {
  let v = item;
  for (const ix of indexes) {
    if (Array.isArray(v)) v = v[indexInt(ix, v.length, 'index')];
    else if (typeof v === 'string') v = Buffer.from(v, 'utf8')[indexInt(ix, Buffer.byteLength(v, 'utf8'), 'index')];
    else if (isObject(v)) {
      if (typeof ix !== 'string') throw new Error(`error calling index: value has type ${goTypeName(ix)}; should be string`);
      v = Object.hasOwn(v, ix) ? v[ix] : NO_VALUE;
    } else if (v === null) {
      throw new Error('error calling index: index of untyped nil');
    } else {
      throw new Error(`error calling index: can't index item of type ${goTypeName(v)}`);
    }
  }
  return v;
}

function sliceFn(item: unknown, ...bounds: unknown[]): unknown {
  if (bounds.length > 2) throw new Error('error calling slice: too many slice indexes: 3');
  const len = typeof item === 'string' ? item.length : Array.isArray(item) ? item.length : -1;
  if (len < 0) throw new Error(`error calling slice: can't slice item of type ${goTypeName(item)}`);
  const [lo, hi] = [bounds[0] === undefined ? 0 : Number(bounds[0]), bounds[1] === undefined ? len : Number(bounds[1])];
  if (!(lo >= 0 && lo <= hi && hi <= len)) throw new Error(`error calling slice: invalid slice index: ${lo} > ${hi}`);
  return (item as string | unknown[]).slice(lo, hi);
}

function htmlEscape(s: string): string {
  return s.replace(/[&'<>"\0]/g, (c) => ({ '&': '&amp;', "'": '&#39;', '<': '&lt;', '>': '&gt;', '"': '&#34;', '\0': '\uFFFD' })[c] ?? c);
}

function jsEscape(s: string): string {
  return s.replace(/[\\'"<>&=]|[\x00-\x1f]/g, (c) => {
    if (c === '\\' || c === "'" || c === '"') return `\\${c}`;
    return `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
  });
}

function evalArgsText(args: unknown[]): string {
  return args.length === 1 && typeof args[0] === 'string' ? args[0] : sprint(args);
}

const BUILTINS: Record<string, TemplateFunction> = {
  not: (...a) => {
    if (a.length !== 1) throw new Error(`wrong number of args for not: want 1 got ${a.length}`);
    return !isTrue(a[0]);
  },
  len: (...a) => {
    if (a.length !== 1) throw new Error(`wrong number of args for len: want 1 got ${a.length}`);
    return lengthOf(a[0]);
  },
  index: (item, ...ix) => indexFn(item, ...ix),
  slice: (item, ...b) => sliceFn(item, ...b),
  print: (...a) => sprint(a),
  println: (...a) => sprintln(a),
  printf: (format, ...a) => {
    if (typeof format !== 'string') throw new Error(`wrong type for value; expected string; got ${goTypeName(format)}`);
    return sprintf(format, a);
  },
  eq: (a, ...bs) => {
    if (bs.length === 0) throw new Error('missing argument for comparison');
    return bs.some((b) => equal(a, b));
  },
  ne: (...a) => {
    if (a.length !== 2) throw new Error(`wrong number of args for ne: want 2 got ${a.length}`);
    return !equal(a[0], a[1]);
  },
  lt: (a, b) => order(a, b) < 0,
  le: (a, b) => order(a, b) <= 0,
  gt: (a, b) => order(a, b) > 0,
  ge: (a, b) => order(a, b) >= 0,
  html: (...a) => htmlEscape(evalArgsText(a)),
  js: (...a) => jsEscape(evalArgsText(a)),
  urlquery: (...a) => encodeURIComponent(evalArgsText(a)).replace(/%20/g, '+').replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
  call: (fn) => {
    throw new Error(`error calling call: non-function of type ${goTypeName(fn)}`);
  },
};

interface Variable {
  name: string;
  value: unknown;
}

/** One execution: output, the variable stack (`$` first), the functions. */
class State {
  private readonly vars: Variable[];
  out = '';
  private pipe: Pipeline | undefined;

  constructor(private readonly name: string, data: unknown, private readonly funcs: Record<string, TemplateFunction>) {
    this.vars = [{ name: '$', value: data }];
  }

  error(message: string): TemplateExecError {
    const where = this.pipe ? `${this.pipe.line}: executing "${this.name}" at <${this.pipe.source.replace(/^\{\{-?\s*|\s*-?\}\}$/g, '')}>` : '1';
    return new TemplateExecError(`template: ${this.name}:${where}: ${message}`);
  }

  private mark(): number { return this.vars.length; }
  private pop(mark: number): void { this.vars.length = mark; }

  private variable(name: string): unknown {
    for (let i = this.vars.length - 1; i >= 0; i--) if (this.vars[i].name === name) return this.vars[i].value;
    throw this.error(`undefined variable: ${name}`);
  }

  private setVariable(name: string, value: unknown): void {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      if (this.vars[i].name === name) {
        this.vars[i].value = value;
        return;
      }
    }
    throw this.error(`undefined variable: ${name}`);
  }

  private write(text: string): void {
    this.out += text;
    if (this.out.length > MAX_TEMPLATE_OUTPUT) throw this.error(`output exceeds ${MAX_TEMPLATE_OUTPUT} bytes`);
  }

  walk(dot: unknown, nodes: Node[]): void {
    for (const n of nodes) {
      switch (n.kind) {
        case 'text':
          this.write(n.text);
          break;
        case 'action': {
          const v = this.pipeline(dot, n.pipe);
          // An action that declares or assigns prints nothing.
          if (n.pipe.vars.length === 0) this.write(v === NO_VALUE ? '<no value>' : formatValue(v));
          break;
        }
        case 'if':
        case 'with': {
          const mark = this.mark();
          const v = this.pipeline(dot, n.pipe);
          if (isTrue(v)) this.walk(n.kind === 'with' ? v : dot, n.list);
          else if (n.elseList) this.walk(dot, n.elseList);
          this.pop(mark);
          break;
        }
        case 'range':
          this.range(dot, n);
          break;
        case 'break':
          throw new BreakSignal();
        case 'continue':
          throw new ContinueSignal();
      }
    }
  }

  private range(dot: unknown, n: ControlNode): void {
    const mark = this.mark();
    const value = this.pipeline(dot, { ...n.pipe, vars: [] });
    // Declared variables: one takes the element; two take the index/key, then the element.
    for (const name of n.pipe.vars) {
      if (n.pipe.assign) this.setVariable(name, undefined);
      else this.vars.push({ name, value: undefined });
    }
    const items: [unknown, unknown][] = [];
    if (Array.isArray(value)) value.forEach((v, i) => items.push([i, v]));
    else if (isObject(value)) for (const k of Object.keys(value).sort()) items.push([k, value[k]]);
    else if (value !== null && value !== undefined) throw this.error(`range can't iterate over ${formatValue(value)}`);
    for (const [key, elem] of items) {
      const iterMark = this.mark();
      if (n.pipe.vars.length === 1) this.setVariable(n.pipe.vars[0], elem);
      if (n.pipe.vars.length === 2) {
        this.setVariable(n.pipe.vars[0], key);
        this.setVariable(n.pipe.vars[1], elem);
      }
      try {
        this.walk(elem, n.list);
      } catch (e) {
        if (e instanceof BreakSignal) {
          this.pop(iterMark);
          break;
        }
        if (!(e instanceof ContinueSignal)) throw e;
      }
      this.pop(iterMark);
    }
    if (items.length === 0 && n.elseList) this.walk(dot, n.elseList);
    this.pop(mark);
  }

  pipeline(dot: unknown, pipe: Pipeline): unknown {
    const outer = this.pipe;
    this.pipe = pipe;
    let value: Final = NO_FINAL;
    for (const cmd of pipe.cmds) value = this.command(dot, cmd, value);
    for (const name of pipe.vars) {
      if (pipe.assign) this.setVariable(name, value);
      else this.vars.push({ name, value });
    }
    this.pipe = outer;
    return value;
  }

  private notAFunction(args: Operand[], final: Final, what: string): void {
    if (args.length > 1 || final !== NO_FINAL) throw this.error(`can't give argument to non-function ${what}`);
  }

  private command(dot: unknown, cmd: Command, final: Final): unknown {
    const [first, ...rest] = cmd.args;
    switch (first.kind) {
      case 'field':
        return this.fields(dot, first.path, rest, final, `.${first.path.join('.')}`);
      case 'chain':
        return this.fields(this.arg(dot, first.base), first.path, rest, final, `.${first.path.join('.')}`);
      case 'variable': {
        const v = this.variable(first.name);
        if (first.path.length === 0) {
          this.notAFunction(cmd.args, final, first.name);
          return v;
        }
        return this.fields(v, first.path, rest, final, `${first.name}.${first.path.join('.')}`);
      }
      case 'function':
        return this.call(dot, first.name, rest, final);
      case 'pipe': {
        this.notAFunction(cmd.args, final, '(pipeline)');
        const mark = this.mark();
        const v = this.pipeline(dot, first.pipe);
        this.pop(mark);
        return v;
      }
      default:
        this.notAFunction(cmd.args, final, describeConstant(first));
        return this.arg(dot, first);
    }
  }

  /** Follows field names from `receiver`; a field cannot take arguments (the data has no methods). */
  private fields(receiver: unknown, path: string[], args: Operand[], final: Final, text: string): unknown {
    let v = receiver;
    for (const name of path) {
      if (v === null) throw this.error(`nil pointer evaluating ${text}`);
      if (!isObject(v)) throw this.error(`can't evaluate field ${name} in type ${goTypeName(v)}`);
      if (isGoMap(v)) {
        v = Object.hasOwn(v, name) ? v[name] : NO_VALUE;
        continue;
      }
      if (!Object.hasOwn(v, name)) throw this.error(`can't evaluate field ${name} in type struct`);
      v = v[name];
    }
    if (args.length > 0 || final !== NO_FINAL) throw this.error(`${text} is not a method but has arguments`);
    return v;
  }

  private arg(dot: unknown, a: Operand): unknown {
    switch (a.kind) {
      case 'field': return this.fields(dot, a.path, [], NO_FINAL, `.${a.path.join('.')}`);
      case 'chain': return this.fields(this.arg(dot, a.base), a.path, [], NO_FINAL, `.${a.path.join('.')}`);
      case 'variable': return a.path.length === 0 ? this.variable(a.name) : this.fields(this.variable(a.name), a.path, [], NO_FINAL, a.name);
      case 'dot': return dot;
      case 'nil': return null;
      case 'bool': return a.value;
      case 'number': return a.float && typeof a.value === 'number' && Number.isInteger(a.value) ? new GoFloat(a.value) : a.value;
      case 'string': return a.value;
      case 'function': return this.call(dot, a.name, [], NO_FINAL);
      case 'pipe': {
        const mark = this.mark();
        const v = this.pipeline(dot, a.pipe);
        this.pop(mark);
        return v;
      }
    }
  }

  private call(dot: unknown, name: string, args: Operand[], final: Final): unknown {
    // `and` and `or` stop at the first argument that decides (Go 1.18).
    if (name === 'and' || name === 'or') {
      const thunks: (() => unknown)[] = args.map((a) => () => this.arg(dot, a));
      if (final !== NO_FINAL) thunks.push(() => final);
      if (thunks.length === 0) throw this.error(`wrong number of args for ${name}: want at least 1 got 0`);
      let v: unknown;
      for (const t of thunks) {
        v = t();
        if (isTrue(v) === (name === 'or')) return v;
      }
      return v;
    }
    const fn = this.funcs[name] ?? BUILTINS[name];
    if (!fn) throw this.error(`"${name}" is not a defined function`);
    const values = args.map((a) => this.arg(dot, a));
    if (final !== NO_FINAL) values.push(final);
    try {
      return fn(...values);
    } catch (e) {
      throw this.error(`error calling ${name}: ${(e as Error).message.replace(/^error calling \w+: /, '')}`);
    }
  }
}

function describeConstant(a: Operand): string {
  switch (a.kind) {
    case 'string': return JSON.stringify(a.value);
    case 'number': return a.text;
    case 'bool': return String(a.value);
    case 'nil': return 'nil';
    default: return '.';
  }
}

/** Runs a parsed template named `name` on `data`; throws TemplateExecError. */
export function executeTemplate(name: string, nodes: Node[], data: unknown, funcs: Record<string, TemplateFunction> = {}): string {
  const state = new State(name, data, funcs);
  try {
    state.walk(data, nodes);
  } catch (e) {
    if (e instanceof BreakSignal || e instanceof ContinueSignal) throw state.error('break or continue outside range');
    throw e;
  }
  return state.out;
}
