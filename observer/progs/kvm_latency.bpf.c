// SPDX-License-Identifier: GPL-2.0
/* How long an in-kernel doorbell (ioeventfd) takes to be heard, per doorbell and stage, as
 * log-linear histograms (8 linear steps per power of two of nanoseconds: a bucket is at most
 * 1/8 of its lower bound wide, so a percentile read at a bucket's middle is within 6%).
 *
 * kvm_pio / kvm_mmio     a guest write: a kick. Both fire on the vCPU thread before KVM hands
 *                        the write to its I/O bus, so the kick opens a window on that thread
 * sched_waking           raised by a vCPU thread inside its kick's window, not from an
 *                        interrupt's context: the eventfd signal woke the wakee, the doorbell's consumer (vhost, an iothread, the
 *                        VMM's main loop). The first wake closes the window
 * sched_switch           to a consumer woken by a kick: stage RUN
 * kvm_apic_accept_irq    raised on a consumer's thread (an irqfd write injects the MSI in the
 *                        writer's context): paired with the consumer's oldest unanswered
 *                        kick: stage IRQ, and the (VM, vCPU) it is for remembered
 * kvm_vcpu_wakeup        that vCPU's thread back from halt: stage WAKE
 * kvm_userspace_exit     the kick exited to the VMM after all (no ioeventfd took it)
 *
 * Pairing: a consumer holds one unanswered kick, the oldest; its next interrupt answers it.
 * Kicks that arrive while one is unanswered are `coalesced` (one interrupt answers them all,
 * as virtio's notification suppression intends). Where it can go wrong: a consumer serving
 * several doorbells (vhost-net's rx and tx, a VMM's main loop) answers the oldest doorbell's
 * kick with whichever interrupt comes first (`mixed` counts kicks that met another doorbell's
 * unanswered kick); an interrupt for other work (a timer, a completion) answers a pending kick
 * too early; an interrupt the kernel injects from a work item (an IOAPIC pin's irqfd) is not
 * raised by the consumer, so its kick stays unanswered and is given up as `stale` after
 * PENDING_MAX_NS. Interrupts from a consumer with no kick unanswered are `irq_unpaired`.
 *
 * Cheap for other threads: the scheduler tracepoints fire for every thread on the host; the
 * programs look the thread up in task-local storage (a pointer in its task_struct, not a
 * hash) and leave when it is neither a vCPU that kicked nor a consumer a kick woke.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "iosignal.h"

#define KVM_TRACE_MMIO_WRITE 2
#define ROLE_VCPU 1
#define ROLE_CONSUMER 2
/* A kick's eventfd signal follows its tracepoint within microseconds on the same thread; a
 * wake later than this is the thread's other business (an interrupt's softirq, say). */
#define WINDOW_NS 50000ULL
#define PENDING_MAX_NS 1000000000ULL

char LICENSE[] SEC("license") = "GPL";

/* One thread's part in the chain, in its task_struct: freed with the thread. */
struct thread_state {
	__u32 role;
	__u32 pad;
	struct access_key kick;    /* vCPU: the kick whose wake is looked for */
	__u64 kick_ns;             /* 0: no window open */
	struct access_key pending; /* consumer: its oldest unanswered kick */
	__u64 pending_ns;
	struct access_key woken; /* consumer: the kick that woke it, until it runs */
	__u64 woken_ns;
	__u64 unknown_gen; /* vCPU: `kick` was no doorbell while `doorbell_gen` was this, +1 */
};

/* Bumped whenever a doorbell is first seen: a vCPU that found its last key unknown skips
 * the hash lookup for the same key until then (a doorbell nobody consumes, or one that exits
 * to the VMM, costs a compare a write instead of a lookup). */
volatile __u64 doorbell_gen;

/* An interrupt a consumer raised, until its vCPU comes back from halt. */
struct irq_key {
	__u32 tgid;
	__u32 vcpu_id;
};

struct irq_sent {
	struct access_key key;
	__u64 ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread_state);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_DOORBELLS);
	__type(key, struct access_key);
	__type(value, struct doorbell_latency);
} doorbells SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_HIST);
	__type(key, struct hist_key);
	__type(value, __u64);
} hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_DOORBELLS);
	__type(key, struct irq_key);
	__type(value, struct irq_sent);
} irqs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct latency_drops);
} latency_drops SEC(".maps");

extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

