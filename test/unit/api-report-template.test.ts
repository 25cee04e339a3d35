// Go text/template behind `weave report -f` (user-surface spec §1.5): every
// template in Weave's docs and tests, and the grammar around them, checked
// against what Go's own text/template printed for the same data.
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
  assert.throws(() => renderTemplate('{{nosuch .Version}}', data), /template: format:1: function "nosuch" not defined/);
  assert.throws(() => renderTemplate('{{.Nope}}', data), TemplateExecError);
});

/** A report of the shape Weave's status has (structs, a nil pointer, a nil slice, a map, a u64). */
const report = {
  Version: '2.8.1', Ratio: 0.25,
  Router: {
    Name: 'aa:bb:cc:dd:ee:ff', Encryption: false, Targets: ['10.0.0.2', '10.0.0.3'],
    Peers: [
      { Name: 'aa:bb:cc:dd:ee:ff', NickName: 'h1', UID: 18446744073709551615n, Connections: [{ Address: '10.0.0.2:6783', Outbound: true, State: 'established' }] },
      { Name: '11:22:33:44:55:66', NickName: 'h2', UID: 7, Connections: null },
    ],
    Interface: '',
  },
  DNS: {
    Domain: 'weave.local.', Upstream: ['192.0.2.53'], TTL: 1,
    Entries: [{ Hostname: 'web.weave.local.', Address: '10.32.0.1', Tombstone: 0 }, { Hostname: 'db.weave.local.', Address: '10.32.0.2', Tombstone: 1234 }],
  },
  IPAM: null, Labels: { b: 2, a: 1 },
};

