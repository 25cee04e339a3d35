// Docker integration of the router: the Engine API client and its event watcher (shared by
// the network plugin and the API proxy).
export * from './engine-client.js';
export * from './events.js';
export * from './plugin-protocol.js';
export * from './network-driver.js';
export * from './ipam-driver.js';
export * from './plugin-server.js';
export * from './container-watcher.js';
export * from './legacy-plugin.js';
export * from './managed-plugin.js';