static __always_inline struct latency_drops *drops(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&latency_drops, &zero);
}

/* x86-64's kernel stacks: 16 KiB a task (THREAD_SIZE without KASAN) */
#define TASK_STACK_SIZE 16384

/* The program runs on an interrupt's stack (a hard interrupt, or the softirqs run on its way
 * out), not on the current task's own: the wake is an interrupt's work, not the task's.
 * (The per-CPU preempt count would say it too, but it is not in kallsyms here.) */
static __always_inline int in_irq_context(struct task_struct *task)
{
	volatile __u64 marker = 0;
	void *volatile where = (void *)&marker;
	__u64 sp = 0;

	bpf_probe_read_kernel(&sp, sizeof(sp), (void *)&where); /* this frame's address */
	return sp - (__u64)task->stack >= TASK_STACK_SIZE;
}

static __always_inline __u32 log2_u32(__u32 v)
{
	__u32 r, shift;

	r = (v > 0xFFFF) << 4;
	v >>= r;
	shift = (v > 0xFF) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xF) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r;
}

/* The bucket of `ns`: itself below 16, else (octave - 2) * 8 + the next 3 bits. */
static __always_inline __u32 slot_of(__u64 ns)
{
	__u32 hi = ns >> 32, o;

	if (ns < 16)
		return ns;
	o = hi ? log2_u32(hi) + 32 : log2_u32(ns);
	return (o - 2) * 8 + ((ns >> (o - 3)) & 7);
}

static __always_inline void observe(struct access_key *key, __u32 stage, __u64 ns)
{
	struct hist_key hk = {.key = *key, .stage = stage, .slot = slot_of(ns)};
	static const __u64 zero;
	__u64 *n = bpf_map_lookup_elem(&hists, &hk);

	if (!n) {
		bpf_map_update_elem(&hists, &hk, &zero, BPF_NOEXIST);
		n = bpf_map_lookup_elem(&hists, &hk);
		if (!n) {
			struct latency_drops *d = drops();

			if (d)
				d->map_full++;
			return;
		}
	}
	__sync_fetch_and_add(n, 1);
}

/* A thread's state, or NULL at the cost of one load for a thread with no BPF storage at all
 * (nearly every thread on the host: the scheduler programs' common case; the helper's lock
 * and lookup cost ~50 ns more a run, measured by the observe bench) */
static __always_inline struct thread_state *state_of(struct task_struct *t)
{
	if (!t->bpf_storage)
		return NULL;
	return bpf_task_storage_get(&threads, t, 0, 0);
}

/* The consumer's oldest unanswered kick becomes this one, unless one is pending. */
static __always_inline void pend(struct thread_state *cs, struct access_key *key, __u64 ns,
				 struct doorbell_latency *d)
{
	__u64 was = cs->pending_ns;

	if (was && ns - was > PENDING_MAX_NS) {
		/* never answered by this consumer: given up, so later kicks pair again */
		if (__sync_val_compare_and_swap(&cs->pending_ns, was, 0) == was)
			__sync_fetch_and_add(&d->stale, 1);
	}
	if (__sync_val_compare_and_swap(&cs->pending_ns, 0, ns) == 0) {
		cs->pending = *key;
		return;
	}
	__sync_fetch_and_add(&d->coalesced, 1);
	if (cs->pending.addr != key->addr || cs->pending.tgid != key->tgid ||
	    cs->pending.space != key->space) {
		struct latency_drops *dr = drops();

		if (dr)
			dr->mixed++;
	}
}

static __always_inline void kick(struct access_key *key)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct thread_state *s = bpf_task_storage_get(&threads, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	struct doorbell_latency *d;
	struct task_struct *consumer;
	__u64 now = bpf_ktime_get_ns();

	if (!s) {
		struct latency_drops *dr = drops();

		if (dr)
			dr->no_storage++;
		return;
	}
	s->role |= ROLE_VCPU;
	s->kick_ns = now;
	if (s->unknown_gen == doorbell_gen + 1 && s->kick.addr == key->addr &&
	    s->kick.tgid == key->tgid && s->kick.space == key->space && s->kick.len == key->len)
		return; /* the same key, still no doorbell */
	s->kick = *key;
	d = bpf_map_lookup_elem(&doorbells, key);
	if (!d) {
		s->unknown_gen = doorbell_gen + 1;
		return; /* no consumer known yet: its first wake creates the doorbell */
	}
	s->unknown_gen = 0;
	__sync_fetch_and_add(&d->kicks, 1);
	/* the consumer learns of the kick whether or not the signal wakes it (it may be running) */
	consumer = bpf_task_from_pid(d->consumer_tid);
	if (!consumer)
		return;
	struct thread_state *cs = state_of(consumer);

	if (cs)
		pend(cs, key, now, d);
	bpf_task_release(consumer);
}

