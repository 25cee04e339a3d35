// The version reported by `weave version`, `/report` and `weave status`: the
// Weave Net release whose user surface and wire protocol this implements.
export const WEAVE_VERSION = '2.8.1';
