// Go text/template grammar (pkg text/template/parse): text and actions
// `{{…}}` with trim markers `{{- ` / ` -}}` and comments `{{/* */}}`;
// pipelines of commands joined by `|`, with `$x :=` / `$x =` declarations;
// operands are fields (`.A.B`), variables (`$x.A`), `.`, constants (strings,
// raw strings, characters, numbers, true/false/nil), function names and
// parenthesised pipelines (with field chains `(…).A`); control actions
// if/else if/else, with/else with, range/else, break, continue, end.
// `define`, `template` and `block` are not supported (one template only).

export class TemplateParseError extends Error {}

export type Operand =
  | { kind: 'field'; path: string[] }
  | { kind: 'variable'; name: string; path: string[] }
  | { kind: 'dot' }
  | { kind: 'nil' }
  | { kind: 'bool'; value: boolean }
  | { kind: 'number'; value: number | bigint; float: boolean; text: string }
  | { kind: 'string'; value: string }
  | { kind: 'function'; name: string }
  | { kind: 'pipe'; pipe: Pipeline }
  | { kind: 'chain'; base: Operand; path: string[] };

export interface Command {
  args: Operand[];
}

export interface Pipeline {
  /** Variables declared (`:=`) or assigned (`=`) from the pipeline's value. */
  vars: string[];
  assign: boolean;
  cmds: Command[];
  /** Where the action starts, for error messages. */
  line: number;
  source: string;
}

export interface ControlNode {
  kind: 'if' | 'with' | 'range';
  pipe: Pipeline;
  list: Node[];
  elseList?: Node[];
}

export type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipe: Pipeline }
  | ControlNode
  | { kind: 'break' | 'continue'; line: number };

type Token =
  | { t: 'field'; path: string[]; space: boolean }
  | { t: 'variable'; name: string; path: string[]; space: boolean }
  | { t: 'dot'; space: boolean }
  | { t: 'string'; value: string; space: boolean }
  | { t: 'number'; value: number | bigint; float: boolean; text: string; space: boolean }
  | { t: 'ident'; name: string; space: boolean }
  | { t: 'pipe' | 'lparen' | 'rparen' | 'declare' | 'assign' | 'comma'; space: boolean };

interface RawAction {
  tokens: Token[];
  line: number;
  source: string;
}

type Item = { kind: 'text'; text: string } | { kind: 'action'; action: RawAction };

const SPACE = /[ \t\r\n]/;
const ALNUM = /[A-Za-z0-9_]/;
/** Functions the engine provides (exec.ts); any other name is a parse error, as in Go. */
export const BUILTIN_FUNCTIONS = new Set([
  'and', 'or', 'not', 'len', 'index', 'slice', 'print', 'printf', 'println', 'eq', 'ne', 'lt', 'le', 'gt', 'ge',
  'html', 'js', 'urlquery', 'call', 'json',
]);

class Parser {
  constructor(private readonly name: string, private readonly src: string) {}

  error(line: number, message: string): TemplateParseError {
    return new TemplateParseError(`template: ${this.name}:${line}: ${message}`);
  }

  lineAt(pos: number): number {
    let n = 1;
    for (let i = 0; i < pos; i++) if (this.src.charCodeAt(i) === 10) n++;
    return n;
  }

  /** Splits the source into text and tokenised actions, applying trim markers and dropping comments. */
  items(): Item[] {
    const out: Item[] = [];
    const src = this.src;
    let pos = 0;
    let trimNext = false;
    while (pos < src.length) {
      const open = src.indexOf('{{', pos);
      let text = open < 0 ? src.slice(pos) : src.slice(pos, open);
      if (trimNext) text = text.replace(/^[ \t\r\n]+/, '');
      trimNext = false;
      if (open < 0) {
        if (text !== '') out.push({ kind: 'text', text });
        break;
      }
      let start = open + 2;
      if (src[start] === '-' && SPACE.test(src[start + 1] ?? '')) {
        text = text.replace(/[ \t\r\n]+$/, '');
        start += 2;
      }
      if (text !== '') out.push({ kind: 'text', text });
      const line = this.lineAt(open);
      // A comment: `/* … */` right after the delimiter (and trim marker), then the closing delimiter.
      if (src.startsWith('/*', start)) {
        const end = src.indexOf('*/', start + 2);
        if (end < 0) throw this.error(line, 'unclosed comment');
        let after = end + 2;
        if (src.startsWith(' -}}', after)) {
          trimNext = true;
          after += 4;
        } else if (src.startsWith('}}', after)) {
          after += 2;
        } else {
          throw this.error(line, 'comment ends before closing delimiter');
        }
        pos = after;
        continue;
      }
      const { tokens, end, trim } = this.tokenize(start, line);
      out.push({ kind: 'action', action: { tokens, line, source: src.slice(open, end) } });
      trimNext = trim;
      pos = end;
    }
    return out;
  }

