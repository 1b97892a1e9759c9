# A boot sector for QEMU's tests: SeaBIOS loads it from the virtio-blk disk at 0:0x7c00 and
# jumps to it in real mode with the boot drive in DL. It reads sector 0 of that drive REQUESTS
# times through SeaBIOS's INT 13h (each read is one virtio-blk request, so one queue notify
# from SeaBIOS's own driver), then says "done" on the debug console (isa-debugcon, port 0x402)
# and halts, so the process stays alive until the harness ends it. REQUESTS = 0 reads forever.
# tests/observer/guests/build.py assembles it; the harness patches REQUESTS in a copy.

	.code16
	.text
	.globl start
start:
	cli
	xor	%ax, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$0x7c00, %sp
	sti
	mov	%dl, drive
	mov	$started, %si
	call	say
	mov	requests, %ebp		# requests still to make; BX is INT 13h's buffer

read_one:
	mov	$0x0201, %ax		# AH=02 read sectors, AL=1 sector
	mov	$0x0001, %cx		# cylinder 0, sector 1 (this sector)
	xor	%dh, %dh		# head 0
	mov	drive, %dl
	mov	$0x8000, %bx		# ES:BX = 0:0x8000, away from this code
	push	%ebp			# the BIOS may use any register it does not return
	int	$0x13
	pop	%ebp
	jc	failed
	test	%ebp, %ebp		# 0: read forever
	jz	read_one
	dec	%ebp
	jnz	read_one

	mov	$done, %si
	call	say
halt:
	cli
	hlt
	jmp	halt

failed:
	mov	$error, %si
	call	say
	jmp	halt

# say: write the NUL-terminated string at DS:SI to the debug console, one OUT per byte.
say:
	mov	$0x402, %dx
1:	lodsb
	test	%al, %al
	jz	2f
	outb	%al, %dx
	jmp	1b
2:	ret

started:	.asciz	"\niosignal-guest: start\n"
done:		.asciz	"\niosignal-guest: done\n"
error:		.asciz	"\niosignal-guest: read failed\n"
drive:		.byte	0

	.org	0x1f0
# The harness patches this: how many INT 13h reads to make (0 = forever). Found by offset.
requests:	.long	16

	.org	0x1fe
	.byte	0x55, 0xaa
