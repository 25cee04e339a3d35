// `GET /report?format=<template>` (user-surface spec §1.5, §5.1): the subset of
// Go text/template that status scripts use — field paths (`{{.Router.Name}}`),
// `json` and `len` functions, and `{{range <path>}}…{{end}}` blocks.
import { toJsonText } from './json-text.js';

export class TemplateParseError extends Error {}
export class TemplateExecError extends Error {}

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; fn: 'print' | 'json' | 'len'; path: string[] }
  | { kind: 'range'; path: string[]; body: Node[] };

function parsePath(arg: string, source: string): string[] {
  if (arg === '.') return [];
  if (!/^(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(arg)) {
    throw new TemplateParseError(`template: report:1: unexpected "${arg}" in ${source}`);
  }
  return arg.slice(1).split('.');
}

/** Parse a template; throws TemplateParseError with a Go-like message. */
export function parseTemplate(src: string): Node[] {
  const root: Node[] = [];
  const stack: Node[][] = [root];
  let rest = src;
  while (rest.length > 0) {
    const open = rest.indexOf('{{');
    if (open < 0) {
      stack[stack.length - 1].push({ kind: 'text', text: rest });
      break;
    }
    if (open > 0) stack[stack.length - 1].push({ kind: 'text', text: rest.slice(0, open) });
    const close = rest.indexOf('}}', open + 2);
    if (close < 0) throw new TemplateParseError('template: report:1: unclosed action');
    const words = rest.slice(open + 2, close).trim().split(/\s+/).filter((w) => w !== '');
    rest = rest.slice(close + 2);
    const [head, ...args] = words;
    if (head === undefined) throw new TemplateParseError('template: report:1: missing value for command');
    if (head === 'end') {
      if (stack.length === 1) throw new TemplateParseError('template: report:1: unexpected {{end}}');
      stack.pop();
    } else if (head === 'range') {
      if (args.length !== 1) throw new TemplateParseError('template: report:1: range takes one argument');
      const node: Node = { kind: 'range', path: parsePath(args[0], 'range'), body: [] };
      stack[stack.length - 1].push(node);
      stack.push(node.body);
    } else if (head === 'json' || head === 'len') {
      if (args.length !== 1) throw new TemplateParseError(`template: report:1: wrong number of args for ${head}: want 1 got ${args.length}`);
      stack[stack.length - 1].push({ kind: 'action', fn: head, path: parsePath(args[0], head) });
    } else if (head.startsWith('.')) {
      if (args.length !== 0) throw new TemplateParseError(`template: report:1: can't give argument to non-function ${head}`);
      stack[stack.length - 1].push({ kind: 'action', fn: 'print', path: parsePath(head, 'command') });
    } else {
      throw new TemplateParseError(`template: report:1: function "${head}" not defined`);
    }
  }
  if (stack.length > 1) throw new TemplateParseError('template: report:1: unexpected EOF');
  return root;
}

function lookup(dot: unknown, path: string[]): unknown {
  let v = dot;
  for (const name of path) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !(name in v)) {
      throw new TemplateExecError(`template: report:1: can't evaluate field ${name}`);
    }
    v = (v as Record<string, unknown>)[name];
  }
  return v;
}

/** Go's fmt.Sprint of a value, close enough for the report's shapes. */
function goPrint(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(goPrint).join(' ')}]`;
  if (typeof v === 'object') return `{${Object.values(v as Record<string, unknown>).map(goPrint).join(' ')}}`;
  return String(v);
}

function exec(nodes: Node[], dot: unknown): string {
  let out = '';
  for (const n of nodes) {
    if (n.kind === 'text') out += n.text;
    else if (n.kind === 'range') {
      const list = lookup(dot, n.path);
      if (list === null || list === undefined) continue;
      if (!Array.isArray(list)) throw new TemplateExecError("template: report:1: range can't iterate over a non-list");
      for (const item of list) out += exec(n.body, item);
    } else {
      const v = lookup(dot, n.path);
      if (n.fn === 'print') out += goPrint(v);
      else if (n.fn === 'json') out += toJsonText(v);
      else if (Array.isArray(v) || typeof v === 'string') out += String(v.length);
      else if (v === null || v === undefined) out += '0';
      else if (typeof v === 'object') out += String(Object.keys(v).length);
      else throw new TemplateExecError(`template: report:1: len of type ${typeof v}`);
    }
  }
  return out;
}

/** Parse and run; throws TemplateParseError (400) or TemplateExecError (500). */
export function renderTemplate(src: string, data: unknown): string {
  return exec(parseTemplate(src), data);
}