  /** Tokens of one action from `pos` to its closing delimiter. */
  tokenize(pos: number, line: number): { tokens: Token[]; end: number; trim: boolean } {
    const src = this.src;
    const tokens: Token[] = [];
    let i = pos;
    let space = true;
    for (;;) {
      if (i >= src.length) throw this.error(line, 'unclosed action');
      const c = src[i];
      if (SPACE.test(c)) {
        if (src[i + 1] === '-' && src.startsWith('}}', i + 2)) return { tokens, end: i + 4, trim: true };
        space = true;
        i++;
        continue;
      }
      if (src.startsWith('}}', i)) return { tokens, end: i + 2, trim: false };
      const sp = space;
      space = false;
      if (c === '|') { tokens.push({ t: 'pipe', space: sp }); i++; continue; }
      if (c === '(') { tokens.push({ t: 'lparen', space: sp }); i++; continue; }
      if (c === ')') { tokens.push({ t: 'rparen', space: sp }); i++; continue; }
      if (c === ',') { tokens.push({ t: 'comma', space: sp }); i++; continue; }
      if (src.startsWith(':=', i)) { tokens.push({ t: 'declare', space: sp }); i += 2; continue; }
      if (c === '=') { tokens.push({ t: 'assign', space: sp }); i++; continue; }
      if (c === '"') {
        const { value, end } = this.quoted(i, line);
        tokens.push({ t: 'string', value, space: sp });
        i = end;
        continue;
      }
      if (c === '`') {
        const end = src.indexOf('`', i + 1);
        if (end < 0) throw this.error(line, 'unterminated raw quoted string');
        tokens.push({ t: 'string', value: src.slice(i + 1, end), space: sp });
        i = end + 1;
        continue;
      }
      if (c === "'") {
        const { value, end } = this.charConstant(i, line);
        tokens.push({ t: 'number', value, float: false, text: src.slice(i, end), space: sp });
        i = end;
        continue;
      }
      if (c === '.' && !/[0-9]/.test(src[i + 1] ?? '')) {
        if (!ALNUM.test(src[i + 1] ?? '')) {
          tokens.push({ t: 'dot', space: sp });
          i++;
          continue;
        }
        const { path, end } = this.fieldPath(i);
        tokens.push({ t: 'field', path, space: sp });
        i = end;
        continue;
      }
      if (c === '$') {
        let j = i + 1;
        while (ALNUM.test(src[j] ?? '')) j++;
        const name = src.slice(i, j);
        const { path, end } = src[j] === '.' && ALNUM.test(src[j + 1] ?? '') ? this.fieldPath(j) : { path: [], end: j };
        tokens.push({ t: 'variable', name, path, space: sp });
        i = end;
        continue;
      }
      if (/[0-9+\-.]/.test(c)) {
        const m = /^[+-]?(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(\d[\d_]*)?\.?\d*([eE][+-]?\d+)?)/.exec(src.slice(i));
        const text = m?.[0] ?? '';
        if (text === '' || text === '+' || text === '-' || ALNUM.test(src[i + text.length] ?? '')) {
          throw this.error(line, `bad number syntax: "${src.slice(i, i + Math.max(text.length, 1) + (ALNUM.test(src[i + text.length] ?? '') ? 1 : 0))}"`);
        }
        tokens.push({ t: 'number', ...parseNumber(text, (msg) => this.error(line, msg)), text, space: sp });
        i += text.length;
        continue;
      }
      if (/[A-Za-z_]/.test(c)) {
        let j = i;
        while (ALNUM.test(src[j] ?? '')) j++;
        tokens.push({ t: 'ident', name: src.slice(i, j), space: sp });
        i = j;
        continue;
      }
      throw this.error(line, `unexpected "${c}" in command`);
    }
  }

