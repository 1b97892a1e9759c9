/*
 * roundtrip.S - the iosignal request guest: kick a doorbell, wait for the device's interrupt.
 *
 * A second image beside doorbell.S: a request needs a GDT and IDT, an interrupt handler, an
 * enabled LAPIC and a VM created with an in-kernel irqchip; the one-way doorbell guest needs
 * none of it, and its pass protocol (which the live worker runs) stays as it is.
 *
 * The worker enters at `start` already in long mode (identity-mapped page tables, flat
 * segments, interrupts off) with:
 *     rbx = guest-physical address of the request table
 *     r15 = the control port ("pass done")
 *
 * Request table (little-endian u64 fields; worker/guest/requests.py mirrors it):
 *     +0   requests    round trips in the next pass
 *     +8   wait        1 = hlt until the interrupt, 2 = spin on the count with interrupts on
 *     +16  kind        3 = pio32, 6 = mmio32 (doorbell.S's kinds)
 *     +24  addr        doorbell port or guest-physical address
 *     +32  value       value written to the doorbell
 *     +40  rtt_gpa     where the pass writes each request's TSC round trip (u64 each)
 *     +48  tsc_start   +56 tsc_end   of the last pass
 *     +64  kicks       doorbell writes, ever
 *     +72  interrupts  interrupts taken, ever (the handler counts)
 *     +80  passes
 *     +88  vector      the device's interrupt vector; read once at start
 *
 * The device interrupts with an MSI to APIC 0 (fixed, edge) carrying `vector`.
 * A request is: note the TSC, kick, wait until the interrupt count passes the one before the
 * kick, note the TSC. One pass runs `requests` of them, then `out` to the control port.
 *
 * Interrupts stay on from start to finish: under a software hypervisor (kvm_pvm) every cli and
 * sti traps, and a sti/cli pair per request would cost as much as the kick. The race that
 * sti; hlt closes (the interrupt lands between the check and hlt, and hlt then sleeps for good)
 * is closed in the handler instead: interrupted anywhere from the check to the hlt, it returns
 * past the hlt, which loops back to the check.
 */
        .code64
        .text
        .globl  start
        .set    LAPIC, 0xfee00000
        .set    APIC_SVR, 0xf0
        .set    APIC_EOI, 0xb0
        .include "interrupts.inc"         /* arm_interrupts, interrupt_half */

start:
        movq    88(%rbx), %rdi          /* the device's vector */
        arm_interrupts

pass:
        movq    0(%rbx), %r8            /* requests left */
        movq    40(%rbx), %rsi          /* next rtt slot */
        movq    8(%rbx), %r9            /* wait mode */
        rdtsc
        shlq    $32, %rdx
        orq     %rdx, %rax
        movq    %rax, 48(%rbx)          /* tsc_start */
request:
        testq   %r8, %r8
        jz      pass_done
        movq    72(%rbx), %r11
        incq    %r11                    /* the interrupt count this request waits for */
        rdtsc
        shlq    $32, %rdx
        orq     %rdx, %rax
        movq    %rax, %r10              /* request start */
        incq    64(%rbx)                /* kicks */
        movq    32(%rbx), %rax          /* value */
        movq    24(%rbx), %rdx          /* addr */
        cmpq    $3, 16(%rbx)
        je      kick_pio
        cmpq    $6, 16(%rbx)
        jne     bad
        movl    %eax, (%rdx)            /* MMIO doorbell */
        jmp     kicked
kick_pio:
        outl    %eax, %dx               /* PIO doorbell */
kicked:
        cmpq    $2, %r9
        je      spin
wait_hlt:
        cmpq    %r11, 72(%rbx)
        jae     answered
        hlt                             /* until the interrupt (the handler skips it if early) */
woken:
        jmp     wait_hlt
spin:
        cmpq    %r11, 72(%rbx)
        jae     answered
        pause
        jmp     spin
answered:
        rdtsc
        shlq    $32, %rdx
        orq     %rdx, %rax
        subq    %r10, %rax
        movq    %rax, (%rsi)            /* this request's round trip in TSC ticks */
        addq    $8, %rsi
        decq    %r8
        jmp     request

pass_done:
        rdtsc
        shlq    $32, %rdx
        orq     %rdx, %rax
        movq    %rax, 56(%rbx)          /* tsc_end */
        incq    80(%rbx)                /* passes */
        movq    %r15, %rdx
        outb    %al, %dx                /* pass done: exits to the worker */
        jmp     pass
bad:
        ud2                             /* bad kind: no gate for #UD, a triple fault stops the VM */

        interrupt_half 72               /* table +72: interrupts taken */
