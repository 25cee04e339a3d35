// The libbpf (Debian libbpf1, libbpf.so.1) and libc calls the eBPF datapath
// needs, bound once through koffi. Functions return raw C results; libbpf 1.x
// returns negative errno values, and NULL pointers set errno (read with
// `lastErrno()` right after the call, on the same thread).

import koffi, { type LibraryHandle } from 'koffi';

type Ptr = unknown;
type Arg = number | bigint | string | Buffer | Ptr | null;
type Fn<R> = (...args: Arg[]) => R;

function loadLibbpf(): LibraryHandle {
  try {
    return koffi.load('libbpf.so.1');
  } catch (e) {
    throw new Error(`cannot load libbpf.so.1 (${(e as Error).message}); install it: apt-get install libbpf1`);
  }
}

const lib = loadLibbpf();
const libc = koffi.load('libc.so.6');

koffi.opaque('bpf_object');
koffi.opaque('bpf_map');
koffi.opaque('bpf_program');

function bind<R>(l: LibraryHandle, decl: string): Fn<R> {
  return l.func(decl) as unknown as Fn<R>;
}

export const objectOpenFile = bind<Ptr>(lib, 'bpf_object *bpf_object__open_file(const char *path, const void *opts)');
const objectLoadFn = lib.func('int bpf_object__load(bpf_object *obj)') as unknown as {
  async: (obj: Ptr, done: (err: unknown, rc: number) => void) => void;
};
/**
 * bpf_object__load on a worker thread: the kernel's verifier takes most of a
 * load (hundreds of ms for our programs), and meanwhile the event loop stays
 * free and other objects can be verified on the other cores.
 */
export function objectLoadAsync(obj: Ptr): Promise<number> {
  return new Promise((resolve, reject) => objectLoadFn.async(obj, (err, rc) => (err ? reject(err as Error) : resolve(rc))));
}
export const objectClose = bind<void>(lib, 'void bpf_object__close(bpf_object *obj)');
export const objectFindMap = bind<Ptr>(lib, 'bpf_map *bpf_object__find_map_by_name(const bpf_object *obj, const char *name)');
export const objectFindProgram = bind<Ptr>(lib, 'bpf_program *bpf_object__find_program_by_name(const bpf_object *obj, const char *name)');
export const mapSetPinPath = bind<number>(lib, 'int bpf_map__set_pin_path(bpf_map *map, const char *path)');
export const mapFd = bind<number>(lib, 'int bpf_map__fd(const bpf_map *map)');
export const programFd = bind<number>(lib, 'int bpf_program__fd(const bpf_program *prog)');
export const programSetType = bind<number>(lib, 'int bpf_program__set_type(bpf_program *prog, int type)');
export const programSetAutoload = bind<number>(lib, 'int bpf_program__set_autoload(bpf_program *prog, bool autoload)');
export const objectNextProgram = bind<Ptr>(lib, 'bpf_program *bpf_object__next_program(const bpf_object *obj, bpf_program *prog)');
export const programName = bind<string>(lib, 'const char *bpf_program__name(const bpf_program *prog)');
export const tcHookCreate = bind<number>(lib, 'int bpf_tc_hook_create(void *hook)');
export const tcHookDestroy = bind<number>(lib, 'int bpf_tc_hook_destroy(void *hook)');
export const tcAttach = bind<number>(lib, 'int bpf_tc_attach(const void *hook, void *opts)');
export const tcDetach = bind<number>(lib, 'int bpf_tc_detach(const void *hook, const void *opts)');
export const tcQuery = bind<number>(lib, 'int bpf_tc_query(const void *hook, void *opts)');
export const mapUpdateElem = bind<number>(lib, 'int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)');
export const mapLookupElem = bind<number>(lib, 'int bpf_map_lookup_elem(int fd, const void *key, void *value)');
export const mapDeleteElem = bind<number>(lib, 'int bpf_map_delete_elem(int fd, const void *key)');
/** Many elements in one syscall (kernel 5.6+); returns -ENOENT once it has read to the map's end. */
export const mapLookupBatch = bind<number>(lib, 'int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, uint32_t *count, const void *opts)');
export const mapGetNextKey = bind<number>(lib, 'int bpf_map_get_next_key(int fd, const void *key, void *next_key)');
export const objGet = bind<number>(lib, 'int bpf_obj_get(const char *pathname)');
export const objPin = bind<number>(lib, 'int bpf_obj_pin(int fd, const char *pathname)');
export const objGetInfoByFd = bind<number>(lib, 'int bpf_obj_get_info_by_fd(int bpf_fd, void *info, void *info_len)');
export const mapType = bind<number>(lib, 'int bpf_map__type(const bpf_map *map)');
export const mapKeySize = bind<number>(lib, 'uint32_t bpf_map__key_size(const bpf_map *map)');
export const mapValueSize = bind<number>(lib, 'uint32_t bpf_map__value_size(const bpf_map *map)');
export const mapMaxEntries = bind<number>(lib, 'uint32_t bpf_map__max_entries(const bpf_map *map)');
export const mapCreate = bind<number>(lib, 'int bpf_map_create(int map_type, const char *map_name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, const void *opts)');
export const setPrint = bind<Ptr>(lib, 'void *libbpf_set_print(void *fn)');

