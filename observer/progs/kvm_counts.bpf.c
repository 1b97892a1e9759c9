// SPDX-License-Identifier: GPL-2.0
/* What every KVM guest writes and reads, per (VM, space, address, width), and which of those
 * accesses exited to the userspace VMM: BTF-typed raw tracepoints on KVM's own events.
 *
 * kvm_pio / kvm_mmio      every guest access: writes (recent slot, below) and completed reads
 * kvm_fast_mmio           a len-0 MMIO ioeventfd took a write without decoding it
 * kvm_userspace_exit      the exit's own access, read from the exiting vCPU's struct kvm_run:
 *                         userspace (a write) or read_exits (a read) for that address, and
 *                         a write's value (value slot in front of `exit_values`)
 *
 * Why the exit is exact on every kernel: KVM fills kvm_run (io.{direction,size,port,count} or
 * mmio.{phys_addr,len,is_write}) before it returns to the VMM, and kvm_userspace_exit fires in
 * the KVM_RUN ioctl itself, on the vCPU's thread. That thread's syscall registers name the vCPU
 * fd; its file's private data is the kvm_vcpu, whose run is the same page the VMM reads. So
 * an exit is counted for the address that exited, whatever ran before it and whether or not
 * kvm_entry fires (it never does on kvm_pvm). No pending state: a thread's migration between
 * a write and its exit changes nothing. The exit's reason is checked against kvm_run's.
 *
 * Counting: a guest ringing one doorbell costs an array slot update per write (the slot hands
 * its counts to the per-CPU hash only when its CPU writes another key; observer/counter.py
 * reads both, generation counters skip a slot copied mid-change). Plain adds: the values are
 * this CPU's and the programs run with preemption off.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "iosignal.h"

#define KVM_TRACE_MMIO_READ 1
#define KVM_TRACE_MMIO_WRITE 2
#define KVM_EXIT_IO 2
#define KVM_EXIT_MMIO 6
#define KVM_EXIT_IO_OUT 1

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MAX_KEYS);
	__type(key, struct access_key);
	__type(value, struct access_counts);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct recent);
} recent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_VALUES);
	__type(key, struct value_key);
	__type(value, __u64);
} exit_values SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct value_slot);
} value_slot SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct drops);
} drops SEC(".maps");

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

#define barrier() asm volatile("" ::: "memory")

static __always_inline void drop(int map_full)
{
	__u32 zero = 0;
	struct drops *d = bpf_map_lookup_elem(&drops, &zero);

	if (!d)
		return;
	if (map_full)
		d->map_full++;
	else
		d->unmatched++;
}

/* counts[key] (inserted as zeroes if new), or NULL with the loss counted. */
static __always_inline struct access_counts *counts_of(struct access_key *key)
{
	static const struct access_counts zero;
	struct access_counts *c = bpf_map_lookup_elem(&counts, key);

	if (c)
		return c;
	/* another CPU may insert it meanwhile: NOEXIST fails then, and the lookup finds it */
	bpf_map_update_elem(&counts, key, &zero, BPF_NOEXIST);
	c = bpf_map_lookup_elem(&counts, key);
	if (!c)
		drop(1);
	return c;
}

static __always_inline int same_key(const struct access_key *a, const struct access_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1];
}

static __always_inline void count_write(struct access_key *key, __u64 n)
{
	__u32 zero = 0;
	struct recent *r = bpf_map_lookup_elem(&recent, &zero);
	struct access_counts *c;

	if (!r) {
		c = counts_of(key);
		if (c)
			c->writes += n;
		return;
	}
	if (!same_key(&r->key, key)) {
		if (r->writes | r->userspace) {
			struct access_key old = r->key;

			c = counts_of(&old);
			if (c) {
				c->writes += r->writes;
				c->userspace += r->userspace;
			}
		}
		/* gen_b first and gen_a last: a reader's copy sees them equal only if no change
		 * overlapped it (x86 keeps stores in order; the barriers keep clang from moving them) */
		__u64 gen = r->gen_a + 1;

		r->gen_b = gen;
		barrier();
		r->key = *key;
		r->writes = 0;
		r->userspace = 0;
		barrier();
		r->gen_a = gen;
	}
	r->writes += n;
}

