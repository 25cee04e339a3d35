// weaveDNS: the cluster-wide name table gossiped on the `nameserver` channel
// (wire spec §9), the DNS server (user-surface spec §6.6), and what the HTTP
// API and `weave status` need from it (wire spec §10.5, user-surface spec §2.5).
export * from './constants.js';
export { NameTable, mergeEntry, mergeEntryLists, compareForWire, compareForDisplay, type Entry } from './entries.js';
export { Nameserver, type NameserverOptions, type DeleteFilter, type ReceiveResult } from './nameserver.js';
export { DnsGossipError, type GossipPayload } from './gossip-payload.js';
export type { Gossiper, GossipData, GossipChannel } from './gossip-port.js';
export { NameserverGossiper, DnsGossipData } from './gossiper.js';
export { encodeGossipPayload, decodeGossipPayload, GOSSIP_DATA_TYPE, ENTRIES_TYPE, ENTRY_TYPE } from './codec.js';
export { DnsServer, type DnsServerConfig, type DnsServerMetrics } from './server.js';
export { DnsService, DnsInputError, type DnsServiceOptions, type NameJson } from './service.js';
export { renderDnsStatus, dnsSummarySection, dnsReportSection, dnsMetricFamilies, type DnsStatus } from './status.js';
export { parseIPv4, formatIPv4 } from './address.js';
export { normaliseDomain } from './domain.js';
