// SPDX-License-Identifier: GPL-2.0
/* What every VMM on the host registers: each KVM_IOEVENTFD and KVM_IRQFD call, assign and
 * deassign, with the struct the caller passed and the kernel's answer (0 or -errno).
 *
 * sys_enter   an ioctl(KVM_IOEVENTFD / KVM_IRQFD): its struct, read from the caller's memory
 *             before the kernel acts on it, is kept by thread until the call returns
 * sys_exit    that thread's call returned: the struct and the answer go to `events`
 *
 * Why exact: the kernel copies the same struct from the same address at the same moment
 * (copy_from_user at the start of the ioctl), and a thread has one syscall in flight.
 * Why the raw syscall tracepoints (BTF-typed): they fire for every syscall, but a program
 * there costs a compare for all but ioctl, where the perf syscall tracepoints
 * (syscalls:sys_enter_ioctl) build a record for every ioctl: measured ~600 ns more on each
 * userspace exit, whose VMM re-enters with ioctl(KVM_RUN). Every other syscall costs the exit
 * program a load of `inflight`, no map lookup, while no registration is in flight.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "iosignal.h"

/* _IOW(KVMIO = 0xAE, nr, struct): direction write (1) << 30 | size << 16 | 0xAE << 8 | nr */
#define KVM_IOEVENTFD 0x4040ae79 /* nr 0x79, struct kvm_ioeventfd: 64 bytes */
#define KVM_IRQFD 0x4020ae76     /* nr 0x76, struct kvm_irqfd: 32 bytes */
#define NR_ioctl 16              /* x86_64 */

char LICENSE[] SEC("license") = "GPL";

struct call {
	__u32 kind;
	__s32 vm_fd;
	__u8 arg[64];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_INFLIGHT);
	__type(key, __u32);
	__type(value, struct call);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Calls between their enter and exit: the exit program looks for its thread's only when > 0. */
volatile __s64 inflight;
/* Events lost to a full ring buffer (the reader is more than 256 KiB behind). */
volatile __u64 lost;
/* Never used: puts struct ioctl_event in the object's BTF, where a test checks the reader's. */
struct ioctl_event *event_layout;

SEC("tp_btf/sys_enter")
int BPF_PROG(iosig_ioctl_in, struct pt_regs *regs, long id)
{
	unsigned long cmd;
	__u32 tid;
	struct call c = {};

	if (id != NR_ioctl)
		return 0;
	cmd = regs->si;
	if (cmd == KVM_IOEVENTFD)
		c.kind = IOCTL_IOEVENTFD;
	else if (cmd == KVM_IRQFD)
		c.kind = IOCTL_IRQFD;
	else
		return 0;
	c.vm_fd = regs->di;
	tid = (__u32)bpf_get_current_pid_tgid();
	/* an unreadable struct is kept as zeroes: the kernel answers EFAULT, recorded as such */
	bpf_probe_read_user(c.arg, c.kind == IOCTL_IOEVENTFD ? 64 : 32, (void *)regs->dx);
	if (bpf_map_update_elem(&calls, &tid, &c, BPF_ANY) == 0)
		__sync_fetch_and_add(&inflight, 1);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(iosig_ioctl_out, struct pt_regs *regs, long ret)
{
	__u64 id;
	__u32 tid;
	struct call *c;
	struct ioctl_event *e;

	if (inflight <= 0)
		return 0;
	id = bpf_get_current_pid_tgid();
	tid = (__u32)id;
	c = bpf_map_lookup_elem(&calls, &tid);
	if (!c)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		e->tgid = id >> 32;
		e->tid = tid;
		e->kind = c->kind;
		e->vm_fd = c->vm_fd;
		e->ret = ret;
		e->ktime_ns = bpf_ktime_get_ns();
		__builtin_memcpy(e->arg, c->arg, sizeof(e->arg));
		bpf_ringbuf_submit(e, 0);
	} else {
		__sync_fetch_and_add(&lost, 1);
	}
	if (bpf_map_delete_elem(&calls, &tid) == 0)
		__sync_fetch_and_add(&inflight, -1);
	return 0;
}

/* The floor: the same tracepoints, programs that return at once (`iosignal observe --bench`). */
SEC("tp_btf/sys_enter")
int BPF_PROG(iosig_floor_in) { return 0; }

SEC("tp_btf/sys_exit")
int BPF_PROG(iosig_floor_out) { return 0; }