/** Templates and what Go 1.19 text/template printed for them on the same data (Weave adds json). */
const GO_OUTPUTS: [string, string][] = [
  ['{{.Ratio}} {{printf "%v" .Ratio}} {{printf "%g" 100000000.0}}', '0.25 0.25 1e+08'],
  ['{{ 1e6 }} {{ 1.0 }} {{printf "%v %d %d" 2.0 3 4.0}} {{json 1e6}} {{eq 2.0 2.0}} {{if 0.0}}t{{else}}f{{end}}', '1e+06 1 2 3 %!d(float64=4) 1000000 true f'],
  ["{{range .Router.Targets}}{{.}}{{\"\\n\"}}{{end}}", "10.0.0.2\n10.0.0.3\n"],
  ["{{.DNS.Domain}}", "weave.local."],
  ["{{json .DNS}}", "{\"Domain\":\"weave.local.\",\"Upstream\":[\"192.0.2.53\"],\"TTL\":1,\"Entries\":[{\"Hostname\":\"web.weave.local.\",\"Address\":\"10.32.0.1\",\"Tombstone\":0},{\"Hostname\":\"db.weave.local.\",\"Address\":\"10.32.0.2\",\"Tombstone\":1234}]}"],
  ["{{len .DNS.Entries}}", "2"],
  ["{{.Router.Name}}", "aa:bb:cc:dd:ee:ff"],
  ["{{if .Router.Encryption}}on{{else}}off{{end}}", "off"],
  ["{{if eq .Version \"2.8.0\"}}old{{else if eq .Version \"2.8.1\"}}yes{{else}}other{{end}}", "yes"],
  ["{{with .IPAM}}has ipam{{else}}no ipam{{end}}", "no ipam"],
  ["{{with .DNS}}{{.Domain}} ttl={{.TTL}}{{end}}", "weave.local. ttl=1"],
  ["{{range $i, $p := .Router.Peers}}{{$i}}:{{$p.NickName}}({{len $p.Connections}}) {{end}}", "0:h1(1) 1:h2(0) "],
  ["{{range .Router.Peers}}{{.NickName}} {{.UID}}{{\"\\n\"}}{{end}}", "h1 18446744073709551615\nh2 7\n"],
  ["{{printf \"%s has %d peers\" .Router.Name (len .Router.Peers)}}", "aa:bb:cc:dd:ee:ff has 2 peers"],
  ["{{printf \"%-10s|%5d|%05d|%x|%q|%v|%t|%.2f\" \"ab\" 42 42 255 \"hi\" .Router.Targets true .Ratio}}", "ab        |   42|00042|ff|\"hi\"|[10.0.0.2 10.0.0.3]|true|0.25"],
  ["{{index .Router.Targets 1}}", "10.0.0.3"],
  ["{{index .Labels \"b\"}}", "2"],
  ["{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}", "a=1;b=2;"],
  ["{{.Router.Targets | len}}", "2"],
  ["{{.Version | printf \"v%s\"}}", "v2.8.1"],
  ["{{- /* comment */ -}}  {{ .Version -}}  !", "2.8.1!"],
  ["a  {{- .Version }}  b {{- \"c\" -}}  d", "a2.8.1  bcd"],
  ["{{$n := len .Router.Peers}}{{if gt $n 1}}many{{end}} {{$n}}", "many 2"],
  ["{{range .DNS.Entries}}{{if .Tombstone}}{{continue}}{{end}}{{.Hostname}} {{.Address}}{{\"\\n\"}}{{end}}", "web.weave.local. 10.32.0.1\n"],
  ["{{range .Router.Peers}}{{if eq .NickName \"h2\"}}{{break}}{{end}}{{.NickName}};{{end}}", "h1;"],
  ["{{and 1 0 \"x\"}} {{or 0 \"\" \"y\"}} {{not .Router.Encryption}} {{and .IPAM .IPAM.Domain}}", "0 y true <nil>"],
  ["{{print \"a\" 1 2 \"b\" 3}}", "a1 2b3"],
  ["{{println \"a\" 1}}", "a 1\n"],
  ["{{printf \"%d\" \"x\"}} {{printf \"%s\"}} {{printf \"%d\" 1 2}}", "%!d(string=x) %!s(MISSING) 1%!(EXTRA int=2)"],
  ["{{(index .Router.Peers 0).NickName}}", "h1"],
  ["{{html \"<a href='x'>\"}} {{js \"it's <b>\"}} {{urlquery \"a b&c\"}}", "&lt;a href=&#39;x&#39;&gt; it\\'s \\u003Cb\\u003E a+b%26c"],
  ["{{slice .Router.Targets 1}}", "[10.0.0.3]"],
  ["{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"],
  ["{{ 'a' }} {{ 0x1F }} {{ -3 }} {{ 1.5 }}", "97 31 -3 1.5"],
  ["{{\"}}\"}}", "}}"],
  ["{{range .Router.Targets}}{{.}}{{else}}empty{{end}}", "10.0.0.210.0.0.3"],
  ["{{if and .DNS (gt (len .DNS.Entries) 1)}}ok{{end}}", "ok"],
  ["{{.DNS.Upstream}}", "[192.0.2.53]"],
  ["{{len \"héllo\"}}", "6"],
  ["{{printf \"%v %+v\" .Router.Targets (index .DNS.Entries 0)}}", "[10.0.0.2 10.0.0.3] {Hostname:web.weave.local. Address:10.32.0.1 Tombstone:0}"],
  ["{{printf \"%6.2f|%-6s|%+d|%x\" 3.14159 \"ab\" 5 \"hi\"}}", "  3.14|ab    |+5|6869"],
  ["{{ .Router.Encryption }}", "false"],
  ["{{ .DNS.TTL | printf \"%03d\" }}", "001"],
  ["{{range $p := .Router.Peers}}{{range .Connections}}{{$p.NickName}}->{{.Address}} {{.State}}{{end}}{{end}}", "h1->10.0.0.2:6783 established"],
  ["{{with $d := .DNS}}{{$d.Domain}}{{end}}", "weave.local."],
  ["{{`raw \\n`}}", "raw \\n"],
  ["{{ne 1 2}} {{lt \"a\" \"b\"}} {{le 2 2}} {{ge 1 2}} {{eq 1 3 1}}", "true true true false true"],
];

/** Go refuses these when parsing... */
const GO_PARSE_ERRORS = [
  "{{.Version",
  "{{range .Router.Peers}}",
  "{{foo .Version}}",
  "{{end}}",
  "{{else}}",
  "{{break}}",
  "{{if}}x{{end}}",
  "{{$undefined}}",
];

