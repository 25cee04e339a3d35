// Docker integration of the router: the Engine API client and its event watcher (shared by
// the network plugin and the API proxy).
export * from './engine-client.js';
export * from './events.js';
