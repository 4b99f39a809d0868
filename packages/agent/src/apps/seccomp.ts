// A classic-BPF seccomp filter for application sandboxes, generated here (no native
// addon, no libseccomp): bubblewrap loads it with `--seccomp FD` right before it execs
// the application, so it binds the application and everything it starts.

/** Architectures the filter knows the syscall numbers of. */
export type SeccompArch = 'x64' | 'arm64';

// struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6];
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
/** Low 32 bits of args[0] (both architectures are little-endian). */
const OFFSET_ARG0_LOW = 16;

const BPF_LD_W_ABS = 0x20;
const BPF_JEQ_K = 0x15;
const BPF_JGE_K = 0x35;
const BPF_JSET_K = 0x45;
const BPF_RET_K = 0x06;

const SECCOMP_RET_KILL_PROCESS = 0x80000000;
const SECCOMP_RET_ERRNO = 0x00050000;
const SECCOMP_RET_ALLOW = 0x7fff0000;
const EPERM = 1;
const ENOSYS = 38;

const AUDIT_ARCH: Record<SeccompArch, number> = { x64: 0xc000003e, arm64: 0xc00000b7 };
/** x32 syscalls on x86_64 carry this bit; they are another ABI with its own table, so they are refused outright. */
const X32_SYSCALL_BIT = 0x40000000;

/** Namespace flags of clone(2) and unshare(2); only a new user namespace could give the app capabilities back. */
const CLONE_NEW_ANY =
  0x00020000 /* NEWNS */ |
  0x02000000 /* NEWCGROUP */ |
  0x04000000 /* NEWUTS */ |
  0x08000000 /* NEWIPC */ |
  0x10000000 /* NEWUSER */ |
  0x20000000 /* NEWPID */ |
  0x40000000; /* NEWNET */

interface Syscalls {
  /** Always refused with EPERM. */
  denied: Record<string, number>;
  /** Refused with EPERM when their first argument carries a namespace flag. */
  flagged: Record<string, number>;
  /** clone3 passes its flags in memory the filter cannot read: ENOSYS makes libc fall back to clone. */
  clone3: number;
  /** Answered ENOSYS ("not here"), so runtimes fall back quietly: io_uring (a large kernel attack surface). */
  absent: Record<string, number>;
}

const SYSCALLS: Record<SeccompArch, Syscalls> = {
  x64: {
    denied: {
      ptrace: 101,
      mount: 165,
      umount2: 166,
      pivot_root: 155,
      setns: 308,
      keyctl: 250,
      add_key: 248,
      request_key: 249,
      bpf: 321,
      perf_event_open: 298,
      userfaultfd: 323,
      process_vm_readv: 310,
      process_vm_writev: 311,
      kexec_load: 246,
      init_module: 175,
      finit_module: 313,
      delete_module: 176,
      name_to_handle_at: 303,
      open_by_handle_at: 304,
      open_tree: 428,
      move_mount: 429,
      fsopen: 430,
      fsconfig: 431,
      fsmount: 432,
      fspick: 433,
      mount_setattr: 442,
    },
    flagged: { clone: 56, unshare: 272 },
    clone3: 435,
    absent: { io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427 },
  },
  arm64: {
    denied: {
      ptrace: 117,
      mount: 40,
      umount2: 39,
      pivot_root: 41,
      setns: 268,
      keyctl: 219,
      add_key: 217,
      request_key: 218,
      bpf: 280,
      perf_event_open: 241,
      userfaultfd: 282,
      process_vm_readv: 270,
      process_vm_writev: 271,
      kexec_load: 104,
      init_module: 105,
      finit_module: 273,
      delete_module: 106,
      name_to_handle_at: 264,
      open_by_handle_at: 265,
      open_tree: 428,
      move_mount: 429,
      fsopen: 430,
      fsconfig: 431,
      fsmount: 432,
      fspick: 433,
      mount_setattr: 442,
    },
    flagged: { clone: 220, unshare: 97 },
    clone3: 435,
    absent: { io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427 },
  },
};