  fieldPath(pos: number): { path: string[]; end: number } {
    const path: string[] = [];
    let i = pos;
    while (this.src[i] === '.' && ALNUM.test(this.src[i + 1] ?? '')) {
      let j = i + 1;
      while (ALNUM.test(this.src[j] ?? '')) j++;
      path.push(this.src.slice(i + 1, j));
      i = j;
    }
    return { path, end: i };
  }

  quoted(pos: number, line: number): { value: string; end: number } {
    let i = pos + 1;
    let out = '';
    for (;;) {
      const c = this.src[i];
      if (c === undefined || c === '\n') throw this.error(line, 'unterminated quoted string');
      if (c === '"') return { value: out, end: i + 1 };
      if (c !== '\\') {
        out += c;
        i++;
        continue;
      }
      const e = this.src[i + 1];
      const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'", a: '\x07', b: '\b', f: '\f', v: '\v' };
      if (e !== undefined && e in simple) {
        out += simple[e];
        i += 2;
      } else if (e === 'x' || e === 'u' || e === 'U') {
        const n = e === 'x' ? 2 : e === 'u' ? 4 : 8;
        const hex = this.src.slice(i + 2, i + 2 + n);
        if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex)) throw this.error(line, 'invalid syntax in quoted string');
        out += String.fromCodePoint(parseInt(hex, 16));
        i += 2 + n;
      } else if (e !== undefined && /[0-7]/.test(e)) {
        const oct = this.src.slice(i + 1, i + 4);
        if (!/^[0-7]{3}$/.test(oct)) throw this.error(line, 'invalid syntax in quoted string');
        out += String.fromCharCode(parseInt(oct, 8));
        i += 4;
      } else {
        throw this.error(line, 'invalid syntax in quoted string');
      }
    }
  }

  charConstant(pos: number, line: number): { value: number; end: number } {
    const end = this.src.indexOf("'", pos + (this.src[pos + 1] === '\\' ? 3 : 2));
    if (end < 0) throw this.error(line, 'unterminated character constant');
    const body = this.src.slice(pos + 1, end);
    const text = body.startsWith('\\') ? this.quotedText(body, line) : body;
    const cp = text.codePointAt(0);
    if (cp === undefined || [...text].length !== 1) throw this.error(line, `malformed character constant: '${body}'`);
    return { value: cp, end: end + 1 };
  }

  quotedText(body: string, line: number): string {
    return new Parser(this.name, `"${body.replace(/"/g, '\\"')}"`).quoted(0, line).value;
  }
}

function parseNumber(text: string, error: (m: string) => TemplateParseError): { value: number | bigint; float: boolean } {
  const clean = text.replace(/_/g, '');
  if (/^[+-]?0[xXbBoO]/.test(clean)) {
    const neg = clean.startsWith('-');
    const body = clean.replace(/^[+-]/, '');
    const v = BigInt(body.toLowerCase().replace(/^0o/, '0o'));
    const signed = neg ? -v : v;
    return { value: Number.isSafeInteger(Number(signed)) ? Number(signed) : signed, float: false };
  }
  if (/^[+-]?\d+$/.test(clean)) {
    const v = BigInt(clean);
    return { value: Number.isSafeInteger(Number(v)) ? Number(v) : v, float: false };
  }
  const f = Number(clean);
  if (!Number.isFinite(f)) throw error(`bad number syntax: "${text}"`);
  return { value: f, float: true };
}

/** Builds the tree from the items: one cursor over the actions, recursing into control structures. */
class TreeBuilder {
  private i = 0;
  /** How many {{range}} bodies enclose the current position ({{break}}/{{continue}} need one). */
  private rangeDepth = 0;
  /** Variables in scope, innermost last: a reference to any other is a parse error, as in Go. */
  private readonly vars: string[] = ['$'];
  constructor(private readonly p: Parser, private readonly items: Item[]) {}

  build(): Node[] {
    const { list, stop } = this.list();
    if (stop) throw this.p.error(stop.line, `unexpected ${stop.source}`);
    return list;
  }

  /** Nodes up to an `{{else}}`/`{{end}}` (returned as `stop`) or the end of input. */
  private list(): { list: Node[]; stop?: RawAction & { word: 'else' | 'end' } } {
    const list: Node[] = [];
    while (this.i < this.items.length) {
      const item = this.items[this.i++];
      if (item.kind === 'text') {
        list.push({ kind: 'text', text: item.text });
        continue;
      }
      const a = item.action;
      const head = a.tokens[0];
      const word = head?.t === 'ident' ? head.name : undefined;
      if (word === 'end' || word === 'else') return { list, stop: { ...a, word } };
      list.push(this.action(a, word));
    }
    return { list };
  }

