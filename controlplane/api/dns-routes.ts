// weaveDNS endpoints of the control API (wire spec §10.5), thin adapters over
// DnsService. Bad input -> 400 with the reason; success -> 204 or the value.
import type { HttpApi, ApiReply, ApiRequest } from './http-app.js';
import { DnsInputError, type DnsService } from '../dns/index.js';
import { toJsonText } from './json-text.js';
import { formValues } from './server.js';

const TEXT = 'text/plain; charset=utf-8';

type Params = { container?: string; ip?: string };

function text(reply: ApiReply, code: number, body: string): ApiReply {
  return reply.code(code).type(TEXT).send(body);
}

function fqdnOf(req: ApiRequest): string | undefined {
  return formValues(req, 'fqdn')[0];
}

function fail(reply: ApiReply, err: unknown): ApiReply {
  return text(reply, err instanceof DnsInputError ? 400 : 500, `${(err as Error).message}\n`);
}

export function registerDnsRoutes(app: HttpApi, dns: DnsService): void {
  app.get('/domain', (_req, reply) => text(reply, 200, dns.domain()));
  app.get('/dns-address', (_req, reply) => text(reply, 200, dns.dnsAddress()));
  app.get('/dns-address-port', (_req, reply) => text(reply, 200, dns.dnsAddressPort()));

  app.put<Params>('/name/:container/:ip', async (req, reply) => {
    try {
      const checkAlive = formValues(req, 'check-alive').includes('true');
      await dns.addName(req.params.container ?? '', req.params.ip ?? '', fqdnOf(req) ?? '', checkAlive);
      return reply.code(204).send();
    } catch (err) {
      return fail(reply, err);
    }
  });

  const remove = (req: ApiRequest<Params>, reply: ApiReply): ApiReply => {
    try {
      dns.removeNames({ containerId: req.params.container, ip: req.params.ip, fqdn: fqdnOf(req) });
      return reply.code(204).send();
    } catch (err) {
      return fail(reply, err);
    }
  };
  app.delete<Params>('/name/:container/:ip', remove);
  app.delete<Params>('/name/:container', remove);
  app.delete<Params>('/name', remove);

  // Origin is a u64 number in JSON (wire spec §10.5); toJsonText writes bigints as numbers.
  app.get('/name', (_req, reply) => reply.code(200).type('application/json').send(toJsonText(dns.namesJson()) + '\n'));
}
