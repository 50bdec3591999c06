/* init/main.c */
int entry_SYSCALL_64_after_hwframe(int nr);

int kernel_init(void *unused)
{
	return entry_SYSCALL_64_after_hwframe(16) + (unused != 0);
}

int main(void)
{
	return kernel_init(0) == 42;
}

/* arch/x86/entry/common.c */
long do_syscall_64(int nr);

int entry_SYSCALL_64_after_hwframe(int nr)
{
	return (int)do_syscall_64(nr);
}

/* arch/x86/entry/syscall.c */
long __x64_sys_ioctl(unsigned int fd, unsigned int cmd, unsigned long arg);

long do_syscall_64(int nr)
{
	long ret = -38;

	if (nr == 16)
		ret = __x64_sys_ioctl(3, 0x5761, 0);
	return ret;
}

/* fs/ioctl.c */
long watch_queue_set_filter(unsigned long arg);

long __x64_sys_ioctl(unsigned int fd, unsigned int cmd, unsigned long arg)
{
	long error = -25;

	if (cmd == 0x5761)
		error = watch_queue_set_filter(arg);
	return error + fd;
}

/* kernel/watch_queue.c */
int kasan_report(unsigned long addr);

static unsigned int filters[4];

long watch_queue_set_filter(unsigned long arg)
{
	unsigned int type = 64 + (unsigned int)arg;
	long n = 0;

	for (unsigned int i = 0; i < 4; i++)
		n += filters[i];
	if (type >= 64)
		n += kasan_report((unsigned long)&filters[type / 32]);
	filters[type % 4] = type;
	return n;
}

/* mm/kasan/report.c */
int dump_stack_lvl(int level);

int print_report(unsigned long addr)
{
	return dump_stack_lvl((int)(addr & 7));
}

int kasan_report(unsigned long addr)
{
	int printed = print_report(addr);

	return printed > 0 ? 0 : printed;
}

/* lib/dump_stack.c */
int dump_stack_lvl(int level)
{
	return level + 1;
}

