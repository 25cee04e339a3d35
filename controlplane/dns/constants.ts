// WeaveDNS protocol constants, named as the spec names them (wire spec §9, §11;
// user-surface spec §4.3, §6.6).

/** Gossip channel name (wire spec §4.4). */
export const NAMESERVER_CHANNEL = 'nameserver';
/** Incoming gossip whose Timestamp differs from ours by more is rejected (wire spec §9.3). */
export const GOSSIP_WINDOW_SECONDS = 900;
/** Tombstones are purged this long after their timestamp (wire spec §9.3). */
export const TOMBSTONE_TIMEOUT_SECONDS = 30 * 60;
/**
 * How often tombstones are looked for to purge. Weave looks every 30 min (wire
 * spec §9.3), so a tombstone lives 30 to 60 min and, under steady container
 * churn, the table holds up to an hour of removed names, each of them also in
 * every full-state gossip a reconnecting peer is sent. Looking every minute
 * keeps the 30 min every tombstone is owed and holds at most 31 min of them. A
 * tombstone a peer gossips back after we purged it is purged again at the next
 * look: it is older than the lifetime.
 */
export const TOMBSTONE_PURGE_INTERVAL_MS = 60 * 1000;

/** Router flag defaults (user-surface spec §4.3). */
export const DEFAULT_DOMAIN = 'weave.local.';
export const DEFAULT_LISTEN_ADDRESS = '0.0.0.0:53';
export const DEFAULT_TTL_SECONDS = 1;
export const DEFAULT_FALLBACK_TIMEOUT_MS = 5000;
export const DEFAULT_RESOLV_CONF = '/etc/resolv.conf';

/** resolv.conf is re-read at most this often, and only when it changed (user-surface spec §6.6). */
export const RESOLV_CONF_RECHECK_MS = 5000;
/** Classic DNS UDP payload limit without EDNS0 (user-surface spec §6.6). */
export const UDP_MAX_PAYLOAD = 512;

/** A DNS message's header: ID, flags and the four section counts (RFC 1035 §4.1.1). */
export const MESSAGE_HEADER_BYTES = 12;
/** A question's type and class, after its name (RFC 1035 §4.1.2). */
export const QUESTION_FIXED_BYTES = 4;
/** A resource record's type, class, TTL and RDLENGTH, after its name (RFC 1035 §4.1.3). */
export const RR_FIXED_BYTES = 10;
/** The longest label, and the longest name as text without its final dot (RFC 1035 §2.3.4). */
export const MAX_LABEL_BYTES = 63;
export const MAX_NAME_TEXT_BYTES = 253;

/** Owner id of names added without a container (user-surface spec §1.11). */
export const EXTERN_CONTAINER_ID = 'weave:extern';
