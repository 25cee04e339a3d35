// The router's HTTP API (user-surface spec §5.1-5.3, wire spec §10): the full
// control API on --http-addr, the read-only subset on --status-addr.
import { HttpApi, type ApiReply, type ApiRequest } from './http-app.js';
import { splitHostPort } from '../host-port.js';
import { toJsonText } from './json-text.js';
import { registerHostRoutes } from './host-routes.js';
import type { MetricsRegistry } from './metrics.js';
import { parsePeerAddress } from './peer-address.js';
import { renderConnections, renderPeers, renderStatusSummary, renderTargets } from './render-status.js';
import { buildReport } from './report.js';
import { renderTemplate, TemplateParseError } from './report-template.js';
import type { ApiServices } from './router-control.js';
import type { RouterStatus } from './status-model.js';

export type ApiKind = 'control' | 'status' | 'metrics';

const TEXT = 'text/plain; charset=utf-8';

/** Form values from the query string and an urlencoded body, repeated keys kept (Go FormValue). */
export function formValues(req: ApiRequest, key: string): string[] {
  const fromQuery = new URL(req.url, 'http://localhost').searchParams.getAll(key);
  const body = typeof req.body === 'string' ? new URLSearchParams(req.body).getAll(key) : [];
  return [...body, ...fromQuery];
}

function sendText(reply: ApiReply, code: number, body: string): ApiReply {
  return reply.code(code).type(TEXT).send(body);
}

function statusView(
  services: ApiServices,
  render: (s: RouterStatus) => string,
): (req: ApiRequest, reply: ApiReply) => ApiReply {
  return (_req, reply) => {
    const s = services.router.status();
    // spec §5.1: 503 with the same body while the router is not ready.
    return sendText(reply, s.ready ? 200 : 503, render(s));
  };
}

function registerReadOnly(app: HttpApi, services: ApiServices): void {
  const versionText = `${services.version} (version check update disabled)`;
  app.get('/status', statusView(services, (s) => renderStatusSummary(s, versionText, services.summarySections?.() ?? [])));
  app.get('/status/targets', statusView(services, renderTargets));
  app.get('/status/connections', statusView(services, renderConnections));
  app.get('/status/peers', statusView(services, renderPeers));
  app.get('/report', (req, reply) => {
    const report = buildReport(services.router.status(), services.version, services.reportServices?.() ?? {});
    const formats = formValues(req, 'format');
    if (formats.length === 0 && !new URL(req.url, 'http://localhost').searchParams.has('format')) {
      return reply.code(200).type('application/json; charset=utf-8').send(toJsonText(report, 4) + '\n');
    }
    if (formats.length !== 1) return sendText(reply, 400, 'error: must supply one format parameter\n');
    try {
      return sendText(reply, 200, renderTemplate(formats[0], report));
    } catch (err) {
      if (err instanceof TemplateParseError) return sendText(reply, 400, `${err.message}\n`);
      return sendText(reply, 500, `error during template execution: ${(err as Error).message}\n`);
    }
  });
  registerMetrics(app, services);
}

function registerMetrics(app: HttpApi, services: ApiServices): void {
  // prom-client (and the OpenTelemetry API under it) is loaded on the first scrape, not at startup.
  let registry: MetricsRegistry | undefined;
  app.get('/metrics', async (_req, reply) => {
    const metrics = await import('./metrics.js');
    registry ??= new metrics.MetricsRegistry();
    const text = await registry.render([...metrics.routerMetricFamilies(services.router.status()), ...(services.metrics?.() ?? [])]);
    return reply.code(200).type(metrics.METRICS_CONTENT_TYPE).send(text);
  });
}

function registerRouterControl(app: HttpApi, services: ApiServices): void {
  app.post('/connect', (req, reply) => {
    const peers = formValues(req, 'peer');
    const replace = formValues(req, 'replace').includes('true');
    const errors: string[] = [];
    for (const p of peers) {
      try {
        parsePeerAddress(p, services.router.port());
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    if (errors.length > 0) return sendText(reply, 400, errors.join('\n') + '\n');
    services.router.connect(peers, replace);
    return sendText(reply, 200, '');
  });
  app.post('/forget', (req, reply) => {
    services.router.forget(formValues(req, 'peer'));
    return sendText(reply, 200, '');
  });
}

/** Build (not listen) the API of the given kind. */
export function buildApiServer(services: ApiServices, kind: ApiKind): HttpApi {
  const app = new HttpApi();
  if (kind === 'metrics') {
    registerMetrics(app, services);
    return app;
  }
  registerReadOnly(app, services);
  if (kind === 'control') {
    registerRouterControl(app, services);
    if (services.host) registerHostRoutes(app, services.host);
  }
  addServiceRoutes(app, services, kind);
  return app;
}

/**
 * The routes of the services beside the router (IPAM, DNS, the proxy):
 * `/status/<service>` and their control routes. buildApiServer adds those it
 * is given; a router whose API listens before those services run adds them
 * here once they do.
 */
export function addServiceRoutes(app: HttpApi, services: Pick<ApiServices, 'serviceStatus' | 'registerControlRoutes'>, kind: ApiKind): void {
  if (kind === 'metrics') return;
  for (const [service, render] of Object.entries(services.serviceStatus ?? {})) {
    app.get(`/status/${service}`, (_req, reply) => sendText(reply, 200, render()));
  }
  if (kind === 'control') services.registerControlRoutes?.(app);
}

/** Listen address `host:port`, or an absolute unix socket path (wire spec §10.1). */
export async function listenApi(app: HttpApi, addr: string): Promise<void> {
  if (addr.startsWith('/')) {
    await app.listen({ path: addr });
    return;
  }
  const hp = splitHostPort(addr);
  if (hp?.port === undefined) throw new Error(`invalid listen address "${addr}": expected host:port or an absolute unix socket path`);
  await app.listen({ host: hp.host || '0.0.0.0', port: hp.port });
}
