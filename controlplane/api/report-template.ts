// `GET /report?format=<template>` (user-surface spec §1.5, §5.1): Go
// text/template over the report, as Weave's router runs it — a template named
// "format" with one extra function, `json` (compact JSON of its argument).
// The engine is go-template/ (grammar in parse.ts, execution in exec.ts).
import { executeTemplate, TemplateExecError } from './go-template/exec.js';
import { GoFloat } from './go-template/fmt.js';
import { parseTemplate, TemplateParseError } from './go-template/parse.js';
import { toJsonText } from './json-text.js';

export { TemplateExecError, TemplateParseError };

/** Weave's name for the report template: errors read `template: format:1: …`. */
const TEMPLATE_NAME = 'format';

const REPORT_FUNCTIONS = {
  // A whole float constant is written as encoding/json writes a float64 (no exponent below 1e21).
  json: (v: unknown): string => (v instanceof GoFloat ? String(v.value) : toJsonText(v)),
};

/** Parse and run; throws TemplateParseError (400) or TemplateExecError (500). */
export function renderTemplate(src: string, data: unknown): string {
  return executeTemplate(TEMPLATE_NAME, parseTemplate(TEMPLATE_NAME, src), data, REPORT_FUNCTIONS);
}