/** ...and these when executing. */
const GO_EXEC_ERRORS = [
  "{{.Nope}}",
  "{{.Version.Nope}}",
  "{{index .Router.Targets 5}}",
  "{{index .Router.Targets 1.0}}",
  "{{.IPAM.Domain}}",
  "{{len 3}}",
  "{{\"x\" 1}}",
  "{{.Version 1}}",
  "{{range .Version}}{{end}}",
  "{{eq .Router.Peers 1}}",
];

test('string constants, pipelines, if/else if/with/range/break/continue, variables, printf, index, len, json: as Go prints them', () => {
  for (const [tpl, want] of GO_OUTPUTS) assert.equal(renderTemplate(tpl, report), want, tpl);
});

test('what Go refuses to parse is a parse error (400); what fails running is an execution error (500)', () => {
  for (const tpl of GO_PARSE_ERRORS) assert.throws(() => renderTemplate(tpl, report), TemplateParseError, tpl);
  for (const tpl of GO_EXEC_ERRORS) {
    assert.throws(() => renderTemplate(tpl, report), (e: Error) => e instanceof TemplateExecError && !(e instanceof TemplateParseError), tpl);
  }
});

test('errors read as Go\'s, naming the template "format" and the line', () => {
  assert.throws(() => renderTemplate('a\n{{if .Version}}', report), { message: 'template: format:2: unexpected EOF' });
  assert.throws(() => renderTemplate('{{$x}}', report), { message: 'template: format:1: undefined variable "$x"' });
  assert.throws(() => renderTemplate('{{.Nope}}', report), { message: /^template: format:1: executing "format" at <\.Nope>: can't evaluate field Nope/ });
});

test('toJsonText indents like Go json.MarshalIndent and keeps u64 exact', () => {
  assert.equal(toJsonText({ a: [1, { b: 18446744073709551615n }], c: [], d: {}, e: null }, 4),
    '{\n    "a": [\n        1,\n        {\n            "b": 18446744073709551615\n        }\n    ],\n    "c": [],\n    "d": {},\n    "e": null\n}');
});

test('a template cannot make the router hold unbounded output', () => {
  const many = { L: Array.from({ length: 64 }, (_, i) => i) };
  assert.throws(() => renderTemplate('{{range .L}}{{range $.L}}{{range $.L}}{{range $.L}}{{printf "%100d" .}}{{end}}{{end}}{{end}}{{end}}', many),
    { message: /output exceeds/ });
  assert.equal(renderTemplate('{{printf "%2000000d" 1}}', many), '%!(BADWIDTH)1');
});

test('a Go map field (a connection\'s Attrs): a missing key or a nil map is no value, not an error; JSON keeps null', async () => {
  const { goMap } = await import('../../controlplane/api/go-template/fmt.js');
  const conns = {
    Connections: [
      { State: 'established', Attrs: goMap({ name: 'sleeve', mtu: 1438 }) },
      { State: 'retrying', Attrs: goMap(null) },
    ],
  };
  // What Go's text/template prints for the same map[string]interface{} values.
  assert.equal(renderTemplate('{{range .Connections}}[{{.Attrs.mtu}}]{{end}}', conns), '[1438][<no value>]');
  assert.equal(renderTemplate('{{range .Connections}}{{if .Attrs}}{{.Attrs.name}}{{else}}none{{end}} {{end}}', conns), 'sleeve none ');
  assert.equal(renderTemplate('{{range .Connections}}{{.Attrs}} {{len .Attrs}};{{end}}', conns), 'map[mtu:1438 name:sleeve] 2;map[] 0;');
  assert.equal(renderTemplate('{{range .Connections}}{{index .Attrs "mtu"}};{{end}}', conns), '1438;<no value>;');
  assert.equal(JSON.stringify(conns), '{"Connections":[{"State":"established","Attrs":{"name":"sleeve","mtu":1438}},{"State":"retrying","Attrs":null}]}');
  // A struct still refuses a field it does not have, as Go's does.
  assert.throws(() => renderTemplate('{{range .Connections}}{{.Nope}}{{end}}', conns), /can't evaluate field Nope/);
});
