/* The maps' key and value structs, declared once for the programs and the Python reader.
 * observer/layout.py mirrors them with ctypes; tests/observer/test_progs.py checks every
 * size and offset there against the BTF that clang writes into the compiled objects. */
#ifndef IOSIGNAL_H
#define IOSIGNAL_H

#define SPACE_PIO 0
#define SPACE_MMIO 1

#define MAX_KEYS 65536     /* (VM, space, addr, len) series on the host at once */
#define MAX_VALUES 16384   /* (series, value) pairs of writes that exited, least recent go */
#define MAX_INFLIGHT 4096  /* KVM_IOEVENTFD / KVM_IRQFD calls in flight at once */

/* One doorbell of one VM: the VMM's process id (tgid), space, guest address, width. */
struct access_key {
	__u32 tgid;
	__u8 space;
	__u8 len;
	__u16 pad;
	__u64 addr;
};

/* What the guest did to one doorbell since the programs were attached (per CPU). */
struct access_counts {
	__u64 writes;     /* every guest write, whoever handled it */
	__u64 userspace;  /* writes that exited to the VMM (the rest: in-kernel) */
	__u64 reads;      /* PIO in and MMIO reads, counted when they complete */
	__u64 read_exits; /* reads that exited to the VMM */
};

/* One CPU's most recently written key, with the counts not yet handed to `counts`. The
 * programs change the key as gen_b += 1, key and counts, gen_a = gen_b; the kernel copies the
 * slot to the reader front to back, so a copy with gen_a == gen_b saw no change midway. */
struct recent {
	__u64 gen_a;
	struct access_key key;
	__u64 writes;
	__u64 userspace;
	__u64 gen_b;
};

/* A value the guest wrote in a write that exited to userspace, for the datamatch diagnosis. */
struct value_key {
	struct access_key key;
	__u64 value;
};

/* One CPU's most recent (series, value) of an exiting write, with its count not yet in
 * `exit_values`: a doorbell exiting with one value costs a slot update, not a hash update.
 * Changed under the same generation protocol as `struct recent`. */
struct value_slot {
	__u64 gen_a;
	struct value_key vk;
	__u64 count;
	__u64 gen_b;
};

/* Counts the programs could not record. */
struct drops {
	__u64 map_full;   /* increments lost to a full map */
	__u64 unmatched;  /* I/O exits whose kvm_run could not be read (not a vCPU fd's KVM_RUN) */
};

#define IOCTL_IOEVENTFD 1
#define IOCTL_IRQFD 2

/* One KVM_IOEVENTFD or KVM_IRQFD call of any process, with the kernel's answer. `arg` is the
 * caller's struct kvm_ioeventfd (64 bytes) or struct kvm_irqfd (32 bytes) as passed. */
struct ioctl_event {
	__u32 tgid;
	__u32 tid;
	__u32 kind;     /* IOCTL_IOEVENTFD or IOCTL_IRQFD */
	__s32 vm_fd;    /* the VM fd the call was made on */
	__s64 ret;      /* 0 or -errno */
	__u64 ktime_ns; /* CLOCK_MONOTONIC at the answer */
	__u8 arg[64];
};

/* kvm_latency.bpf.c: how long an in-kernel doorbell takes to be heard, per doorbell and stage. */
#define STAGE_RUN 0  /* kick -> the consumer it woke runs (sched_switch to it) */
#define STAGE_IRQ 1  /* kick -> the consumer raises an interrupt into the VM */
#define STAGE_WAKE 2 /* that interrupt -> its vCPU back from halt (kvm_vcpu_wakeup) */
#define HIST_SLOTS 496 /* log-linear: 8 linear steps per power of two of nanoseconds */
#define MAX_DOORBELLS 4096
#define MAX_HIST 65536

/* One in-kernel doorbell's consumer and counts since the programs were attached. */
struct doorbell_latency {
	__u64 kicks;     /* guest writes since its first kick woke a consumer */
	__u64 wakes;     /* kicks whose eventfd signal woke the consumer */
	__u64 exits;     /* kicks that exited to the VMM instead (no ioeventfd matched) */
	__u64 coalesced; /* kicks that found the consumer with an earlier kick unanswered */
	__u64 answered;  /* interrupts paired with a kick of this doorbell */
	__u64 stale;     /* unanswered kicks given up after PENDING_MAX_NS */
	__u32 consumer_tid;
	__u32 consumer_tgid;
	__u32 vector;  /* the latest paired interrupt's vector */
	__u32 vcpu_id; /* and its destination vCPU */
	char comm[16];    /* the consumer thread's name when it was woken */
	char process[16]; /* its process's (thread group leader's) name */
};

/* One bucket of one doorbell's histogram of one stage. */
struct hist_key {
	struct access_key key;
	__u32 stage;
	__u32 slot;
};

/* What the latency programs could not pair or record (per CPU). */
struct latency_drops {
	__u64 map_full;     /* a doorbell or bucket lost to a full map */
	__u64 irq_unpaired; /* interrupts raised by a consumer with no kick unanswered */
	__u64 mixed;        /* kicks that found the consumer's unanswered kick from another doorbell */
	__u64 no_storage;   /* thread state that could not be made */
};

#endif