static __always_inline void count_userspace(struct access_key *key, __u64 n)
{
	__u32 zero = 0;
	struct recent *r = bpf_map_lookup_elem(&recent, &zero);
	struct access_counts *c;

	if (r && same_key(&r->key, key)) {
		r->userspace += n;
		return;
	}
	c = counts_of(key);
	if (c)
		c->userspace += n;
}

static __always_inline void count_read(struct access_key *key, __u64 n, int exited)
{
	struct access_counts *c = counts_of(key);

	if (!c)
		return;
	if (exited)
		c->read_exits += n;
	else
		c->reads += n;
}

static __always_inline __u32 current_tgid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

SEC("tp_btf/kvm_pio")
int BPF_PROG(iosig_pio, unsigned int rw, unsigned int port, unsigned int size, unsigned int count,
	     const void *data)
{
	struct access_key key = {
		.tgid = current_tgid(), .space = SPACE_PIO, .len = size, .addr = port};

	if (rw)
		count_write(&key, count);
	else
		count_read(&key, count, 0); /* traced when the read completes */
	return 0;
}

SEC("tp_btf/kvm_mmio")
int BPF_PROG(iosig_mmio, int type, int len, __u64 gpa, void *val)
{
	struct access_key key = {.tgid = current_tgid(), .space = SPACE_MMIO, .len = len, .addr = gpa};

	if (type == KVM_TRACE_MMIO_WRITE)
		count_write(&key, 1);
	else if (type == KVM_TRACE_MMIO_READ)
		count_read(&key, 1, 0);
	/* an unsatisfied read is traced again as a read when it completes */
	return 0;
}

SEC("tp_btf/kvm_fast_mmio")
int BPF_PROG(iosig_fast_mmio, __u64 gpa)
{
	struct access_key key = {.tgid = current_tgid(), .space = SPACE_MMIO, .len = 0, .addr = gpa};

	count_write(&key, 1);
	return 0;
}

/* Casts for memory BTF cannot type: a slot of the fd array (struct kiocb's first member is a
 * struct file *) and 8 bytes of data (struct kvm_mmio_fragment's first member is a u64). Every
 * read through them is a checked load (a fault reads zero): cheaper than bpf_probe_read_kernel,
 * ~35 ns a call here, measured. */
#define AS_FILE_SLOT(p) ((struct kiocb *)bpf_rdonly_cast((p), bpf_core_type_id_kernel(struct kiocb)))
#define AS_U64(p)                                                                              \
	((struct kvm_mmio_fragment *)bpf_rdonly_cast((p),                                    \
						      bpf_core_type_id_kernel(struct kvm_mmio_fragment)))

/* The vCPU whose KVM_RUN ioctl is returning on this thread, or NULL. Every pointer on the way
 * is read through BTF, never trusted. */
static __always_inline struct kvm_vcpu *exiting_vcpu(struct task_struct *task)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	unsigned long fd = regs->di; /* ioctl(vcpu_fd, KVM_RUN, 0) */
	struct fdtable *fdt = task->files->fdt;
	struct file *file;

	if (fd >= fdt->max_fds)
		return NULL;
	file = AS_FILE_SLOT((void *)fdt->fd + fd * sizeof(file))->ki_filp;
	if (!file)
		return NULL;
	return bpf_rdonly_cast(file->private_data, bpf_core_type_id_kernel(struct kvm_vcpu));
}

/* The first `len` bytes of `p`, little-endian, as a number. */
static __always_inline __u64 first_bytes(void *p, unsigned int len)
{
	__u64 v = AS_U64(p)->gpa;

	return len >= 8 ? v : v & ((1ULL << (8 * len)) - 1);
}

