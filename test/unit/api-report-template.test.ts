// The Go text/template subset behind `weave report -f` (user-surface spec §1.5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderTemplate, TemplateExecError, TemplateParseError } from '../../controlplane/api/report-template.js';
import { toJsonText } from '../../controlplane/api/json-text.js';

const data = { Version: '2.8.1', Router: { Name: 'aa:bb:cc:dd:ee:ff', Peers: [{ NickName: 'a', UID: 2n ** 63n }, { NickName: 'b', UID: 1n }], Targets: [] as string[] }, DNS: { Entries: null } };

test('fields, json, len and range', () => {
  assert.equal(renderTemplate('{{.Version}}', data), '2.8.1');
  assert.equal(renderTemplate('name={{ .Router.Name }}\n', data), 'name=aa:bb:cc:dd:ee:ff\n');
  assert.equal(renderTemplate('{{len .Router.Peers}}', data), '2');
  assert.equal(renderTemplate('{{len .DNS.Entries}}', data), '0');
  assert.equal(renderTemplate('{{json .Router.Targets}}', data), '[]');
  assert.equal(renderTemplate('{{json .Router.Peers}}', data), '[{"NickName":"a","UID":9223372036854775808},{"NickName":"b","UID":1}]');
  assert.equal(renderTemplate('{{range .Router.Peers}}{{.NickName}};{{end}}', data), 'a;b;');
});

test('parse errors and execution errors are told apart', () => {
  assert.throws(() => renderTemplate('{{.Version', data), TemplateParseError);
  assert.throws(() => renderTemplate('{{range .Router.Peers}}', data), TemplateParseError);
  assert.throws(() => renderTemplate('{{printf "%s" .Version}}', data), TemplateParseError);
  assert.throws(() => renderTemplate('{{.Nope}}', data), TemplateExecError);
});

test('toJsonText indents like Go json.MarshalIndent and keeps u64 exact', () => {
  assert.equal(toJsonText({ a: [1, { b: 18446744073709551615n }], c: [], d: {}, e: null }, 4),
    '{\n    "a": [\n        1,\n        {\n            "b": 18446744073709551615\n        }\n    ],\n    "c": [],\n    "d": {},\n    "e": null\n}');
});
