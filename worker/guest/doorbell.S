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
 *     +64  entries[n_entries], 32 bytes each:
 *          +0 kind   1=pio8 2=pio16 3=pio32 4=mmio8 5=mmio16 6=mmio32 7=mmio64
 *          +8 addr   port or guest-physical address
 *          +16 value value to write (only the low `width` bytes are written)
 *          +24 count number of writes
 *
 * One pass performs every entry's writes in order, then `out` to the control port: a
 * userspace exit. The worker may rewrite the table while the vCPU is out; re-entering
 * KVM_RUN completes the `out` and the guest starts the next pass. An unknown kind executes
 * ud2: with no IDT that is a triple fault, which the worker reports as a failed VM.
 *
 * Assemble: as --64 -o doorbell.o doorbell.S && ld -Ttext=0 --oformat=binary ... (see
 * worker/guest/__init__.py: assemble()).
 */
        .code64
        .text
        .globl  start
start:
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