static __always_inline void add_value(struct value_key *vk, __u64 n)
{
	__u64 *seen = bpf_map_lookup_elem(&exit_values, vk);

	if (!seen) {
		if (bpf_map_update_elem(&exit_values, vk, &n, BPF_NOEXIST) == 0)
			return;
		seen = bpf_map_lookup_elem(&exit_values, vk); /* another CPU inserted it */
		if (!seen)
			return;
	}
	__sync_fetch_and_add(seen, n);
}

/* One more exiting write of `value` to `key`: in this CPU's slot while the slot holds that
 * pair, else the slot's count goes to `exit_values` and the slot takes the pair (a shared
 * LRU hash update with its atomic add cost ~115 ns an exit, measured; the slot a few). */
static __always_inline void note_value(struct access_key *key, __u64 value)
{
	__u32 zero = 0;
	struct value_slot *s = bpf_map_lookup_elem(&value_slot, &zero);
	struct value_key vk = {.key = *key, .value = value};

	if (!s) {
		add_value(&vk, 1);
		return;
	}
	if (same_key(&s->vk.key, key) && s->vk.value == value) {
		s->count++;
		return;
	}
	if (s->count) {
		struct value_key old = s->vk;

		add_value(&old, s->count);
	}
	__u64 gen = s->gen_a + 1; /* as in count_write: gen_b first, gen_a last */

	s->gen_b = gen;
	barrier();
	s->vk = vk;
	s->count = 1;
	barrier();
	s->gen_a = gen;
}

SEC("tp_btf/kvm_userspace_exit")
int BPF_PROG(iosig_exit, __u32 reason, int err)
{
	struct task_struct *task;
	struct kvm_vcpu *vcpu;
	struct kvm_run *run = NULL;
	__u64 value = 0;

	if (err || (reason != KVM_EXIT_IO && reason != KVM_EXIT_MMIO))
		return 0; /* KVM_RUN failed (e.g. EINTR), or an exit that is no access */
	task = bpf_get_current_task_btf();
	vcpu = exiting_vcpu(task);
	if (vcpu)
		run = vcpu->run;
	if (!run || run->exit_reason != reason) {
		drop(0);
		return 0;
	}
	struct access_key key = {.tgid = task->tgid};

	if (reason == KVM_EXIT_IO) {
		__u32 count = run->io.count;

		key.space = SPACE_PIO;
		key.len = run->io.size;
		key.addr = run->io.port;
		if (run->io.direction != KVM_EXIT_IO_OUT) {
			count_read(&key, count, 1);
			return 0;
		}
		count_userspace(&key, count);
		/* the first element's value, in the vCPU's PIO data page (the VMM maps it at
		 * data_offset after kvm_run; in the kernel it is a page of its own) */
		value = first_bytes(vcpu->arch.pio_data, key.len);
	} else {
		key.space = SPACE_MMIO;
		key.len = run->mmio.len;
		key.addr = run->mmio.phys_addr;
		if (!run->mmio.is_write) {
			count_read(&key, 1, 1);
			return 0;
		}
		count_userspace(&key, 1);
		value = first_bytes(&run->mmio.data, key.len);
	}
	note_value(&key, value);
	return 0;
}

/* The floor: programs that return at once, attached in the counting programs' place, measure
 * what the tracepoints' hooks alone cost a guest access (`iosignal observe --bench`). */
SEC("tp_btf/kvm_pio")
int BPF_PROG(iosig_floor_pio) { return 0; }

SEC("tp_btf/kvm_mmio")
int BPF_PROG(iosig_floor_mmio) { return 0; }

SEC("tp_btf/kvm_fast_mmio")
int BPF_PROG(iosig_floor_fast) { return 0; }

SEC("tp_btf/kvm_userspace_exit")
int BPF_PROG(iosig_floor_exit) { return 0; }

/* Not attached: `iosignal observe --bench` asks whether this kernel loads an fexit program on
 * kvm_io_bus_write (its return value alone tells in-kernel from userspace, one program per
 * write). Refused with EPERM where lockdown forbids fentry/fexit. */
SEC("fexit/kvm_io_bus_write")
int BPF_PROG(iosig_fexit) { return 0; }