SEC("tp_btf/kvm_pio")
int BPF_PROG(iosig_lat_pio, unsigned int rw, unsigned int port, unsigned int size,
	     unsigned int count, const void *data)
{
	struct access_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .len = size, .addr = port};

	if (rw) {
		key.space = SPACE_PIO;
		kick(&key);
	}
	return 0;
}

SEC("tp_btf/kvm_mmio")
int BPF_PROG(iosig_lat_mmio, int type, int len, __u64 gpa, void *val)
{
	struct access_key key = {
		.tgid = bpf_get_current_pid_tgid() >> 32, .space = SPACE_MMIO, .len = len, .addr = gpa};

	if (type == KVM_TRACE_MMIO_WRITE)
		kick(&key);
	return 0;
}

/* The first consumer seen for a doorbell, or a new one (the VMM moved the eventfd). */
static __always_inline struct doorbell_latency *consumer_of(struct access_key *key,
							     struct task_struct *p)
{
	struct doorbell_latency *d = bpf_map_lookup_elem(&doorbells, key);

	if (!d) {
		static const struct doorbell_latency zero;

		bpf_map_update_elem(&doorbells, key, &zero, BPF_NOEXIST);
		d = bpf_map_lookup_elem(&doorbells, key);
		if (!d) {
			struct latency_drops *dr = drops();

			if (dr)
				dr->map_full++;
			return NULL;
		}
		__sync_fetch_and_add(&d->kicks, 1); /* this kick, not counted while unknown */
		__sync_fetch_and_add(&doorbell_gen, 1); /* vCPUs look their last key up again */
	}
	if (d->consumer_tid != p->pid) {
		d->consumer_tid = p->pid;
		d->consumer_tgid = p->tgid;
		bpf_probe_read_kernel_str(d->comm, sizeof(d->comm), p->comm);
		bpf_probe_read_kernel_str(d->process, sizeof(d->process), p->group_leader->comm);
	}
	return d;
}

SEC("tp_btf/sched_waking")
int BPF_PROG(iosig_lat_waking, struct task_struct *p)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct thread_state *s = state_of(task);
	struct doorbell_latency *d;
	struct thread_state *cs;
	struct access_key key;
	__u64 kick_ns;

	if (!s || !s->kick_ns)
		return 0; /* not a vCPU in a kick's window: every other wake on the host */
	if (in_irq_context(task))
		return 0; /* an interrupt's work on the vCPU's CPU (a timer's softirq), not the kick's */
	kick_ns = s->kick_ns;
	s->kick_ns = 0;
	if (bpf_ktime_get_ns() - kick_ns > WINDOW_NS)
		return 0;
	key = s->kick;
	d = consumer_of(&key, p);
	if (!d)
		return 0;
	__sync_fetch_and_add(&d->wakes, 1);
	cs = bpf_task_storage_get(&threads, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!cs)
		return 0;
	cs->role |= ROLE_CONSUMER;
	cs->woken = key;
	cs->woken_ns = kick_ns;
	if (__sync_val_compare_and_swap(&cs->pending_ns, 0, kick_ns) == 0)
		cs->pending = key; /* the first kick (the doorbell was unknown) or a new consumer */
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(iosig_lat_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct thread_state *cs = state_of(next);
	struct access_key key;
	__u64 ns;

	if (!cs || !cs->woken_ns)
		return 0;
	ns = cs->woken_ns;
	key = cs->woken;
	cs->woken_ns = 0;
	observe(&key, STAGE_RUN, bpf_ktime_get_ns() - ns);
	return 0;
}

