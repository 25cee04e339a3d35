// toJsonText: JSON.stringify's text, with bigints as exact bare numbers, and
// no string (from a peer, say) able to pass for a bigint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toJsonText } from '../../controlplane/api/json-text.js';

test('bigints are bare exact numbers, everything else is JSON.stringify\'s text', () => {
  const value = {
    UID: 18446744073709551615n, Neg: -9223372036854775808n, Small: 0n, n: 1.5, inf: Infinity, t: true, nul: null, gone: undefined,
    when: new Date(Date.UTC(2026, 11, 4)), list: [1n, 'a', undefined, { deep: [2n] }], empty: [], none: {},
  };
  assert.equal(toJsonText(value),
    '{"UID":18446744073709551615,"Neg":-9223372036854775808,"Small":0,"n":1.5,"inf":null,"t":true,"nul":null,' +
    '"when":"2026-12-04T00:00:00.000Z","list":[1,"a",null,{"deep":[2]}],"empty":[],"none":{}}');
  const plain = { a: [1, { b: 'c' }], d: {}, e: [] };
  assert.equal(toJsonText(plain, 4), JSON.stringify(plain, null, 4));
  assert.equal(toJsonText({ a: 5n }, 4), '{\n    "a": 5\n}');
  assert.equal(toJsonText(7n), '7');
  assert.equal(toJsonText(undefined), 'null');
});

test('strings that look like a marked bigint stay strings', () => {
  for (const s of ['\u0000', '\u0000abc:5', '\u00000123456789abcdef:42', '"\\u0000x:1"']) {
    const text = toJsonText({ NickName: s, UID: 3n });
    assert.deepEqual(JSON.parse(text.replace('"UID":3', '"UID":"3"')), { NickName: s, UID: '3' }, JSON.stringify(s));
  }
});
