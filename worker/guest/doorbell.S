/*
 * doorbell.S - the iosignal guest: a 64-bit long-mode loop that rings doorbells.
 *
 * The worker enters at `start` already in long mode (identity-mapped page tables, flat
 * segments) with:
 *     rbx = guest-physical address of the doorbell table
 *     r15 = the control port ("pass done")
 *
 * Table layout (little-endian u64 fields):
 *     +0   n_entries
 *     +8   tsc_start     written by the guest at the start of each pass
 *     +16  tsc_end       written by the guest at the end of each pass
 *     +24  passes        incremented by the guest after each pass
 *     +32  interrupts    the device's interrupts taken, ever (the handler counts)
 *     +40  vector        the device's interrupt vector, read once at start; 0 = none (a VM
 *                        without an in-kernel irqchip): no IDT, no LAPIC, interrupts stay off
 *     +64  entries[n_entries], 32 bytes each:
 *          +0 kind   1=pio8 2=pio16 3=pio32 4=mmio8 5=mmio16 6=mmio32 7=mmio64;
 *                    plus 8 (9..15): "answered", each write waits for the device's interrupt
 *          +8 addr   port or guest-physical address
 *          +16 value value to write (only the low `width` bytes are written)
 *          +24 count number of writes
 *
 * One pass performs every entry's writes in order, then `out` to the control port: a
 * userspace exit. The worker may rewrite the table while the vCPU is out; re-entering
 * KVM_RUN completes the `out` and the guest starts the next pass. An unknown kind executes
 * ud2: no IDT gate for #UD, so a triple fault, which the worker reports as a failed VM.
 *
 * An answered write is a request as in roundtrip.S: note the interrupt count, write, hlt until
 * the count passes the noted one. Interrupts stay on from start (with a vector) to finish, and
 * the handler closes the check-then-hlt race the same way: interrupted between the check and
 * the hlt, it resumes past the hlt, which loops back to the check. Plain writes never wait.
 *
 * Assemble: as --64 -o doorbell.o doorbell.S && ld -Ttext=0 --oformat=binary ... (see
 * worker/guest/__init__.py: assemble()).
 */
        .code64
        .text
        .globl  start
        .set    LAPIC, 0xfee00000
        .set    APIC_SVR, 0xf0
        .set    APIC_EOI, 0xb0
        .include "interrupts.inc"         /* arm_interrupts, interrupt_half */
start:
        movq    40(%rbx), %rdi          /* the device's vector; 0: no interrupts on this VM */
        testq   %rdi, %rdi
        jz      pass
        arm_interrupts
pass:
        rdtsc
        shlq    $32, %rdx
        orq     %rdx, %rax
        movq    %rax, 8(%rbx)           /* tsc_start */
        movq    0(%rbx), %r8            /* entries left */
        leaq    64(%rbx), %rsi          /* current entry */
next_entry:
        testq   %r8, %r8
        jz      pass_done
        movq    24(%rsi), %rcx          /* count */
        movq    8(%rsi), %rdi           /* addr (MMIO) */
        movq    %rdi, %rdx              /* addr (PIO port, low 16 bits) */
        movq    16(%rsi), %rax          /* value */
        testq   %rcx, %rcx
        jz      entry_done
        movq    0(%rsi), %r9            /* kind */
        cmpq    $8, %r9
        ja      answered
        cmpq    $1, %r9
        je      pio8
        cmpq    $2, %r9
        je      pio16
        cmpq    $3, %r9
        je      pio32
        cmpq    $4, %r9
        je      mmio8
        cmpq    $5, %r9
        je      mmio16
        cmpq    $6, %r9
        je      mmio32
        cmpq    $7, %r9
        je      mmio64
        ud2                             /* bad kind: triple fault, the VM stops */

pio8:   outb    %al, %dx
        decq    %rcx
        jnz     pio8
        jmp     entry_done
pio16:  outw    %ax, %dx
        decq    %rcx
        jnz     pio16
        jmp     entry_done
pio32:  outl    %eax, %dx
        decq    %rcx
        jnz     pio32
        jmp     entry_done
mmio8:  movb    %al, (%rdi)
        decq    %rcx
        jnz     mmio8
        jmp     entry_done
mmio16: movw    %ax, (%rdi)
        decq    %rcx
        jnz     mmio16
        jmp     entry_done
mmio32: movl    %eax, (%rdi)
        decq    %rcx
        jnz     mmio32
        jmp     entry_done
mmio64: movq    %rax, (%rdi)
        decq    %rcx
        jnz     mmio64

        jmp     entry_done

answered:                               /* kinds 9..15: one write, then wait for its answer */
        subq    $8, %r9
answer_next:
        movq    32(%rbx), %r11
        incq    %r11                    /* the interrupt count this write waits for */
        cmpq    $1, %r9
        je      a_pio8
        cmpq    $2, %r9
        je      a_pio16
        cmpq    $3, %r9
        je      a_pio32
        cmpq    $4, %r9
        je      a_mmio8
        cmpq    $5, %r9
        je      a_mmio16
        cmpq    $6, %r9
        je      a_mmio32
        cmpq    $7, %r9
        je      a_mmio64
        ud2                             /* bad kind */
a_pio8: outb    %al, %dx
        jmp     wait_hlt
a_pio16: outw   %ax, %dx
        jmp     wait_hlt
a_pio32: outl   %eax, %dx
        jmp     wait_hlt
a_mmio8: movb   %al, (%rdi)
        jmp     wait_hlt
a_mmio16: movw  %ax, (%rdi)
        jmp     wait_hlt
a_mmio32: movl  %eax, (%rdi)
        jmp     wait_hlt
a_mmio64: movq  %rax, (%rdi)
wait_hlt:
        cmpq    %r11, 32(%rbx)
        jae     answer_done
        hlt                             /* until the interrupt (the handler skips it if early) */
woken:
        jmp     wait_hlt
answer_done:
        decq    %rcx
        jnz     answer_next

entry_done:
        addq    $32, %rsi
        decq    %r8
        jmp     next_entry

pass_done:
        rdtsc
        shlq    $32, %rdx
        orq     %rdx, %rax
        movq    %rax, 16(%rbx)          /* tsc_end */
        incq    24(%rbx)                /* passes */
        movq    %r15, %rdx
        outb    %al, %dx                /* pass done: exits to the worker */
        jmp     pass

        interrupt_half 32               /* table +32: interrupts taken */
