// The control API's HTTP layer: routing, bodies and error answers clients
// have always seen (controlplane/api/http-app.ts header comment).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BODY_LIMIT, HttpApi, MAX_PARAM_LENGTH } from '../../controlplane/api/http-app.js';

function app(): HttpApi {
  const a = new HttpApi();
  a.get('/status', (_req, reply) => reply.send('ok'));
  a.get<{ p?: string }>('/x/:p', (req, reply) => reply.type('application/json').send(JSON.stringify(req.params)));
  a.get('/x/static', (_req, reply) => reply.send('static'));
  a.post('/f', (req, reply) => reply.send(`${typeof req.body}:${JSON.stringify(req.body)}`));
  a.delete('/gone', (_req, reply) => reply.code(204).send());
  a.get('/throws', () => { throw Object.assign(new Error('bad thing'), { statusCode: 409 }); });
  a.get('/silent', () => undefined);
  return a;
}

test('routes: path without the query, static before parameter, GET answers HEAD, the rest 404 in Go text', async () => {
  const a = app();
  const ok = await a.inject({ url: '/status?x=1' });
  assert.equal(ok.statusCode, 200);
  assert.equal(ok.body, 'ok');
  assert.equal(ok.headers['content-type'], 'text/plain; charset=utf-8');
  assert.equal(ok.headers['content-length'], '2');
  const head = await a.inject({ method: 'HEAD', url: '/status' });
  assert.equal(head.statusCode, 200);
  assert.equal(head.body, '');
  assert.equal((await a.inject({ url: '/x/static' })).body, 'static');
  const param = await a.inject({ url: '/x/a%2Fb' });
  assert.equal(param.body, '{"p":"a/b"}');
  assert.equal(param.headers['content-type'], 'application/json; charset=utf-8');
  assert.equal((await a.inject({ url: '/x/' })).body, '{"p":""}', 'an empty last segment is an empty parameter');
  for (const [method, url] of [['GET', '/status/'], ['POST', '/status'], ['GET', '/STATUS'], ['PATCH', '/status'], ['GET', '/x/a/b']]) {
    const res = await a.inject({ method: method!, url: url! });
    assert.equal(res.statusCode, 404, `${method} ${url}`);
    assert.equal(res.body, '404 page not found\n');
  }
});

test('bad paths: undecodable -> 400, over-long parameter -> 414, both as JSON error objects', async () => {
  const a = app();
  const bad = await a.inject({ url: '/x/%zz' });
  assert.equal(bad.statusCode, 400);
  assert.deepEqual(JSON.parse(bad.body), { error: 'Bad Request', code: 'FST_ERR_BAD_URL', message: "'/x/%zz' is not a valid url component", statusCode: 400 });
  assert.equal((await a.inject({ url: `/x/${'a'.repeat(MAX_PARAM_LENGTH)}` })).statusCode, 200);
  const long = await a.inject({ url: `/x/${'a'.repeat(MAX_PARAM_LENGTH + 1)}` });
  assert.equal(long.statusCode, 414);
  assert.equal(JSON.parse(long.body).code, 'FST_ERR_MAX_PARAM_LENGTH');
});

test('bodies: form and plain text as text, JSON parsed, others 415, too large 413, bad JSON 400', async () => {
  const a = app();
  const post = (contentType: string | undefined, payload: string): ReturnType<HttpApi['inject']> =>
    a.inject({ method: 'POST', url: '/f', payload, ...(contentType ? { headers: { 'content-type': contentType } } : {}) });
  assert.equal((await a.inject({ method: 'POST', url: '/f' })).body, 'undefined:undefined');
  assert.equal((await post('application/x-www-form-urlencoded; charset=utf-8', 'peer=a&peer=b')).body, 'string:"peer=a&peer=b"');
  assert.equal((await post('TEXT/PLAIN', 'x')).body, 'string:"x"');
  assert.equal((await post('application/json', '{"a":1}')).body, 'object:{"a":1}');
  const cases: [string | undefined, string, number, string][] = [
    ['application/json', '{bad', 400, "Body is not valid JSON but content-type is set to 'application/json'\n"],
    ['application/json', '', 400, "Body cannot be empty when content-type is set to 'application/json'\n"],
    ['text/xml', '<a/>', 415, 'Unsupported Media Type\n'],
    [undefined, 'peer=a', 415, 'Unsupported Media Type\n'],
    ['text/plain', 'x'.repeat(BODY_LIMIT + 1), 413, 'Request body is too large\n'],
  ];
  for (const [contentType, payload, code, body] of cases) {
    const res = await post(contentType, payload);
    assert.equal(res.statusCode, code, `${contentType}`);
    assert.equal(res.body, body);
  }
});

test('answers: 204 without a body or length; a throw answers its statusCode and message; a handler that never answers is a 500', async () => {
  const a = app();
  const gone = await a.inject({ method: 'DELETE', url: '/gone' });
  assert.equal(gone.statusCode, 204);
  assert.equal(gone.headers['content-length'], undefined);
  const thrown = await a.inject({ url: '/throws' });
  assert.equal(thrown.statusCode, 409);
  assert.equal(thrown.body, 'bad thing\n');
  const silent = await a.inject({ url: '/silent' });
  assert.equal(silent.statusCode, 500);
  assert.equal(silent.body, 'GET /silent did not answer\n');
});

test('listen and close over TCP: a keep-alive client does not hold close up', async () => {
  const a = app();
  await a.listen({ host: '127.0.0.1', port: 0 });
  const { port } = a.server.address() as { port: number };
  const res = await fetch(`http://127.0.0.1:${port}/status`);
  assert.equal(await res.text(), 'ok');
  const t0 = performance.now();
  await a.close();
  assert.ok(performance.now() - t0 < 1000, 'close returned within 1 s');
  assert.equal(a.server.listening, false);
});