export const mount = bind<number>(libc, 'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)');
export const statfs = bind<number>(libc, 'int statfs(const char *path, void *buf)');
export const close = bind<number>(libc, 'int close(int fd)');

export function lastErrno(): number {
  return koffi.errno();
}

export const BPF_PROG_TYPE_SCHED_CLS = 3;
export const BPF_MAP_TYPE_ARRAY = 2;
export const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
export const BPF_TC_INGRESS = 1;
export const BPF_TC_F_REPLACE = 1;
export const BPF_ANY = 0;
export const BPF_FS_MAGIC = 0xcafe4a11;

/** The shape of a map (struct bpf_map_info's first fields): what decides whether a pinned map can be reused. */
export interface MapShape {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

/** The shape of the map behind `fd`, or a negative errno. */
export function mapShapeOfFd(fd: number): MapShape | number {
  const info = Buffer.alloc(96); // struct bpf_map_info is 88 bytes in uapi 6.x; the kernel fills what it knows
  const len = Buffer.alloc(4);
  len.writeUInt32LE(info.length, 0);
  const rc = objGetInfoByFd(fd, info, len);
  if (rc !== 0) return rc;
  return { type: info.readUInt32LE(0), keySize: info.readUInt32LE(8), valueSize: info.readUInt32LE(12), maxEntries: info.readUInt32LE(16) };
}

/** The shape a map of an opened (not yet loaded) object will be created with. */
export function mapShapeOf(map: Ptr): MapShape {
  return { type: mapType(map), keySize: mapKeySize(map), valueSize: mapValueSize(map), maxEntries: mapMaxEntries(map) };
}

/** struct bpf_tc_hook (libbpf.h): sz, ifindex, attach_point, parent. */
export function tcHook(ifindex: number, attachPoint = BPF_TC_INGRESS): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(24n, 0);
  b.writeInt32LE(ifindex, 8);
  b.writeInt32LE(attachPoint, 12);
  return b;
}

/** struct bpf_tc_opts (libbpf.h): sz, prog_fd, flags, prog_id, handle, priority. */
export function tcOpts(o: { progFd?: number; flags?: number; handle: number; priority: number }): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(32n, 0);
  b.writeInt32LE(o.progFd ?? 0, 8);
  b.writeUInt32LE(o.flags ?? 0, 12);
  b.writeUInt32LE(o.handle, 20);
  b.writeUInt32LE(o.priority, 24);
  return b;
}

export function tcOptsProgId(opts: Buffer): number {
  return opts.readUInt32LE(16);
}

let printSilenced = false;
/**
 * libbpf prints to stderr by default, including harmless notes such as the
 * "Exclusivity flag on" line of an already present clsact qdisc. Keep it quiet
 * unless WEAVE_BPF_DEBUG is set (then the verifier log of a failed load shows).
 */
export function quietLibbpf(): void {
  if (printSilenced || process.env.WEAVE_BPF_DEBUG) return;
  setPrint(null);
  printSilenced = true;
}

koffi.struct('bpf_test_run_opts', {
  sz: 'size_t', data_in: 'void *', data_out: 'void *', data_size_in: 'uint32_t', data_size_out: 'uint32_t',
  ctx_in: 'void *', ctx_out: 'void *', ctx_size_in: 'uint32_t', ctx_size_out: 'uint32_t',
  retval: 'uint32_t', repeat: 'int', duration: 'uint32_t', flags: 'uint32_t', cpu: 'uint32_t', batch_size: 'uint32_t',
});

export interface TestRunOpts {
  sz: number; data_in: Buffer | null; data_out: Buffer | null; data_size_in: number; data_size_out: number;
  ctx_in: null; ctx_out: null; ctx_size_in: number; ctx_size_out: number;
  retval: number; repeat: number; duration: number; flags: number; cpu: number; batch_size: number;
}

export const progTestRun = bind<number>(lib, 'int bpf_prog_test_run_opts(int prog_fd, _Inout_ bpf_test_run_opts *opts)');
export const TEST_RUN_OPTS_SIZE = koffi.sizeof('bpf_test_run_opts');
