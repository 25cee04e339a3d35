// Policy without Kubernetes: the same API objects from a directory of YAML (or
// JSON) files — NetworkPolicy, Namespace, and Pod objects standing in for the
// containers on this host (labels, status.podIP, named container ports, and
// the network namespace in the weave.works/netns annotation), and Services with
// their EndpointSlices where kube-proxy (or anything like it) translates
// virtual addresses. A file may hold
// several documents and `kind: List`. A bad document is reported with its
// file and skipped; the rest is enforced.
import { watch, readdirSync, readFileSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { PolicySnapshot } from './controller.js';
import { parseEndpointSlice, parseNamespace, parseNetworkPolicy, parsePod, parseService, PolicyError } from './validate.js';
import type { EndpointSlice, Namespace, NetworkPolicy, Pod, Service } from './types.js';

interface Objects {
  namespaces: Namespace[];
  pods: Pod[];
  policies: NetworkPolicy[];
  services: Service[];
  endpointSlices: EndpointSlice[];
}

function noObjects(): Objects {
  return { namespaces: [], pods: [], policies: [], services: [], endpointSlices: [] };
}

export interface LoadedDirectory {
  snapshot: PolicySnapshot;
  /** One message per file or document that was skipped. */
  errors: string[];
}

const FILE_PATTERN = /\.(ya?ml|json)$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Adds the objects of one decoded document to `out`; throws PolicyError for a bad one. */
function addObject(v: unknown, where: string, out: Objects): void {
  if (v === null || v === undefined) return;
  if (!isObject(v)) throw new PolicyError(`${where}: not an API object`);
  switch (v.kind) {
    case 'NetworkPolicy':
      out.policies.push(parseNetworkPolicy(v, where));
      return;
    case 'Namespace':
      out.namespaces.push(parseNamespace(v, where));
      return;
    case 'Pod':
      out.pods.push(parsePod(v, where));
      return;
    case 'Service':
      out.services.push(parseService(v, where));
      return;
    case 'EndpointSlice':
      out.endpointSlices.push(parseEndpointSlice(v, where));
      return;
    case 'List':
    case 'NetworkPolicyList':
    case 'PodList':
    case 'NamespaceList':
    case 'ServiceList':
    case 'EndpointSliceList': {
      const items = Array.isArray(v.items) ? v.items : [];
      items.forEach((item, i) => addObject(item, `${where} items[${i}]`, out));
      return;
    }
    default:
      throw new PolicyError(`${where}: kind ${JSON.stringify(v.kind)} is not NetworkPolicy, Namespace, Pod, Service, EndpointSlice or List`);
  }
}

/** Reads every *.yaml, *.yml and *.json file of `dir` (not recursive), in name order. */
export function loadPolicyDirectory(dir: string): LoadedDirectory {
  const out = noObjects();
  const errors: string[] = [];
  const names = readdirSync(dir).filter((n) => FILE_PATTERN.test(n) && !n.startsWith('.')).sort();
  for (const name of names) {
    const path = join(dir, name);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      errors.push(`${path}: ${(err as Error).message}`);
      continue;
    }
    // logLevel 'error': the parser's warnings (e.g. a mapping used as a key)
    // would go to process warnings on stderr, once per document, outside the
    // router's log. Such a key is stringified and, like any unknown field,
    // left out by validation, as the API server does.
    const docs = parseAllDocuments(text, { logLevel: 'error' });
    const list = Array.isArray(docs) ? docs : [docs];
    list.forEach((doc, i) => {
      const where = list.length > 1 ? `${path} (document ${i + 1})` : path;
      if (doc.errors.length > 0) {
        errors.push(`${where}: ${doc.errors[0]?.message ?? 'YAML error'}`);
        return;
      }
      // Objects are added only whole: a document failing half way adds nothing.
      const staged = noObjects();
      try {
        addObject(doc.toJS({ maxAliasCount: 100 }), where, staged);
      } catch (err) {
        const message = (err as Error).message;
        errors.push(err instanceof PolicyError && message.startsWith(where) ? message : `${where}: ${message}`);
        return;
      }
      out.namespaces.push(...staged.namespaces);
      out.pods.push(...staged.pods);
      out.policies.push(...staged.policies);
      out.services.push(...staged.services);
      out.endpointSlices.push(...staged.endpointSlices);
    });
  }
  return { snapshot: out, errors };
}

/**
 * Calls `onChange` (at most once per `settleMs`) after files of `dir` change;
 * editors write in several steps, so changes are gathered for a moment first.
 * Returns a function that stops watching.
 */
export function watchPolicyDirectory(dir: string, onChange: () => void, settleMs = 50): () => void {
  let timer: NodeJS.Timeout | undefined;
  const watcher: FSWatcher = watch(dir, () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      onChange();
    }, settleMs);
  });
  return () => {
    if (timer) clearTimeout(timer);
    watcher.close();
  };
}