SEC("tp_btf/kvm_apic_accept_irq")
int BPF_PROG(iosig_lat_irq, __u32 apicid, __u16 dm, __u16 tm, __u8 vec)
{
	struct thread_state *cs = state_of(bpf_get_current_task_btf());
	struct doorbell_latency *d;
	struct access_key key;
	__u64 ns, now;

	if (!cs || !(cs->role & ROLE_CONSUMER))
		return 0; /* raised by a thread no kick woke (a vCPU's IPI, a timer, a work item) */
	ns = __sync_lock_test_and_set(&cs->pending_ns, 0);
	if (!ns) {
		struct latency_drops *dr = drops();

		if (dr)
			dr->irq_unpaired++;
		return 0;
	}
	key = cs->pending;
	now = bpf_ktime_get_ns();
	observe(&key, STAGE_IRQ, now - ns);
	d = bpf_map_lookup_elem(&doorbells, &key);
	if (d) {
		__sync_fetch_and_add(&d->answered, 1);
		d->vector = vec;
		d->vcpu_id = apicid;
	}
	struct irq_key ik = {.tgid = key.tgid, .vcpu_id = apicid};
	struct irq_sent sent = {.key = key, .ns = now};

	bpf_map_update_elem(&irqs, &ik, &sent, BPF_ANY);
	return 0;
}

/* Casts for memory BTF cannot type (as kvm_counts.bpf.c): a slot of the fd array. */
#define AS_FILE_SLOT(p) ((struct kiocb *)bpf_rdonly_cast((p), bpf_core_type_id_kernel(struct kiocb)))

/* The vCPU whose KVM_RUN ioctl this thread is in (its fd is the syscall's first argument). */
static __always_inline struct kvm_vcpu *running_vcpu(struct task_struct *task)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	unsigned long fd = regs->di;
	struct fdtable *fdt = task->files->fdt;
	struct file *file;

	if (fd >= fdt->max_fds)
		return NULL;
	file = AS_FILE_SLOT((void *)fdt->fd + fd * sizeof(file))->ki_filp;
	if (!file)
		return NULL;
	return bpf_rdonly_cast(file->private_data, bpf_core_type_id_kernel(struct kvm_vcpu));
}

SEC("tp_btf/kvm_vcpu_wakeup")
int BPF_PROG(iosig_lat_wakeup, __u64 ns, bool waited, bool valid)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct thread_state *s = state_of(task);
	struct kvm_vcpu *vcpu;
	struct irq_sent *sent;

	if (!s || !(s->role & ROLE_VCPU))
		return 0;
	vcpu = running_vcpu(task);
	if (!vcpu)
		return 0;
	struct irq_key ik = {.tgid = task->tgid, .vcpu_id = vcpu->vcpu_id};

	sent = bpf_map_lookup_elem(&irqs, &ik);
	if (!sent)
		return 0; /* woken by something no consumer raised (a timer, an IPI) */
	struct access_key key = sent->key;
	__u64 at = sent->ns, now = bpf_ktime_get_ns();

	bpf_map_delete_elem(&irqs, &ik);
	/* `ns`: how long it polled and slept. An interrupt raised before the halt began found
	 * the vCPU running (it halted with the interrupt pending and did not sleep): no sample */
	if (at + ns < now)
		return 0;
	observe(&key, STAGE_WAKE, now - at);
	return 0;
}

SEC("tp_btf/kvm_userspace_exit")
int BPF_PROG(iosig_lat_exit, __u32 reason, int err)
{
	struct thread_state *s = state_of(bpf_get_current_task_btf());
	struct doorbell_latency *d;
	struct task_struct *consumer;
	struct access_key key;
	__u64 kick_ns;

	if (!s || !s->kick_ns)
		return 0;
	kick_ns = s->kick_ns;
	s->kick_ns = 0;
	key = s->kick;
	d = bpf_map_lookup_elem(&doorbells, &key);
	if (!d)
		return 0;
	/* the kick went to the VMM (its value matched no ioeventfd): not the consumer's */
	__sync_fetch_and_add(&d->exits, 1);
	consumer = bpf_task_from_pid(d->consumer_tid);
	if (!consumer)
		return 0;
	struct thread_state *cs = state_of(consumer);

	if (cs)
		__sync_val_compare_and_swap(&cs->pending_ns, kick_ns, 0);
	bpf_task_release(consumer);
	return 0;
}

/* The floor: the same hooks returning at once (`iosignal observe --bench`). */
SEC("tp_btf/sched_waking")
int BPF_PROG(iosig_lfloor_wake) { return 0; }

SEC("tp_btf/sched_switch")
int BPF_PROG(iosig_lfloor_sw) { return 0; }