  private action(a: RawAction, word: string | undefined): Node {
    switch (word) {
      case 'if':
      case 'with':
      case 'range':
        return this.control(word, a, a.tokens.slice(1));
      case 'break':
      case 'continue':
        if (a.tokens.length !== 1) throw this.p.error(a.line, `unexpected ${describe(a.tokens[1])} in {{${word}}}`);
        if (this.rangeDepth === 0) throw this.p.error(a.line, `{{${word}}} outside {{range}}`);
        return { kind: word, line: a.line };
      case 'define':
      case 'template':
      case 'block':
        throw this.p.error(a.line, `{{${word}}} is not supported in report formats (one template only)`);
      default:
        if (a.tokens.length === 0) throw this.p.error(a.line, 'missing value for command');
        return { kind: 'action', pipe: this.pipeline(a, a.tokens, false) };
    }
  }

  private control(kind: 'if' | 'with' | 'range', a: RawAction, tokens: Token[]): Node {
    if (tokens.length === 0) throw this.p.error(a.line, `missing value for ${kind}`);
    const mark = this.vars.length;
    const pipe = this.pipeline(a, tokens, kind === 'range');
    try {
      return this.controlBody(kind, a, pipe);
    } finally {
      this.vars.length = mark;
    }
  }

  /** Parses a pipeline and brings the variables it declares into scope. */
  private pipeline(a: RawAction, tokens: Token[], rangeVars: boolean): Pipeline {
    const pipe = new PipeParser(this.p, a, tokens, rangeVars, this.vars).pipeline();
    if (!pipe.assign) this.vars.push(...pipe.vars);
    return pipe;
  }

  private controlBody(kind: 'if' | 'with' | 'range', a: RawAction, pipe: Pipeline): Node {
    if (kind === 'range') this.rangeDepth++;
    const body = this.list();
    if (kind === 'range') this.rangeDepth--;
    if (!body.stop) throw this.p.error(a.line, 'unexpected EOF');
    const node: ControlNode = { kind, pipe, list: body.list };
    if (body.stop.word === 'end') {
      if (body.stop.tokens.length !== 1) throw this.p.error(body.stop.line, `unexpected ${describe(body.stop.tokens[1])} in end`);
      return node;
    }
    // {{else}}, or {{else if …}} / {{else with …}}: a nested structure sharing our {{end}}.
    const rest = body.stop.tokens.slice(1);
    const chained = rest[0]?.t === 'ident' && (rest[0].name === 'if' || rest[0].name === 'with') ? rest[0].name : undefined;
    if (chained !== undefined) {
      if (chained !== kind) {
        throw this.p.error(body.stop.line, `unexpected ${describe(rest[0])} in else`);
      }
      node.elseList = [this.control(chained, body.stop, rest.slice(1))];
      return node;
    }
    if (rest.length > 0) throw this.p.error(body.stop.line, `unexpected ${describe(rest[0])} in else`);
    const elseBody = this.list();
    if (!elseBody.stop) throw this.p.error(a.line, 'unexpected EOF');
    if (elseBody.stop.word !== 'end') throw this.p.error(elseBody.stop.line, 'expected end; found {{else}}');
    node.elseList = elseBody.list;
    return node;
  }
}

function describe(t: Token | undefined): string {
  if (!t) return 'end of action';
  switch (t.t) {
    case 'field': return `<.${t.path.join('.')}>`;
    case 'variable': return `<${t.name}>`;
    case 'ident': return `<${t.name}>`;
    case 'string': return JSON.stringify(t.value);
    case 'number': return `<${t.text}>`;
    case 'dot': return '<.>';
    case 'pipe': return '"|"';
    case 'lparen': return '"("';
    case 'rparen': return '")"';
    case 'comma': return '","';
    case 'declare': return '":="';
    case 'assign': return '"="';
  }
}

/** Parses a pipeline from one action's tokens. */
class PipeParser {
  private i = 0;
  constructor(
    private readonly p: Parser,
    private readonly a: RawAction,
    private readonly tokens: Token[],
    private readonly rangeVars: boolean,
    private readonly scope: readonly string[],
  ) {}

  private known(name: string): string {
    if (!this.scope.includes(name)) throw this.p.error(this.a.line, `undefined variable "${name}"`);
    return name;
  }

  private peek(): Token | undefined { return this.tokens[this.i]; }

