// Open vSwitch datapath (ODP) generic netlink constants, as named in the
// kernel's uapi linux/openvswitch.h. Spec §6.7 lists the subset Weave uses.

// Family names and the genl versions we speak (spec §6.7 table).
export const OVS_DATAPATH_FAMILY = 'ovs_datapath';
export const OVS_VPORT_FAMILY = 'ovs_vport';
export const OVS_FLOW_FAMILY = 'ovs_flow';
export const OVS_PACKET_FAMILY = 'ovs_packet';
/** Multicast group on ovs_vport announcing vport NEW/DEL. */
export const OVS_VPORT_MCGROUP = 'ovs_vport';
export const OVS_DATAPATH_VERSION = 2;
export const OVS_VPORT_VERSION = 1;
export const OVS_FLOW_VERSION = 1;
export const OVS_PACKET_VERSION = 1;
/** sizeof(struct ovs_header): i32 dp_ifindex after genlmsghdr. */
export const OVS_HEADER_SIZE = 4;

// Commands shared by the datapath, vport and flow families.
export const OVS_CMD_NEW = 1;
export const OVS_CMD_DEL = 2;
export const OVS_CMD_GET = 3;
export const OVS_CMD_SET = 4;

// Packet family commands.
export const OVS_PACKET_CMD_MISS = 1;
export const OVS_PACKET_CMD_ACTION = 2;
export const OVS_PACKET_CMD_EXECUTE = 3;

// enum ovs_datapath_attr.
export const OVS_DP_ATTR_NAME = 1;
export const OVS_DP_ATTR_UPCALL_PID = 2;
export const OVS_DP_ATTR_STATS = 3;
export const OVS_DP_ATTR_MEGAFLOW_STATS = 4;
export const OVS_DP_ATTR_USER_FEATURES = 5;
// User features (OVS_DP_F_*).
export const OVS_DP_F_UNALIGNED = 1 << 0;
export const OVS_DP_F_VPORT_PIDS = 1 << 1;
export const OVS_DP_F_TC_RECIRC_SHARING = 1 << 2;
export const OVS_DP_F_DISPATCH_UPCALL_PER_CPU = 1 << 3;

// enum ovs_vport_attr.
export const OVS_VPORT_ATTR_PORT_NO = 1;
export const OVS_VPORT_ATTR_TYPE = 2;
export const OVS_VPORT_ATTR_NAME = 3;
export const OVS_VPORT_ATTR_OPTIONS = 4;
export const OVS_VPORT_ATTR_UPCALL_PID = 5;
export const OVS_VPORT_ATTR_STATS = 6;
export const OVS_VPORT_ATTR_IFINDEX = 8;
// enum ovs_vport_type.
export const OVS_VPORT_TYPE_NETDEV = 1;
export const OVS_VPORT_TYPE_INTERNAL = 2;
export const OVS_VPORT_TYPE_GRE = 3;
export const OVS_VPORT_TYPE_VXLAN = 4;
export const OVS_VPORT_TYPE_GENEVE = 5;
// OVS_VPORT_ATTR_OPTIONS for tunnel vports.
export const OVS_TUNNEL_ATTR_DST_PORT = 1;

// enum ovs_flow_attr.
export const OVS_FLOW_ATTR_KEY = 1;
export const OVS_FLOW_ATTR_ACTIONS = 2;
export const OVS_FLOW_ATTR_STATS = 3;
export const OVS_FLOW_ATTR_TCP_FLAGS = 4;
export const OVS_FLOW_ATTR_USED = 5;
export const OVS_FLOW_ATTR_CLEAR = 6;
export const OVS_FLOW_ATTR_MASK = 7;

// enum ovs_key_attr (spec §6.7).
export const OVS_KEY_ATTR_ENCAP = 1;
export const OVS_KEY_ATTR_PRIORITY = 2;
export const OVS_KEY_ATTR_IN_PORT = 3;
export const OVS_KEY_ATTR_ETHERNET = 4;
export const OVS_KEY_ATTR_VLAN = 5;
export const OVS_KEY_ATTR_ETHERTYPE = 6;
export const OVS_KEY_ATTR_IPV4 = 7;
export const OVS_KEY_ATTR_SKB_MARK = 15;
export const OVS_KEY_ATTR_TUNNEL = 16;
export const OVS_KEY_ATTR_DP_HASH = 19;
export const OVS_KEY_ATTR_RECIRC_ID = 20;

// enum ovs_tunnel_key_attr.
export const OVS_TUNNEL_KEY_ATTR_ID = 0;
export const OVS_TUNNEL_KEY_ATTR_IPV4_SRC = 1;
export const OVS_TUNNEL_KEY_ATTR_IPV4_DST = 2;
export const OVS_TUNNEL_KEY_ATTR_TOS = 3;
export const OVS_TUNNEL_KEY_ATTR_TTL = 4;
export const OVS_TUNNEL_KEY_ATTR_DONT_FRAGMENT = 5;
export const OVS_TUNNEL_KEY_ATTR_CSUM = 6;
export const OVS_TUNNEL_KEY_ATTR_TP_SRC = 9;
export const OVS_TUNNEL_KEY_ATTR_TP_DST = 10;

// enum ovs_action_attr.
export const OVS_ACTION_ATTR_OUTPUT = 1;
export const OVS_ACTION_ATTR_USERSPACE = 2;
export const OVS_ACTION_ATTR_SET = 3;
// enum ovs_userspace_attr.
export const OVS_USERSPACE_ATTR_PID = 1;
export const OVS_USERSPACE_ATTR_USERDATA = 2;

// enum ovs_packet_attr.
export const OVS_PACKET_ATTR_PACKET = 1;
export const OVS_PACKET_ATTR_KEY = 2;
export const OVS_PACKET_ATTR_ACTIONS = 3;
export const OVS_PACKET_ATTR_USERDATA = 4;