/** The syscalls the filter refuses on `arch` (names), for documentation and tests. */
export function deniedSyscalls(arch: SeccompArch): string[] {
  const table = SYSCALLS[arch];
  return [
    ...Object.keys(table.denied),
    ...Object.keys(table.flagged).map((n) => `${n} (namespace flags)`),
    'clone3 (ENOSYS)',
    ...Object.keys(table.absent).map((n) => `${n} (ENOSYS)`),
  ];
}

type Label = 'deny' | 'nosys' | 'flags' | 'allow';
interface Insn {
  code: number;
  k: number;
  jt?: Label;
  jf?: Label;
  label?: Label;
}

/**
 * The filter as `struct sock_filter[]` bytes (8 bytes per instruction, little-endian),
 * ready for `bwrap --seccomp FD`. A foreign architecture (e.g. 32-bit syscalls through
 * `int 0x80`, whose numbers differ) kills the process; x32 syscalls and the denied ones
 * return EPERM; clone3 and io_uring return ENOSYS; clone and unshare with namespace flags return EPERM.
 */
export function seccompFilter(arch: SeccompArch = hostArch()): Buffer {
  const table = SYSCALLS[arch];
  // The architecture check jumps over the kill when it matches (jt 1, jf 0).
  const archOk: Insn = { code: BPF_JEQ_K, k: AUDIT_ARCH[arch] };
  const insns: Insn[] = [
    { code: BPF_LD_W_ABS, k: OFFSET_ARCH },
    archOk,
    { code: BPF_RET_K, k: SECCOMP_RET_KILL_PROCESS },
    { code: BPF_LD_W_ABS, k: OFFSET_NR },
  ];
  if (arch === 'x64') insns.push({ code: BPF_JGE_K, k: X32_SYSCALL_BIT, jt: 'deny' });
  for (const nr of Object.values(table.denied)) insns.push({ code: BPF_JEQ_K, k: nr, jt: 'deny' });
  for (const nr of [table.clone3, ...Object.values(table.absent)]) insns.push({ code: BPF_JEQ_K, k: nr, jt: 'nosys' });
  for (const nr of Object.values(table.flagged)) insns.push({ code: BPF_JEQ_K, k: nr, jt: 'flags' });
  insns.push({ code: BPF_RET_K, k: SECCOMP_RET_ALLOW, label: 'allow' });
  insns.push({ code: BPF_LD_W_ABS, k: OFFSET_ARG0_LOW, label: 'flags' });
  insns.push({ code: BPF_JSET_K, k: CLONE_NEW_ANY >>> 0, jt: 'deny' });
  insns.push({ code: BPF_RET_K, k: SECCOMP_RET_ALLOW });
  insns.push({ code: BPF_RET_K, k: SECCOMP_RET_ERRNO | EPERM, label: 'deny' });
  insns.push({ code: BPF_RET_K, k: SECCOMP_RET_ERRNO | ENOSYS, label: 'nosys' });

  const at = new Map<Label, number>();
  insns.forEach((insn, index) => insn.label && at.set(insn.label, index));
  const out = Buffer.alloc(insns.length * 8);
  insns.forEach((insn, index) => {
    const offset = (label: Label | undefined): number => {
      if (label === undefined) return 0;
      const target = at.get(label);
      if (target === undefined || target <= index || target - index - 1 > 255)
        throw new Error(`seccomp: bad jump to ${label}`);
      return target - index - 1;
    };
    let jt = offset(insn.jt);
    let jf = offset(insn.jf);
    if (insn === archOk) [jt, jf] = [1, 0];
    out.writeUInt16LE(insn.code, index * 8);
    out.writeUInt8(jt, index * 8 + 2);
    out.writeUInt8(jf, index * 8 + 3);
    out.writeUInt32LE(insn.k >>> 0, index * 8 + 4);
  });
  return out;
}

/** The architecture of this process, when the filter knows it. */
export function hostArch(): SeccompArch {
  if (process.arch === 'x64' || process.arch === 'arm64') return process.arch;
  throw new Error(`no seccomp filter for ${process.arch}`);
}

/** True when the filter has syscall numbers for this machine. */
export function seccompSupported(): boolean {
  return process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64');
}
