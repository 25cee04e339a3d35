// The `weave` usage block (user-surface spec §1): commands and flags exactly
// as the user types them.
export const USAGE = `Usage:

weave --help | help
      setup
      version
weave launch        [--password <pass>] [--trusted-subnets <cidr>,...]
                    [--host <ip_address>] [--name <mac>] [--nickname <nickname>]
                    [--no-restart] [--resume] [--no-discovery] [--no-dns]
                    [--conn-limit <n>] [--port <port>] [--mtu <mtu>] [--no-fastdp]
                    [--state-dir <dir>] [--log-level=debug|info|warning|error]
                    <peer> ...
weave connect       [--replace] [<peer> ...]
      forget        <peer> ...
weave attach        [--without-dns] [--rewrite-hosts] [--add-host=<hostname>:<ip>]
                    [--no-multicast-route] [-h <fqdn>] [<addr> ...]
                    <container_id> | --netns <path> | --pid <pid>
      detach        [<addr> ...] <container_id> | --netns <path> | --pid <pid>
weave expose        [<addr> ...] [-h <fqdn>] [--without-masquerade]
      hide          [<addr> ...]
weave dns-add       [<ip_address> ...] <container_id> | --netns <path> [-h <fqdn>] |
                    <ip_address> ... -h <fqdn>
      dns-remove    [<ip_address> ...] <container_id> | --netns <path> [-h <fqdn>] |
                    <ip_address> ... [-h <fqdn>]
      dns-lookup    <unqualified_name>
      dns-args
weave env           [--restore]
      config
weave status        [targets | connections | peers | dns | ipam]
      report        [-f <format>]
      ps            [<container_id> ...]
weave rmpeer        <peer_id> ...
      prime
weave stop
weave reset         [--force]
weave setup-cni     [--copy-node]

where <peer>     = <ip_address_or_fqdn>[:<port>]
      <cidr>     = <ip_address>/<routing_prefix_length>
      <addr>     = [ip:]<cidr> | net:<cidr> | net:default

Environment: WEAVE_STATE_DIR (default /var/lib/weave), WEAVE_HTTP_ADDR (default 127.0.0.1:6784),
WEAVE_STATUS_ADDR, WEAVE_PORT, WEAVE_PASSWORD, WEAVE_MTU, WEAVE_NO_FASTDP.
`;

/** Commands removed in Weave Net 2.0 (spec §1). */
export const REMOVED_COMMANDS = [
  'run', 'start', 'restart', 'launch-plugin', 'stop-plugin', 'launch-proxy', 'stop-proxy', 'launch-router', 'stop-router',
];

export class UsageError extends Error {
  constructor(message = '') {
    super(message);
  }
}