  pipeline(): Pipeline {
    const pipe = this.pipe(true);
    if (this.i < this.tokens.length) throw this.p.error(this.a.line, `unexpected ${describe(this.peek())} in operand`);
    return pipe;
  }

  private pipe(top: boolean): Pipeline {
    const vars: string[] = [];
    let assign = false;
    if (top) {
      // `$x :=`, `$x =`, or in range `$i, $x :=`.
      const t0 = this.tokens[0];
      const t1 = this.tokens[1];
      if (t0?.t === 'variable' && t0.path.length === 0 && (t1?.t === 'declare' || t1?.t === 'assign')) {
        assign = t1.t === 'assign';
        vars.push(assign ? this.known(t0.name) : t0.name);
        this.i = 2;
      } else if (t0?.t === 'variable' && t0.path.length === 0 && t1?.t === 'comma') {
        const t2 = this.tokens[2];
        const t3 = this.tokens[3];
        if (!this.rangeVars) throw this.p.error(this.a.line, 'too many declarations in command');
        if (t2?.t !== 'variable' || t2.path.length > 0 || (t3?.t !== 'declare' && t3?.t !== 'assign')) {
          throw this.p.error(this.a.line, `unexpected ${describe(t2)} in range`);
        }
        assign = t3.t === 'assign';
        vars.push(...(assign ? [this.known(t0.name), this.known(t2.name)] : [t0.name, t2.name]));
        this.i = 4;
      }
    }
    const cmds: Command[] = [];
    for (;;) {
      const args: Operand[] = [];
      for (;;) {
        const t = this.peek();
        if (t === undefined || t.t === 'pipe' || t.t === 'rparen') break;
        args.push(this.operand());
      }
      if (args.length === 0) throw this.p.error(this.a.line, 'missing value for command');
      cmds.push({ args });
      const t = this.peek();
      if (t?.t !== 'pipe') break;
      this.i++;
    }
    if (cmds.length === 0) throw this.p.error(this.a.line, 'missing value for command');
    for (const c of cmds.slice(1)) {
      const first = c.args[0];
      if (first.kind !== 'function' && first.kind !== 'field' && first.kind !== 'chain' && first.kind !== 'variable') {
        throw this.p.error(this.a.line, `non executable command in pipeline stage ${cmds.indexOf(c) + 1}`);
      }
    }
    return { vars, assign, cmds, line: this.a.line, source: this.a.source };
  }

  private operand(): Operand {
    const t = this.tokens[this.i++];
    let base: Operand;
    switch (t.t) {
      case 'field': base = { kind: 'field', path: t.path }; break;
      case 'variable': base = { kind: 'variable', name: this.known(t.name), path: t.path }; break;
      case 'dot': base = { kind: 'dot' }; break;
      case 'string': base = { kind: 'string', value: t.value }; break;
      case 'number': base = { kind: 'number', value: t.value, float: t.float, text: t.text }; break;
      case 'ident':
        if (t.name === 'true' || t.name === 'false') base = { kind: 'bool', value: t.name === 'true' };
        else if (t.name === 'nil') base = { kind: 'nil' };
        else if (BUILTIN_FUNCTIONS.has(t.name)) base = { kind: 'function', name: t.name };
        else throw this.p.error(this.a.line, `function "${t.name}" not defined`);
        break;
      case 'lparen': {
        const pipe = this.pipe(false);
        if (this.tokens[this.i]?.t !== 'rparen') throw this.p.error(this.a.line, 'unclosed left paren');
        this.i++;
        base = { kind: 'pipe', pipe };
        break;
      }
      default:
        throw this.p.error(this.a.line, `unexpected ${describe(t)} in operand`);
    }
    // `(…).A.B` or `$x.A` written without a space: a field chain on the operand.
    const next = this.peek();
    if (next?.t === 'field' && !next.space) {
      this.i++;
      if (base.kind === 'nil' || base.kind === 'bool' || base.kind === 'number' || base.kind === 'string' || base.kind === 'function') {
        throw this.p.error(this.a.line, `unexpected . after term ${describe(t)}`);
      }
      return { kind: 'chain', base, path: next.path };
    }
    return base;
  }
}

/** Parses a template named `name` (Go's template.New(name).Parse(src)). */
export function parseTemplate(name: string, src: string): Node[] {
  const p = new Parser(name, src);
  return new TreeBuilder(p, p.items()).build();
}
